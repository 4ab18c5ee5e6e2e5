"""Kaldi data dir reading, writing and validation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile

from asrdistill.cli import main as cli_main
from asrdistill.data.kaldi_dir import (copy_data_dir, load_utterance_audio, read_data_dir,
                                       write_data_dir)
from asrdistill.errors import DataDirError


def _wav(path: Path, seconds: float = 0.5, rate: int = 16000, seed: int = 0) -> np.ndarray:
    x = (np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 1000).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(path, x, rate, subtype="PCM_16")
    return x


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    wavs = {}
    for i, spk in enumerate(["spkA", "spkB"]):
        for j in range(2):
            utt = f"{spk}-u{j}"
            _wav(tmp_path / "wav" / f"{utt}.wav", seed=10 * i + j)
            wavs[utt] = str(tmp_path / "wav" / f"{utt}.wav")
    text = {u: "hello world" for u in wavs}
    utt2spk = {u: u.split("-")[0] for u in wavs}
    return write_data_dir(tmp_path / "data", wavs, text, utt2spk, spk2gender={"spkA": "f", "spkB": "m"})


def test_roundtrip(data_dir: Path, tmp_path: Path) -> None:
    dd = read_data_dir(data_dir)
    assert dd.utts == ["spkA-u0", "spkA-u1", "spkB-u0", "spkB-u1"]
    assert dd.spk2utt == {"spkA": ["spkA-u0", "spkA-u1"], "spkB": ["spkB-u0", "spkB-u1"]}
    assert (data_dir / "spk2utt").read_text() == "spkA spkA-u0 spkA-u1\nspkB spkB-u0 spkB-u1\n"
    copy = read_data_dir(copy_data_dir(dd, tmp_path / "copy"))
    assert copy.text == dd.text and copy.utt2spk == dd.utt2spk and copy.spk2gender == dd.spk2gender
    samples, rate = load_utterance_audio(dd, "spkB-u1")
    assert rate == 16000 and samples.dtype == np.float32 and len(samples) == 8000
    assert np.abs(samples).max() > 100  # int16 scale, as Kaldi reads WAV


def _expect(data_dir: Path, fragment: str, **kw) -> DataDirError:
    with pytest.raises(DataDirError) as info:
        read_data_dir(data_dir, **kw)
    assert fragment in str(info.value), str(info.value)
    return info.value


def test_unsorted_names_file_line_and_utt(data_dir: Path) -> None:
    lines = (data_dir / "text").read_text().splitlines()
    lines[1], lines[2] = lines[2], lines[1]
    (data_dir / "text").write_text("\n".join(lines) + "\n")
    err = _expect(data_dir, "not sorted")
    assert err.file.endswith("text") and err.line == 3 and err.utt == "spkA-u1"
    assert f"{data_dir}/text:3 (utterance spkA-u1)" in str(err)


def test_duplicate_and_missing(data_dir: Path) -> None:
    text = (data_dir / "text").read_text().splitlines()
    (data_dir / "text").write_text("\n".join(text[:1] + text[:1] + text[1:]) + "\n")
    _expect(data_dir, "duplicate utterance id 'spkA-u0'")
    (data_dir / "text").write_text("\n".join(text[:3]) + "\n")
    err = _expect(data_dir, "has no transcript")
    assert err.utt == "spkB-u1"


def test_spk2utt_mismatch(data_dir: Path) -> None:
    (data_dir / "spk2utt").write_text("spkA spkA-u0\nspkB spkB-u0 spkB-u1\n")
    err = _expect(data_dir, "does not match utt2spk")
    assert err.line == 1


def test_speaker_order_rule(tmp_path: Path) -> None:
    wavs = {u: str(tmp_path / f"{u}.wav") for u in ["a1", "b1"]}
    for u in wavs:
        _wav(Path(wavs[u]))
    # speaker of a1 sorts after speaker of b1: sorting by speaker breaks utterance order.
    d = write_data_dir(tmp_path / "d", wavs, {"a1": "x", "b1": "y"}, {"a1": "zed", "b1": "abe"})
    _expect(d, "speaker ids prefixes")


def test_pipes_refused_unless_enabled(data_dir: Path, tmp_path: Path) -> None:
    wav = tmp_path / "wav" / "spkA-u0.wav"
    lines = (data_dir / "wav.scp").read_text().splitlines()
    lines[0] = f"spkA-u0 cat {wav} |"
    (data_dir / "wav.scp").write_text("\n".join(lines) + "\n")
    err = _expect(data_dir, "shell pipe")
    assert err.line == 1
    dd = read_data_dir(data_dir, allow_pipes=True)
    samples, rate = load_utterance_audio(dd, "spkA-u0")
    assert rate == 16000 and len(samples) == 8000


def test_missing_audio_and_crlf(data_dir: Path) -> None:
    (Path(read_data_dir(data_dir).wav_scp["spkB-u0"])).unlink()
    _expect(data_dir, "not found")
    (data_dir / "utt2spk").write_bytes((data_dir / "utt2spk").read_bytes().replace(b"\n", b"\r\n"))
    _expect(data_dir, "carriage return")


def test_segments(tmp_path: Path) -> None:
    _wav(tmp_path / "rec.wav", seconds=2.0)
    d = write_data_dir(tmp_path / "d", {"rec": str(tmp_path / "rec.wav")}, {"s-1": "a", "s-2": "b"},
                       {"s-1": "s", "s-2": "s"}, segments={"s-1": ("rec", 0.0, 0.5), "s-2": ("rec", 0.5, -1)})
    dd = read_data_dir(d)
    assert len(load_utterance_audio(dd, "s-1")[0]) == 8000
    assert len(load_utterance_audio(dd, "s-2")[0]) == 24000
    (d / "segments").write_text("s-1 rec 0.5 0.2\ns-2 rec 0.5 -1\n")
    err = _expect(d, "bad times")
    assert err.utt == "s-1" and err.line == 1


def test_cli_validate(data_dir: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["validate-data-dir", str(data_dir)]) == 0
    assert "4 utterances, 2 speakers" in capsys.readouterr().out
    (data_dir / "utt2spk").write_text("spkA-u0 spkA\n")
    assert cli_main(["validate-data-dir", str(data_dir)]) == 1
    assert "error" in capsys.readouterr().err
