"""Train a student model from an ensemble teacher (soft targets at temperature T, plus hard targets).

The student is trained by :func:`asrdistill.nnet.train.train_model` (same shuffling, newbob schedule on
the dev set's hard-target CE, checkpoints and resume) with the per-batch loss

    loss = soft_weight * T^2 * CE(p_T, q_T) + hard_weight * CE(y, q_1)

where ``q_T`` is the student's softmax at temperature T, ``y`` the alignment's pdf and ``p_T`` the
ensemble's soft target, by default exactly ``(1/M) sum_m softmax(member_logits_m / T)`` (``combine=
"geometric"``: normalised geometric mean). ``loss="logits"`` replaces the soft term by logit matching
(squared error to the members' mean zero-mean logits, see :mod:`asrdistill.distill.loss`).

Teacher outputs come from running the members on each batch (``teacher_mode="onthefly"``, exact) or
from a top-k cache built once (``"cache"``, see :mod:`asrdistill.distill.teacher`).

"Soft targets as a regulariser" (paper Table 5) is configuration: pass a subset of the training data
(:meth:`FrameDataset.subset`) as ``train_data`` and an ensemble (or single model) trained on all of the
data as teacher; the hard-target-only baseline is ``nnet.train.train_model`` on the same subset with
``early_stop_patience``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from asrdistill.distill.config import DistillConfig
from asrdistill.distill.loss import distillation_loss, logit_matching_loss
from asrdistill.distill.teacher import CachedTeacher, OnTheFlyTeacher, build_teacher_cache
from asrdistill.errors import UserFacingError
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.ensemble import load_ensemble
from asrdistill.nnet.model import DnnConfig
from asrdistill.nnet.device import resolve_device
from asrdistill.nnet.train import DnnTrainConfig, TrainResult, train_model
from asrdistill.utils import get_logger, is_done, write_json_atomic

log = get_logger(__name__)


class DistillObjective:
    """The per-batch loss for :func:`train_model` (see module docstring)."""

    def __init__(self, teacher: OnTheFlyTeacher | CachedTeacher, config: DistillConfig):
        self.teacher = teacher
        self.config = config

    def to(self, device: torch.device | str) -> "DistillObjective":
        self.teacher = self.teacher.to(device)
        return self

    def __call__(self, logits: Tensor, x: Tensor, targets: Tensor, rows: Tensor) -> Tensor:
        c = self.config
        if c.loss == "logits":
            loss = c.soft_weight * logit_matching_loss(logits, self.teacher.zero_mean_logits(x, rows))
            if c.hard_weight:
                loss = loss + c.hard_weight * F.cross_entropy(logits, targets)
            return loss
        soft = self.teacher.soft_targets(x, rows, c.temperature) if c.soft_weight else None
        return distillation_loss(logits, targets, soft, c.temperature, c.soft_weight, c.hard_weight)


def train_student(teacher_models: Sequence[str | os.PathLike], train_data: FrameDataset, dev_data: FrameDataset,
                  out_dir: str | os.PathLike, config: DnnTrainConfig | None = None,
                  distill: DistillConfig | None = None, student_config: DnnConfig | None = None,
                  cache_dir: str | os.PathLike | None = None, resume: bool = True) -> TrainResult:
    """Distil the ensemble of ``teacher_models`` (model files or an ``ensemble.json``) into one model.

    The student has ``student_config`` (default: the first member's architecture) and is written to
    ``<out_dir>/final.mdl`` with the history as for :func:`train_model`, plus ``distill.json``. With
    ``teacher_mode="cache"`` the top-k cache for this training set and T lives in ``cache_dir``
    (default ``<out_dir>/teacher_cache``) and is built first if absent.
    """
    config = config or DnnTrainConfig()
    distill = distill or DistillConfig()
    distill.check()
    out = Path(out_dir)
    if resume and is_done(out) and (out / "final.mdl").is_file():  # finished: no teacher needed
        return train_model(student_config or DnnConfig(num_pdfs=train_data.num_pdfs), train_data, dev_data, out,
                           config, resume=True)
    device = resolve_device(config.device)
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    ensemble = load_ensemble(list(teacher_models), device=device, combine=distill.combine)
    if ensemble.config.num_pdfs != train_data.num_pdfs:
        raise UserFacingError(f"teacher has {ensemble.config.num_pdfs} pdfs but the alignments have "
                              f"{train_data.num_pdfs}")
    student_config = student_config or ensemble.config
    t, st = ensemble.config, student_config
    if (st.left, st.right, st.feat_dim) != (t.left, t.right, t.feat_dim):
        raise UserFacingError(f"the student's input window ({st.left} left, {st.right} right, {st.feat_dim} dims) "
                              f"differs from the teacher's ({t.left}, {t.right}, {t.feat_dim}): distillation "
                              "feeds both the same spliced frames")
    if distill.teacher_mode == "cache":
        cache = Path(cache_dir) if cache_dir else out / "teacher_cache"
        if not (cache / "cache.json").is_file():
            build_teacher_cache(ensemble, train_data.to(device), cache, distill.temperature, distill.topk,
                                distill.combine, config.eval_batch_size, [str(p) for p in teacher_models])
        teacher: OnTheFlyTeacher | CachedTeacher = CachedTeacher(cache, train_data, distill.temperature,
                                                                 distill.cache_remainder)
        del ensemble
    else:
        teacher = OnTheFlyTeacher(ensemble, distill.combine)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "distill.json", {"teachers": [str(p) for p in teacher_models],
                                             "distill": distill.to_dict(), "student": student_config.to_dict(),
                                             "train": config.to_dict()})
    return train_model(student_config, train_data, dev_data, out, config,
                       objective=DistillObjective(teacher, distill), resume=resume)
