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
hours=1.5          # total corpus size in hours (train/dev/test split by speaker; dev and test are fixed by speakers x utts)
num_speakers=40    # synthetic speakers: 16 train / 12 dev / 12 test (20 utterances each); the 12 held-out voices are
                   # unheard in train, each spoken by one dev and one test speaker
generated_test_speakers=144  # more test speakers, each with a new adult voice drawn at random (on top of --hours):
                   # 12 voices cannot measure a 1-point WER difference (README, "Measured")
generated_utts=10  # sentences each generated test speaker reads, at most (more speakers, fewer utterances each)
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
scheduler=         # Dask scheduler address (host:port) for the per-utterance stages (docs/cluster.md); empty: local
# GMM-HMM systems (stages 3-6); auto: chosen from the training hours by `asrdistill suggest-sizes` (EXP/sizes.json)
mono_subset=auto   # monophone training on the N shortest utterances (Kaldi: train_2kshort); 0 = all
mono_gauss=auto    # total Gaussians of the monophone system
mono_iters=40      # EM iterations of the monophone system
tri_leaves=auto    # decision-tree leaves of the triphone system (tied states before merging)
tri_gauss=auto     # total Gaussians of the triphone system
gmm_iters=35       # EM iterations of the triphone system
# DNNs, ensemble, distillation (stages 7-9)
preset=small       # DNN size: tiny 2x128, small 3x384, medium 4x512, paper 8x2560 (the paper's; GPU)
hidden_dim=        # hidden-layer width of every DNN (members, students, Table-5 pair); empty: the preset's
members=4          # ensemble size (paper: 10); member 0 is the baseline, the members' mean the reference
epochs=15          # maximum epochs of the full-data DNNs; newbob halves the lr and stops once dev stops improving
dev_criterion=error  # what newbob compares on dev: error (frame error rate) or ce (cross-entropy, Kaldi nnet1)
temperatures="2 5"  # full-data students' temperatures, the best on dev is kept (paper: 1, 2, 5, 10; on both
                         # seeds' dev sets T=1 and T=10 came last, README "Measured")
hard_weight=0.5    # weight of the hard-target term relative to the soft term (paper: 0.5)
student_optimizer=adam  # optimizer of the soft-target models (students, soft 3%); the hard-target ones use sgd
student_lr=0.001   # its initial learning rate (newbob halves it as the members'); both chosen on dev, README
student_keep_lr=6  # the full-data students keep that lr, rejecting nothing, for their first N epochs (Kaldi's
                   # keep_lr_iters): chosen on the three seeds' dev sets, README "Measured"
cache_encoding=u8-sqrt  # teacher cache: every member's logits, u8-sqrt (1 byte per pdf) or f16; one ensemble pass
subset=0.03        # paper Table 5: fraction of the training data
subset_temperatures="5 10"  # the soft-3% model's temperatures, the best on dev is kept (T=1 and 2 came last)
subset_epochs=40   # maximum epochs of the Table-5 pair (hard and soft targets: same budget, same stopping rule)
subset_batch=64    # minibatch of the Table-5 pair (3% of the demo's frames is ~50 minibatches of 256 an epoch)
subset_start_halving_impr=0.002  # the pair's newbob halves once dev improves by less than this (members: 0.01)
parallel=2         # DNNs trained at a time (members, students, the Table-5 pair)
device=auto        # DNN device: auto = cuda when present, else cpu
precision=auto     # DNN training passes: auto = bf16 where native (CUDA; CPUs with AVX512-BF16 or AMX, ~1.5x
                   # faster there), else fp32; fp32 or bf16 to force one (weights and optimizer stay fp32)
threads=2          # CPU threads of the DNN stages, shared by the $parallel jobs
# LM, decoding (stages 10-11)
lm_order=3         # word n-gram order (modified Kneser-Ney)
lmwts=5-20         # LM weights (acoustic scale 1/LMWT) swept on all of dev, from one lattice decode per system
word_ins_penalties=0,0.5,1.0  # word insertion penalties swept with them (as Kaldi's local/score.sh)
sweep_beam=8       # beam of the dev lattice decodes
lattice_beam=5     # lattice beam of the dev lattice decodes
beam=10            # beam of the test decodes (at the LM weight and penalty chosen on dev)
max_active=2000    # decoder max active states (test decodes)

cmdline="recipes/synth/run.sh${*:+ $*}"   # recorded in RESULTS.md
. "$(dirname "$0")/../../tools/parse_options.sh"
[ -n "$made_by" ] && cmdline=$made_by
pipes=; $allow_pipes && pipes=--allow-pipes
sched=; [ -n "$scheduler" ] && sched="--scheduler $scheduler"
job_threads=$((threads / parallel > 0 ? threads / parallel : 1))

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
    --snr-db $snr_low $snr_high --generated-test-speakers $generated_test_speakers \
    --generated-utts-per-speaker $generated_utts
  stage_end 0
fi

if run_stage 1; then
  stage_begin
  log "Stage 1: validate the data dirs and the dict dir, copy them to $data"
  asrdistill prepare-data --dict $dict_dir --out $data --split train=$train_dir --split dev=$dev_dir --split test=$test_dir $pipes
  stage_end 1
fi

# Sizes left at auto come from the training data (hours, speakers) by the rule of asrdistill.sizes, recorded in
# $exp/sizes.json with the reasons; every size given as an option is kept.
auto_sizes=()
for v in mono_subset mono_gauss tri_leaves tri_gauss; do [ "${!v}" = auto ] && auto_sizes+=($v); done
if [ ${#auto_sizes[@]} -gt 0 ] && [ "$stop_stage" -ge 4 ]; then
  set_sizes=(--set preset=$preset --set epochs=$epochs --set beam=$beam --set max_active=$max_active)
  for v in mono_subset mono_gauss tri_leaves tri_gauss; do [ "${!v}" = auto ] || set_sizes+=(--set $v=${!v}); done
  mkdir -p $exp
  chosen=$(asrdistill suggest-sizes --train $train_dir --json $exp/sizes.json --recipe-options "${set_sizes[@]}" $pipes)
  read -ra words <<< "$chosen"
  for ((i = 0; i + 1 < ${#words[@]}; i += 2)); do
    v=${words[i]#--}; v=${v//-/_}
    case " ${auto_sizes[*]} " in *" $v "*) printf -v "$v" '%s' "${words[i + 1]}" ;; esac
  done
  log "sizes from the training data ($exp/sizes.json): mono_subset=$mono_subset mono_gauss=$mono_gauss" \
    "tri_leaves=$tri_leaves tri_gauss=$tri_gauss"
fi

if run_stage 2; then
  stage_begin
  log "Stage 2: 40-dim fbank + per-speaker CMVN for train, dev, test"
  for split in train dev test; do
    data_var=data_$split; feats_var=feats_$split
    asrdistill compute-feats ${!data_var} ${!feats_var} --nj $nj $pipes $sched
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
  mono_what="the $mono_subset shortest utterances"; [ "$mono_subset" = 0 ] && mono_what="all utterances"
  log "Stage 4: monophone GMM-HMM (flat start, $mono_what), alignments of train and dev"
  asrdistill train-mono $data_train $feats_train $lang $mono --num-gauss $mono_gauss --num-iters $mono_iters \
    --nj $nj --subset $mono_subset $sched
  asrdistill align $data_train $feats_train $lang $mono $mono_ali_train --nj $nj $sched
  asrdistill align $data_dev $feats_dev $lang $mono $mono_ali_dev --nj $nj $sched
  stage_end 4
fi

if run_stage 5; then
  stage_begin
  log "Stage 5: decision tree ($tri_leaves leaves) + triphone GMM-HMM ($tri_gauss Gaussians)"
  asrdistill train-tri $data_train $feats_train $lang $mono_ali_train $tri \
    --num-leaves $tri_leaves --num-gauss $tri_gauss --num-iters $gmm_iters --nj $nj $sched
  asrdistill manifest add $exp gmm_tri $tri/final.mdl --kind gmm
  stage_end 5
fi

if run_stage 6; then
  stage_begin
  log "Stage 6: triphone alignments of train, dev and test (DNN targets); boundary accuracy vs ground truth"
  for split in train dev test; do
    data_var=data_$split; feats_var=feats_$split; ali_var=tri_ali_$split
    asrdistill align ${!data_var} ${!feats_var} $lang $tri ${!ali_var} --nj $nj $sched
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
dnn_train="--preset $preset --dev-criterion $dev_criterion --device $device --precision $precision"
if [ -n "$hidden_dim" ]; then dnn_train+=" --hidden-dim $hidden_dim"; fi
soft_train="--optimizer $student_optimizer --lr $student_lr"
# every temperature of both sweeps, sorted: the teacher cache is checked against the exact teacher at each
check_temperatures=$(printf '%s\n' $temperatures $subset_temperatures | sort -gu | paste -sd,)

# Background jobs, $parallel at a time: queue_job LOG COMMAND... starts a job (its pid in $job_pid) once fewer
# than $parallel run; wait_for PID... / wait_jobs wait for those / all. A failed job stops the recipe (the others
# are killed; their dirs resume on the next run) and its log's tail is shown.
if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] < 501)); then
  echo "$0: needs bash 5.1 or newer (wait -n -p); this is $BASH_VERSION" >&2; exit 1
fi
declare -A job_log=()
reap_job() {  # wait for whichever job ends first
  local pid status=0
  wait -n -p pid "${!job_log[@]}" || status=$?
  local logf=${job_log[$pid]}; unset "job_log[$pid]"
  if [ $status -ne 0 ]; then
    [ ${#job_log[@]} -eq 0 ] || kill "${!job_log[@]}" 2>/dev/null || true
    echo "$0: a job failed; the end of $logf:" >&2; tail -n 20 "$logf" >&2; exit 1
  fi
  grep -v '|' "$logf" | tail -n 1 || true
}
queue_job() {
  local logf=$1; shift
  while [ ${#job_log[@]} -ge "$parallel" ]; do reap_job; done
  mkdir -p "$(dirname "$logf")"
  "$@" > "$logf" 2>&1 &
  job_pid=$!; job_log[$job_pid]=$logf
}
wait_for() { local p; for p in "$@"; do while [ -n "${job_log[$p]:-}" ]; do reap_job; done; done; }
wait_jobs() { while [ ${#job_log[@]} -gt 0 ]; do reap_job; done; }

if run_stage 7; then
  stage_begin
  log "Stage 7: $members DNNs ($preset) differing only in their seed, $parallel at a time: baseline and ensemble"
  asrdistill train-ensemble --members $members --parallel $parallel --threads $job_threads $dnn_data $dnn_train \
    --max-epochs $epochs --out $ensemble
  asrdistill manifest add $exp ensemble $ensemble --kind ensemble
  for i in $(seq 0 $((members - 1))); do
    asrdistill manifest add $exp member$i $(member_dir $i)/final.mdl --kind dnn
  done
  asrdistill manifest alias $exp baseline member0
  stage_end 7
fi

# Stage 9's jobs (paper Table 5) need only the teacher cache: when stages 8 and 9 both run, they are queued
# behind the students and take each core a student leaves (stage 9's time is then what it adds after stage 8).
table5_queued=false
queue_table5_jobs() {
  log "Stage 9: paper Table 5: $subset of the training data, hard targets vs soft targets (T in {$subset_temperatures}," \
    "the best on dev is kept; priors from the full-data alignments; $student_optimizer), all newbob on dev" \
    "$dev_criterion (halving below $subset_start_halving_impr) with at most $subset_epochs epochs, minibatch $subset_batch"
  queue_job $exp/log/hard_subset.log asrdistill train-dnn $dnn_data $dnn_train --subset $subset \
    --batch-size $subset_batch --max-epochs $subset_epochs \
    --start-halving-impr $subset_start_halving_impr --threads $job_threads --out $hard_subset
  for T in $subset_temperatures; do
    queue_job $exp/log/soft_subset_T$T.log asrdistill distill --teacher $ensemble --temperature $T --soft-weight 1 \
      --hard-weight 0 --teacher-mode cache --cache-dir $teacher_cache --priors counts --priors-ali $tri_ali_train \
      $dnn_data $dnn_train $soft_train --subset $subset --batch-size $subset_batch --max-epochs $subset_epochs \
      --start-halving-impr $subset_start_halving_impr --threads $job_threads --out $(soft_subset_dir $T)
  done
  table5_queued=true
}

if run_stage 8; then
  stage_begin
  log "Stage 8: one pass of the ensemble over the training frames ($cache_encoding teacher cache), then students" \
    "at T in {$temperatures} ($student_optimizer, $parallel at a time, logs in $exp/log); the best T on dev is kept"
  asrdistill build-teacher-cache --teacher $ensemble --feats $feats_train --ali $tri_ali_train --out $teacher_cache \
    --encoding $cache_encoding --check-temperatures $check_temperatures --threads $threads --device $device
  asrdistill manifest add $exp teacher_cache $teacher_cache --kind cache
  names=() students=()
  for T in $temperatures; do
    queue_job $exp/log/distill_T$T.log asrdistill distill --teacher $ensemble --temperature $T \
      --hard-weight $hard_weight --teacher-mode cache --cache-dir $teacher_cache $dnn_data $dnn_train $soft_train \
      --max-epochs $epochs --keep-lr-epochs $student_keep_lr --threads $job_threads --out $(student_dir $T)
    names+=(student_T$T) students+=($job_pid)
  done
  run_stage 9 && queue_table5_jobs
  wait_for "${students[@]}"
  for T in $temperatures; do
    asrdistill manifest add $exp student_T$T $(student_dir $T)/final.mdl --kind student
  done
  asrdistill choose-best --exp $exp --as distilled "${names[@]}"
  stage_end 8
fi

if run_stage 9; then
  stage_begin
  $table5_queued || queue_table5_jobs
  wait_jobs
  asrdistill manifest add $exp hard_subset $hard_subset/final.mdl --kind dnn
  names=()
  for T in $subset_temperatures; do
    asrdistill manifest add $exp soft_subset_T$T $(soft_subset_dir $T)/final.mdl --kind student
    names+=(soft_subset_T$T)
  done
  asrdistill choose-best --exp $exp --as soft_subset "${names[@]}"
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

# decode_system NAME [FROM]: one lattice decode of all of dev, rescored over the LM weights x penalties (the grid
# grows while its best point is on an edge); test decoded at the point chosen on dev. With FROM, dev and test are
# decoded at the point chosen on dev for system FROM instead (dev not decoded). The decode dirs are registered.
decode_system() {
  local name=$1 from=${2:-} kind src scale wip
  local dev=$(decode_dir $name dev) test=$(decode_dir $name test)
  kind=$(asrdistill manifest get $exp $name kind)
  case $kind in
    gmm) src=(--feats) ;;
    ensemble) src=(--dnn $(asrdistill manifest get $exp $name dir) --dnn-feats) ;;
    *) src=(--dnn $(asrdistill manifest get $exp $name files.model) --dnn-feats) ;;
  esac
  local dev_wer="not decoded"
  if [ -z "$from" ]; then
    asrdistill decode --graph $graph --model $tri/final.mdl --data $data_dev --out $dev --lmwts $lmwts \
      --word-ins-penalties $word_ins_penalties --beam $sweep_beam --lattice-beam $lattice_beam --nj $nj $sched \
      "${src[@]}" $feats_dev
    asrdistill manifest add-decode $exp $name dev $dev
    dev_wer=$(head -1 $dev/wer)
  fi
  scale=$(asrdistill manifest get $exp "decode:${from:-$name}:dev" info.acoustic_scale)
  wip=$(asrdistill manifest get $exp "decode:${from:-$name}:dev" info.word_ins_penalty)
  asrdistill decode --graph $graph --model $tri/final.mdl --data $data_test --out $test --acoustic-scale $scale \
    --word-ins-penalty $wip --beam $beam --max-active $max_active --nj $nj $sched "${src[@]}" $feats_test
  asrdistill manifest add-decode $exp $name test $test
  log "$name: acoustic scale $scale, word insertion penalty $wip (chosen on dev${from:+ for $from}):" \
    "$dev_wer (dev); $(head -1 $test/wer) (test)"
}

if run_stage 11; then
  stage_begin
  log "Stage 11: decode all of dev (LM weight $lmwts x penalty $word_ins_penalties from lattices) and test (the" \
    "dev choice): GMM, baseline, ensemble, distilled; the Table-5 pair at the baseline's dev choice"
  for name in gmm_tri baseline ensemble distilled; do
    decode_system $name
  done
  # The Table-5 pair: test only, at the baseline's dev choice. Searching their near-flat posteriors costs
  # minutes per set (3 min for one dev lattice decode), for test WERs that Table 5 reports and nothing chooses by.
  for name in hard_subset soft_subset; do
    decode_system $name baseline
  done
  stage_end 11
fi

if run_stage 12; then
  stage_begin
  log "Stage 12: results tables (paper Tables 1 and 5) with speaker-level intervals, learning curves"
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
