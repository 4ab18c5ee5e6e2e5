"""Frame-level training data: the frames of a feature dir paired with per-frame pdf-id targets.

A :class:`FrameDataset` holds, in memory, the CMVN-applied frames [M, D] of the utterances that have
an alignment (utterances without one are skipped), their utterance boundaries ``offsets`` [U+1] and
the pdf-id of every frame ``targets`` [M]. Rows are frames; a batch is a tensor of row indices that a
:class:`~asrdistill.features.splice.Splicer` turns into context windows on the training device, so no
spliced copy of the data is ever made. :meth:`FrameDataset.to` copies frames and targets to a GPU
once, after which loading a batch is one gather on the device.

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


def load_frame_dataset(feat_dir: str | os.PathLike, ali_dir: str | os.PathLike,
                       num_pdfs: int | None = None) -> FrameDataset:
    """Pair the frame store of ``feat_dir`` with the pdf alignments of ``ali_dir``.

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
    utts, lengths, chunks, targets = [], [], [], []
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
    frames = np.concatenate(chunks) if chunks else np.zeros((0, store.dim), np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return FrameDataset(torch.from_numpy(frames), torch.from_numpy(np.concatenate(targets).astype(np.int64)),
                        torch.from_numpy(offsets), utts, int(num_pdfs), source=str(feat_dir))


def load_training_sets(feats: str | os.PathLike, ali: str | os.PathLike, dev_feats: str | os.PathLike,
                       dev_ali: str | os.PathLike, subset: float = 1.0, subset_seed: int = 0,
                       record_in: str | os.PathLike | None = None) -> tuple[FrameDataset, FrameDataset]:
    """(train, dev) datasets on the same pdf set; ``subset`` < 1 keeps that fraction of the training
    utterances. With ``record_in``, ``<record_in>/train_data.json`` records which training data was used
    (the results stage re-scores the same subset)."""
    from asrdistill.utils import write_json_atomic

    num_pdfs = read_num_pdfs(ali)
    train = load_frame_dataset(feats, ali, num_pdfs)
    dev = load_frame_dataset(dev_feats, dev_ali, num_pdfs)
    if subset < 1.0:
        train = train.subset(subset, subset_seed)
    if record_in is not None:
        write_json_atomic(Path(record_in) / "train_data.json",
                          {"feats": str(feats), "ali": str(ali), "dev_feats": str(dev_feats), "dev_ali": str(dev_ali),
                           "subset": subset, "subset_seed": subset_seed, "utterances": len(train.utts),
                           "frames": int(len(train.targets))})
    return train, dev
