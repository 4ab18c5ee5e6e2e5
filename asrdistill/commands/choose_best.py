"""``asrdistill choose-best``: pick one of several trained models by dev frame accuracy."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("choose-best", help="pick the model dir with the best dev frame accuracy",
                       description="Score DIR/final.mdl of each model dir on the dev set and print the best "
                                   "(highest frame accuracy; ties broken by lower CE). Choose on dev, report test.")
    p.add_argument("model_dirs", nargs="+", metavar="DIR")
    p.add_argument("--feats", required=True, help="dev feature dir (frame store)")
    p.add_argument("--ali", required=True, help="dev alignment dir")
    p.add_argument("--json", help="write all scores and the choice here")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.report.select import choose_best
    from asrdistill.utils import write_json_atomic

    res = choose_best(args.model_dirs, args.feats, args.ali, device=args.device)
    for d, s in res["scores"].items():
        print(f"{d}: dev frame acc {s['frame_acc']:.4f}, CE {s['ce']:.4f}{'  <- best' if d == res['best'] else ''}")
    if args.json:
        write_json_atomic(args.json, res)
    return 0
