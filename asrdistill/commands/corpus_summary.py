"""``asrdistill corpus-summary``: print hours, speakers, utterances, frames per split and the corpus settings."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus-summary", help="summarize a recipe's data dirs and features")
    p.add_argument("--data", required=True, help="recipe data dir holding <split>/ and local/dict")
    p.add_argument("--feats", help="feature root holding <split>/frames.json")
    p.add_argument("--corpus", help="generated corpus dir with summary.json (noise/reverb settings)")
    p.add_argument("--json", help="also write the summary here as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.data.summary import format_summary, summarize_corpus
    from asrdistill.utils import write_json_atomic

    s = summarize_corpus(args.data, args.feats, args.corpus)
    if args.json:
        write_json_atomic(args.json, s)
    print(format_summary(s))
    return 0
