"""``asrdistill train-ensemble``: train N DNNs that differ only in their seed, and score their ensemble.

``--parallel K`` trains K members at a time in separate processes (one per GPU on CUDA machines); under
torchrun (docs/ddp.md) each member is trained data-parallel by all ranks instead."""
from __future__ import annotations

import argparse

from asrdistill.commands.dnn_options import add_data_options, add_model_options, add_train_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train-ensemble", help="train an ensemble of DNNs (seeds SEED..SEED+N-1)",
                       description="Train N models as train-dnn does (member i in OUT/member<i>, seed SEED+i), "
                                   "write OUT/ensemble.json and OUT/scores.json (each member, their mean, and "
                                   "the ensemble by arithmetic and geometric combination, on the dev set).")
    p.add_argument("--members", type=int, default=10, help="number of members (default 10, as the paper)")
    p.add_argument("--parallel", type=int, default=1, metavar="K",
                   help="train K members at a time in separate processes (CPU: --threads each, default "
                        "cores/K; CUDA: worker k on device k mod #devices). Member files are the same as "
                        "with 1 for the same --threads")
    add_data_options(p)
    add_model_options(p)
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands.dnn_options import (TrainingStep, data_inputs, load_train_dev, model_config_from_args,
                                                 train_config_from_args)
    from asrdistill.errors import UserFacingError
    from asrdistill.nnet import distributed as dist

    if args.members < 1:
        raise UserFacingError("--members must be at least 1")
    if args.parallel < 1:
        raise UserFacingError("--parallel must be at least 1")
    step = TrainingStep(args, "train-ensemble", data_inputs(args), exclude=("out", "parallel"))
    if step.skip:
        if dist.is_main():
            print(f"{args.out}: already trained")
        return 0
    from asrdistill.nnet.members import train_ensemble
    train, dev = load_train_dev(args)
    report = train_ensemble(args.members, model_config_from_args(args, train.num_pdfs), train, dev, args.out,
                            train_config_from_args(args), resume=step.resume, parallel=args.parallel)
    step.complete(["ensemble.json", "scores.json"] + [f"member{i}/final.mdl" for i in range(args.members)])
    if dist.is_main():
        r = report["dev"]
        for i, s in enumerate(r["members"]):
            print(f"member{i}: dev frame acc {s['frame_acc']:.4f} CE {s['ce']:.4f}")
        print(f"member mean: dev frame acc {r['member_mean']['frame_acc']:.4f} CE {r['member_mean']['ce']:.4f}")
        for m in ("arithmetic", "geometric"):
            print(f"ensemble ({m}): dev frame acc {r[m]['frame_acc']:.4f} CE {r[m]['ce']:.4f}")
    dist.destroy()
    return 0
