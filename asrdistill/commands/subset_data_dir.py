"""``asrdistill subset-data-dir SRC DEST --num-utts N``: N utterances spread evenly over a data dir."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("subset-data-dir", help="copy N evenly spaced utterances of a data dir",
                       description="Like Kaldi's utils/subset_data_dir.sh: every k-th utterance in sorted order, "
                                   "so speakers keep their share. phones.ctm is filtered too.")
    p.add_argument("src")
    p.add_argument("dest")
    p.add_argument("--num-utts", type=int, required=True)
    p.add_argument("--allow-pipes", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands import command_step
    from asrdistill.data.kaldi_dir import read_data_dir, subset_data_dir

    step = command_step(args, "subset-data-dir", args.dest, {"src": args.src}, exclude=("dest",))
    src = read_data_dir(args.src, allow_pipes=args.allow_pipes)
    if not step.skip():
        step.begin()
        subset_data_dir(src, args.dest, args.num_utts, extra_files=("phones.ctm",))
        step.complete(["text", "wav.scp"])
    out = read_data_dir(args.dest, allow_pipes=args.allow_pipes)
    print(f"{args.dest}: {len(out)} of {len(src)} utterances, {len(out.spk2utt)} speakers")
    return 0
