#!/usr/bin/env bash
# Bring your own corpus: the stages of recipes/synth/run.sh from data validation onward (stage 1 on), on your
# Kaldi data dirs and dict dir, optionally with your own ARPA LM.
#
#   recipes/custom/run.sh --train DIR --dev DIR --test DIR --dict DIR [--arpa FILE] [any synth recipe option]
#
# Data dirs: wav.scp, text, utt2spk (+ spk2utt, optional segments); any one sample rate (8 or 16 kHz ...).
# Dict dir: lexicon.txt, silence_phones.txt, nonsilence_phones.txt, optional_silence.txt[, extra_questions.txt].
# Outputs go to this folder's data/, exp/ and RESULTS.md (override with --data, --exp, --results).
# Sizes scale with your data through the synth recipe's options, e.g. --tri-leaves, --tri-gauss, --preset,
# --members, --epochs; see `recipes/synth/run.sh --help`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
args=(--stage 1 --data "$here/data" --exp "$here/exp" --results "$here")
while [ $# -gt 0 ]; do
  case "$1" in
    --train|--dev|--test|--dict)
      [ $# -ge 2 ] || { echo "$0: $1 needs a directory" >&2; exit 1; }
      args+=("$1-dir" "$(cd "$2" && pwd)"); shift 2 ;;
    --arpa) args+=(--arpa "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done
exec bash "$here/../synth/run.sh" "${args[@]}"
