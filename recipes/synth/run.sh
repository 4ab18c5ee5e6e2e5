#!/usr/bin/env bash
# The built-in recipe: a synthetic multi-speaker English corpus -> fbank + CMVN -> (later stages) GMM-HMM
# alignments, DNN baseline, ensemble, distillation, WFST decoding, export.
#
# Usage: run.sh [--stage N] [--stop-stage M] [--hours H] [--nj J] ...   (every option below can be overridden)
# Each stage skips work that is already finished (a completion marker is written only after success).
set -euo pipefail

# ---- options (override as --name value) ----
stage=0            # first stage to run
stop_stage=2       # last stage to run
nj=2               # parallel jobs (processes)
hours=3.0          # total corpus size in hours (train/dev/test split by speaker)
num_speakers=20    # synthetic speakers (16 train / 2 dev / 2 test at the default)
seed=0             # corpus seed: same seed and options give the same files
snr_low=5          # additive noise SNR range in dB, per utterance
snr_high=20
corpus=corpus      # where stage 0 writes the generated corpus
data=data          # Kaldi data dirs, dict, features
exp=exp            # models and alignments

. "$(dirname "$0")/../../tools/parse_options.sh"

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') ($fname:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

cd "$(dirname "$0")"
command -v asrdistill >/dev/null || { echo "asrdistill not on PATH: run 'make setup' and use .venv/bin" >&2; exit 1; }

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: generate the synthetic corpus ($hours h, $num_speakers speakers) in $corpus"
  asrdistill make-synth $corpus --hours $hours --num-speakers $num_speakers --seed $seed --nj $nj \
    --snr-db $snr_low $snr_high
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: validate the data dirs and the dict dir, copy them to $data"
  asrdistill prepare-data --dict $corpus/dict --out $data \
    --split train=$corpus/data/train --split dev=$corpus/data/dev --split test=$corpus/data/test
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: 40-dim fbank + per-speaker CMVN for train, dev, test"
  for split in train dev test; do
    asrdistill compute-feats $data/$split $data/fbank/$split --nj $nj
  done
  asrdistill corpus-summary --data $data --feats $data/fbank --corpus $corpus | tee $data/corpus_summary.txt
fi
