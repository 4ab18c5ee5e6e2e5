"""Teacher outputs for distillation: computed on the fly from the ensemble, or read from a top-k cache.

:class:`OnTheFlyTeacher` runs every member (eval mode, no gradients) on each training batch and gives
the exact soft targets ``p_T`` (see :func:`asrdistill.distill.loss.ensemble_soft_targets`) or the
zero-mean teacher logits for logit matching.

:class:`CachedTeacher` reads a cache written once by :func:`build_teacher_cache` for one training set
and one temperature T: for every frame, the k pdfs with the largest ``p_T`` (int32 [N, k],
``indices.npy``) and their ``log p_T`` (float16 [N, k], ``logp.npy``), plus ``cache.json`` (numpy ``.npy`` files: memory-mappable,
loaded without pickle). The soft
target of a frame is rebuilt as ``p_T`` on those k pdfs and the rest of the mass,
``r = 1 - sum(top k)``, either spread uniformly over the other C - k pdfs (``remainder="uniform"``,
default: total mass 1, the top-k values exact up to float16) or dropped and the top k renormalised
(``"renormalize"``). With k = C it is exact (up to float16). The cache has no logits, so logit
matching needs the on-the-fly teacher. The cache rows follow the training :class:`FrameDataset`'s
rows; ``cache.json`` records its utterance list (hash) and frame count, which must match.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from asrdistill.distill.loss import ensemble_soft_targets, zero_mean_teacher_logits
from asrdistill.errors import UserFacingError
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.ensemble import Ensemble
from asrdistill.nnet.evaluate import autocast_context
from asrdistill.utils import atomic_path, get_logger

log = get_logger(__name__)

CACHE_FORMAT = "asrdistill-teacher-topk-1"


class OnTheFlyTeacher:
    """Exact teacher outputs from running the ensemble's members on each batch."""

    def __init__(self, ensemble: Ensemble, method: str = "arithmetic"):
        self.ensemble = ensemble.eval()
        for p in self.ensemble.parameters():
            p.requires_grad_(False)
        self.method = method

    def to(self, device: torch.device | str) -> "OnTheFlyTeacher":
        self.ensemble.to(device)
        return self

    @torch.no_grad()
    def member_logits(self, x: Tensor) -> Tensor:
        with autocast_context(x.device):
            z = self.ensemble.member_logits(x)
        return z.float()

    def soft_targets(self, x: Tensor, rows: Tensor, temperature: float) -> Tensor:
        """``p_T`` [B, C] (float32) for the spliced batch ``x``."""
        return ensemble_soft_targets(self.member_logits(x), temperature, self.method)

    def zero_mean_logits(self, x: Tensor, rows: Tensor) -> Tensor:
        return zero_mean_teacher_logits(self.member_logits(x))


def utts_digest(utts: Sequence[str]) -> str:
    return hashlib.sha1("\n".join(utts).encode()).hexdigest()


def dense_from_topk(indices: Tensor, logp: Tensor, num_pdfs: int, remainder: str = "uniform") -> Tensor:
    """Dense soft targets [B, C] from the top-k pdfs ``indices`` [B, k] and their ``log p`` [B, k]."""
    p = logp.float().exp()
    k = indices.shape[1]
    mass = p.sum(dim=1, keepdim=True)
    if remainder == "uniform":
        rest = ((1.0 - mass).clamp_min(0.0) / max(num_pdfs - k, 1)) if k < num_pdfs else torch.zeros_like(mass)
        dense = rest.expand(-1, num_pdfs).clone()
    elif remainder == "renormalize":
        dense = torch.zeros(p.shape[0], num_pdfs, device=p.device)
        p = p / mass
    else:
        raise UserFacingError(f"unknown cache remainder {remainder!r} (uniform or renormalize)")
    return dense.scatter_(1, indices.long(), p)


@torch.no_grad()
def build_teacher_cache(ensemble: Ensemble, data: FrameDataset, cache_dir: str | os.PathLike,
                        temperature: float, k: int = 32, method: str = "arithmetic",
                        batch_size: int = 4096, members: Sequence[str] = ()) -> Path:
    """Write the top-k cache of ``ensemble``'s ``p_T`` on every row of ``data`` to ``cache_dir`` (atomic)."""
    from tqdm import tqdm

    num_pdfs = ensemble.config.num_pdfs
    k = min(int(k), num_pdfs)
    teacher = OnTheFlyTeacher(ensemble, method).to(data.device)
    splicer = data.splicer(ensemble.config.left, ensemble.config.right)
    n = len(data)
    cache_dir = Path(cache_dir)
    with atomic_path(cache_dir) as tmp:
        tmp.mkdir()
        idx_mm = np.lib.format.open_memmap(tmp / "indices.npy", mode="w+", dtype=np.int32, shape=(n, k))
        lp_mm = np.lib.format.open_memmap(tmp / "logp.npy", mode="w+", dtype=np.float16, shape=(n, k))
        for start in tqdm(range(0, n, batch_size), desc="teacher cache", unit="batch", leave=False, disable=None):
            rows = torch.arange(start, min(n, start + batch_size), device=data.device)
            x = splicer(data.frames, rows)
            lp = torch.log(teacher.soft_targets(x, rows, temperature).clamp_min(1e-30))
            top, ind = lp.topk(k, dim=1)
            idx_mm[start:start + len(rows)] = ind.cpu().numpy().astype(np.int32)
            lp_mm[start:start + len(rows)] = top.clamp_min(-60000.0).cpu().numpy().astype(np.float16)
        idx_mm.flush()
        lp_mm.flush()
        del idx_mm, lp_mm
        info = {"format": CACHE_FORMAT, "num_frames": n, "k": k, "temperature": float(temperature),
                "num_pdfs": num_pdfs, "method": method, "utts_sha1": utts_digest(data.utts),
                "num_utts": len(data.utts), "members": [str(m) for m in members]}
        (tmp / "cache.json").write_text(json.dumps(info, indent=2) + "\n")
    log.info("%s: cached top-%d teacher targets at T=%g for %d frames", cache_dir, k, temperature, n)
    return cache_dir


class CachedTeacher:
    """Soft targets rebuilt from a top-k cache (see module docstring), held in memory on one device."""

    def __init__(self, cache_dir: str | os.PathLike, data: FrameDataset | None = None,
                 temperature: float | None = None, remainder: str = "uniform"):
        self.path = Path(cache_dir)
        info_path = self.path / "cache.json"
        if not info_path.is_file():
            raise UserFacingError(f"{self.path}: no teacher cache here (cache.json missing)")
        self.info = json.loads(info_path.read_text())
        if self.info.get("format") != CACHE_FORMAT:
            raise UserFacingError(f"{info_path}: not a teacher cache")
        if temperature is not None and abs(float(temperature) - self.info["temperature"]) > 1e-9:
            raise UserFacingError(f"{info_path}: cache is for T={self.info['temperature']}, not T={temperature}")
        if data is not None and (self.info["num_frames"] != len(data) or self.info["utts_sha1"] != utts_digest(data.utts)):
            raise UserFacingError(f"{info_path}: cache was built for other training data "
                                  f"({self.info['num_frames']} frames, {self.info['num_utts']} utterances)")
        self.temperature = float(self.info["temperature"])
        self.num_pdfs = int(self.info["num_pdfs"])
        self.remainder = remainder
        self.indices = torch.from_numpy(np.load(self.path / "indices.npy"))
        self.logp = torch.from_numpy(np.load(self.path / "logp.npy"))

    def to(self, device: torch.device | str) -> "CachedTeacher":
        self.indices = self.indices.to(device)
        self.logp = self.logp.to(device)
        return self

    def soft_targets(self, x: Tensor | None, rows: Tensor, temperature: float) -> Tensor:
        if abs(temperature - self.temperature) > 1e-9:
            raise UserFacingError(f"{self.path}: cache is for T={self.temperature}, not T={temperature}")
        rows = rows.to(self.indices.device)
        return dense_from_topk(self.indices[rows], self.logp[rows], self.num_pdfs, self.remainder)

    def zero_mean_logits(self, x: Tensor, rows: Tensor) -> Tensor:
        raise UserFacingError("logit matching needs the on-the-fly teacher (the cache holds no logits)")
