"""``asrdistill score-boundaries ALI_DIR...``: phone-boundary accuracy against ground-truth phones.ctm."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "score-boundaries", help="score alignment phone boundaries against ground-truth phones.ctm",
        description="For each alignment dir (made by `asrdistill align`), compare its non-silence phone "
                    "boundaries with the data dir's phones.ctm (or --ctm): % within 10/20/40 ms. Labels are "
                    "<system>/<ali dir>. Also writes ALI_DIR/phones.ctm.")
    p.add_argument("ali_dirs", metavar="ALI_DIR", nargs="+")
    p.add_argument("--ctm", default=None, help="ground truth (only with one ALI_DIR; default: "
                                               "DATA_DIR/phones.ctm of the alignment)")
    p.add_argument("--frame-offset-ms", type=float, default=7.5,
                   help="boundary before frame t is at t*10ms + this (default: 7.5, the midpoint between the "
                        "centres of 25 ms windows; 0 = Kaldi's ali-to-phones CTM convention)")
    p.add_argument("--json", default=None, help="write the results as JSON here")
    p.add_argument("--markdown", default=None, help="write a Markdown table here")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from asrdistill.align.boundaries import boundary_table, score_alignment_dir
    from asrdistill.errors import UserFacingError
    from asrdistill.utils import write_json_atomic, write_text_atomic

    if args.ctm and len(args.ali_dirs) > 1:
        raise UserFacingError("--ctm can only be used with a single ALI_DIR")
    results = {}
    for d in args.ali_dirs:
        path = Path(d).resolve()
        results[f"{path.parent.name}/{path.name}"] = score_alignment_dir(path, args.ctm,
                                                                         frame_offset=args.frame_offset_ms / 1000)
    table = boundary_table(results)
    if args.json:
        write_json_atomic(args.json, results)
    if args.markdown:
        write_text_atomic(args.markdown, table)
    print(table, end="")
    return 0
