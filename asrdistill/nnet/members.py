"""Training the members of an ensemble: N models that differ only in their seed (member i: ``seed + i``).

:func:`train_ensemble` trains member i into ``<out>/member<i>`` with :func:`~asrdistill.nnet.train.train_model`,
writes ``ensemble.json`` (the member files, relative) and ``scores.json`` (each member, their mean and the
ensemble under both combinations, per evaluation set).

Members are independent, so ``parallel=N`` trains them N at a time in N worker processes (fresh
interpreters, through :class:`~asrdistill.parallel.LocalExecutor`): worker k trains members k, k+N, ... On a
machine with CUDA devices worker k uses device ``k mod <device count>``; on CPU each worker gets
``num_threads`` threads (default: the cores divided by N). A member's file is the same whichever way it
was trained, as long as it runs on the same kind of device with the same thread count (checked in the tests
on CPU). Under torchrun (DDP) members are trained one after another, each by all ranks.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from asrdistill.errors import UserFacingError
from asrdistill.nnet import distributed as dist
from asrdistill.nnet.config import DnnConfig, DnnTrainConfig
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.device import resolve_device
from asrdistill.nnet.evaluate import ensemble_report
from asrdistill.nnet.model import load_model
from asrdistill.nnet.train import train_model
from asrdistill.utils import get_logger, write_json_atomic

log = get_logger(__name__)

__all__ = ["train_ensemble", "member_config", "worker_plan"]


def member_config(config: DnnTrainConfig, index: int) -> DnnTrainConfig:
    """The training options of member ``index``: the ensemble's, with seed ``config.seed + index``."""
    return dataclasses.replace(config, seed=config.seed + index)


def worker_plan(num_members: int, parallel: int, config: DnnTrainConfig) -> list[tuple[list[int], DnnTrainConfig]]:
    """(members, training options) of each of ``min(parallel, num_members)`` workers: worker k trains members
    k, k+N, ...; on CUDA on device ``k mod count``, on CPU with ``num_threads`` (default cores / N) threads."""
    import torch

    n = max(1, min(int(parallel), num_members))
    device = resolve_device(config.device)
    plan = []
    for k in range(n):
        cfg = dataclasses.replace(config, progress=False)
        if device.type == "cuda" and str(config.device) in ("auto", "cuda"):
            cfg = dataclasses.replace(cfg, device=f"cuda:{k % torch.cuda.device_count()}")
        elif device.type == "cpu" and not config.num_threads:
            cfg = dataclasses.replace(cfg, num_threads=max(1, (os.cpu_count() or 1) // n))
        plan.append((list(range(k, num_members, n)), cfg))
    return plan


def _train_members(job: tuple[list[int], DnnTrainConfig], shared: tuple) -> list[str]:
    """Worker: train the members of ``job`` one after another (module-level: it runs in a fresh process)."""
    import logging

    from asrdistill.utils import setup_logging

    if not logging.getLogger().handlers:
        setup_logging()
    indices, config = job
    model_config, train_data, dev_data, out, resume = shared
    for i in indices:
        train_model(model_config, train_data, dev_data, Path(out) / f"member{i}", member_config(config, i),
                    resume=resume)
    return [f"member{i}/final.mdl" for i in indices]


def train_ensemble(num_members: int, model_config: DnnConfig, train_data: FrameDataset, dev_data: FrameDataset,
                   out_dir: str | os.PathLike, config: DnnTrainConfig | None = None,
                   eval_sets: dict[str, FrameDataset] | None = None, resume: bool = True,
                   parallel: int = 1) -> dict[str, Any]:
    """Train ``num_members`` models (member i in ``<out_dir>/member<i>`` with seed ``config.seed + i``),
    ``parallel`` at a time in worker processes (1: in this process).

    Writes ``<out_dir>/ensemble.json`` (member model paths, relative) and ``scores.json``: for each set
    in ``eval_sets`` (name -> :class:`~asrdistill.nnet.data.FrameDataset`; default ``{"dev": dev_data}``)
    each member's frame accuracy / CE, their mean, and the ensemble's under both combinations.
    Returns that report.
    """
    config = config or DnnTrainConfig()
    if parallel < 1:
        raise UserFacingError(f"parallel must be at least 1, got {parallel}")
    out = Path(out_dir)
    members = [f"member{i}/final.mdl" for i in range(num_members)]
    if parallel > 1 and num_members > 1:
        if dist.launched():
            raise UserFacingError("--parallel trains members in separate processes; under torchrun every rank "
                                  "already trains each member together (use one or the other)")
        from asrdistill.parallel import LocalExecutor

        plan = worker_plan(num_members, parallel, config)
        log.info("%s: training %d members in %d worker processes", out, num_members, len(plan))
        shared = (model_config, train_data, dev_data, str(out), resume)
        list(LocalExecutor(len(plan), start_method="spawn", ahead=1).map(_train_members, plan, shared))
        models = [load_model(out / m) for m in members]
    else:
        models = [train_model(model_config, train_data, dev_data, out / f"member{i}", member_config(config, i),
                              resume=resume).model for i in range(num_members)]
    report: dict[str, Any] = {}
    if dist.is_main():
        write_json_atomic(out / "ensemble.json", {"members": members, "combine": "arithmetic"})
        device = dist.train_device(config.device)
        report = ensemble_report(models, eval_sets or {"dev": dev_data}, device, config.eval_batch_size)
        write_json_atomic(out / "scores.json", report)
        for name, r in report.items():
            log.info("%s: members mean acc %.4f CE %.4f | ensemble (arithmetic) acc %.4f CE %.4f", name,
                     r["member_mean"]["frame_acc"], r["member_mean"]["ce"], r["arithmetic"]["frame_acc"],
                     r["arithmetic"]["ce"])
    dist.barrier()
    return report
