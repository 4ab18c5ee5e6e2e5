"""The per-utterance stages on a Dask cluster (``--scheduler ADDRESS``): :class:`DaskBackend`, the Dask side of
:class:`asrdistill.parallel.ClusterExecutor` (which keeps the jobs in order; this module only talks to Dask).

Dask distributed is an optional dependency (``dask``, ``distributed`` in tools/requirements.txt), imported
only here and only when a scheduler is given. The scheduler and its workers are started outside asrdistill:
by hand (``dask scheduler``, ``dask worker``), by dask-jobqueue on Slurm/PBS/SGE/LSF, or by dask-kubernetes
(see docs/cluster.md). Every command that takes ``--scheduler`` connects as a client, submits its jobs and
gets the results back in job order, so its outputs are identical to those of the local executor.

What workers need: the same Python environment (asrdistill and the pinned stack importable) and the same
files at the same paths as the command (a shared filesystem): jobs carry paths, not data. Start workers
with one thread each (``--nthreads 1``, several ``--nworkers`` per machine): the Kaldi code holds the GIL.
A worker that dies mid-job has its jobs rerun elsewhere by Dask; the jobs are deterministic, so a rerun
gives the same result.
"""
from __future__ import annotations

import os
import threading
from typing import Any, Callable

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger

log = get_logger(__name__)

_CLIENTS: dict[str, Any] = {}
_LOCK = threading.Lock()
CANCEL_WAIT_SECONDS = 600  # how long a map stopped early waits for the jobs already sent (see DaskBackend.cancel)


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


class DaskBackend:
    """Jobs on the workers of a Dask scheduler. ``scheduler``: an address or scheduler file (see
    :func:`connect`) or a ``distributed.Client``."""

    def __init__(self, scheduler: Any, timeout: float | None = None):
        self._distributed = _distributed()
        self.client = scheduler if isinstance(scheduler, self._distributed.Client) else connect(scheduler, timeout)

    def threads(self) -> int:
        """Worker threads now connected (at least 1)."""
        return max(1, sum(self.client.nthreads().values()))

    def share(self, obj: Any):
        """A handle on ``obj`` stored on the cluster; a worker fetches it once, when it first needs it (not
        broadcast: workers that join later get it too). A one-element list: scatter spreads a tuple or dict
        element-wise. With no worker yet (a batch system still starting them) it waits for the first one: the
        scheduler would give up on the scatter after the connect timeout."""
        if not self.client.nthreads():
            log.info("waiting for a worker of the Dask scheduler %s", self.client.scheduler.address)
            self.client.wait_for_workers(1)
        return self.client.scatter([obj], hash=False)[0]

    def release(self, handle: Any) -> None:
        handle.release()

    def submit(self, fn: Callable[..., Any], *args: Any):
        return self.client.submit(fn, *args, pure=False)

    def result(self, fut: Any) -> Any:
        try:
            return fut.result()
        except self._distributed.KilledWorker as err:
            raise UserFacingError(f"Dask workers died running a job ({err}): out of memory? See the workers' "
                                  "logs") from None

    def cancel(self, futs: list[Any]) -> None:
        """End jobs early (a map stopped by an error): a task already running on a worker cannot be stopped, and
        it could go on writing into a directory the caller is about to remove (a race that left a half-removed
        temporary directory behind), so wait for the jobs sent (at most the map's window; a queued one runs
        too), then release them."""
        import time

        deadline = time.monotonic() + CANCEL_WAIT_SECONDS
        for fut in futs:
            try:
                fut.exception(timeout=max(0.0, deadline - time.monotonic()))  # waits; a job's error is not ours
            except (TimeoutError, self._distributed.TimeoutError):
                log.warning("%d Dask jobs still running %d s after the map stopped; not waiting for them",
                            sum(not f.done() for f in futs), CANCEL_WAIT_SECONDS)
                break
            except Exception:  # noqa: BLE001 -- cancelled or lost: nothing of it runs any more
                pass
        for fut in futs:
            fut.cancel()
