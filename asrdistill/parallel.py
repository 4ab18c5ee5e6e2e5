"""One interface for running per-utterance jobs: local processes (the default) or a cluster engine.

An :class:`Executor` maps a top-level function over a list of picklable jobs and yields the results **in job
order** (results never depend on which worker ran what, or when). Workers that need expensive state (a
decoding graph, a model) keep it in a module-level cache keyed by what it was loaded from, so the same job
function works in a local process pool and on a cluster worker.

* :class:`LocalExecutor` (``nj`` processes; ``nj=1`` runs in this process) is today's behaviour.
* Cluster engines plug in behind the same interface (see :func:`make_executor`).
"""
from __future__ import annotations

import multiprocessing as mp
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence


class Executor(Protocol):
    """Runs ``fn(job)`` for every job; :meth:`map` yields the results in job order."""

    nj: int

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]: ...


class LocalExecutor:
    """``nj`` local worker processes (``fork`` where available, else ``spawn``); ``nj <= 1``: in this process."""

    def __init__(self, nj: int = 1, start_method: str | None = None):
        self.nj = max(1, int(nj))
        self.start_method = start_method

    def map(self, fn: Callable[[Any], Any], jobs: Iterable[Any]) -> Iterator[Any]:
        if self.nj <= 1:
            for job in jobs:
                yield fn(job)
            return
        method = self.start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        with mp.get_context(method).Pool(self.nj) as pool:
            yield from pool.imap(fn, jobs, chunksize=1)


def make_executor(nj: int = 1, scheduler: str | None = None) -> Executor:
    """The executor for ``--nj`` / ``--scheduler``: local processes unless a cluster scheduler is given."""
    if scheduler:
        from asrdistill.cluster import DaskExecutor  # optional dependency, imported only when asked for

        return DaskExecutor(scheduler)
    return LocalExecutor(nj)


def run_ordered(executor: Executor, fn: Callable[[Any], Any], jobs: Sequence[Any]) -> list[Any]:
    """All results of ``executor.map(fn, jobs)`` as a list (job order)."""
    return list(executor.map(fn, jobs))
