"""``asrdistill distill``: train a student DNN on an ensemble's soft targets (plus hard targets)."""
from __future__ import annotations

import argparse

from asrdistill.commands.dnn_options import add_data_options, add_model_options, add_train_options
from asrdistill.distill.config import DistillConfig

_D = DistillConfig()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distil an ensemble into one DNN (soft targets at temperature T)",
                       description="Loss = soft_weight * T^2 * CE(p_T, q_T) + hard_weight * CE(y, q_1), with p_T "
                                   "the mean over members of softmax(logits / T). The student has the members' "
                                   "architecture unless --preset / --hidden-* / --left / --right say otherwise; "
                                   "its input window must be the teacher's.")
    p.add_argument("--teacher", action="append", required=True, metavar="MODEL",
                   help="teacher model file, or an ensemble dir / ensemble.json (repeatable)")
    p.add_argument("--temperature", "-T", type=float, default=_D.temperature,
                   help=f"temperature (default {_D.temperature:g})")
    p.add_argument("--soft-weight", type=float, default=_D.soft_weight)
    p.add_argument("--hard-weight", type=float, default=_D.hard_weight)
    p.add_argument("--loss", choices=("soft", "logits"), default=_D.loss,
                   help="soft targets (default) or logit matching (squared error to zero-mean teacher logits)")
    p.add_argument("--combine", choices=("arithmetic", "geometric"), default=_D.combine)
    p.add_argument("--teacher-mode", choices=("onthefly", "cache"), default=_D.teacher_mode,
                   help="run the teacher on every batch, or read its outputs from a cache built once")
    p.add_argument("--topk", type=int, default=_D.topk, help="pdfs kept per frame in a top-k cache")
    p.add_argument("--cache-remainder", choices=("uniform", "renormalize"), default=_D.cache_remainder)
    p.add_argument("--cache-dir", help="teacher cache dir (default OUT/teacher_cache)")
    add_data_options(p)
    add_model_options(p, default_preset=None)
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.commands import command_step
    from asrdistill.commands.dnn_options import (data_inputs, load_train_dev, model_config_from_args,
                                                 train_config_from_args)
    from asrdistill.nnet.config import member_files

    teachers = [str(f) for f in member_files(args.teacher)]
    step = command_step(args, "distill", args.out, {**data_inputs(args), "teacher": teachers},
                        exclude=("out", "cache_dir"))
    if step.skip():
        print(f"{args.out}: already trained")
        return 0
    resume = step.begin() and not args.no_resume
    from asrdistill.distill.train import train_student
    from asrdistill.nnet.ensemble import load_ensemble

    train, dev = load_train_dev(args)
    distill = DistillConfig(temperature=args.temperature, soft_weight=args.soft_weight, hard_weight=args.hard_weight,
                            loss=args.loss, combine=args.combine, teacher_mode=args.teacher_mode, topk=args.topk,
                            cache_remainder=args.cache_remainder)
    teacher_config = load_ensemble(teachers[:1]).config
    student = model_config_from_args(args, train.num_pdfs, base=teacher_config)
    res = train_student(teachers, train, dev, args.out, train_config_from_args(args), distill,
                        student_config=student, cache_dir=args.cache_dir, resume=resume)
    step.complete(["final.mdl"], info={"best_epoch": res.best_epoch})
    best = res.history[res.best_epoch] if res.history else {}
    print(f"{res.model_path}: best epoch {res.best_epoch}, dev frame acc {best.get('dev_acc', float('nan')):.4f}, "
          f"dev CE {best.get('dev_ce', float('nan')):.4f}")
    return 0
