"""Significance of WER and frame-accuracy differences with a speaker-level (two-stage) bootstrap.

Test sets of speech are samples of *speakers*, and utterances of one speaker are not independent: a system
that suits one voice wins on all of that voice's utterances. The utterance-level bootstrap of Bisani & Ney
(2004) (Kaldi's ``compute-wer-bootci``) treats utterances as independent and so understates the uncertainty
when a few speakers dominate a difference. Here each bootstrap replicate

1. draws as many speakers as there are, with replacement, and
2. for each drawn speaker, draws as many of its utterances as it has, with replacement,

and computes the corpus-level statistic of the replicate: ``sum(num) / sum(den)`` over the drawn utterances
(word errors / reference words for WER; correct frames / frames for frame accuracy). A pair of systems is
resampled with the *same* draws (paired bootstrap), and the interval is the 2.5th to 97.5th percentile of the
replicates' differences. Errors are never negative, so a WER interval never goes below 0%.

Everything takes plain dicts keyed by utterance id, so that results code can call it on whatever it has:

* :func:`bootstrap_rate` -- one system: the rate and its interval;
* :func:`paired_bootstrap` -- two systems on the same utterances: the difference ``a - b`` and its interval,
  ``excludes_zero``;
* :func:`share_kept` -- the share of an ensemble's gain over a reference that a student keeps,
  ``(student - reference) / (ensemble - reference)``, with its interval from the same kind of draws;
* :func:`speakers_to_exclude_zero` -- for an interval that holds zero, about how many speakers of the same
  kind would make it exclude zero if the difference stayed as measured (sizing the next test set);
* :func:`speaker_spread` -- whether a paired difference varies between speakers more than their utterances'
  sampling noise explains (more speakers needed) or not (more utterances per speaker would do as well);
* :func:`per_speaker` -- the rate of each speaker;
* :func:`compare_wer`, :func:`compare_frame_acc`, :func:`wer_interval` -- the same in percent, from
  ``{utt: (errors, ref_words)}`` / ``{utt: (correct, frames)}``;
* :func:`read_utt_errors` (a decode dir's ``per_utt``), :func:`read_utt2spk` (a data dir's ``utt2spk``).

Results are deterministic for a given ``seed`` (numpy's PCG64 generator).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from asrdistill.errors import UserFacingError

REPLICATIONS = 1000
LEVELS = ("speaker", "utterance")

Counts = Mapping[str, tuple[float, float]]   # utt -> (numerator, denominator), e.g. (errors, ref words)


class _Design:
    """Utterances grouped by speaker, in a fixed order (speakers sorted, utterances sorted within)."""

    def __init__(self, utts: Sequence[str], utt2spk: Mapping[str, str]):
        missing = [u for u in utts if u not in utt2spk]
        if missing:
            raise UserFacingError(f"utt2spk: no speaker for {len(missing)} utterances, e.g. {missing[0]}")
        by_spk: dict[str, list[str]] = {}
        for u in sorted(utts):
            by_spk.setdefault(utt2spk[u], []).append(u)
        self.speakers = sorted(by_spk)
        self.order = [u for s in self.speakers for u in by_spk[s]]
        self.sizes = np.array([len(by_spk[s]) for s in self.speakers], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)

    def draw(self, rng: np.random.Generator, replications: int, level: str, chunk: int = 256):
        """Yield ``(index, count)`` blocks: ``count[r, i]`` = times utterance ``i`` (in ``order``) is drawn
        in replicate ``r``."""
        n_utt, n_spk = len(self.order), len(self.speakers)
        for start in range(0, replications, chunk):
            reps = min(chunk, replications - start)
            counts = np.zeros((reps, n_utt), dtype=np.int64)
            if level == "utterance":
                picks = rng.integers(0, n_utt, size=(reps, n_utt))
                for r in range(reps):
                    counts[r] = np.bincount(picks[r], minlength=n_utt)
            else:
                spk = rng.integers(0, n_spk, size=(reps, n_spk))          # stage 1: speakers
                width = int(self.sizes.max())
                u = rng.random(size=(reps, n_spk, width))                 # stage 2: utterances within each
                size = self.sizes[spk]                                    # [reps, n_spk]
                local = np.minimum((u * size[..., None]).astype(np.int64), size[..., None] - 1)
                glob = self.offsets[spk][..., None] + local
                valid = np.arange(width)[None, None, :] < size[..., None]
                for r in range(reps):
                    counts[r] = np.bincount(glob[r][valid[r]], minlength=n_utt)
            yield counts


def _arrays(counts: Counts, order: Sequence[str], what: str) -> tuple[np.ndarray, np.ndarray]:
    num = np.array([float(counts[u][0]) for u in order])
    den = np.array([float(counts[u][1]) for u in order])
    bad = np.flatnonzero((num < 0) | (den < 0) | ~np.isfinite(num) | ~np.isfinite(den))
    if len(bad):
        u = order[int(bad[0])]
        raise UserFacingError(f"{what}: utterance {u} has negative or non-finite counts {counts[u]}")
    return num, den


def _check_same_utterances(a: Counts, b: Counts, message: str, names: tuple[str, str] = ("first", "second")
                           ) -> None:
    """Raise ``message`` followed by which utterances differ, unless ``a`` and ``b`` cover the same ones."""
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        which, utt = (names[0], only_a[0]) if only_a else (names[1], only_b[0])
        raise UserFacingError(f"{message} ({len(only_a)} only in the {names[0]}, {len(only_b)} only in the "
                              f"{names[1]}), e.g. {utt} only in the {which}")


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise UserFacingError(f"bootstrap level {level!r}: expected one of {', '.join(LEVELS)}")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _interval(values: np.ndarray) -> list[float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return [float("nan"), float("nan")]
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def bootstrap_rate(counts: Counts, utt2spk: Mapping[str, str], replications: int = REPLICATIONS, seed: int = 0,
                   level: str = "speaker") -> dict:
    """One system's corpus-level rate ``sum(num) / sum(den)`` with a 95% bootstrap interval.

    ``counts``: utt -> (num, den), e.g. (word errors, reference words). ``level``: "speaker" (two-stage:
    speakers, then utterances within each) or "utterance" (Bisani & Ney). Returns ``{"rate", "ci95",
    "replications", "level", "utterances", "speakers", "seed"}`` (fractions, not percent).
    """
    _check_level(level)
    design = _Design(list(counts), utt2spk)
    num, den = _arrays(counts, design.order, "bootstrap_rate")
    rng = np.random.default_rng(seed)
    reps = np.concatenate([_ratio(c @ num, c @ den) for c in design.draw(rng, replications, level)]) \
        if replications > 0 else np.zeros(0)
    return {"rate": float(_ratio(np.array(num.sum()), np.array(den.sum()))), "ci95": _interval(reps),
            "replications": replications, "level": level, "utterances": len(design.order),
            "speakers": len(design.speakers), "seed": seed}


def paired_bootstrap(counts_a: Counts, counts_b: Counts, utt2spk: Mapping[str, str],
                     replications: int = REPLICATIONS, seed: int = 0, level: str = "speaker") -> dict:
    """Paired difference ``rate(a) - rate(b)`` of two systems on the same utterances, 95% bootstrap interval.

    Both systems are resampled with the same draws. The utterances of ``counts_a`` and ``counts_b`` must be
    the same. Returns ``{"a", "b", "diff", "ci95", "excludes_zero", "replications", "level", "utterances",
    "speakers", "seed"}`` (fractions): ``excludes_zero`` is True when the whole interval lies on one side of 0.
    """
    _check_level(level)
    _check_same_utterances(counts_a, counts_b, "paired bootstrap: the systems are scored on different utterances")
    design = _Design(list(counts_a), utt2spk)
    num_a, den_a = _arrays(counts_a, design.order, "paired_bootstrap (first system)")
    num_b, den_b = _arrays(counts_b, design.order, "paired_bootstrap (second system)")
    rng = np.random.default_rng(seed)
    diffs = [_ratio(c @ num_a, c @ den_a) - _ratio(c @ num_b, c @ den_b)
             for c in design.draw(rng, replications, level)] if replications > 0 else []
    reps = np.concatenate(diffs) if diffs else np.zeros(0)
    a = float(_ratio(np.array(num_a.sum()), np.array(den_a.sum())))
    b = float(_ratio(np.array(num_b.sum()), np.array(den_b.sum())))
    ci = _interval(reps)
    return {"a": a, "b": b, "diff": a - b, "ci95": ci, "excludes_zero": bool(ci[0] > 0 or ci[1] < 0),
            "replications": replications, "level": level, "utterances": len(design.order),
            "speakers": len(design.speakers), "seed": seed}


def share_kept(student: Counts, reference: Counts, ensemble: Counts, utt2spk: Mapping[str, str],
               replications: int = REPLICATIONS, seed: int = 0, level: str = "speaker") -> dict:
    """Share of the ensemble's gain over a reference that the student keeps, with a 95% bootstrap interval.

    ``share = (rate(student) - rate(reference)) / (rate(ensemble) - rate(reference))`` (Hinton et al. 2015,
    Section 4: 86% of the frame-accuracy gain). The three systems are scored on the same utterances and
    resampled with the same draws, so the interval accounts for the speakers and utterances that make up the
    gain and the kept part alike. A replicate whose gain is zero has no share and is left out. Returns
    ``{"share", "ci95", "gain", "kept", "replications", "level", "utterances", "speakers", "seed"}``
    (fractions; ``share`` is None when the gain is zero).
    """
    _check_level(level)
    systems = (("student", student), ("reference", reference), ("ensemble", ensemble))
    for what, c in systems[1:]:
        _check_same_utterances(student, c, f"share_kept: the {what} is scored on other utterances than the "
                               "student", ("student", what))
        _same_denominators(student, c, f"frames (student vs {what})")
    design = _Design(list(student), utt2spk)
    arrays = [_arrays(c, design.order, f"share_kept ({what})") for what, c in systems]
    rates = [float(_ratio(np.array(num.sum()), np.array(den.sum()))) for num, den in arrays]
    gain, kept = rates[2] - rates[1], rates[0] - rates[1]
    rng = np.random.default_rng(seed)
    reps = []
    for c in (design.draw(rng, replications, level) if replications > 0 else []):
        s, r, e = (_ratio(c @ num, c @ den) for num, den in arrays)
        with np.errstate(invalid="ignore", divide="ignore"):
            reps.append(np.where(e != r, (s - r) / np.where(e != r, e - r, 1.0), np.nan))
    return {"share": None if gain == 0 else kept / gain, "ci95": _interval(np.concatenate(reps) if reps
                                                                          else np.zeros(0)),
            "gain": gain, "kept": kept, "replications": replications, "level": level,
            "utterances": len(design.order), "speakers": len(design.speakers), "seed": seed}


def speakers_to_exclude_zero(diff: float, ci95: Sequence[float], speakers: int) -> int | None:
    """About how many speakers of the same kind (each with as many utterances) a test set needs for the 95%
    interval of ``diff`` to exclude zero, if the difference stayed as measured.

    The speaker-level bootstrap draws speakers independently, so the spread of its replicates shrinks as
    ``1 / sqrt(speakers)``. The part of the interval between ``diff`` and zero (``ci95[1] - diff`` for a
    negative difference, ``diff - ci95[0]`` for a positive one) must shrink to ``|diff|``, so the answer is
    ``speakers * (that part / |diff|) ** 2``, rounded up. At that size a true difference of this size is
    detected about half the time; about twice as many speakers detect it 80% of the time ((1.96 + 0.84)^2 /
    1.96^2). The estimate inherits the uncertainty of ``diff`` and of the interval: a scale, not a promise.
    None when the interval already excludes zero, the difference is zero or the figures are not finite.
    """
    lo, hi = float(ci95[0]), float(ci95[1])
    if speakers < 1 or not all(np.isfinite([diff, lo, hi])) or diff == 0 or lo > 0 or hi < 0:
        return None
    toward_zero = hi - diff if diff < 0 else diff - lo
    return max(speakers + 1, int(np.ceil(speakers * (toward_zero / abs(diff)) ** 2 - 1e-9)))


def speaker_spread(counts_a: Counts, counts_b: Counts, utt2spk: Mapping[str, str]) -> dict:
    """How the paired difference ``rate(a) - rate(b)`` varies over speakers, split into what sampling explains.

    ``d_s`` is speaker s's own difference (``sum(num_a - num_b) / sum(den)`` over its utterances).
    ``per_speaker_variance`` is the variance of the ``d_s`` over speakers; ``sampling_variance`` the mean over
    speakers of the variance that drawing that speaker's utterances gives ``d_s`` (the ratio estimator's:
    ``n / (n - 1) * sum((x_u - d_s * den_u)^2) / sum(den)^2`` with ``x_u = num_a - num_b``); their difference,
    ``between_speakers``, is what the speakers themselves add (negative when the observed spread is below the
    sampling noise: none measurable). When it is near zero, more utterances per speaker narrow an interval as
    well as more speakers; when it dominates, only more speakers do. Fractions squared; speakers with one
    utterance or no denominator are left out of the sampling part. Returns ``{"per_speaker_variance",
    "sampling_variance", "between_speakers", "speakers"}``.
    """
    _check_same_utterances(counts_a, counts_b, "speaker_spread: the two systems are scored on different utterances")
    design = _Design(list(counts_a), utt2spk)
    num_a, den = _arrays(counts_a, design.order, "speaker_spread (first system)")
    num_b, _ = _arrays(counts_b, design.order, "speaker_spread (second system)")
    diffs, noise = [], []
    for off, n in zip(design.offsets, design.sizes):
        x, w = num_a[off:off + n] - num_b[off:off + n], den[off:off + n]
        if w.sum() <= 0:
            continue
        d = x.sum() / w.sum()
        diffs.append(d)
        if n > 1:
            noise.append(n / (n - 1) * float(((x - d * w) ** 2).sum()) / float(w.sum()) ** 2)
    if len(diffs) < 2:
        raise UserFacingError("speaker_spread: needs at least two speakers with scored utterances")
    observed = float(np.var(diffs, ddof=1))
    sampling = float(np.mean(noise)) if noise else float("nan")
    return {"per_speaker_variance": observed, "sampling_variance": sampling,
            "between_speakers": observed - sampling, "speakers": len(diffs)}


def per_speaker(counts: Counts, utt2spk: Mapping[str, str]) -> dict[str, dict]:
    """``{speaker: {"num", "den", "rate", "utterances"}}`` (rate = num / den, None when den is 0)."""
    design = _Design(list(counts), utt2spk)
    num, den = _arrays(counts, design.order, "per_speaker")
    out = {}
    for s, off, n in zip(design.speakers, design.offsets, design.sizes):
        a, b = float(num[off:off + n].sum()), float(den[off:off + n].sum())
        out[s] = {"num": a, "den": b, "rate": a / b if b > 0 else None, "utterances": int(n)}
    return out


# --- percent-level wrappers for WER and frame accuracy -------------------------------------------

def _percent(res: dict, keys: Sequence[str]) -> dict:
    out = dict(res)
    for k in keys:
        if k in out:
            out[k] = 100.0 * out[k]
    out["ci95"] = [100.0 * x for x in res["ci95"]]
    return out


def wer_interval(utt_errors: Counts, utt2spk: Mapping[str, str], replications: int = REPLICATIONS,
                 seed: int = 0, level: str = "speaker") -> dict:
    """WER (percent) of one system with its 95% interval: ``{"wer", "ci95", ...}`` from
    ``{utt: (errors, ref_words)}``. The interval never goes below 0 (errors are never negative)."""
    res = _percent(bootstrap_rate(utt_errors, utt2spk, replications, seed, level), ("rate",))
    res["wer"] = res.pop("rate")
    return res


def compare_wer(a: Counts, b: Counts, utt2spk: Mapping[str, str], replications: int = REPLICATIONS,
                seed: int = 0, level: str = "speaker") -> dict:
    """WER of ``a`` minus WER of ``b`` (percent points; negative: ``a`` is better) with its 95% interval.

    ``a``, ``b``: ``{utt: (errors, ref_words)}`` of the same utterances (see :func:`read_utt_errors`).
    Returns ``{"a", "b", "diff", "ci95", "excludes_zero", ...}``."""
    _same_denominators(a, b, "reference words")
    return _percent(paired_bootstrap(a, b, utt2spk, replications, seed, level), ("a", "b", "diff"))


def compare_frame_acc(a: Counts, b: Counts, utt2spk: Mapping[str, str], replications: int = REPLICATIONS,
                      seed: int = 0, level: str = "speaker") -> dict:
    """Frame accuracy of ``a`` minus that of ``b`` (percent points; positive: ``a`` is better), 95% interval.

    ``a``, ``b``: ``{utt: (correct_frames, frames)}`` of the same utterances (see
    :func:`asrdistill.nnet.evaluate.frame_scores_per_utt`)."""
    _same_denominators(a, b, "frames")
    return _percent(paired_bootstrap(a, b, utt2spk, replications, seed, level), ("a", "b", "diff"))


def per_speaker_percent(counts: Counts, utt2spk: Mapping[str, str]) -> dict[str, float | None]:
    """``{speaker: rate in percent}`` (WER from errors / words, frame accuracy from correct / frames)."""
    return {s: (None if r["rate"] is None else 100.0 * r["rate"]) for s, r in per_speaker(counts, utt2spk).items()}


def _same_denominators(a: Counts, b: Counts, what: str) -> None:
    for u in sorted(set(a) & set(b)):
        if float(a[u][1]) != float(b[u][1]):
            raise UserFacingError(f"utterance {u}: {a[u][1]:g} {what} for the first system but {b[u][1]:g} for "
                                  "the second: not scored against the same reference")


# --- readers ------------------------------------------------------------------------------------

def read_utt_errors(decode_dir: str | os.PathLike) -> dict[str, tuple[int, int]]:
    """``{utt: (errors, ref_words)}`` from a decode dir's ``per_utt`` (the ``utt #csid C S I D`` lines that
    :func:`asrdistill.decode.score.compute_wer` writes; errors = S + I + D, reference words = C + S + D)."""
    path = Path(decode_dir)
    if path.is_dir():
        path = path / "per_utt"
    if not path.is_file():
        raise UserFacingError(f"{path}: not found (score the decode dir with a reference first)")
    out: dict[str, tuple[int, int]] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if len(fields) < 2 or fields[1] != "#csid":
            continue
        if len(fields) != 6:
            raise UserFacingError(f"{path}:{lineno}: expected 'utt #csid C S I D', got {line!r}")
        try:
            c, s, i, d = (int(x) for x in fields[2:])
        except ValueError:
            raise UserFacingError(f"{path}:{lineno}: non-integer counts in {line!r}") from None
        if fields[0] in out:
            raise UserFacingError(f"{path}:{lineno}: utterance {fields[0]} appears twice")
        out[fields[0]] = (s + i + d, c + s + d)
    if not out:
        raise UserFacingError(f"{path}: no '#csid' lines")
    return out


def read_utt2spk(path: str | os.PathLike) -> dict[str, str]:
    """``{utt: speaker}`` from a Kaldi ``utt2spk`` file (or a data dir holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "utt2spk"
    if not path.is_file():
        raise UserFacingError(f"{path}: not found")
    out: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise UserFacingError(f"{path}:{lineno}: expected 'utt speaker', got {line!r}")
        if fields[0] in out:
            raise UserFacingError(f"{path}:{lineno}: utterance {fields[0]} appears twice")
        out[fields[0]] = fields[1]
    return out
