"""Distillation: loss gradients (paper Sec. 2.1), soft-target definition, student training (the teacher cache
is tested in test_teacher_cache.py)."""
from __future__ import annotations

import json

import pytest
import torch

from asrdistill.distill.loss import (distillation_loss, ensemble_soft_targets, logit_matching_loss,
                                     soft_cross_entropy, zero_mean_teacher_logits)
from asrdistill.distill.train import DistillConfig, train_student
from asrdistill.errors import UserFacingError
from asrdistill.nnet.data import load_frame_dataset
from asrdistill.nnet.ensemble import Ensemble, load_ensemble
from asrdistill.nnet.evaluate import evaluate_frames
from asrdistill.nnet.model import build_model
from toy_frames import write_toy_dirs
from asrdistill.nnet.train import train_model

from nnet_common import NUM_PDFS, SMALL, quiet  # noqa: E402  (tests/ is on sys.path)


def _grad(loss_fn, z):
    z = z.clone().requires_grad_(True)
    loss_fn(z).backward()
    return z.grad


# -- loss math ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1.0, 2.0, 5.0, 10.0])
def test_soft_loss_gradient_is_q_minus_p_over_T(T):
    torch.manual_seed(0)
    B, C = 6, 9
    z = torch.randn(B, C, dtype=torch.float64) * 2
    p = torch.softmax(torch.randn(B, C, dtype=torch.float64), -1)
    q = torch.softmax(z / T, -1)
    g = _grad(lambda z_: soft_cross_entropy(z_, p, T), z)
    assert torch.allclose(g, (q - p) / T / B, atol=1e-12)
    # with the T^2 factor of the distillation loss (hard weight 0): T (q - p)
    g2 = _grad(lambda z_: distillation_loss(z_, None, p, T, soft_weight=1.0, hard_weight=0.0), z)
    assert torch.allclose(g2, T * (q - p) / B, atol=1e-6)
    # the hard term adds CE(y, q_1)'s gradient (softmax(z) - onehot) with weight 0.5
    y = torch.randint(0, C, (B,))
    g3 = _grad(lambda z_: distillation_loss(z_, y, p, T, 1.0, 0.5), z)
    hard = (torch.softmax(z, -1) - torch.nn.functional.one_hot(y, C)) / B
    assert torch.allclose(g3, g2 + 0.5 * hard, atol=1e-6)


def test_high_temperature_approaches_logit_matching():
    """Paper Sec. 2.1: with zero-mean logits, dC/dz ~ (1/(N T^2))(z - v) for large T."""
    torch.manual_seed(1)
    B, C = 4, 12
    z = torch.randn(B, C, dtype=torch.float64)
    v = torch.randn(B, C, dtype=torch.float64)
    z, v = z - z.mean(-1, keepdim=True), v - v.mean(-1, keepdim=True)
    lm = _grad(lambda z_: logit_matching_loss(z_, v), z)
    assert torch.allclose(lm, (z - v) / C / B, atol=1e-12)  # the logit-matching gradient exactly
    errors = []
    for T in (2.0, 10.0, 100.0):
        p = torch.softmax(v / T, -1)
        g = _grad(lambda z_: T ** 2 * soft_cross_entropy(z_, p, T), z)
        errors.append(((g - lm).norm() / lm.norm()).item())
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02 and errors[0] > 0.05


def test_soft_targets_are_mean_of_member_softmaxes():
    torch.manual_seed(2)
    z = torch.randn(4, 5, 11) * 4
    for T in (1.0, 2.0, 5.0, 10.0):
        assert torch.allclose(ensemble_soft_targets(z, T), torch.softmax(z / T, -1).mean(0), atol=1e-6)
    g = torch.exp(torch.log_softmax(z / 2.0, -1).mean(0))
    assert torch.allclose(ensemble_soft_targets(z, 2.0, "geometric"), g / g.sum(-1, keepdim=True), atol=1e-6)
    zm = zero_mean_teacher_logits(z)
    assert torch.allclose(zm.mean(-1), torch.zeros(5), atol=1e-5)
    assert torch.allclose(zm, (z - z.mean(-1, keepdim=True)).mean(0))


# -- teacher / student on toy data -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("dtoy")
    write_toy_dirs(root / "ftr", root / "atr", num_utts=40, num_pdfs=NUM_PDFS, mean_frames=60, seed=0)
    write_toy_dirs(root / "fdv", root / "adv", num_utts=10, num_pdfs=NUM_PDFS, mean_frames=60, seed=1)
    train = load_frame_dataset(root / "ftr", root / "atr")
    dev = load_frame_dataset(root / "fdv", root / "adv")
    teachers = []
    for seed in (0, 1):
        res = train_model(SMALL, train, dev, root / f"t{seed}", quiet(max_epochs=3, seed=seed))
        teachers.append(res.model_path)
    return root, train, dev, teachers


def test_distilled_student_learns(toy, tmp_path):
    root, train, dev, teachers = toy
    ens = Ensemble([build_model(SMALL)]).eval()  # scored below for chance level
    chance = evaluate_frames(ens.members[0], dev)["frame_acc"]
    res = train_student(teachers, train, dev, tmp_path / "s", quiet(max_epochs=3, seed=5),
                        DistillConfig(temperature=2.0))
    acc = res.history[res.best_epoch]["dev_acc"]
    assert acc > 0.5 and acc > chance + 0.3
    d = json.loads((tmp_path / "s" / "distill.json").read_text())
    assert d["distill"]["hard_weight"] == 0.5 and len(d["teachers"]) == 2


def test_cached_teacher_gives_the_on_the_fly_student(toy, tmp_path):
    root, train, dev, teachers = toy
    cfg = quiet(max_epochs=1, seed=5)
    a = train_student(teachers, train, dev, tmp_path / "a", cfg, DistillConfig(temperature=5.0))
    b = train_student(teachers, train, dev, tmp_path / "b", cfg, DistillConfig(temperature=5.0, teacher_mode="cache"))
    da = a.history[1]["dev_ce"]
    assert b.history[1]["dev_ce"] == pytest.approx(da, rel=1e-2)
    assert b.history[1]["dev_ce"] != da  # 8-bit logits: close, not identical
    assert (tmp_path / "b" / "teacher_cache" / "cache.json").is_file()


def test_logit_matching_and_soft_regulariser_config(toy, tmp_path):
    root, train, dev, teachers = toy
    small = train.subset(0.1, seed=0)
    res = train_student(teachers, train, dev, tmp_path / "lm", quiet(max_epochs=2, seed=5),
                        DistillConfig(loss="logits", hard_weight=0.0))
    assert res.history[res.best_epoch]["dev_acc"] > 0.3, res.history
    # Table 5: a small subset, hard targets only with early stopping vs soft targets from the full-data
    # teacher: the soft targets regularise (lower dev CE) on this toy task
    cfg = quiet(max_epochs=30, schedule="constant", early_stop_patience=3, seed=5)
    hard = train_model(SMALL, small, dev, tmp_path / "hard", cfg)
    soft = train_student(teachers[:1], small, dev, tmp_path / "soft", cfg, DistillConfig(temperature=2.0))
    assert soft.history[soft.best_epoch]["dev_ce"] < hard.history[hard.best_epoch]["dev_ce"] - 0.2
    with pytest.raises(UserFacingError):
        DistillConfig(priors="alignment").check()


def test_distill_cli(toy, tmp_path, capsys):
    root, train, dev, teachers = toy
    from asrdistill.cli import main

    rc = main(["distill", "--teacher", str(teachers[0]), "--teacher", str(teachers[1]), "-T", "2",
               "--feats", str(root / "ftr"), "--ali", str(root / "atr"), "--dev-feats", str(root / "fdv"),
               "--dev-ali", str(root / "adv"), "--out", str(tmp_path / "s"), "--max-epochs", "1",
               "--threads", "1", "--device", "cpu", "--no-tensorboard", "--teacher-mode", "cache", "--topk", "4",
               "--cache-dir", str(tmp_path / "cache")])
    assert rc == 0 and (tmp_path / "s" / "final.mdl").is_file()
    assert "dev frame acc" in capsys.readouterr().out
    assert (tmp_path / "cache" / "check.json").is_file()  # built by distill when absent, as its own step


def test_student_with_another_context_window_is_refused(toy, tmp_path, capsys):
    root, train, dev, teachers = toy
    from asrdistill.cli import main

    rc = main(["distill", "--teacher", str(teachers[0]), "-T", "2", "--feats", str(root / "ftr"), "--ali",
               str(root / "atr"), "--dev-feats", str(root / "fdv"), "--dev-ali", str(root / "adv"), "--left", "9",
               "--out", str(tmp_path / "s"), "--max-epochs", "1", "--threads", "1", "--device", "cpu",
               "--no-tensorboard"])
    err = capsys.readouterr().err
    assert rc != 0 and "input window (9 left" in err and "differs from the teacher's" in err
    assert not (tmp_path / "s" / "final.mdl").exists()
