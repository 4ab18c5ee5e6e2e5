"""Frame-level scores of a model or an ensemble: frame accuracy and cross-entropy against alignments.

``frame_acc`` is the fraction of frames whose most probable pdf is the aligned one; ``ce`` is the mean
over frames of ``-log p(aligned pdf | x)`` (natural log). Anything with ``log_probs(x) -> [B, C]`` and
a ``config`` with ``left``/``right`` context can be scored (:class:`~asrdistill.nnet.model.AcousticDnn`,
:class:`~asrdistill.nnet.ensemble.Ensemble`).
"""
from __future__ import annotations

import os
from typing import Callable, Sequence

import torch
from torch import Tensor

from asrdistill.nnet.data import FrameDataset


def autocast_context(device: torch.device):
    """bf16 autocast on CUDA, nothing (float32) elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


@torch.no_grad()
def evaluate_frames(scorer, data: FrameDataset, batch_size: int = 4096,
                    log_probs_fn: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """``{"frame_acc", "ce", "frames"}`` of ``scorer`` on ``data`` (on ``data``'s device).

    ``scorer`` needs ``config.left``/``config.right``; ``log_probs_fn`` defaults to ``scorer.log_probs``.
    The scorer is put in eval mode and restored afterwards.
    """
    was_training = getattr(scorer, "training", False)
    if hasattr(scorer, "eval"):
        scorer.eval()
    fn = log_probs_fn or scorer.log_probs
    splicer = data.splicer(scorer.config.left, scorer.config.right)
    device = data.device
    correct = torch.zeros((), dtype=torch.float64, device=device)
    ce = torch.zeros((), dtype=torch.float64, device=device)
    n = len(data)
    for start in range(0, n, batch_size):
        rows = torch.arange(start, min(n, start + batch_size), device=device)
        x = splicer(data.frames, rows)
        y = data.targets[rows]
        with autocast_context(device):
            lp = fn(x)
        lp = lp.float()
        correct += (lp.argmax(dim=-1) == y).sum()
        ce -= lp.gather(1, y.unsqueeze(1)).sum()
    if was_training:
        scorer.train()
    return {"frame_acc": float(correct) / max(n, 1), "ce": float(ce) / max(n, 1), "frames": n}


def score_frames(model_paths: str | os.PathLike | Sequence[str | os.PathLike], feat_dir: str | os.PathLike,
                 ali_dir: str | os.PathLike, combine: str = "arithmetic", device: str = "auto",
                 batch_size: int = 4096) -> dict[str, float]:
    """Frame accuracy / CE of one model, or of the ensemble of several, on a feature dir + alignment dir.

    Returns ``{"frame_acc", "ce", "frames"}``; for several models, the ensemble combined by
    ``combine`` ("arithmetic" mean of probabilities or normalised "geometric" mean), see
    :mod:`asrdistill.nnet.ensemble`.
    """
    from asrdistill.nnet.data import load_frame_dataset
    from asrdistill.nnet.ensemble import load_ensemble
    from asrdistill.nnet.train import resolve_device

    if isinstance(model_paths, (str, os.PathLike)):
        model_paths = [model_paths]
    dev = resolve_device(device)
    scorer = load_ensemble(list(model_paths), device=dev, combine=combine)
    data = load_frame_dataset(feat_dir, ali_dir, num_pdfs=scorer.config.num_pdfs).to(dev)
    if len(scorer.members) == 1:
        return evaluate_frames(scorer.members[0], data, batch_size)
    return evaluate_frames(scorer, data, batch_size)


def score_frames_per_member(model_paths: Sequence[str | os.PathLike], feat_dir: str | os.PathLike,
                            ali_dir: str | os.PathLike, device: str = "auto",
                            batch_size: int = 4096) -> dict:
    """Scores of each model, their mean, and their ensemble by both combinations (see
    :func:`asrdistill.nnet.ensemble.ensemble_report`): ``{"members": [...], "member_mean",
    "arithmetic", "geometric"}``."""
    from asrdistill.nnet.data import load_frame_dataset
    from asrdistill.nnet.ensemble import ensemble_report, load_ensemble
    from asrdistill.nnet.train import resolve_device

    dev = resolve_device(device)
    ens = load_ensemble(list(model_paths), device=dev)
    data = load_frame_dataset(feat_dir, ali_dir, num_pdfs=ens.config.num_pdfs)
    return ensemble_report(list(ens.members), {"set": data}, dev, batch_size)["set"]
