"""Per-utterance pdf log-likelihoods of a DNN or an ensemble (log-posterior minus log-prior) for hybrid
decoding: the utterance's CMVN'd frames are spliced on the model's device and scored in batches."""
from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np
import torch

from asrdistill.features.splice import splice_utterance
from asrdistill.features.store import FrameStore
from asrdistill.nnet.ensemble import load_ensemble
from asrdistill.nnet.device import autocast_context, resolve_device


def dnn_loglike_source(model_paths: str | os.PathLike | Sequence[str | os.PathLike], feat_dir: str | os.PathLike,
                       device: str = "auto", combine: str = "arithmetic",
                       batch_frames: int = 8192) -> Callable[[str], np.ndarray]:
    """A callable ``utt -> float32 [T, num_pdfs]`` over the frame store ``feat_dir``.

    Several paths (or an ensemble dir / ensemble.json) give the ensemble, combined by ``combine``.
    """
    dev = resolve_device(device)
    paths = [model_paths] if isinstance(model_paths, (str, os.PathLike)) else list(model_paths)
    scorer = load_ensemble(paths, device=dev, combine=combine)
    scorer.eval()
    left, right = scorer.config.left, scorer.config.right
    store = FrameStore(feat_dir)

    @torch.no_grad()
    def source(utt: str) -> np.ndarray:
        feats = torch.from_numpy(np.array(store.get(utt), dtype=np.float32)).to(dev)  # a writable copy
        spliced = splice_utterance(feats, left, right)
        out = []
        for start in range(0, len(spliced), batch_frames):
            with autocast_context(dev):
                out.append(scorer.log_likelihoods(spliced[start:start + batch_frames]).float())
        return torch.cat(out).cpu().numpy() if out else np.zeros((0, scorer.log_prior.numel()), np.float32)

    return source
