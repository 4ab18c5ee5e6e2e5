"""The built-in recipe's first stages, end to end on a tiny corpus, through run.sh as a user runs it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from asrdistill.data.kaldi_dir import read_data_dir
from asrdistill.features.store import FrameStore

ROOT = Path(__file__).resolve().parents[1]


def run_recipe(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    opts = ["--hours", "0.02", "--num-speakers", "6", "--seed", "3", "--nj", "2",
            "--generated-test-speakers", "2", "--generated-utts", "2",
            "--corpus", str(work / "corpus"), "--data", str(work / "data"), "--exp", str(work / "exp")]
    return subprocess.run(["bash", str(ROOT / "recipes/synth/run.sh"), *opts, *args], env=env,
                          capture_output=True, text=True, timeout=1200)


def test_stages_0_to_2(tmp_path: Path) -> None:
    proc = run_recipe(tmp_path, "--stage", "0", "--stop-stage", "2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for split in ("train", "dev", "test"):
        dd = read_data_dir(tmp_path / "data" / split)
        store = FrameStore(tmp_path / "data" / "fbank" / split)
        assert store.utts == dd.utts and store.dim == 40
        assert np.isfinite(np.asarray(store.frames)).all()
        assert (tmp_path / "data" / split / "phones.ctm").is_file()
    summary = (tmp_path / "data" / "corpus_summary.txt").read_text()
    assert "train" in summary and "snr_db" in summary and "vocabulary" in summary
    speakers = {s: len(read_data_dir(tmp_path / "data" / s).spk2utt) for s in ("train", "dev", "test")}
    assert sum(speakers.values()) == 6 + 2 and min(speakers.values()) >= 1  # 2 generated test speakers

    # A second run finds everything finished and redoes nothing.
    stamp = (tmp_path / "data" / "fbank" / "train" / "frames.f32").stat().st_mtime_ns
    again = run_recipe(tmp_path, "--stage", "0", "--stop-stage", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert (tmp_path / "data" / "fbank" / "train" / "frames.f32").stat().st_mtime_ns == stamp
    assert "already" in (again.stdout + again.stderr).lower()


def test_bad_option_fails_loudly(tmp_path: Path) -> None:
    proc = run_recipe(tmp_path, "--no-such-option", "1")
    assert proc.returncode != 0 and "unknown option --no-such-option" in proc.stderr


def test_all_stages_on_a_tiny_corpus(tmp_path: Path) -> None:
    """Every stage of the recipe, at toy sizes: the plumbing from corpus to export, not the numbers."""
    proc = run_recipe(tmp_path, "--stage", "0", "--stop-stage", "13", "--hours", "0.05", "--preset", "tiny",
                      "--hidden-dim", "96",
                      "--mono-subset", "0", "--mono-gauss", "150", "--mono-iters", "8", "--tri-leaves", "60",
                      "--tri-gauss", "300", "--gmm-iters", "6", "--members", "2", "--epochs", "1",
                      "--temperatures", "1 2", "--subset-temperatures", "2 5", "--subset", "0.3",
                      "--subset-epochs", "2", "--threads", "1", "--lmwts", "9-11", "--word-ins-penalties", "0,0.5",
                      "--sweep-beam", "6", "--lattice-beam", "3", "--beam", "6", "--max-active", "300",
                      "--results", str(tmp_path / "results"))
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    res = json.loads((tmp_path / "results" / "results.json").read_text())
    systems = [r["system"] for r in res["table1"]]
    assert systems[0] == "GMM-HMM triphone" and any(s.startswith("Distilled") for s in systems)
    decoded = [r for r in res["table1"] if not r["system"].startswith("Mean") and "geometric" not in r["system"]]
    assert len(decoded) == 4  # GMM, baseline, ensemble, distilled
    for row in decoded:
        assert row["test_wer"] is not None and 0 <= row["test_wer"]["wer"]
    for row in res["table1"]:
        if row["dev_frame_acc"] is not None:
            assert 0 < row["dev_frame_acc"] < 1
    assert len(res["table5"]) == 3 and res["table5"][1]["train_frames"] < res["table5"][0]["train_frames"]
    # Every table comparison has a speaker-level interval around its difference; WER intervals stay >= 0.
    compared = {(c["a"], c["b"], c["metric"]) for c in res["comparisons"]}
    assert {("ensemble", "baseline", "wer"), ("distilled", "ensemble", "frame_acc"), ("baseline", "gmm_tri", "wer"),
            ("soft_subset", "hard_subset", "frame_acc")} <= compared
    for c in res["comparisons"]:
        assert c["ci95"][0] <= c["diff"] <= c["ci95"][1] and c["excludes_zero"] == (c["ci95"][0] * c["ci95"][1] > 0)
        # an interval holding zero (around a non-zero difference) says how many speakers would exclude zero
        need = c["speakers_to_exclude_zero"]
        assert (need is None) == (c["excludes_zero"] or c["diff"] == 0) and (need is None or need > c["speakers"])
    for row in decoded:
        assert 0 <= row["test_wer"]["ci95"][0] <= row["test_wer"]["wer"] <= row["test_wer"]["ci95"][1]
    # The share of the ensemble's gain kept has an interval wherever it has a value (same bootstrap).
    for ref, by_split in res["gain_kept"].items():
        for split, share in by_split.items():
            ci = res["gain_kept_ci95"][ref].get(split)
            assert (ci is None) == (share is None) and (ci is None or ci[0] <= ci[1])
    # One teacher pass serves both sweeps; its distance from the exact teacher is measured at each of their T.
    assert set(res["distillation"]["cache_check"]["temperature"]) == {"1", "2", "5"}
    # Table 5's soft-target model is chosen on dev among the temperatures, like the distilled one.
    soft = res["table5_soft_students"]
    assert set(soft["students"]) == {"soft_subset_T2", "soft_subset_T5"} and soft["chosen_on_dev"] in soft["students"]
    assert res["table5"][2]["system"].endswith("chosen on dev)")
    assert set(res["stage_seconds"]) >= {str(n) for n in range(12)}
    assert all(h["lr"] > 0 for h in res["systems"]["member0"]["history"])
    # --hidden-dim reaches every DNN the recipe trains: members, students, the Table-5 pair
    trained = ("member0", "member1", "student_T1", "student_T2", "hard_subset", "soft_subset_T2", "soft_subset_T5")
    assert {res["systems"][m]["options"]["hidden_dim"] for m in trained} == {96}
    results_md = (tmp_path / "results" / "RESULTS.md").read_text()
    assert results_md.startswith("# Results")
    # the DNNs trained in the dtype that --precision auto means on this machine, and the report says so
    import torch
    from asrdistill.nnet.device import training_dtype

    dtype = str(training_dtype(torch.device("cpu"), "auto")).replace("torch.", "")
    assert {res["systems"][m]["training_dtype"] for m in ("member0", "member1", "hard_subset")} == {dtype}
    assert f"DNN training passes in {dtype} (" in results_md
    assert (tmp_path / "exp" / "export" / "model.onnx").is_file()
    wavs = [line.split()[1] for line in (tmp_path / "data" / "test" / "wav.scp").read_text().splitlines()[:3]]
    for w in wavs:  # stage 13 transcribed the first three test WAVs, one line each
        assert w in proc.stdout
