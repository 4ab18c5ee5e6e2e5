"""Train a student model from an ensemble teacher (soft targets at temperature T, plus hard targets).

The student is trained by :func:`asrdistill.nnet.train.train_model` (same shuffling, newbob schedule on
the dev set's hard-target CE, checkpoints and resume) with the per-batch loss

    loss = soft_weight * T^2 * CE(p_T, q_T) + hard_weight * CE(y, q_1)

where ``q_T`` is the student's softmax at temperature T, ``y`` the alignment's pdf and ``p_T`` the
ensemble's soft target, by default exactly ``(1/M) sum_m softmax(member_logits_m / T)`` (``combine=
"geometric"``: normalised geometric mean). ``loss="logits"`` replaces the soft term by logit matching
(squared error to the members' mean zero-mean logits, see :mod:`asrdistill.distill.loss`).

Teacher outputs come from running the members on each batch (``teacher_mode="onthefly"``, exact) or
from a cache of the members' logits built once for every temperature (``"cache"``, see
:mod:`asrdistill.distill.cache`); both serve soft targets and logit matching.

Independence from the members: the student's seed (its initial weights and its batch order) must differ
from every member's. Members trained by ``train-ensemble`` have seeds ``SEED .. SEED+M-1``, recorded in each
member dir's ``history.json``; :func:`default_student_seed` is one more than the largest of them, and
:func:`train_student` refuses a seed that a member used.

Priors (used only for decoding): see :mod:`asrdistill.distill.priors`; ``DistillConfig.priors`` chooses the
full training alignments' counts (default; ``prior_ali``) or the student's mean posterior on the full
training set (``prior_data``); the choice is recorded in ``<out>/priors.json``.

"Soft targets as a regulariser" (paper Table 5) is configuration: pass a subset of the training data
(:meth:`FrameDataset.subset`) as ``train_data``, an ensemble (or single model) trained on all of the
data as teacher, and the full data's alignments as ``prior_ali`` (or the full dataset as ``prior_data``);
the hard-target-only baseline is ``nnet.train.train_model`` on the same subset.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from asrdistill.distill.config import DistillConfig
from asrdistill.distill.loss import distillation_loss, logit_matching_loss
from asrdistill.distill.priors import apply_log_prior, student_log_prior
from asrdistill.distill.teacher import CachedTeacher, OnTheFlyTeacher, build_teacher_cache
from asrdistill.errors import UserFacingError
from asrdistill.nnet.config import member_files
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.device import resolve_device
from asrdistill.nnet.ensemble import load_ensemble
from asrdistill.nnet.model import DnnConfig
from asrdistill.nnet.train import DnnTrainConfig, TrainResult, train_model
from asrdistill.utils import get_logger, is_done, write_json_atomic

log = get_logger(__name__)

#: The student's seed when no member records its seed (e.g. imported models): far from the small seeds
#: that ensembles use.
FALLBACK_STUDENT_SEED = 1_000_003


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


def member_seeds(teacher_models: Sequence[str | os.PathLike]) -> dict[str, int]:
    """Model file -> the seed it was trained with, for each member whose dir has a ``history.json`` saying so."""
    seeds = {}
    for f in member_files(teacher_models):
        hist = Path(f).parent / "history.json"
        try:
            seed = json.loads(hist.read_text())["train_config"]["seed"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(seed, int):
            seeds[str(f)] = seed
    return seeds


def default_student_seed(teacher_models: Sequence[str | os.PathLike]) -> int:
    """One more than the largest recorded member seed (``SEED + M`` for a ``train-ensemble`` of M members
    with seeds ``SEED..SEED+M-1``), or :data:`FALLBACK_STUDENT_SEED` when no member records one."""
    seeds = member_seeds(teacher_models)
    return max(seeds.values()) + 1 if seeds else FALLBACK_STUDENT_SEED


def check_student_seed(seed: int, teacher_models: Sequence[str | os.PathLike]) -> None:
    for f, s in member_seeds(teacher_models).items():
        if s == seed:
            raise UserFacingError(f"student seed {seed} is the seed of teacher {f}: the student would start from "
                                  f"that member's initial weights and batch order; use another seed (default: "
                                  f"{default_student_seed(teacher_models)}, one more than every member's)")


def train_student(teacher_models: Sequence[str | os.PathLike], train_data: FrameDataset, dev_data: FrameDataset,
                  out_dir: str | os.PathLike, config: DnnTrainConfig | None = None,
                  distill: DistillConfig | None = None, student_config: DnnConfig | None = None,
                  cache_dir: str | os.PathLike | None = None, resume: bool = True,
                  prior_ali: str | os.PathLike | None = None, prior_data: FrameDataset | None = None,
                  data_fingerprints: dict | None = None) -> TrainResult:
    """Distil the ensemble of ``teacher_models`` (model files or an ``ensemble.json``) into one model.

    The student has ``student_config`` (default: the first member's architecture), the seed
    ``config.seed`` (refused if a member used it, see module docstring), and is written to
    ``<out_dir>/final.mdl`` with the history as for :func:`train_model`, plus ``distill.json`` and
    ``priors.json``. With ``teacher_mode="cache"`` the logit cache lives in ``cache_dir`` (default
    ``<out_dir>/teacher_cache``; built first if absent) and must have been built from these member files
    and this training data (``data_fingerprints``: the training dirs' fingerprints, checked when given).
    Priors: ``distill.priors == "counts"`` counts ``prior_ali`` (default: ``prior_data``'s, else
    ``train_data``'s targets); ``"posterior"`` averages the student's posterior over ``prior_data``
    (default ``train_data``).
    """
    config = config or DnnTrainConfig()
    distill = distill or DistillConfig()
    distill.check()
    out = Path(out_dir)
    files = [str(f) for f in member_files(teacher_models)]
    check_student_seed(config.seed, files)
    priors_path = out / "priors.json"
    if resume and is_done(out) and (out / "final.mdl").is_file() and priors_path.is_file():  # finished
        return train_model(student_config or DnnConfig(num_pdfs=train_data.num_pdfs), train_data, dev_data, out,
                           config, resume=True)
    device = resolve_device(config.device)
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    ensemble = load_ensemble(files, device=device, combine=distill.combine)
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
            build_teacher_cache(ensemble, train_data.to(device), cache, files, batch_size=config.eval_batch_size,
                                progress=config.progress)
        fixed_t = distill.temperature if distill.loss == "soft" and distill.soft_weight else None
        teacher: OnTheFlyTeacher | CachedTeacher = CachedTeacher(cache, train_data, files, distill.combine,
                                                                 data_fingerprints, temperature=fixed_t)
        del ensemble
    else:
        teacher = OnTheFlyTeacher(ensemble, distill.combine)
    count_prior = None
    if distill.priors == "counts":
        count_prior, prior_desc = student_log_prior("counts", data=prior_data or train_data, ali_dir=prior_ali,
                                                    count_floor=config.prior_count_floor)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "distill.json", {"teachers": files, "distill": distill.to_dict(),
                                             "student": student_config.to_dict(), "train": config.to_dict(),
                                             "seed": config.seed})
    result = train_model(student_config, train_data, dev_data, out, config,
                         objective=DistillObjective(teacher, distill), resume=resume, log_prior=count_prior)
    if distill.priors == "posterior":
        log_prior, prior_desc = student_log_prior("posterior", model=result.model.to(device),
                                                  data=prior_data or train_data, count_floor=config.prior_count_floor,
                                                  batch_size=config.eval_batch_size)
        result.model = apply_log_prior(result.model_path, log_prior)
    write_json_atomic(priors_path, prior_desc)
    return result
