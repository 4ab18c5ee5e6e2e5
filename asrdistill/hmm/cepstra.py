"""GMM features: 39-dim MFCC-like cepstra with deltas, computed from the frame store's CMVN'd fbank.

Definition (chosen for the GMM-HMM aligner; the DNNs use the fbank directly):
  1. x = the 40-dim log-mel fbank of the frame store, already CMVN-normalised per speaker;
  2. c = the first 13 coefficients of the DCT-II of x with Kaldi's MFCC DCT matrix
     (row 0 scaled by sqrt(1/40), rows k>0 by sqrt(2/40): c_k = s_k * sum_j x_j cos(pi k (j + 0.5) / 40)),
     then Kaldi's cepstral liftering with coefficient 22: c_k *= 1 + 11 sin(pi k / 22);
  3. deltas and delta-deltas as Kaldi's ``add-deltas`` (window 2): delta = sum_{n=-2..2} n c_{t+n} / 10,
     delta-delta = the same filter applied twice (a 9-tap filter on c), frames beyond the ends repeated.
Result: [c, delta, delta-delta] = 39 dims. Because the DCT is linear, c equals the DCT of the fbank
after per-speaker mean normalisation, i.e. it is essentially Kaldi's MFCC + CMN + add-deltas.
"""
from __future__ import annotations

import numpy as np

NUM_CEPS = 13
CEPSTRAL_LIFTER = 22.0
DELTA_WINDOW = 2


def dct_matrix(num_ceps: int = NUM_CEPS, num_bins: int = 40, lifter: float = CEPSTRAL_LIFTER) -> np.ndarray:
    """[num_bins, num_ceps] matrix M with cepstra = fbank @ M (Kaldi's DCT with liftering folded in)."""
    k = np.arange(num_ceps)[:, None]
    j = np.arange(num_bins)[None, :]
    m = np.sqrt(2.0 / num_bins) * np.cos(np.pi / num_bins * (j + 0.5) * k)
    m[0] = np.sqrt(1.0 / num_bins)
    if lifter > 0:
        m *= (1.0 + 0.5 * lifter * np.sin(np.pi * np.arange(num_ceps) / lifter))[:, None]
    return m.T.astype(np.float64)


def _delta_filters(window: int = DELTA_WINDOW, order: int = 2) -> list[np.ndarray]:
    base = np.arange(-window, window + 1, dtype=np.float64)
    base /= np.sum(base ** 2)
    filters = [np.array([1.0])]
    for _ in range(order):
        filters.append(np.convolve(filters[-1], base))
    return filters


def add_deltas(feats: np.ndarray, window: int = DELTA_WINDOW, order: int = 2) -> np.ndarray:
    """Kaldi add-deltas: [T, D] -> [T, D * (order + 1)], frames beyond the ends repeated."""
    feats = np.asarray(feats, dtype=np.float64)
    t = feats.shape[0]
    out = [feats]
    for filt in _delta_filters(window, order)[1:]:
        half = len(filt) // 2
        idx = np.clip(np.arange(-half, t + half), 0, max(t - 1, 0))
        padded = feats[idx]
        acc = np.zeros_like(feats)
        for n, w in enumerate(filt):
            if w != 0.0:
                # filt is symmetric up to sign; correlation: out[t] = sum_n w_n x[t + n - half]
                acc += w * padded[n:n + t]
        out.append(acc)
    return np.concatenate(out, axis=1)


class GmmFeatures:
    """Callable fbank [T, 40] -> GMM features [T, 39] (float32), with the DCT matrix cached."""

    def __init__(self, fbank_dim: int = 40, num_ceps: int = NUM_CEPS, lifter: float = CEPSTRAL_LIFTER,
                 delta_order: int = 2):
        self.matrix = dct_matrix(num_ceps, fbank_dim, lifter)
        self.delta_order = delta_order
        self.dim = num_ceps * (delta_order + 1)

    def __call__(self, fbank: np.ndarray) -> np.ndarray:
        ceps = np.asarray(fbank, dtype=np.float64) @ self.matrix
        return np.ascontiguousarray(add_deltas(ceps, order=self.delta_order), dtype=np.float32)

    def config(self) -> dict:
        return {"type": "dct13+lifter22+deltas", "num_ceps": int(self.matrix.shape[1]),
                "fbank_dim": int(self.matrix.shape[0]), "delta_order": self.delta_order, "dim": self.dim}
