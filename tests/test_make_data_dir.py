"""make-data-dir: a folder of WAV/FLAC files + transcripts -> Kaldi data dirs."""
import json

import numpy as np
import pytest
import soundfile

from asrdistill.data.kaldi_dir import read_data_dir
from asrdistill.data.make_data_dir import MakeDataDirConfig, make_data_dir, normalize
from asrdistill.errors import UserFacingError


def _corpus(root, speakers=("ann", "bob", "cat", "dan"), per_spk=5, rate=8000, fmt="wav"):
    """Tones of different lengths as ``SPK_NN.<fmt>`` files and one transcript file."""
    (root / "audio").mkdir(parents=True)
    lines = []
    for s, spk in enumerate(speakers):
        for i in range(per_spk):
            n = rate // 2 + 400 * i + 100 * s
            x = (0.1 * np.sin(np.arange(n) * 0.05 * (s + 1))).astype(np.float32)
            soundfile.write(root / "audio" / f"{spk}_{i:02d}.{fmt}", x, rate, subtype="PCM_16")
            lines.append(f"{spk}_{i:02d} Hello, world number {i}.\n")
    (root / "trans.txt").write_text("".join(lines))
    return root / "audio", root / "trans.txt"


def test_one_data_dir(tmp_path):
    audio, trans = _corpus(tmp_path, fmt="flac")
    info = make_data_dir([audio], tmp_path / "data", [trans], MakeDataDirConfig(speaker_pattern=r"^([a-z]+)_"))
    dd = read_data_dir(tmp_path / "data")
    assert info.sample_rate == 8000 and len(dd) == 20 and len(dd.spk2utt) == 4 and info.renamed == 0
    assert dd.text["ann_03"] == "Hello, world number 3."
    assert dd.wav_scp["bob_00"].endswith("audio/bob_00.flac")
    durs = dict(line.split() for line in (tmp_path / "data" / "utt2dur").read_text().splitlines())
    assert float(durs["ann_01"]) == pytest.approx((4000 + 400) / 8000, abs=1e-3)


def test_splits_by_utterance_and_speaker(tmp_path):
    audio, trans = _corpus(tmp_path)
    cfg = MakeDataDirConfig(speaker_pattern="^(?P<spk>[a-z]+)", normalize_text=True,
                            splits={"train": 0.6, "dev": 0.2, "test": 0.2})
    info = make_data_dir([audio], tmp_path / "u", [trans], cfg)
    assert info.split_by == "utterance"  # 4 speakers: 0.2 x 4 < 2 speakers per split
    dirs = {n: read_data_dir(tmp_path / "u" / n) for n in ("train", "dev", "test")}
    assert [len(d) for d in dirs.values()] == [12, 4, 4]
    assert all(len(d.spk2utt) == 4 for d in dirs.values())
    utts = [u for d in dirs.values() for u in d.utts]
    assert len(set(utts)) == 20
    assert dirs["train"].text[dirs["train"].utts[0]].startswith("HELLO WORLD NUMBER ")
    assert json.loads((tmp_path / "u" / "make_data_dir.json").read_text())["split_by"] == "utterance"

    by_spk = MakeDataDirConfig(speaker_pattern="^([a-z]+)_", splits={"train": 0.5, "test": 0.5}, split_by="speaker")
    make_data_dir([audio], tmp_path / "s", [trans], by_spk)
    train, test = read_data_dir(tmp_path / "s" / "train"), read_data_dir(tmp_path / "s" / "test")
    assert len(train.spk2utt) == len(test.spk2utt) == 2 and not set(train.spk2utt) & set(test.spk2utt)


def test_speaker_prefix_and_map(tmp_path):
    audio, trans = _corpus(tmp_path, per_spk=2)
    smap = tmp_path / "spk"
    smap.write_text("".join(f"{p.stem} {'m' if p.stem < 'c' else 'z'}\n" for p in audio.iterdir()))
    info = make_data_dir([audio], tmp_path / "d", [trans], speaker_map=str(smap))
    dd = read_data_dir(tmp_path / "d")
    assert info.renamed == 8 and set(dd.spk2utt) == {"m", "z"} and "m-ann_00" in dd.utt2spk


def test_errors_name_the_problem(tmp_path):
    audio, trans = _corpus(tmp_path, per_spk=2)
    with pytest.raises(UserFacingError, match="speaker"):
        make_data_dir([audio], tmp_path / "d", [trans])
    (tmp_path / "more.txt").write_text("zed_00 no such file\n")
    with pytest.raises(UserFacingError, match=r"more.txt:1 \(utterance zed_00\): 1 transcript"):
        make_data_dir([audio], tmp_path / "d", [trans, tmp_path / "more.txt"],
                      MakeDataDirConfig(speaker_pattern="^([a-z]+)_"))
    soundfile.write(audio / "eve_00.wav", np.zeros(16000, np.float32), 16000)
    (tmp_path / "eve.txt").write_text("eve_00 hi\n")
    with pytest.raises(UserFacingError, match="different sample rates"):
        make_data_dir([audio], tmp_path / "d", [trans, tmp_path / "eve.txt"],
                      MakeDataDirConfig(speaker_pattern="^([a-z]+)_"))
    assert not (tmp_path / "d").exists()


def test_normalize():
    assert normalize("  Don't stop -- the well-known \"rock\", ok?  ") == "DON'T STOP THE WELL-KNOWN ROCK OK"
