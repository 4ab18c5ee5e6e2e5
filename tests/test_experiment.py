"""The experiment layer: fingerprints, step records (skip / redo / resume), the systems manifest, the layout."""
from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path

import pytest

from asrdistill.errors import UserFacingError
from asrdistill.experiment import ExpLayout, Manifest, Step, input_fingerprint, read_record, stale_inputs
from asrdistill.experiment.step import remove_leftovers


def _data_dir(root: Path, n: int = 3) -> Path:
    d = root / "data"
    d.mkdir(parents=True)
    (d / "wav").mkdir()
    lines = []
    for i in range(n):
        wav = d / "wav" / f"u{i}.wav"
        wav.write_bytes(b"RIFF" + bytes(40 + i))
        lines.append(f"u{i} {wav}\n")
    (d / "wav.scp").write_text("".join(lines))
    (d / "text").write_text("".join(f"u{i} hello world\n" for i in range(n)))
    return d


def _run(out: Path, options: dict, inputs: dict, text: str = "result") -> Step:
    step = Step(out, "toy", options, inputs)
    if not step.skip():
        step.begin()
        out.mkdir(parents=True, exist_ok=True)
        (out / "result.txt").write_text(text)
        step.complete(["result.txt"])
    return step


def test_fingerprints_follow_contents_not_paths(tmp_path):
    d = _data_dir(tmp_path)
    fp = input_fingerprint(d)
    assert input_fingerprint(d) == fp
    (d / "text").write_text("u0 other words\nu1 hello world\nu2 hello world\n")
    assert input_fingerprint(d) != fp
    fp2 = input_fingerprint(d)
    wav = d / "wav" / "u1.wav"
    wav.write_bytes(wav.read_bytes() + b"\0")  # the audio changed: size differs
    assert input_fingerprint(d) != fp2
    f = tmp_path / "model.bin"
    f.write_bytes(b"abc")
    assert input_fingerprint(f) != input_fingerprint(d)
    with pytest.raises(UserFacingError, match="no such file"):
        input_fingerprint(tmp_path / "missing")


def test_step_skips_same_work_redoes_changed_work_and_names_the_change(tmp_path, caplog):
    d = _data_dir(tmp_path)
    out = tmp_path / "out"
    first = _run(out, {"leaves": 100}, {"data": d})
    record = read_record(out)
    assert record["fingerprint"] == first.fingerprint and "result.txt" in record["outputs"]
    stamp = (out / "result.txt").stat().st_mtime_ns
    with caplog.at_level(logging.INFO):
        again = _run(out, {"leaves": 100}, {"data": d}, text="not written")
    assert again.done and "SKIPPING" in caplog.text
    assert (out / "result.txt").stat().st_mtime_ns == stamp
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _run(out, {"leaves": 50}, {"data": d}, text="new")
    assert "redoing toy" in caplog.text and "option leaves: 100 -> 50" in caplog.text
    assert (out / "result.txt").read_text() == "new"
    # an upstream change (the data dir) redoes the step, naming the input
    (d / "text").write_text("u0 a\nu1 b\nu2 c\n")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        _run(out, {"leaves": 50}, {"data": d}, text="newer")
    assert f"input data ({d}) changed" in caplog.text


def test_downstream_fingerprints_change_with_upstream_records(tmp_path):
    d = _data_dir(tmp_path)
    up, down = tmp_path / "up", tmp_path / "down"
    _run(up, {"k": 1}, {"data": d})
    fp_down = _run(down, {}, {"up": up}).fingerprint
    _run(up, {"k": 2}, {"data": d})          # the upstream step is redone with another option
    assert stale_inputs(down) == [f"up ({up})"]
    assert Step(down, "toy", {}, {"up": up}).fingerprint != fp_down


def test_interrupted_run_is_resumable_only_for_the_same_work(tmp_path):
    out = tmp_path / "out"
    step = Step(out, "toy", {"a": 1}, {})
    assert step.begin() is False                 # nothing to resume
    assert not out.exists()                      # a failure leaves no output dir behind
    assert Step(out, "toy", {"a": 1}, {}).resumable
    assert not Step(out, "toy", {"a": 2}, {}).resumable
    out.mkdir()
    (out / "x").write_text("1")
    step.complete(["x"])
    assert not step.started_path.exists() and read_record(out)["outputs"]["x"]


def test_leftovers_of_killed_atomic_writes_are_removed(tmp_path):
    out = tmp_path / "feats"
    out.mkdir()
    (tmp_path / ".feats.abc123.tmp").mkdir()
    (out / ".frames.f32.x.tmp").mkdir()
    removed = remove_leftovers(out)
    assert len(removed) == 2 and not list(tmp_path.glob(".*.tmp")) and not list(out.glob(".*.tmp"))


def test_missing_expected_output_is_an_error(tmp_path):
    step = Step(tmp_path / "o", "toy", {}, {})
    step.begin()
    (tmp_path / "o").mkdir()
    with pytest.raises(UserFacingError, match="expected output"):
        step.complete(["final.mdl"])
    assert read_record(tmp_path / "o") is None


def test_manifest_systems_aliases_decodes_and_staleness(tmp_path):
    d = _data_dir(tmp_path)
    exp = tmp_path / "exp"
    ens = exp / "dnn" / "ensemble"
    _run(ens, {"members": 2}, {"data": d})
    (ens / "member0").mkdir()
    (ens / "member0" / "final.mdl").write_bytes(b"m0")
    student = exp / "dnn" / "distill_T2"
    _run(student, {"temperature": 2.0}, {"teacher": ens})
    (student / "final.mdl").write_bytes(b"s")
    m = Manifest(exp)
    m.add_system("ensemble", ens, "ensemble")
    m.add_system("member0", ens / "member0" / "final.mdl", "dnn")   # the record comes from the ensemble dir
    m.add_system("student_T2", student / "final.mdl", "student")
    m.alias("distilled", "student_T2", chosen={"by": "dev frame accuracy"})
    m = Manifest(exp)  # read back from disk
    assert m.get("distilled", "options.temperature") == 2.0
    assert m.model_path("distilled") == student / "final.mdl"
    assert m.system("distilled")["chosen"]["by"] == "dev frame accuracy"
    assert m.get("member0", "record.step") == "toy" and m.system("member0")["dir"] == str(ens)
    with pytest.raises(UserFacingError, match="no system 'nothing'"):
        m.get("nothing")
    dec = exp / "decode" / "distilled_dev"
    _run(dec, {"acoustic_scale": 0.1}, {"model": student / "final.mdl"})
    m.add_decode("distilled", "dev", dec)
    assert m.decode_dir("distilled", "dev") == dec
    assert m.get("decode:distilled:dev", "options.acoustic_scale") == 0.1
    assert m.stale() == {}
    (student / "final.mdl").write_bytes(b"retrained")     # the decoded model changed afterwards
    assert list(m.stale()) == ["decode distilled dev"]
    with pytest.raises(UserFacingError, match="kind"):
        m.add_system("x", ens, "nonsense")


def test_layout_shell_names_every_path(tmp_path):
    layout = ExpLayout.of("data", "exp")
    text = layout.shell()
    env = subprocess.run(["bash", "-c", text + 'echo "$tri_ali_dev|$(student_dir 2.0)|$(decode_dir baseline test)|'
                                                '$(member_dir 3)|$local_dict"'],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert env == "exp/tri/ali_dev|exp/dnn/distill_T2|exp/decode/baseline_test|exp/dnn/ensemble/member3|data/local/dict"
    assert layout.student(2.0) == Path("exp/dnn/distill_T2") and layout.feats("dev") == Path("data/fbank/dev")


def test_manifest_cli_get_and_check(tmp_path, capsys):
    from asrdistill.cli import main

    d = _data_dir(tmp_path)
    exp = tmp_path / "exp"
    _run(exp / "tri", {"leaves": 60}, {"data": d})
    (exp / "tri" / "final.mdl").write_bytes(b"gmm")
    assert main(["manifest", "add", str(exp), "gmm_tri", str(exp / "tri" / "final.mdl"), "--kind", "gmm"]) == 0
    capsys.readouterr()
    assert main(["manifest", "get", str(exp), "gmm_tri", "options.leaves"]) == 0
    assert capsys.readouterr().out.strip() == "60"
    assert main(["manifest", "check", str(exp)]) == 0
    (d / "text").write_text("u0 changed\n")
    assert main(["manifest", "check", str(exp)]) == 1
    assert "gmm_tri" in capsys.readouterr().out
    assert json.loads((exp / "systems.json").read_text())["systems"]["gmm_tri"]["kind"] == "gmm"


def test_manifest_drop_decode(tmp_path):
    from asrdistill.errors import UserFacingError
    from asrdistill.experiment.manifest import Manifest

    m = Manifest(tmp_path)
    m.data["decodes"]["sys"] = {"dev": "a", "test": "b"}
    m.drop_decode("sys", "dev")
    assert Manifest(tmp_path).data["decodes"] == {"sys": {"test": "b"}}
    m.drop_decode("sys", "test")
    assert "sys" not in Manifest(tmp_path).data["decodes"]
    with pytest.raises(UserFacingError):
        m.drop_decode("sys", "dev")


def test_an_option_added_later_leaves_finished_work_alone(tmp_path):
    """keep_lr_epochs came after experiments existed: at 0 (its old behaviour) it is not in the fingerprint, so
    their DNNs are not retrained; set, it is."""
    import argparse

    from asrdistill.commands import command_step

    def fingerprint(**opts):
        return command_step(argparse.Namespace(lr=0.02, **opts), "train-dnn", str(tmp_path / "out"), {}).fingerprint

    assert fingerprint(keep_lr_epochs=0) == fingerprint()
    assert fingerprint(keep_lr_epochs=3) != fingerprint()
