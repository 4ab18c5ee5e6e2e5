"""``asrdistill layout``: the paths of a recipe's artifacts (:class:`asrdistill.experiment.ExpLayout`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layout", help="print where a recipe's artifacts live (for recipes: --shell)",
                       description="Print the recipe layout of --data and --exp: with --shell as shell "
                                   "variable assignments and functions to eval, else as a table.")
    p.add_argument("--data", required=True, help="the recipe's data dir")
    p.add_argument("--exp", required=True, help="the recipe's exp dir")
    p.add_argument("--shell", action="store_true", help="print shell assignments (eval \"$(asrdistill layout ...)\")")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.experiment.layout import ExpLayout

    layout = ExpLayout.of(args.data, args.exp)
    text = layout.shell()
    if args.shell:
        print(text, end="")
    else:
        for line in text.splitlines():
            if "=" in line and "()" not in line:
                name, value = line.split("=", 1)
                print(f"{name:16s} {value}")
    return 0
