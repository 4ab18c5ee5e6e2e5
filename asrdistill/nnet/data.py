"""Frame-level training data: the frames of a feature dir paired with per-frame pdf-id targets.

A :class:`FrameDataset` holds, in memory, the CMVN-applied frames [M, D] of the utterances that have
an alignment (utterances without one are skipped), their utterance boundaries ``offsets`` [U+1] and
the pdf-id of every frame ``targets`` [M]. Rows are frames; a batch is a tensor of row indices that a
:class:`~asrdistill.features.splice.Splicer` turns into context windows on the training device, so no
spliced copy of the data is ever made. :meth:`FrameDataset.to` copies frames and targets to a GPU
once, after which loading a batch is one gather on the device.

A :class:`MemmapFrameDataset` (``load_frame_dataset(..., mmap=True)``) has the same interface but leaves the
frames in the frame store's memory map: a batch reads only its B x window rows from the map (each DDP rank
reads only the rows it trains on; the page cache is shared by every process of a machine) and moves them to
the compute device; only the targets (8 bytes a frame) and the utterance table are held per process. Both
give the same values for the same rows, so training on either gives the same model.

Alignment dirs hold ``pdf.scp`` (kaldiio-readable int32 pdf-ids per utterance, one per frame) and
``num_pdfs``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger

log = get_logger(__name__)


def read_num_pdfs(ali_dir: str | os.PathLike) -> int:
    from asrdistill.align.alidir import read_num_pdfs as read

    return read(Path(ali_dir) / "num_pdfs")


def read_pdf_alignments(ali_dir: str | os.PathLike) -> dict[str, np.ndarray]:
    """utterance -> int32 pdf-ids per frame, from ``<ali_dir>/pdf.scp``. The toolkit wrote it (``align`` or
    ``import-ali``), so a command in it is refused whatever ``--allow-pipes`` says (:mod:`asrdistill.kaldi_tables`)."""
    from asrdistill.kaldi_tables import read_int_vector_table

    scp = Path(ali_dir) / "pdf.scp"
    if not scp.is_file():
        raise UserFacingError(f"{scp}: missing (run the alignment stage first)")
    return read_int_vector_table(scp, allow_pipes=False)


@dataclass
class FrameDataset:
    """Frames of aligned utterances with their pdf targets (see module docstring).

    ``frames`` float32 [M, D], ``targets`` int64 [M] and ``offsets`` int64 [U+1] are tensors (on
    ``frames.device``); ``utts`` lists the U utterances in order.
    """

    frames: Tensor
    targets: Tensor
    offsets: Tensor
    utts: list[str]
    num_pdfs: int
    source: str = ""

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def num_frames(self) -> int:
        return len(self)

    @property
    def dim(self) -> int:
        return int(self.frames.shape[1])

    @property
    def device(self) -> torch.device:
        return self.frames.device

    def to(self, device: torch.device | str) -> "FrameDataset":
        """A copy with frames, targets and offsets on ``device`` (a no-op if already there)."""
        device = torch.device(device)
        if self.frames.device == device:
            return self
        return FrameDataset(self.frames.to(device), self.targets.to(device), self.offsets.to(device),
                            list(self.utts), self.num_pdfs, self.source)

    def splicer(self, left: int, right: int):
        from asrdistill.features.splice import Splicer

        return Splicer(self.offsets.cpu().numpy(), left, right, self.device)

    def pdf_counts(self) -> np.ndarray:
        """Frames per pdf (float64 [num_pdfs])."""
        return np.bincount(self.targets.cpu().numpy(), minlength=self.num_pdfs).astype(np.float64)

    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dim mean and standard deviation of the frames (float64 accumulation)."""
        x = self.frames.cpu().numpy()
        if not len(x):
            return np.zeros(x.shape[1]), np.ones(x.shape[1])
        total = np.zeros(x.shape[1])
        squares = np.zeros(x.shape[1])
        for start in range(0, len(x), 1 << 18):  # chunks: no float64 copy of all frames
            chunk = x[start:start + (1 << 18)].astype(np.float64)
            total += chunk.sum(axis=0)
            squares += (chunk ** 2).sum(axis=0)
        mean = total / len(x)
        return mean, np.sqrt(np.maximum(squares / len(x) - mean ** 2, 0.0))

    def select_utts(self, utts: list[str]) -> "FrameDataset":
        """The dataset restricted to ``utts`` (kept in this dataset's order)."""
        keep = set(utts)
        pos = [i for i, u in enumerate(self.utts) if u in keep]
        off = self.offsets.cpu().numpy()
        rows = np.concatenate([np.arange(off[i], off[i + 1]) for i in pos]) if pos else np.zeros(0, np.int64)
        rows_t = torch.as_tensor(rows, device=self.device)
        lengths = np.array([off[i + 1] - off[i] for i in pos], dtype=np.int64)
        offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), device=self.device)
        return FrameDataset(self.frames.index_select(0, rows_t), self.targets.index_select(0, rows_t),
                            offsets, [self.utts[i] for i in pos], self.num_pdfs, self.source)

    def subset(self, fraction: float, seed: int = 0) -> "FrameDataset":
        """A random ``fraction`` of the utterances (whole utterances, chosen with a seeded RNG).

        At least one utterance is kept. The choice depends only on ``seed`` and the utterance list.
        """
        if not 0.0 < fraction <= 1.0:
            raise UserFacingError(f"subset fraction must be in (0, 1], got {fraction}")
        if fraction == 1.0:
            return self
        n = max(1, int(round(fraction * len(self.utts))))
        rng = np.random.default_rng(seed)
        chosen = rng.choice(len(self.utts), size=n, replace=False)
        return self.select_utts([self.utts[i] for i in sorted(chosen)])


class MappedSplicer:
    """Context windows of dataset rows read from a frame store's memory map (see :class:`MemmapFrameDataset`).

    Called like a :class:`~asrdistill.features.splice.Splicer` (``splicer(frames, rows)``, ``frames`` being the
    store's map): the windows are clamped into each row's utterance in dataset row space, shifted to the
    store's rows, gathered from the map on the CPU and returned float32 [B, W*D] on ``device`` (through
    pinned memory on CUDA). ``rows`` may live on any device.
    """

    def __init__(self, offsets: np.ndarray, store_start: np.ndarray, left: int, right: int,
                 device: torch.device | str = "cpu"):
        if left < 0 or right < 0:
            raise ValueError(f"context must be non-negative, got left={left} right={right}")
        self.left, self.right = int(left), int(right)
        self.width = self.left + 1 + self.right
        self.device = torch.device(device)
        self.offsets = torch.as_tensor(np.asarray(offsets, dtype=np.int64))
        # store row of dataset row r = r + shift[utterance of r]
        self.shift = torch.as_tensor(np.asarray(store_start, dtype=np.int64) - self.offsets[:-1].numpy())
        self.window = torch.arange(-self.left, self.right + 1, dtype=torch.long)

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    def store_rows(self, index: Tensor | np.ndarray) -> Tensor:
        """Store rows [B, W] of the windows of dataset rows ``index`` [B] (CPU int64)."""
        index = torch.as_tensor(index).to("cpu", torch.long)
        utt = torch.searchsorted(self.offsets, index, right=True) - 1
        first = self.offsets[utt].unsqueeze(1)
        last = (self.offsets[utt + 1] - 1).unsqueeze(1)
        idx = torch.maximum(torch.minimum(index.unsqueeze(1) + self.window.unsqueeze(0), last), first)
        return idx + self.shift[utt].unsqueeze(1)

    def __call__(self, frames: np.ndarray, index: Tensor | np.ndarray) -> Tensor:
        idx = self.store_rows(index)
        rows = np.take(frames, idx.numpy().reshape(-1), axis=0)
        x = torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).reshape(idx.shape[0], -1)
        if self.device.type == "cuda":
            return x.pin_memory().to(self.device, non_blocking=True)
        return x.to(self.device)


class MemmapFrameDataset(FrameDataset):
    """A :class:`FrameDataset` whose ``frames`` is the frame store's read-only memory map [N_store, D].

    ``store_start[u]`` is the store row of utterance u's first frame (utterances without an alignment, or
    outside a subset, are simply not referenced). ``targets`` and ``offsets`` are tensors on the compute
    device (:meth:`to` sets it; the frames stay mapped). Pickles by path (the map is reopened, not copied).
    """

    def __init__(self, store_path: str, store_start: np.ndarray, targets: Tensor, offsets: Tensor,
                 utts: list[str], num_pdfs: int, source: str = "", frames: np.ndarray | None = None):
        if frames is None:
            from asrdistill.features.store import FrameStore

            frames = FrameStore(store_path).frames
        super().__init__(frames, targets, offsets, utts, num_pdfs, source)  # type: ignore[arg-type]
        self.store_path = str(store_path)
        self.store_start = np.asarray(store_start, dtype=np.int64)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["frames"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        from asrdistill.features.store import FrameStore

        self.__dict__.update(state)
        self.frames = FrameStore(self.store_path).frames

    @property
    def dim(self) -> int:
        return int(self.frames.shape[1])

    @property
    def device(self) -> torch.device:
        return self.targets.device

    def to(self, device: torch.device | str) -> "MemmapFrameDataset":
        device = torch.device(device)
        if self.device == device:
            return self
        return MemmapFrameDataset(self.store_path, self.store_start, self.targets.to(device),
                                  self.offsets.to(device), list(self.utts), self.num_pdfs, self.source, self.frames)

    def splicer(self, left: int, right: int) -> MappedSplicer:  # type: ignore[override]
        return MappedSplicer(self.offsets.cpu().numpy(), self.store_start, left, right, self.device)

    def _spans(self):
        off = self.offsets.cpu().numpy()
        for u in range(len(self.utts)):
            yield int(self.store_start[u]), int(self.store_start[u] + off[u + 1] - off[u])

    def in_memory(self) -> FrameDataset:
        """The same data as an in-memory :class:`FrameDataset` (on the same device)."""
        frames = np.concatenate([np.asarray(self.frames[a:b], dtype=np.float32) for a, b in self._spans()]
                                or [np.zeros((0, self.dim), np.float32)])
        return FrameDataset(torch.from_numpy(frames).to(self.device), self.targets, self.offsets, list(self.utts),
                            self.num_pdfs, self.source)

    def _chunks(self, size: int):
        """The frames in dataset row order, in float32 arrays of ``size`` rows (the last one shorter)."""
        pieces, have = [], 0
        for a, b in self._spans():
            while a < b:
                take = min(b - a, size - have)
                pieces.append(self.frames[a:a + take])
                a, have = a + take, have + take
                if have == size:
                    yield np.concatenate(pieces).astype(np.float32, copy=False)
                    pieces, have = [], 0
        if have:
            yield np.concatenate(pieces).astype(np.float32, copy=False)

    def feature_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`FrameDataset.feature_stats`, bit for bit (the same chunks, read from the map)."""
        total, squares, n = np.zeros(self.dim), np.zeros(self.dim), 0
        for chunk in self._chunks(1 << 18):
            chunk = chunk.astype(np.float64)
            total += chunk.sum(axis=0)
            squares += (chunk ** 2).sum(axis=0)
            n += len(chunk)
        if not n:
            return np.zeros(self.dim), np.ones(self.dim)
        mean = total / n
        return mean, np.sqrt(np.maximum(squares / n - mean ** 2, 0.0))

    def select_utts(self, utts: list[str]) -> "MemmapFrameDataset":
        keep = set(utts)
        pos = [i for i, u in enumerate(self.utts) if u in keep]
        off = self.offsets.cpu().numpy()
        rows = np.concatenate([np.arange(off[i], off[i + 1]) for i in pos]) if pos else np.zeros(0, np.int64)
        lengths = np.array([off[i + 1] - off[i] for i in pos], dtype=np.int64)
        offsets = torch.as_tensor(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), device=self.device)
        targets = self.targets.index_select(0, torch.as_tensor(rows, device=self.device))
        return MemmapFrameDataset(self.store_path, self.store_start[pos], targets, offsets,
                                  [self.utts[i] for i in pos], self.num_pdfs, self.source, self.frames)


def load_frame_dataset(feat_dir: str | os.PathLike, ali_dir: str | os.PathLike,
                       num_pdfs: int | None = None, mmap: bool = False) -> FrameDataset:
    """Pair the frame store of ``feat_dir`` with the pdf alignments of ``ali_dir``.

    ``mmap``: a :class:`MemmapFrameDataset` (frames left in the store's memory map) instead of a copy in memory.

    Utterances without an alignment are skipped (a warning names them); an alignment whose length differs
    from its utterance's frame count, a pdf-id outside ``[0, num_pdfs)`` or a NaN/Inf in the frames of an
    aligned utterance is an error naming the utterance. ``num_pdfs`` defaults to ``<ali_dir>/num_pdfs``.
    """
    from asrdistill.features.store import FrameStore

    store = FrameStore(feat_dir)
    if num_pdfs is None:
        num_pdfs = read_num_pdfs(ali_dir)
    ali = read_pdf_alignments(ali_dir)
    store.check_finite([u for u in store.utts if u in ali])
    utts, lengths, chunks, targets, starts = [], [], [], [], []
    for i, utt in enumerate(store.utts):
        pdfs = ali.get(utt)
        if pdfs is None:
            continue
        start, end = int(store.offsets[i]), int(store.offsets[i + 1])
        if len(pdfs) != end - start:
            raise UserFacingError(f"{Path(ali_dir) / 'pdf.scp'} (utterance {utt}): alignment has {len(pdfs)} "
                                  f"frames but {feat_dir} has {end - start}")
        if len(pdfs) and (pdfs.min() < 0 or pdfs.max() >= num_pdfs):
            raise UserFacingError(f"{Path(ali_dir) / 'pdf.scp'} (utterance {utt}): pdf-id out of range "
                                  f"[0, {num_pdfs})")
        utts.append(utt)
        lengths.append(end - start)
        if mmap:
            starts.append(start)
        else:
            chunks.append(np.asarray(store.frames[start:end], dtype=np.float32))
        targets.append(pdfs)
    skipped = [u for u in store.utts if u not in ali]
    if skipped:
        from asrdistill.align.alidir import name_some

        log.warning("%s: %d of %d utterances have no alignment in %s (see its failed.txt); left out: %s", feat_dir,
                    len(skipped), len(store.utts), ali_dir, name_some(skipped))
    extra = sorted(set(ali) - set(store.utts))
    if extra:
        log.warning("%s: %d aligned utterances are not in %s (e.g. %s)", ali_dir, len(extra), feat_dir, extra[0])
    if not utts:
        raise UserFacingError(f"{feat_dir}: no utterance has an alignment in {ali_dir}")
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    if mmap:
        return MemmapFrameDataset(str(feat_dir), np.asarray(starts, np.int64),
                                  torch.from_numpy(np.concatenate(targets).astype(np.int64)), torch.from_numpy(offsets),
                                  utts, int(num_pdfs), source=str(feat_dir), frames=store.frames)
    frames = np.concatenate(chunks) if chunks else np.zeros((0, store.dim), np.float32)
    return FrameDataset(torch.from_numpy(frames), torch.from_numpy(np.concatenate(targets).astype(np.int64)),
                        torch.from_numpy(offsets), utts, int(num_pdfs), source=str(feat_dir))


def load_training_sets(feats: str | os.PathLike, ali: str | os.PathLike, dev_feats: str | os.PathLike,
                       dev_ali: str | os.PathLike, subset: float = 1.0, subset_seed: int = 0,
                       record_in: str | os.PathLike | None = None,
                       mmap: bool = False) -> tuple[FrameDataset, FrameDataset]:
    """(train, dev) datasets on the same pdf set; ``subset`` < 1 keeps that fraction of the training
    utterances. With ``record_in``, ``<record_in>/train_data.json`` records which training data was used
    (the results stage re-scores the same subset). ``mmap``: both stay in their stores' memory maps."""
    from asrdistill.utils import write_json_atomic

    num_pdfs = read_num_pdfs(ali)
    train = load_frame_dataset(feats, ali, num_pdfs, mmap=mmap)
    dev = load_frame_dataset(dev_feats, dev_ali, num_pdfs, mmap=mmap)
    if subset < 1.0:
        train = train.subset(subset, subset_seed)
    if record_in is not None:
        write_json_atomic(Path(record_in) / "train_data.json",
                          {"feats": str(feats), "ali": str(ali), "dev_feats": str(dev_feats), "dev_ali": str(dev_ali),
                           "subset": subset, "subset_seed": subset_seed, "utterances": len(train.utts),
                           "frames": int(len(train.targets))})
    return train, dev
