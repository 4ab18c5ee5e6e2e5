#!/usr/bin/env bash
# The built-in recipe: a synthetic multi-speaker English corpus -> fbank + CMVN -> (later stages) GMM-HMM
# alignments, DNN baseline, ensemble, distillation, WFST decoding, export.
#
# Usage: run.sh [--stage N] [--stop-stage M] [--hours H] [--nj J] ...   (every option below can be overridden)
# Each stage skips work that is already finished (a completion marker is written only after success).
set -euo pipefail

# ---- options (override as --name value) ----
stage=0            # first stage to run
stop_stage=100      # last stage to run
nj=2               # parallel jobs (processes)
hours=2.0          # total corpus size in hours (train/dev/test split by speaker)
num_speakers=20    # synthetic speakers (16 train / 2 dev / 2 test at the default)
seed=0             # corpus seed: same seed and options give the same files
snr_low=5          # additive noise SNR range in dB, per utterance
snr_high=20
corpus=corpus      # where stage 0 writes the generated corpus
data=data          # Kaldi data dirs, dict, features
exp=exp            # models and alignments
results=.          # where RESULTS.md, results.json and the learning curves go
# Bring your own corpus: Kaldi data dirs + a dict dir replace the generated corpus (stage 0 is skipped)
train_dir=         # e.g. /path/to/data/train (wav.scp, text, utt2spk, spk2utt[, segments])
dev_dir=
test_dir=
dict_dir=          # lexicon.txt, silence_phones.txt, nonsilence_phones.txt, optional_silence.txt
arpa=              # your own ARPA LM (words as in the lexicon) instead of one trained on train_dir's text
# GMM-HMM systems (stages 3-6)
mono_subset=1000   # monophone training on the N shortest utterances (Kaldi: train_2kshort); 0 = all
mono_gauss=1000    # total Gaussians of the monophone system
mono_iters=40      # EM iterations of the monophone system
tri_leaves=2000    # decision-tree leaves of the triphone system (tied states before merging)
tri_gauss=10000    # total Gaussians of the triphone system
gmm_iters=35       # EM iterations of the triphone system
# DNNs, ensemble, distillation (stages 7-10)
preset=tiny        # DNN size: tiny 2x128, small 3x256, medium 4x512, paper 8x2560 (the paper's; GPU)
members=4          # ensemble size (paper: 10); member 0 is the baseline
epochs=3           # maximum epochs of every DNN (newbob may stop earlier)
temperatures="1 2 5 10"  # distillation temperatures; the best on dev is kept
hard_weight=0.5    # weight of the hard-target term relative to the soft term (paper: 0.5)
topk=32            # teacher cache: each frame's top-k soft targets
subset=0.03        # paper Table 5: fraction of the training data
device=auto        # DNN device: auto = cuda when present, else cpu
threads=2          # CPU threads of the DNN training
# LM, decoding (stages 11-12)
lm_order=3         # word n-gram order (modified Kneser-Ney)
dnn_scales="0.067 0.1 0.15"   # acoustic scales swept on dev for the DNN systems
gmm_scales="0.067 0.083 0.1"  # acoustic scales swept on dev for the GMM system
beam=10            # decoding beam
max_active=2000    # decoder max active states
sweep_utts=100     # dev utterances (evenly spaced) on which the acoustic scale is chosen; 0 = all of dev

cmdline="recipes/synth/run.sh${*:+ $*}"   # recorded in RESULTS.md
. "$(dirname "$0")/../../tools/parse_options.sh"

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') ($fname:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}

# json_get FILE KEY: print one top-level value of a JSON file (numbers in %g form: 1.0 -> 1)
json_get() {
  python3 -c "import json, sys; v = json.load(open(sys.argv[1]))[sys.argv[2]]; print('%g' % v if isinstance(v, float) else v)" "$1" "$2"
}

# run_unless_done DIR CMD...: run CMD unless DIR already holds the completion marker (.done) of an earlier run
run_unless_done() {
  local dir=$1; shift
  if [ -f "$dir/.done" ]; then log "$dir is complete: skipping"; else "$@"; fi
}

cd "$(dirname "$0")"
# Progress bars redraw at most every 30 s when the output is a log file rather than a terminal.
[ -t 2 ] || export TQDM_MININTERVAL=30
command -v asrdistill >/dev/null || { echo "asrdistill not on PATH: run 'make setup' and use .venv/bin" >&2; exit 1; }

if [ -n "$train_dir$dev_dir$test_dir$dict_dir" ]; then
  for v in train_dir dev_dir test_dir dict_dir; do
    [ -n "${!v}" ] || { echo "$0: bringing your own corpus needs --${v//_/-} too" >&2; exit 1; }
  done
  own_corpus=true
else
  own_corpus=false
  train_dir=$corpus/data/train; dev_dir=$corpus/data/dev; test_dir=$corpus/data/test; dict_dir=$corpus/dict
fi

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ] && ! $own_corpus; then
  log "Stage 0: generate the synthetic corpus ($hours h, $num_speakers speakers) in $corpus"
  asrdistill make-synth $corpus --hours $hours --num-speakers $num_speakers --seed $seed --nj $nj \
    --snr-db $snr_low $snr_high
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: validate the data dirs and the dict dir, copy them to $data"
  asrdistill prepare-data --dict $dict_dir --out $data --split train=$train_dir --split dev=$dev_dir --split test=$test_dir
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: 40-dim fbank + per-speaker CMVN for train, dev, test"
  for split in train dev test; do
    asrdistill compute-feats $data/$split $data/fbank/$split --nj $nj
  done
  asrdistill corpus-summary --data $data --feats $data/fbank --corpus $corpus --json $data/corpus_summary.json \
    | tee $data/corpus_summary.txt
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: lang dir (phones, words, topology, L.fst) from $data/local/dict"
  run_unless_done $data/lang asrdistill prepare-lang $data/local/dict $data/lang
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: monophone GMM-HMM (flat start, $mono_subset shortest utterances), alignments of train and dev"
  subset_opt=; [ "$mono_subset" -gt 0 ] && subset_opt="--subset $mono_subset"
  run_unless_done $exp/mono asrdistill train-mono $data/train $data/fbank/train $data/lang $exp/mono --num-gauss $mono_gauss \
    --num-iters $mono_iters --nj $nj $subset_opt
  for split in train dev; do
    run_unless_done $exp/mono/ali_$split \
      asrdistill align $data/$split $data/fbank/$split $data/lang $exp/mono $exp/mono/ali_$split --nj $nj
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: decision tree ($tri_leaves leaves) + triphone GMM-HMM ($tri_gauss Gaussians)"
  run_unless_done $exp/tri asrdistill train-tri $data/train $data/fbank/train $data/lang $exp/mono/ali_train $exp/tri \
    --num-leaves $tri_leaves --num-gauss $tri_gauss --num-iters $gmm_iters --nj $nj
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: triphone alignments of train, dev and test (DNN targets); boundary accuracy vs ground truth"
  for split in train dev test; do
    run_unless_done $exp/tri/ali_$split \
      asrdistill align $data/$split $data/fbank/$split $data/lang $exp/tri $exp/tri/ali_$split --nj $nj
  done
  if [ -f $data/train/phones.ctm ] && [ -f $data/dev/phones.ctm ]; then
    asrdistill score-boundaries $exp/mono/ali_train $exp/mono/ali_dev $exp/tri/ali_train $exp/tri/ali_dev \
      --json $exp/boundaries.json --markdown $exp/boundaries.md
    cat $exp/boundaries.md
  else
    log "no ground-truth phones.ctm in $data/train and $data/dev: boundary accuracy not measured"
  fi
fi

dnn_data="--feats $data/fbank/train --ali $exp/tri/ali_train --dev-feats $data/fbank/dev --dev-ali $exp/tri/ali_dev"
dnn_train="--preset $preset --max-epochs $epochs --threads $threads --device $device"

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: $members DNNs ($preset) differing only in their seed: the baseline (member 0) and the ensemble"
  asrdistill train-ensemble --members $members $dnn_data $dnn_train --out $exp/dnn/ensemble
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: distill the ensemble into one DNN at T in {$temperatures} (teacher cached as top-$topk)"
  for T in $temperatures; do
    asrdistill distill --teacher $exp/dnn/ensemble --temperature $T --hard-weight $hard_weight \
      --teacher-mode cache --topk $topk --cache-dir $exp/dnn/teacher_cache_T$T \
      $dnn_data $dnn_train --out $exp/dnn/distill_T$T
  done
  asrdistill choose-best --feats $data/fbank/dev --ali $exp/tri/ali_dev --json $exp/dnn/distill_best.json \
    $(for T in $temperatures; do echo $exp/dnn/distill_T$T; done)
  best=$(json_get $exp/dnn/distill_best.json best)
  T=$(json_get $exp/dnn/distill_best.json best_temperature)
  log "best on dev: $best; the same student with the teacher run on the fly, for comparison"
  asrdistill distill --teacher $exp/dnn/ensemble --temperature $T --hard-weight $hard_weight \
    --teacher-mode onthefly $dnn_data $dnn_train --out $exp/dnn/distill_T${T}_onthefly
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  T=$(json_get $exp/dnn/distill_best.json best_temperature)
  log "Stage 9: paper Table 5: $subset of the training data, hard targets (early stopping) vs soft targets (T=$T)"
  asrdistill train-dnn $dnn_data $dnn_train --subset $subset --schedule constant --early-stop 2 \
    --max-epochs $((epochs * 4)) --out $exp/dnn/hard_subset
  asrdistill distill --teacher $exp/dnn/ensemble --temperature $T --soft-weight 1 --hard-weight 0 \
    --teacher-mode onthefly $dnn_data $dnn_train --subset $subset --max-epochs $((epochs * 4)) \
    --out $exp/dnn/soft_subset
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  log "Stage 10: ${lm_order}-gram LM on the training transcripts; HCLG decoding graph"
  arpa_opt=; [ -n "$arpa" ] && arpa_opt="--arpa $arpa"
  if [ -f $data/lm/.done ]; then log "$data/lm is complete: skipping"; else
    asrdistill train-lm --text $data/train/text --lang $data/lang --out $data/lm --order $lm_order \
      --eval dev=$data/dev/text $arpa_opt
    touch $data/lm/.done
  fi
  run_unless_done $exp/tri/graph asrdistill make-graph --lang $data/lang --model $exp/tri/final.mdl --G $data/lm/G.fst --out $exp/tri/graph
fi

# decode_system NAME SCALES MODEL-OPTIONS...: sweep SCALES on dev, decode test at the best one
decode_system() {
  local name=$1 scales=$2; shift 2
  local dev=$exp/decode/${name}_dev test=$exp/decode/${name}_test
  if [ ! -f $dev/.done ]; then
    asrdistill decode --graph $exp/tri/graph --model $exp/tri/final.mdl --data $sweep_dir --out $dev \
      --acoustic-scales ${scales// /,} --beam $beam --max-active $max_active --nj $nj "${@/SPLIT/dev}"
    touch $dev/.done
  fi
  local best=$(json_get $dev/decode.json acoustic_scale)
  if [ ! -f $test/.done ]; then
    asrdistill decode --graph $exp/tri/graph --model $exp/tri/final.mdl --data $data/test --out $test \
      --acoustic-scale $best --beam $beam --max-active $max_active --nj $nj "${@/SPLIT/test}"
    touch $test/.done
  fi
  log "$name: acoustic scale $best (chosen on dev): $(head -1 $dev/wer) (dev); $(head -1 $test/wer) (test)"
}

if [ $stage -le 11 ] && [ $stop_stage -ge 11 ]; then
  log "Stage 11: decode dev (acoustic scale sweep) and test (best dev scale): GMM, baseline, ensemble, students"
  sweep_dir=$data/dev
  if [ "$sweep_utts" -gt 0 ]; then
    sweep_dir=$data/dev_sweep$sweep_utts
    [ -d $sweep_dir ] || asrdistill subset-data-dir $data/dev $sweep_dir --num-utts $sweep_utts
  fi
  best=$(json_get $exp/dnn/distill_best.json best)
  decode_system gmm_tri "$gmm_scales" --feats $data/fbank/SPLIT
  decode_system dnn_baseline "$dnn_scales" --dnn $exp/dnn/ensemble/member0/final.mdl --dnn-feats $data/fbank/SPLIT
  decode_system dnn_ensemble "$dnn_scales" --dnn $exp/dnn/ensemble --dnn-feats $data/fbank/SPLIT
  decode_system dnn_distilled "$dnn_scales" --dnn $best/final.mdl --dnn-feats $data/fbank/SPLIT
  decode_system dnn_hard_subset "$dnn_scales" --dnn $exp/dnn/hard_subset/final.mdl --dnn-feats $data/fbank/SPLIT
  decode_system dnn_soft_subset "$dnn_scales" --dnn $exp/dnn/soft_subset/final.mdl --dnn-feats $data/fbank/SPLIT
fi

if [ $stage -le 12 ] && [ $stop_stage -ge 12 ]; then
  log "Stage 12: results tables (paper Tables 1 and 5), learning curves"
  asrdistill make-results --data $data --exp $exp --out $results --command "$cmdline"
  cat $results/RESULTS.md
fi

if [ $stage -le 13 ] && [ $stop_stage -ge 13 ]; then
  best=$(json_get $exp/dnn/distill_best.json best)
  scale=$(json_get $exp/decode/dnn_distilled_dev/decode.json acoustic_scale)
  log "Stage 13: export the distilled model ($best) with its graph; transcribe test WAVs with it"
  [ -f $exp/export/manifest.json ] && log "$exp/export exists: not exported again" || \
  asrdistill export $best/final.mdl $exp/export --graph $exp/tri/graph --trans-model $exp/tri/final.mdl \
    --feats $data/fbank/train --acoustic-scale $scale --beam $beam --max-active $max_active \
    --metrics dev=$exp/decode/dnn_distilled_dev/wer.json --metrics test=$exp/decode/dnn_distilled_test/wer.json
  wavs=$(head -3 $data/test/wav.scp | awk '{print $2}')
  asrdistill transcribe $exp/export $wavs
fi
