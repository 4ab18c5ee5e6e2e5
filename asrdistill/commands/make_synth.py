"""``asrdistill make-synth OUT_DIR``: generate the built-in synthetic corpus with espeak-ng."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "make-synth", help="generate the synthetic espeak-ng corpus (wav, Kaldi data dirs, dict, phone timings)",
        description="Generate the synthetic corpus offline with espeak-ng: 16 kHz noisy, reverberant "
                    "speech of US-English voice variants, Kaldi data dirs for train/dev/test "
                    "(speaker-disjoint), a lexicon dict dir and ground-truth phone timings (phones.ctm).")
    p.add_argument("out_dir", help="output directory (wav/, data/{train,dev,test}/, dict/, summary.json)")
    p.add_argument("--hours", type=float, default=3.0, help="total audio to generate, train + dev + test (default 3.0)")
    p.add_argument("--num-speakers", type=int, help="number of speakers (default 40: 16 train / 12 dev / 12 test)")
    p.add_argument("--dev-speakers", type=int,
                   help="held-out dev speakers (default 12; ~20%% of the speakers each if fewer than 40%% would "
                        "be left for training)")
    p.add_argument("--test-speakers", type=int, help="held-out test speakers (default 12; the same rule)")
    p.add_argument("--eval-utts-per-speaker", type=int,
                   help="sentences each dev/test speaker reads (default 20)")
    p.add_argument("--generated-test-speakers", type=int,
                   help="extra test speakers, each with a new voice of its own drawn at random in the adult range "
                        "(the bundled espeak-ng has only 12 adult voices to hold out); their audio comes on top of "
                        "--hours (default 0; at most 180: espeak-ng lists at most 349 voices)")
    p.add_argument("--generated-utts-per-speaker", type=int,
                   help="sentences each generated test speaker reads, at most (default 10; as for dev/test "
                        "speakers, planning at ~3 s a sentence can stop a slow speaker one short)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--nj", type=int, default=2, help="parallel processes (default 2)")
    p.add_argument("--snr-db", type=float, nargs=2, default=(5.0, 20.0), metavar=("LO", "HI"),
                   help="range of the per-utterance SNR in dB (default 5 20)")
    p.add_argument("--rt60", type=float, nargs=2, default=(0.15, 0.4), metavar=("LO", "HI"),
                   help="range of the reverb time RT60 in seconds (default 0.15 0.4)")
    p.add_argument("--noise-types", default="white,pink,babble",
                   help="comma-separated noise types to draw from (default white,pink,babble)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from asrdistill.data.synth.corpus import prepare_synth

    summary = prepare_synth(
        args.out_dir, hours=args.hours, num_speakers=args.num_speakers, seed=args.seed, nj=args.nj,
        snr_db=tuple(args.snr_db), rt60=tuple(args.rt60),
        noise_types=tuple(t.strip() for t in args.noise_types.split(",") if t.strip()),
        progress=not args.no_progress, dev_speakers=args.dev_speakers, test_speakers=args.test_speakers,
        eval_utts_per_speaker=args.eval_utts_per_speaker, generated_test_speakers=args.generated_test_speakers,
        generated_utts_per_speaker=args.generated_utts_per_speaker)
    print(json.dumps(asdict(summary), indent=2, sort_keys=True))
    return 0
