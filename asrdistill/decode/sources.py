"""Where a decode's acoustic scores come from: a GMM on the frame store, a DNN (or ensemble) on the frame
store, or matrices of pdf log-likelihoods from a Kaldi table. Each source is ``(utts, source, am)`` ready for
:func:`asrdistill.decode.decoder.decode_and_score`.

:class:`GmmLoglikes` turns a GMM's features into the same ``[T, num_pdfs]`` matrix of pdf log-likelihoods as a
DNN gives (Kaldi's diagonal-GMM formula, all Gaussians in one matrix product), so that GMM systems can be
decoded by the lattice route too (``kaldi_decoder``'s decoders take only matrices)."""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from asrdistill.errors import UserFacingError


def gmm_source(model: Any, feat_dir: str | os.PathLike, refs: Mapping[str, str] | None = None
               ) -> tuple[list[str], Callable[[str], np.ndarray], Any]:
    """GMM features of the frame store (the model's feature config) and the model's GMMs."""
    from asrdistill.features.store import FrameStore
    from asrdistill.hmm.cepstra import GmmFeatures

    store = FrameStore(feat_dir)
    cfg = model.feature_config or {}
    featurize = GmmFeatures(fbank_dim=int(cfg.get("fbank_dim", store.dim)), num_ceps=int(cfg.get("num_ceps", 13)),
                            delta_order=int(cfg.get("delta_order", 2)))
    utts = sorted(refs) if refs is not None else list(store.utts)
    missing = [u for u in utts if u not in store]
    if missing:
        raise UserFacingError(f"{feat_dir}: no features for {len(missing)} utterances to decode, e.g. {missing[0]}")
    return utts, (lambda utt: featurize(store.get(utt))), model.am


class GmmLoglikes:
    """``feats [T, D] -> [T, num_pdfs]`` pdf log-likelihoods of an ``AmDiagGmm``: per Gaussian
    ``gconst + (mean * invvar) . x - 0.5 * invvar . x^2`` (Kaldi's ``DiagGmm::LogLikelihoods``, ``gconst`` holding
    the log weight), log-sum-exp over each pdf's Gaussians; float32 arithmetic, as Kaldi's."""

    def __init__(self, am: Any):
        gmms = [am.get_pdf(p) for p in range(int(am.num_pdfs))]
        self.num_pdfs = len(gmms)
        self.dim = int(am.dim)
        self.sizes = np.array([int(g.num_gauss) for g in gmms], dtype=np.int64)
        self.gconsts = np.concatenate([np.asarray(g.gconsts, dtype=np.float32) for g in gmms])
        # one matrix product gives the linear and the quadratic term: [x, x^2] . [mean*invvar, -invvar/2]
        self.weights = np.ascontiguousarray(np.concatenate(
            [np.concatenate([np.asarray(g.means_invvars, dtype=np.float32) for g in gmms]),
             -0.5 * np.concatenate([np.asarray(g.inv_vars, dtype=np.float32) for g in gmms])], axis=1).T)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        x = np.asarray(feats, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise UserFacingError(f"GMM features of shape {x.shape}, expected [frames, {self.dim}]")
        comp = np.concatenate([x, x * x], axis=1) @ self.weights + self.gconsts                # [T, Gaussians]
        top = np.maximum.reduceat(comp, self.starts, axis=1)                                 # [T, pdfs]
        ex = np.exp(comp - np.repeat(top, self.sizes, axis=1))
        return (top + np.log(np.add.reduceat(ex, self.starts, axis=1))).astype(np.float32)


def gmm_loglike_source(model: Any, feat_dir: str | os.PathLike, refs: Mapping[str, str] | None = None
                       ) -> tuple[list[str], Callable[[str], np.ndarray], None]:
    """:func:`gmm_source` as pdf log-likelihood matrices (:class:`GmmLoglikes`), for matrix decoders."""
    utts, feats, am = gmm_source(model, feat_dir, refs)
    loglikes = GmmLoglikes(am)
    return utts, (lambda utt: loglikes(feats(utt))), None


def dnn_source(models: Sequence[str], feat_dir: str | os.PathLike, refs: Mapping[str, str] | None = None,
               device: str = "auto", combine: str = "arithmetic") -> tuple[list[str], Callable[[str], np.ndarray], None]:
    """Log-likelihoods of a DNN or an ensemble on the frame store."""
    from asrdistill.features.store import FrameStore
    from asrdistill.nnet.loglikes import dnn_loglike_source

    have = set(FrameStore(feat_dir).utts)
    utts = sorted(refs) if refs is not None else sorted(have)
    missing = [u for u in utts if u not in have]
    if missing:
        raise UserFacingError(f"{feat_dir}: no features for {len(missing)} utterances to decode, e.g. {missing[0]}")
    return utts, dnn_loglike_source(list(models), feat_dir, device=device, combine=combine), None


def matrix_source(path: str | os.PathLike, refs: Mapping[str, str] | None = None, allow_pipes: bool = False
                  ) -> tuple[list[str], dict[str, np.ndarray], None]:
    """Pdf log-likelihood matrices from a Kaldi ``.scp`` or ``.ark`` file (commands in it run only with
    ``allow_pipes``; NaN/Inf is an error naming the utterance: :mod:`asrdistill.kaldi_tables`)."""
    from asrdistill.kaldi_tables import read_matrix_table

    table = read_matrix_table(path, allow_pipes=allow_pipes)
    utts = sorted(refs) if refs is not None else sorted(table)
    missing = [u for u in utts if u not in table]
    if missing:
        raise UserFacingError(f"{path}: no log-likelihoods for {len(missing)} utterances to decode, e.g. "
                              f"{missing[0]}")
    return utts, table, None
