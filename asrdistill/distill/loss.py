"""Distillation losses: soft targets at a temperature, hard targets, and logit matching.

With student logits ``z``, temperature ``T``, ``q_T = softmax(z / T)``, soft targets ``p_T`` (a
distribution per frame, e.g. the ensemble's, see :func:`ensemble_soft_targets`) and the alignment's
pdf ``y``:

* :func:`soft_cross_entropy` = mean over frames of ``CE(p_T, q_T) = -sum_c p_T[c] log q_T[c]``; its
  gradient w.r.t. ``z`` is ``(1/T)(q_T - p_T)`` per frame (divided by the batch size for the mean).
* :func:`distillation_loss` = ``w_soft * T^2 * CE(p_T, q_T) + w_hard * CE(y, q_1)`` (Hinton et al. 2015:
  the ``T^2`` keeps the soft gradients' scale independent of T; hard weight 0.5 relative to 1).
* :func:`logit_matching_loss` = mean over frames of ``(1/2C) sum_c (z'_c - v'_c)^2`` with ``z'``, ``v'``
  the zero-mean student and teacher logits (C pdfs). Its gradient ``(1/C)(z' - v')`` is the high-T limit
  of ``T^2 *`` the soft-target gradient (paper Sec. 2.1), so the two are on the same scale.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from asrdistill.nnet.ensemble import combine_log_probs


def _upcast(t: Tensor) -> Tensor:
    """At least float32 (bf16/fp16 logits from autocast are upcast; float64 stays float64)."""
    return t.to(torch.promote_types(t.dtype, torch.float32))


def ensemble_soft_targets(member_logits: Tensor, temperature: float, method: str = "arithmetic") -> Tensor:
    """Soft targets ``p_T`` [B, C] from member logits [M, B, C].

    ``arithmetic`` (the paper's): ``p_T = (1/M) sum_m softmax(z_m / T)``, exactly; ``geometric``:
    ``softmax((1/M) sum_m log_softmax(z_m / T))``.
    """
    return combine_log_probs(member_logits, method, temperature).exp()


def zero_mean_teacher_logits(member_logits: Tensor) -> Tensor:
    """Mean over members of each member's zero-meaned logits [B, C] (the logit-matching target)."""
    z = _upcast(member_logits)
    return (z - z.mean(dim=-1, keepdim=True)).mean(dim=0)


def soft_cross_entropy(student_logits: Tensor, soft_targets: Tensor, temperature: float = 1.0) -> Tensor:
    """Mean over frames of ``-sum_c p[c] log softmax(z / T)[c]`` (no ``T^2`` factor)."""
    log_q = F.log_softmax(_upcast(student_logits) / temperature, dim=-1)
    return -(soft_targets * log_q).sum(dim=-1).mean()


def distillation_loss(student_logits: Tensor, targets: Tensor | None, soft_targets: Tensor | None,
                      temperature: float, soft_weight: float = 1.0, hard_weight: float = 0.5) -> Tensor:
    """``soft_weight * T^2 * CE(p_T, q_T) + hard_weight * CE(y, q_1)`` averaged over frames.

    A zero weight skips its term (its targets may then be None).
    """
    loss = _upcast(student_logits).new_zeros(())
    if soft_weight:
        loss = loss + soft_weight * temperature ** 2 * soft_cross_entropy(student_logits, soft_targets, temperature)
    if hard_weight:
        loss = loss + hard_weight * F.cross_entropy(_upcast(student_logits), targets)
    return loss


def logit_matching_loss(student_logits: Tensor, teacher_zero_mean_logits: Tensor) -> Tensor:
    """Mean over frames of ``(1/2C) ||(z - mean z) - v||^2`` (``v``: zero-mean teacher logits)."""
    z = _upcast(student_logits)
    z = z - z.mean(dim=-1, keepdim=True)
    return 0.5 * ((z - teacher_zero_mean_logits) ** 2).mean(dim=-1).mean()
