"""Lang dir: symbol tables, topology, L.fst accepting a word sequence's phones, dict-dir and OOV errors."""
from __future__ import annotations

import pytest

from toy_corpus import TOY_LEXICON, write_dict_dir
from asrdistill.errors import DataDirError
from asrdistill.lang import load_lang, prepare_lang, transcripts_to_ids
from asrdistill.lang.prepare import pronunciation_disambig


@pytest.fixture()
def lang(tmp_path):
    d = write_dict_dir(tmp_path / "dict")
    return prepare_lang(d, tmp_path / "lang")


def test_tables_and_topology(lang, tmp_path):
    assert lang.phones[:3] == ["<eps>", "SIL", "SPN"]
    assert lang.phones[-2:] == ["#0", "#1"]
    assert lang.words[0] == "<eps>" and lang.words[-3:] == ["#0", "<s>", "</s>"]
    assert lang.oov == "<UNK>" and (tmp_path / "lang" / "oov.txt").read_text() == "<UNK>\n"
    topo = lang.topology()
    assert topo.num_pdf_classes(lang.phone2id["SIL"]) == 5
    assert topo.num_pdf_classes(lang.phone2id["AA"]) == 3
    assert load_lang(tmp_path / "lang") == lang
    assert "shared split AA" in (tmp_path / "lang" / "phones" / "roots.txt").read_text()


def _best_output(lang, phone_seq, disambig=False):
    """Compose a linear phone acceptor with L; return (reachable, output words of the best path)."""
    import kaldifst
    p2i, L = lang.phone2id, lang.lexicon_fst(disambig)
    text = "".join(f"{i} {i + 1} {p2i[p]} {p2i[p]}\n" for i, p in enumerate(phone_seq)) + f"{len(phone_seq)}\n"
    a = kaldifst.compile(text, acceptor=False)
    kaldifst.arcsort(a, sort_type="olabel")
    kaldifst.arcsort(L, sort_type="ilabel")
    c = kaldifst.compose(a, L)
    if c.num_states == 0:
        return False, []
    ok, _, osyms, _ = kaldifst.get_linear_symbol_sequence(kaldifst.shortest_path(c))
    return ok, [lang.words[w] for w in osyms]


def test_lexicon_fst_accepts_word_sequence(lang):
    ok, words = _best_output(lang, ["SIL", "B", "AA", "T", "S", "IY", "SIL"])
    assert ok and words == ["bat", "see"]
    ok, words = _best_output(lang, ["K", "AA", "T", "SIL", "M", "UW"])
    assert ok and words == ["cat", "moo"]
    ok, _ = _best_output(lang, ["K", "AA", "K"])  # not a word sequence
    assert not ok


def test_disambiguation_symbols():
    prons = [("AA", "T"), ("AA",), ("B",), ("B",), ("K", "IY")]
    assert pronunciation_disambig(prons) == [0, 1, 1, 2, 0]


@pytest.mark.parametrize("line,message", [
    ("bad AA XX\n", "unknown phone XX"),
    ("empty\n", "empty pronunciation"),
    ("bat B AA T\n", "duplicate entry"),
])
def test_dict_errors_name_file_and_line(tmp_path, line, message):
    d = write_dict_dir(tmp_path / "dict")
    with open(d / "lexicon.txt", "a") as f:
        f.write(line)
    n = len(TOY_LEXICON) + 1
    with pytest.raises(DataDirError, match=rf"lexicon.txt:{n}.*{message}"):
        prepare_lang(d, tmp_path / "lang")
    assert not (tmp_path / "lang").exists()


def test_oov_mapping_and_error(tmp_path, lang):
    ids = transcripts_to_ids(lang, {"u1": "bat zebra"})
    assert ids["u1"] == [lang.word2id["bat"], lang.word2id["<UNK>"]]
    lex = {w: p for w, p in TOY_LEXICON.items() if w != "<UNK>"}
    d = write_dict_dir(tmp_path / "dict2", lexicon=lex)
    lang2 = prepare_lang(d, tmp_path / "lang2")
    assert lang2.oov is None
    text = tmp_path / "text"
    text.write_text("u1 bat see\nu2 cat zebra\n")
    with pytest.raises(DataDirError, match=r"text:2 \(utterance u2\).*'zebra'"):
        transcripts_to_ids(lang2, {"u1": "bat see", "u2": "cat zebra"}, text)
