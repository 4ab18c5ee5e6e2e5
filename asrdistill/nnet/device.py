"""Where the DNN code runs: the device named by an option, and the autocast context used on it.

The bottom of the ``nnet`` package (imports nothing of asrdistill but :mod:`asrdistill.errors` and the option
values of :mod:`.config`), so that training, evaluation, ensembles, distillation and decoding share these without
importing each other.

* :func:`resolve_device`: ``"auto"`` is CUDA when present, else CPU; ``"cuda"`` without CUDA is an error.
* :func:`autocast_context`: bf16 autocast on CUDA, float32 (autocast disabled) elsewhere, unless a dtype
  is asked for (the training benchmark measures fp32, tf32 and bf16 on any device).
* :func:`training_dtype`: the dtype of the training passes for a ``precision`` option (``auto``: bf16 on CUDA
  and on CPUs with native bf16 matrix kernels, float32 elsewhere; ``fp32``; ``bf16``).
"""
from __future__ import annotations

import torch

from asrdistill.errors import UserFacingError
from asrdistill.nnet.config import PRECISIONS

__all__ = ["resolve_device", "autocast_context", "training_dtype", "cpu_has_bf16", "PRECISIONS"]


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


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX): there bf16 autocast trains
    about 1.6x faster than float32 (3 x 256 MLP, one thread, AMD EPYC Zen 4; benchmarks/bench_train.py; 1.35x
    for 2 x 128, but 1.4x slower for toy 240 x 64 x 20 GEMMs); on other CPUs oneDNN emulates bf16, slower than
    float32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: assume no native bf16
        return False


def training_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    """The autocast dtype of the training forward/backward passes on ``device`` for ``precision``: ``fp32``
    (autocast off), ``bf16``, or ``auto`` = bf16 on CUDA and on CPUs with native bf16 (:func:`cpu_has_bf16`),
    else float32. Weights, optimiser state and losses stay float32 in every case."""
    if precision == "fp32":
        return torch.float32
    if precision == "bf16":
        return torch.bfloat16
    if precision != "auto":
        raise UserFacingError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16()):
        return torch.bfloat16
    return torch.float32
