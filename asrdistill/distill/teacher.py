"""Teacher outputs for distillation: computed on the fly from the ensemble, or read from a cache of logits.

Both teachers give the members' logits of a batch, ``member_logits(x, rows) -> [M, B, C]``, from which
the soft targets at any temperature (:func:`asrdistill.distill.loss.ensemble_soft_targets`: the
arithmetic mean of the members' ``softmax(z_m / T)``, or the normalised geometric mean) and the
zero-mean teacher logits of logit matching are computed the same way:

* :class:`OnTheFlyTeacher` runs every member (eval mode, no gradients) on the spliced batch ``x``: exact.
* :class:`CachedTeacher` decodes the rows ``rows`` of a cache that one pass of the ensemble wrote
  (:mod:`asrdistill.distill.cache`: every member's logits, 8 bits per pdf by default); it serves every
  temperature, within the tolerance that :func:`asrdistill.distill.cache.check_cache` measures. It refuses
  a cache built from other member files (sha256) or other training data (utterances and frame counts,
  and the feature / alignment dirs' fingerprints when given); a dataset of a subset of the cache's
  utterances reads it through a row map. A student trains at one temperature: given it, the CPU teacher
  computes that ``p_T`` for every training row once (when it fits in a quarter of the available memory) and
  serves each batch by a gather: the same function of the same cached values as per batch, and 3 ms less
  per batch of 256 rows x 4 members x 914 pdfs on one CPU thread (measured: 3.1 ms to decode and combine,
  0.17 ms to gather).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor

from asrdistill.distill.cache import (CACHE_FORMAT, CacheReader, available_memory, cache_bytes, create_cache_files,
                                      data_fingerprints, fill_rows, finish_cache, member_digests, open_cache_files,
                                      read_cache_utts, row_map, soft_targets_from_distances, verify_data,
                                      verify_members)
from asrdistill.distill.loss import ensemble_soft_targets, zero_mean_teacher_logits
from asrdistill.errors import UserFacingError
from asrdistill.nnet import distributed as dist
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.ensemble import Ensemble
from asrdistill.nnet.device import autocast_context
from asrdistill.utils import atomic_path, get_logger

log = get_logger(__name__)

#: Rows per step when a student's ``p_T`` is computed for all of its training rows at once.
PRECOMPUTE_ROWS = 4096


class _Teacher:
    method = "arithmetic"

    def member_logits(self, x: Tensor | None, rows: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def soft_targets(self, x: Tensor | None, rows: Tensor, temperature: float) -> Tensor:
        """``p_T`` [B, C] (float32) of the batch (spliced frames ``x``, training rows ``rows``)."""
        return ensemble_soft_targets(self.member_logits(x, rows), temperature, self.method)

    def zero_mean_logits(self, x: Tensor | None, rows: Tensor) -> Tensor:
        """The logit-matching target [B, C]: the mean over members of each member's zero-mean logits."""
        return zero_mean_teacher_logits(self.member_logits(x, rows))


class OnTheFlyTeacher(_Teacher):
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
    def member_logits(self, x: Tensor, rows: Tensor | None = None) -> Tensor:
        with autocast_context(x.device):
            z = self.ensemble.member_logits(x)
        return z.float()

    @torch.no_grad()
    def soft_targets(self, x: Tensor, rows: Tensor | None, temperature: float) -> Tensor:
        """``p_T`` [B, C]: the same values as :func:`~asrdistill.distill.loss.ensemble_soft_targets`, without
        a log-sum-exp over members."""
        z = self.member_logits(x, rows)
        return soft_targets_from_distances(z.amax(dim=-1, keepdim=True) - z, temperature, self.method, member_dim=0)


class CachedTeacher(_Teacher):
    """Teacher outputs decoded from a cache of member logits (see module docstring).

    ``members``: the teacher model files the caller means (checked against the cache's sha256s);
    ``data``: the training dataset whose rows the batches index; ``fingerprints``: the training feature /
    alignment dirs' fingerprints (:func:`asrdistill.distill.cache.data_fingerprints`), checked when given.
    """

    def __init__(self, cache_dir: str | os.PathLike, data: FrameDataset | None = None,
                 members: Sequence[str | os.PathLike] | None = None, method: str = "arithmetic",
                 fingerprints: dict | None = None, temperature: float | None = None):
        self.path = Path(cache_dir)
        self.reader = CacheReader(self.path)
        self.info = self.reader.info
        self.method = method
        self.temperature = temperature      # the one temperature a student asks for (precomputed on the CPU)
        self._targets: Tensor | None = None  # p_T [rows of ``data``, C] at ``temperature``, when precomputed
        where = str(self.path)
        if members is not None:
            verify_members(self.info, members, where)
        if fingerprints:
            verify_data(self.info, fingerprints, where)
        self.rows: Tensor | None = None
        if data is not None:
            if data.num_pdfs != self.reader.num_pdfs:
                raise UserFacingError(f"{where}: the cache has {self.reader.num_pdfs} pdfs but the alignments "
                                      f"have {data.num_pdfs}")
            utts, offsets = read_cache_utts(self.path)
            rmap = row_map(utts, offsets, data.utts, data.offsets.cpu().numpy(), where)
            self.rows = None if rmap is None else torch.from_numpy(rmap)

    @property
    def num_pdfs(self) -> int:
        return self.reader.num_pdfs

    def to(self, device: torch.device | str) -> "CachedTeacher":
        device = torch.device(device)
        self._targets = None
        if self.rows is not None:
            self.rows = self.rows.to(device)
        if not (device.type == "cpu" and self.temperature is not None and self._precompute(self.temperature)):
            self.reader.to(device)
        return self

    def _precompute(self, temperature: float) -> bool:
        """``p_T`` of every row of the training data into memory (read in order from the memory-mapped cache);
        False (and nothing kept) when it would take more than the reader's share of the available memory."""
        n = len(self.rows) if self.rows is not None else len(self.reader)
        need = n * self.num_pdfs * 4
        if need > self.reader.host_fraction * available_memory():
            log.info("%s: p_T of %d rows (%.2f GB) does not fit in memory: soft targets decoded per batch",
                     self.path, n, need / 1e9)
            return False
        targets = torch.empty((n, self.num_pdfs), dtype=torch.float32)
        for start in range(0, n, PRECOMPUTE_ROWS):
            stop = min(n, start + PRECOMPUTE_ROWS)
            d = self.reader.distances(self._cache_rows(torch.arange(start, stop)))
            targets[start:stop] = soft_targets_from_distances(d, temperature, self.method)
        self._targets = targets
        log.info("%s: p_T at T=%g of %d rows (%.2f GB) computed once, in memory", self.path, temperature, n,
                 need / 1e9)
        return True

    def _cache_rows(self, rows: Tensor) -> Tensor:
        return rows if self.rows is None else self.rows[rows.to(self.rows.device)]

    @torch.no_grad()
    def member_logits(self, x: Tensor | None, rows: Tensor) -> Tensor:
        return self.reader.member_logits(self._cache_rows(rows))

    @torch.no_grad()
    def soft_targets(self, x: Tensor | None, rows: Tensor, temperature: float) -> Tensor:
        """``p_T`` [B, C] straight from the decoded distances (no [M, B, C] logits are formed), or gathered
        from the precomputed ``p_T`` at :attr:`temperature`."""
        if self._targets is not None and temperature == self.temperature:
            return self._targets[rows.cpu()]
        return soft_targets_from_distances(self.reader.distances(self._cache_rows(rows)), temperature, self.method)

    @torch.no_grad()
    def zero_mean_logits(self, x: Tensor | None, rows: Tensor) -> Tensor:
        """The members' mean zero-mean logits [B, C] straight from the decoded distances."""
        dm = self.reader.distances(self._cache_rows(rows)).mean(dim=1)
        return dm.mean(dim=-1, keepdim=True) - dm


def build_teacher_cache(ensemble: Ensemble, data: FrameDataset, cache_dir: str | os.PathLike,
                        members: Sequence[str | os.PathLike], encoding: str = "u8-sqrt", batch_size: int = 4096,
                        feats: str | os.PathLike | None = None, ali: str | os.PathLike | None = None,
                        progress: bool = True) -> Path:
    """Write the cache of ``ensemble`` (loaded from the model files ``members``, in that order) on every row
    of ``data`` to ``cache_dir``, atomically (a failure leaves no cache behind). ``feats`` / ``ali`` are the
    dirs ``data`` was loaded from (their fingerprints are recorded and checked at read time)."""
    cfg = ensemble.config
    m = len(ensemble.members)
    if len(members) != m:
        raise UserFacingError(f"{len(members)} member files for an ensemble of {m}")
    if cfg.num_pdfs != data.num_pdfs:
        raise UserFacingError(f"teacher has {cfg.num_pdfs} pdfs but the alignments have {data.num_pdfs}")
    teacher = OnTheFlyTeacher(ensemble).to(data.device)
    n = len(data)
    info = {"format": CACHE_FORMAT, "encoding": encoding, "num_frames": n, "num_members": m,
            "num_pdfs": cfg.num_pdfs, "left": cfg.left, "right": cfg.right, "feat_dim": cfg.feat_dim,
            "num_utts": len(data.utts), "members": member_digests(members), "data": data_fingerprints(feats, ali)}
    cache_dir = Path(cache_dir)
    if dist.active():
        _build_sharded(cache_dir, teacher, data, info, encoding, batch_size, progress)
    else:
        with atomic_path(cache_dir) as tmp:
            files = create_cache_files(tmp, n, m, cfg.num_pdfs, encoding)
            fill_rows(files, teacher, data, 0, n, batch_size, progress)
            finish_cache(files, info, data.utts, data.offsets.cpu().numpy())
            del files
    log.info("%s: teacher cache of %d members x %d pdfs on %d frames (%s, %.2f GB)", cache_dir, m, cfg.num_pdfs,
             n, encoding, cache_bytes(cache_dir) / 1e9)
    return cache_dir


def _build_sharded(cache_dir: Path, teacher, data: FrameDataset, info: dict, encoding: str, batch_size: int,
                   progress: bool) -> None:
    """Under torchrun: rank 0 preallocates the arrays in a temporary dir beside ``cache_dir``, every rank fills
    its contiguous share of the rows (:func:`asrdistill.nnet.distributed.shard`), rank 0 writes the index and
    renames the dir onto ``cache_dir``. The bytes are those of a one-process build (rows are independent)."""
    import shutil

    tmp = cache_dir.parent / f".{cache_dir.name}.ranks.tmp"   # the same name on every rank; a leftover of a
    if dist.is_main():                                          # killed run is removed by the next one
        shutil.rmtree(tmp, ignore_errors=True)
        create_cache_files(tmp, info["num_frames"], info["num_members"], info["num_pdfs"], encoding)
    dist.barrier()
    error = None
    try:
        files = open_cache_files(tmp, encoding)
        start, stop = dist.shard(info["num_frames"])
        fill_rows(files, teacher, data, start, stop, batch_size, progress and dist.is_main())
        files.codes.flush()
        if files.ranges is not None:
            files.ranges.flush()
        del files
    except Exception as err:  # every rank must reach the collective below, or the others wait for ever
        error = err
    if not dist.all_agree(error is None):
        if error is not None:
            raise error
        raise UserFacingError(f"{cache_dir}: another rank failed while filling the teacher cache (see its log)")
    if dist.is_main():
        finish_cache(open_cache_files(tmp, encoding), info, data.utts, data.offsets.cpu().numpy())
        if cache_dir.is_dir():
            shutil.rmtree(cache_dir)
        os.replace(tmp, cache_dir)
    dist.barrier()


def make_teacher_cache(teacher_models: Sequence[str | os.PathLike], feats: str | os.PathLike,
                       ali: str | os.PathLike, out_dir: str | os.PathLike, config=None,
                       device: str | torch.device = "auto", progress: bool = True) -> dict:
    """Load the members and the training set (``feats`` + ``ali``), write the cache to ``out_dir`` and, unless
    ``config.check_frames`` is 0, its measured distance from the exact teacher to ``<out_dir>/check.json``.

    ``config`` is a :class:`~asrdistill.distill.config.TeacherCacheConfig`. Returns the check (or ``{}``).
    """
    from asrdistill.distill.cache import check_cache
    from asrdistill.distill.config import TeacherCacheConfig
    from asrdistill.nnet.config import member_files
    from asrdistill.nnet.data import load_frame_dataset
    from asrdistill.nnet.device import resolve_device
    from asrdistill.nnet.ensemble import load_ensemble
    from asrdistill.utils import write_json_atomic

    config = config or TeacherCacheConfig()
    temperatures = config.temperatures()
    dev = dist.train_device(device) if dist.active() else resolve_device(device)
    files = [str(f) for f in member_files(teacher_models)]
    ensemble = load_ensemble(files, device=dev)
    data = load_frame_dataset(feats, ali, num_pdfs=ensemble.config.num_pdfs).to(dev)
    build_teacher_cache(ensemble, data, out_dir, files, config.encoding, config.batch_size, feats, ali, progress)
    if not config.check_frames or not dist.is_main():
        return {}
    cached = CachedTeacher(out_dir, data, files, fingerprints=data_fingerprints(feats, ali)).to(dev)
    report = check_cache(cached, OnTheFlyTeacher(ensemble), data, temperatures, config.check_frames,
                         config.check_seed, config.batch_size)
    write_json_atomic(Path(out_dir) / "check.json", report)
    log_check(out_dir, report)
    return report


def log_check(where, report: dict) -> None:
    for t, entry in report.get("temperature", {}).items():
        a = entry.get("arithmetic", {})
        log.info("%s: T=%s arithmetic mean KL %.2e, mean TV %.2e (max %.2e) over %d frames%s", where, t,
                 a.get("kl_mean", float("nan")), a.get("tv_mean", float("nan")), a.get("tv_max", float("nan")),
                 report.get("frames", 0), "" if a.get("within_tolerance", True) else "  ** beyond tolerance **")
