"""``asrdistill train-dnn``: train one DNN acoustic model with frame cross-entropy (newbob schedule).

Runs data-parallel when started by torchrun (``torchrun --nproc-per-node N -m asrdistill.cli train-dnn ...``;
see docs/ddp.md): ``--batch-size`` is then the global batch and only rank 0 writes."""
from __future__ import annotations

import argparse

from asrdistill.commands.dnn_options import add_data_options, add_model_options, add_train_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-dnn", help="train a DNN acoustic model (frame CE, newbob)",
                       description="Train a ReLU MLP on spliced CMVN'd fbank frames against pdf alignments; "
                                   "writes OUT/final.mdl (best dev CE), log.txt, history.json, tb/. An "
                                   "interrupted run of the same work resumes from OUT/checkpoints unless "
                                   "--no-resume. Under torchrun, trains data-parallel over the ranks "
                                   "(--batch-size is the global batch).")
    add_data_options(p)
    add_model_options(p)
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands.dnn_options import (TrainingStep, data_inputs, load_train_dev, model_config_from_args,
                                                 train_config_from_args)
    from asrdistill.nnet import distributed as dist

    step = TrainingStep(args, "train-dnn", data_inputs(args))
    if step.skip:
        if dist.is_main():
            print(f"{args.out}: already trained")
        return 0
    from asrdistill.nnet.train import train_model
    train, dev = load_train_dev(args)
    res = train_model(model_config_from_args(args, train.num_pdfs), train, dev, args.out,
                      train_config_from_args(args), resume=step.resume)
    step.complete(["final.mdl"], info={"best_epoch": res.best_epoch})
    best = res.history[res.best_epoch] if res.history else {}
    if dist.is_main():
        print(f"{res.model_path}: best epoch {res.best_epoch}, dev frame acc "
              f"{best.get('dev_acc', float('nan')):.4f}, dev CE {best.get('dev_ce', float('nan')):.4f}")
    dist.destroy()
    return 0
