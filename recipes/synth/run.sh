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
num_speakers=28    # synthetic speakers (16 train / 6 dev / 6 test at the default; each held-out voice unheard in train)
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
allow_pipes=false  # true: wav.scp entries may be shell commands ('sox ... |'), as in many Kaldi data dirs
made_by=           # the command line to record in RESULTS.md (wrappers pass what the user typed)
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
[ -n "$made_by" ] && cmdline=$made_by
pipes=; $allow_pipes && pipes=--allow-pipes

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%d %H:%M:%S') ($fname:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
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

# Every path of the experiment comes from the library's layout (asrdistill.experiment.layout).
eval "$(asrdistill layout --data "$data" --exp "$exp" --shell)"

# stage_begin N / stage_end N: the stage's wall time goes to the systems manifest (results.json reports it)
stage_begin() { stage_t0=$SECONDS; }
stage_end() { mkdir -p "$exp"; asrdistill manifest time "$exp" "$1" $((SECONDS - stage_t0)); }
run_stage() { [ "$stage" -le "$1" ] && [ "$stop_stage" -ge "$1" ]; }

if run_stage 0 && ! $own_corpus; then
  stage_begin
  log "Stage 0: generate the synthetic corpus ($hours h, $num_speakers speakers) in $corpus"
  asrdistill make-synth $corpus --hours $hours --num-speakers $num_speakers --seed $seed --nj $nj \
    --snr-db $snr_low $snr_high
  stage_end 0
fi

if run_stage 1; then
  stage_begin
  log "Stage 1: validate the data dirs and the dict dir, copy them to $data"
  asrdistill prepare-data --dict $dict_dir --out $data --split train=$train_dir --split dev=$dev_dir --split test=$test_dir $pipes
  stage_end 1
fi

if run_stage 2; then
  stage_begin
  log "Stage 2: 40-dim fbank + per-speaker CMVN for train, dev, test"
  for split in train dev test; do
    data_var=data_$split; feats_var=feats_$split
    asrdistill compute-feats ${!data_var} ${!feats_var} --nj $nj $pipes
  done
  asrdistill corpus-summary --data $data --feats $data/fbank --corpus $corpus --json $corpus_summary \
    | tee ${corpus_summary%.json}.txt
  stage_end 2
fi

if run_stage 3; then
  stage_begin
  log "Stage 3: lang dir (phones, words, topology, L.fst) from $local_dict"
  asrdistill prepare-lang $local_dict $lang
  stage_end 3
fi

if run_stage 4; then
  stage_begin
  log "Stage 4: monophone GMM-HMM (flat start, $mono_subset shortest utterances), alignments of train and dev"
  asrdistill train-mono $data_train $feats_train $lang $mono --num-gauss $mono_gauss --num-iters $mono_iters \
    --nj $nj --subset $mono_subset
  asrdistill align $data_train $feats_train $lang $mono $mono_ali_train --nj $nj
  asrdistill align $data_dev $feats_dev $lang $mono $mono_ali_dev --nj $nj
  stage_end 4
fi

if run_stage 5; then
  stage_begin
  log "Stage 5: decision tree ($tri_leaves leaves) + triphone GMM-HMM ($tri_gauss Gaussians)"
  asrdistill train-tri $data_train $feats_train $lang $mono_ali_train $tri \
    --num-leaves $tri_leaves --num-gauss $tri_gauss --num-iters $gmm_iters --nj $nj
  asrdistill manifest add $exp gmm_tri $tri/final.mdl --kind gmm
  stage_end 5
fi

if run_stage 6; then
  stage_begin
  log "Stage 6: triphone alignments of train, dev and test (DNN targets); boundary accuracy vs ground truth"
  for split in train dev test; do
    data_var=data_$split; feats_var=feats_$split; ali_var=tri_ali_$split
    asrdistill align ${!data_var} ${!feats_var} $lang $tri ${!ali_var} --nj $nj
    asrdistill manifest add-set $exp $split --data ${!data_var} --feats ${!feats_var} --ali ${!ali_var}
  done
  if [ -f $data_train/phones.ctm ] && [ -f $data_dev/phones.ctm ]; then
    asrdistill score-boundaries $mono_ali_train $mono_ali_dev $tri_ali_train $tri_ali_dev \
      --json $boundaries --markdown ${boundaries%.json}.md
    cat ${boundaries%.json}.md
  else
    log "no ground-truth phones.ctm in $data_train and $data_dev: boundary accuracy not measured"
  fi
  stage_end 6
fi

dnn_data="--feats $feats_train --ali $tri_ali_train --dev-feats $feats_dev --dev-ali $tri_ali_dev"
dnn_train="--preset $preset --max-epochs $epochs --threads $threads --device $device"

if run_stage 7; then
  stage_begin
  log "Stage 7: $members DNNs ($preset) differing only in their seed: the baseline (member 0) and the ensemble"
  asrdistill train-ensemble --members $members $dnn_data $dnn_train --out $ensemble
  asrdistill manifest add $exp ensemble $ensemble --kind ensemble
  for i in $(seq 0 $((members - 1))); do
    asrdistill manifest add $exp member$i $(member_dir $i)/final.mdl --kind dnn
  done
  asrdistill manifest alias $exp baseline member0
  stage_end 7
fi

if run_stage 8; then
  stage_begin
  log "Stage 8: distill the ensemble into one DNN at T in {$temperatures} (teacher cached as top-$topk); best T on dev"
  names=()
  for T in $temperatures; do
    student=$(student_dir $T)
    asrdistill distill --teacher $ensemble --temperature $T --hard-weight $hard_weight \
      --teacher-mode cache --topk $topk --cache-dir ${teacher_cache}_T$T \
      $dnn_data $dnn_train --out $student
    asrdistill manifest add $exp student_T$T $student/final.mdl --kind student
    names+=(student_T$T)
  done
  asrdistill choose-best --exp $exp --as distilled "${names[@]}"
  T=$(asrdistill manifest get $exp distilled options.temperature)
  log "best on dev: T=$T; the same student with the teacher run on the fly, for comparison"
  asrdistill distill --teacher $ensemble --temperature $T --hard-weight $hard_weight \
    --teacher-mode onthefly $dnn_data $dnn_train --out $(student_dir $T)_onthefly
  asrdistill manifest add $exp student_T${T}_onthefly $(student_dir $T)_onthefly/final.mdl --kind student
  stage_end 8
fi

if run_stage 9; then
  stage_begin
  T=$(asrdistill manifest get $exp distilled options.temperature)
  log "Stage 9: paper Table 5: $subset of the training data, hard targets (early stopping) vs soft targets (T=$T)"
  asrdistill train-dnn $dnn_data $dnn_train --subset $subset --schedule constant --early-stop 2 \
    --max-epochs $((epochs * 4)) --out $hard_subset
  asrdistill manifest add $exp hard_subset $hard_subset/final.mdl --kind dnn
  asrdistill distill --teacher $ensemble --temperature $T --soft-weight 1 --hard-weight 0 \
    --teacher-mode onthefly $dnn_data $dnn_train --subset $subset --max-epochs $((epochs * 4)) \
    --out $soft_subset
  asrdistill manifest add $exp soft_subset $soft_subset/final.mdl --kind student
  stage_end 9
fi

if run_stage 10; then
  stage_begin
  log "Stage 10: ${lm_order}-gram LM on the training transcripts; HCLG decoding graph"
  arpa_opt=; [ -n "$arpa" ] && arpa_opt="--arpa $arpa"
  asrdistill train-lm --text $data_train/text --lang $lang --out $lm --order $lm_order \
    --eval dev=$data_dev/text $arpa_opt
  asrdistill make-graph --lang $lang --model $tri/final.mdl --G $lm/G.fst --out $graph
  stage_end 10
fi

# decode_system NAME SCALES: sweep SCALES on dev, decode test at the best one; register both decode dirs
decode_system() {
  local name=$1 scales=$2 kind src
  local dev=$(decode_dir $name dev) test=$(decode_dir $name test)
  kind=$(asrdistill manifest get $exp $name kind)
  case $kind in
    gmm) src=(--feats) ;;
    ensemble) src=(--dnn $(asrdistill manifest get $exp $name dir) --dnn-feats) ;;
    *) src=(--dnn $(asrdistill manifest get $exp $name files.model) --dnn-feats) ;;
  esac
  asrdistill decode --graph $graph --model $tri/final.mdl --data $sweep_dir --out $dev \
    --acoustic-scales ${scales// /,} --beam $beam --max-active $max_active --nj $nj "${src[@]}" $feats_dev
  asrdistill manifest add-decode $exp $name dev $dev
  local best=$(asrdistill manifest get $exp "decode:$name:dev" info.acoustic_scale)
  asrdistill decode --graph $graph --model $tri/final.mdl --data $data_test --out $test \
    --acoustic-scale $best --beam $beam --max-active $max_active --nj $nj "${src[@]}" $feats_test
  asrdistill manifest add-decode $exp $name test $test
  log "$name: acoustic scale $best (chosen on dev): $(head -1 $dev/wer) (dev); $(head -1 $test/wer) (test)"
}

if run_stage 11; then
  stage_begin
  log "Stage 11: decode dev (acoustic scale sweep) and test (best dev scale): GMM, baseline, ensemble, students"
  sweep_dir=$data_dev
  if [ "$sweep_utts" -gt 0 ]; then
    sweep_dir=${data_dev}_sweep$sweep_utts
    asrdistill subset-data-dir $data_dev $sweep_dir --num-utts $sweep_utts $pipes
  fi
  decode_system gmm_tri "$gmm_scales"
  for name in baseline ensemble distilled hard_subset soft_subset; do
    decode_system $name "$dnn_scales"
  done
  stage_end 11
fi

if run_stage 12; then
  stage_begin
  log "Stage 12: results tables (paper Tables 1 and 5), learning curves"
  asrdistill make-results --exp $exp --out $results --command "$cmdline"
  cat $results/RESULTS.md
  stage_end 12
fi

if run_stage 13; then
  stage_begin
  best=$(asrdistill manifest get $exp distilled files.model)
  scale=$(asrdistill manifest get $exp decode:distilled:dev info.acoustic_scale)
  log "Stage 13: export the distilled model ($best) with its graph; transcribe test WAVs with it"
  asrdistill export $best $export_dir --graph $graph --trans-model $tri/final.mdl \
    --feats $feats_train --acoustic-scale $scale --beam $beam --max-active $max_active \
    --metrics dev=$(decode_dir distilled dev)/wer.json --metrics test=$(decode_dir distilled test)/wer.json
  wavs=$(head -3 $data_test/wav.scp | awk '{print $2}')
  asrdistill transcribe $export_dir $wavs
  stage_end 13
fi
