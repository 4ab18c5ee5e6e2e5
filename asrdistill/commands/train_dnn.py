"""``asrdistill train-dnn``: train one DNN acoustic model with frame cross-entropy (newbob schedule)."""
from __future__ import annotations

import argparse

from asrdistill.nnet.options import add_data_options, add_model_options, add_train_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-dnn", help="train a DNN acoustic model (frame CE, newbob)",
                       description="Train a ReLU MLP on spliced CMVN'd fbank frames against pdf alignments; "
                                   "writes OUT/final.mdl (best dev CE), log.txt, history.json, tb/. "
                                   "Resumes from OUT/checkpoints unless --no-resume.")
    add_data_options(p)
    add_model_options(p)
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.nnet.options import load_train_dev, model_config_from_args, train_config_from_args
    from asrdistill.nnet.train import train_model

    train, dev = load_train_dev(args)
    res = train_model(model_config_from_args(args, train.num_pdfs), train, dev, args.out,
                      train_config_from_args(args), resume=not args.no_resume)
    best = res.history[res.best_epoch] if res.history else {}
    print(f"{res.model_path}: best epoch {res.best_epoch}, dev frame acc {best.get('dev_acc', float('nan')):.4f}, "
          f"dev CE {best.get('dev_ce', float('nan')):.4f}")
    return 0
