"""``asrdistill prepare-data``: validate data dirs + dict dir and copy them into a recipe's data/ (stage 1)."""
from __future__ import annotations

import argparse

from asrdistill.commands import named_values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-data", help="validate Kaldi data dirs and a dict dir; copy them to OUT",
                       description="Validate each --split NAME=DIR and the --dict dir, then write OUT/NAME and "
                                   "OUT/local/dict. Finished splits are skipped.")
    p.add_argument("--split", action="append", required=True, metavar="NAME=DIR",
                   help="a data dir and the name it gets (repeat: --split train=... --split dev=...)")
    p.add_argument("--dict", required=True, help="Kaldi dict dir (lexicon.txt, silence/nonsilence phones, ...)")
    p.add_argument("--out", required=True, help="output data dir (e.g. data)")
    p.add_argument("--allow-pipes", action="store_true", help="accept shell-pipe entries in wav.scp")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.data.prepare import prepare_data

    splits = named_values(args.split, "--split", "DIR")
    for info in prepare_data(splits, args.dict, args.out, allow_pipes=args.allow_pipes):
        print(f"{info.name}: {info.utterances} utterances, {info.speakers} speakers, {info.words} words"
              f" ({info.oov_words} OOV)")
    return 0
