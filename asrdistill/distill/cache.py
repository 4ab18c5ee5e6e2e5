"""The teacher cache: every member's logits on every training frame, written by one pass of the ensemble,
from which the soft targets at *any* temperature (and the logit-matching targets) are rebuilt.

Why logits, and why 8 bits. The arithmetic-mean soft target ``p_T = (1/M) sum_m softmax(z_m / T)`` depends
on T through each member's logits separately, so nothing smaller than the M logit vectors of a frame gives
it exactly at every T (the geometric mean needs only their mean). A top-k of ``p_T`` for one T does not
carry over to another T and loses most of the mass at high T (demo, 1053 pdfs, k = 32: 98% of the mass at
T=1, 10% at T=10). The measured comparison of the candidates (fp16 logits, 8-bit logits, large top-k per T)
is in ``docs/teacher-cache.md`` and ``benchmarks/bench_teacher_cache.py``.

Encodings (``cache.json`` ``encoding``), per frame and member, with ``d_c = max_c' z_c' - z_c >= 0`` the
distance of pdf c's logit below the member's largest (softmax at any T, and zero-mean logits, depend on
the logits only through these distances):

* ``u8-sqrt`` (default): ``range = max_c d_c`` (float32, ``ranges.npy`` [N, M]) and
  ``q_c = round(255 sqrt(d_c / range))`` (uint8, ``codes.npy`` [N, M, C]); decoded as
  ``d_c = range (q_c / 255)^2``. The square-root companding puts the finest steps next to the top logit,
  where the soft targets at low T live (step ``~2 sqrt(d range) / 255``: 0.05 nats at d = 1 for a range of
  40), and keeps the tail that high T spreads mass over at a relative error of ``step / T``. The top pdf
  is exact (q = 0). One byte per pdf and member.
* ``f16``: ``d_c`` as float16 (``codes.npy`` [N, M, C]; ``ranges.npy`` is not written); two bytes per pdf and
  member, relative precision 2^-11.

Files: ``codes.npy`` (and ``ranges.npy``) memory-mapped at read time (``np.load(mmap_mode="r")``, no
pickle), ``utts.txt`` (``<utt> <num_frames>`` per line, the rows' order), ``cache.json`` (format,
encoding, sizes, the teacher's input window, each member file's path and sha256, the training data's
feature / alignment dirs with their fingerprints, the sha256 of ``utts.txt``) and, when measured at build
time, ``check.json`` (:func:`check_cache`: distance from the exact teacher per T).

Rows follow the :class:`~asrdistill.nnet.data.FrameDataset` of the training feature + alignment dirs.
A dataset of a subset of those utterances (paper Table 5) reads the same cache through a row map.

Building (:func:`asrdistill.distill.teacher.build_teacher_cache`) is a loop over row ranges
(:func:`fill_rows`) into preallocated memory-mapped files (:func:`create_cache_files`), so that ranks of a
distributed job can each fill their own range (:func:`open_cache_files`,
:func:`asrdistill.nnet.distributed.shard`) before one of them finalises the dir (:func:`finish_cache`).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger

log = get_logger(__name__)

CACHE_FORMAT = "asrdistill-teacher-logits-1"
ENCODINGS = ("u8-sqrt", "f16")
_LEVELS = 255.0

#: The tolerance that :func:`check_cache` reports against (per temperature, mean over the sampled frames):
#: KL(p_T || p_cache) in nats and total-variation distance. Measured on the demo (see docs/teacher-cache.md),
#: the u8-sqrt cache is one to two orders of magnitude inside these.
TOLERANCE_KL = 1e-3
TOLERANCE_TV = 1e-2


# -- encoding ------------------------------------------------------------------------------------------------
def encode_logits(member_logits: Tensor, encoding: str = "u8-sqrt") -> tuple[Tensor, Tensor | None]:
    """``(codes [B, M, C], ranges [B, M] float32 or None)`` from member logits [M, B, C] (see module doc)."""
    z = member_logits.float()
    d = (z.amax(dim=-1, keepdim=True) - z).permute(1, 0, 2)           # [B, M, C], >= 0
    if encoding == "f16":
        return d.clamp_max(60000.0).to(torch.float16).contiguous(), None
    if encoding == "u8-sqrt":
        rng = d.amax(dim=-1)                                           # [B, M]
        u = torch.sqrt(d / rng.clamp_min(1e-30).unsqueeze(-1))
        q = torch.round(u * _LEVELS).clamp_(0.0, _LEVELS).to(torch.uint8)
        return q.contiguous(), rng.contiguous()
    raise UserFacingError(f"unknown teacher cache encoding {encoding!r} (choose from {', '.join(ENCODINGS)})")


def decode_distances(codes: Tensor, ranges: Tensor | None, encoding: str = "u8-sqrt") -> Tensor:
    """Distances below each member's top logit, ``d`` [B, M, C] (float32, contiguous), from [B, M, C] codes."""
    if encoding == "f16":
        return codes.float()
    if encoding == "u8-sqrt":
        u = codes.float().mul_(1.0 / _LEVELS)
        return u.mul_(u).mul_(ranges.float().unsqueeze(-1))
    raise UserFacingError(f"unknown teacher cache encoding {encoding!r}")


def decode_logits(codes: Tensor, ranges: Tensor | None, encoding: str = "u8-sqrt") -> Tensor:
    """Member logits [M, B, C] (float32, contiguous, shifted so each member's largest is 0) from [B, M, C] codes."""
    return decode_distances(codes, ranges, encoding).neg_().transpose(0, 1).contiguous()


def soft_targets_from_distances(d: Tensor, temperature: float, method: str = "arithmetic",
                                member_dim: int = 1) -> Tensor:
    """``p_T`` [B, C] from distances ``d`` ([B, M, C], or [M, B, C] with ``member_dim=0``), which it overwrites.

    Each member's smallest distance is 0, so ``exp(-d / T) <= 1`` with a sum >= 1 and no log-sum-exp is
    needed. ``arithmetic``: the mean over members of ``softmax(-d_m / T)``; ``geometric``:
    ``softmax(-mean_m d_m / T)`` (the normalised geometric mean of the members' ``softmax(-d_m / T)``).
    """
    if method == "arithmetic":
        e = d.mul_(-1.0 / temperature).exp_()
        return e.div_(e.sum(dim=-1, keepdim=True)).mean(dim=member_dim)
    if method == "geometric":
        return torch.softmax(d.mean(dim=member_dim).mul_(-1.0 / temperature), dim=-1)
    raise UserFacingError(f"unknown ensemble combination {method!r} (arithmetic or geometric)")


# -- what the cache was built from ---------------------------------------------------------------------------
def utts_lines(utts: Sequence[str], offsets: np.ndarray) -> str:
    lengths = np.diff(np.asarray(offsets, dtype=np.int64))
    return "".join(f"{u} {int(n)}\n" for u, n in zip(utts, lengths))


def member_digests(paths: Sequence[str | os.PathLike]) -> list[dict[str, str]]:
    from asrdistill.experiment.fingerprint import sha256_file

    return [{"path": str(p), "sha256": sha256_file(p)} for p in paths]


def data_fingerprints(feats: str | os.PathLike | None, ali: str | os.PathLike | None) -> dict[str, dict[str, str]]:
    """``{"feats": {"path", "fingerprint"}, "ali": {...}}`` of the dirs given (see experiment.fingerprint)."""
    from asrdistill.experiment.fingerprint import input_fingerprint

    return {name: {"path": str(p), "fingerprint": input_fingerprint(p)}
            for name, p in (("feats", feats), ("ali", ali)) if p is not None}


@dataclass
class CacheFiles:
    """The memory-mapped arrays of a cache being written (in a temporary dir until :func:`finish_cache`)."""

    path: Path
    codes: np.memmap
    ranges: np.memmap | None
    encoding: str


def create_cache_files(tmp_dir: Path, num_frames: int, num_members: int, num_pdfs: int,
                       encoding: str = "u8-sqrt") -> CacheFiles:
    """Preallocate ``codes.npy`` (and ``ranges.npy``) in ``tmp_dir`` (created)."""
    if encoding not in ENCODINGS:
        raise UserFacingError(f"unknown teacher cache encoding {encoding!r} (choose from {', '.join(ENCODINGS)})")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    dtype = np.uint8 if encoding == "u8-sqrt" else np.float16
    codes = np.lib.format.open_memmap(tmp_dir / "codes.npy", mode="w+", dtype=dtype,
                                      shape=(num_frames, num_members, num_pdfs))
    ranges = None
    if encoding == "u8-sqrt":
        ranges = np.lib.format.open_memmap(tmp_dir / "ranges.npy", mode="w+", dtype=np.float32,
                                           shape=(num_frames, num_members))
    return CacheFiles(tmp_dir, codes, ranges, encoding)


def open_cache_files(tmp_dir: Path, encoding: str = "u8-sqrt") -> CacheFiles:
    """Open the arrays that :func:`create_cache_files` preallocated, for writing (another rank's process)."""
    codes = np.load(tmp_dir / "codes.npy", mmap_mode="r+", allow_pickle=False)
    ranges = np.load(tmp_dir / "ranges.npy", mmap_mode="r+", allow_pickle=False) if encoding == "u8-sqrt" else None
    return CacheFiles(tmp_dir, codes, ranges, encoding)


@torch.no_grad()
def fill_rows(files: CacheFiles, teacher, data, start: int, stop: int, batch_size: int = 4096,
              progress: bool = True) -> None:
    """Run ``teacher`` (an :class:`~asrdistill.distill.teacher.OnTheFlyTeacher`) on rows [start, stop) of
    ``data`` and write their codes. Independent for disjoint ranges (one per rank under DDP)."""
    from tqdm import tqdm

    cfg = teacher.ensemble.config
    splicer = data.splicer(cfg.left, cfg.right)
    starts = range(start, stop, batch_size)
    for s in tqdm(starts, desc="teacher cache", unit="batch", leave=False, disable=None if progress else True,
                  mininterval=2.0):
        rows = torch.arange(s, min(stop, s + batch_size), device=data.device)
        codes, ranges = encode_logits(teacher.member_logits(splicer(data.frames, rows), rows), files.encoding)
        files.codes[s:s + len(rows)] = codes.cpu().numpy()
        if files.ranges is not None:
            files.ranges[s:s + len(rows)] = ranges.cpu().numpy()


def finish_cache(files: CacheFiles, info: dict[str, Any], utts: Sequence[str], offsets: np.ndarray) -> None:
    """Flush the arrays and write ``utts.txt`` and ``cache.json`` (still in the temporary dir)."""
    import hashlib

    files.codes.flush()
    if files.ranges is not None:
        files.ranges.flush()
    text = utts_lines(utts, offsets)
    (files.path / "utts.txt").write_text(text)
    info = dict(info, utts_sha256=hashlib.sha256(text.encode()).hexdigest())
    (files.path / "cache.json").write_text(json.dumps(info, indent=2) + "\n")


def cache_bytes(cache_dir: str | os.PathLike) -> int:
    return sum(f.stat().st_size for f in Path(cache_dir).iterdir() if f.is_file())


# -- reading ---------------------------------------------------------------------------------------------
def read_cache_info(cache_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(cache_dir) / "cache.json"
    if not path.is_file():
        raise UserFacingError(f"{cache_dir}: no teacher cache here (cache.json missing; build one with "
                              "'asrdistill build-teacher-cache')")
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise UserFacingError(f"{path}: cannot read ({err})") from None
    if not isinstance(info, dict) or info.get("format") != CACHE_FORMAT:
        old = info.get("format") if isinstance(info, dict) else None
        raise UserFacingError(f"{path}: not a teacher cache of format {CACHE_FORMAT} (found {old!r}; a top-k "
                              "cache of an older version must be rebuilt with 'asrdistill build-teacher-cache')")
    if info.get("encoding") not in ENCODINGS:
        raise UserFacingError(f"{path}: unknown encoding {info.get('encoding')!r}")
    return info


def read_cache_utts(cache_dir: str | os.PathLike) -> tuple[list[str], np.ndarray]:
    """The cache's utterances and their row offsets [U+1]."""
    path = Path(cache_dir) / "utts.txt"
    utts, lengths = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError as err:
        raise UserFacingError(f"{path}: cannot read ({err.strerror or err})") from None
    for lineno, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise UserFacingError(f"{path}:{lineno}: expected '<utt> <num_frames>'")
        utts.append(parts[0])
        lengths.append(int(parts[1]))
    return utts, np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)


def verify_members(info: dict[str, Any], members: Sequence[str | os.PathLike], where: str) -> None:
    """Refuse a cache built from other member files than ``members`` (compared by sha256, in order)."""
    have = [m["sha256"] for m in info["members"]]
    want = member_digests(members)
    if len(want) != len(have):
        raise UserFacingError(f"{where}: the cache was built from {len(have)} teacher models, not the "
                              f"{len(want)} given ({', '.join(str(m) for m in members)}); rebuild it")
    for i, (h, w) in enumerate(zip(have, want)):
        if h != w["sha256"]:
            raise UserFacingError(f"{where}: teacher {i} ({w['path']}) is not the model the cache was built from "
                                  f"({info['members'][i]['path']}, sha256 {h[:12]} vs {w['sha256'][:12]}); "
                                  "rebuild the cache")


def verify_data(info: dict[str, Any], fingerprints: dict[str, dict[str, str]], where: str) -> None:
    """Refuse a cache built from other feature / alignment dirs (compared by fingerprint)."""
    for name, now in fingerprints.items():
        was = info.get("data", {}).get(name)
        if was is None:
            continue
        if was["fingerprint"] != now["fingerprint"]:
            same = was["path"] == now["path"]
            raise UserFacingError(f"{where}: the cache was built from training {name} {was['path']}"
                                  f"{' as it was before it changed' if same else ''}, not {now['path']}"
                                  f"{' as it is now' if same else ''}; rebuild the cache")


def row_map(cache_utts: list[str], cache_offsets: np.ndarray, utts: Sequence[str], offsets: np.ndarray,
            where: str) -> np.ndarray | None:
    """Cache rows [len(data)] of each row of a dataset (None when the dataset is the cache's own rows).

    Every utterance must be in the cache with the same number of frames (an error names the first that is not).
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    if list(utts) == cache_utts and np.array_equal(offsets, cache_offsets):
        return None
    pos = {u: i for i, u in enumerate(cache_utts)}
    parts = []
    for j, u in enumerate(utts):
        i = pos.get(u)
        n = int(offsets[j + 1] - offsets[j])
        if i is None:
            raise UserFacingError(f"{where}: utterance {u} of the training data is not in the cache (it was built "
                                  "for other training data); rebuild it")
        if int(cache_offsets[i + 1] - cache_offsets[i]) != n:
            raise UserFacingError(f"{where}: utterance {u} has {n} frames but {int(cache_offsets[i + 1] - cache_offsets[i])}"
                                  " in the cache (built for other training data); rebuild it")
        parts.append(np.arange(cache_offsets[i], cache_offsets[i + 1], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, np.int64)


def available_memory() -> int:
    """Bytes of memory available to a new process (Linux ``MemAvailable``; 0 where unknown: stay mapped)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


class CacheReader:
    """Member logits of any rows, decoded on the training device (see module docstring).

    The arrays are memory-mapped; each batch gathers its rows on the CPU and decodes them on the device.
    On a CUDA device the whole cache is copied to the device once when it takes at most
    ``device_fraction`` of the device's free memory (then a batch is one gather there). On the CPU it is read
    into memory once when it takes at most ``host_fraction`` of the memory available: a batch's random rows
    gathered from a memory map cost page faults (measured: 16 ms per batch of 256 rows x 4 members x 943
    pdfs against well under 1 ms from memory, which made the cache the larger part of a tiny student's epoch).
    """

    def __init__(self, cache_dir: str | os.PathLike, device_fraction: float = 0.5, host_fraction: float = 0.25):
        self.path = Path(cache_dir)
        self.info = read_cache_info(self.path)
        self.encoding = self.info["encoding"]
        self.num_pdfs = int(self.info["num_pdfs"])
        self.num_members = int(self.info["num_members"])
        try:
            self.codes = np.load(self.path / "codes.npy", mmap_mode="r", allow_pickle=False)
            self.ranges = (np.load(self.path / "ranges.npy", mmap_mode="r", allow_pickle=False)
                           if self.encoding == "u8-sqrt" else None)
        except (OSError, ValueError) as err:
            raise UserFacingError(f"{self.path}: cannot read the cache arrays ({err})") from None
        want = (int(self.info["num_frames"]), self.num_members, self.num_pdfs)
        if self.codes.shape != want or (self.ranges is not None and self.ranges.shape != want[:2]):
            raise UserFacingError(f"{self.path}/codes.npy: shape {self.codes.shape}, cache.json says {want}")
        self.device = torch.device("cpu")
        self.device_fraction = device_fraction
        self.host_fraction = host_fraction
        self._dev_codes: Tensor | None = None
        self._dev_ranges: Tensor | None = None

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def to(self, device: torch.device | str) -> "CacheReader":
        self.device = torch.device(device)
        self._dev_codes = self._dev_ranges = None
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if self.codes.nbytes <= self.device_fraction * free:
                self._dev_codes = torch.from_numpy(np.ascontiguousarray(self.codes)).to(self.device)
                if self.ranges is not None:
                    self._dev_ranges = torch.from_numpy(np.ascontiguousarray(self.ranges)).to(self.device)
                log.info("%s: cache (%.2f GB) copied to %s", self.path, self.codes.nbytes / 1e9, self.device)
        elif self.device.type == "cpu" and self.codes.nbytes <= self.host_fraction * available_memory():
            self._dev_codes = torch.from_numpy(np.array(self.codes))          # one sequential read
            if self.ranges is not None:
                self._dev_ranges = torch.from_numpy(np.array(self.ranges))
            log.info("%s: cache (%.2f GB) read into memory", self.path, self.codes.nbytes / 1e9)
        return self

    def distances(self, cache_rows: Tensor) -> Tensor:
        """Decoded distances below each member's top logit, [B, M, C] (float32 on :attr:`device`), of cache rows."""
        if self._dev_codes is not None:
            rows = cache_rows.to(self.device)
            ranges = self._dev_ranges[rows] if self._dev_ranges is not None else None
            return decode_distances(self._dev_codes[rows], ranges, self.encoding)
        idx = cache_rows.cpu().numpy()
        codes = torch.from_numpy(self.codes[idx])
        ranges = torch.from_numpy(self.ranges[idx]) if self.ranges is not None else None
        nb = self.device.type == "cuda"
        codes = codes.to(self.device, non_blocking=nb)
        if ranges is not None:
            ranges = ranges.to(self.device, non_blocking=nb)
        return decode_distances(codes, ranges, self.encoding)

    def member_logits(self, cache_rows: Tensor) -> Tensor:
        """Decoded member logits [M, B, C] (float32 on :attr:`device`, each member's top at 0) of cache rows [B]."""
        return self.distances(cache_rows).neg_().transpose(0, 1).contiguous()


# -- distance from the exact teacher -------------------------------------------------------------------------
def distances(exact_logits: Tensor, cached_logits: Tensor, temperature: float, method: str) -> dict[str, Tensor]:
    """Per-frame KL(p_T || p_cache) (nats) and total-variation distance of two sets of member logits [M, B, C],
    computed in float64."""
    def p_t(z: Tensor) -> Tensor:
        z = z.double()
        return soft_targets_from_distances(z.amax(dim=-1, keepdim=True) - z, temperature, method, member_dim=0)

    p, q = p_t(exact_logits), p_t(cached_logits)
    kl = (p * (p.clamp_min(1e-300).log() - q.clamp_min(1e-300).log())).sum(-1).clamp_min(0.0)
    return {"kl": kl, "tv": 0.5 * (p - q).abs().sum(-1)}


@torch.no_grad()
def check_cache(cached, teacher, data, temperatures: Sequence[float] = (1.0, 2.0, 5.0, 10.0),
                num_frames: int = 20000, seed: int = 0, batch_size: int = 4096,
                methods: Sequence[str] = ("arithmetic", "geometric")) -> dict[str, Any]:
    """Distance of the cache's soft targets from the exact (on-the-fly) teacher on ``num_frames`` rows of
    ``data`` drawn with ``seed`` (all rows if fewer): per T and combination, the mean and max of
    KL(p_T || p_cache) and of the total-variation distance, whether the means are within
    :data:`TOLERANCE_KL` / :data:`TOLERANCE_TV`; and for logit matching the RMS error of the zero-mean
    teacher logits relative to their RMS. ``cached`` is a :class:`~asrdistill.distill.teacher.CachedTeacher`
    for ``data``, ``teacher`` the :class:`~asrdistill.distill.teacher.OnTheFlyTeacher` of the same members."""
    from asrdistill.distill.loss import zero_mean_teacher_logits

    n = len(data)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(n, size=min(n, int(num_frames)), replace=False)) if n else np.zeros(0, np.int64)
    cfg = teacher.ensemble.config
    splicer = data.splicer(cfg.left, cfg.right)
    sums = {(t, m, k): 0.0 for t in temperatures for m in methods for k in ("kl", "tv")}
    maxs = dict.fromkeys(sums, 0.0)
    err2 = ref2 = 0.0
    for s in range(0, len(sample), batch_size):
        rows = torch.from_numpy(sample[s:s + batch_size]).to(data.device)
        exact = teacher.member_logits(splicer(data.frames, rows), rows)
        approx = cached.member_logits(None, rows).to(exact.device)
        for t in temperatures:
            for m in methods:
                for k, v in distances(exact, approx, t, m).items():
                    sums[(t, m, k)] += float(v.sum())
                    maxs[(t, m, k)] = max(maxs[(t, m, k)], float(v.max()))
        ze, zc = zero_mean_teacher_logits(exact.double()), zero_mean_teacher_logits(approx.double())
        err2 += float(((ze - zc) ** 2).sum())
        ref2 += float((ze ** 2).sum())
    count = max(len(sample), 1)
    per_t: dict[str, Any] = {}
    for t in temperatures:
        entry = {}
        for m in methods:
            kl, tv = sums[(t, m, "kl")] / count, sums[(t, m, "tv")] / count
            entry[m] = {"kl_mean": kl, "kl_max": maxs[(t, m, "kl")], "tv_mean": tv, "tv_max": maxs[(t, m, "tv")],
                        "within_tolerance": kl <= TOLERANCE_KL and tv <= TOLERANCE_TV}
        per_t[f"{t:g}"] = entry
    return {"frames": int(len(sample)), "seed": seed, "encoding": cached.reader.encoding,
            "tolerance": {"kl_mean": TOLERANCE_KL, "tv_mean": TOLERANCE_TV},
            "temperature": per_t,
            "logit_matching": {"relative_rms_error": math.sqrt(err2 / ref2) if ref2 else 0.0},
            "within_tolerance": all(e["within_tolerance"] for v in per_t.values() for e in v.values())}
