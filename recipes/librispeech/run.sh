#!/usr/bin/env bash
# LibriSpeech on your disk: the stages of recipes/synth/run.sh on a local copy of the corpus. Nothing is
# downloaded: DIR must hold the extracted subsets (DIR/train-clean-100/READER/CHAPTER/*.flac + *.trans.txt, ...).
#
#   recipes/librispeech/run.sh --corpus DIR [--train "train-clean-100 train-clean-360"] [--dev dev-clean]
#       [--test test-clean] [--lexicon FILE] [--arpa FILE] [--speaker chapter|reader] [any synth recipe option]
#
# Stage 0 (data): one Kaldi data dir per split with asrdistill make-data-dir (FLAC read directly; --train: every
# train-* subset present by default, pooled); speakers are reader-chapter as in Kaldi's librispeech/s5
# (--speaker reader: the reader). Then recipes/custom/run.sh: the lexicon from prepare-dict (LibriSpeech's own
# librispeech-lexicon.txt first when given with --lexicon or found in DIR), sizes from the training hours
# (EXP/sizes.json), an LM on the training transcripts unless --arpa FILE (e.g. LibriSpeech's 3-gram.arpa,
# gunzipped), and stages 1-13. Outputs go to this folder's data/, exp/ and RESULTS.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# The command as typed, for RESULTS.md (tools/made_by.sh).
. "$repo/tools/made_by.sh"
made_by=$(made_by "$0" "$@")

corpus= train= dev=dev-clean test=test-clean lexicon= speaker=chapter
data=$here/data exp=$here/exp results=$here stage=0 stop_stage=100
pass=()
while [ $# -gt 0 ]; do
  opt=$1
  if [[ $opt == --*=* ]]; then set -- "${opt%%=*}" "${opt#*=}" "${@:2}"; opt=$1; fi
  case "$opt" in -h|--help) sed -n '2,13p' "$0"; exit 0 ;; esac
  [ $# -ge 2 ] || { echo "$0: option $opt needs a value" >&2; exit 1; }
  val=$2; shift 2
  case "$opt" in
    --corpus) corpus=$val ;;
    --train) train=$val ;;
    --dev) dev=$val ;;
    --test) test=$val ;;
    --lexicon) lexicon=$val ;;
    --speaker) speaker=$val ;;
    --data) data=$val ;;
    --exp) exp=$val ;;
    --results) results=$val ;;
    --stage) stage=$val ;;
    --stop-stage) stop_stage=$val ;;
    *) pass+=("$opt" "$val") ;;
  esac
done
[ -n "$corpus" ] || { echo "$0: --corpus DIR is required (a local copy of LibriSpeech; nothing is downloaded)" >&2; exit 1; }
[ -d "$corpus" ] || { echo "$0: --corpus $corpus: no such directory" >&2; exit 1; }
corpus=$(cd "$corpus" && pwd)
case "$speaker" in
  chapter) pattern='^([0-9]+-[0-9]+)-' ;;
  reader) pattern='^([0-9]+)-' ;;
  *) echo "$0: --speaker must be chapter or reader, got '$speaker'" >&2; exit 1 ;;
esac
if [ -z "$train" ]; then
  train=$(cd "$corpus" && ls -d train-* 2>/dev/null | sort | tr '\n' ' ' || true)
  [ -n "$train" ] || { echo "$0: no train-* subset in $corpus (extract e.g. train-clean-100 there; nothing is downloaded)" >&2; exit 1; }
fi
for sub in $train $dev $test; do
  [ -d "$corpus/$sub" ] || { echo "$0: $corpus/$sub not found: subsets present: $(cd "$corpus" && ls -d */ 2>/dev/null | tr -d / | tr '\n' ' ')" >&2; exit 1; }
done
if [ -z "$lexicon" ] && [ -f "$corpus/librispeech-lexicon.txt" ]; then lexicon=$corpus/librispeech-lexicon.txt; fi
command -v asrdistill >/dev/null || { echo "asrdistill not on PATH: run 'make setup' and use .venv/bin" >&2; exit 1; }
mkdir -p "$data"; data=$(cd "$data" && pwd)
src=$data/librispeech

if [ "$stage" -le 0 ] && [ "$stop_stage" -ge 0 ]; then
  echo "$0: stage 0: data dirs of $corpus: train = $train, dev = $dev, test = $test (speakers: $speaker)"
  for split in train dev test; do
    dirs=(); for sub in ${!split}; do dirs+=("$corpus/$sub"); done
    asrdistill make-data-dir "${dirs[@]}" --transcript-glob '*.trans.txt' --speaker-pattern "$pattern" \
      --out "$src/$split"
  done
fi
[ "$stop_stage" -ge 1 ] || exit 0

lex_opt=(); [ -n "$lexicon" ] && lex_opt=(--lexicon "$lexicon")
[ "$stage" -ge 1 ] || stage=1
exec bash "$here/../custom/run.sh" --train "$src/train" --dev "$src/dev" --test "$src/test" "${lex_opt[@]}" \
  --data "$data" --exp "$exp" --results "$results" --stage "$stage" --stop-stage "$stop_stage" \
  "${pass[@]}" --made-by "$made_by"
