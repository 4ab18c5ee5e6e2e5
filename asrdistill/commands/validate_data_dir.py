"""``asrdistill validate-data-dir DIR``: check a Kaldi data dir (files and, by default, every recording)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate-data-dir", help="validate a Kaldi data dir (sorting, consistency, audio)",
                       description="Check wav.scp, text, utt2spk, spk2utt and optional segments by Kaldi's "
                                   "rules, then open every recording: readable, non-empty, not truncated, mono "
                                   "(or --channel present), one sample rate for the dir, segments inside their "
                                   "recordings. Errors name the file, the line and the utterance or recording.")
    p.add_argument("data_dir", help="Kaldi data dir")
    p.add_argument("--allow-pipes", action="store_true",
                   help="accept wav.scp entries that are shell commands ('cmd |'), and run each one to check "
                        "its audio; off by default")
    p.add_argument("--no-text", action="store_true", help="transcripts are optional")
    p.add_argument("--channel", type=int, default=None, metavar="N",
                   help="the channel that will be used of multichannel recordings (default: audio must be mono)")
    p.add_argument("--no-audio-check", action="store_true",
                   help="do not open the recordings (nor check that the audio files exist)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.data.kaldi_dir import check_audio, read_data_dir

    dd = read_data_dir(args.data_dir, allow_pipes=args.allow_pipes, require_text=not args.no_text,
                       check_audio_exists=not args.no_audio_check)
    rate = None if args.no_audio_check else check_audio(dd, channel=args.channel)
    words = sum(len(t.split()) for t in (dd.text or {}).values())
    print(f"{dd.path}: OK: {len(dd)} utterances, {len(dd.spk2utt)} speakers, {len(dd.wav_scp)} recordings"
          + (f" at {rate} Hz" if rate else "")
          + (f", {words} words" if dd.text is not None else "")
          + (", segments" if dd.segments is not None else "")
          + (" (audio not opened)" if args.no_audio_check else ""))
    return 0
