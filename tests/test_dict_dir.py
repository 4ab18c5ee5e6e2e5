"""Dict dir validation and transcript OOV checks."""
from __future__ import annotations

from pathlib import Path

import pytest

from asrdistill.lang.lexicon import check_transcripts, read_dict_dir
from asrdistill.errors import DataDirError


def make_dict(root: Path, lexicon: str, unk: bool = True) -> Path:
    d = root / "dict"
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text("SIL\nSPN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("AH\nB\nK\nT\n")
    (d / "extra_questions.txt").write_text("B K T\n")
    (d / "lexicon.txt").write_text(("<UNK> SPN\n" if unk else "") + lexicon)
    return d


def test_read_ok(tmp_path: Path) -> None:
    dd = read_dict_dir(make_dict(tmp_path, "bat B AH T\ncat K AH T\ncat K AE T\n".replace(" AE", " AH B")))
    assert dd.words == ["<UNK>", "bat", "cat"]
    assert [p for w, _, p in dd.lexicon if w == "cat"] == [("K", "AH", "T"), ("K", "AH", "B", "T")]
    assert dd.optional_silence == "SIL" and dd.silence_phones + dd.nonsilence_phones == ["SIL", "SPN", "AH", "B", "K", "T"]
    assert dd.extra_questions == [["B", "K", "T"]]


@pytest.mark.parametrize("lexicon, fragment, line", [
    ("bat B AH T\ncat K AX T\n", "unknown phone AX", 3),
    ("bat\n", "empty pronunciation", 2),
    ("bat B AH T\nbat B AH T\n", "duplicate entry", 3),
    ("#0 B\n", "reserved", 2),
])
def test_lexicon_errors(tmp_path: Path, lexicon: str, fragment: str, line: int) -> None:
    with pytest.raises(DataDirError) as info:
        read_dict_dir(make_dict(tmp_path, lexicon))
    assert fragment in str(info.value) and info.value.line == line
    assert "lexicon.txt" in str(info.value)


def test_phone_listed_twice(tmp_path: Path) -> None:
    d = make_dict(tmp_path, "bat B AH T\n")
    (d / "nonsilence_phones.txt").write_text("AH\nB\nSIL\n")
    with pytest.raises(DataDirError, match="phone SIL listed twice"):
        read_dict_dir(d)


def test_oov(tmp_path: Path) -> None:
    text = {"s-1": "bat cat", "s-2": "bat dog dog"}
    assert check_transcripts(read_dict_dir(make_dict(tmp_path, "bat B AH T\n")), text, "text") == \
        {"cat": 1, "dog": 2}
    with pytest.raises(DataDirError) as info:
        check_transcripts(read_dict_dir(make_dict(tmp_path / "x", "bat B AH T\n", unk=False)), text, "d/text")
    assert info.value.utt == "s-1" and info.value.line == 1 and "'cat'" in str(info.value)
