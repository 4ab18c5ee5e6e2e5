"""``asrdistill distill``: train a student DNN on an ensemble's soft targets (plus hard targets)."""
from __future__ import annotations

import argparse

from asrdistill.commands.dnn_options import add_data_options, add_model_options, add_train_options
from asrdistill.distill.config import PRIORS, DistillConfig

_D = DistillConfig()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("distill", help="distil an ensemble into one DNN (soft targets at temperature T)",
                       description="Loss = soft_weight * T^2 * CE(p_T, q_T) + hard_weight * CE(y, q_1), with p_T "
                                   "the mean over members of softmax(logits / T). The student has the members' "
                                   "architecture unless --preset / --hidden-* / --left / --right say otherwise; "
                                   "its input window must be the teacher's. Its seed defaults to one more than "
                                   "the largest member seed (a member's seed is refused).")
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
                   help="run the teacher on every batch, or read its logits from --cache-dir (one cache serves "
                        "every temperature)")
    p.add_argument("--cache-dir", help="teacher cache (from build-teacher-cache on the full training set, any "
                                       "--subset reads it too); built there first if absent")
    p.add_argument("--priors", choices=PRIORS, default=_D.priors,
                   help="student's log prior for decoding: counts of the full training alignments (--priors-ali, "
                        "never the --subset's), or its mean posterior over the full training set (default "
                        "%(default)s)")
    p.add_argument("--priors-ali", metavar="DIR", help="alignment dir of the count priors (default: --ali, all of it)")
    # Accepted so that older recipes keep running; the cache now holds every pdf.
    p.add_argument("--topk", type=int, help=argparse.SUPPRESS)
    p.add_argument("--cache-remainder", help=argparse.SUPPRESS)
    add_data_options(p)
    add_model_options(p, default_preset=None)
    add_train_options(p)
    p.set_defaults(func=run, seed=None)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from asrdistill.commands import command_step
    from asrdistill.commands.dnn_options import (data_inputs, load_train_dev, model_config_from_args,
                                                 train_config_from_args)
    from asrdistill.errors import UserFacingError
    from asrdistill.nnet.config import member_files
    from asrdistill.utils import get_logger

    log = get_logger("asrdistill.commands.distill")
    teachers = [str(f) for f in member_files(args.teacher)]
    if args.topk is not None or args.cache_remainder is not None:
        log.warning("--topk / --cache-remainder are ignored: the teacher cache holds every pdf of every member")
    from asrdistill.distill.train import check_student_seed, default_student_seed

    seed = default_student_seed(teachers) if args.seed is None else args.seed
    check_student_seed(seed, teachers)  # before anything is written
    inputs = {**data_inputs(args), "teacher": teachers, "priors_ali": args.priors_ali}
    if args.teacher_mode == "cache":
        if not args.cache_dir:
            raise UserFacingError("--teacher-mode cache needs --cache-dir (a dir from build-teacher-cache)")
        from pathlib import Path

        from asrdistill.distill.cache import data_fingerprints, read_cache_info, verify_data, verify_members

        if not (Path(args.cache_dir) / "cache.json").is_file():  # absent: build it (its own step)
            from asrdistill.commands.build_teacher_cache import ensure_cache
            from asrdistill.distill.config import TeacherCacheConfig

            log.info("%s: no teacher cache; building it (the recipe runs build-teacher-cache once)", args.cache_dir)
            ensure_cache(teachers, args.feats, args.ali, args.cache_dir, TeacherCacheConfig(), args.device)
        info = read_cache_info(args.cache_dir)  # a cache of other members or data is refused, never rebuilt here
        verify_members(info, teachers, args.cache_dir)
        verify_data(info, data_fingerprints(args.feats, args.ali), args.cache_dir)
        inputs["teacher_cache"] = args.cache_dir
    step = command_step(args, "distill", args.out, inputs,
                        exclude=("out", "cache_dir", "topk", "cache_remainder"))
    if step.skip():
        print(f"{args.out}: already trained")
        return 0
    resume = step.begin() and not args.no_resume
    from asrdistill.distill.cache import data_fingerprints
    from asrdistill.distill.train import train_student
    from asrdistill.nnet.data import load_frame_dataset
    from asrdistill.nnet.ensemble import load_ensemble

    train, dev = load_train_dev(args)
    distill = DistillConfig(temperature=args.temperature, soft_weight=args.soft_weight, hard_weight=args.hard_weight,
                            loss=args.loss, combine=args.combine, teacher_mode=args.teacher_mode, priors=args.priors)
    teacher_config = load_ensemble(teachers[:1]).config
    student = model_config_from_args(args, train.num_pdfs, base=teacher_config)
    config = dataclasses.replace(train_config_from_args(args), seed=seed)
    prior_data = None
    if args.priors == "posterior" and args.subset < 1.0:  # the mean posterior over all training frames
        prior_data = load_frame_dataset(args.feats, args.ali, num_pdfs=train.num_pdfs)
    res = train_student(teachers, train, dev, args.out, config, distill, student_config=student,
                        cache_dir=args.cache_dir, resume=resume, prior_ali=args.priors_ali or args.ali,
                        prior_data=prior_data,
                        data_fingerprints=(data_fingerprints(args.feats, args.ali)
                                           if args.teacher_mode == "cache" else None))
    step.complete(["final.mdl", "priors.json"], info={"best_epoch": res.best_epoch, "seed": seed})
    best = res.history[res.best_epoch] if res.history else {}
    print(f"{res.model_path}: best epoch {res.best_epoch}, dev frame acc {best.get('dev_acc', float('nan')):.4f}, "
          f"dev CE {best.get('dev_ce', float('nan')):.4f}")
    return 0
