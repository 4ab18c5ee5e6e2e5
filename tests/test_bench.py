"""The training benchmark's code paths on CPU at tiny size (no timing assertions): its FLOP count against
torch's own counter, every dtype, the train_model loop, the CLI."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_train  # noqa: E402

from asrdistill.nnet.config import DnnConfig  # noqa: E402
from asrdistill.nnet.model import build_model  # noqa: E402


def test_flop_count_matches_torch_counter():
    from torch.utils.flop_counter import FlopCounterMode

    cfg = DnnConfig.from_preset("tiny", 37, left=2, right=1)
    model = build_model(cfg, seed=0)
    x = torch.randn(8, cfg.input_dim)  # an input that needs no gradient, as in training
    with FlopCounterMode(display=False) as counter:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long)).backward()
    assert counter.get_total_flops() == 8 * bench_train.flops_per_frame(cfg)


@pytest.mark.parametrize("dtype", bench_train.DTYPES)
def test_bench_runs_every_dtype(dtype):
    row = bench_train.bench("tiny", 50, 16, dtype, "cpu", seconds=0.0, min_steps=2, left=2, right=1, peak_size=64)
    for key in ("frames_per_s", "gflop_per_s", "gemm_gflop_per_s", "mfu", "peak_gflop_per_s", "mfu_vs_peak"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert row["params"] == DnnConfig.from_preset("tiny", 50, left=2, right=1).num_params()
    assert torch.backends.cuda.matmul.allow_tf32 is False  # the precision switch was restored


def test_train_loop_and_cli(tmp_path, capsys):
    loop = bench_train.bench_train_loop("tiny", 20, 64, "cpu", num_frames=1500, threads=1, out_dir=str(tmp_path))
    assert loop["frames"] == 1500 and loop["train_loop_frames_per_s"] > 0
    assert bench_train.main(["--presets", "tiny", "--pdfs", "30", "--batch", "16", "--seconds", "0",
                             "--min-steps", "1", "--peak-size", "64", "--train-loop", "--loop-frames", "1000",
                             "--threads", "1", "--json", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows[0]["preset"] == "tiny" and rows[0]["loop_vs_step"] > 0
    assert "| tiny |" in capsys.readouterr().out
