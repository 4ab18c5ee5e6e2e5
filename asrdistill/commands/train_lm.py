"""``asrdistill train-lm``: a Kneser-Ney word n-gram LM (ARPA) from Kaldi text files, perplexities, G.fst."""
from __future__ import annotations

import argparse

from asrdistill.commands import named_values
from asrdistill.errors import UserFacingError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-lm", help="estimate an n-gram LM (interpolated modified Kneser-Ney) and G.fst",
                       description="Estimate OUT/lm.arpa from the transcripts of --text (Kaldi text files), "
                                   "report perplexities of --eval sets, and build OUT/G.fst over the lang "
                                   "dir's words.txt. With --arpa, the given ARPA file is used instead.")
    p.add_argument("--text", action="append", default=[], help="Kaldi text file to train on (repeatable)")
    p.add_argument("--lang", help="lang dir: its words.txt is the vocabulary and G.fst's symbol table")
    p.add_argument("--out", required=True, help="output dir (lm.arpa, lm.json, G.fst)")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--unk", default="<UNK>", help="unknown-word symbol training OOVs map to (default <UNK>)")
    p.add_argument("--eval", action="append", default=[], metavar="NAME=TEXT",
                   help="report perplexity on a Kaldi text file (repeatable, e.g. dev=data/dev/text)")
    p.add_argument("--arpa", help="use this ARPA LM instead of estimating one")
    p.add_argument("--no-G", action="store_true", help="do not build G.fst")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asrdistill.commands import command_step
    from asrdistill.lm import train_lm

    if not args.text and not args.arpa:
        raise UserFacingError("give --text (training transcripts) or --arpa (an existing LM)")
    evals = named_values(args.eval, "--eval", "TEXT")
    words_txt = Path(args.lang) / "words.txt" if args.lang else None
    step = command_step(args, "train-lm", args.out,
                        {"text": args.text, "lang": str(words_txt) if words_txt else None, "arpa": args.arpa,
                         **{f"eval.{k}": v for k, v in evals.items()}}, exclude=("out", "eval"))
    if step.skip():
        print(f"{args.out}: already complete")
        return 0
    step.begin()
    info = train_lm(args.text, args.out, order=args.order, words_txt=words_txt, unk_word=args.unk,
                    eval_text=evals, arpa=args.arpa, make_G=not args.no_G)
    step.complete(["lm.arpa"] + ([] if args.no_G else ["G.fst"]))
    print(f"{info['arpa']}: order {info['order']}" + (f", vocab {info['vocab_size']}" if "vocab_size" in info else ""))
    for key, val in info.items():
        if key.endswith("_perplexity"):
            print(f"  {key[:-len('_perplexity')]}: perplexity {val['perplexity']:.2f} ({val['words']} words, "
                  f"{val['oovs']} OOV)")
    if "G" in info:
        print(f"  G.fst: {info['G']['states']} states, {info['G']['arcs']} arcs")
    return 0
