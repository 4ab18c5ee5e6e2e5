"""Tree statistics: one diagonal Gaussian's sufficient statistics per seen (left, centre, right, pdf-class).

As Kaldi's acc-tree-stats with GaussClusterable: for every context seen in the alignment we keep the
frame count, the sum of the features and the sum of their squares. The contexts are kept as a sorted
int32 array ``keys`` [K, 4] (columns: left phone, centre phone, right phone, pdf-class; phone 0 = no phone,
i.e. the utterance boundary) with float64 ``counts`` [K], ``sums`` [K, D] and ``sumsq`` [K, D].
Accumulation is vectorised: frames are buffered (float32) and reduced by context with one sort per
a few thousand frames, and the partial results are folded together now and then.
"""
from __future__ import annotations

import math
import os
from typing import Iterable, Sequence

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import atomic_path

LOG_2PI = math.log(2.0 * math.pi)
_PHONE_BITS = 16  # phone ids < 65536
_PDF_CLASS_BITS = 8  # pdf-classes < 256


def gauss_objf(counts: np.ndarray, sums: np.ndarray, sumsq: np.ndarray, var_floor: float) -> np.ndarray:
    """Log-likelihood of the data under its own ML diagonal Gaussian (Kaldi's GaussClusterable::Objf).

    Vectorised over leading axes: ``counts`` [...], ``sums``/``sumsq`` [..., D]. The variance is floored
    at ``var_floor``; zero counts give 0. Per frame: -0.5 * sum_d (var_d / floored_d + log(2 pi floored_d)).
    """
    counts = np.asarray(counts, dtype=np.float64)
    sums = np.asarray(sums, dtype=np.float64)
    dim = sums.shape[-1]
    inv = 1.0 / np.where(counts > 0, counts, 1.0)[..., None]
    mean = sums * inv
    var = sumsq * inv
    mean *= mean
    var -= mean
    floored = np.maximum(var, var_floor)
    if var_floor > 0:  # var / floored = min(var, floor) / floor
        ratio_sum = np.minimum(var, var_floor, out=var).sum(-1) / var_floor
    else:
        ratio_sum = (var / floored).sum(-1)
    # sum of logs as logs of products of 8 dims: 8x fewer logs, and 8 floored variances cannot overflow
    log_det = np.log(np.multiply.reduceat(floored, np.arange(0, dim, 8), axis=-1)).sum(-1)
    per_frame = -0.5 * (ratio_sum + log_det + dim * LOG_2PI)
    return np.where(counts > 0, counts * per_frame, 0.0)


def encode_contexts(left: np.ndarray, centre: np.ndarray, right: np.ndarray,
                    pdf_class: np.ndarray) -> np.ndarray:
    """Pack (left, centre, right, pdf-class) into one sortable int64 code."""
    code = left.astype(np.int64)
    code = (code << _PHONE_BITS) | centre.astype(np.int64)
    code = (code << _PHONE_BITS) | right.astype(np.int64)
    return (code << _PDF_CLASS_BITS) | pdf_class.astype(np.int64)


def decode_contexts(codes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`encode_contexts`: int32 [K, 4] (left, centre, right, pdf-class)."""
    pm, cm = (1 << _PHONE_BITS) - 1, (1 << _PDF_CLASS_BITS) - 1
    out = np.empty((len(codes), 4), dtype=np.int32)
    out[:, 3] = codes & cm
    out[:, 2] = (codes >> _PDF_CLASS_BITS) & pm
    out[:, 1] = (codes >> (_PDF_CLASS_BITS + _PHONE_BITS)) & pm
    out[:, 0] = (codes >> (_PDF_CLASS_BITS + 2 * _PHONE_BITS)) & pm
    return out


def _reduce_by_code(codes: np.ndarray, counts: np.ndarray, sums: np.ndarray, sumsq: np.ndarray):
    order = np.argsort(codes, kind="stable")
    codes = codes[order]
    if len(codes) == 0:
        return codes, counts[:0], sums[:0], sumsq[:0]
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return (codes[starts], np.add.reduceat(counts[order], starts),
            np.add.reduceat(sums[order], starts, axis=0), np.add.reduceat(sumsq[order], starts, axis=0))


class TreeStats:
    """Accumulated per-context Gaussian statistics for tree building (mergeable across jobs)."""

    _FLUSH_ROWS = 200_000  # fold partial results together beyond this many contexts
    _FRAME_BUFFER = 2048  # reduce buffered frames by context beyond this many frames

    def __init__(self, dim: int, var_floor: float = 0.01):
        self.dim = int(dim)
        self.var_floor = float(var_floor)
        self._codes = np.zeros(0, dtype=np.int64)
        self._counts = np.zeros(0, dtype=np.float64)
        self._sums = np.zeros((0, self.dim), dtype=np.float64)
        self._sumsq = np.zeros((0, self.dim), dtype=np.float64)
        self._pending: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._pending_rows = 0
        self._frames: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]] = []
        self._frames_buffered = 0

    # ----------------------------------------------------------------------------- accumulation
    def accumulate_frames(self, feats: np.ndarray, left: np.ndarray, centre: np.ndarray,
                          right: np.ndarray, pdf_class: np.ndarray, weights: np.ndarray | None = None) -> None:
        """Add frames with their per-frame contexts (all arrays of length T)."""
        feats = np.asarray(feats)
        if feats.ndim != 2 or feats.shape[1] != self.dim:
            raise ValueError(f"feats must be [T, {self.dim}], got {feats.shape}")
        n = feats.shape[0]
        for name, a in (("left", left), ("centre", centre), ("right", right), ("pdf_class", pdf_class)):
            if len(a) != n:
                raise ValueError(f"{name} has {len(a)} entries for {n} frames")
        if n == 0:
            return
        if np.any(np.asarray(pdf_class) < 0) or np.any(np.asarray(pdf_class) >= (1 << _PDF_CLASS_BITS)):
            raise ValueError("pdf-class out of range [0, 256)")
        codes = encode_contexts(np.asarray(left), np.asarray(centre), np.asarray(right), np.asarray(pdf_class))
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        self._frames.append((codes, np.array(feats, dtype=np.float32), w))
        self._frames_buffered += n
        if self._frames_buffered >= self._FRAME_BUFFER:
            self._reduce_frames()

    def _reduce_frames(self) -> None:
        """Reduce the buffered frames by context (one sort for many utterances)."""
        if not self._frames:
            return
        codes = np.concatenate([f[0] for f in self._frames])
        x = np.concatenate([f[1] for f in self._frames])
        if all(f[2] is None for f in self._frames):
            w = None
        else:
            w = np.concatenate([np.ones(len(f[0])) if f[2] is None else f[2] for f in self._frames])
        self._frames, self._frames_buffered = [], 0
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        x = x[order].astype(np.float64)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        if w is None:
            counts = np.diff(np.r_[starts, len(codes)]).astype(np.float64)
            xw = x
        else:
            w = w[order]
            counts = np.add.reduceat(w, starts)
            xw = x * w[:, None]
        sums = np.add.reduceat(xw, starts, axis=0)
        xw *= x
        part = (codes[starts], counts, sums, np.add.reduceat(xw, starts, axis=0))
        self._pending.append(part)
        self._pending_rows += len(part[0])
        if self._pending_rows > self._FLUSH_ROWS:
            self._flush()

    def accumulate(self, feats: np.ndarray, segments: Sequence[tuple[int, np.ndarray]]) -> None:
        """Add one utterance: ``segments`` are its phones in order as (phone_id, pdf_class_per_frame).

        The frames of the segments, concatenated, must match ``feats`` [T, D]. The left context of the
        first phone and the right context of the last are 0 (no phone).
        """
        phones = np.array([int(p) for p, _ in segments], dtype=np.int64)
        lengths = np.array([len(pc) for _, pc in segments], dtype=np.int64)
        if lengths.sum() != len(feats):
            raise ValueError(f"alignment covers {int(lengths.sum())} frames but feats has {len(feats)}")
        if len(phones) == 0:
            return
        if np.any(phones <= 0):
            raise ValueError("phone ids in an alignment must be > 0")
        left = np.r_[0, phones[:-1]]
        right = np.r_[phones[1:], 0]
        pdf_class = np.concatenate([np.asarray(pc, dtype=np.int64) for _, pc in segments])
        self.accumulate_frames(feats, np.repeat(left, lengths), np.repeat(phones, lengths),
                               np.repeat(right, lengths), pdf_class)

    def _flush(self) -> None:
        self._reduce_frames()
        if not self._pending:
            return
        parts = [(self._codes, self._counts, self._sums, self._sumsq)] + self._pending
        self._codes, self._counts, self._sums, self._sumsq = _reduce_by_code(
            *(np.concatenate([p[i] for p in parts]) for i in range(4)))
        self._pending = []
        self._pending_rows = 0

    def merge(self, other: "TreeStats") -> "TreeStats":
        """Add ``other``'s statistics into this object (e.g. from another job); returns self."""
        if other.dim != self.dim:
            raise ValueError(f"cannot merge stats of dim {other.dim} into dim {self.dim}")
        other._flush()
        self._pending.append((other._codes, other._counts, other._sums, other._sumsq))
        self._flush()
        return self

    @classmethod
    def sum(cls, stats: Iterable["TreeStats"]) -> "TreeStats":
        stats = list(stats)
        out = cls(stats[0].dim, stats[0].var_floor)
        for s in stats:
            out.merge(s)
        return out

    # ----------------------------------------------------------------------------- access
    @property
    def keys(self) -> np.ndarray:
        """int32 [K, 4]: (left, centre, right, pdf-class) of each context, sorted."""
        self._flush()
        return decode_contexts(self._codes)

    @property
    def counts(self) -> np.ndarray:
        self._flush()
        return self._counts

    @property
    def sums(self) -> np.ndarray:
        self._flush()
        return self._sums

    @property
    def sumsq(self) -> np.ndarray:
        self._flush()
        return self._sumsq

    @property
    def num_contexts(self) -> int:
        self._flush()
        return len(self._codes)

    @property
    def num_frames(self) -> float:
        return float(self.counts.sum())

    def phones(self) -> np.ndarray:
        """Centre phones seen."""
        return np.unique(self.keys[:, 1])

    def objf(self) -> float:
        """Sum over contexts of the per-context Gaussian log-likelihood (upper bound for any tree)."""
        return float(gauss_objf(self.counts, self.sums, self.sumsq, self.var_floor).sum())

    # ----------------------------------------------------------------------------- I/O
    def pooled(self, labels: np.ndarray, num_labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(counts [L], sums [L, D], sums of squares [L, D]) of the contexts pooled by ``labels`` (one per context)."""
        counts = np.bincount(labels, weights=self.counts, minlength=num_labels)
        sums = np.zeros((num_labels, self.dim))
        sumsq = np.zeros((num_labels, self.dim))
        np.add.at(sums, labels, self.sums)
        np.add.at(sumsq, labels, self.sumsq)
        return counts, sums, sumsq

    def save(self, path: str | os.PathLike) -> None:
        """Write to ``path`` as .npz (no pickled objects), atomically."""
        self._flush()
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, codes=self._codes, counts=self._counts, sums=self._sums, sumsq=self._sumsq,
                         dim=np.int64(self.dim), var_floor=np.float64(self.var_floor))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "TreeStats":
        try:
            with np.load(path, allow_pickle=False) as z:
                out = cls(int(z["dim"]), float(z["var_floor"]))
                out._codes = z["codes"].astype(np.int64)
                out._counts = z["counts"].astype(np.float64)
                out._sums = z["sums"].astype(np.float64).reshape(-1, out.dim)
                out._sumsq = z["sumsq"].astype(np.float64).reshape(-1, out.dim)
        except (OSError, KeyError, ValueError) as e:
            raise UserFacingError(f"{path}: not a tree statistics file ({e})") from e
        return out
