"""A synthetic frame store + pdf alignment dir for tests and benchmarks (no audio, no HMMs).

Each utterance is a sequence of segments; a segment of pdf k lasts a few frames whose features are
``mean_k + noise`` (plus a slow per-utterance offset). Neighbouring pdfs follow a fixed successor
table, so context frames help, as in speech. Writes the same files as the real pipeline: a frame
store (``frames.f32`` + ``frames.json``) and ``pdf.scp``/``pdf.ark`` + ``num_pdfs``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def make_toy_utterances(num_utts: int, num_pdfs: int, dim: int = 40, mean_frames: int = 100,
                        noise: float = 1.5, seed: int = 0, mean_seed: int = 1234
                        ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """utt -> (frames float32 [T, dim], pdfs int32 [T]). ``mean_seed`` fixes the pdf means (share it
    between train and dev sets); ``seed`` draws the utterances."""
    mrng = np.random.default_rng(mean_seed)
    means = mrng.normal(0.0, 1.0, size=(num_pdfs, dim)).astype(np.float32)
    succ = mrng.integers(0, num_pdfs, size=(num_pdfs, 3))
    rng = np.random.default_rng(seed)
    out = {}
    for u in range(num_utts):
        T = max(5, int(rng.integers(mean_frames // 2, mean_frames * 3 // 2 + 1)))
        pdfs = np.empty(T, np.int32)
        k = int(rng.integers(num_pdfs))
        t = 0
        while t < T:
            dur = int(rng.integers(2, 8))
            pdfs[t:t + dur] = k
            t += dur
            k = int(succ[k, rng.integers(3)])
        x = means[pdfs] + noise * rng.normal(size=(T, dim)).astype(np.float32)
        x += rng.normal(0, 0.3, size=(1, dim)).astype(np.float32)
        out[f"spk{u % 4:02d}-{u:05d}"] = (x.astype(np.float32), pdfs)
    return dict(sorted(out.items()))


def write_toy_dirs(feat_dir: str | os.PathLike, ali_dir: str | os.PathLike, num_utts: int, num_pdfs: int,
                   dim: int = 40, mean_frames: int = 100, noise: float = 1.5, seed: int = 0,
                   unaligned: int = 0) -> None:
    """Write a toy frame store to ``feat_dir`` and its alignments to ``ali_dir``; the last ``unaligned``
    utterances get no alignment."""
    import kaldiio

    from asrdistill.features.store import open_frames_for_writing, write_index

    utts = make_toy_utterances(num_utts, num_pdfs, dim, mean_frames, noise, seed)
    feat_dir, ali_dir = Path(feat_dir), Path(ali_dir)
    feat_dir.mkdir(parents=True, exist_ok=True)
    ali_dir.mkdir(parents=True, exist_ok=True)
    names = list(utts)
    lengths = [len(utts[u][1]) for u in names]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    mm = open_frames_for_writing(feat_dir, int(offsets[-1]), dim)
    for i, u in enumerate(names):
        mm[offsets[i]:offsets[i + 1]] = utts[u][0]
    if hasattr(mm, "flush"):
        mm.flush()
    del mm
    write_index(feat_dir, names, offsets, dim)
    aligned = names[:len(names) - unaligned] if unaligned else names
    with kaldiio.WriteHelper(f"ark,scp:{ali_dir / 'pdf.ark'},{ali_dir / 'pdf.scp'}") as w:
        for u in aligned:
            w(u, utts[u][1].astype(np.int32))
    (ali_dir / "num_pdfs").write_text(f"{num_pdfs}\n")
