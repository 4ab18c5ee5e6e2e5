"""The comparisons of the results report (asrdistill.report.results) on constructed counts: what a difference
whose interval holds zero reports about the speakers it would take, and how RESULTS.md says it."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from asrdistill.report.results import _compare, format_results


def _counts(num_spk=12, utts=20, seed=0):
    """a better than b by 1 point of WER on average, by +-4 points from speaker to speaker."""
    rng = np.random.default_rng(seed)
    utt2spk, a, b = {}, {}, {}
    for s in range(num_spk):
        effect = -0.01 + (0.04 if s % 2 else -0.04)
        for u in range(utts):
            utt = f"s{s:02d}-{u:02d}"
            utt2spk[utt], n = f"s{s:02d}", int(rng.integers(5, 15))
            a[utt] = (int(rng.binomial(n, 0.2 + effect)), n)
            b[utt] = (int(rng.binomial(n, 0.2)), n)
    return utt2spk, a, b


def test_an_uncertain_difference_says_how_many_speakers_and_why():
    utt2spk, a, b = _counts()
    ctx = SimpleNamespace(utt2spk={"test": utt2spk})
    c = _compare(ctx, "ensemble", "baseline", "wer", "test", a, b)
    assert not c["excludes_zero"] and c["speakers_to_exclude_zero"] > 12
    spread = c["speaker_spread"]   # points squared; the speakers' own effects (4 points) dominate sampling
    assert spread["speakers"] == 12 and spread["between_speakers"] > spread["sampling_variance"] > 0
    res = {"command": "run.sh", "num_pdfs": 10, "table1": [], "comparisons": [c]}
    text = format_results(res)
    assert (f"ensemble - baseline, test WER {c['diff']:+.2f}: ~{c['speakers_to_exclude_zero']} (now 12; "
            f"per-speaker variance {spread['per_speaker_variance']:.1f}, sampling "
            f"{spread['sampling_variance']:.1f})") in text


def test_a_clear_difference_reports_no_size():
    utt2spk, a, b = _counts()
    better = {u: (0, n) for u, (_, n) in a.items()}
    c = _compare(SimpleNamespace(utt2spk={"test": utt2spk}), "ensemble", "baseline", "wer", "test", better, b)
    assert c["excludes_zero"] and c["speakers_to_exclude_zero"] is None and "speaker_spread" not in c
    assert "Differences whose interval holds zero" not in format_results(
        {"command": "run.sh", "num_pdfs": 10, "table1": [], "comparisons": [c]})
