"""``asrdistill check-teacher-cache``: how far a teacher cache's soft targets are from the exact teacher."""
from __future__ import annotations

import argparse

from asrdistill.distill.config import TeacherCacheConfig

_C = TeacherCacheConfig()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-teacher-cache", help="distance of a teacher cache from the exact teacher, per T",
                       description="On a random sample of training frames, compare the soft targets rebuilt from "
                                   "the cache with the on-the-fly teacher's (arithmetic and geometric mean of the "
                                   "members): mean and max KL(p_T || p_cache) and total-variation distance per "
                                   "temperature, and the logit-matching targets' relative RMS error. Writes JSON.")
    p.add_argument("--cache-dir", required=True, help="a dir written by build-teacher-cache")
    p.add_argument("--teacher", action="append", metavar="MODEL",
                   help="teacher model files (default: those the cache records; checked by sha256)")
    p.add_argument("--feats", help="training feature dir (default: the one the cache records)")
    p.add_argument("--ali", help="training alignment dir (default: the one the cache records)")
    p.add_argument("--frames", type=int, default=_C.check_frames, help="frames sampled (default %(default)s)")
    p.add_argument("--seed", type=int, default=_C.check_seed, help="seed of the sample")
    p.add_argument("--temperatures", default=_C.check_temperatures, metavar="T,T,...")
    p.add_argument("--out", help="JSON file to write (default: print it)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    import torch

    from asrdistill.distill.cache import check_cache, data_fingerprints, read_cache_info
    from asrdistill.distill.teacher import CachedTeacher, OnTheFlyTeacher, log_check
    from asrdistill.errors import UserFacingError
    from asrdistill.nnet.config import member_files
    from asrdistill.nnet.data import load_frame_dataset
    from asrdistill.nnet.device import resolve_device
    from asrdistill.nnet.ensemble import load_ensemble
    from asrdistill.utils import write_json_atomic

    if args.threads:
        torch.set_num_threads(int(args.threads))
    temperatures = TeacherCacheConfig(check_temperatures=args.temperatures).temperatures()
    info = read_cache_info(args.cache_dir)
    teachers = ([str(f) for f in member_files(args.teacher)] if args.teacher
                else [m["path"] for m in info["members"]])
    recorded = info.get("data", {})
    feats = args.feats or recorded.get("feats", {}).get("path")
    ali = args.ali or recorded.get("ali", {}).get("path")
    if not feats or not ali:
        raise UserFacingError(f"{args.cache_dir}: the cache records no training dirs; pass --feats and --ali")
    dev = resolve_device(args.device)
    ensemble = load_ensemble(teachers, device=dev)
    data = load_frame_dataset(feats, ali, num_pdfs=ensemble.config.num_pdfs).to(dev)
    cached = CachedTeacher(args.cache_dir, data, teachers, fingerprints=data_fingerprints(feats, ali)).to(dev)
    report = check_cache(cached, OnTheFlyTeacher(ensemble), data, temperatures, args.frames, args.seed)
    report["cache_dir"] = str(args.cache_dir)
    log_check(args.cache_dir, report)
    if args.out:
        write_json_atomic(args.out, report)
        print(f"{args.out}: {'within' if report['within_tolerance'] else 'NOT within'} tolerance")
    else:
        print(json.dumps(report, indent=2, sort_keys=True))
    return 0
