"""recipes/librispeech/run.sh's data stage on a tiny fake LibriSpeech tree (synthesized speech, FLAC), and a
data dir whose wav.scp is all shell pipes through recipes/custom/run.sh --allow-pipes true."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from asrdistill.data.kaldi_dir import read_data_dir

ROOT = Path(__file__).resolve().parents[1]
SENTENCES = ["THE CAT SAT ON THE MAT", "A DOG RAN HOME", "SHE READ THE BOOK", "WE WALKED TO TOWN",
             "HE SAW THE ZORBLAXIAN SHIP", "IT WAS COLD", "THEY SANG A SONG", "MY FRIEND'S HOUSE IS RED"]
# (subset, reader, chapter, number of utterances)
TREE = [("train-clean-100", "19", "198", 3), ("train-clean-100", "26", "495", 3), ("dev-clean", "84", "121", 1),
        ("test-clean", "61", "70968", 1)]


def _env() -> dict:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


@pytest.fixture(scope="module")
def fake_librispeech(tmp_path_factory) -> Path:
    """LibriSpeech's layout: SUBSET/READER/CHAPTER/READER-CHAPTER-NNNN.flac + READER-CHAPTER.trans.txt."""
    from scipy.signal import resample_poly

    from asrdistill.lang.espeak import Espeak

    root = tmp_path_factory.mktemp("LibriSpeech")
    k = 0
    with Espeak() as es:
        es.set_voice("en-us")
        for subset, reader, chapter, n in TREE:
            d = root / subset / reader / chapter
            d.mkdir(parents=True)
            lines = []
            for i in range(n):
                utt, text = f"{reader}-{chapter}-{i:04d}", SENTENCES[k % len(SENTENCES)]
                k += 1
                es.set_parameters(rate=170, pitch=40 + 5 * k, pitch_range=50)
                syn = es.synthesize(text.lower(), seed=k)
                audio = resample_poly(syn.samples.astype(np.float64), 320, 441) / 32768.0
                soundfile.write(d / f"{utt}.flac", audio.astype(np.float32), 16000, subtype="PCM_16")
                lines.append(f"{utt} {text}\n")
            (d / f"{reader}-{chapter}.trans.txt").write_text("".join(lines))
    return root


def test_data_stage_on_a_fake_tree(fake_librispeech: Path, tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(ROOT / "recipes/librispeech/run.sh"), "--corpus", str(fake_librispeech),
                           "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
                           "--results", str(tmp_path), "--stop-stage", "1"],
                          env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    src = tmp_path / "data" / "librispeech"
    train, dev, test = (read_data_dir(src / s) for s in ("train", "dev", "test"))
    assert len(train) == 6 and set(train.spk2utt) == {"19-198", "26-495"}  # Kaldi: reader-chapter speakers
    assert train.text["19-198-0000"] == "THE CAT SAT ON THE MAT"
    assert train.wav_scp["26-495-0002"].endswith("train-clean-100/26/495/26-495-0002.flac")
    assert list(dev.spk2utt) == ["84-121"] and list(test.spk2utt) == ["61-70968"]
    # stage 1 of the synth recipe validated and copied them, with the dict made by prepare-dict
    assert read_data_dir(tmp_path / "data" / "train").utts == train.utts
    lexicon = (tmp_path / "data" / "local" / "dict" / "lexicon.txt").read_text()
    assert "\nCAT K AE T\n" in lexicon and "ZORBLAXIAN " in lexicon and "FRIEND'S " in lexicon
    report = json.loads((tmp_path / "data" / "local" / "dict_auto" / "prepare_dict.json").read_text())
    assert report["generated"] == {"ZORBLAXIAN": "espeak"}  # FRIEND'S is in CMUdict itself
    sizes = json.loads((tmp_path / "exp" / "sizes.json").read_text())
    assert sizes["data"]["utterances"] == 6 and sizes["data"]["duration_source"] == "utt2dur"
    assert sizes["sizes"]["mono_subset"] == 0 and sizes["chosen_by"]["tri_leaves"] == "rule"


def test_missing_subset_is_a_clear_error(fake_librispeech: Path, tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(ROOT / "recipes/librispeech/run.sh"), "--corpus", str(fake_librispeech),
                           "--dev", "dev-other", "--data", str(tmp_path / "d")], env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "dev-other not found" in proc.stderr and "train-clean-100" in proc.stderr


def _pipe_dir(src: Path, dest: Path) -> None:
    """A copy of a data dir whose wav.scp entries are all commands writing the audio to stdout."""
    shutil.copytree(src, dest)
    sox = shutil.which("sox")
    lines = []
    for line in (src / "wav.scp").read_text().splitlines():
        utt, path = line.split(maxsplit=1)
        cmd = f"sox {path} -t wav -" if sox else f"cat {path}"
        lines.append(f"{utt} {cmd} |\n")
    (dest / "wav.scp").write_text("".join(lines))


def test_pipes_through_the_custom_recipe(fake_librispeech: Path, tmp_path: Path) -> None:
    from asrdistill.features.store import FrameStore

    made = tmp_path / "made"
    for split, subset in (("train", "train-clean-100"), ("dev", "dev-clean"), ("test", "test-clean")):
        subprocess.run([str(Path(sys.executable).parent / "asrdistill"), "make-data-dir",
                        str(fake_librispeech / subset), "--transcript-glob", "*.trans.txt",
                        "--speaker-pattern", "^([0-9]+)-", "--out", str(made / split)],
                       env=_env(), check=True, capture_output=True)
        _pipe_dir(made / split, tmp_path / "pipes" / split)

    def run(kind: str, *extra: str) -> subprocess.CompletedProcess:
        d = tmp_path / kind
        return subprocess.run(["bash", str(ROOT / "recipes/custom/run.sh"), "--train", str(d / "train"),
                               "--dev", str(d / "dev"), "--test", str(d / "test"), "--data", str(d / "data"),
                               "--exp", str(d / "exp"), "--results", str(d), "--stop-stage", "2", *extra],
                              env=_env(), capture_output=True, text=True, timeout=600)

    refused = run("pipes")
    assert refused.returncode != 0 and "--allow-pipes" in refused.stderr
    proc = run("pipes", "--allow-pipes", "true")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    shutil.copytree(made, tmp_path / "files")
    assert run("files").returncode == 0
    for split in ("train", "test"):
        a = FrameStore(tmp_path / "pipes" / "data" / "fbank" / split)
        b = FrameStore(tmp_path / "files" / "data" / "fbank" / split)
        assert a.utts == b.utts and np.array_equal(np.asarray(a.frames), np.asarray(b.frames))
