"""The DNN acoustic model: a ReLU MLP from a spliced window of CMVN'd fbank frames to pdf logits.

Input: a context window of ``left + 1 + right`` frames (26 by default: 20 left, 5 right) of D-dim
fbank (40), flattened time-major as :class:`asrdistill.features.splice.Splicer` builds it. The first
step normalises each of the D feature dims with a global shift/scale computed on the training frames
(Kaldi nnet1's ``feature_transform``); then ``hidden_layers`` x (Linear, ReLU), then a Linear layer to
``num_pdfs`` logits. The model also carries the log prior of each pdf (from the training alignments'
pdf counts) so that :meth:`AcousticDnn.log_likelihoods` gives the scaled likelihoods
``log p(pdf | x) - log p(pdf)`` that a hybrid decoder needs.

Model file: ``torch.save({"format", "config", "state_dict"})`` where ``config`` is a plain JSON-able
dict (:class:`DnnConfig`) and ``state_dict`` holds only tensors, so it loads with
``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from asrdistill.errors import UserFacingError
from asrdistill.nnet.config import PRESETS, DnnConfig  # noqa: F401  (PRESETS re-exported)
from asrdistill.utils import atomic_path

MODEL_FORMAT = "asrdistill-dnn-1"

class AcousticDnn(nn.Module):
    """ReLU MLP: spliced frames [B, context*D] -> pdf logits [B, num_pdfs].

    Buffers (saved with the weights): ``input_shift``/``input_scale`` [D] (per feature dim, shared by
    all positions of the window; identity until :meth:`set_input_normalization`), and ``log_prior``
    [num_pdfs] (uniform until :meth:`set_log_prior`).
    """

    def __init__(self, config: DnnConfig):
        super().__init__()
        self.config = config
        dims = [config.input_dim] + [config.hidden_dim] * config.hidden_layers
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.hidden = nn.Sequential(*layers)
        self.output = nn.Linear(dims[-1], config.num_pdfs)
        self.register_buffer("input_shift", torch.zeros(config.feat_dim))
        self.register_buffer("input_scale", torch.ones(config.feat_dim))
        self.register_buffer("log_prior", torch.full((config.num_pdfs,), -float(np.log(config.num_pdfs))))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He (Kaiming) initialisation for the ReLU layers, small Xavier for the output, zero biases.

        Uses the global torch RNG: seed it (``torch.manual_seed``) before building the model.
        """
        for m in self.hidden:
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.output.weight, gain=0.5)
        nn.init.zeros_(self.output.bias)

    def set_input_normalization(self, mean: np.ndarray | Tensor, std: np.ndarray | Tensor,
                                floor: float = 1e-3) -> None:
        """Normalise each feature dim as ``(x - mean) / max(std, floor)`` (stats of the training frames)."""
        mean = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        std = torch.as_tensor(np.asarray(std, dtype=np.float32)).clamp_min(floor)
        self.input_shift.copy_(mean)
        self.input_scale.copy_(1.0 / std)

    def set_log_prior(self, log_prior: np.ndarray | Tensor) -> None:
        self.log_prior.copy_(torch.as_tensor(np.asarray(log_prior, dtype=np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        """Logits [B, num_pdfs] of spliced input ``x`` [B, context*D]."""
        b = x.shape[0]
        c = self.config
        x = ((x.view(b, c.context, c.feat_dim) - self.input_shift) * self.input_scale).view(b, c.input_dim)
        return self.output(self.hidden(x))

    def log_probs(self, x: Tensor) -> Tensor:
        """log p(pdf | x) [B, num_pdfs] (float32)."""
        return torch.log_softmax(self.forward(x).float(), dim=-1)

    def log_likelihoods(self, x: Tensor) -> Tensor:
        """Scaled log-likelihoods ``log p(pdf | x) - log p(pdf)`` [B, num_pdfs] for hybrid decoding."""
        return self.log_probs(x) - self.log_prior


def log_prior_from_counts(counts: np.ndarray, count_floor: float = 1.0) -> np.ndarray:
    """Log priors of the pdfs from their frame counts in the training alignments.

    Each count is first raised to at least ``count_floor`` (so a pdf never seen in training gets the
    prior of a pdf seen ``count_floor`` times instead of zero, which would make its likelihood
    infinite), then normalised to sum to one.
    """
    counts = np.maximum(np.asarray(counts, dtype=np.float64), count_floor)
    if counts.sum() <= 0:
        raise ValueError("pdf counts sum to zero")
    return np.log(counts / counts.sum()).astype(np.float32)


def build_model(config: DnnConfig, seed: int | None = None) -> AcousticDnn:
    """A freshly initialised model; with ``seed`` the initial weights depend only on the seed."""
    if seed is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return AcousticDnn(config)
    return AcousticDnn(config)


def model_state(model: AcousticDnn) -> dict[str, Any]:
    """The saved form of a model: plain dict of format tag, JSON-able config and CPU tensors."""
    return {"format": MODEL_FORMAT, "config": model.config.to_dict(),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}


def model_from_state(state: dict[str, Any], where: str = "model") -> AcousticDnn:
    if not isinstance(state, dict) or state.get("format") != MODEL_FORMAT:
        raise UserFacingError(f"{where}: not an asrdistill DNN model (format {MODEL_FORMAT!r} expected)")
    model = AcousticDnn(DnnConfig.from_dict(state["config"]))
    model.load_state_dict(state["state_dict"])
    return model


def save_model(path: str | os.PathLike, model: AcousticDnn) -> None:
    """Write ``model`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        torch.save(model_state(model), tmp)


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu") -> AcousticDnn:
    """Load a model written by :func:`save_model` (``weights_only=True``: no pickled code runs), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: no such model file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt / foreign file
        raise UserFacingError(f"{path}: cannot read model file: {err}") from err
    return model_from_state(state, str(path)).to(device).eval()
