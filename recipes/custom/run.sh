#!/usr/bin/env bash
# Bring your own corpus: the stages of recipes/synth/run.sh from data validation onward (stage 1 on), on your
# Kaldi data dirs (e.g. made by `asrdistill make-data-dir`), optionally with your own dict dir and ARPA LM.
#
#   recipes/custom/run.sh --train DIR --dev DIR --test DIR [--dict DIR] [--arpa FILE] [any synth recipe option]
#
# Data dirs: wav.scp, text, utt2spk (+ spk2utt, optional segments, utt2dur); any one sample rate (8 or 16 kHz ...).
# Without --dict, `asrdistill prepare-dict` writes one (CMUdict, espeak-ng for the words it lacks) for the words of
# --dict-text (all: train+dev+test, a closed vocabulary; train: the training transcripts only), with
# --lexicon FILE (your pronunciations, used first) and --stress strip|keep.
# Sizes follow the data: `asrdistill suggest-sizes` picks --mono-subset, --mono-gauss, --tri-leaves, --tri-gauss,
# --preset, --epochs, --beam, --max-active from the training hours (written to EXP/sizes.json); any of them
# given here wins. Outputs go to this folder's data/, exp/ and RESULTS.md (override with --data, --exp, --results).
# Shell pipes in wav.scp ('sox ... |') need --allow-pipes true. See `recipes/synth/run.sh --help` for the rest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

# The command as typed, for RESULTS.md (tools/made_by.sh).
. "$repo/tools/made_by.sh"
made_by=$(made_by "$0" "$@")

abs_dir() { [ -d "$2" ] || { echo "$0: $1 $2: no such directory" >&2; exit 1; }; (cd "$2" && pwd); }
abs_file() { [ -f "$2" ] || { echo "$0: $1 $2: no such file" >&2; exit 1; }; echo "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"; }

train= dev= test= dict= arpa= lexicon= stress=strip dict_text=all allow_pipes=false
data=$here/data exp=$here/exp results=$here stage=1
pass=() sets=() user_sizes=()
while [ $# -gt 0 ]; do
  opt=$1
  if [[ $opt == --*=* ]]; then set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; opt=$1; fi
  case "$opt" in -h|--help) sed -n '2,14p' "$0"; exit 0 ;; esac
  [ $# -ge 2 ] || { echo "$0: option $opt needs a value" >&2; exit 1; }
  val=$2; shift 2
  case "$opt" in
    --train) train=$(abs_dir "$opt" "$val") ;;
    --dev) dev=$(abs_dir "$opt" "$val") ;;
    --test) test=$(abs_dir "$opt" "$val") ;;
    --dict) dict=$(abs_dir "$opt" "$val") ;;
    --arpa) arpa=$(abs_file "$opt" "$val") ;;
    --lexicon) lexicon=$(abs_file "$opt" "$val") ;;
    --stress) stress=$val ;;
    --dict-text) dict_text=$val ;;
    --data) data=$val ;;
    --exp) exp=$val ;;
    --results) results=$val ;;
    --stage) stage=$val ;;
    --allow-pipes) allow_pipes=$val; pass+=("$opt" "$val") ;;
    --made-by) made_by=$val ;;
    --mono-subset|--mono-gauss|--tri-leaves|--tri-gauss|--preset|--epochs|--beam|--max-active)
      name=${opt#--}; sets+=(--set "${name//-/_}=$val"); user_sizes+=("$opt" "$val") ;;
    *) pass+=("$opt" "$val") ;;
  esac
done
for v in train dev test; do
  [ -n "${!v}" ] || { echo "$0: --$v DIR is required (a Kaldi data dir; see asrdistill make-data-dir)" >&2; exit 1; }
done
case "$dict_text" in
  all) dict_texts=("$train/text" "$dev/text" "$test/text") ;;
  train) dict_texts=("$train/text") ;;
  *) echo "$0: --dict-text must be all or train, got '$dict_text'" >&2; exit 1 ;;
esac
mkdir -p "$data" "$exp"
data=$(cd "$data" && pwd); exp=$(cd "$exp" && pwd); mkdir -p "$results"; results=$(cd "$results" && pwd)
command -v asrdistill >/dev/null || { echo "asrdistill not on PATH: run 'make setup' and use .venv/bin" >&2; exit 1; }

if [ -z "$dict" ]; then
  dict=$data/local/dict_auto
  lex_opt=(); [ -n "$lexicon" ] && lex_opt=(--lexicon "$lexicon")
  echo "$0: no --dict: pronouncing the words of ${dict_texts[*]} into $dict"
  asrdistill prepare-dict --text "${dict_texts[@]}" --out "$dict" --stress "$stress" "${lex_opt[@]}"
fi

pipes=(); [ "$allow_pipes" = true ] && pipes=(--allow-pipes)
sizes=$(asrdistill suggest-sizes --train "$train" --json "$exp/sizes.json" --recipe-options "${pipes[@]}" \
  "${sets[@]}")
echo "$0: sizes (in $exp/sizes.json): $sizes"

arpa_opt=(); [ -n "$arpa" ] && arpa_opt=(--arpa "$arpa")
# shellcheck disable=SC2086  # $sizes is a list of --name value words without spaces
exec bash "$here/../synth/run.sh" --stage "$stage" --data "$data" --exp "$exp" --results "$results" \
  --train-dir "$train" --dev-dir "$dev" --test-dir "$test" --dict-dir "$dict" "${arpa_opt[@]}" \
  $sizes "${user_sizes[@]}" "${pass[@]}" --made-by "$made_by"
