"""Training the members of an ensemble: N models that differ only in their seed (member i: ``seed + i``).

:func:`train_ensemble` trains member i into ``<out>/member<i>`` with :func:`~asrdistill.nnet.train.train_model`,
writes ``ensemble.json`` (the member files, relative) and ``scores.json`` (each member, their mean and the
ensemble under both combinations, per evaluation set).
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from asrdistill.nnet.config import DnnConfig, DnnTrainConfig
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.device import resolve_device
from asrdistill.nnet.evaluate import ensemble_report
from asrdistill.nnet.train import train_model
from asrdistill.utils import get_logger, write_json_atomic

log = get_logger(__name__)

__all__ = ["train_ensemble", "member_config"]


def member_config(config: DnnTrainConfig, index: int) -> DnnTrainConfig:
    """The training options of member ``index``: the ensemble's, with seed ``config.seed + index``."""
    return dataclasses.replace(config, seed=config.seed + index)


def train_ensemble(num_members: int, model_config: DnnConfig, train_data: FrameDataset, dev_data: FrameDataset,
                   out_dir: str | os.PathLike, config: DnnTrainConfig | None = None,
                   eval_sets: dict[str, FrameDataset] | None = None, resume: bool = True) -> dict[str, Any]:
    """Train ``num_members`` models (member i in ``<out_dir>/member<i>`` with seed ``config.seed + i``).

    Writes ``<out_dir>/ensemble.json`` (member model paths, relative) and ``scores.json``: for each set
    in ``eval_sets`` (name -> :class:`~asrdistill.nnet.data.FrameDataset`; default ``{"dev": dev_data}``)
    each member's frame accuracy / CE, their mean, and the ensemble's under both combinations.
    Returns that report.
    """
    config = config or DnnTrainConfig()
    out = Path(out_dir)
    models, members = [], []
    for i in range(num_members):
        res = train_model(model_config, train_data, dev_data, out / f"member{i}", member_config(config, i),
                          resume=resume)
        models.append(res.model)
        members.append(f"member{i}/final.mdl")
    write_json_atomic(out / "ensemble.json", {"members": members, "combine": "arithmetic"})
    device = resolve_device(config.device)
    report = ensemble_report(models, eval_sets or {"dev": dev_data}, device, config.eval_batch_size)
    write_json_atomic(out / "scores.json", report)
    for name, r in report.items():
        log.info("%s: members mean acc %.4f CE %.4f | ensemble (arithmetic) acc %.4f CE %.4f", name,
                 r["member_mean"]["frame_acc"], r["member_mean"]["ce"], r["arithmetic"]["frame_acc"],
                 r["arithmetic"]["ce"])
    return report
