"""Where a decode's acoustic scores come from: a GMM on the frame store, a DNN (or ensemble) on the frame
store, or matrices of pdf log-likelihoods from a Kaldi table. Each source is ``(utts, source, am)`` ready for
:func:`asrdistill.decode.decoder.decode_and_score`."""
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


def matrix_source(path: str | os.PathLike, refs: Mapping[str, str] | None = None
                  ) -> tuple[list[str], dict[str, np.ndarray], None]:
    """Pdf log-likelihood matrices from a Kaldi ``.scp`` or ``.ark`` file (no commands are run)."""
    from asrdistill.kaldi_tables import read_matrix_table

    table = read_matrix_table(path)
    utts = sorted(refs) if refs is not None else sorted(table)
    missing = [u for u in utts if u not in table]
    if missing:
        raise UserFacingError(f"{path}: no log-likelihoods for {len(missing)} utterances to decode, e.g. "
                              f"{missing[0]}")
    return utts, table, None
