"""``asrdistill make-results``: the recipe's RESULTS.md / results.json (paper Tables 1 and 5) and curves."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("make-results", help="measure frame accuracies, collect WERs, write RESULTS.md",
                       description="Reads EXP/systems.json, scores every DNN system of EXP on dev and test (frame accuracy against the "
                                   "triphone alignments), collects the decode dirs' WERs, and writes "
                                   "OUT/RESULTS.md, OUT/results.json and OUT/curves_*.png.")
    p.add_argument("--exp", required=True, help="recipe exp dir with the systems manifest (systems.json)")
    p.add_argument("--out", required=True, help="where RESULTS.md and results.json go")
    p.add_argument("--command", default="", help="the command line that produced the results (recorded)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.report.results import make_results

    make_results(args.exp, args.out, command=args.command, device=args.device)
    print(f"wrote {args.out}/RESULTS.md, {args.out}/results.json")
    return 0
