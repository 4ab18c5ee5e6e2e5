"""``asrdistill manifest``: register and look up the systems of an experiment (``EXP/systems.json``)."""
from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifest", help="the systems manifest of an exp dir: add, alias, get, check",
                       description="Read and write EXP/systems.json (see asrdistill.experiment.manifest): the "
                                   "systems a recipe made, with the record of the step that made each.")
    verbs = p.add_subparsers(dest="verb", metavar="VERB", required=True)

    a = verbs.add_parser("add", help="register a finished system: NAME and its dir or model file")
    a.add_argument("exp")
    a.add_argument("name")
    a.add_argument("path", help="the system's dir, or its model file inside a finished dir")
    a.add_argument("--kind", required=True, help="gmm, dnn, ensemble, student or cache")
    a.set_defaults(func=run_add)

    al = verbs.add_parser("alias", help="NAME is another name of system TARGET")
    al.add_argument("exp")
    al.add_argument("name")
    al.add_argument("target")
    al.add_argument("--chosen-json", help="JSON file saying how TARGET was chosen (e.g. choose-best --json)")
    al.set_defaults(func=run_alias)

    s = verbs.add_parser("add-set", help="register the data, features and alignments of a split")
    s.add_argument("exp")
    s.add_argument("split")
    s.add_argument("--data")
    s.add_argument("--feats")
    s.add_argument("--ali")
    s.set_defaults(func=run_add_set)

    d = verbs.add_parser("add-decode", help="register the decode dir of SYSTEM on SPLIT")
    d.add_argument("exp")
    d.add_argument("system")
    d.add_argument("split")
    d.add_argument("decode_dir")
    d.set_defaults(func=run_add_decode)

    dd = verbs.add_parser("drop-decode", help="forget the registered decode of SYSTEM on SPLIT")
    dd.add_argument("exp")
    dd.add_argument("system")
    dd.add_argument("split")
    dd.set_defaults(func=run_drop_decode)

    t = verbs.add_parser("time", help="record the wall time of a recipe stage")
    t.add_argument("exp")
    t.add_argument("stage")
    t.add_argument("seconds", type=float)
    t.set_defaults(func=run_time)

    g = verbs.add_parser("get", help="print a system's entry or one field (dir, files.model, options.temperature, "
                                     "record.fingerprint; 'sets' FIELD for the data sets)")
    g.add_argument("exp")
    g.add_argument("name")
    g.add_argument("field", nargs="?")
    g.set_defaults(func=run_get)

    c = verbs.add_parser("check", help="list registered systems whose inputs changed after they were made "
                                       "(exit 1 if any)")
    c.add_argument("exp")
    c.set_defaults(func=run_check)


def _manifest(exp: str):
    from asrdistill.experiment.manifest import Manifest

    return Manifest(exp)


def run_add(args: argparse.Namespace) -> int:
    entry = _manifest(args.exp).add_system(args.name, args.path, args.kind)
    print(f"{args.exp}/systems.json: {args.name} ({args.kind}) = {entry['dir']}")
    return 0


def run_alias(args: argparse.Namespace) -> int:
    from pathlib import Path

    chosen = json.loads(Path(args.chosen_json).read_text()) if args.chosen_json else None
    _manifest(args.exp).alias(args.name, args.target, chosen)
    print(f"{args.exp}/systems.json: {args.name} = {args.target}")
    return 0


def run_add_set(args: argparse.Namespace) -> int:
    _manifest(args.exp).add_set(args.split, data=args.data, feats=args.feats, ali=args.ali)
    return 0


def run_add_decode(args: argparse.Namespace) -> int:
    _manifest(args.exp).add_decode(args.system, args.split, args.decode_dir)
    return 0


def run_drop_decode(args: argparse.Namespace) -> int:
    _manifest(args.exp).drop_decode(args.system, args.split)
    return 0


def run_time(args: argparse.Namespace) -> int:
    _manifest(args.exp).add_stage_time(args.stage, args.seconds)
    return 0


def run_get(args: argparse.Namespace) -> int:
    value = _manifest(args.exp).get(args.name, args.field)
    if isinstance(value, float):
        print(f"{value:g}")
    elif isinstance(value, (dict, list)):
        print(json.dumps(value, indent=2, sort_keys=True))
    else:
        print(value)
    return 0


def run_check(args: argparse.Namespace) -> int:
    stale = _manifest(args.exp).stale()
    for name, why in stale.items():
        print(f"{name}: {'; '.join(why)}")
    if not stale:
        print(f"{args.exp}/systems.json: every system is up to date")
    return 1 if stale else 0
