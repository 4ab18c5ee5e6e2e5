"""Data-parallel DNN training on CPU: 2 processes under torchrun (gloo) against one process.

* equivalence: the same options (``--batch-size`` is the global batch) give the same schedule and, up to
  float summation order, the same model: dev frame accuracy within ``ACC_TOLERANCE`` of one process's. This is
  checked in fp32 (``--precision fp32``): in bf16 the ranks' half-batch GEMMs round differently from the
  full batch's, by more than these tolerances;
* a kill of the whole job after an epoch, then the same command again, resumes from the last checkpoint and
  finishes (that resumption is exact is shown on one process in test_nnet.py);
* only rank 0 writes under the output dir (an audit hook on rank 1 sees no write there).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from toy_frames import write_toy_dirs
from asrdistill.nnet.model import load_model

from nnet_common import NUM_PDFS  # noqa: E402  (tests/ is on sys.path)

TESTS = Path(__file__).resolve().parent
#: Largest dev frame-accuracy difference accepted between 2-rank DDP and 1 process (same global batch).
ACC_TOLERANCE = 0.01


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    write_toy_dirs(root / "ftr", root / "atr", num_utts=30, num_pdfs=NUM_PDFS, mean_frames=50, seed=0, unaligned=2)
    write_toy_dirs(root / "fdv", root / "adv", num_utts=8, num_pdfs=NUM_PDFS, mean_frames=50, seed=1)
    return root


def _args(root: Path, out: Path, frames: str) -> list[str]:
    return ["train-dnn", "--feats", str(root / "ftr"), "--ali", str(root / "atr"), "--dev-feats", str(root / "fdv"),
            "--dev-ali", str(root / "adv"), "--preset", "tiny", "--hidden-dim", "64", "--left", "3", "--right", "2",
            "--max-epochs", "3", "--batch-size", "100", "--lr", "0.05", "--threads", "1", "--device", "cpu",
            "--frames", frames, "--precision", "fp32", "--no-tensorboard", "--out", str(out)]


def _torchrun(report: Path, cli_args: list[str], kill_after: int | None = None) -> subprocess.CompletedProcess:
    own = [str(report)] + (["--kill-after", str(kill_after)] if kill_after is not None else [])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(TESTS / "ddp_worker.py"), *own, "--", *cli_args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)


def _history(out: Path) -> list[dict]:
    return json.loads((out / "history.json").read_text())["history"]


def test_ddp_matches_single_process_resumes_after_kill(toy, tmp_path):
    from asrdistill.cli import main

    single = tmp_path / "single"
    assert main(_args(toy, single, "memory")) == 0
    # DDP, killed (SIGKILL of every rank) after epoch 2's checkpoint: no final model, no record
    ddp = tmp_path / "ddp"
    res = _torchrun(tmp_path / "report_kill", _args(toy, ddp, "auto"), kill_after=2)
    assert res.returncode != 0 and not (ddp / "final.mdl").exists() and not (ddp / ".done").exists()
    assert (ddp / "checkpoints" / "last.pt").is_file()
    # the same command again resumes after epoch 2 and finishes
    res = _torchrun(tmp_path / "report_resume", _args(toy, ddp, "auto"))
    assert res.returncode == 0, res.stderr[-3000:]
    assert "resuming after epoch 2" in res.stderr
    assert (ddp / ".done").is_file() and json.loads((ddp / "history.json").read_text())["world_size"] == 2

    # the same schedule and, within float summation order, the same model as one process
    h1, h2 = _history(single), _history(ddp)
    assert [h["lr"] for h in h1] == [h["lr"] for h in h2] and [h["accepted"] for h in h1] == [h["accepted"] for h in h2]
    assert h2[0]["dev_ce"] == pytest.approx(h1[0]["dev_ce"], rel=1e-6)  # same initial model, sharded dev sums
    assert h1[-1]["dev_acc"] > 0.3  # it learned something (chance is 0.05)
    print("DDP vs one process: max |dev acc diff| per epoch",
          max(abs(a["dev_acc"] - b["dev_acc"]) for a, b in zip(h1[1:], h2[1:])),
          "max |dev CE rel diff|", max(abs(a["dev_ce"] - b["dev_ce"]) / a["dev_ce"] for a, b in zip(h1[1:], h2[1:])))
    for a, b in zip(h1[1:], h2[1:]):
        assert abs(a["dev_acc"] - b["dev_acc"]) <= ACC_TOLERANCE
        assert b["dev_ce"] == pytest.approx(a["dev_ce"], rel=1e-3)
    m1, m2 = load_model(single / "final.mdl"), load_model(ddp / "final.mdl")
    assert all(torch.allclose(m1.state_dict()[k], m2.state_dict()[k], atol=1e-4) for k in m1.state_dict())

    # only rank 0 wrote under the output dir (every rank ran with an audit hook that sees each write there)
    for report in ("report_kill", "report_resume"):
        assert json.loads((tmp_path / report / "rank1.json").read_text()) == []
        rank0 = json.loads((tmp_path / report / "rank0.json").read_text())
        assert any(e == "os.rename" and p.endswith("last.pt") for e, p in rank0)


def test_teacher_cache_built_by_two_ranks_is_byte_identical(toy, tmp_path):
    """build-teacher-cache under torchrun: each rank fills its share of the rows, rank 0 writes the index and
    the record; the cache is byte for byte the one-process cache."""
    from asrdistill.cli import main

    members = []
    for seed in (0, 1):
        out = tmp_path / f"m{seed}"
        args = _args(toy, out, "memory")
        args[args.index("--max-epochs") + 1] = "1"
        assert main(args + ["--seed", str(seed)]) == 0
        members += ["--teacher", str(out / "final.mdl")]
    common = ["build-teacher-cache", *members, "--feats", str(toy / "ftr"), "--ali", str(toy / "atr"),
              "--threads", "1", "--device", "cpu", "--batch-size", "64", "--check-frames", "200"]
    assert main([*common, "--out", str(tmp_path / "one")]) == 0
    res = _torchrun(tmp_path / "report_cache", [*common, "--out", str(tmp_path / "two")])
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("codes.npy", "ranges.npy", "cache.json", "utts.txt", "check.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name
    assert (tmp_path / "two" / ".done").is_file()
    assert not list(tmp_path.glob(".two.*tmp"))  # the ranks' temporary dir is gone
