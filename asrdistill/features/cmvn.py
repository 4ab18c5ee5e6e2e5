"""Per-speaker cepstral mean and variance normalisation (CMVN) in Kaldi's format.

Kaldi keeps CMVN statistics as a 2 x (D+1) float64 matrix: row 0 holds the per-dimension sums
and, in its last column, the frame count; row 1 holds the sums of squares and a 0. Statistics add
up, so speaker stats are the sum of their utterances' stats (``compute-cmvn-stats --spk2utt``), and
applying them (``apply-cmvn``) subtracts the mean and, with ``norm_vars``, divides by the standard
deviation.
"""
from __future__ import annotations

import numpy as np

# Kaldi floors the variance here before dividing (apply-cmvn, ApplyCmvn in transform/cmvn.cc).
VARIANCE_FLOOR = 1.0e-20


def cmvn_stats(feats: np.ndarray) -> np.ndarray:
    """CMVN statistics [2, D+1] (float64) of one feature matrix [T, D]."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"expected a [T, D] feature matrix, got shape {feats.shape}")
    dim = feats.shape[1]
    stats = np.zeros((2, dim + 1), dtype=np.float64)
    stats[0, :dim] = feats.sum(axis=0)
    stats[1, :dim] = np.square(feats).sum(axis=0)
    stats[0, dim] = feats.shape[0]
    return stats


def check_stats(stats: np.ndarray, dim: int | None = None) -> None:
    if stats.ndim != 2 or stats.shape[0] != 2 or (dim is not None and stats.shape[1] != dim + 1):
        want = f"[2, {dim + 1}]" if dim is not None else "[2, D+1]"
        raise ValueError(f"CMVN stats must have shape {want}, got {stats.shape}")


def apply_cmvn(feats: np.ndarray, stats: np.ndarray, norm_vars: bool = False) -> np.ndarray:
    """``feats`` [T, D] normalised with ``stats`` [2, D+1]; float32 result (as ``apply-cmvn``)."""
    feats = np.asarray(feats)
    dim = feats.shape[1]
    stats = np.asarray(stats, dtype=np.float64)
    check_stats(stats, dim)
    count = stats[0, dim]
    if count < 1.0:
        raise ValueError(f"CMVN stats have a frame count of {count}; need at least 1")
    mean = stats[0, :dim] / count
    if not norm_vars:
        return (feats.astype(np.float64) - mean).astype(np.float32)
    var = stats[1, :dim] / count - mean * mean
    var = np.maximum(var, VARIANCE_FLOOR)
    scale = 1.0 / np.sqrt(var)
    return ((feats.astype(np.float64) - mean) * scale).astype(np.float32)
