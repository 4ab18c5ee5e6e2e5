"""Alignment dirs (``exp/<sys>/ali_<split>/``), Kaldi-readable with kaldiio:

  ali.scp, ali.ark     transition-ids per frame (int32 vectors); absent for imported pdf alignments
  pdf.scp, pdf.ark     pdf-ids per frame (int32 vectors), i.e. what Kaldi's ``ali-to-pdf`` gives
  pdf_counts.txt       frames per pdf as a Kaldi text vector ``[ c0 c1 ... ]`` (``analyze-counts`` format),
                       for the DNN's priors
  num_pdfs             the number of pdfs (one integer)
  failed.txt           utterances that could not be aligned (left out), one per line
  final.mdl            the GMM-HMM that aligned (when there is one), see :mod:`asrdistill.hmm.model`
  info.json            summary (utterances, frames, source)

Also: importing a user's own pdf alignments (``ali-to-pdf`` output) after validating them against a frame store.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import atomic_path, get_logger, mark_done

log = get_logger(__name__)


def _save_table(directory: Path, final_dir: Path, name: str, data: Mapping[str, np.ndarray]) -> None:
    """Write name.ark/name.scp into ``directory``; the scp points at the ark's final location."""
    import kaldiio
    ark, scp = directory / f"{name}.ark", directory / f"{name}.scp"
    kaldiio.save_ark(str(ark), {u: np.asarray(v, dtype=np.int32) for u, v in data.items()}, scp=str(scp))
    final_ark = str((final_dir / f"{name}.ark").resolve())
    lines = []
    for line in scp.read_text().splitlines():
        utt, loc = line.split(maxsplit=1)
        offset = loc.rsplit(":", 1)[1]
        lines.append(f"{utt} {final_ark}:{offset}\n")
    scp.write_text("".join(lines))


def name_some(utts: list[str], limit: int = 10) -> str:
    """``a, b, c`` (and ``... and N more``) for log lines that name utterances."""
    head = ", ".join(utts[:limit])
    return head + (f" ... and {len(utts) - limit} more" if len(utts) > limit else "")


def format_counts(counts: np.ndarray) -> str:
    return "[ " + " ".join(str(int(c)) for c in counts) + " ]\n"


def read_counts(path: str | os.PathLike) -> np.ndarray:
    """Read ``pdf_counts.txt`` (Kaldi text vector) as int64."""
    from asrdistill.textio import read_text

    text = read_text(path).replace("[", " ").replace("]", " ").split()
    try:
        counts = np.asarray([float(x) for x in text], dtype=np.float64)
    except ValueError:
        raise UserFacingError(f"{path}: expected a Kaldi text vector of counts '[ c0 c1 ... ]'") from None
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise UserFacingError(f"{path}: counts must be finite and non-negative")
    return counts.astype(np.int64)


def read_num_pdfs(path: str | os.PathLike) -> int:
    """The integer in an alignment dir's ``num_pdfs`` file."""
    from asrdistill.textio import read_text

    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: missing (alignment dirs hold num_pdfs)")
    try:
        n = int(read_text(path).split()[0])
    except (ValueError, IndexError):
        raise UserFacingError(f"{path}:1: expected an integer") from None
    if n <= 0:
        raise UserFacingError(f"{path}:1: the number of pdfs must be positive, got {n}")
    return n


def write_alignment_dir(out_dir: str | os.PathLike, pdf_alignments: Mapping[str, np.ndarray], num_pdfs: int, *,
                        tid_alignments: Mapping[str, np.ndarray] | None = None, failed: list[str] = (),
                        model: Any = None, info: dict | None = None) -> Path:
    """Write an alignment dir atomically (complete or absent) and return its path."""
    out_dir = Path(out_dir)
    utts = sorted(pdf_alignments, key=str.encode)
    counts = np.zeros(num_pdfs, dtype=np.int64)
    for u in utts:
        counts += np.bincount(pdf_alignments[u], minlength=num_pdfs)[:num_pdfs]
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        _save_table(tmp, out_dir, "pdf", {u: pdf_alignments[u] for u in utts})
        if tid_alignments is not None:
            _save_table(tmp, out_dir, "ali", {u: tid_alignments[u] for u in utts})
        (tmp / "pdf_counts.txt").write_text(format_counts(counts))
        (tmp / "num_pdfs").write_text(f"{num_pdfs}\n")
        (tmp / "failed.txt").write_text("".join(f"{u}\n" for u in sorted(failed)))
        if model is not None:
            (tmp / "final.mdl").write_bytes(model.to_bytes())
        summary = {"num_utts": len(utts), "num_frames": int(counts.sum()), "num_pdfs": int(num_pdfs),
                   "num_failed": len(failed), "unseen_pdfs": int((counts == 0).sum())}
        summary.update(info or {})
        (tmp / "info.json").write_text(json.dumps(summary, indent=2) + "\n")
        mark_done(tmp)
    log.info("alignment dir %s: %d utterances, %d frames, %d pdfs (%d unseen), %d failed", out_dir, len(utts),
             counts.sum(), num_pdfs, (counts == 0).sum(), len(failed))
    return out_dir


@dataclass
class AlignmentDir:
    path: Path
    num_pdfs: int
    pdf: dict[str, np.ndarray]
    counts: np.ndarray

    def transition_ids(self) -> dict[str, np.ndarray] | None:
        """Transition-ids per frame from ``ali.scp`` (None for imported pdf alignments). The toolkit wrote the
        file, so a command in it is refused whatever ``--allow-pipes`` says."""
        from asrdistill.kaldi_tables import read_int_vector_table

        scp = self.path / "ali.scp"
        return read_int_vector_table(scp, allow_pipes=False) if scp.is_file() else None


def read_alignment_dir(path: str | os.PathLike) -> AlignmentDir:
    """An alignment dir written by :func:`write_alignment_dir` (no command in its tables is ever run)."""
    from asrdistill.kaldi_tables import read_int_vector_table

    path = Path(path)
    if not (path / "pdf.scp").is_file() or not (path / "num_pdfs").is_file():
        raise UserFacingError(f"{path}: not an alignment dir (pdf.scp and num_pdfs needed)")
    pdf = read_int_vector_table(path / "pdf.scp", allow_pipes=False)
    return AlignmentDir(path, read_num_pdfs(path / "num_pdfs"), pdf, read_counts(path / "pdf_counts.txt"))


def import_pdf_alignments(source: str | os.PathLike, num_pdfs: int, feat_dir: str | os.PathLike,
                          out_dir: str | os.PathLike, allow_missing: bool = True, allow_pipes: bool = False) -> Path:
    """Bring your own alignments: per-frame pdf-ids (``ali-to-pdf`` output, a Kaldi ``.ark`` or ``.scp``)
    checked against a frame store (every utterance known, lengths equal, pdf-ids in [0, num_pdfs)), written
    as a standard alignment dir. Utterances of the store without an alignment are listed in failed.txt
    (an error if ``allow_missing`` is False). Commands in the scp run only with ``allow_pipes``
    (:mod:`asrdistill.kaldi_tables`)."""
    from asrdistill.features.store import FrameStore
    from asrdistill.kaldi_tables import read_int_vector_table

    source = Path(source)
    if not source.is_file():
        raise UserFacingError(f"{source}: alignment file not found")
    if num_pdfs <= 0:
        raise UserFacingError(f"num_pdfs must be positive, got {num_pdfs}")
    store = FrameStore(feat_dir)
    alis: dict[str, np.ndarray] = {}
    for utt, vec in read_int_vector_table(source, allow_pipes=allow_pipes).items():
        if utt not in store:
            raise UserFacingError(f"{source}: utterance {utt} is not in the frame store {feat_dir}")
        t = len(store.get(utt))
        if len(vec) != t:
            raise UserFacingError(f"{source}: utterance {utt}: {len(vec)} pdf-ids but {t} feature frames")
        if vec.size and (vec.min() < 0 or vec.max() >= num_pdfs):
            bad = int(vec.max() if vec.max() >= num_pdfs else vec.min())
            raise UserFacingError(f"{source}: utterance {utt}: pdf-id {bad} outside [0, {num_pdfs})")
        alis[utt] = vec
    missing = [u for u in store.utts if u not in alis]
    if missing and not allow_missing:
        raise UserFacingError(f"{source}: no alignment for {len(missing)} utterances of {feat_dir}, e.g. {missing[0]}")
    if missing:
        log.warning("%s: %d utterances of %s have no alignment (listed in failed.txt): %s", source, len(missing),
                    feat_dir, name_some(missing))
    return write_alignment_dir(out_dir, alis, num_pdfs, failed=missing, info={"source": str(source)})
