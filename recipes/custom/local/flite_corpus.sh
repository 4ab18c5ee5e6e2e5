#!/usr/bin/env bash
# A worked example of bringing your own recordings: a small 8 kHz corpus spoken by the four voices of Debian's
# flite synthesizer (a different engine from the built-in corpus), written as you would have your own: a folder
# of WAV files and one transcript file. Needs `apt-get install flite sox`.
#
#   local/flite_corpus.sh TEXT OUT        TEXT: a Kaldi text file whose sentences are read (e.g. the built-in
#                                         corpus' corpus/data/train/text)
# Writes OUT/wav/VOICE-NNNN.wav (8 kHz, 16 bit) and OUT/transcripts.txt ('VOICE-NNNN word word ...'): 240
# different sentences, 60 read by each of the voices awb, rms, slt, kal16. Then, from the repo root:
#   asrdistill make-data-dir OUT/wav --transcripts OUT/transcripts.txt --speaker-pattern '^([a-z0-9]+)-' \
#       --split train=0.75 --split dev=0.13 --split test=0.12 --out OUT/data
#   recipes/custom/run.sh --train OUT/data/train --dev OUT/data/dev --test OUT/data/test
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,13p' "$0"; exit 1; }
text=$1; out=$2
command -v flite >/dev/null && command -v sox >/dev/null || { echo "$0: needs flite and sox" >&2; exit 1; }
mkdir -p "$out/wav"
cut -d' ' -f2- "$text" | awk 'NF >= 3' | sort -u | awk 'NR <= 240' > "$out/sentences.txt"
[ "$(wc -l < "$out/sentences.txt")" -eq 240 ] || { echo "$0: $text has fewer than 240 different sentences" >&2; exit 1; }
: > "$out/transcripts.txt.tmp"
n=0
while IFS= read -r sent; do
  voices=(awb rms slt kal16); voice=${voices[$((n / 60))]}; n=$((n + 1))
  utt=$(printf '%s-%04d' "$voice" "$n")
  if [ ! -s "$out/wav/$utt.wav" ]; then
    flite -voice "$voice" -t "$sent" -o "$out/wav/$utt.raw.wav"
    sox -q "$out/wav/$utt.raw.wav" -r 8000 -b 16 "$out/wav/$utt.tmp.wav" && rm "$out/wav/$utt.raw.wav"
    mv "$out/wav/$utt.tmp.wav" "$out/wav/$utt.wav"
  fi
  echo "$utt $sent" >> "$out/transcripts.txt.tmp"
done < "$out/sentences.txt"
mv "$out/transcripts.txt.tmp" "$out/transcripts.txt"
echo "$out: $(ls "$out/wav" | grep -c '\.wav$') WAV files in $out/wav, transcripts in $out/transcripts.txt"
