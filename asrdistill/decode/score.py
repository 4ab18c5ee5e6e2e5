"""Word error rate with kaldialign: Kaldi's ``%WER`` line, per-utterance alignments, bootstrap interval.

* ``%WER 12.34 [ 123 / 1000, 10 ins, 20 del, 93 sub ]`` (Kaldi's ``compute-wer`` line) and ``%SER``.
* ``per_utt``: for each utterance, Kaldi's ``wer_per_utt_details.pl`` lines ``utt ref``, ``utt hyp``,
  ``utt op`` (C correct, S substitution, I insertion, D deletion; ``***`` fills gaps) and
  ``utt #csid`` (counts of correct, substituted, inserted, deleted words).
* 95% bootstrap confidence interval of the WER (Bisani & Ney 2004; ``kaldialign.bootstrap_wer_ci``,
  as Kaldi's ``compute-wer-bootci``).
Utterances of the reference with no hypothesis count as empty hypotheses (all deletions), with a warning.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from asrdistill.errors import UserFacingError
from asrdistill.utils import get_logger, write_json_atomic, write_text_atomic

log = get_logger(__name__)

EPS = "***"


def read_text(path: str | os.PathLike) -> dict[str, str]:
    """A Kaldi ``text`` file as utt -> transcript (an utterance may have an empty transcript)."""
    out: dict[str, str] = {}
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: not found")
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if parts[0] in out:
            raise UserFacingError(f"{path}:{lineno}: utterance {parts[0]} appears twice")
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def wer_line(errors: int, ref_words: int, ins: int, dels: int, subs: int) -> str:
    pct = 100.0 * errors / ref_words if ref_words else 0.0
    return f"%WER {pct:.2f} [ {errors} / {ref_words}, {ins} ins, {dels} del, {subs} sub ]"


def align_utterance(ref: list[str], hyp: list[str]) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """Aligned (ref word, hyp word, op) triples and the counts C/S/I/D of one utterance."""
    pairs = kaldialign_align(ref, hyp)
    triples, counts = [], {"C": 0, "S": 0, "I": 0, "D": 0}
    for r, h in pairs:
        op = "I" if r == EPS else "D" if h == EPS else "C" if r == h else "S"
        counts[op] += 1
        triples.append((r, h, op))
    return triples, counts


def kaldialign_align(ref: list[str], hyp: list[str]) -> list[tuple[str, str]]:
    import kaldialign
    return kaldialign.align(ref, hyp, EPS)


def per_utt_lines(utt: str, triples: list[tuple[str, str, str]], counts: dict[str, int]) -> list[str]:
    widths = [max(len(r), len(h), 1) for r, h, _ in triples]
    row = lambda xs: " ".join(x.ljust(w) for x, w in zip(xs, widths)).rstrip()  # noqa: E731
    return [f"{utt} ref  {row([t[0] for t in triples])}", f"{utt} hyp  {row([t[1] for t in triples])}",
            f"{utt} op   {row([t[2] for t in triples])}",
            f"{utt} #csid {counts['C']} {counts['S']} {counts['I']} {counts['D']}"]


def compute_wer(refs: Mapping[str, str], hyps: Mapping[str, str], bootstrap: int = 1000, seed: int = 0,
                out_dir: str | os.PathLike | None = None) -> dict:
    """WER of ``hyps`` against ``refs`` (utt -> transcript). Returns a JSON-ready dict:
    ``wer`` (percent), ``errors``, ``ins``, ``del``, ``sub``, ``ref_words``, ``utterances``,
    ``sentence_errors``, ``ser`` (percent), ``missing_hyps``, ``line`` (Kaldi %WER line), ``ser_line``,
    and with ``bootstrap > 0`` replications ``ci95`` = [low, high] (percent) and ``ci95_halfwidth``.
    With ``out_dir``: writes ``wer`` (the lines), ``per_utt`` (alignments) and ``wer.json`` there.
    """
    import kaldialign

    missing = sorted(set(refs) - set(hyps))
    extra = sorted(set(hyps) - set(refs))
    if missing:
        log.warning("%d reference utterances have no hypothesis (scored as empty), e.g. %s", len(missing),
                    missing[0])
    if extra:
        log.warning("%d hypotheses have no reference (ignored), e.g. %s", len(extra), extra[0])
    utts = sorted(refs)
    tot = {"C": 0, "S": 0, "I": 0, "D": 0}
    sent_err = 0
    lines: list[str] = []
    ref_seqs, hyp_seqs = [], []
    for utt in utts:
        ref, hyp = refs[utt].split(), hyps.get(utt, "").split()
        triples, counts = align_utterance(ref, hyp)
        for k in tot:
            tot[k] += counts[k]
        sent_err += int(counts["S"] + counts["I"] + counts["D"] > 0)
        lines += per_utt_lines(utt, triples, counts)
        ref_seqs.append(ref)
        hyp_seqs.append(hyp)
    ref_words = tot["C"] + tot["S"] + tot["D"]
    errors = tot["S"] + tot["I"] + tot["D"]
    res: dict = {"wer": 100.0 * errors / ref_words if ref_words else 0.0, "errors": errors, "ins": tot["I"],
                 "del": tot["D"], "sub": tot["S"], "ref_words": ref_words, "utterances": len(utts),
                 "sentence_errors": sent_err, "ser": 100.0 * sent_err / len(utts) if utts else 0.0,
                 "missing_hyps": len(missing)}
    res["line"] = wer_line(errors, ref_words, tot["I"], tot["D"], tot["S"])
    res["ser_line"] = f"%SER {res['ser']:.2f} [ {sent_err} / {len(utts)} ]"
    if bootstrap > 0 and ref_words:
        ci = kaldialign.bootstrap_wer_ci(ref_seqs, hyp_seqs, replications=bootstrap, seed=seed)
        res["ci95"] = [100.0 * ci["ci95min"], 100.0 * ci["ci95max"]]
        res["ci95_halfwidth"] = 100.0 * ci["ci95"]
        res["bootstrap_mean_wer"] = 100.0 * ci["wer"]
        res["bootstrap_replications"] = bootstrap
    if out_dir is not None:
        out = Path(out_dir)
        summary = res["line"] + "\n" + res["ser_line"] + "\n"
        if "ci95" in res:
            summary += (f"%WER 95% bootstrap interval [ {res['ci95'][0]:.2f}, {res['ci95'][1]:.2f} ] "
                        f"({bootstrap} replications)\n")
        write_text_atomic(out / "wer", summary)
        write_text_atomic(out / "per_utt", "\n".join(lines) + ("\n" if lines else ""))
        write_json_atomic(out / "wer.json", res)
    return res


def score_files(ref_text: str | os.PathLike, hyp_text: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                bootstrap: int = 1000, seed: int = 0) -> dict:
    """:func:`compute_wer` on two Kaldi ``text`` files."""
    return compute_wer(read_text(ref_text), read_text(hyp_text), bootstrap=bootstrap, seed=seed, out_dir=out_dir)
