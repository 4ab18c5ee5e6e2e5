"""A tiny synthetic corpus with known phone boundaries, for tests and quick checks of GMM-HMM training.

Each HMM state of each phone has its own mean in a 40-dim "fbank" space (plus unit noise), so a working
aligner recovers the true boundaries. Writes a dict dir, a Kaldi data dir (text, utt2spk, spk2utt,
phones.ctm ground truth) and a frame store (frames.f32 / frames.json) in the layout of
:mod:`asrdistill.features.store`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOY_PHONES = ["AA", "B", "IY", "K", "M", "S", "T", "UW"]
TOY_LEXICON = {
    "bat": ["B", "AA", "T"], "cat": ["K", "AA", "T"], "see": ["S", "IY"], "moo": ["M", "UW"],
    "boot": ["B", "UW", "T"], "key": ["K", "IY"], "ma": ["M", "AA"], "sam": ["S", "AA", "M"],
    "at": ["AA", "T"], "tea": ["T", "IY"], "<UNK>": ["SPN"],
}


@dataclass
class ToyCorpus:
    dict_dir: Path
    data_dir: Path
    feat_dir: Path
    text: dict[str, str]


def write_dict_dir(dict_dir: str | os.PathLike, lexicon: dict[str, list[str]] | None = None,
                   phones: list[str] | None = None) -> Path:
    d = Path(dict_dir)
    d.mkdir(parents=True, exist_ok=True)
    lexicon = lexicon or TOY_LEXICON
    phones = phones or TOY_PHONES
    (d / "lexicon.txt").write_text("".join(f"{w} {' '.join(p)}\n" for w, p in
                                           sorted(lexicon.items(), key=lambda x: x[0].encode())))
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("".join(f"{p}\n" for p in phones))
    (d / "extra_questions.txt").write_text("")
    return d


def make_toy_corpus(root: str | os.PathLike, num_utts: int = 40, seed: int = 0, dim: int = 40,
                    noise: float = 1.0, split: str = "train", num_spk: int = 2) -> ToyCorpus:
    """Write a toy corpus under ``root`` (dict/, data/<split>/, fbank/<split>/) and return its paths."""
    from asrdistill.features.store import open_frames_for_writing, write_index

    rng = np.random.default_rng(seed)
    means_rng = np.random.default_rng(1234)  # the same acoustic space for every split
    root = Path(root)
    dict_dir = write_dict_dir(root / "dict")
    all_phones = ["SIL", "SPN"] + TOY_PHONES
    state_means = {p: means_rng.normal(0, 2.0, size=(5 if p in ("SIL", "SPN") else 3, dim)) for p in all_phones}
    words = [w for w in TOY_LEXICON if w != "<UNK>"]
    data_dir = root / "data" / split
    feat_dir = root / "fbank" / split
    data_dir.mkdir(parents=True, exist_ok=True)
    feat_dir.mkdir(parents=True, exist_ok=True)
    text, utt2spk, ctm_lines, feats = {}, {}, [], []
    for i in range(num_utts):
        spk = f"s{i % num_spk}"
        utt = f"{spk}-{i:04d}"
        n = int(rng.integers(2, 6))
        ws = list(rng.choice(words, size=n))
        if i % 7 == 3:
            ws[int(rng.integers(n))] = "<UNK>"
        text[utt] = " ".join(ws)
        utt2spk[utt] = spk
        seq = ["SIL"]
        for w in ws:
            seq += TOY_LEXICON[w]
            if rng.random() < 0.3:
                seq.append("SIL")
        if seq[-1] != "SIL":
            seq.append("SIL")
        frames, t = [], 0
        for p in seq:
            nst = len(state_means[p])
            durs = rng.integers(2 if nst == 3 else 2, 6, size=nst)
            start = t
            for s, dur in enumerate(durs):
                frames.append(state_means[p][s] + noise * rng.normal(size=(int(dur), dim)))
                t += int(dur)
            ctm_lines.append(f"{utt} 1 {start * 0.01:.2f} {(t - start) * 0.01:.2f} {p}\n")
        feats.append(np.concatenate(frames).astype(np.float32))
    utts = sorted(text, key=str.encode)
    order = {u: k for k, u in enumerate(text)}
    feats = [feats[order[u]] for u in utts]
    offsets = np.concatenate([[0], np.cumsum([len(f) for f in feats])])
    mm = open_frames_for_writing(feat_dir, int(offsets[-1]), dim)
    mm[:] = np.concatenate(feats)
    if hasattr(mm, "flush"):
        mm.flush()
    write_index(feat_dir, utts, offsets, dim)
    (data_dir / "text").write_text("".join(f"{u} {text[u]}\n" for u in utts))
    (data_dir / "utt2spk").write_text("".join(f"{u} {utt2spk[u]}\n" for u in utts))
    spk2utt: dict[str, list[str]] = {}
    for u in utts:
        spk2utt.setdefault(utt2spk[u], []).append(u)
    (data_dir / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    (data_dir / "wav.scp").write_text("".join(f"{u} /dev/null\n" for u in utts))
    (data_dir / "phones.ctm").write_text("".join(ctm_lines))
    return ToyCorpus(dict_dir, data_dir, feat_dir, {u: text[u] for u in utts})
