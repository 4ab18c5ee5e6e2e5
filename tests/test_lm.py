"""Kneser-Ney estimation, ARPA files, perplexity and G.fst on toy text."""
from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from asrdistill.errors import UserFacingError
from asrdistill.lm import ArpaLM, estimate_kneser_ney, train_lm
from asrdistill.lm.kneser_ney import adjust_counts, count_ngrams, modified_kn_discounts

WORDS = "bat cat see moo boot key ma sam at tea".split()


def corpus(n=300, seed=0, vocab=WORDS):
    rng = np.random.default_rng(seed)
    # a little structure: "see" is often followed by "tea", sentences often start with "ma"
    out = []
    for _ in range(n):
        s = [str(w) for w in rng.choice(vocab, size=int(rng.integers(1, 7)))]
        if rng.random() < 0.5:
            s = ["ma"] + s
        for i in range(len(s) - 1):
            if s[i] == "see" and rng.random() < 0.7:
                s[i + 1] = "tea"
        out.append(s)
    return out


def test_counts_and_continuation_counts():
    raw = count_ngrams([["a", "b"], ["b"], ["c", "b"]], order=2)
    assert raw[2] == Counter({("<s>", "a"): 1, ("a", "b"): 1, ("b", "</s>"): 3, ("<s>", "b"): 1,
                              ("<s>", "c"): 1, ("c", "b"): 1})
    adj = adjust_counts(raw)
    # b is preceded by a, <s> and c: continuation count 3; </s> only by b
    assert adj[1][("b",)] == 3 and adj[1][("</s>",)] == 1 and adj[1][("a",)] == 1
    assert ("<s>",) not in adj[1]


def test_trigram_keeps_raw_counts_of_sentence_start_bigrams():
    raw = count_ngrams([["a", "b"], ["a", "c"]], order=3)
    adj = adjust_counts(raw)
    assert adj[2][("<s>", "a")] == 2          # raw count (no left context)
    assert adj[2][("a", "b")] == 1            # continuation count: only "<s> a b"


def test_discounts_from_count_of_counts():
    counts = Counter({i: c for i, c in enumerate([1] * 10 + [2] * 5 + [3] * 3 + [4] * 2)})
    d1, d2, d3 = modified_kn_discounts(counts, 1)
    y = 10 / (10 + 2 * 5)
    assert (d1, d2, d3) == pytest.approx((1 - 2 * y * 5 / 10, 2 - 3 * y * 3 / 5, 3 - 4 * y * 2 / 3))


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_sum_to_one(order, tmp_path):
    lm = estimate_kneser_ney(corpus(), order=order, vocabulary=WORDS + ["zebra", "<UNK>"])
    assert lm.order == order
    assert lm.check_normalization(tol=1e-9) < 1e-9
    assert "zebra" in lm.vocabulary and "</s>" in lm.vocabulary and "<s>" not in lm.vocabulary
    assert 10 ** lm.logprob("zebra", []) > 0  # unseen lexicon words keep some mass
    lm.write(tmp_path / "lm.arpa")
    text = (tmp_path / "lm.arpa").read_text()
    assert text.startswith("\\data\\\nngram 1=") and text.rstrip().endswith("\\end\\")
    back = ArpaLM.read(tmp_path / "lm.arpa")
    assert back.check_normalization(tol=1e-5) < 1e-5  # 7 decimals in the file
    assert back.logprob("tea", ["moo", "see"]) == pytest.approx(lm.logprob("tea", ["moo", "see"]), abs=1e-6)


def test_normalization_check_can_fail():
    lm = estimate_kneser_ney(corpus(), order=2)
    lm.logprobs[2][("see", "tea")] += 0.1
    with pytest.raises(AssertionError, match="see"):
        lm.check_normalization()


def test_model_learns_and_perplexity(tmp_path):
    train, dev = corpus(400, seed=1), corpus(100, seed=2)
    tri = estimate_kneser_ney(train, order=3)
    uni = estimate_kneser_ney(train, order=1)
    assert 10 ** tri.logprob("tea", ["see"]) > 2 * 10 ** uni.logprob("tea", [])
    p_tri, p_uni = tri.perplexity(dev), uni.perplexity(dev)
    assert p_tri.words == sum(len(s) + 1 for s in dev) and p_tri.oovs == 0
    assert p_tri.perplexity < p_uni.perplexity < len(uni.vocabulary) + 1


def test_perplexity_of_uniform_model(tmp_path):
    # 4 words + </s>, all 1/5: perplexity 5
    lp = math.log10(0.2)
    (tmp_path / "u.arpa").write_text("\\data\\\nngram 1=6\n\n\\1-grams:\n-99\t<s>\n"
                                     + "".join(f"{lp}\t{w}\n" for w in ["a", "b", "c", "</s>", "<unk>"])
                                     + "\n\\end\\\n")
    lm = ArpaLM.read(tmp_path / "u.arpa")
    ppl = lm.perplexity([["a", "b"], ["c", "zzz"]])  # zzz -> <unk>
    assert ppl.perplexity == pytest.approx(5.0) and ppl.words == 6 and ppl.oovs == 0


def test_arpa_errors_name_the_line(tmp_path):
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\ta\n-x\tb\n\\end\\\n")
    with pytest.raises(UserFacingError, match=r"bad\.arpa:6"):
        ArpaLM.read(tmp_path / "bad.arpa")
    (tmp_path / "short.arpa").write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\ta\n\\end\\\n")
    with pytest.raises(UserFacingError, match="ngram 1=3"):
        ArpaLM.read(tmp_path / "short.arpa")


def test_train_lm_and_G(tmp_path):
    kaldifst = pytest.importorskip("kaldifst")
    words = ["<eps>", "<UNK>"] + sorted(WORDS) + ["#0", "<s>", "</s>"]
    (tmp_path / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)))
    train = [" ".join(s) for s in corpus(200, seed=3)]
    train[0] += " unseenword"
    (tmp_path / "text").write_text("".join(f"u{i:04d} {s}\n" for i, s in enumerate(train)))
    (tmp_path / "dev").write_text("".join(f"d{i:04d} {' '.join(s)}\n" for i, s in enumerate(corpus(50, seed=4))))
    info = train_lm([tmp_path / "text"], tmp_path / "lm", order=3, words_txt=tmp_path / "words.txt",
                    eval_text={"dev": tmp_path / "dev"})
    assert info["oov_tokens_mapped"] == 1 and info["max_normalization_error"] < 1e-9
    assert 1 < info["dev_perplexity"]["perplexity"] < len(WORDS) + 2
    assert (tmp_path / "lm" / "lm.json").is_file()
    G = kaldifst.StdVectorFst.read(str(tmp_path / "lm" / "G.fst"))
    assert G.num_states == info["G"]["states"] > 1 and G.is_ilabel_sorted
    labels = {(a.ilabel, a.olabel) for s in range(G.num_states) for a in kaldifst.ArcIterator(G, s)}
    ids = {w: i for i, w in enumerate(words)}
    assert (ids["#0"], 0) in labels                                  # back-off arcs carry #0
    assert not any(ids[w] in pair for pair in labels for w in ("<s>", "</s>"))   # turned into epsilons
    # a user's ARPA file is accepted as is
    info2 = train_lm([], tmp_path / "lm2", arpa=tmp_path / "lm" / "lm.arpa", words_txt=tmp_path / "words.txt")
    assert info2["order"] == 3 and (tmp_path / "lm2" / "G.fst").is_file()


def test_G_rejects_words_txt_without_disambig(tmp_path):
    from asrdistill.lm import arpa_to_G
    estimate_kneser_ney(corpus(20), order=2).write(tmp_path / "lm.arpa")
    (tmp_path / "words.txt").write_text("<eps> 0\nbat 1\n")
    with pytest.raises(UserFacingError, match="#0"):
        arpa_to_G(tmp_path / "lm.arpa", tmp_path / "words.txt", tmp_path / "G.fst")


def test_cli_train_lm(tmp_path, capsys):
    from asrdistill.cli import main
    lang = tmp_path / "lang"
    lang.mkdir()
    words = ["<eps>", "<UNK>"] + sorted(WORDS) + ["#0", "<s>", "</s>"]
    (lang / "words.txt").write_text("".join(f"{w} {i}\n" for i, w in enumerate(words)))
    (tmp_path / "text").write_text("".join(f"u{i:04d} {' '.join(s)}\n" for i, s in enumerate(corpus(50))))
    assert main(["train-lm", "--text", str(tmp_path / "text"), "--lang", str(lang), "--out", str(tmp_path / "lm"),
                 "--order", "2", "--eval", f"dev={tmp_path / 'text'}"]) == 0
    out = capsys.readouterr().out
    assert "dev: perplexity" in out and "G.fst:" in out
    assert main(["train-lm", "--out", str(tmp_path / "x")]) == 1  # neither --text nor --arpa
