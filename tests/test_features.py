"""Fbank (Kaldi parity), CMVN, the frame store and compute_features / compute-feats end to end."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from asrdistill.data.kaldi_dir import write_data_dir
from asrdistill.errors import UserFacingError
from asrdistill.features.cmvn import apply_cmvn, cmvn_stats
from asrdistill.features.extract import compute_features
from asrdistill.features.fbank import FbankConfig, compute_fbank
from asrdistill.features.store import FrameStore
from testsignal import speech_like


def knf_fbank(samples: np.ndarray, rate: int, num_bins: int = 40) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0  # knf's default is 3e-5 (STACK.md trap 6)
    opts.frame_opts.samp_freq = rate
    opts.mel_opts.num_bins = num_bins
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(rate, samples.tolist())
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


# -- fbank ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [16000, 8000])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fbank_matches_kaldi_native_fbank(rate, seed):
    x = speech_like(3.0, rate, seed=seed)
    assert np.any(x == 0) and np.abs(x).max() > 10000  # has digital silence and int16-scale peaks
    ours = compute_fbank(x, rate)
    ref = knf_fbank(x, rate)
    assert ours.shape == ref.shape == (298, 40)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() <= 1e-3


def test_fbank_differs_between_rates_interpretation():
    # the same samples read as 8 kHz audio put the mel bins elsewhere: the rate is really used
    x = speech_like(1.0, 16000, seed=3)
    assert np.abs(compute_fbank(x, 16000) - compute_fbank(x, 8000)[:98]).max() > 1.0


def test_digital_silence_hits_kaldis_log_floor():
    feats = compute_fbank(np.zeros(8000, np.float32), 16000)
    np.testing.assert_allclose(feats, np.log(np.finfo(np.float32).eps), rtol=1e-6)


def test_num_frames_and_short_audio():
    cfg = FbankConfig()
    for n in (0, 399, 400, 401, 560, 16000):
        feats = compute_fbank(np.ones(n, np.float32) * 100, 16000, cfg)
        assert feats.shape == (cfg.num_frames(n, 16000), 40)
    assert cfg.num_frames(399, 16000) == 0 and cfg.num_frames(560, 16000) == 2


def test_config_json_round_trip_and_rate_binding():
    cfg = FbankConfig(num_mel_bins=23, dither=0.5)
    assert FbankConfig.from_json(cfg.to_json()) == cfg
    assert cfg.with_sample_rate(8000).sample_rate == 8000
    with pytest.raises(UserFacingError, match="16000"):
        FbankConfig(sample_rate=16000).with_sample_rate(8000)
    with pytest.raises(UserFacingError, match="bogus"):
        FbankConfig.from_dict({"bogus": 1})


# -- CMVN -------------------------------------------------------------------------------------------

def test_cmvn_stats_kaldi_layout_and_additivity():
    rng = np.random.default_rng(0)
    a, b = rng.normal(3, 2, (50, 4)), rng.normal(-1, 1, (30, 4))
    s = cmvn_stats(a)
    assert s.shape == (2, 5) and s.dtype == np.float64
    np.testing.assert_allclose(s[0, :4], a.sum(0))
    np.testing.assert_allclose(s[1, :4], (a * a).sum(0))
    assert s[0, 4] == 50 and s[1, 4] == 0
    np.testing.assert_allclose(cmvn_stats(a) + cmvn_stats(b), cmvn_stats(np.vstack([a, b])))


def test_apply_cmvn_means_and_variances():
    rng = np.random.default_rng(1)
    x = rng.normal(5, 3, (200, 6)).astype(np.float32)
    s = cmvn_stats(x)
    m = apply_cmvn(x, s)
    np.testing.assert_allclose(m.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(m.std(0), x.std(0), rtol=1e-4)  # variances untouched
    v = apply_cmvn(x, s, norm_vars=True)
    np.testing.assert_allclose(v.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(v.std(0), 1, rtol=1e-4)
    assert m.dtype == v.dtype == np.float32
    with pytest.raises(ValueError):
        apply_cmvn(x, s[:, :4])


# -- compute_features end to end --------------------------------------------------------------------

SPEAKERS = {"f01": [1.2, 0.7, 0.02], "m02": [0.9, 1.5]}  # seconds; 0.02 s is shorter than one frame


def make_data_dir(root: Path, rate: int = 16000, odd_rate: dict[str, int] | None = None) -> Path:
    (root / "wav").mkdir(parents=True)
    wav, text, utt2spk = {}, {}, {}
    for k, (spk, durs) in enumerate(SPEAKERS.items()):
        for i, dur in enumerate(durs):
            utt = f"{spk}-{i:03d}"
            r = (odd_rate or {}).get(utt, rate)
            path = root / "wav" / f"{utt}.wav"
            sf.write(path, speech_like(dur, r, seed=10 * k + i).astype(np.int16), r, subtype="PCM_16")
            wav[utt], text[utt], utt2spk[utt] = str(path), "hello world", spk
    return write_data_dir(root / "data", wav, text, utt2spk)


@pytest.fixture(scope="module")
def feats16(tmp_path_factory):
    root = tmp_path_factory.mktemp("c16")
    data = make_data_dir(root)
    feat_dir = root / "fbank"
    summary = compute_features(data, feat_dir, nj=2, progress=False)
    return data, feat_dir, summary


def test_compute_features_outputs(feats16):
    data, feat_dir, summary = feats16
    assert summary.utterances == 4 and summary.skipped == ["f01-002"] and summary.sample_rate == 16000
    assert summary.frames == 118 + 68 + 88 + 148
    assert abs(summary.seconds - (1.2 + 0.7 + 0.02 + 0.9 + 1.5)) < 1e-3
    names = {p.name for p in feat_dir.iterdir()}
    assert names == {".done", "feats.ark", "feats.scp", "cmvn.ark", "cmvn.scp", "utt2num_frames", "fbank.json",
                     "frames.f32", "frames.json"}
    assert json.loads((feat_dir / "fbank.json").read_text())["sample_rate"] == 16000

    raw = dict(kaldiio.load_scp(str(feat_dir / "feats.scp")))
    assert sorted(raw) == ["f01-000", "f01-001", "m02-000", "m02-001"]
    for utt, feats in raw.items():
        x, rate = sf.read(data.parent / "wav" / f"{utt}.wav", dtype="int16")
        np.testing.assert_array_equal(feats, compute_fbank(x.astype(np.float32), rate))

    cmvn = dict(kaldiio.load_scp(str(feat_dir / "cmvn.scp")))
    assert sorted(cmvn) == ["f01", "m02"]
    for spk in cmvn:
        assert cmvn[spk].shape == (2, 41) and cmvn[spk].dtype == np.float64
        mine = sum(cmvn_stats(raw[u]) for u in raw if u.startswith(spk))
        np.testing.assert_allclose(cmvn[spk], mine, rtol=1e-12)

    store = FrameStore(feat_dir)
    assert store.utts == sorted(raw) and len(store) == 4 and store.dim == 40
    assert store.num_frames == summary.frames == store.frames.shape[0]
    assert store.offsets.dtype == np.int64 and list(np.diff(store.offsets)) == [len(raw[u]) for u in store.utts]
    for utt in store.utts:
        np.testing.assert_allclose(store.get(utt), apply_cmvn(raw[utt], cmvn[utt[:3]]), atol=1e-5)
    assert store.index("m02-000") == 2
    assert np.array_equal(store.to_tensor().numpy(), np.asarray(store.frames))
    with pytest.raises(KeyError, match="f01-002"):
        store.get("f01-002")
    # per speaker, the CMVN-applied frames have zero mean
    f01 = np.vstack([store.get(u) for u in store.utts if u.startswith("f01")])
    np.testing.assert_allclose(f01.mean(0), 0, atol=1e-4)


def test_compute_feats_step_skips_finished_work_and_redoes_changed_options(feats16, tmp_path, caplog):
    from asrdistill.cli import main

    data, _, first = feats16
    out = tmp_path / "fb"
    assert main(["compute-feats", str(data), str(out), "--nj", "1", "--no-progress"]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with caplog.at_level(logging.INFO):
        assert main(["compute-feats", str(data), str(out), "--nj", "2", "--no-progress"]) == 0  # nj: same work
    assert "SKIPPING" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["compute-feats", str(data), str(out), "--nj", "1", "--norm-vars", "--no-progress"]) == 0
    assert "redoing" in caplog.text and "norm_vars: false -> true" in caplog.text
    assert FrameStore(out).info["norm_vars"] is True


def test_one_job_equals_two_jobs_and_norm_vars(feats16, tmp_path):
    data, feat_dir, _ = feats16
    compute_features(data, tmp_path / "one", nj=1, progress=False)
    assert (tmp_path / "one" / "frames.f32").read_bytes() == (feat_dir / "frames.f32").read_bytes()
    assert (tmp_path / "one" / "frames.json").read_text() == (feat_dir / "frames.json").read_text()
    compute_features(data, tmp_path / "nv", nj=1, norm_vars=True, progress=False)
    nv = FrameStore(tmp_path / "nv")
    assert nv.info["norm_vars"] is True
    f01 = np.vstack([nv.get(u) for u in nv.utts if u.startswith("f01")])
    np.testing.assert_allclose(f01.std(0), 1, rtol=1e-3)


def test_8khz_corpus(tmp_path):
    data = make_data_dir(tmp_path, rate=8000)
    summary = compute_features(data, tmp_path / "fbank", nj=1, progress=False)
    assert summary.sample_rate == 8000 and summary.frames == 118 + 68 + 88 + 148
    assert FbankConfig.from_json((tmp_path / "fbank" / "fbank.json").read_text()).sample_rate == 8000
    raw = dict(kaldiio.load_scp(str(tmp_path / "fbank" / "feats.scp")))
    x, _ = sf.read(tmp_path / "wav" / "m02-001.wav", dtype="int16")
    assert np.abs(raw["m02-001"] - knf_fbank(x.astype(np.float32), 8000)).max() <= 1e-3


@pytest.mark.parametrize("nj", [1, 2])  # within one chunk / across the chunks of two workers
def test_mixed_sample_rates_are_an_error(tmp_path, nj):
    data = make_data_dir(tmp_path, odd_rate={"m02-001": 8000})
    with pytest.raises(UserFacingError) as err:
        compute_features(data, tmp_path / "fbank", nj=nj, progress=False)
    msg = str(err.value)
    assert "m02-001" in msg and "8000" in msg and "16000" in msg and "f01-000" in msg
    assert not (tmp_path / "fbank").exists()  # nothing half-written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_fixed_rate_mismatch_is_an_error(feats16, tmp_path):
    data, _, _ = feats16
    with pytest.raises(UserFacingError, match="8000"):
        compute_features(data, tmp_path / "fbank", nj=1, config=FbankConfig(sample_rate=8000), progress=False)


def test_cli_compute_feats(feats16, tmp_path, capsys):
    from asrdistill.cli import main

    data, feat_dir, _ = feats16
    assert main(["compute-feats", str(data), str(tmp_path / "fb"), "--nj", "1", "--no-progress"]) == 0
    assert "4 utterances" in capsys.readouterr().out
    assert (tmp_path / "fb" / "frames.f32").read_bytes() == (feat_dir / "frames.f32").read_bytes()
    assert main(["compute-feats", str(tmp_path / "missing"), str(tmp_path / "fb2"), "--nj", "1"]) == 1
    assert "missing" in capsys.readouterr().err


def test_unreadable_audio_in_a_worker_is_a_clear_error(tmp_path):
    data = make_data_dir(tmp_path)
    (tmp_path / "wav" / "m02-000.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(UserFacingError, match="m02-000"):
        compute_features(data, tmp_path / "fbank", nj=2, progress=False)
    assert not (tmp_path / "fbank").exists()
