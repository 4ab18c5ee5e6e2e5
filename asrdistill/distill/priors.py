"""The student's pdf priors: how the log prior that turns its posteriors into decoding likelihoods is obtained.

A hybrid decoder scores ``log p(pdf | x) - log p(pdf)``; the prior should be the one the model's
posteriors are calibrated to. Two choices (``DistillConfig.priors``):

* ``"counts"`` (default, Kaldi nnet1's ``analyze-counts`` of the training alignments): the pdf frame counts
  of the **full** training alignment dir (every utterance of ``pdf.scp``), each raised to at least
  ``count_floor`` and normalised (:func:`asrdistill.nnet.model.log_prior_from_counts`). A student trained on a
  subset (paper Table 5, 3% of the data) still gets the full-data counts: the subset's ~17 frames per pdf
  would give a noisy prior that no model of the full data has.
* ``"posterior"`` (Kaldi nnet3's prior adjustment): the student's own mean posterior
  ``(1/N) sum_t softmax(z_t)`` over the N frames of the full training set (its features need no labels, so a
  subset student uses them too), floored at ``count_floor / N`` and renormalised. Soft targets make a
  student's posteriors follow the teacher's rather than the alignment's counts; this prior fits them.

:func:`student_log_prior` computes either; :func:`apply_log_prior` writes it into a model file (atomically);
the distill command records the choice in ``<out>/priors.json``.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from asrdistill.errors import UserFacingError
from asrdistill.nnet.data import FrameDataset, read_num_pdfs, read_pdf_alignments
from asrdistill.nnet.model import AcousticDnn, log_prior_from_counts


def alignment_pdf_counts(ali_dir: str | os.PathLike, num_pdfs: int | None = None) -> np.ndarray:
    """Frames per pdf over every utterance of ``<ali_dir>/pdf.scp`` (float64 [num_pdfs])."""
    num_pdfs = read_num_pdfs(ali_dir) if num_pdfs is None else int(num_pdfs)
    counts = np.zeros(num_pdfs, dtype=np.float64)
    for utt, pdfs in read_pdf_alignments(ali_dir).items():
        if len(pdfs) and (pdfs.min() < 0 or pdfs.max() >= num_pdfs):
            raise UserFacingError(f"{ali_dir}/pdf.scp (utterance {utt}): pdf-id out of range [0, {num_pdfs})")
        counts += np.bincount(pdfs, minlength=num_pdfs)
    return counts


@torch.no_grad()
def mean_posterior(model: AcousticDnn, data: FrameDataset, batch_size: int = 4096) -> np.ndarray:
    """``(1/N) sum_t softmax(model(x_t))`` over every row of ``data`` (float64 [num_pdfs])."""
    from asrdistill.nnet.device import autocast_context

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    data = data.to(device)
    splicer = data.splicer(model.config.left, model.config.right)
    total = torch.zeros(model.config.num_pdfs, dtype=torch.float64, device=device)
    n = len(data)
    for start in range(0, n, batch_size):
        rows = torch.arange(start, min(n, start + batch_size), device=device)
        with autocast_context(device):
            z = model(splicer(data.frames, rows))
        total += torch.softmax(z.float(), dim=-1).sum(dim=0, dtype=torch.float64)
    if was_training:
        model.train()
    return (total / max(n, 1)).cpu().numpy()


def student_log_prior(method: str, model: AcousticDnn | None = None, data: FrameDataset | None = None,
                      ali_dir: str | os.PathLike | None = None, count_floor: float = 1.0,
                      batch_size: int = 4096) -> tuple[np.ndarray, dict[str, Any]]:
    """``(log prior float32 [C], description)`` by ``method`` (see module docstring).

    ``counts`` reads ``ali_dir`` (the full training alignments) when given, else counts ``data``'s targets;
    ``posterior`` needs the trained ``model`` and the full training ``data``.
    """
    if method == "counts":
        if ali_dir is not None:
            counts = alignment_pdf_counts(ali_dir, model.config.num_pdfs if model is not None else None)
            source = str(ali_dir)
        elif data is not None:
            counts, source = data.pdf_counts(), data.source or "training data"
        else:
            raise UserFacingError("count priors need the training alignment dir or dataset")
        desc = {"method": "counts", "source": source, "frames": int(counts.sum()), "count_floor": count_floor}
        return log_prior_from_counts(counts, count_floor), desc
    if method == "posterior":
        if model is None or data is None:
            raise UserFacingError("posterior priors need the trained model and the training data")
        mean = mean_posterior(model, data, batch_size)
        n = max(len(data), 1)
        p = np.maximum(mean, count_floor / n)
        p = p / p.sum()
        return np.log(p).astype(np.float32), {"method": "posterior", "source": data.source or "training data",
                                              "frames": len(data), "floor": count_floor / n}
    raise UserFacingError(f"unknown priors {method!r} (counts or posterior)")


def apply_log_prior(model_path: str | os.PathLike, log_prior: np.ndarray) -> AcousticDnn:
    """Rewrite ``model_path`` (atomically) with ``log_prior``; returns the model."""
    from asrdistill.nnet.model import load_model, save_model

    model = load_model(model_path)
    model.set_log_prior(log_prior)
    save_model(model_path, model)
    return model
