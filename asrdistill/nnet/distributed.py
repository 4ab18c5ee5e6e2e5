"""Data-parallel training over several processes (``torch.distributed``), launched by ``torchrun``.

``torchrun`` starts one process per device and gives each ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous (``MASTER_ADDR``/``MASTER_PORT``) in its environment. :func:`init` joins the process group from
that environment (NCCL when the training device is CUDA, gloo on CPU) and is a no-op in a plain single
process, so every caller can call it unconditionally; the DNN training calls it itself. Everything here
works, and does nothing collective, without a process group:

* :func:`rank`, :func:`world_size`, :func:`local_rank`, :func:`is_main`: who this process is (from the
  environment until the group exists), e.g. for a teacher-cache builder that writes its share of the rows;
* :func:`shard`: this rank's contiguous part of ``range(n)`` (the same split everywhere in the toolkit);
* :func:`barrier`, :func:`all_reduce_sum`, :func:`broadcast_ints`, :func:`all_agree`: the collectives that
  training needs (tensors only: nothing is pickled between ranks);
* :func:`train_device`: the device of this rank (``cuda:LOCAL_RANK`` under torchrun on a GPU machine).

Rules the DNN training follows (see docs/ddp.md): every rank computes the same permutation of all training
rows per epoch and trains on its slice of each *global* batch (``batch_size`` frames summed over ranks, so
the learning rate and schedule do not depend on the world size); gradients are averaged by
``DistributedDataParallel`` with each rank's loss weighted by its share of the batch, which makes one update
the gradient of the mean over the global batch; dev scores are summed over ranks' shards; only rank 0
writes files, and the output dir must be on a filesystem that every rank sees.
"""
from __future__ import annotations

import datetime
import os
from typing import Sequence

import torch
import torch.distributed as dist

from asrdistill.errors import UserFacingError

__all__ = ["init", "launched", "rank", "world_size", "local_rank", "is_main", "shard", "barrier",
           "all_reduce_sum", "broadcast_ints", "all_agree", "train_device", "destroy"]

#: How long a rank waits for the others at a collective (rank 0 may evaluate or write for a while).
TIMEOUT = datetime.timedelta(minutes=60)


def launched() -> bool:
    """True when this process was started as one of several (``WORLD_SIZE`` > 1 in the environment)."""
    return _env_int("WORLD_SIZE", 1) > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise UserFacingError(f"environment variable {name}={value!r} is not an integer") from None


def active() -> bool:
    """True when a process group of more than one process is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0) if launched() else 0


def world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return _env_int("WORLD_SIZE", 1)


def local_rank() -> int:
    return _env_int("LOCAL_RANK", 0) if launched() else 0


def is_main() -> bool:
    return rank() == 0


def init(device: str = "auto") -> bool:
    """Join the process group of a torchrun launch (idempotent); returns whether training is distributed.

    ``device`` is the training device option: NCCL for CUDA (each rank on ``cuda:LOCAL_RANK``), gloo for CPU.
    """
    if not launched():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if not dist.is_available():
        raise UserFacingError("this torch build has no torch.distributed; run without torchrun")
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        if name not in os.environ:
            raise UserFacingError(f"WORLD_SIZE is set but {name} is not: start distributed training with "
                                  "torchrun (see docs/ddp.md)")
    use_cuda = str(device) != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank())
    backend = "nccl" if use_cuda else "gloo"
    try:
        dist.init_process_group(backend, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as err:
        raise UserFacingError(f"cannot join the process group ({backend}, rank {rank()} of "
                              f"{world_size()} at {os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}): "
                              f"{err}") from None
    return dist.get_world_size() > 1


def destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def train_device(device: str = "auto") -> torch.device:
    """This rank's training device: under torchrun with CUDA, ``cuda:LOCAL_RANK`` for ``auto``/``cuda``."""
    from asrdistill.nnet.device import resolve_device

    dev = resolve_device(device)
    if dev.type == "cuda" and launched() and str(device) in ("auto", "cuda"):
        return torch.device("cuda", local_rank())
    return dev


def shard(n: int, r: int | None = None, w: int | None = None) -> tuple[int, int]:
    """Rank ``r``'s part ``[start, end)`` of ``range(n)``: contiguous, sizes differing by at most one."""
    r = rank() if r is None else r
    w = world_size() if w is None else w
    return n * r // w, n * (r + 1) // w


def barrier() -> None:
    if active():
        dist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (on its device; gloo takes CPU tensors, NCCL CUDA ones)."""
    if active():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def _collective_device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


def broadcast_ints(values: Sequence[int], src: int = 0) -> list[int]:
    """Rank ``src``'s integers on every rank (decisions such as skip / resume; no pickling)."""
    if not active():
        return [int(v) for v in values]
    t = torch.tensor([int(v) for v in values], dtype=torch.int64, device=_collective_device())
    dist.broadcast(t, src=src)
    return [int(v) for v in t.cpu().tolist()]


def all_agree(flag: bool) -> bool:
    """True on every rank when ``flag`` is true on every rank (e.g. "my loss is finite")."""
    if not active():
        return bool(flag)
    t = torch.tensor([0 if flag else 1], dtype=torch.int64, device=_collective_device())
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return int(t.item()) == 0
