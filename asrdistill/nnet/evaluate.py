"""Frame-level scores of a model or an ensemble: frame accuracy and cross-entropy against alignments.

``frame_acc`` is the fraction of frames whose most probable pdf is the aligned one; ``ce`` is the mean
over frames of ``-log p(aligned pdf | x)`` (natural log). Anything with ``log_probs(x) -> [B, C]`` and
a ``config`` with ``left``/``right`` context can be scored (:class:`~asrdistill.nnet.model.AcousticDnn`,
:class:`~asrdistill.nnet.ensemble.Ensemble`). :func:`ensemble_report` scores each member of an ensemble,
their mean and the ensemble under both combinations.
:func:`ensemble_scores_per_utt` gives the per-utterance counts of the members and of both combinations
from one forward pass of each member (what ``make-results`` uses).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import torch
from torch import Tensor

from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.device import autocast_context, resolve_device
from asrdistill.nnet.ensemble import COMBINE_METHODS, Ensemble, combine_log_probs, load_ensemble


@torch.no_grad()
def frame_score_sums(scorer, data: FrameDataset, batch_size: int = 4096,
                     log_probs_fn: Callable[[Tensor], Tensor] | None = None, start: int = 0,
                     end: int | None = None) -> Tensor:
    """float64 [3] on ``data``'s device: correct frames, summed CE and frames of rows ``[start, end)``.

    Sums of disjoint row ranges add up (a DDP rank scores its :func:`~asrdistill.nnet.distributed.shard`
    and the ranks' sums are reduced); :func:`evaluate_frames` divides them.
    """
    was_training = getattr(scorer, "training", False)
    if hasattr(scorer, "eval"):
        scorer.eval()
    fn = log_probs_fn or scorer.log_probs
    splicer = data.splicer(scorer.config.left, scorer.config.right)
    device = data.device
    correct = torch.zeros((), dtype=torch.float64, device=device)
    ce = torch.zeros((), dtype=torch.float64, device=device)
    end = len(data) if end is None else end
    for first in range(start, end, batch_size):
        rows = torch.arange(first, min(end, first + batch_size), device=device)
        x = splicer(data.frames, rows)
        y = data.targets[rows]
        with autocast_context(device):
            lp = fn(x)
        lp = lp.float()
        correct += (lp.argmax(dim=-1) == y).sum()
        ce -= lp.gather(1, y.unsqueeze(1)).sum()
    if was_training:
        scorer.train()
    return torch.stack([correct, ce, torch.tensor(float(max(end - start, 0)), dtype=torch.float64, device=device)])


def scores_from_sums(sums: Tensor) -> dict[str, float]:
    """``{"frame_acc", "ce", "frames"}`` from :func:`frame_score_sums`'s sums."""
    correct, ce, n = (float(v) for v in sums.cpu())
    return {"frame_acc": correct / max(n, 1), "ce": ce / max(n, 1), "frames": int(n)}


def evaluate_frames(scorer, data: FrameDataset, batch_size: int = 4096,
                    log_probs_fn: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """``{"frame_acc", "ce", "frames"}`` of ``scorer`` on ``data`` (on ``data``'s device).

    ``scorer`` needs ``config.left``/``config.right``; ``log_probs_fn`` defaults to ``scorer.log_probs``.
    The scorer is put in eval mode and restored afterwards.
    """
    return scores_from_sums(frame_score_sums(scorer, data, batch_size, log_probs_fn))


@torch.no_grad()
def _hits_per_utt(scorer, data: FrameDataset, batch_size: int, keys: Sequence[Any],
                  outputs: Callable[[Tensor], dict[Any, Tensor]]) -> dict[Any, dict[str, tuple[int, int]]]:
    """Per-utterance ``(correct_frames, frames)`` of each of ``keys``: ``outputs(x)`` maps a batch of spliced
    input to one ``log p`` [B, C] per key (computed under the device's autocast, argmax as
    :func:`evaluate_frames`). ``scorer`` gives the input context and is put in eval mode meanwhile."""
    import numpy as np

    was_training = getattr(scorer, "training", False)
    if hasattr(scorer, "eval"):
        scorer.eval()
    splicer = data.splicer(scorer.config.left, scorer.config.right)
    device = data.device
    n = len(data)
    hits = {k: torch.zeros(n, dtype=torch.bool, device=device) for k in keys}
    for start in range(0, n, batch_size):
        rows = torch.arange(start, min(n, start + batch_size), device=device)
        with autocast_context(device):
            lps = outputs(splicer(data.frames, rows))
        for k in keys:
            hits[k][rows] = lps[k].float().argmax(dim=-1) == data.targets[rows]
    if was_training:
        scorer.train()
    offsets = data.offsets.cpu().numpy().astype(np.int64)
    per_utt = {}
    for k, h in hits.items():
        cum = np.concatenate([[0], np.cumsum(h.cpu().numpy(), dtype=np.int64)])
        correct = cum[offsets[1:]] - cum[offsets[:-1]]
        per_utt[k] = {u: (int(c), int(e - s)) for u, c, s, e in zip(data.utts, correct, offsets[:-1], offsets[1:])}
    return per_utt


def frame_scores_per_utt(scorer, data: FrameDataset, batch_size: int = 4096,
                         log_probs_fn: Callable[[Tensor], Tensor] | None = None) -> dict[str, tuple[int, int]]:
    """``{utt: (correct_frames, frames)}`` of ``scorer`` on ``data``: the per-utterance counts behind
    :func:`evaluate_frames`'s frame accuracy (same argmax rule), for significance tests that resample
    utterances and speakers (:mod:`asrdistill.report.significance`)."""
    fn = log_probs_fn or scorer.log_probs
    return _hits_per_utt(scorer, data, batch_size, [0], lambda x: {0: fn(x)})[0]


def ensemble_scores_per_utt(ensemble: Ensemble, data: FrameDataset,
                            batch_size: int = 4096) -> dict[int | str, dict[str, tuple[int, int]]]:
    """:func:`frame_scores_per_utt` of every member (keys 0..M-1) and of the ensemble under each combination
    (keys ``"arithmetic"``, ``"geometric"``), from one forward pass of each member per batch instead of one
    per member and one more per combination. The counts equal the separate calls' (same operations)."""
    def outputs(x: Tensor) -> dict[int | str, Tensor]:
        z = ensemble.member_logits(x)
        lps: dict[int | str, Tensor] = {i: torch.log_softmax(z[i].float(), dim=-1) for i in range(z.shape[0])}
        lps.update({method: combine_log_probs(z, method) for method in COMBINE_METHODS})
        return lps

    keys = list(range(len(ensemble.members))) + list(COMBINE_METHODS)
    return _hits_per_utt(ensemble, data, batch_size, keys, outputs)


def score_frames(model_paths: str | os.PathLike | Sequence[str | os.PathLike], feat_dir: str | os.PathLike,
                 ali_dir: str | os.PathLike, combine: str = "arithmetic", device: str = "auto",
                 batch_size: int = 4096) -> dict[str, float]:
    """Frame accuracy / CE of one model, or of the ensemble of several, on a feature dir + alignment dir.

    Returns ``{"frame_acc", "ce", "frames"}``; for several models, the ensemble combined by
    ``combine`` ("arithmetic" mean of probabilities or normalised "geometric" mean), see
    :mod:`asrdistill.nnet.ensemble`.
    """
    from asrdistill.nnet.data import load_frame_dataset

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
    :func:`ensemble_report`): ``{"members": [...], "member_mean", "arithmetic", "geometric"}``."""
    from asrdistill.nnet.data import load_frame_dataset

    dev = resolve_device(device)
    ens = load_ensemble(list(model_paths), device=dev)
    data = load_frame_dataset(feat_dir, ali_dir, num_pdfs=ens.config.num_pdfs)
    return ensemble_report(list(ens.members), {"set": data}, dev, batch_size)["set"]


def ensemble_report(models: Sequence[Any], eval_sets: dict[str, FrameDataset], device: torch.device,
                    batch_size: int = 4096) -> dict[str, Any]:
    """Per set: ``members`` (list of scores), ``member_mean``, ``arithmetic`` and ``geometric`` ensemble scores."""
    models = [m.to(device).eval() for m in models]
    report: dict[str, Any] = {}
    for name, data in eval_sets.items():
        data = data.to(device)
        scores = [evaluate_frames(m, data, batch_size) for m in models]
        mean = {k: sum(s[k] for s in scores) / len(scores) for k in ("frame_acc", "ce")}
        mean["frames"] = scores[0]["frames"]
        entry = {"members": scores, "member_mean": mean}
        for method in COMBINE_METHODS:
            entry[method] = evaluate_frames(Ensemble(models, combine=method), data, batch_size)
        report[name] = entry
    return report
