"""``asrdistill validate-data-dir DIR``: check a Kaldi data dir and print a summary."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate-data-dir", help="validate a Kaldi data dir (sorting, consistency, audio)",
                       description="Check wav.scp, text, utt2spk, spk2utt and optional segments by Kaldi's "
                                   "rules; errors name the file, the line and the utterance.")
    p.add_argument("data_dir", help="Kaldi data dir")
    p.add_argument("--allow-pipes", action="store_true",
                   help="accept wav.scp entries that are shell commands ('cmd |'); off by default")
    p.add_argument("--no-text", action="store_true", help="transcripts are optional")
    p.add_argument("--no-audio-check", action="store_true", help="do not check that audio files exist")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.data.kaldi_dir import read_data_dir

    dd = read_data_dir(args.data_dir, allow_pipes=args.allow_pipes, require_text=not args.no_text,
                       check_audio_exists=not args.no_audio_check)
    words = sum(len(t.split()) for t in (dd.text or {}).values())
    print(f"{dd.path}: OK: {len(dd)} utterances, {len(dd.spk2utt)} speakers, {len(dd.wav_scp)} recordings"
          + (f", {words} words" if dd.text is not None else "")
          + (", segments" if dd.segments is not None else ""))
    return 0
