"""The per-utterance stages on a Dask cluster: :class:`DaskExecutor` (``--scheduler ADDRESS``).

Dask distributed is an optional dependency (``dask``, ``distributed`` in tools/requirements.txt), imported
only here and only when a scheduler is given. The scheduler and its workers are started outside asrdistill:
by hand (``dask scheduler``, ``dask worker``), or by dask-jobqueue on Slurm/PBS/SGE/LSF, or by
dask-kubernetes (see docs/cluster.md). Every command that takes ``--scheduler`` connects as a client,
submits its jobs and gets the results back in job order (:func:`asrdistill.parallel.ordered_results`),
so its outputs are identical to those of the local executor.

What workers need: the same Python environment (asrdistill and the pinned stack importable) and the same
files at the same paths as the command (a shared filesystem): jobs carry paths, not data. Start workers
with one thread each (``--nthreads 1``, several ``--nworkers`` per machine): the Kaldi code holds the GIL.
A worker that dies mid-job has its jobs rerun elsewhere by Dask; the jobs are deterministic, so a rerun
gives the same result.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable, Iterator

from asrdistill.errors import UserFacingError
from asrdistill.parallel import AHEAD, ordered_results

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()


def _distributed():
    try:
        import distributed
    except ImportError as err:
        raise UserFacingError("--scheduler needs Dask distributed, which is not installed "
                              f"({err}): pip install -r tools/requirements.txt") from None
    return distributed


def connect(scheduler: str, timeout: float | None = None):
    """A client of the Dask scheduler at ``scheduler`` (``tcp://host:port``, ``host:port``, or the path
    of a scheduler file written by ``dask scheduler --scheduler-file``), reused by later calls."""
    distributed = _distributed()
    import dask

    scheduler = str(scheduler)
    with _LOCK:
        client = _CLIENTS.get(scheduler)
        if client is not None and client.status == "running":
            return client
        wait = timeout if timeout is not None else dask.config.get("distributed.comm.timeouts.connect")
        is_file = "://" not in scheduler and os.path.isfile(scheduler)
        try:
            if is_file:
                client = distributed.Client(scheduler_file=scheduler, timeout=wait, set_as_default=False)
            else:
                client = distributed.Client(scheduler, timeout=wait, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise UserFacingError(f"--scheduler {scheduler}: cannot connect to a Dask scheduler ({err}); start "
                                  "one with `dask scheduler` and give its address, e.g. tcp://host:8786") from None
        _CLIENTS[scheduler] = client
        return client


class DaskExecutor:
    """The workers of a Dask scheduler, behind :class:`asrdistill.parallel.Executor`.

    ``scheduler``: an address or scheduler file (see :func:`connect`) or a ``distributed.Client``.
    ``nj`` is the number of worker threads when the executor is made; each :meth:`map` keeps ``ahead``
    jobs per worker thread in flight (at least ``ahead``, so a cluster whose workers are still starting,
    as under dask-jobqueue, is waited for rather than an error).
    """

    def __init__(self, scheduler: Any, ahead: int = AHEAD, timeout: float | None = None):
        distributed = _distributed()
        self.client = scheduler if isinstance(scheduler, distributed.Client) else connect(scheduler, timeout)
        self.ahead = max(1, int(ahead))
        self.nj = self._threads()

    def _threads(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[..., Any], jobs: Iterable[Any], shared: Any = None) -> Iterator[Any]:
        distributed = _distributed()
        client = self.client
        # a one-element list: scatter would spread a tuple or dict element-wise. Not broadcast: a worker
        # fetches it (once) when it first needs it, so workers that join later get it too.
        held = client.scatter([shared], hash=False)[0] if shared is not None else None
        name = getattr(fn, "__name__", "job")

        def submit(job):
            args = (job,) if held is None else (job, held)
            return client.submit(fn, *args, pure=False)

        def result(fut):
            try:
                return fut.result()
            except distributed.KilledWorker as err:
                raise UserFacingError(f"Dask workers died running {name} ({err}): out of memory? See the "
                                      "workers' logs") from None

        try:
            yield from ordered_results(submit, result, lambda f: f.cancel(), jobs, self._threads() * self.ahead)
        finally:
            if held is not None:
                held.release()
