"""Where the DNN code runs: the device named by an option, and the autocast context used on it.

The bottom of the ``nnet`` package (imports nothing of asrdistill but :mod:`asrdistill.errors`), so that
training, evaluation, ensembles, distillation and decoding share these without importing each other.

* :func:`resolve_device`: ``"auto"`` is CUDA when present, else CPU; ``"cuda"`` without CUDA is an error.
* :func:`autocast_context`: bf16 autocast on CUDA, float32 (autocast disabled) elsewhere, unless a dtype
  is asked for (the training benchmark measures fp32, tf32 and bf16 on any device).
"""
from __future__ import annotations

import torch

from asrdistill.errors import UserFacingError

__all__ = ["resolve_device", "autocast_context"]


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device of an option value (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UserFacingError(f"unknown device {device!r} ({err})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserFacingError(f"device {device!r} requested but CUDA is not available")
    return dev


def autocast_context(device: torch.device, dtype: torch.dtype | None = None):
    """The autocast context of the forward pass on ``device``.

    ``dtype`` None: bf16 on CUDA, none (float32) elsewhere. ``torch.bfloat16`` (or float16 on CUDA):
    autocast to that dtype on any device. ``torch.float32``: autocast disabled.
    """
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if dtype == torch.float32:
        return torch.autocast(device.type if device.type in ("cuda", "cpu") else "cpu", enabled=False)
    return torch.autocast(device.type, dtype=dtype)
