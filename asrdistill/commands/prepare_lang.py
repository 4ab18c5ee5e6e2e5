"""``asrdistill prepare-lang DICT_DIR LANG_DIR``: phones.txt, words.txt, topo, L.fst from a Kaldi dict dir."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "prepare-lang", help="build a lang dir (phones, words, topology, L.fst) from a dict dir",
        description="Validate a Kaldi dict dir (lexicon.txt, silence_phones.txt, nonsilence_phones.txt, "
                    "optional_silence.txt, extra_questions.txt) and write LANG_DIR: phones.txt, words.txt, "
                    "topo, L.fst, L_disambig.fst, oov.txt and phones/ (like Kaldi's utils/prepare_lang.sh).")
    p.add_argument("dict_dir", metavar="DICT_DIR")
    p.add_argument("lang_dir", metavar="LANG_DIR")
    p.add_argument("--oov", default="<UNK>", help="word for out-of-vocabulary words, if in the lexicon "
                                                   "(default: <UNK>)")
    p.add_argument("--sil-prob", type=float, default=0.5, help="optional silence probability (default: 0.5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands import command_step
    from asrdistill.lang import prepare_lang

    step = command_step(args, "prepare-lang", args.lang_dir, {"dict_dir": args.dict_dir}, exclude=("lang_dir",))
    if step.skip():
        print(f"{args.lang_dir}: already complete")
        return 0
    step.begin()
    lang = prepare_lang(args.dict_dir, args.lang_dir, oov_word=args.oov, sil_prob=args.sil_prob)
    step.complete(["L.fst", "L_disambig.fst", "phones.txt", "words.txt", "topo"])
    print(f"{args.lang_dir}: {len(lang.real_phones)} phones, {len(lang.words)} words, oov={lang.oov}")
    return 0
