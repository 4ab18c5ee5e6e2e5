"""``asrdistill prepare-dict --text TEXT... --out DICT``: a Kaldi dict dir for every word of the transcripts
(CMUdict, then espeak-ng for the words it lacks; :mod:`asrdistill.lang.g2p`)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-dict", help="Kaldi dict dir for the words of transcripts (CMUdict + espeak-ng)",
                       description="Pronounce every word of the Kaldi text files: your --lexicon files first, then "
                                   "the CMU Pronouncing Dictionary, compounds/possessives of its words, then "
                                   "espeak-ng mapped to the same ARPAbet phones. Writes DICT/generated.txt (the "
                                   "entries not taken from a dictionary) and DICT/prepare_dict.json (counts).")
    p.add_argument("--text", nargs="+", required=True, help="Kaldi text files (UTT word word ...)")
    p.add_argument("--out", required=True, help="the dict dir to write")
    p.add_argument("--lexicon", action="append", default=[], metavar="FILE",
                   help="a lexicon (WORD PH1 PH2 ..., ARPAbet) used before CMUdict (repeatable), e.g. "
                        "LibriSpeech's librispeech-lexicon.txt")
    p.add_argument("--stress", choices=("strip", "keep"), default="strip",
                   help="strip the stress digits (39 phones), or keep them as Kaldi's stress variants with "
                        "extra questions per stress level (default: strip)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands import command_step
    from asrdistill.lang.g2p import G2PConfig, cmudict_files, prepare_dict

    config = G2PConfig(stress=args.stress)
    step = command_step(args, "prepare-dict", args.out, {"text": args.text, "lexicon": args.lexicon},
                        options={**config.to_dict(), "cmudict": cmudict_files()[2]})
    if step.skip():
        print(f"{args.out}: already prepared")
        return 0
    step.begin()
    info = prepare_dict(args.text, args.out, config, args.lexicon)
    step.complete(["lexicon.txt", "generated.txt"], info={"counts": info.counts, "words": info.words})
    by_source = ", ".join(f"{n} {src}" for src, n in info.counts.items() if n)
    print(f"{args.out}: {info.words} words ({by_source}); {info.phones} nonsilence phones, stress {info.stress}; "
          f"{len(info.generated)} generated entries in {args.out}/generated.txt")
    return 0
