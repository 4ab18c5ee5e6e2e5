"""``asrdistill make-data-dir AUDIO_DIR... --transcripts FILE --out DIR``: Kaldi data dirs from a folder of
WAV/FLAC files and a transcript list (:mod:`asrdistill.data.make_data_dir`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-data-dir", help="Kaldi data dir(s) from a folder of WAV/FLAC files + transcripts",
                       description="Find *.wav/*.flac under AUDIO_DIR (id = file name without extension), take "
                                   "each id's transcript from lines 'ID word word ...', find its speaker, and "
                                   "write wav.scp, text, utt2spk, spk2utt, utt2dur (one dir, or one per --split).")
    p.add_argument("audio", nargs="+", metavar="AUDIO_DIR", help="folders searched recursively for audio files")
    p.add_argument("--out", required=True, help="the data dir (with --split: the parent of one dir per split)")
    p.add_argument("--transcripts", nargs="+", default=[], metavar="FILE", help="files of 'ID word word ...' lines")
    p.add_argument("--transcript-glob", metavar="PATTERN",
                   help="transcript files found under AUDIO_DIR, e.g. '*.trans.txt' (LibriSpeech)")
    who = p.add_mutually_exclusive_group()
    who.add_argument("--speaker-pattern", metavar="REGEX",
                     help="regex whose group 'spk' (or first group) in the id is the speaker, e.g. '^([^-]+)-'; "
                          "a pattern with '/' is matched against the path under AUDIO_DIR")
    who.add_argument("--speaker-map", metavar="FILE", help="'ID SPEAKER' lines")
    who.add_argument("--speaker-per-utterance", action="store_true", help="each file its own speaker")
    p.add_argument("--split", action="append", default=[], metavar="NAME=FRACTION",
                   help="write OUT/NAME with this share of the utterances (repeat; fractions add up to 1)")
    p.add_argument("--split-by", choices=("auto", "speaker", "utterance"), default="auto",
                   help="speaker-disjoint splits, or each speaker's utterances shared out; auto: by speaker when "
                        "every split gets at least 2 speakers (default)")
    p.add_argument("--seed", type=int, default=0, help="seed of the split draw")
    p.add_argument("--normalize-text", action="store_true",
                   help="upper-case the transcripts and strip punctuation around words")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from asrdistill.commands import command_step, named_values
    from asrdistill.data.make_data_dir import MakeDataDirConfig, audio_listing_digest, find_audio, make_data_dir
    from asrdistill.errors import UserFacingError

    try:
        splits = {k: float(v) for k, v in named_values(args.split, "--split", "FRACTION").items()}
    except ValueError:
        raise UserFacingError(f"--split expects NAME=FRACTION with a number, got {args.split}") from None
    config = MakeDataDirConfig(speaker_pattern=args.speaker_pattern, speaker_per_utterance=args.speaker_per_utterance,
                               normalize_text=args.normalize_text, splits=splits, split_by=args.split_by,
                               seed=args.seed, transcript_glob=args.transcript_glob)
    options = {**config.to_dict(), "audio": args.audio, "audio_files": audio_listing_digest(find_audio(args.audio))}
    step = command_step(args, "make-data-dir", args.out, {"transcripts": args.transcripts,
                                                          "speaker_map": args.speaker_map}, options=options)
    if step.skip():
        print(f"{args.out}: already made")
        return 0
    step.begin()
    info = make_data_dir(args.audio, args.out, args.transcripts, config, args.speaker_map)
    step.complete(info={k: v for k, v in asdict(info).items()})
    how = f"; split by {info.split_by}" if info.split_by else ""
    print(f"{args.out}: {info.sample_rate} Hz{how}; {info.renamed} utterance ids prefixed with their speaker")
    for s in info.splits:
        print(f"  {s.name}: {s.utterances} utterances, {s.speakers} speakers, {s.hours:.3f} h")
    return 0
