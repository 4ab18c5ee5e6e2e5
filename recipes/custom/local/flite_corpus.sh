#!/usr/bin/env bash
# A worked example of bringing your own recordings: a small 8 kHz corpus spoken by the four voices of Debian's
# flite synthesizer (a different engine from the built-in corpus), turned into Kaldi data dirs by hand, as you
# would with your own WAV files. Needs `apt-get install flite sox`.
#
#   local/flite_corpus.sh TEXT OUT        TEXT: a Kaldi text file whose sentences are read (e.g. the built-in
#                                         corpus' data/train/text; every word must be in your lexicon)
# Writes OUT/wav/*.wav (8 kHz) and the data dirs OUT/{train,dev,test}: each of the 4 voices (awb, rms, slt,
# kal16) reads 45 train, 8 dev and 7 test sentences, all different (flite has too few voices for
# speaker-disjoint splits; dev/test sentences are unseen in train).
set -euo pipefail
[ $# -eq 2 ] || { sed -n '2,9p' "$0"; exit 1; }
text=$1; out=$2
command -v flite >/dev/null && command -v sox >/dev/null || { echo "$0: needs flite and sox" >&2; exit 1; }
mkdir -p "$out/wav"
cut -d' ' -f2- "$text" | awk 'NF >= 3' | sort -u | awk 'NR <= 240' > "$out/sentences.txt"
make_split() {  # make_split SPLIT FIRST-LINE COUNT: each voice reads its own COUNT sentences from FIRST-LINE on
  local split=$1 first=$2 count=$3 dir="$out/$1" voice v=0
  mkdir -p "$dir"; : > "$dir/wav.scp.u"; : > "$dir/text.u"; : > "$dir/utt2spk.u"
  for voice in awb rms slt kal16; do
    local i=0 from=$((first + v * count)); v=$((v + 1))
    while IFS= read -r sent; do
      i=$((i + 1)); local utt; utt=$(printf '%s-%s%03d' "$voice" "$split" "$i")
      flite -voice "$voice" -t "$sent" -o "$out/wav/$utt.raw.wav"
      sox -q "$out/wav/$utt.raw.wav" -r 8000 -b 16 "$out/wav/$utt.wav" && rm "$out/wav/$utt.raw.wav"
      echo "$utt $(cd "$out/wav" && pwd)/$utt.wav" >> "$dir/wav.scp.u"
      echo "$utt $sent" >> "$dir/text.u"; echo "$utt $voice" >> "$dir/utt2spk.u"
    done < <(sed -n "${from},$((from + count - 1))p" "$out/sentences.txt")
  done
  for f in wav.scp text utt2spk; do LC_ALL=C sort "$dir/$f.u" > "$dir/$f"; rm "$dir/$f.u"; done
  awk '{u[$2] = u[$2] " " $1} END {for (s in u) print s u[s]}' "$dir/utt2spk" | LC_ALL=C sort > "$dir/spk2utt"
}
make_split train 1 45
make_split dev 181 8
make_split test 213 7
echo "$out: $(wc -l < "$out/train/text") train, $(wc -l < "$out/dev/text") dev, $(wc -l < "$out/test/text") test utterances"
