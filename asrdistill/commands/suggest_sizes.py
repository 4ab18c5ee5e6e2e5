"""``asrdistill suggest-sizes --train DIR``: the recipe's model sizes from the training data (:mod:`asrdistill.sizes`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("suggest-sizes", help="pick monophone subset, tree, Gaussians, DNN preset, epochs, beam "
                                             "from the training data",
                       description="Print the sizes the rule of asrdistill.sizes picks for the training data dir "
                                   "and why (to stderr); --set NAME=VALUE keeps the user's value.")
    p.add_argument("--train", required=True, help="the training data dir")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help="a size the user chose (e.g. tri_leaves=4000); repeatable")
    p.add_argument("--json", help="write the choice (data, sizes, reasons, chosen_by) to this file")
    p.add_argument("--recipe-options", action="store_true",
                   help="print the sizes as recipes/synth/run.sh options on stdout")
    p.add_argument("--allow-pipes", action="store_true", help="run wav.scp pipes to measure durations")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from asrdistill.commands import named_values
    from asrdistill.sizes import data_stats, suggest_sizes
    from asrdistill.utils import write_json_atomic

    user = {k.replace("-", "_"): v for k, v in named_values(args.set, "--set", "VALUE").items()}
    stats, durations = data_stats(args.train, allow_pipes=args.allow_pipes)
    choice = suggest_sizes(stats, durations, user)
    print(choice.table(), file=sys.stderr if args.recipe_options else sys.stdout)
    if args.json:
        write_json_atomic(args.json, {"train": args.train, **choice.to_dict()})
    if args.recipe_options:
        print(choice.recipe_options())
    return 0
