"""The ``--scheduler ADDRESS`` option shared by the per-utterance commands (compute-feats, train-mono, train-tri,
align, decode): run their jobs on the workers of a Dask scheduler instead of ``--nj`` local processes
(:mod:`asrdistill.cluster`). Like ``--nj`` it never changes a result, so it is left out of fingerprints."""
from __future__ import annotations

import argparse


def add_scheduler_option(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help=f"run {what} on the workers of this Dask scheduler (tcp://host:8786, or a scheduler "
                        "file) instead of --nj local processes; workers need the same paths (shared "
                        "filesystem) and environment (see docs/cluster.md)")
