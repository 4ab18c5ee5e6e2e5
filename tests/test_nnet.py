"""DNN library: model file format, frame data, CE training (resume equivalence, newbob), ensembles, scoring."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from asrdistill.errors import UserFacingError
from asrdistill.nnet.data import load_frame_dataset
from asrdistill.nnet.ensemble import Ensemble, combine_log_probs, load_ensemble
from asrdistill.nnet.evaluate import ensemble_scores_per_utt, evaluate_frames, frame_scores_per_utt, score_frames
from asrdistill.nnet.model import DnnConfig, build_model, load_model, log_prior_from_counts, save_model
from toy_frames import write_toy_dirs
from asrdistill.nnet.train import Newbob, train_model

from nnet_common import NUM_PDFS, SMALL, quiet  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    write_toy_dirs(root / "ftr", root / "atr", num_utts=40, num_pdfs=NUM_PDFS, mean_frames=60, seed=0, unaligned=2)
    write_toy_dirs(root / "fdv", root / "adv", num_utts=10, num_pdfs=NUM_PDFS, mean_frames=60, seed=1)
    train = load_frame_dataset(root / "ftr", root / "atr")
    dev = load_frame_dataset(root / "fdv", root / "adv")
    return root, train, dev


# -- model -------------------------------------------------------------------------------------------------
def test_paper_preset_size():
    cfg = DnnConfig.from_preset("paper", 14000)
    assert (cfg.hidden_layers, cfg.hidden_dim, cfg.context, cfg.input_dim) == (8, 2560, 26, 1040)
    assert 84e6 < cfg.num_params() < 86e6  # "about 85M parameters"
    small = build_model(DnnConfig.from_preset("tiny", 50), seed=0)
    assert sum(p.numel() for p in small.parameters()) == small.config.num_params()


def test_model_file_roundtrip_weights_only(tmp_path):
    model = build_model(SMALL, seed=3)
    model.set_input_normalization(np.arange(40) * 0.1, np.full(40, 2.0))
    model.set_log_prior(log_prior_from_counts(np.arange(NUM_PDFS)))
    save_model(tmp_path / "m.mdl", model)
    raw = torch.load(tmp_path / "m.mdl", weights_only=True)
    json.dumps(raw["config"])  # the config is plain JSON
    loaded = load_model(tmp_path / "m.mdl")
    x = torch.randn(7, SMALL.input_dim)
    assert torch.equal(model.eval()(x), loaded(x))
    assert torch.allclose(loaded.log_likelihoods(x), torch.log_softmax(loaded(x), -1) - loaded.log_prior)
    assert not loaded.training
    with pytest.raises(UserFacingError):
        load_model(tmp_path / "missing.mdl")


def test_seed_determines_init():
    a, b, c = build_model(SMALL, seed=1), build_model(SMALL, seed=1), build_model(SMALL, seed=2)
    assert torch.equal(a.output.weight, b.output.weight)
    assert not torch.equal(a.output.weight, c.output.weight)


def test_log_prior_floor():
    lp = log_prior_from_counts(np.array([0, 3, 6]), count_floor=1.0)
    assert np.allclose(np.exp(lp), [0.1, 0.3, 0.6])
    assert np.isfinite(lp).all()


# -- data --------------------------------------------------------------------------------------------------
def test_dataset_skips_unaligned_and_checks_lengths(toy, tmp_path):
    root, train, dev = toy
    from asrdistill.features.store import FrameStore

    store = FrameStore(root / "ftr")
    assert len(train.utts) == len(store.utts) - 2 and train.utts == store.utts[:-2]
    u = train.utts[5]
    i = train.utts.index(u)
    assert torch.equal(train.frames[train.offsets[i]:train.offsets[i + 1]], torch.from_numpy(np.array(store.get(u))))
    # an alignment one frame short is an error that names the utterance
    import kaldiio

    ali = tmp_path / "bad_ali"
    ali.mkdir()
    (ali / "num_pdfs").write_text(f"{NUM_PDFS}\n")
    with kaldiio.WriteHelper(f"ark,scp:{ali / 'pdf.ark'},{ali / 'pdf.scp'}") as w:
        for j, utt in enumerate(store.utts):
            n = len(store.get(utt)) - (1 if j == 3 else 0)
            w(utt, np.zeros(n, np.int32))
    with pytest.raises(UserFacingError, match=store.utts[3]):
        load_frame_dataset(root / "ftr", ali)


def test_subset_whole_utterances_seeded(toy):
    _, train, _ = toy
    a, b, c = train.subset(0.25, seed=7), train.subset(0.25, seed=7), train.subset(0.25, seed=8)
    assert a.utts == b.utts and a.utts != c.utts
    assert len(a.utts) == round(0.25 * len(train.utts))
    for k, u in enumerate(a.utts):
        i = train.utts.index(u)
        assert torch.equal(a.targets[a.offsets[k]:a.offsets[k + 1]], train.targets[train.offsets[i]:train.offsets[i + 1]])


# -- training ----------------------------------------------------------------------------------------------
def test_training_beats_chance(toy, tmp_path):
    root, train, dev = toy
    res = train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=4, tensorboard=True))
    assert list((tmp_path / "exp" / "tb").glob("events.out.tfevents.*"))
    best = res.history[res.best_epoch]
    assert best["dev_acc"] > 0.5 > 5.0 / NUM_PDFS  # chance is 1/20
    assert best["dev_ce"] < res.history[0]["dev_ce"] - 1.0
    assert (tmp_path / "exp" / "final.mdl").is_file() and (tmp_path / "exp" / "log.txt").is_file()
    # the saved model scores the same through score_frames; priors come from the training counts
    m = load_model(tmp_path / "exp" / "final.mdl")
    s = score_frames(tmp_path / "exp" / "final.mdl", root / "fdv", root / "adv", device="cpu")
    assert s["frame_acc"] == pytest.approx(best["dev_acc"], abs=1e-6)
    assert torch.allclose(m.log_prior, torch.from_numpy(log_prior_from_counts(train.pdf_counts())))
    for f in ("last.pt", "best.pt"):  # checkpoints load without pickled code
        torch.load(tmp_path / "exp" / "checkpoints" / f, weights_only=True)


class _Interrupt(Exception):
    pass


def test_resume_is_bit_identical(toy, tmp_path):
    _, train, dev = toy
    cfg = quiet(max_epochs=3, schedule="constant")
    straight = train_model(SMALL, train, dev, tmp_path / "a", cfg)

    def stop_after_two(epoch, record):
        if epoch == 2:
            raise _Interrupt

    with pytest.raises(_Interrupt):
        train_model(SMALL, train, dev, tmp_path / "b", cfg, on_epoch_end=stop_after_two)
    assert not (tmp_path / "b" / "final.mdl").exists()
    epochs_run = []
    resumed = train_model(SMALL, train, dev, tmp_path / "b", cfg, on_epoch_end=lambda e, r: epochs_run.append(e))
    assert epochs_run == [3]  # it continued after epoch 2 rather than starting over
    sa, sb = straight.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert [h["dev_ce"] for h in straight.history] == [h["dev_ce"] for h in resumed.history]
    # resuming with other training data is refused
    with pytest.raises(UserFacingError, match="other training data"):
        train_model(SMALL, train.subset(0.5), dev, tmp_path / "b", dataclasses.replace(cfg, max_epochs=4))
    # a different seed gives a different model (the comparison can fail)
    other = train_model(SMALL, train, dev, tmp_path / "c", dataclasses.replace(cfg, seed=1, max_epochs=1))
    assert not torch.equal(other.model.output.weight, straight.model.output.weight)


def test_newbob_schedule():
    s = Newbob(lr=1.0, start_halving_impr=0.01, end_halving_impr=0.001, min_epochs=1)
    s.start(10.0)
    assert s.step(1, 5.0) and s.lr == 1.0 and not s.halving          # big improvement: keep lr
    assert s.step(2, 4.99) and s.halving and s.lr == 0.5             # < 1%: start halving
    assert not s.step(3, 6.0) and s.lr == 0.5 and s.stopped           # worse while halving: stop
    assert s.best_epoch == 2 and s.best_loss == 4.99
    f = Newbob(lr=1.0, start_halving_epoch=2)
    f.start(10.0)
    f.step(1, 5.0), f.step(2, 2.5)
    assert f.halving and f.lr == 0.5 and not f.stopped  # halves after epoch 2 although dev improved by half
    k = Newbob(lr=1.0, keep_lr_epochs=2)  # Kaldi's keep_lr_iters: neither worse nor flat epochs halve in them
    k.start(10.0)
    assert not k.step(1, 11.0) and k.step(2, 9.999) and k.lr == 1.0 and not k.halving
    assert k.step(3, 9.998) and k.halving and k.lr == 0.5 and k.best_epoch == 3
    e = Newbob(lr=1.0, schedule="constant", early_stop_patience=2)
    e.start(10.0)
    e.step(1, 9.0), e.step(2, 9.5)
    assert not e.stopped
    e.step(3, 9.1)
    assert e.stopped and e.best_epoch == 1 and e.lr == 1.0


class _WrongTargets:
    """CE against the next pdf instead of the aligned one once ``wrong`` is set: dev CE gets worse."""

    def __init__(self, wrong: bool = False):
        self.wrong = wrong

    def __call__(self, logits, x, targets, rows):
        return torch.nn.functional.cross_entropy(logits, (targets + 1) % NUM_PDFS if self.wrong else targets)


def test_newbob_halves_and_stops(toy, tmp_path):
    _, train, dev = toy
    res = train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=30, learning_rate=0.1))
    lrs = [h["lr"] for h in res.history[1:]]
    first_halved = next(i for i, lr in enumerate(lrs) if lr < 0.1)  # halving triggered ...
    assert all(b == a / 2 for a, b in zip(lrs[first_halved - 1:], lrs[first_halved:]))  # ... every epoch after
    hist = json.loads((tmp_path / "exp" / "history.json").read_text())
    assert "relative dev improvement" in hist["stop_reason"] and len(lrs) < 30  # ... and stopped training
    assert [h["lr"] for h in hist["history"]] == [0.1] + lrs and all("dev_acc" in h for h in hist["history"])
    # a forced start of halving anneals from that epoch on, however much dev still improves
    res = train_model(SMALL, train, dev, tmp_path / "forced",
                      quiet(max_epochs=4, learning_rate=0.02, start_halving_epoch=2))
    assert [h["lr"] for h in res.history[1:]] == [0.02, 0.02, 0.01, 0.005]


def test_newbob_rejects_worse_epoch(toy, tmp_path):
    _, train, dev = toy
    objective = _WrongTargets()

    def go_wrong(epoch, record):
        objective.wrong = True  # from epoch 2 on, every epoch makes dev worse

    res = train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=6), objective=objective,
                      on_epoch_end=go_wrong)
    assert [h["accepted"] for h in res.history] == [True, True, False, False]
    assert [h["lr"] for h in res.history] == [0.02, 0.02, 0.02, 0.01]  # rejection -> halving -> stop
    assert res.best_epoch == 1
    assert evaluate_frames(res.model, dev)["ce"] == pytest.approx(res.history[1]["dev_ce"], rel=1e-6)


def test_keep_lr_epochs_go_on_from_a_worse_epoch_and_keep_the_best(toy, tmp_path):
    _, train, dev = toy
    objective = _WrongTargets()

    def go_wrong(epoch, record):
        objective.wrong = epoch == 1  # epoch 2 makes dev worse, epoch 3 learns the right targets again

    res = train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=3, keep_lr_epochs=2),
                      objective=objective, on_epoch_end=go_wrong)
    assert [h["accepted"] for h in res.history] == [True, True, True, True]  # epoch 2 kept, not rolled back
    assert [h["lr"] for h in res.history[1:]] == [0.02, 0.02, 0.02]
    assert res.history[2]["dev_ce"] > res.history[1]["dev_ce"]
    objective.wrong = False
    plain = train_model(SMALL, train, dev, tmp_path / "plain", quiet(max_epochs=3), objective=objective,
                        on_epoch_end=go_wrong)  # the same run without: epoch 2 is rolled back, the lr halves
    assert [h["accepted"] for h in plain.history[:3]] == [True, True, False] and plain.history[3]["lr"] == 0.01
    best = min(range(1, 4), key=lambda i: res.history[i]["dev_ce"])
    assert res.best_epoch == best  # the model kept is still the best-dev one
    assert evaluate_frames(res.model, dev)["ce"] == pytest.approx(res.history[best]["dev_ce"], rel=1e-6)


def test_failed_runs_write_no_model(toy, tmp_path):
    _, train, dev = toy
    trained = train_model(SMALL, train, dev, tmp_path / "good", quiet(max_epochs=2)).model
    with pytest.raises(UserFacingError, match="every epoch was rejected"):  # wrong targets from a trained model
        train_model(trained, train, dev, tmp_path / "rej", quiet(max_epochs=2), objective=_WrongTargets(True))
    with pytest.raises(UserFacingError, match="non-finite"):
        train_model(SMALL, train, dev, tmp_path / "nan", quiet(max_epochs=2, learning_rate=50.0, momentum=0.0))
    for d in ("rej", "nan"):
        assert not (tmp_path / d / "final.mdl").exists() and not (tmp_path / d / ".done").exists()


def test_resume_with_other_architecture(toy, tmp_path):
    _, train, dev = toy

    def stop(epoch, record):
        raise _Interrupt

    with pytest.raises(_Interrupt):
        train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=2), on_epoch_end=stop)
    wider = dataclasses.replace(SMALL, hidden_dim=32)
    with pytest.raises(UserFacingError, match=r"last\.pt.*another architecture.*hidden_dim"):
        train_model(wider, train, dev, tmp_path / "exp", quiet(max_epochs=2))
    train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=2))  # the same one resumes
    with pytest.raises(UserFacingError, match=r"final\.mdl.*another architecture"):
        train_model(wider, train, dev, tmp_path / "exp", quiet(max_epochs=2))


def test_early_stopping_keeps_best(toy, tmp_path):
    _, train, dev = toy
    res = train_model(SMALL, train.subset(0.1, seed=0), dev, tmp_path / "exp",
                      quiet(max_epochs=30, schedule="constant", early_stop_patience=2, learning_rate=0.05))
    assert len(res.history) - 1 < 30
    best = min(range(len(res.history)), key=lambda i: res.history[i]["dev_ce"])
    assert res.best_epoch == best and len(res.history) - 1 - best == 2


# -- ensembles ---------------------------------------------------------------------------------------------
def test_combination_math():
    torch.manual_seed(0)
    z = torch.randn(3, 5, 7) * 3
    for T in (1.0, 2.0, 5.0):
        p = torch.softmax(z / T, -1)
        arith = combine_log_probs(z, "arithmetic", T).exp()
        assert torch.allclose(arith, p.mean(0), atol=1e-6)
        g = torch.exp(torch.log(p).mean(0))
        assert torch.allclose(combine_log_probs(z, "geometric", T).exp(), g / g.sum(-1, keepdim=True), atol=1e-6)
    # one member: both combinations are that member
    assert torch.allclose(combine_log_probs(z[:1], "geometric"), torch.log_softmax(z[0], -1), atol=1e-6)
    with pytest.raises(UserFacingError):
        combine_log_probs(z, "median")


def test_ensemble_report_and_load(toy, tmp_path):
    _, train, dev = toy
    from asrdistill.nnet.members import train_ensemble

    report = train_ensemble(3, SMALL, train, dev, tmp_path / "ens", quiet(max_epochs=2))["dev"]
    accs = [s["frame_acc"] for s in report["members"]]
    assert len(set(accs)) > 1  # members differ by seed
    assert report["member_mean"]["frame_acc"] == pytest.approx(sum(accs) / 3)
    assert report["arithmetic"]["ce"] < report["member_mean"]["ce"]  # ensembles are better calibrated
    ens = load_ensemble([tmp_path / "ens"])
    assert len(ens.members) == 3
    x = dev.splicer(SMALL.left, SMALL.right)(dev.frames, torch.arange(10))
    assert torch.allclose(ens.log_probs(x).exp(), torch.stack([m.log_probs(x).exp() for m in ens.members]).mean(0),
                          atol=1e-6)
    assert torch.allclose(ens.log_likelihoods(x), ens.log_probs(x) - ens.members[0].log_prior)
    assert evaluate_frames(ens, dev)["frame_acc"] == pytest.approx(report["arithmetic"]["frame_acc"])


def test_ensemble_scores_per_utt_equal_separate_scoring(toy):
    """make-results scores members and both combinations from one pass: the counts must be the separate calls'."""
    _, _, dev = toy
    members = [build_model(SMALL, seed=s) for s in (3, 4, 5)]
    joint = ensemble_scores_per_utt(Ensemble(members), dev, batch_size=97)  # batches that split utterances
    assert set(joint) == {0, 1, 2, "arithmetic", "geometric"}
    for i, m in enumerate(members):
        assert joint[i] == frame_scores_per_utt(m, dev)
    for method in ("arithmetic", "geometric"):
        assert joint[method] == frame_scores_per_utt(Ensemble(members, combine=method), dev)
    assert len({tuple(joint[k].values()) for k in joint}) > 1  # the members and combinations do differ
    assert sum(n for _, n in joint[0].values()) == len(dev)


def test_score_frames_cli(toy, tmp_path, capsys):
    root, train, dev = toy
    from asrdistill.cli import main

    model = build_model(SMALL, seed=0)
    save_model(tmp_path / "m.mdl", model)
    ref = evaluate_frames(model, dev)
    assert ref["ce"] == pytest.approx(score_frames(tmp_path / "m.mdl", root / "fdv", root / "adv", device="cpu")["ce"],
                                      rel=1e-6)
    assert main(["score-frames", "--model", str(tmp_path / "m.mdl"), "--feats", str(root / "fdv"),
                 "--ali", str(root / "adv"), "--device", "cpu", "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["frames"] == len(dev)
    assert main(["score-frames", "--model", str(tmp_path / "nope.mdl"), "--feats", str(root / "fdv"),
                 "--ali", str(root / "adv")]) == 1


def test_training_precision(toy, tmp_path, monkeypatch):
    from asrdistill.nnet import device

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert device.training_dtype(cpu, "fp32") == device.training_dtype(cuda, "fp32") == torch.float32
    assert device.training_dtype(cpu, "bf16") == device.training_dtype(cuda, "bf16") == torch.bfloat16
    assert device.training_dtype(cuda, "auto") == torch.bfloat16
    for native, dtype in ((True, torch.bfloat16), (False, torch.float32)):  # auto on CPU: bf16 only if native
        monkeypatch.setattr(device, "cpu_has_bf16", lambda native=native: native)
        assert device.training_dtype(cpu, "auto") == dtype
    with pytest.raises(UserFacingError, match="unknown precision 'fp16'"):
        device.training_dtype(cpu, "fp16")
    # bf16 passes train a different (still good) model; the dtype used is recorded; the weights stay fp32
    _, train, dev = toy
    runs = {p: train_model(SMALL, train, dev, tmp_path / p, quiet(max_epochs=2, precision=p))
            for p in ("fp32", "bf16")}
    for p, res in runs.items():
        assert json.loads((tmp_path / p / "history.json").read_text())["training_dtype"] == \
            {"fp32": "float32", "bf16": "bfloat16"}[p]
        assert res.history[res.best_epoch]["dev_acc"] > 0.5
        assert res.model.output.weight.dtype == torch.float32
    assert not torch.equal(runs["fp32"].model.output.weight, runs["bf16"].model.output.weight)


def test_train_cli(toy, tmp_path, capsys):
    root, train, dev = toy
    from asrdistill.cli import main

    data = ["--feats", str(root / "ftr"), "--ali", str(root / "atr"), "--dev-feats", str(root / "fdv"),
            "--dev-ali", str(root / "adv"), "--preset", "tiny", "--left", "3", "--right", "2", "--max-epochs", "1",
            "--threads", "1", "--device", "cpu", "--no-tensorboard"]
    assert main(["train-dnn", *data, "--out", str(tmp_path / "one"), "--subset", "0.5", "--precision", "fp32"]) == 0
    m = load_model(tmp_path / "one" / "final.mdl")
    assert (m.config.hidden_layers, m.config.hidden_dim, m.config.context) == (2, 128, 6)
    hist = json.loads((tmp_path / "one" / "history.json").read_text())
    assert hist["train_config"]["max_epochs"] == 1
    assert (hist["train_config"]["precision"], hist["training_dtype"]) == ("fp32", "float32")
    assert main(["train-ensemble", *data, "--members", "2", "--out", str(tmp_path / "ens")]) == 0
    out = capsys.readouterr().out
    assert "member1:" in out and "ensemble (arithmetic)" in out
    assert main(["score-frames", "--model", str(tmp_path / "ens"), "--per-member", "--feats", str(root / "fdv"),
                 "--ali", str(root / "adv"), "--device", "cpu", "--json", str(tmp_path / "s.json")]) == 0
    scores = json.loads((tmp_path / "s.json").read_text())
    report = json.loads((tmp_path / "ens" / "scores.json").read_text())["dev"]
    assert scores["arithmetic"]["frame_acc"] == pytest.approx(report["arithmetic"]["frame_acc"])
    assert len(scores["members"]) == 2
    assert json.loads((tmp_path / "ens" / "ensemble.json").read_text())["members"] == ["member0/final.mdl",
                                                                                       "member1/final.mdl"]


def test_log_prior_from_caller(toy, tmp_path):
    _, train, dev = toy
    counts = np.arange(1, NUM_PDFS + 1, dtype=np.float64)
    prior = log_prior_from_counts(counts)
    res = train_model(SMALL, train, dev, tmp_path / "exp", quiet(max_epochs=1), log_prior=prior)
    assert torch.allclose(load_model(tmp_path / "exp" / "final.mdl").log_prior, torch.from_numpy(prior))
    assert not torch.allclose(res.model.log_prior, torch.from_numpy(log_prior_from_counts(train.pdf_counts())))
    with pytest.raises(UserFacingError, match="log_prior"):
        train_model(SMALL, train, dev, tmp_path / "bad", quiet(max_epochs=1), log_prior=prior[:-1])


def test_memmap_dataset_same_batches_and_model(toy, tmp_path):
    root, train, dev = toy
    mm = load_frame_dataset(root / "ftr", root / "atr", mmap=True)
    assert isinstance(mm.frames, np.memmap) and mm.utts == train.utts and torch.equal(mm.targets, train.targets)
    rows = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:500]
    assert torch.equal(mm.splicer(3, 2)(mm.frames, rows), train.splicer(3, 2)(train.frames, rows))
    sub, sub_mm = train.subset(0.4, seed=3), mm.subset(0.4, seed=3)  # rows no longer those of the store
    r = torch.arange(len(sub))
    assert torch.equal(sub_mm.splicer(3, 2)(sub_mm.frames, r), sub.splicer(3, 2)(sub.frames, r))
    assert torch.equal(sub_mm.in_memory().frames, sub.frames)
    assert all(np.array_equal(a, b) for a, b in zip(sub_mm.feature_stats(), sub.feature_stats()))
    chunks = list(sub_mm._chunks(37))  # the chunking that feature_stats shares with the in-memory dataset
    assert [len(c) for c in chunks[:-1]] == [37] * (len(chunks) - 1) and np.array_equal(np.concatenate(chunks),
                                                                                       sub.frames.numpy())
    import pickle

    again = pickle.loads(pickle.dumps(sub_mm))  # pickles by path: the frames are not copied
    assert len(pickle.dumps(sub_mm)) < sub.frames.numel() and isinstance(again.frames, np.memmap)
    assert torch.equal(again.splicer(3, 2)(again.frames, r), sub.splicer(3, 2)(sub.frames, r))
    cfg = quiet(max_epochs=2)
    a = train_model(SMALL, train, dev, tmp_path / "mem", cfg)
    b = train_model(SMALL, mm, load_frame_dataset(root / "fdv", root / "adv", mmap=True), tmp_path / "mm", cfg)
    assert (tmp_path / "mem" / "final.mdl").read_bytes() == (tmp_path / "mm" / "final.mdl").read_bytes()
    assert [h["dev_ce"] for h in a.history] == [h["dev_ce"] for h in b.history]


def test_batches_on_another_device_type(toy):
    """What a CUDA run does differently, checked on the 'meta' device: batches, targets and row indices end up
    on the training device with the dtypes that indexing and the loss need (no CPU tensors left behind)."""
    from asrdistill.nnet.data import FrameDataset, MemmapFrameDataset

    root, train, _ = toy
    meta = torch.device("meta")
    mm = load_frame_dataset(root / "ftr", root / "atr", mmap=True)
    # (the utterance table stays on the CPU here: a meta tensor has no values to copy back)
    for on in (FrameDataset(train.frames.to(meta), train.targets.to(meta), train.offsets, train.utts, NUM_PDFS),
               MemmapFrameDataset(mm.store_path, mm.store_start, mm.targets.to(meta), mm.offsets, mm.utts, NUM_PDFS)):
        assert on.device == meta and on.targets.dtype == torch.int64
        data = train
        rows_cpu = torch.randperm(len(data))[:64]
        rows = rows_cpu.to(meta)
        x = on.splicer(3, 2)(on.frames, rows_cpu if isinstance(on.frames, np.ndarray) else rows)
        assert x.device == meta and x.dtype == torch.float32 and tuple(x.shape) == (64, 6 * 40)
        y = on.targets[rows]
        assert y.device == meta and y.dtype == torch.int64
        model = build_model(SMALL, seed=0).to(meta)
        logits = model(x)
        assert logits.device == meta
        assert torch.nn.functional.cross_entropy(logits, y).device == meta


def test_parallel_members_identical_to_sequential(toy, tmp_path):
    import hashlib

    from asrdistill.nnet.members import train_ensemble

    _, train, dev = toy
    cfg = quiet(max_epochs=1)
    seq = train_ensemble(2, SMALL, train, dev, tmp_path / "seq", cfg)
    par = train_ensemble(2, SMALL, train, dev, tmp_path / "par", cfg, parallel=2)

    def digest(d, i):
        return hashlib.sha256((tmp_path / d / f"member{i}" / "final.mdl").read_bytes()).hexdigest()

    assert [digest("seq", i) for i in range(2)] == [digest("par", i) for i in range(2)]
    assert digest("seq", 0) != digest("seq", 1)  # the members do differ (by seed)
    assert seq["dev"]["arithmetic"] == par["dev"]["arithmetic"]
