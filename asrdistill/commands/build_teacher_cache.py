"""``asrdistill build-teacher-cache``: one pass of the ensemble over the training frames, cached for every
temperature (see :mod:`asrdistill.distill.cache`)."""
from __future__ import annotations

import argparse

from asrdistill.distill.config import TeacherCacheConfig

_C = TeacherCacheConfig()


def add_cache_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("teacher cache")
    g.add_argument("--encoding", choices=("u8-sqrt", "f16"), default=_C.encoding,
                   help="u8-sqrt: 1 byte per pdf and member (square-root companded distance below the frame's "
                        "top logit); f16: 2 bytes (default %(default)s)")
    g.add_argument("--check-frames", type=int, default=_C.check_frames,
                   help="frames sampled to measure the distance from the exact teacher into OUT/check.json "
                        "(0: none; default %(default)s)")
    g.add_argument("--check-seed", type=int, default=_C.check_seed)
    g.add_argument("--check-temperatures", default=_C.check_temperatures, metavar="T,T,...",
                   help="temperatures of the check (default %(default)s)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-teacher-cache", help="cache an ensemble's logits on the training frames (every T)",
                       description="Run every member once over the training frames (the utterances of --feats "
                                   "that --ali aligns) and store their logits, 8 bits per pdf by default, so "
                                   "that 'distill --teacher-mode cache --cache-dir OUT' rebuilds the soft targets "
                                   "at any temperature and the logit-matching targets. Records each member's "
                                   "sha256 and the training data's fingerprints; distill refuses a cache of other "
                                   "members or data. Writes OUT/check.json: mean KL and total-variation distance "
                                   "from the exact teacher per temperature.")
    p.add_argument("--teacher", action="append", required=True, metavar="MODEL",
                   help="teacher model file, or an ensemble dir / ensemble.json (repeatable)")
    p.add_argument("--feats", required=True, help="training feature dir (frame store)")
    p.add_argument("--ali", required=True, help="training alignment dir (pdf.scp, num_pdfs)")
    p.add_argument("--out", required=True, help="cache dir")
    add_cache_options(p)
    p.add_argument("--batch-size", type=int, default=_C.batch_size, help="frames per forward pass")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:N")
    p.set_defaults(func=run)


def cache_config(args: argparse.Namespace) -> TeacherCacheConfig:
    return TeacherCacheConfig(encoding=args.encoding, batch_size=getattr(args, "batch_size", _C.batch_size),
                              check_frames=args.check_frames, check_seed=args.check_seed,
                              check_temperatures=args.check_temperatures)


def cache_step(teachers: list[str], feats: str, ali: str, out: str, config: TeacherCacheConfig):
    """The Step of a cache dir: its options are the cache's semantic options and format (not the batch size)."""
    from asrdistill.distill.cache import CACHE_FORMAT
    from asrdistill.experiment.step import Step

    options = {"format": CACHE_FORMAT, "encoding": config.encoding, "check_frames": config.check_frames,
               "check_seed": config.check_seed, "check_temperatures": config.check_temperatures}
    inputs = {"feats": feats, "ali": ali, **{f"teacher.{i}": t for i, t in enumerate(teachers)}}
    return Step(out, "build-teacher-cache", options, inputs)


def ensure_cache(teachers: list[str], feats: str, ali: str, out: str, config: TeacherCacheConfig,
                 device: str = "auto", progress: bool = True) -> bool:
    """Build the cache in ``out`` unless its record says it is complete for these inputs; True if built."""
    from asrdistill.distill.teacher import make_teacher_cache

    from asrdistill.nnet import distributed as dist

    dist.init(device)   # under torchrun every rank fills its share of the rows; rank 0 owns the step record
    step = cache_step(teachers, feats, ali, out, config)
    skip = dist.broadcast_ints([int(step.skip()) if dist.is_main() else 0])[0]
    if skip:
        return False
    if dist.is_main():
        step.begin()
    dist.barrier()
    report = make_teacher_cache(teachers, feats, ali, out, config, device=device, progress=progress)
    if dist.is_main():
        outputs = ["cache.json", "utts.txt"] + (["check.json"] if report else [])
        step.complete(outputs, info={"within_tolerance": report.get("within_tolerance")} if report else None)
    dist.barrier()
    return True


def run(args: argparse.Namespace) -> int:
    import torch

    from asrdistill.nnet.config import member_files

    if args.threads:
        torch.set_num_threads(int(args.threads))
    teachers = [str(f) for f in member_files(args.teacher)]
    config = cache_config(args)
    config.temperatures()  # a bad list is an error before any work
    if ensure_cache(teachers, args.feats, args.ali, args.out, config, args.device):
        print(f"{args.out}: teacher cache built")
    else:
        print(f"{args.out}: already built")
    return 0
