"""``asrdistill score-frames``: frame accuracy and cross-entropy of a model or an ensemble."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score-frames", help="frame accuracy / CE of a model or ensemble against alignments",
                       description="Several --model options (or an ensemble dir / ensemble.json) are scored as "
                                   "an ensemble (arithmetic mean of probabilities unless --combine geometric).")
    p.add_argument("--model", action="append", required=True, help="model file (repeatable)")
    p.add_argument("--feats", required=True, help="feature dir (frame store)")
    p.add_argument("--ali", required=True, help="alignment dir (pdf.scp)")
    p.add_argument("--combine", choices=("arithmetic", "geometric"), default="arithmetic")
    p.add_argument("--device", default="auto")
    p.add_argument("--per-member", action="store_true",
                   help="also score each model alone and their mean (the report of train-ensemble)")
    p.add_argument("--json", help="also write the scores to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from asrdistill.nnet.evaluate import score_frames, score_frames_per_member
    from asrdistill.utils import write_json_atomic

    if args.per_member:
        scores = score_frames_per_member(args.model, args.feats, args.ali, device=args.device)
        for i, s in enumerate(scores["members"]):
            print(f"member{i} frame_acc {s['frame_acc']:.4f} ce {s['ce']:.4f}")
        mean = scores["member_mean"]
        print(f"member_mean frame_acc {mean['frame_acc']:.4f} ce {mean['ce']:.4f}")
        for m in ("arithmetic", "geometric"):
            print(f"ensemble_{m} frame_acc {scores[m]['frame_acc']:.4f} ce {scores[m]['ce']:.4f} "
                  f"frames {scores[m]['frames']}")
    else:
        scores = score_frames(args.model, args.feats, args.ali, combine=args.combine, device=args.device)
        print(f"frame_acc {scores['frame_acc']:.4f} ce {scores['ce']:.4f} frames {scores['frames']}")
    if args.json:
        write_json_atomic(args.json, scores)
    return 0
