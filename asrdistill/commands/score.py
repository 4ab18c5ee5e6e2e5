"""``asrdistill score``: WER of a hypothesis text file against a reference (Kaldi %WER line, per_utt, CI)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="word error rate of HYP against REF (Kaldi text files)",
                       description="Print Kaldi's %%WER line and a 95%% bootstrap interval; with --out, write "
                                   "wer, per_utt (ref/hyp/op alignments) and wer.json there.")
    p.add_argument("ref", help="reference Kaldi text file (e.g. data/test/text)")
    p.add_argument("hyp", help="hypothesis Kaldi text file")
    p.add_argument("--out", help="directory for wer, per_utt, wer.json")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replications (0: none)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.decode.score import score_files

    res = score_files(args.ref, args.hyp, out_dir=args.out, bootstrap=args.bootstrap, seed=args.seed)
    print(res["line"])
    print(res["ser_line"])
    if "ci95" in res:
        print(f"95% bootstrap interval: [{res['ci95'][0]:.2f}, {res['ci95'][1]:.2f}]")
    return 0
