"""Reliability and security on the data / IO side (issue 10): one test per bad input or crash, on tiny data.

Commands in data files, NaN/Inf, silent subsets, encodings and byte-order marks, disk-full / read-only /
corrupt files, audio checks, segments and channels, and kill -9 during features, GMM training, DNN training
and decoding followed by a rerun that must give byte-identical outputs to an uninterrupted run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from asrdistill.cli import main
from asrdistill.data.kaldi_dir import write_data_dir
from asrdistill.errors import UserFacingError
from testsignal import speech_like
from toy_corpus import make_toy_corpus
from toy_frames import write_toy_dirs

PIPE_FORMS = ["touch {flag} |", "touch {flag} |:5", "| touch {flag}", "touch {flag}|:0[0:1]", "ark:touch {flag} |"]


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _wav(path: Path, seconds: float = 0.5, rate: int = 16000, seed: int = 0, channels: int = 1) -> Path:
    x = speech_like(seconds, rate, seed=seed).astype(np.int16)
    if channels > 1:
        x = np.stack([x] + [np.roll(x, 37 * c) for c in range(1, channels)], axis=1)
    sf.write(path, x, rate, subtype="PCM_16")
    return path


def _audio_dir(root: Path, n: int = 4, rate: int = 16000, seconds: float = 0.5, spk: int = 2, name: str = "data",
               **kw) -> Path:
    wavs = root / f"{name}_wav"
    wavs.mkdir(parents=True, exist_ok=True)
    utts = {f"s{i % spk}-u{i:03d}": f"s{i % spk}" for i in range(n)}
    scp = {u: str(_wav(wavs / f"{u}.wav", seconds, rate, seed=i, **kw)) for i, u in enumerate(utts)}
    return write_data_dir(root / name, scp, {u: "bat cat" for u in utts}, utts)


# === 1. commands in data files =========================================================================
@pytest.mark.parametrize("form", PIPE_FORMS)
def test_every_command_form_in_an_scp_is_refused_naming_file_line_and_utterance(tmp_path, form):
    from asrdistill.kaldi_tables import read_int_vector_table, read_matrix_table

    flag = tmp_path / "PWNED"
    kaldiio.save_ark(str(tmp_path / "m.ark"), {"u1": np.ones((2, 3), np.float32)}, scp=str(tmp_path / "m.scp"))
    good = (tmp_path / "m.scp").read_text()
    (tmp_path / "x.scp").write_text(good + "u2 " + form.format(flag=flag) + "\n")
    for reader in (read_matrix_table, read_int_vector_table):
        with pytest.raises(UserFacingError, match=r"x\.scp:2 \(utterance u2\):.*--allow-pipes"):
            reader(tmp_path / "x.scp")
    assert not flag.exists()


def test_toolkit_tables_never_run_commands_and_user_tables_need_allow_pipes(tmp_path, capsys):
    """pdf.scp (score-frames, train-dnn) and ali.scp (train-tri, score-boundaries) are the toolkit's own: a
    command is refused whatever the flag; import-ali and decode --loglikes run one only with --allow-pipes."""
    from asrdistill.align.alidir import read_alignment_dir
    from asrdistill.decode.sources import matrix_source
    from asrdistill.nnet.data import read_pdf_alignments

    write_toy_dirs(tmp_path / "f", tmp_path / "a", num_utts=3, num_pdfs=5, mean_frames=10)
    flag = tmp_path / "PWNED"
    good = (tmp_path / "a" / "pdf.scp").read_text()
    lines = good.splitlines()
    utt = lines[1].split()[0]
    lines[1] = f"{utt} touch {flag} |"
    (tmp_path / "a" / "pdf.scp").write_text("\n".join(lines) + "\n")
    with pytest.raises(UserFacingError, match=rf"pdf\.scp:2 \(utterance {utt}\)"):
        read_pdf_alignments(tmp_path / "a")
    shutil.copy(tmp_path / "a" / "pdf.scp", tmp_path / "a" / "ali.scp")
    (tmp_path / "a" / "pdf.scp").write_text(good)
    (tmp_path / "a" / "pdf_counts.txt").write_text("[ 1 1 1 1 1 ]\n")
    with pytest.raises(UserFacingError, match=r"ali\.scp:2"):
        read_alignment_dir(tmp_path / "a").transition_ids()

    # import-ali: the user's scp; a command prints one int vector
    one = tmp_path / "one.vec"
    frames = json.loads((tmp_path / "f" / "frames.json").read_text())
    lengths = np.diff(frames["offsets"])
    alis = {u: np.zeros(n, np.int32) for u, n in zip(frames["utts"], lengths)}
    kaldiio.save_ark(str(tmp_path / "mine.ark"), alis, scp=str(tmp_path / "mine.scp"))
    kaldiio.save_mat(str(one), alis[utt])
    rows = (tmp_path / "mine.scp").read_text().splitlines()
    rows[1] = f"{utt} cat {one} && touch {flag} |"
    (tmp_path / "mine.scp").write_text("\n".join(rows) + "\n")
    args = ["import-ali", str(tmp_path / "mine.scp"), str(tmp_path / "f"), str(tmp_path / "imp"), "--num-pdfs", "5"]
    assert main(args) == 1
    assert f"mine.scp:2 (utterance {utt})" in _err(capsys) and not flag.exists()
    assert not (tmp_path / "imp" / ".done").exists()
    assert main(args + ["--allow-pipes"]) == 0 and flag.exists()
    assert read_pdf_alignments(tmp_path / "imp").keys() == alis.keys()

    # decode --loglikes: refused, then a failing command (kaldiio's bare AssertionError before) is named
    kaldiio.save_ark(str(tmp_path / "ll.ark"), {"u1": np.zeros((4, 5), np.float32)}, scp=str(tmp_path / "ll.scp"))
    (tmp_path / "ll.scp").write_text((tmp_path / "ll.scp").read_text() + "u2 false |\nu3 echo garbage |\n")
    with pytest.raises(UserFacingError, match=r"ll\.scp:2 \(utterance u2\).*--allow-pipes"):
        matrix_source(tmp_path / "ll.scp")
    with pytest.raises(UserFacingError, match=r"ll\.scp:2 \(utterance u2\): command 'false' failed with exit status 1"):
        matrix_source(tmp_path / "ll.scp", allow_pipes=True)
    (tmp_path / "ll.scp").write_text((tmp_path / "ll.scp").read_text().replace("u2 false |\n", ""))
    with pytest.raises(UserFacingError, match=r"ll\.scp:2 \(utterance u3\): the output of 'echo garbage \|': not a Kaldi matrix"):
        matrix_source(tmp_path / "ll.scp", allow_pipes=True)


def test_pickled_objects_in_an_archive_are_never_loaded(tmp_path):
    """kaldiio reads a 'PKL' object with pickle.load: a crafted .ark would run code."""
    import pickle
    import struct

    from asrdistill.kaldi_tables import read_matrix_table

    flag = tmp_path / "PWNED"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {flag}",))

    data = pickle.dumps(Exploit())
    (tmp_path / "evil.ark").write_bytes(b"u1 PKL\x04" + struct.pack("<i", len(data)) + data)
    with pytest.raises(UserFacingError, match=r"evil\.ark \(utterance u1\): a pickled object"):
        read_matrix_table(tmp_path / "evil.ark")
    assert not flag.exists()
    # the same object behind an scp offset
    (tmp_path / "evil.scp").write_text(f"u1 {tmp_path / 'evil.ark'}:3\n")
    with pytest.raises(UserFacingError, match=r"evil\.scp:1 \(utterance u1\): a pickled object"):
        read_matrix_table(tmp_path / "evil.scp")
    assert not flag.exists()


# === 2. numerical guards ===============================================================================
@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    root = tmp_path_factory.mktemp("frames")
    write_toy_dirs(root / "ftr", root / "atr", num_utts=24, num_pdfs=20, mean_frames=40, seed=0, unaligned=2)
    write_toy_dirs(root / "fdv", root / "adv", num_utts=6, num_pdfs=20, mean_frames=40, seed=1)
    return root


def _poison(feat_dir: Path, utt_index: int, value: float) -> str:
    info = json.loads((feat_dir / "frames.json").read_text())
    mm = np.memmap(feat_dir / "frames.f32", dtype="<f4", mode="r+").reshape(-1, info["dim"])
    mm[info["offsets"][utt_index] + 3, 7] = value
    mm.flush()
    return info["utts"][utt_index]


def test_nan_features_fail_score_frames_and_train_dnn_naming_the_utterance(frames, tmp_path, capsys):
    from asrdistill.nnet.model import DnnConfig, build_model, save_model

    fdv = tmp_path / "fdv"
    shutil.copytree(frames / "fdv", fdv)
    bad = _poison(fdv, 2, np.nan)
    save_model(tmp_path / "m.mdl", build_model(DnnConfig(num_pdfs=20, left=2, right=2, hidden_layers=1,
                                                         hidden_dim=16), seed=0))
    assert main(["score-frames", "--model", str(tmp_path / "m.mdl"), "--feats", str(fdv), "--ali",
                 str(frames / "adv"), "--device", "cpu"]) == 1
    out = capsys.readouterr()
    assert "ce nan" not in out.out and f"utterance {bad}" in out.err and "frame 3, dim 7" in out.err
    assert main(["train-dnn", "--feats", str(frames / "ftr"), "--ali", str(frames / "atr"), "--dev-feats", str(fdv),
                 "--dev-ali", str(frames / "adv"), "--preset", "tiny", "--left", "2", "--right", "2",
                 "--max-epochs", "1", "--threads", "1", "--device", "cpu", "--no-tensorboard",
                 "--out", str(tmp_path / "dnn")]) == 1
    assert f"utterance {bad}" in _err(capsys) and not (tmp_path / "dnn" / ".done").exists()


def test_nan_features_fail_gmm_training_naming_the_utterance(gmm, tmp_path, capsys):
    feats = tmp_path / "feats"
    shutil.copytree(gmm["corpus"].feat_dir, feats)
    bad = _poison(feats, 5, np.inf)
    assert main(["train-mono", str(gmm["corpus"].data_dir), str(feats), str(gmm["lang"]), str(tmp_path / "mono"),
                 *gmm["opts"]]) == 1
    assert f"(utterance {bad}): inf at frame 3, dim 7" in _err(capsys) and not (tmp_path / "mono").exists()


def test_inf_loglikes_and_fractional_alignments_are_errors_naming_utterance_and_frame(tmp_path):
    from asrdistill.kaldi_tables import read_int_vector_table, read_matrix_table

    ll = np.zeros((5, 4), np.float32)
    ll[2, 1] = -np.inf
    kaldiio.save_ark(str(tmp_path / "ll.ark"), {"a": np.zeros((2, 4), np.float32), "b": ll})
    with pytest.raises(UserFacingError, match=r"ll\.ark \(utterance b\): -inf at frame 2, column 1"):
        read_matrix_table(tmp_path / "ll.ark")
    kaldiio.save_ark(str(tmp_path / "ali.ark"), {"a": np.array([1.0, 2.0, 2.5], np.float32)})
    with pytest.raises(UserFacingError, match=r"ali\.ark \(utterance a\): 2\.5 at frame 2 is not an integer"):
        read_int_vector_table(tmp_path / "ali.ark")


# === 3. no silent subsets ===============================================================================
def test_unaligned_utterances_are_named_when_loading_frames(frames, caplog):
    from asrdistill.nnet.data import load_frame_dataset

    with caplog.at_level(logging.WARNING):
        data = load_frame_dataset(frames / "ftr", frames / "atr")
    names = json.loads((frames / "ftr" / "frames.json").read_text())["utts"][-2:]
    assert all(u not in data.utts for u in names)
    assert all(u in caplog.text for u in names) and "2 of 24 utterances have no alignment" in caplog.text


def test_boundary_scoring_counts_unaligned_utterances_as_misses(caplog):
    from asrdistill.align.boundaries import score_boundaries

    ref = {"a": [(0.0, 0.1, "SIL"), (0.1, 0.3, "B"), (0.3, 0.5, "AA")], "b": [(0.0, 0.2, "K"), (0.2, 0.4, "IY")]}
    with caplog.at_level(logging.WARNING):
        r = score_boundaries(ref, {"a": ref["a"], "c": [(0.0, 0.1, "T")]})
    assert r["unaligned_utts"] == ["b"] and r["unreferenced_utts"] == ["c"]
    assert (r["num_ref_phones"], r["num_matched_phones"], r["matched_fraction"]) == (4, 2, 0.5)
    assert "no alignment" in caplog.text and ": b" in caplog.text


def test_prepare_data_refuses_a_split_at_another_sample_rate(tmp_path, capsys):
    from toy_corpus import write_dict_dir

    write_dict_dir(tmp_path / "dict")
    train = _audio_dir(tmp_path, rate=16000, name="train")
    dev = _audio_dir(tmp_path, rate=8000, name="dev")
    args = ["prepare-data", "--dict", str(tmp_path / "dict"), "--out", str(tmp_path / "out"),
            "--split", f"train={train}", "--split", f"dev={dev}"]
    assert main(args) == 1
    err = _err(capsys)
    assert "split dev is sampled at 8000 Hz but split train at 16000 Hz" in err and str(dev) in err
    assert not (tmp_path / "out" / "dev").exists()
    assert (tmp_path / "out" / "train" / ".done").is_file()
    # also when train was prepared by an earlier run (its rate comes from the record)
    assert main(args) == 1 and "8000 Hz" in _err(capsys)
    dev16 = _audio_dir(tmp_path, rate=16000, name="dev16")
    assert main(args[:-1] + [f"dev={dev16}"]) == 0


# === 4. clear errors ====================================================================================
def test_bom_on_the_lexicon_unk_line_keeps_unk_and_bom_in_text_is_stripped(tmp_path):
    from asrdistill.data.kaldi_dir import read_data_dir
    from asrdistill.lang.lexicon import check_transcripts, read_dict_dir
    from toy_corpus import write_dict_dir

    d = write_dict_dir(tmp_path / "dict")
    lex = (d / "lexicon.txt").read_bytes()
    assert lex.startswith(b"<UNK> ")
    (d / "lexicon.txt").write_bytes(b"\xef\xbb\xbf" + lex)
    dictionary = read_dict_dir(d)
    assert "<UNK>" in dictionary.words and not any(w.startswith("\ufeff") for w in dictionary.words)

    data = _audio_dir(tmp_path, n=3)
    (data / "text").write_bytes(b"\xef\xbb\xbf" + (data / "text").read_bytes())
    dd = read_data_dir(data)
    assert list(dd.text) == dd.utts and check_transcripts(dictionary, dd.text, str(data / "text")) == {}
    # a BOM inside a file (files concatenated) is an error at its own line
    (d / "lexicon.txt").write_bytes(lex + b"\xef\xbb\xbfzzz B\n")
    bom_line = lex.count(b"\n") + 1
    with pytest.raises(UserFacingError, match=rf"lexicon\.txt:{bom_line}: a byte-order mark"):
        read_dict_dir(d)
    (data / "text").write_bytes((data / "text").read_bytes()[3:].replace(b"\ns1", b"\n\xef\xbb\xbfs1"))
    with pytest.raises(UserFacingError, match=r"text:3: a UTF-8 byte-order mark"):
        read_data_dir(data)


def test_latin1_lexicon_is_named_with_its_line(tmp_path):
    from asrdistill.lang.lexicon import read_dict_dir
    from toy_corpus import write_dict_dir

    d = write_dict_dir(tmp_path / "dict")
    (d / "lexicon.txt").write_bytes((d / "lexicon.txt").read_bytes() + "caf\xe9 K AA\n".encode("latin-1"))
    n = (d / "lexicon.txt").read_bytes().count(b"\n")
    with pytest.raises(UserFacingError, match=rf"lexicon\.txt:{n}: not UTF-8 text \(byte 0xe9"):
        read_dict_dir(d)


def test_write_errors_name_the_file(tmp_path):
    import errno

    from asrdistill.errors import os_error_message, reported

    with pytest.raises(UserFacingError, match=r"out/x\.mdl: cannot save: No space left on device \(the disk is full"):
        with reported("out/x.mdl", "save"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    with pytest.raises(UserFacingError, match=r"m\.pt: cannot save: write failed with \d+ bytes free .*unexpected pos"):
        with reported(tmp_path / "m.pt", "save"):
            raise RuntimeError("[enforce fail at inline_container.cc:783] . PytorchStreamWriter failed writing file "
                               "data/3: unexpected pos 2048 vs 1024")
    with pytest.raises(ValueError):  # other errors pass through
        with reported(tmp_path, "save"):
            raise ValueError("a bug")
    assert os_error_message(PermissionError(errno.EACCES, "Permission denied", "/x/y")).startswith(
        "/x/y: Permission denied (check the permissions")


def _unshare_mount() -> list[str] | None:
    """A command prefix running the rest in a private mount namespace (root or user namespaces), or None."""
    if shutil.which("unshare") is None:
        return None
    prefix = [] if os.geteuid() == 0 else ["--user", "--map-root-user"]
    probe = subprocess.run(["unshare", *prefix, "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                           capture_output=True)
    return ["unshare", *prefix, "--mount"] if probe.returncode == 0 else None


def test_disk_full_during_feature_extraction_names_the_file(tmp_path):
    unshare = _unshare_mount()
    if unshare is None:
        pytest.skip("needs unshare and tmpfs mounts (a full disk is simulated with a 160 kB tmpfs)")
    data = _audio_dir(tmp_path, n=4, seconds=1.0)
    full = tmp_path / "full"
    full.mkdir()
    script = (f"mount -t tmpfs -o size=160k tmpfs {full} && exec {sys.executable} -m asrdistill.cli compute-feats "
              f"{data} {full}/fbank --nj 1 --no-progress")
    r = subprocess.run([*unshare, "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr and "No space left on device" in r.stderr and f"{full}/" in r.stderr


def test_read_only_output_dir_fails_before_training(tmp_path):
    unshare = _unshare_mount()
    if unshare is None:
        pytest.skip("needs unshare and tmpfs mounts (a read-only file system)")
    c = make_toy_corpus(tmp_path, num_utts=6)
    assert main(["prepare-lang", str(c.dict_dir), str(tmp_path / "lang")]) == 0
    ro = tmp_path / "ro"
    ro.mkdir()
    script = (f"mount -t tmpfs -o ro tmpfs {ro} && exec {sys.executable} -m asrdistill.cli train-mono {c.data_dir} "
              f"{c.feat_dir} {tmp_path / 'lang'} {ro}/mono --num-iters 2 --nj 1")
    r = subprocess.run([*unshare, "sh", "-c", script], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{ro}" in r.stderr and ("Read-only file system" in r.stderr or "not writable" in r.stderr)
    assert "mono equal-align" not in r.stderr and "like/frame" not in r.stderr  # no training happened


def test_truncated_gmm_model_and_corrupt_frame_index_are_named(gmm, tmp_path, capsys):
    from asrdistill.features.store import FrameStore
    from asrdistill.hmm.model import GmmHmm

    data = gmm["model"].read_bytes()
    (tmp_path / "final.mdl").write_bytes(data[: len(data) // 2])
    with pytest.raises(UserFacingError, match=r"final\.mdl: truncated or corrupt GMM-HMM model file"):
        GmmHmm.load(tmp_path / "final.mdl")
    (tmp_path / "empty.mdl").write_bytes(b"")
    with pytest.raises(UserFacingError, match=r"empty\.mdl: empty file"):
        GmmHmm.load(tmp_path / "empty.mdl")
    feats = tmp_path / "feats"
    shutil.copytree(gmm["corpus"].feat_dir, feats)
    (feats / "frames.json").write_text((feats / "frames.json").read_text()[:40])
    with pytest.raises(UserFacingError, match=r"frames\.json: corrupt frame store index"):
        FrameStore(feats)


# === 5. validate-data-dir opens every recording ==========================================================
@pytest.mark.parametrize("case", ["corrupt", "truncated", "empty", "mixed-rate", "stereo"])
def test_validate_data_dir_opens_every_recording(tmp_path, capsys, case):
    data = _audio_dir(tmp_path, n=4)
    rec = "s1-u003"
    wav = tmp_path / "data_wav" / f"{rec}.wav"
    raw = wav.read_bytes()
    if case == "corrupt":
        wav.write_bytes(b"RIFF" + os.urandom(200))
    elif case == "truncated":
        wav.write_bytes(raw[: len(raw) // 2])
    elif case == "empty":
        wav.write_bytes(raw[:44])
    elif case == "mixed-rate":
        _wav(wav, rate=8000)
    else:
        _wav(wav, channels=2)
    assert main(["validate-data-dir", str(data)]) == 1
    err = _err(capsys)
    assert f"wav.scp:4: recording '{rec}'" in err
    assert {"corrupt": "cannot read audio", "truncated": "is truncated", "empty": "holds no samples",
            "mixed-rate": "8000 Hz but recording 's0-u000' at 16000 Hz", "stereo": "has 2 channels"}[case] in err
    assert main(["validate-data-dir", str(data), "--no-audio-check"]) == 0
    if case == "stereo":
        assert main(["validate-data-dir", str(data), "--channel", "1"]) == 0
    capsys.readouterr()


# === 6. audio reading: pipes, segments once per recording, channels ===================================
def test_a_data_dir_of_pipes_needs_allow_pipes_and_gives_the_same_features(tmp_path, capsys):
    files = _audio_dir(tmp_path, n=4, name="files")
    piped = tmp_path / "piped"
    shutil.copytree(files, piped)
    (piped / "wav.scp").write_text("".join(f"{rec} cat {path} |\n" for rec, path in
                                           (line.split() for line in (files / "wav.scp").read_text().splitlines())))
    assert main(["validate-data-dir", str(piped)]) == 1
    assert "wav.scp:1: recording 's0-u000' is a shell pipe" in _err(capsys)
    assert main(["validate-data-dir", str(piped), "--allow-pipes"]) == 0 and "at 16000 Hz" in capsys.readouterr().out
    assert main(["compute-feats", str(piped), str(tmp_path / "fp"), "--nj", "1", "--no-progress"]) == 1
    assert "--allow-pipes" in _err(capsys)
    for d, extra in (("fp", ["--allow-pipes"]), ("ff", [])):
        assert main(["compute-feats", str(piped if d == "fp" else files), str(tmp_path / d), "--nj", "1",
                     "--no-progress", *extra]) == 0
    assert _sha(tmp_path / "fp" / "frames.f32") == _sha(tmp_path / "ff" / "frames.f32")



def test_segments_read_each_recording_once(tmp_path, monkeypatch):
    import asrdistill.data.kaldi_dir as kd
    from asrdistill.data.kaldi_dir import read_data_dir
    from asrdistill.features.extract import _extract_chunk, _split_chunks
    from asrdistill.features.fbank import FbankConfig

    recs = {f"r{i}": str(_wav(tmp_path / f"r{i}.wav", seconds=2.0, seed=i)) for i in range(2)}
    segs = {f"r{i}-s{k}": (f"r{i}", 0.4 * k, 0.4 * k + 0.4) for i in range(2) for k in range(4)}
    d = write_data_dir(tmp_path / "d", recs, {u: "a" for u in segs}, {u: u.split("-")[0] for u in segs},
                       segments=segs)
    dd = read_data_dir(d)
    calls = []
    real = kd.read_recording
    monkeypatch.setattr(kd, "read_recording", lambda dd_, rec, ch=None: calls.append(rec) or real(dd_, rec, ch))
    res = _extract_chunk(dd, dd.utts, FbankConfig(), str(tmp_path / "piece"))
    assert len(res.utts) == 8 and sorted(calls) == ["r0", "r1"]
    # chunk boundaries never split a recording's run of segments
    chunks = _split_chunks(dd.utts, 5, {u: dd.recording_of(u) for u in dd.utts})
    assert [len(c) for c in chunks] == [4, 4]


def test_multichannel_audio_needs_a_channel(tmp_path, capsys):
    data = _audio_dir(tmp_path, n=2, channels=2)
    assert main(["compute-feats", str(data), str(tmp_path / "fb"), "--nj", "1", "--no-progress"]) == 1
    assert "has 2 channels; choose one with --channel N" in _err(capsys)
    assert main(["compute-feats", str(data), str(tmp_path / "fb"), "--nj", "1", "--no-progress", "--channel", "1"]) == 0
    # channel 1 of the stereo files = the same samples written as mono files
    mono = tmp_path / "mono"
    scp = {}
    for line in (data / "wav.scp").read_text().splitlines():
        rec, path = line.split()
        x, rate = sf.read(path, dtype="int16")
        scp[rec] = str(tmp_path / f"{rec}_1.wav")
        sf.write(scp[rec], x[:, 1], rate, subtype="PCM_16")
    utts = {u: u.split("-")[0] for u in scp}
    write_data_dir(mono, scp, {u: "x" for u in utts}, utts)
    assert main(["compute-feats", str(mono), str(tmp_path / "fb1"), "--nj", "1", "--no-progress"]) == 0
    assert _sha(tmp_path / "fb" / "frames.f32") == _sha(tmp_path / "fb1" / "frames.f32")


def test_alignment_lists_utterances_without_features_in_failed(gmm, tmp_path, caplog):
    """An utterance with a transcript but no features (e.g. too short for one frame) is named and in failed.txt."""
    c = gmm["corpus"]
    data = tmp_path / "data"
    shutil.copytree(c.data_dir, data)
    extra = "s1-9999"  # sorts after every utterance of speaker s1
    for name, line in (("text", f"{extra} bat\n"), ("utt2spk", f"{extra} s1\n"), ("wav.scp", f"{extra} /dev/null\n")):
        (data / name).write_text((data / name).read_text() + line)
    (data / "spk2utt").unlink()
    with caplog.at_level(logging.WARNING):
        assert main(["align", str(data), str(c.feat_dir), str(gmm["lang"]), str(gmm["model"].parent),
                     str(tmp_path / "ali"), "--nj", "1"]) == 0
    assert extra in (tmp_path / "ali" / "failed.txt").read_text().split()
    assert f"no features in {c.feat_dir} (listed in failed.txt): {extra}" in caplog.text


# === 7. kill -9 and rerun: byte-identical outputs ========================================================
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "asrdistill.cli", *args]


def _kill_partway(cmd: list[str], out: Path, ready, delay: float) -> None:
    """Start ``cmd``, wait until ``ready()`` (the work is under way), wait ``delay`` s more, kill -9 it (its
    worker processes too). Retried with shorter delays if the command finished first."""
    started = out.parent / f".{out.name}.started"
    for attempt in range(4):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 300
        while proc.poll() is None and not ready() and time.monotonic() < deadline:
            time.sleep(0.01)
        end = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < end:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # orphaned workers, if any
            except ProcessLookupError:
                pass
            if not (out / ".done").exists():
                assert started.is_file()  # the start marker of the interrupted step is left behind
                print(f"killed {cmd[3]} (try {attempt + 1}, {delay:.2f} s after ready)")
                return
        stderr = proc.stderr.read().decode(errors="replace")
        assert proc.returncode in (0, -signal.SIGKILL), stderr
        shutil.rmtree(out, ignore_errors=True)  # it finished before the kill: try again, earlier
        delay /= 4
    pytest.fail(f"{cmd[3]} always finished before it could be killed")


def _hashes(directory: Path, names) -> dict[str, str]:
    return {n: _sha(directory / n) for n in names}


@pytest.fixture(scope="module")
def gmm(tmp_path_factory):
    """A toy corpus, its lang dir and an (uninterrupted) monophone GMM-HMM trained by the CLI."""
    root = tmp_path_factory.mktemp("gmm")
    c = make_toy_corpus(root, num_utts=40)
    lang = root / "lang"
    assert main(["prepare-lang", str(c.dict_dir), str(lang)]) == 0
    args = [str(c.data_dir), str(c.feat_dir), str(lang)]
    opts = ["--num-iters", "8", "--num-gauss", "80", "--max-iter-inc", "6", "--realign-iters", "1 2 4 6", "--nj", "1"]
    t0 = time.monotonic()
    assert main(["train-mono", *args, str(root / "ref" / "mono"), *opts]) == 0
    seconds = time.monotonic() - t0
    return {"root": root, "corpus": c, "lang": lang, "args": args, "opts": opts, "seconds": seconds,
            "model": root / "ref" / "mono" / "final.mdl"}


def test_kill_during_feature_extraction_then_rerun_is_byte_identical(tmp_path):
    data = _audio_dir(tmp_path, n=40, seconds=1.0, spk=4)
    opts = ["--nj", "1", "--no-progress"]
    assert main(["compute-feats", str(data), str(tmp_path / "ref"), *opts]) == 0
    out = tmp_path / "killed"
    pieces = lambda: len(list(tmp_path.glob(".killed.*.tmp/killed/pieces/*.f32"))) >= 8  # noqa: E731
    _kill_partway(_cli("compute-feats", str(data), str(out), *opts), out, pieces, 0.0)
    assert list(tmp_path.glob(".killed.*.tmp"))  # what the killed run left behind
    assert main(["compute-feats", str(data), str(out), *opts]) == 0
    assert not list(tmp_path.glob(".killed.*.tmp"))
    names = ["frames.f32", "frames.json", "feats.ark", "cmvn.ark", "fbank.json", "utt2num_frames"]
    assert _hashes(out, names) == _hashes(tmp_path / "ref", names)


def test_kill_during_gmm_training_then_rerun_is_byte_identical(gmm, tmp_path):
    out = tmp_path / "mono"
    started = tmp_path / ".mono.started"
    _kill_partway(_cli("train-mono", *gmm["args"], str(out), *gmm["opts"]), out, started.is_file,
                  gmm["seconds"] / 2)
    assert main(["train-mono", *gmm["args"], str(out), *gmm["opts"]]) == 0
    assert _sha(out / "final.mdl") == _sha(gmm["model"])


def test_kill_during_dnn_training_then_resume_is_byte_identical(frames, tmp_path, caplog):
    opts = ["--feats", str(frames / "ftr"), "--ali", str(frames / "atr"), "--dev-feats", str(frames / "fdv"),
            "--dev-ali", str(frames / "adv"), "--preset", "tiny", "--left", "2", "--right", "2", "--max-epochs", "4",
            "--min-epochs", "4", "--batch-size", "64", "--threads", "1", "--device", "cpu", "--no-tensorboard"]
    assert main(["train-dnn", *opts, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "dnn"
    _kill_partway(_cli("train-dnn", *opts, "--out", str(out)), out, (out / "checkpoints" / "last.pt").is_file, 0.0)
    with caplog.at_level(logging.INFO):
        assert main(["train-dnn", *opts, "--out", str(out)]) == 0
    assert "resuming after epoch" in caplog.text  # continued from the checkpoint, not started over
    assert _sha(out / "final.mdl") == _sha(tmp_path / "ref" / "final.mdl")


def test_kill_during_decoding_then_rerun_is_byte_identical(gmm, tmp_path):
    c = gmm["corpus"]
    assert main(["train-lm", "--text", str(c.data_dir / "text"), "--lang", str(gmm["lang"]), "--out",
                 str(tmp_path / "lm"), "--order", "2"]) == 0
    assert main(["make-graph", "--lang", str(gmm["lang"]), "--model", str(gmm["model"]), "--G",
                 str(tmp_path / "lm" / "G.fst"), "--out", str(tmp_path / "graph")]) == 0
    args = ["decode", "--graph", str(tmp_path / "graph"), "--model", str(gmm["model"]), "--feats", str(c.feat_dir),
            "--data", str(c.data_dir), "--bootstrap", "0", "--nj", "1", "--acoustic-scales", "0.05,0.1"]
    t0 = time.monotonic()
    assert main([*args, "--out", str(tmp_path / "ref")]) == 0
    seconds = time.monotonic() - t0
    out = tmp_path / "dec"
    _kill_partway(_cli(*args, "--out", str(out)), out, (tmp_path / ".dec.started").is_file, seconds / 2)
    assert main([*args, "--out", str(out)]) == 0
    assert _sha(out / "text") == _sha(tmp_path / "ref" / "text")
