"""One interface for running per-utterance jobs: local processes (the default) or a Dask cluster.

An :class:`Executor` maps a top-level function over an iterable of picklable jobs and yields the results
**in job order**, whichever worker ran which job and whenever it finished: a stage that merges results in the
order they come gives the same output with any executor and any number of workers. At most ``ahead`` jobs
per worker are in flight, so a lazy job iterable (e.g. DNN log-likelihoods computed in the caller) is
consumed only as fast as the workers keep up.

``map(fn, jobs, shared=obj)`` calls ``fn(job, obj)``: ``obj`` (a model, a data dir, options) travels to each
worker once instead of once per job. State that is expensive to build from it (a decoding graph, a loaded
network) is kept per worker with :func:`worker_state`, under a key that names what it was built from, so
the same job function works in this process, in a local process pool and on a cluster worker.

* :class:`LocalExecutor`: ``nj`` local worker processes (``nj=1``: in this process). Today's behaviour.
* :class:`ClusterExecutor` over :class:`asrdistill.cluster.DaskBackend`: the workers of a Dask scheduler
  (``--scheduler ADDRESS``); Dask itself reaches Slurm, PBS, SGE, LSF and Kubernetes (dask-jobqueue,
  dask-kubernetes). Dask is imported only when a scheduler is given.

:func:`make_executor` picks one from the ``--nj`` / ``--scheduler`` options. A job function must be a
module-level function of an importable module; its jobs and results must pickle. Cluster workers read and
write the paths the jobs name, so they need the same files at the same paths (a shared filesystem).
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import threading
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

from asrdistill.errors import UserFacingError

#: Jobs in flight per worker: enough to keep every worker busy, few enough to bound memory.
AHEAD = 4


class Executor(Protocol):
    """Runs ``fn(job)`` (or ``fn(job, shared)``) for every job; :meth:`map` yields the results in job order."""

    nj: int  # how many jobs can run at once (local processes, or the cluster's worker threads when created)

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> Iterator[Any]: ...


def ordered_results(submit: Callable[[Any], Any], result: Callable[[Any], Any], cancel: Callable[[Any], Any],
                    jobs: Iterable[Any], window: int) -> Iterator[Any]:
    """Submit jobs keeping at most ``window`` in flight; yield ``result(future)`` in submission order.
    Whatever ends the iteration early (an error, the consumer closing the generator) calls ``cancel`` on the
    list of jobs still in flight (it must not return while one of them can still write: the caller may be
    about to remove their output directory)."""
    pending: collections.deque = collections.deque()
    try:
        for job in jobs:
            pending.append(submit(job))
            if len(pending) >= window:
                yield result(pending.popleft())
        while pending:
            yield result(pending.popleft())
    finally:
        if pending:
            cancel(list(pending))


# --- per-worker state ------------------------------------------------------------------------------
_STATE = threading.local()  # per thread: a worker thread never shares a (stateful) decoder with another
MAX_STATES = 2


def _states() -> "collections.OrderedDict[Any, Any]":
    if not hasattr(_STATE, "items"):
        _STATE.items = collections.OrderedDict()
    return _STATE.items


def worker_state(key: Any, build: Callable[[], Any]) -> Any:
    """``build()``, made once per worker thread and kept under ``key`` (hashable; name what it is built from,
    e.g. a token of the shared object). The :data:`MAX_STATES` most recently used entries are kept."""
    items = _states()
    if key in items:
        items.move_to_end(key)
        return items[key]
    value = build()
    items[key] = value
    while len(items) > MAX_STATES:
        items.popitem(last=False)
    return value


def drop_worker_state(keys: Iterable[Any] | None = None) -> None:
    """Forget this thread's worker state (the given keys, or all)."""
    items = _states()
    for key in list(items) if keys is None else list(keys):
        items.pop(key, None)


# --- local processes ------------------------------------------------------------------------------
_SHARED: Any = None


def _install_shared(shared: Any) -> None:
    global _SHARED
    _SHARED = shared


def _call_with_shared(fn: Callable[..., Any], job: Any) -> Any:
    return fn(job, _SHARED)


class LocalExecutor:
    """``nj`` local worker processes; ``nj <= 1`` runs the jobs in this process (no pickling).

    ``start_method``: ``fork`` (default where available: the workers inherit what this process imported),
    ``spawn`` (fresh interpreters) or ``forkserver`` (a fresh server forks the workers, with ``preload``
    imported once). A worker that dies (killed, out of memory, a crash in native code) is an error, not a hang.
    """

    def __init__(self, nj: int = 1, start_method: str | None = None, preload: Sequence[str] = (),
                 ahead: int = AHEAD):
        self.nj = max(1, int(nj))
        self.start_method = start_method
        self.preload = list(preload)
        self.ahead = max(1, int(ahead))

    def _context(self):
        method = self.start_method or ("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        ctx = mp.get_context(method)
        if method == "forkserver" and self.preload:
            ctx.set_forkserver_preload(self.preload)
        return ctx

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> Iterator[Any]:
        if self.nj <= 1:
            before = set(_states())
            try:
                for job in jobs:
                    yield fn(job) if shared is None else fn(job, shared)
            finally:  # in-process runs leave no worker state (graphs, models) behind in the caller
                drop_worker_state(set(_states()) - before)
            return
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        init = {} if shared is None else {"initializer": _install_shared, "initargs": (shared,)}
        pool = ProcessPoolExecutor(self.nj, mp_context=self._context(), **init)

        def submit(job):
            return pool.submit(fn, job) if shared is None else pool.submit(_call_with_shared, fn, job)

        try:
            # cancel() stops the jobs not started; the pool's shutdown below waits for the running ones
            yield from ordered_results(submit, lambda f: f.result(), lambda fs: [f.cancel() for f in fs], jobs,
                                       self.nj * self.ahead)
        except BrokenProcessPool as err:
            raise UserFacingError(f"a worker process running {getattr(fn, '__name__', fn)} died (killed, out of "
                                  "memory, or a crash in native code; its messages are above)") from err
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class ClusterExecutor:
    """An :class:`Executor` over a cluster backend (:class:`asrdistill.cluster.DaskBackend`: ``threads()``,
    ``share(obj)``, ``submit(fn, *args)``, ``result(fut)``, ``cancel(futs)``, ``release(handle)``).

    ``nj`` is the number of worker threads when the executor is made; each :meth:`map` keeps ``ahead`` jobs per
    worker thread in flight (at least ``ahead``: a cluster whose workers are still starting, as under
    dask-jobqueue, is waited for). The shared object is sent once and released when the map ends.
    """

    def __init__(self, backend: Any, ahead: int = AHEAD):
        self.backend = backend
        self.ahead = max(1, int(ahead))
        self.nj = backend.threads()

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> Iterator[Any]:
        b = self.backend
        held = b.share(shared) if shared is not None else None

        def submit(job):
            return b.submit(fn, job) if held is None else b.submit(fn, job, held)

        try:
            yield from ordered_results(submit, b.result, b.cancel, jobs, b.threads() * self.ahead)
        finally:
            if held is not None:
                b.release(held)


def make_executor(nj: int = 1, scheduler: Any = None, **local_options: Any) -> Executor:
    """The executor for ``--nj`` / ``--scheduler``: the workers of the Dask scheduler at ``scheduler`` (an
    address such as ``tcp://host:8786``, a scheduler file, or a ``distributed.Client``) when given, else a
    :class:`LocalExecutor` of ``nj`` processes built with ``local_options`` (the stage's start method and
    look-ahead; ``ahead`` also applies to the cluster)."""
    if scheduler:
        from asrdistill.cluster import DaskBackend  # Dask is imported only when a scheduler is given

        return ClusterExecutor(DaskBackend(scheduler), ahead=local_options.get("ahead", AHEAD))
    return LocalExecutor(nj, **local_options)


def run_ordered(executor: Executor, fn: Callable[..., Any], jobs: Sequence[Any], shared: Any = None) -> list[Any]:
    """All results of ``executor.map(fn, jobs, shared)`` as a list (job order)."""
    return list(executor.map(fn, jobs, shared))
