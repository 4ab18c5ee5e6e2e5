"""Speaker-level bootstrap (asrdistill.report.significance) on constructed data whose answer is known."""
from __future__ import annotations

import numpy as np
import pytest

from asrdistill.errors import UserFacingError
from asrdistill.report.significance import (bootstrap_rate, compare_frame_acc, compare_wer, paired_bootstrap,
                                            per_speaker, per_speaker_percent, read_utt2spk, read_utt_errors,
                                            speaker_spread, speakers_to_exclude_zero, wer_interval)


def corpus(num_spk=8, utts_per_spk=20, words=10, seed=0):
    rng = np.random.default_rng(seed)
    utt2spk, ref = {}, {}
    for s in range(num_spk):
        for u in range(utts_per_spk):
            utt = f"spk{s}-u{u:02d}"
            utt2spk[utt] = f"spk{s}"
            ref[utt] = int(rng.integers(words // 2, words + words // 2))
    return utt2spk, ref


def errors(ref, rate, rng):
    return {u: int(rng.binomial(n, rate)) for u, n in ref.items()}


def test_better_on_every_speaker_excludes_zero():
    utt2spk, ref = corpus()
    rng = np.random.default_rng(1)
    a = {u: (e, ref[u]) for u, e in errors(ref, 0.10, rng).items()}
    b = {u: (e, ref[u]) for u, e in errors(ref, 0.25, rng).items()}
    for s, r in per_speaker(a, utt2spk).items():   # the construction: a better on every speaker
        assert r["rate"] < per_speaker(b, utt2spk)[s]["rate"]
    res = compare_wer(a, b, utt2spk, replications=400)
    assert res["diff"] < 0 and res["excludes_zero"] and res["ci95"][1] < 0
    assert res["ci95"][0] <= res["diff"] <= res["ci95"][1]
    assert res["diff"] == pytest.approx(res["a"] - res["b"])
    assert res["speakers"] == 8 and res["utterances"] == 160


def test_identical_systems_contain_zero():
    utt2spk, ref = corpus()
    a = {u: (e, ref[u]) for u, e in errors(ref, 0.2, np.random.default_rng(2)).items()}
    res = compare_wer(a, dict(a), utt2spk, replications=200)
    assert res["diff"] == 0 and res["ci95"] == [0.0, 0.0] and not res["excludes_zero"]
    # the same error rate with independent errors: the interval straddles 0
    b = {u: (e, ref[u]) for u, e in errors(ref, 0.2, np.random.default_rng(3)).items()}
    res = compare_wer(a, b, utt2spk, replications=400)
    assert res["ci95"][0] < 0 < res["ci95"][1] and not res["excludes_zero"]


def test_speaker_dominated_difference_is_wider_than_utterance_bootstrap():
    """a is much better on two speakers and slightly worse on the others: the utterance-level bootstrap calls
    it significant, the speaker-level one (rightly) gives a far wider interval."""
    utt2spk, ref = corpus(num_spk=8, utts_per_spk=30)
    rng = np.random.default_rng(4)
    a, b = {}, {}
    for u, n in ref.items():
        good = utt2spk[u] in ("spk0", "spk1")
        a[u] = (int(rng.binomial(n, 0.05 if good else 0.22)), n)
        b[u] = (int(rng.binomial(n, 0.40 if good else 0.20)), n)
    spk = compare_wer(a, b, utt2spk, replications=500, level="speaker")
    utt = compare_wer(a, b, utt2spk, replications=500, level="utterance")
    assert spk["diff"] == utt["diff"] < 0
    width = lambda r: r["ci95"][1] - r["ci95"][0]  # noqa: E731
    assert width(spk) > 2 * width(utt)
    assert utt["excludes_zero"] and not spk["excludes_zero"]


def test_deterministic_and_seeded():
    utt2spk, ref = corpus(num_spk=4, utts_per_spk=5)
    a = {u: (e, ref[u]) for u, e in errors(ref, 0.3, np.random.default_rng(5)).items()}
    assert wer_interval(a, utt2spk, replications=100, seed=7) == wer_interval(a, utt2spk, replications=100, seed=7)
    assert wer_interval(a, utt2spk, replications=100, seed=7) != wer_interval(a, utt2spk, replications=100, seed=8)
    # the order in which the dict was built does not matter
    rev = dict(reversed(list(a.items())))
    assert wer_interval(rev, utt2spk, replications=100, seed=7) == wer_interval(a, utt2spk, replications=100, seed=7)


def test_wer_interval_never_below_zero():
    utt2spk, ref = corpus(num_spk=6, utts_per_spk=10)
    a = {u: (0, n) for u, n in ref.items()}
    a["spk3-u04"] = (1, ref["spk3-u04"])   # a single error in the whole corpus
    res = wer_interval(a, utt2spk, replications=500)
    assert res["ci95"][0] >= 0.0 and res["ci95"][0] == 0.0 < res["wer"] <= res["ci95"][1]


def test_single_rate_interval_matches_the_sampling_spread():
    """With independent utterances (no speaker effect) the 95% interval covers the known true rate and has
    about the binomial width."""
    utt2spk, ref = corpus(num_spk=10, utts_per_spk=40)
    a = {u: (e, ref[u]) for u, e in errors(ref, 0.3, np.random.default_rng(6)).items()}
    res = bootstrap_rate(a, utt2spk, replications=500)
    words = sum(ref.values())
    sd = np.sqrt(0.3 * 0.7 / words)
    assert res["ci95"][0] < 0.3 < res["ci95"][1]
    assert 2.0 * sd < res["ci95"][1] - res["ci95"][0] < 7.0 * sd


def test_frame_accuracy_and_per_speaker():
    utt2spk = {"s1-a": "s1", "s1-b": "s1", "s2-a": "s2"}
    a = {"s1-a": (50, 100), "s1-b": (30, 100), "s2-a": (90, 100)}
    b = {"s1-a": (40, 100), "s1-b": (20, 100), "s2-a": (80, 100)}
    assert per_speaker_percent(a, utt2spk) == {"s1": pytest.approx(40.0), "s2": pytest.approx(90.0)}
    assert per_speaker(a, utt2spk)["s1"] == {"num": 80.0, "den": 200.0, "rate": 0.4, "utterances": 2}
    res = compare_frame_acc(a, b, utt2spk, replications=200)
    assert res["a"] == pytest.approx(170 / 3) and res["diff"] == pytest.approx(10.0)
    assert res["excludes_zero"] and res["ci95"] == [pytest.approx(10.0), pytest.approx(10.0)]


def test_paired_rejects_mismatched_utterances_and_references():
    utt2spk = {"s1-a": "s1", "s1-b": "s1"}
    with pytest.raises(UserFacingError, match="s1-b only in the first"):
        paired_bootstrap({"s1-a": (1, 5), "s1-b": (1, 5)}, {"s1-a": (1, 5)}, utt2spk)
    with pytest.raises(UserFacingError, match="utterance s1-a: 5 reference words .* but 6"):
        compare_wer({"s1-a": (1, 5)}, {"s1-a": (1, 6)}, utt2spk)
    with pytest.raises(UserFacingError, match="no speaker for 1 utterances, e.g. s2-a"):
        bootstrap_rate({"s2-a": (1, 5)}, utt2spk)
    with pytest.raises(UserFacingError, match="negative"):
        bootstrap_rate({"s1-a": (-1, 5)}, utt2spk)


def test_readers(tmp_path):
    from asrdistill.decode.score import compute_wer

    refs = {"s1-a": "a b c d", "s1-b": "e f", "s2-a": "g h i"}
    hyps = {"s1-a": "a x c d y", "s1-b": "e f", "s2-a": "g"}
    compute_wer(refs, hyps, bootstrap=0, out_dir=tmp_path)
    assert read_utt_errors(tmp_path) == {"s1-a": (2, 4), "s1-b": (0, 2), "s2-a": (2, 3)}
    (tmp_path / "utt2spk").write_text("s1-a s1\ns1-b s1\ns2-a s2\n")
    assert read_utt2spk(tmp_path) == {"s1-a": "s1", "s1-b": "s1", "s2-a": "s2"}
    (tmp_path / "bad").write_text("u1 #csid 1 2 x 0\n")
    with pytest.raises(UserFacingError, match="bad:1: non-integer"):
        read_utt_errors(tmp_path / "bad")


def test_share_kept_exact_halfway_and_interval_around_a_noisy_share():
    from asrdistill.report.significance import share_kept

    utt2spk, ref = corpus(num_spk=8, utts_per_spk=20, words=40)
    rng = np.random.default_rng(7)
    frames = {u: 10 * n for u, n in ref.items()}
    reference = {u: (int(rng.binomial(f, 0.5)), f) for u, f in frames.items()}
    ensemble = {u: (c + 2 * (f // 20), f) for u, (c, f) in reference.items()}      # +10 points everywhere
    halfway = {u: (c + f // 20, f) for u, (c, f) in reference.items()}             # exactly half of that
    res = share_kept(halfway, reference, ensemble, utt2spk, replications=200)
    assert res["share"] == pytest.approx(0.5) and res["ci95"] == pytest.approx([0.5, 0.5])
    assert share_kept(ensemble, reference, ensemble, utt2spk, replications=50)["ci95"] == pytest.approx([1, 1])
    # a student that keeps a noisy ~60%: the interval holds the share and has width
    noisy = {u: (min(f, c + int(rng.binomial(2 * (f // 20), 0.6))), f) for u, (c, f) in reference.items()}
    res = share_kept(noisy, reference, ensemble, utt2spk, replications=400)
    assert 0.5 < res["share"] < 0.7 and res["ci95"][0] < res["share"] < res["ci95"][1]
    assert res["ci95"][1] - res["ci95"][0] > 0.01
    with pytest.raises(UserFacingError, match="other utterances"):
        share_kept(noisy, reference, {u: ensemble[u] for u in list(ensemble)[1:]}, utt2spk)


def _copies(a, b, utt2spk, k):
    """Both systems' counts on the same speakers k times over (new speaker and utterance ids): a test set k
    times as large whose speakers come from the same population as the original's."""
    ca, cb, spk = {}, {}, {}
    for i in range(k):
        for u in a:
            ca[f"c{i}-{u}"], cb[f"c{i}-{u}"], spk[f"c{i}-{u}"] = a[u], b[u], f"c{i}-{utt2spk[u]}"
    return ca, cb, spk


def test_speakers_to_exclude_zero_predicts_the_size_that_excludes_zero():
    """a is better on average but worse on some speakers: not significant with 6 speakers. At 1.5x the
    predicted size (the speakers repeated) the interval excludes zero; at half of it, it still holds zero."""
    utt2spk, ref = corpus(num_spk=6, utts_per_spk=20)
    rng = np.random.default_rng(7)
    speaker_rate = {"spk0": 0.10, "spk1": 0.24, "spk2": 0.14, "spk3": 0.22, "spk4": 0.12, "spk5": 0.20}
    a = {u: (int(rng.binomial(n, speaker_rate[utt2spk[u]])), n) for u, n in ref.items()}
    b = {u: (int(rng.binomial(n, 0.19)), n) for u, n in ref.items()}
    res = compare_wer(a, b, utt2spk, replications=2000)
    assert not res["excludes_zero"] and res["diff"] < 0
    need = speakers_to_exclude_zero(res["diff"], res["ci95"], res["speakers"])
    assert need is not None and need >= 24, need      # at least 4x the speakers, so that half of it is >= 2x
    big = compare_wer(*_copies(a, b, utt2spk, int(np.ceil(1.5 * need / 6))), replications=2000)
    assert big["excludes_zero"] and big["diff"] == pytest.approx(res["diff"])
    small = compare_wer(*_copies(a, b, utt2spk, int(0.5 * need / 6)), replications=2000)
    assert not small["excludes_zero"]


def test_speakers_to_exclude_zero_edge_cases():
    assert speakers_to_exclude_zero(-1.0, [-2.0, -0.1], 12) is None      # already excludes zero
    assert speakers_to_exclude_zero(0.0, [-1.0, 1.0], 12) is None        # nothing to detect
    assert speakers_to_exclude_zero(-1.0, [float("nan")] * 2, 12) is None
    assert speakers_to_exclude_zero(-1.0, [-2.0, 1.0], 12) == 48         # (2 / 1)^2 x 12
    assert speakers_to_exclude_zero(2.0, [-2.0, 3.0], 10) == 40          # the part toward zero counts: (4 / 2)^2
    assert speakers_to_exclude_zero(-1.0, [-2.0, 0.0], 12) == 13         # touching zero: one more speaker


def test_speaker_spread_separates_speakers_from_sampling_noise():
    """200 speakers x 20 utterances. Same rates for every speaker: the per-speaker differences spread only as
    sampling makes them (between ~ 0). Speaker effects of +-5 points: between ~ their variance, 0.05^2."""
    utt2spk, ref = corpus(num_spk=200, utts_per_spk=20, words=10)
    rng = np.random.default_rng(11)
    b = {u: (int(rng.binomial(n, 0.20)), n) for u, n in ref.items()}
    same = {u: (int(rng.binomial(n, 0.18)), n) for u, n in ref.items()}
    flat = speaker_spread(same, b, utt2spk)
    assert flat["speakers"] == 200 and flat["sampling_variance"] > 0
    assert abs(flat["between_speakers"]) < 0.25 * flat["sampling_variance"]
    effect = {f"spk{s}": (0.05 if s % 2 else -0.05) for s in range(200)}
    varied = {u: (int(rng.binomial(n, 0.20 + effect[utt2spk[u]])), n) for u, n in ref.items()}
    spread = speaker_spread(varied, b, utt2spk)
    assert spread["between_speakers"] == pytest.approx(0.05 ** 2, rel=0.3)
    assert spread["per_speaker_variance"] == pytest.approx(spread["sampling_variance"] + spread["between_speakers"])
    with pytest.raises(UserFacingError, match="different utterances"):
        speaker_spread(dict(list(b.items())[1:]), b, utt2spk)
