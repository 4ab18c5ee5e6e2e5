"""The teacher cache: encodings, every temperature from one pass, what it was built from, commands; the student's
priors and seed."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asrdistill.distill.cache import (TOLERANCE_KL, TOLERANCE_TV, check_cache, data_fingerprints,
                                      decode_logits, encode_logits, read_cache_info)
from asrdistill.distill.config import DistillConfig, TeacherCacheConfig
from asrdistill.distill.priors import alignment_pdf_counts, mean_posterior
from asrdistill.distill.teacher import CachedTeacher, OnTheFlyTeacher, build_teacher_cache, make_teacher_cache
from asrdistill.distill.train import check_student_seed, default_student_seed, train_student
from asrdistill.errors import UserFacingError
from asrdistill.nnet.data import load_frame_dataset
from asrdistill.nnet.ensemble import load_ensemble
from asrdistill.nnet.model import load_model, log_prior_from_counts
from asrdistill.nnet.train import train_model

from nnet_common import NUM_PDFS, SMALL, quiet  # noqa: E402  (tests/ is on sys.path)
from toy_frames import write_toy_dirs  # noqa: E402


# -- encodings -----------------------------------------------------------------------------------------------
def test_u8_sqrt_encoding_error_bound_and_exact_top():
    torch.manual_seed(0)
    z = torch.randn(3, 50, 40) * 6                     # [M, B, C]
    codes, ranges = encode_logits(z, "u8-sqrt")
    assert codes.dtype == torch.uint8 and codes.shape == (50, 3, 40) and ranges.shape == (50, 3)
    back = decode_logits(codes, ranges, "u8-sqrt")     # [M, B, C], top logit at 0
    d = z.amax(-1, keepdim=True) - z
    db = -back
    assert torch.all(db[d == 0] == 0)                  # each member's top pdf is exact
    r = ranges.t().unsqueeze(-1)                       # [M, B, 1]
    # the quantisation is uniform in sqrt(d / range): at most half a step of 1/255 there
    err = (torch.sqrt(db / r) - torch.sqrt(d / r)).abs()
    assert err.max() <= 0.5 / 255 + 1e-6
    # so the error of d is finest near the top: below 0.5 nats 10x smaller than at the bottom
    near, far = (db - d).abs()[d < 0.5], (db - d).abs()[d > 0.8 * r.expand_as(d)]
    assert near.max() * 10 < far.max()


def test_f16_encoding_relative_error():
    torch.manual_seed(1)
    z = torch.randn(2, 30, 25) * 5
    codes, ranges = encode_logits(z, "f16")
    assert ranges is None and codes.dtype == torch.float16
    d = z.amax(-1, keepdim=True) - z
    assert torch.allclose(-decode_logits(codes, None, "f16"), d, rtol=2 ** -11, atol=1e-7)
    with pytest.raises(UserFacingError):
        encode_logits(z, "u4")


# -- a toy ensemble ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("ctoy")
    write_toy_dirs(root / "ftr", root / "atr", num_utts=30, num_pdfs=NUM_PDFS, mean_frames=50, seed=0)
    write_toy_dirs(root / "fdv", root / "adv", num_utts=8, num_pdfs=NUM_PDFS, mean_frames=50, seed=1)
    write_toy_dirs(root / "fot", root / "aot", num_utts=30, num_pdfs=NUM_PDFS, mean_frames=50, seed=2)
    train = load_frame_dataset(root / "ftr", root / "atr")
    dev = load_frame_dataset(root / "fdv", root / "adv")
    teachers = [str(train_model(SMALL, train, dev, root / f"t{s}", quiet(max_epochs=2, seed=s)).model_path)
                for s in (0, 1, 2)]
    cache = root / "cache"
    make_teacher_cache(teachers[:2], root / "ftr", root / "atr", cache, TeacherCacheConfig(check_frames=0),
                       device="cpu", progress=False)
    return root, train, dev, teachers, cache


def test_one_cache_serves_every_temperature(toy):
    root, train, dev, teachers, cache = toy
    info = read_cache_info(cache)
    assert info["num_members"] == 2 and info["num_frames"] == len(train) and info["encoding"] == "u8-sqrt"
    assert [m["path"] for m in info["members"]] == teachers[:2] and set(info["data"]) == {"feats", "ali"}
    ens = load_ensemble(teachers[:2])
    exact = OnTheFlyTeacher(ens)
    rows = torch.arange(0, len(train), 3)
    x = train.splicer(SMALL.left, SMALL.right)(train.frames, rows)
    for method in ("arithmetic", "geometric"):
        ct = CachedTeacher(cache, train, teachers[:2], method=method)
        exact.method = method
        for T in (1.0, 2.0, 5.0, 10.0):
            p, q = exact.soft_targets(x, rows, T), ct.soft_targets(None, rows, T)
            assert torch.allclose(q.sum(-1), torch.ones(len(rows)), atol=1e-5)
            tv = 0.5 * (p - q).abs().sum(-1).mean().item()
            kl = (p * (p.clamp_min(1e-30).log() - q.clamp_min(1e-30).log())).sum(-1).mean().item()
            assert tv < TOLERANCE_TV and kl < TOLERANCE_KL, (method, T, tv, kl)
    zm = CachedTeacher(cache, train).zero_mean_logits(None, rows)
    ze = exact.zero_mean_logits(x, rows)
    assert ((zm - ze).norm() / ze.norm()).item() < 0.02


def test_check_measures_and_fails_a_bad_cache(toy, tmp_path):
    root, train, dev, teachers, cache = toy
    ens = load_ensemble(teachers[:2])
    good = check_cache(CachedTeacher(cache, train), OnTheFlyTeacher(ens), train, (1.0, 10.0), num_frames=500)
    assert good["frames"] == 500 and good["within_tolerance"]
    assert set(good["temperature"]) == {"1", "10"} and good["temperature"]["1"]["geometric"]["tv_mean"] < TOLERANCE_TV
    # a cache whose codes were damaged (every pdf at the top) is reported beyond tolerance
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(cache, bad)
    codes = np.load(bad / "codes.npy", mmap_mode="r+")
    codes[:] = 0
    codes.flush()
    del codes
    rep = check_cache(CachedTeacher(bad, train), OnTheFlyTeacher(ens), train, (1.0,), num_frames=200)
    assert not rep["within_tolerance"] and rep["temperature"]["1"]["arithmetic"]["tv_mean"] > 0.1


def test_cache_refuses_other_members_and_other_data(toy, tmp_path):
    root, train, dev, teachers, cache = toy
    with pytest.raises(UserFacingError, match="not the model the cache was built from"):
        CachedTeacher(cache, train, [teachers[0], teachers[2]])
    with pytest.raises(UserFacingError, match="2 teacher models"):
        CachedTeacher(cache, train, teachers)
    other = load_frame_dataset(root / "fot", root / "aot")
    with pytest.raises(UserFacingError, match="other training data"):
        CachedTeacher(cache, other, teachers[:2])
    with pytest.raises(UserFacingError, match="rebuild the cache"):
        CachedTeacher(cache, train, teachers[:2], fingerprints=data_fingerprints(root / "fot", root / "atr"))
    CachedTeacher(cache, train, teachers[:2], fingerprints=data_fingerprints(root / "ftr", root / "atr"))


def test_student_temperature_is_precomputed_and_matches_per_batch(toy, monkeypatch):
    root, train, dev, teachers, cache = toy
    sub = train.subset(0.3, seed=4)
    rows = torch.randperm(len(sub), generator=torch.Generator().manual_seed(0))[:97]
    per_batch = CachedTeacher(cache, sub).to("cpu")
    fixed = CachedTeacher(cache, sub, temperature=5.0).to("cpu")
    assert fixed._targets is not None and fixed._targets.shape == (len(sub), NUM_PDFS)
    assert fixed.reader._dev_codes is None                       # the codes stay mapped: p_T replaces them
    assert torch.allclose(fixed.soft_targets(None, rows, 5.0), per_batch.soft_targets(None, rows, 5.0),
                          rtol=1e-6, atol=1e-9)
    # another temperature is decoded per batch, as without the precomputation
    assert torch.equal(fixed.soft_targets(None, rows, 2.0), per_batch.soft_targets(None, rows, 2.0))
    # without the memory for it, the teacher decodes per batch and gives the same targets
    monkeypatch.setattr("asrdistill.distill.teacher.available_memory", lambda: 0)
    short = CachedTeacher(cache, sub, temperature=5.0).to("cpu")
    assert short._targets is None
    assert torch.equal(short.soft_targets(None, rows, 5.0), per_batch.soft_targets(None, rows, 5.0))


def test_subset_reads_the_full_cache(toy):
    root, train, dev, teachers, cache = toy
    sub = train.subset(0.3, seed=4)
    full = CachedTeacher(cache, train)
    part = CachedTeacher(cache, sub)
    # row i of the subset is the frame at the same position of the same utterance in the full set
    utt = sub.utts[1]
    j, i = train.utts.index(utt), 1
    full_rows = torch.arange(int(train.offsets[j]), int(train.offsets[j + 1]))
    sub_rows = torch.arange(int(sub.offsets[i]), int(sub.offsets[i + 1]))
    assert torch.equal(part.soft_targets(None, sub_rows, 2.0), full.soft_targets(None, full_rows, 2.0))


def test_failed_build_leaves_nothing(toy, tmp_path, monkeypatch):
    root, train, dev, teachers, cache = toy
    import asrdistill.distill.teacher as teacher_mod

    def boom(*a, **k):
        raise RuntimeError("killed")
    monkeypatch.setattr(teacher_mod, "fill_rows", boom)
    with pytest.raises(RuntimeError):
        build_teacher_cache(load_ensemble(teachers[:2]), train, tmp_path / "c", teachers[:2])
    assert not (tmp_path / "c").exists() and not list(tmp_path.iterdir())


def test_row_ranges_filled_separately_give_the_same_cache(toy, tmp_path):
    """What a distributed build does: preallocate once, each rank fills its own rows, one finishes."""
    from asrdistill.distill.cache import create_cache_files, fill_rows, finish_cache, open_cache_files

    root, train, dev, teachers, cache = toy
    ens = load_ensemble(teachers[:2])
    tmp = tmp_path / "c"
    create_cache_files(tmp, len(train), 2, NUM_PDFS)
    half = len(train) // 2
    for start, stop in ((half, len(train)), (0, half)):
        files = open_cache_files(tmp)
        fill_rows(files, OnTheFlyTeacher(ens), train, start, stop, batch_size=100, progress=False)
        del files
    finish_cache(open_cache_files(tmp), json.loads((cache / "cache.json").read_text()), train.utts,
                 train.offsets.numpy())
    for name in ("codes.npy", "ranges.npy", "utts.txt", "cache.json"):
        assert (tmp / name).read_bytes() == (cache / name).read_bytes(), name


# -- priors and seed -------------------------------------------------------------------------------------------
def test_student_seed_differs_from_every_member(toy):
    root, train, dev, teachers, cache = toy
    assert default_student_seed(teachers) == 3                   # members have seeds 0, 1, 2
    with pytest.raises(UserFacingError, match="seed of teacher"):
        check_student_seed(1, teachers)
    check_student_seed(3, teachers)


def test_priors_of_a_subset_student(toy, tmp_path):
    root, train, dev, teachers, cache = toy
    sub = train.subset(0.2, seed=0)
    cfg = quiet(max_epochs=1, seed=7)
    full_counts = alignment_pdf_counts(root / "atr")
    assert np.array_equal(full_counts, train.pdf_counts()) and not np.array_equal(full_counts, sub.pdf_counts() * 5)
    res = train_student(teachers[:2], sub, dev, tmp_path / "c", cfg, DistillConfig(teacher_mode="cache"),
                        cache_dir=cache, prior_ali=root / "atr")
    prior = load_model(res.model_path).log_prior.numpy()
    assert np.allclose(prior, log_prior_from_counts(full_counts), atol=1e-6)
    assert not np.allclose(prior, log_prior_from_counts(sub.pdf_counts()), atol=1e-2)
    assert json.loads((tmp_path / "c" / "priors.json").read_text())["method"] == "counts"
    res = train_student(teachers[:2], sub, dev, tmp_path / "p", cfg, DistillConfig(priors="posterior"),
                        prior_data=train)
    model = load_model(res.model_path)
    want = mean_posterior(model, train)
    assert np.allclose(np.exp(model.log_prior.numpy()), want / want.sum(), rtol=1e-4, atol=1e-6)
    d = json.loads((tmp_path / "p" / "priors.json").read_text())
    assert d["method"] == "posterior" and d["frames"] == len(train)


def test_logit_matching_from_the_cache(toy, tmp_path):
    root, train, dev, teachers, cache = toy
    cfg = quiet(max_epochs=2, seed=9, learning_rate=0.3)  # the (1/C)-scaled squared error needs a larger lr
    runs = {mode: train_student(teachers[:2], train, dev, tmp_path / mode, cfg,
                                DistillConfig(loss="logits", hard_weight=0.0, teacher_mode=mode), cache_dir=cache)
            for mode in ("onthefly", "cache")}
    h0, h1 = runs["onthefly"].history, runs["cache"].history
    assert h1[-1]["dev_acc"] > 2 * h1[0]["dev_acc"] + 0.05, h1                  # it learns
    assert h1[-1]["train_loss"] == pytest.approx(h0[-1]["train_loss"], rel=0.02)  # as from the exact teacher
    assert abs(h1[-1]["dev_acc"] - h0[-1]["dev_acc"]) < 0.03


# -- commands --------------------------------------------------------------------------------------------------
def test_cache_commands(toy, tmp_path, capsys):
    root, train, dev, teachers, cache = toy
    from asrdistill.cli import main

    data = ["--feats", str(root / "ftr"), "--ali", str(root / "atr")]
    build = ["build-teacher-cache", "--teacher", teachers[0], "--teacher", teachers[1], *data,
             "--out", str(tmp_path / "cache"), "--check-frames", "300", "--device", "cpu", "--threads", "1"]
    assert main(build) == 0 and "built" in capsys.readouterr().out
    check = json.loads((tmp_path / "cache" / "check.json").read_text())
    assert check["within_tolerance"] and check["frames"] == 300 and set(check["temperature"]) == {"1", "2", "5", "10"}
    assert main(build) == 0 and "already built" in capsys.readouterr().out
    assert main(["check-teacher-cache", "--cache-dir", str(tmp_path / "cache"), "--frames", "200",
                 "--temperatures", "2,5", "--device", "cpu", "--out", str(tmp_path / "c.json")]) == 0
    assert set(json.loads((tmp_path / "c.json").read_text())["temperature"]) == {"2", "5"}
    train_opts = [*data, "--dev-feats", str(root / "fdv"), "--dev-ali", str(root / "adv"), "--max-epochs", "1",
                  "--threads", "1", "--device", "cpu", "--no-tensorboard", "--teacher-mode", "cache",
                  "--cache-dir", str(tmp_path / "cache")]
    for T in ("1", "10"):
        out = tmp_path / f"s{T}"
        assert main(["distill", "--teacher", teachers[0], "--teacher", teachers[1], "-T", T, *train_opts,
                     "--out", str(out)]) == 0
        assert json.loads((out / "distill.json").read_text())["seed"] == 2       # members 0 and 1
    capsys.readouterr()
    # another set of members than the cache's: refused, naming the model
    rc = main(["distill", "--teacher", teachers[0], "--teacher", teachers[2], *train_opts,
               "--out", str(tmp_path / "bad")])
    assert rc == 1 and "not the model the cache was built from" in capsys.readouterr().err
    rc = main(["distill", "--teacher", teachers[0], "--teacher", teachers[1], *train_opts, "--seed", "1",
               "--out", str(tmp_path / "bad2")])
    assert rc == 1 and "seed of teacher" in capsys.readouterr().err
