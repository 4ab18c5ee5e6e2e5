"""``asrdistill distill``: train a student DNN on an ensemble's soft targets (plus hard targets)."""
from __future__ import annotations

import argparse

from asrdistill.nnet.options import add_data_options, add_model_options, add_train_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distil an ensemble into one DNN (soft targets at temperature T)",
                       description="Loss = soft_weight * T^2 * CE(p_T, q_T) + hard_weight * CE(y, q_1), with p_T "
                                   "the mean over members of softmax(logits / T). The student defaults to the "
                                   "members' architecture (give --preset / --hidden-* for another).")
    p.add_argument("--teacher", action="append", required=True, metavar="MODEL",
                   help="teacher model file, or an ensemble dir / ensemble.json (repeatable)")
    p.add_argument("--temperature", "-T", type=float, default=2.0)
    p.add_argument("--soft-weight", type=float, default=1.0)
    p.add_argument("--hard-weight", type=float, default=0.5)
    p.add_argument("--loss", choices=("soft", "logits"), default="soft",
                   help="soft targets (default) or logit matching (squared error to zero-mean teacher logits)")
    p.add_argument("--combine", choices=("arithmetic", "geometric"), default="arithmetic")
    p.add_argument("--teacher-mode", choices=("onthefly", "cache"), default="onthefly",
                   help="run the teacher on every batch (exact) or cache its top-k soft targets once")
    p.add_argument("--topk", type=int, default=32, help="pdfs kept per frame in the cache (default 32)")
    p.add_argument("--cache-remainder", choices=("uniform", "renormalize"), default="uniform")
    p.add_argument("--cache-dir", help="teacher cache dir (default OUT/teacher_cache)")
    add_data_options(p)
    add_model_options(p, default_preset=None)
    add_train_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.distill.train import DistillConfig, train_student
    from asrdistill.nnet.options import load_train_dev, model_config_from_args, train_config_from_args

    train, dev = load_train_dev(args)
    distill = DistillConfig(temperature=args.temperature, soft_weight=args.soft_weight, hard_weight=args.hard_weight,
                            loss=args.loss, combine=args.combine, teacher_mode=args.teacher_mode, topk=args.topk,
                            cache_remainder=args.cache_remainder)
    res = train_student(args.teacher, train, dev, args.out, train_config_from_args(args), distill,
                        student_config=model_config_from_args(args, train.num_pdfs), cache_dir=args.cache_dir,
                        resume=not args.no_resume)
    best = res.history[res.best_epoch] if res.history else {}
    print(f"{res.model_path}: best epoch {res.best_epoch}, dev frame acc {best.get('dev_acc', float('nan')):.4f}, "
          f"dev CE {best.get('dev_ce', float('nan')):.4f}")
    return 0
