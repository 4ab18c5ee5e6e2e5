"""``asrdistill choose-best``: pick one of several trained models by dev frame accuracy."""
from __future__ import annotations

import argparse

from asrdistill.errors import UserFacingError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("choose-best", help="pick the model with the best dev frame accuracy",
                       description="Score DIR/final.mdl of each model dir on the dev set and print the best "
                                   "(highest frame accuracy; ties broken by lower CE). With --exp, the arguments "
                                   "are system names of EXP's manifest, scored on its dev set, and the best is "
                                   "registered as --as NAME. Choose on dev, report test.")
    p.add_argument("models", nargs="+", metavar="DIR_OR_SYSTEM")
    p.add_argument("--exp", help="exp dir whose systems manifest names the models and the dev set")
    p.add_argument("--as", dest="alias", help="with --exp: register the best under this name")
    p.add_argument("--feats", help="dev feature dir (frame store; without --exp)")
    p.add_argument("--ali", help="dev alignment dir (without --exp)")
    p.add_argument("--json", help="write all scores and the choice here")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.report.select import choose_best, choose_best_system
    from asrdistill.utils import write_json_atomic

    if args.exp:
        if not args.alias:
            raise UserFacingError("--exp needs --as NAME (the name the best system is registered under)")
        res = choose_best_system(args.exp, args.models, args.alias, device=args.device)
    else:
        if not (args.feats and args.ali):
            raise UserFacingError("give --feats and --ali (the dev set), or --exp with system names")
        res = choose_best(args.models, args.feats, args.ali, device=args.device)
    for d, s in res["scores"].items():
        print(f"{d}: dev frame acc {s['frame_acc']:.4f}, CE {s['ce']:.4f}{'  <- best' if d == res['best'] else ''}")
    if args.json:
        write_json_atomic(args.json, res)
    return 0
