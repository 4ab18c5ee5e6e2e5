"""prepare-dict: CMUdict entries, the espeak-ng fallback, stress modes, unpronounceable words, the dict dir."""
import json

import pytest

from asrdistill.errors import UserFacingError
from asrdistill.lang.g2p import G2PConfig, apply_stress, prepare_dict, pronounce_words, read_cmudict
from asrdistill.lang.lexicon import read_dict_dir


@pytest.fixture(scope="module")
def cmu():
    return read_cmudict()


def _text(path, *lines):
    path.write_text("".join(f"u{i:03d} {line}\n" for i, line in enumerate(lines)))
    return path


def test_known_cmudict_entries(cmu):
    assert ("K", "AE1", "T") in cmu["cat"]
    assert cmu["speech"][0] == ("S", "P", "IY1", "CH")
    assert ("EY1",) in cmu["a"] and ("AH0",) in cmu["a"]  # variants a and a(2)
    assert ("D", "OW1", "N", "T") in cmu["don't"]  # apostrophes
    assert all("#" not in p for prons in cmu.values() for pron in prons for p in pron)  # comments stripped


def test_sources_in_order(cmu):
    user = {"cat": [("K", "AA1", "T")]}
    words = ["CAT", "Dog", "sun-lit", "zorblaxian", "xxi", "1990", "<NOISE>"]
    result, failed = pronounce_words(words, cmu, user)
    assert not failed
    src = result.sources
    assert src == {"CAT": "lexicon", "Dog": "cmudict", "sun-lit": "cmudict-parts", "zorblaxian": "espeak",
                   "xxi": "espeak", "1990": "espeak", "<NOISE>": "noise"}
    prons = {w: p for w, p, _ in result.entries}
    assert prons["CAT"] == ("K", "AA1", "T")
    assert prons["sun-lit"] == cmu["sun"][0] + cmu["lit"][0]
    assert prons["<NOISE>"] == ("SPN",)
    # espeak's phones are ARPAbet with a stress digit on every vowel
    assert prons["zorblaxian"][0] == "Z" and all(p[-1] in "012" for p in prons["zorblaxian"]
                                                   if p[:2] in ("AA", "AE", "AH", "IY", "EY", "IH"))
    # a roman numeral: "twenty one", without espeak's spoken word "roman" before it
    assert prons["xxi"][:3] == ("T", "W", "EH1") and prons["xxi"][-2:] == ("AH1", "N")
    assert len(prons["1990"]) > 10  # a number is spoken out as several words, concatenated


def test_possessive_rule(cmu):
    result, _ = pronounce_words(["zorbs's"], cmu, {"zorbs": [("Z", "AO1", "R", "B", "Z")]})
    # a user-lexicon stem is not a CMUdict stem: the fallback is espeak
    assert result.sources["zorbs's"] == "espeak"
    stem_cmu = {**cmu, "blorf": [("B", "L", "AO1", "R", "F")], "blorz": [("B", "L", "AO1", "R", "Z")]}
    result, _ = pronounce_words(["blorf's", "blorz's", "blorz'"], stem_cmu)
    prons = {w: p for w, p, _ in result.entries}
    assert prons["blorf's"][-1] == "S" and prons["blorz's"][-2:] == ("IH0", "Z")
    assert prons["blorz'"] == stem_cmu["blorz"][0]


def test_apply_stress():
    assert apply_stress(("K", "AE1", "T"), "strip") == ("K", "AE", "T")
    assert apply_stress(("K", "AE", "T"), "keep") == ("K", "AE0", "T")


def test_unpronounceable_words_are_reported(cmu):
    _, failed = pronounce_words(["hello", "--", "文字", "a+b"], cmu)
    assert set(failed) == {"--", "文字", "a+b"}
    assert "Latin" in failed["文字"]


def test_prepare_dict_dir(tmp_path):
    text = _text(tmp_path / "text", "THE CAT SAT", "ZORBLAXIAN DOG'S <NOISE>")
    info = prepare_dict([text], tmp_path / "dict")
    d = read_dict_dir(tmp_path / "dict")
    lex = {}
    for w, _, p in d.lexicon:
        lex.setdefault(w, []).append(p)
    assert set(lex) == {"THE", "CAT", "SAT", "ZORBLAXIAN", "DOG'S", "<NOISE>", "<UNK>"}
    assert ("K", "AE", "T") in lex["CAT"]  # stress stripped by default
    assert all(not ph[-1].isdigit() for ps in lex.values() for p in ps for ph in p)
    assert d.silence_phones == ["SIL", "SPN"] and d.optional_silence == "SIL"
    assert info.counts["espeak"] == 1 and info.counts["cmudict"] == 4 and info.counts["noise"] == 1
    assert (tmp_path / "dict" / "generated.txt").read_text().startswith("ZORBLAXIAN ")
    report = json.loads((tmp_path / "dict" / "prepare_dict.json").read_text())
    assert report["generated"] == {"ZORBLAXIAN": "espeak"}


def test_prepare_dict_keep_stress(tmp_path):
    text = _text(tmp_path / "text", "the cat sat on a mat")
    prepare_dict([text], tmp_path / "dict", G2PConfig(stress="keep"))
    d = read_dict_dir(tmp_path / "dict")
    assert ("K", "AE1", "T") in [p for w, _, p in d.lexicon if w == "cat"]
    ah = next(s for s in d.nonsilence_sets if s[0].startswith("AH"))
    assert ah == sorted(ah) and {"AH0", "AH1"} <= set(ah) and all(p.startswith("AH") for p in ah)
    questions = [set(q) for q in d.extra_questions]
    assert {"SIL", "SPN"} in questions
    assert any(q and all(p.endswith("1") for p in q) and "AE1" in q for q in questions)
    assert any("K" in q and all(not p[-1].isdigit() for p in q) for q in questions)


def test_prepare_dict_error_names_the_utterance(tmp_path):
    text = _text(tmp_path / "text", "hello world", "hello, world")
    with pytest.raises(UserFacingError, match=r"text:2 \(utterance u001\): 'hello,'"):
        prepare_dict([text], tmp_path / "dict")
    assert not (tmp_path / "dict").exists()


def test_prepare_dict_command_skips_when_done(tmp_path, capsys):
    from asrdistill.cli import main

    text = _text(tmp_path / "text", "one two three")
    assert main(["prepare-dict", "--text", str(text), "--out", str(tmp_path / "d")]) == 0
    assert "3 words (3 cmudict)" in capsys.readouterr().out
    assert main(["prepare-dict", "--text", str(text), "--out", str(tmp_path / "d")]) == 0
    assert "already prepared" in capsys.readouterr().out
