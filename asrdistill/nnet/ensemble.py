"""Ensembles of DNN acoustic models that differ only in their random seed, and how they are combined.

Combination of the members' pdf distributions at temperature T (``z_m`` member m's logits, M members):

* ``arithmetic`` (default; Hinton et al. 2015): ``p = (1/M) sum_m softmax(z_m / T)``.
* ``geometric``: normalised geometric mean, ``p = softmax((1/M) sum_m log_softmax(z_m / T))``.

:func:`combine_log_probs` computes ``log p`` from stacked member logits. :class:`Ensemble` is scored like
a single model (``log_probs``, ``log_likelihoods`` with the members' shared log prior). Training the
members is :mod:`asrdistill.nnet.members`; scoring them, :func:`asrdistill.nnet.evaluate.ensemble_report`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from asrdistill.errors import UserFacingError
from asrdistill.nnet.config import member_files
from asrdistill.nnet.model import AcousticDnn, DnnConfig, load_model
COMBINE_METHODS = ("arithmetic", "geometric")


def combine_log_probs(member_logits: Tensor, method: str = "arithmetic", temperature: float = 1.0) -> Tensor:
    """Log of the combined distribution [B, C] from member logits [M, B, C] (float32; see module doc)."""
    z = member_logits.float() / temperature
    logp = torch.log_softmax(z, dim=-1)
    if method == "arithmetic":
        return torch.logsumexp(logp, dim=0) - math.log(z.shape[0])
    if method == "geometric":
        return torch.log_softmax(logp.mean(dim=0), dim=-1)
    raise UserFacingError(f"unknown ensemble combination {method!r} (choose from {', '.join(COMBINE_METHODS)})")


class Ensemble(nn.Module):
    """Several :class:`AcousticDnn` of the same input context and pdf set, scored as one model."""

    def __init__(self, members: Sequence[AcousticDnn], combine: str = "arithmetic"):
        super().__init__()
        if not members:
            raise UserFacingError("an ensemble needs at least one member")
        if combine not in COMBINE_METHODS:
            raise UserFacingError(f"unknown ensemble combination {combine!r}")
        first = members[0].config
        for i, m in enumerate(members[1:], 1):
            c = m.config
            if (c.num_pdfs, c.left, c.right, c.feat_dim) != (first.num_pdfs, first.left, first.right, first.feat_dim):
                raise UserFacingError(f"ensemble member {i} has a different pdf set or input context than member 0")
        self.members = nn.ModuleList(members)
        self.combine = combine

    @property
    def config(self) -> DnnConfig:
        return self.members[0].config

    @property
    def log_prior(self) -> Tensor:
        return self.members[0].log_prior

    def member_logits(self, x: Tensor) -> Tensor:
        """Stacked logits [M, B, C]."""
        return torch.stack([m(x) for m in self.members])

    def forward(self, x: Tensor) -> Tensor:
        return self.member_logits(x)

    def log_probs(self, x: Tensor, temperature: float = 1.0, method: str | None = None) -> Tensor:
        return combine_log_probs(self.member_logits(x), method or self.combine, temperature)

    def log_likelihoods(self, x: Tensor) -> Tensor:
        return self.log_probs(x) - self.log_prior


def load_ensemble(paths: Sequence[str | os.PathLike], device: torch.device | str = "cpu",
                  combine: str = "arithmetic") -> Ensemble:
    """An :class:`Ensemble` (eval mode) of model files; an ensemble dir or ``ensemble.json`` expands to its
    members."""
    return Ensemble([load_model(f, device) for f in member_files(paths)], combine=combine).eval()
