"""``asrdistill prepare-data``: validate data dirs + dict dir and copy them into a recipe's data/ (stage 1)."""
from __future__ import annotations

import argparse

from asrdistill.commands import command_step, named_values


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare-data", help="validate Kaldi data dirs and a dict dir; copy them to OUT",
                       description="Validate each --split NAME=DIR and the --dict dir, then write OUT/NAME and "
                                   "OUT/local/dict. Every recording is opened (of wav.scp pipes only the first "
                                   "is run); a split sampled at another rate than the first --split (the "
                                   "training data) is an error. Splits finished from the same inputs are skipped.")
    p.add_argument("--split", action="append", required=True, metavar="NAME=DIR",
                   help="a data dir and the name it gets (repeat: --split train=... --split dev=...)")
    p.add_argument("--dict", required=True, help="Kaldi dict dir (lexicon.txt, silence/nonsilence phones, ...)")
    p.add_argument("--out", required=True, help="output data dir (e.g. data)")
    p.add_argument("--allow-pipes", action="store_true", help="accept shell-pipe entries in wav.scp")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import asdict
    from pathlib import Path

    from asrdistill.data.prepare import check_sample_rates, prepare_split, prepared_sample_rate, read_dictionary
    from asrdistill.lang.lexicon import copy_dict_dir

    splits = named_values(args.split, "--split", "DIR")
    out = Path(args.out)
    dictionary = read_dictionary(args.dict)
    first_rate = None  # (split, sample rate) of the first split (the training data): every split must match it
    for name, src in splits.items():
        # each split is a step of its own; it depends on the dict too (its OOV count does)
        step = command_step(args, "prepare-data", str(out / name), {"data": src, "dict": args.dict}, options={})
        if step.skip():
            print(f"{name}: already prepared in {out / name}")
            rate = prepared_sample_rate(out / name, args.allow_pipes)
            if first_rate is None:
                first_rate = (name, rate) if rate is not None else None
            elif rate is not None:
                check_sample_rates({first_rate[0]: (first_rate[1], ""), name: (rate, src)})
            continue
        step.begin()
        info = prepare_split(name, src, dictionary, out / name, allow_pipes=args.allow_pipes, expect_rate=first_rate)
        if first_rate is None and info.sample_rate is not None:
            first_rate = (name, info.sample_rate)
        step.complete(["text", "wav.scp", "utt2spk", "spk2utt"], info=asdict(info))
        print(f"{info.name}: {info.utterances} utterances, {info.speakers} speakers, {info.words} words"
              f" ({info.oov_words} OOV)")
    dict_out = out / "local" / "dict"
    step = command_step(args, "prepare-dict-copy", str(dict_out), {"dict": args.dict}, options={})
    if not step.skip():
        step.begin()
        copy_dict_dir(dictionary, dict_out)
        step.complete(["lexicon.txt"])
    return 0
