"""The frame store: all CMVN-applied frames of a feature dir in one float32 memory-mapped array.

``frames.f32`` holds the frames of every utterance, in sorted utterance order, concatenated into a
raw little-endian float32 array [N, D]; ``frames.json`` holds ``dim``, ``utts`` and ``offsets``
(U+1 int64 values: the frames of ``utts[i]`` are rows ``offsets[i]:offsets[i+1]``). Training reads
frames by index straight from the map, without parsing Kaldi archives.

Reliability: ``frames.f32`` is allocated on disk before it is written (a full disk is an error naming the
file, not a SIGBUS in the middle of the map); a store whose index or size does not add up is an error
naming the file; :meth:`FrameStore.check_finite` names the first utterance with a NaN/Inf frame (readers that
train or score call it).
"""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from asrdistill.errors import UserFacingError, os_error_message, reported

FRAMES_FILE = "frames.f32"
INDEX_FILE = "frames.json"
DTYPE = np.dtype("<f4")


def write_index(directory: str | os.PathLike, utts: Sequence[str], offsets: np.ndarray, dim: int,
                extra: dict[str, Any] | None = None) -> None:
    """Write ``frames.json`` (plain write: the caller writes the whole dir under a temp name)."""
    offsets = np.asarray(offsets, dtype=np.int64)
    if len(offsets) != len(utts) + 1 or offsets[0] != 0 or np.any(np.diff(offsets) < 0):
        raise ValueError("offsets must be U+1 non-decreasing values starting at 0")
    index = {"dim": int(dim), "dtype": "float32", "utts": list(utts), "offsets": [int(o) for o in offsets]}
    index.update(extra or {})
    Path(directory, INDEX_FILE).write_text(json.dumps(index) + "\n")


def open_frames_for_writing(directory: str | os.PathLike, num_frames: int, dim: int) -> np.ndarray:
    """Create ``frames.f32`` of [num_frames, dim] (zeros) and return a writable memory map of it."""
    path = Path(directory, FRAMES_FILE)
    if num_frames == 0:
        path.write_bytes(b"")
        return np.zeros((0, dim), dtype=DTYPE)
    size = int(num_frames) * int(dim) * DTYPE.itemsize
    with reported(path, f"allocate {size} bytes"):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, size)  # blocks on disk now: writing the map can no longer fail
            except OSError as err:
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                os.ftruncate(fd, size)  # a file system without fallocate
        finally:
            os.close(fd)
    return np.memmap(path, dtype=DTYPE, mode="r+", shape=(num_frames, dim))


class FrameStore:
    """Read access to a feature dir's ``frames.f32`` / ``frames.json``.

    Attributes: ``utts`` (sorted utterance ids), ``offsets`` (int64 [U+1]), ``frames`` (read-only
    memory map [N, D]), ``dim``, ``num_frames``, plus the rest of ``frames.json`` in ``info``.
    """

    def __init__(self, feat_dir: str | os.PathLike):
        self.path = Path(feat_dir)
        index_path = self.path / INDEX_FILE
        frames_path = self.path / FRAMES_FILE
        if not index_path.is_file() or not frames_path.is_file():
            raise UserFacingError(f"{self.path}: no frame store here ({INDEX_FILE} and {FRAMES_FILE} needed; "
                                  f"run `asrdistill compute-feats` first)")
        from asrdistill.textio import read_text

        try:
            info = json.loads(read_text(index_path))
            self.dim: int = int(info["dim"])
            self.utts: list[str] = [str(u) for u in info["utts"]]
            self.offsets: np.ndarray = np.asarray(info["offsets"], dtype=np.int64)
        except (ValueError, KeyError, TypeError) as err:
            raise UserFacingError(f"{index_path}: corrupt frame store index ({type(err).__name__}: {err})") from None
        self.info: dict[str, Any] = info
        if len(self.offsets) != len(self.utts) + 1 or self.offsets.ndim != 1:
            raise UserFacingError(f"{index_path}: {len(self.offsets)} offsets for {len(self.utts)} utterances")
        if self.offsets[0] != 0 or np.any(np.diff(self.offsets) < 0):
            raise UserFacingError(f"{index_path}: offsets must start at 0 and never decrease")
        self.num_frames: int = int(self.offsets[-1])
        expected = self.num_frames * self.dim * DTYPE.itemsize
        try:
            size = frames_path.stat().st_size
        except OSError as err:
            raise UserFacingError(os_error_message(err, frames_path, "read")) from None
        if size != expected:
            raise UserFacingError(f"{frames_path}: {size} bytes, expected {expected} "
                                  f"({self.num_frames} frames x {self.dim} dims x 4)")
        if self.num_frames == 0:
            self.frames = np.zeros((0, self.dim), dtype=DTYPE)
        else:
            self.frames = np.memmap(frames_path, dtype=DTYPE, mode="r", shape=(self.num_frames, self.dim))
        self._pos = {u: i for i, u in enumerate(self.utts)}

    def __len__(self) -> int:
        return len(self.utts)

    def __contains__(self, utt: object) -> bool:
        return utt in self._pos

    def index(self, utt: str) -> int:
        """Position of ``utt`` in :attr:`utts` (a KeyError naming the utterance if absent)."""
        try:
            return self._pos[utt]
        except KeyError:
            raise KeyError(f"utterance {utt!r} is not in the frame store {self.path}") from None

    def get(self, utt: str) -> np.ndarray:
        """The CMVN-applied frames [T, D] of ``utt`` (a view into the memory map)."""
        i = self.index(utt)
        return self.frames[self.offsets[i]:self.offsets[i + 1]]

    def check_finite(self, utts: Sequence[str] | None = None) -> None:
        """An error naming the first utterance (of ``utts``, default all) whose frames hold a NaN or Inf.

        Reads the frames once, in blocks of about 64 MB (a few seconds for a 100-hour corpus)."""
        positions = range(len(self.utts)) if utts is None else sorted(self.index(u) for u in utts)
        block_rows = max(1, (64 << 20) // max(1, self.dim * DTYPE.itemsize))
        # contiguous runs of the wanted utterances, scanned a block at a time
        runs: list[tuple[int, int]] = []
        for i in positions:
            a, b = int(self.offsets[i]), int(self.offsets[i + 1])
            if runs and runs[-1][1] == a:
                runs[-1] = (runs[-1][0], b)
            elif b > a:
                runs.append((a, b))
        for a, b in runs:
            for start in range(a, b, block_rows):
                block = self.frames[start:min(b, start + block_rows)]
                ok = np.isfinite(block).all(axis=1)
                if not ok.all():
                    row = start + int(np.argmin(ok))
                    i = int(np.searchsorted(self.offsets, row, side="right")) - 1
                    col = int(np.argmin(np.isfinite(self.frames[row])))
                    raise UserFacingError(
                        f"{self.path / FRAMES_FILE} (utterance {self.utts[i]}): {self.frames[row, col]} at frame "
                        f"{row - int(self.offsets[i])}, dim {col} (NaN/Inf features: recompute the features, "
                        "or check the audio and the CMVN statistics)")

    @property
    def lengths(self) -> np.ndarray:
        """Frames per utterance (int64 [U])."""
        return np.diff(self.offsets)

    def to_tensor(self, device: str = "cpu"):
        """All frames as one in-memory float32 tensor [N, D] on ``device`` (a copy of the map)."""
        import torch

        return torch.from_numpy(np.array(self.frames, dtype=np.float32)).to(device)

    def __repr__(self) -> str:
        return f"FrameStore({str(self.path)!r}, utts={len(self)}, frames={self.num_frames}, dim={self.dim})"
