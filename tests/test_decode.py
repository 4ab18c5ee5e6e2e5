"""HCLG building, decoding (DNN log-likelihood matrices and GMM features) and WER scoring on toy data.

A toy lang dir (10 words, 8 phones + SIL/SPN) and a trigram LM; synthetic acoustic scores put the
correct pdf of each frame far above the others, so decoding must give back the intended words.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

kaldifst = pytest.importorskip("kaldifst")
khg = pytest.importorskip("kaldi_hmm_gmm")

from toy_corpus import TOY_LEXICON, write_dict_dir  # noqa: E402
from asrdistill.decode import (DecodeOptions, compute_wer, decode, expand_to_transition_ids,  # noqa: E402
                               make_hclg, score_files, sweep_decode)
from asrdistill.decode.graph import load_graph_info  # noqa: E402
from asrdistill.lang import prepare_lang  # noqa: E402
from asrdistill.lm import arpa_to_G, estimate_kneser_ney  # noqa: E402

WORDS = [w for w in TOY_LEXICON if w != "<UNK>"]
FRAMES_PER_STATE = 3


class Toy:
    """Lang dir, G.fst, trees and transition models shared by the tests of this module."""

    def __init__(self, root):
        self.root = root
        self.lang = prepare_lang(write_dict_dir(root / "dict"), root / "lang")
        rng = np.random.default_rng(0)
        sents = [list(rng.choice(WORDS, size=int(rng.integers(1, 6)))) for _ in range(150)]
        estimate_kneser_ney(sents, 3, vocabulary=WORDS + ["<UNK>"]).write(root / "lm.arpa")
        self.G_info = arpa_to_G(root / "lm.arpa", root / "lang" / "words.txt", root / "G.fst")
        phones = self.lang.real_phones
        self.npc = [0] * (max(phones) + 1)
        for p, n in self.lang.num_pdf_classes.items():
            self.npc[p] = n

    def monophone(self):
        ctx = khg.monophone_context_dependency(self.lang.real_phones, self.npc)
        return ctx, khg.TransitionModel(ctx_dep=ctx, hmm_topo=self.lang.topology())

    def triphone(self):
        """A hand-made triphone tree: per phone and pdf-class one pdf, except that the middle state of
        each speech phone is split on whether the right phone is a vowel."""
        tree_mod = pytest.importorskip("asrdistill.tree.event_map")
        kio = pytest.importorskip("asrdistill.tree.kaldi_io")
        CE, SE, TE = tree_mod.ConstantEventMap, tree_mod.SplitEventMap, tree_mod.TableEventMap
        p2i = self.lang.phone2id
        vowels = tuple(sorted(p2i[p] for p in ("AA", "IY", "UW")))
        table: list = [None] * (max(self.lang.real_phones) + 1)
        pdf = 0
        for p in self.lang.real_phones:
            sub = []
            for c in range(self.npc[p]):
                if c == 1 and p in self.lang.nonsilence_phones:
                    sub.append(SE(2, vowels, CE(pdf), CE(pdf + 1)))
                    pdf += 2
                else:
                    sub.append(CE(pdf))
                    pdf += 1
            table[p] = TE(tree_mod.PDF_CLASS_KEY, sub)
        tree = tree_mod.Tree(TE(1, table), 3, 1)
        ctx = kio.to_context_dependency(tree)
        return ctx, khg.TransitionModel(ctx_dep=ctx, hmm_topo=self.lang.topology())

    def pdf_sequence(self, ctx, words):
        """pdf-id per frame for SIL w1 .. wn SIL, each HMM state FRAMES_PER_STATE frames."""
        p2i = self.lang.phone2id
        phones = [p2i["SIL"]] + [p2i[p] for w in words for p in TOY_LEXICON[w]] + [p2i["SIL"]]
        out = []
        for i, ph in enumerate(phones):
            window = ([ph] if ctx.context_width == 1 else
                      [phones[i - 1] if i > 0 else 0, ph, phones[i + 1] if i + 1 < len(phones) else 0])
            for c in range(self.npc[ph]):
                ok, pdf = ctx.compute(window, c)
                assert ok
                out += [pdf] * FRAMES_PER_STATE
        return np.array(out)

    def loglikes(self, ctx, tm, num_utts=12, seed=1):
        rng = np.random.default_rng(seed)
        refs, ll = {}, {}
        for i in range(num_utts):
            ws = list(rng.choice(WORDS, size=int(rng.integers(1, 5))))
            pdfs = self.pdf_sequence(ctx, ws)
            m = rng.normal(-8.0, 1.0, size=(len(pdfs), tm.num_pdfs)).astype(np.float32)
            m[np.arange(len(pdfs)), pdfs] = 0.0
            utt = f"spk-{i:03d}"
            refs[utt], ll[utt] = " ".join(ws), m
        return refs, ll


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return Toy(tmp_path_factory.mktemp("decode"))


@pytest.fixture(scope="module")
def mono_graph(toy):
    ctx, tm = toy.monophone()
    info = make_hclg(toy.root / "lang", ctx, tm, toy.root / "G.fst", toy.root / "graph_mono")
    return ctx, tm, info


def _ilabels(fst):
    return {arc.ilabel for s in range(fst.num_states) for arc in kaldifst.ArcIterator(fst, s)}


def test_hclg_monophone_built(toy, mono_graph):
    ctx, tm, info = mono_graph
    assert info.hclg_path.is_file() and info.words_path.is_file()
    assert info.states > 0 and info.arcs > info.states and info.bytes == info.hclg_path.stat().st_size
    assert (info.context_width, info.central_position) == (1, 0)
    assert set(info.sizes) >= {"L", "G", "LG", "CLG", "H", "HCLGa", "HCLG"}
    assert load_graph_info(info.graph_dir).states == info.states
    fst = kaldifst.StdVectorFst.read(str(info.hclg_path))
    labels = _ilabels(fst)
    # only transition-ids (and epsilon) on the input side: disambiguation symbols were removed
    assert max(labels) <= tm.num_transition_ids and min(labels) >= 0
    assert toy.G_info["states"] > 0


def test_hclg_rejects_lang_model_mismatch(toy, mono_graph, tmp_path):
    import shutil

    from asrdistill.errors import UserFacingError
    ctx, tm, _ = mono_graph
    lang = tmp_path / "lang"
    shutil.copytree(toy.root / "lang", lang)
    with open(lang / "phones.txt", "a") as f:
        f.write("ZZ 99\n")
    with pytest.raises(UserFacingError, match="only in the lang dir \\[99\\]"):
        make_hclg(lang, ctx, tm, toy.root / "G.fst", tmp_path / "graph")
    assert not (tmp_path / "graph").exists()


def test_expand_to_transition_ids_matches_decodable_ctc(mono_graph):
    _, tm, _ = mono_graph
    rng = np.random.default_rng(0)
    ll = rng.normal(size=(4, tm.num_pdfs)).astype(np.float32)
    tid2pdf = np.asarray(tm.transition_id_to_pdf_array())
    dec = khg.DecodableCtc(expand_to_transition_ids(ll, tid2pdf, 0.5))
    for tid in (1, 2, tm.num_transition_ids):
        assert dec.log_likelihood(2, tid) == pytest.approx(0.5 * ll[2, tm.transition_id_to_pdf(tid)], rel=1e-6)


def test_decode_synthetic_loglikes_monophone(toy, mono_graph, tmp_path):
    ctx, tm, info = mono_graph
    refs, ll = toy.loglikes(ctx, tm)
    (res,) = decode(info.graph_dir, tm, ll, options=DecodeOptions(acoustic_scale=1.0), progress=False)
    assert res.text() == refs
    assert res.timing["rtf"] > 0 and res.stats["frames"] == sum(len(m) for m in ll.values())
    res.write_text(tmp_path / "text")
    first = (tmp_path / "text").read_text().splitlines()[0]
    assert first == f"{min(refs)} {refs[min(refs)]}"
    # a callable source and two worker processes give the same words
    (res2,) = decode(info.graph_dir, tm, ll.__getitem__, utts=sorted(ll), nj=2, chunk=2,
                     options=DecodeOptions(acoustic_scale=1.0), progress=False)
    assert res2.text() == refs


def test_decode_wrong_words_when_scores_say_so(toy, mono_graph):
    """The test can fail: scores of other words give other words."""
    ctx, tm, info = mono_graph
    pdfs = toy.pdf_sequence(ctx, ["moo", "tea"])
    m = np.full((len(pdfs), tm.num_pdfs), -8.0, dtype=np.float32)
    m[np.arange(len(pdfs)), pdfs] = 0.0
    (res,) = decode(info.graph_dir, tm, {"u": m}, options=DecodeOptions(acoustic_scale=1.0), progress=False)
    assert res.text() == {"u": "moo tea"}


def test_sweep_decode_picks_a_scale(toy, mono_graph):
    ctx, tm, info = mono_graph
    refs, ll = toy.loglikes(ctx, tm, num_utts=6, seed=3)
    best, table, results = sweep_decode(info.graph_dir, tm, ll, refs, scales=(0.05, 0.5, 1.0),
                                        word_ins_penalties=(0.0, 1.0), progress=False)
    assert set(table) == {(s, p) for s in (0.05, 0.5, 1.0) for p in (0.0, 1.0)} and len(results) == 6
    assert table[best]["wer"] == min(t["wer"] for t in table.values())
    assert table[(1.0, 0.0)]["wer"] == 0.0


def test_word_insertion_penalty_changes_word_count(toy, mono_graph):
    """A large negative penalty makes the decoder insert words; a large positive one deletes them."""
    ctx, tm, info = mono_graph
    refs, ll = toy.loglikes(ctx, tm, num_utts=4, seed=9)
    flat = {u: np.zeros_like(m) for u, m in ll.items()}  # no acoustic evidence: only graph costs matter
    res = decode(info.graph_dir, tm, flat, acoustic_scales=[1.0], word_ins_penalties=[-5.0, 0.0, 5.0],
                 progress=False)
    counts = [sum(len(r.words) for r in d.utts.values()) for d in res]
    assert [d.word_ins_penalty for d in res] == [-5.0, 0.0, 5.0]
    assert counts[0] > counts[1] >= counts[2]


def test_hclg_triphone_and_decode(toy, tmp_path):
    ctx, tm = toy.triphone()
    assert (ctx.context_width, ctx.central_position) == (3, 1)
    info = make_hclg(toy.root / "lang", ctx, tm, toy.root / "G.fst", tmp_path / "graph_tri")
    assert (info.context_width, info.central_position) == (3, 1)
    assert info.sizes["CLG"]["states"] > info.sizes["LG"]["states"]  # context expansion happened
    refs, ll = toy.loglikes(ctx, tm, num_utts=8, seed=5)
    (res,) = decode(info.graph_dir, tm, ll, options=DecodeOptions(acoustic_scale=1.0), progress=False)
    assert res.text() == refs


def test_decode_gmm_features(toy, mono_graph):
    ctx, tm, info = mono_graph
    dim = 6
    rng = np.random.default_rng(7)
    means = rng.normal(0, 4.0, size=(tm.num_pdfs, dim)).astype(np.float32)
    am = khg.AmDiagGmm()
    for p in range(tm.num_pdfs):
        g = khg.DiagGmm(1, dim)
        g.set_weights(np.ones(1, dtype=np.float32))
        g.set_means(means[p:p + 1])
        g.set_invvars(np.ones((1, dim), dtype=np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    refs, feats = {}, {}
    for i in range(5):
        ws = list(rng.choice(WORDS, size=int(rng.integers(1, 4))))
        pdfs = toy.pdf_sequence(ctx, ws)
        feats[f"g{i}"] = means[pdfs] + rng.normal(0, 0.3, size=(len(pdfs), dim)).astype(np.float32)
        refs[f"g{i}"] = " ".join(ws)
    (res,) = decode(info.graph_dir, tm, feats, am=am, options=DecodeOptions(acoustic_scale=0.5), progress=False)
    assert res.text() == refs


def test_decode_rejects_wrong_shape(mono_graph):
    from asrdistill.errors import UserFacingError
    _, tm, info = mono_graph
    with pytest.raises(UserFacingError, match="expected"):
        decode(info.graph_dir, tm, {"u": np.zeros((5, tm.num_pdfs + 1), np.float32)}, progress=False)


# --- scoring ------------------------------------------------------------------------------------

def test_wer_line_and_counts(tmp_path):
    refs = {"a": "the cat sat on the mat", "b": "hello world", "c": "x y"}
    hyps = {"a": "the cat sat at the mat today", "b": "world", "c": "x y"}
    res = compute_wer(refs, hyps, bootstrap=200, out_dir=tmp_path)
    # a: 1 sub + 1 ins, b: 1 del, c: correct -> 3 errors / 10 words
    assert (res["sub"], res["ins"], res["del"], res["errors"], res["ref_words"]) == (1, 1, 1, 3, 10)
    assert res["line"] == "%WER 30.00 [ 3 / 10, 1 ins, 1 del, 1 sub ]"
    assert re.fullmatch(r"%WER \d+\.\d\d \[ \d+ / \d+, \d+ ins, \d+ del, \d+ sub \]", res["line"])
    assert res["sentence_errors"] == 2
    lo, hi = res["ci95"]
    assert lo <= res["wer"] <= hi and lo < hi
    per_utt = (tmp_path / "per_utt").read_text().splitlines()
    assert per_utt[0].split() == ["a", "ref", "the", "cat", "sat", "on", "the", "mat", "***"]
    assert per_utt[1].split() == ["a", "hyp", "the", "cat", "sat", "at", "the", "mat", "today"]
    assert per_utt[2].split() == ["a", "op", "C", "C", "C", "S", "C", "C", "I"]
    assert per_utt[3] == "a #csid 5 1 1 0"
    assert (tmp_path / "wer").read_text().startswith(res["line"])


def test_score_files_missing_hypothesis_counts_as_deletions(tmp_path):
    (tmp_path / "ref").write_text("u1 a b c\nu2 d e\n")
    (tmp_path / "hyp").write_text("u1 a b c\n")
    res = score_files(tmp_path / "ref", tmp_path / "hyp", bootstrap=0)
    assert res["del"] == 2 and res["missing_hyps"] == 1 and res["wer"] == pytest.approx(40.0)
    assert "ci95" not in res


def test_cli_make_graph_decode_score(toy, tmp_path, capsys):
    kaldiio = pytest.importorskip("kaldiio")
    from asrdistill.hmm.model import GmmHmm
    from asrdistill.cli import main

    ctx, tm = toy.monophone()
    am = khg.AmDiagGmm()
    for _ in range(tm.num_pdfs):
        g = khg.DiagGmm(1, 2)
        g.set_weights(np.ones(1, dtype=np.float32))
        g.set_means(np.zeros((1, 2), dtype=np.float32))
        g.set_invvars(np.ones((1, 2), dtype=np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    GmmHmm(toy.lang.topo_text, ctx, tm, am, toy.lang.phones).save(tmp_path / "final.mdl")
    assert main(["make-graph", "--lang", str(toy.root / "lang"), "--model", str(tmp_path / "final.mdl"),
                 "--G", str(toy.root / "G.fst"), "--out", str(tmp_path / "graph")]) == 0
    refs, ll = toy.loglikes(ctx, tm, num_utts=5, seed=11)
    kaldiio.save_ark(str(tmp_path / "ll.ark"), ll, scp=str(tmp_path / "ll.scp"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "text").write_text("".join(f"{u} {t}\n" for u, t in sorted(refs.items())))
    assert main(["decode", "--graph", str(tmp_path / "graph"), "--model", str(tmp_path / "final.mdl"),
                 "--loglikes", str(tmp_path / "ll.scp"), "--data", str(data), "--out", str(tmp_path / "dec"),
                 "--acoustic-scales", "0.1,1.0", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "%WER 0.00 [ 0 / " in out and "acoustic scale 1" in out
    assert (tmp_path / "dec" / "ascale_0.1" / "text").is_file() and (tmp_path / "dec" / "per_utt").is_file()
    assert main(["score", str(data / "text"), str(tmp_path / "dec" / "text")]) == 0
    assert capsys.readouterr().out.startswith("%WER 0.00")


# --- lattices: one decode, rescored over a grid of (acoustic scale, word insertion penalty) -------------

def _noisy(toy, ctx, tm, num_utts, seed, noise=4.0):
    """Toy scores with noise: the acoustic scale and the penalty then change the words."""
    refs, ll = toy.loglikes(ctx, tm, num_utts=num_utts, seed=seed)
    rng = np.random.default_rng(seed + 100)
    return refs, {u: m + rng.normal(0, noise, m.shape).astype(np.float32) for u, m in ll.items()}


def test_lattice_rescoring_equals_decoding_at_each_setting(toy, mono_graph):
    """The best path of one lattice (decoded at scale 0.5) rescored at (scale, penalty) is the path the
    faster decoder finds when decoding at that setting (both searches wide enough to make no search errors
    on the toy graph: at beam 13 kaldi_decoder's LatticeSimpleDecoder misses some paths that
    LatticeFasterDecoder finds)."""
    from asrdistill.decode.decoder import decode_lattices
    from asrdistill.decode.lattice import best_paths

    ctx, tm, info = mono_graph
    refs, ll = _noisy(toy, ctx, tm, num_utts=8, seed=21, noise=6.0)
    opts = DecodeOptions(beam=30.0, lattice_beam=8.0)
    scales, pens = (0.25, 0.5, 1.0), (0.0, 2.0)
    direct = {(r.acoustic_scale, r.word_ins_penalty): r for r in
              decode(info.graph_dir, tm, ll, options=opts, acoustic_scales=scales, word_ins_penalties=pens,
                     progress=False)}
    res, lats, _, _ = decode_lattices(info.graph_dir, tm, ll, sorted(ll), 0.5, opts, progress=False)
    grid = [(s, p) for s in scales for p in pens]
    differ = 0
    for u in sorted(ll):
        assert res[u].ok and best_paths(lats[u], [1.0], [0.0])[0].words == res[u].words
        assert res[u].words == direct[(0.5, 0.0)].utts[u].words
        for (s, p), path in zip(grid, best_paths(lats[u], [s / 0.5 for s, _ in grid], [p for _, p in grid])):
            assert path.ok and path.words == direct[(s, p)].utts[u].words, (u, s, p)
        differ += len({tuple(direct[k].utts[u].words) for k in grid}) > 1
    assert differ >= 2  # the settings matter on these scores: the check is not vacuous


def test_best_paths_costs_and_word_counts(toy, mono_graph):
    from asrdistill.decode.decoder import decode_lattices
    from asrdistill.decode.lattice import best_paths

    ctx, tm, info = mono_graph
    _, ll = _noisy(toy, ctx, tm, num_utts=2, seed=5)
    res, lats, _, _ = decode_lattices(info.graph_dir, tm, ll, sorted(ll), 1.0, progress=False)
    for u, la in lats.items():
        p0, heavy = best_paths(la, [1.0, 1.0], [0.0, 50.0])
        assert p0.graph_cost + p0.acoustic_cost == pytest.approx(-res[u].likelihood, abs=1e-3)
        assert heavy.num_words <= p0.num_words and heavy.num_words == len(heavy.words)


def test_lattice_sweep_extends_the_grid_past_an_edge_winner(toy, mono_graph):
    """Noisy scores need the LM: on a grid of light LM weights the winner is the grid's heaviest one, so the
    grid grows until its best point is inside it."""
    from asrdistill.decode.decoder import SweepGrid, lattice_sweep

    ctx, tm, info = mono_graph
    refs, ll = _noisy(toy, ctx, tm, num_utts=6, seed=8, noise=6.0)
    grid = SweepGrid(lmwts=(1.0, 1.5, 2.0), penalties=(0.0, 0.5, 1.0), decode_lmwt=4.0)
    sw = lattice_sweep(info.graph_dir, tm, ll, refs, grid=grid, progress=False)
    first = min(sw.table[(lw, p)]["wer"] for lw in grid.lmwts for p in grid.penalties)
    assert sw.extensions and sw.extensions[0]["from"]["lmwt"] == 2.0 and sw.extensions[0]["lmwts"] == [3.0, 4.0, 5.0]
    assert sw.table[(sw.lmwt, sw.word_ins_penalty)]["wer"] == min(r["wer"] for r in sw.table.values()) < first
    assert sw.at_edge == {"lmwt": False, "word_ins_penalty": False}
    assert set(sw.table) == {(lw, p) for lw in sw.lmwts for p in sw.penalties}
    fixed = lattice_sweep(info.graph_dir, tm, ll, refs, progress=False,
                          grid=SweepGrid(lmwts=(1.0, 1.5, 2.0), penalties=(0.0, 0.5, 1.0), decode_lmwt=4.0, extend=False))
    assert not fixed.extensions and fixed.lmwts == [1.0, 1.5, 2.0] and fixed.at_edge["lmwt"]


def test_decode_and_score_grid_is_reproducible_and_keeps_timings_apart(toy, mono_graph, tmp_path):
    import json

    from asrdistill.decode.decoder import SweepGrid, decode_and_score
    from asrdistill.report.significance import read_utt_errors

    ctx, tm, info = mono_graph
    refs, ll = _noisy(toy, ctx, tm, num_utts=6, seed=13)
    grid = SweepGrid(lmwts=(1.0, 2.0, 3.0), penalties=(0.0, 1.0))
    runs = []
    for i, nj in enumerate((1, 2)):
        out = tmp_path / f"d{i}"
        s = decode_and_score(info.graph_dir, tm, ll, out, ref_text=refs, grid=grid, progress=False, bootstrap=50,
                             nj=nj)
        runs.append({f: (out / f).read_bytes() for f in ("text", "decode.json", "per_utt", "wer.json")})
        assert "rtf" in s["timing"] and json.loads((out / "timing.json").read_text())["rescore_seconds"] >= 0
    assert runs[0] == runs[1]
    info_json = json.loads(runs[0]["decode.json"])
    assert info_json["method"] == "lattice" and "timing" not in info_json
    timing = json.loads((tmp_path / "d0" / "timing.json").read_text())
    assert {"rtf", "wall_seconds", "rescore_seconds_per_point"} <= set(timing)
    assert not set(timing) & set(info_json["stats"]) and "wall" not in runs[0]["decode.json"].decode()
    rows = {(r["lmwt"], r["word_ins_penalty"]): r["wer"] for r in info_json["grid_wer"]}
    assert set(rows) >= {(lw, p) for lw in (1.0, 2.0, 3.0) for p in (0.0, 1.0)}
    assert info_json["wer"]["wer"] == min(rows.values()) == rows[(info_json["lmwt"], info_json["word_ins_penalty"])]
    assert info_json["acoustic_scale"] == pytest.approx(1.0 / info_json["lmwt"])
    errs = read_utt_errors(tmp_path / "d0")
    assert sum(e for e, _ in errs.values()) == info_json["wer"]["errors"] and set(errs) == set(refs)


def test_gmm_loglikes_match_kaldi_decodable(toy, mono_graph):
    from asrdistill.decode.sources import GmmLoglikes

    _, tm, _ = mono_graph
    rng = np.random.default_rng(3)
    dim = 4
    am = khg.AmDiagGmm()
    for p in range(tm.num_pdfs):
        n = 1 + p % 3
        g = khg.DiagGmm(n, dim)
        g.set_weights((np.ones(n) / n).astype(np.float32))
        g.set_means(rng.normal(0, 2, (n, dim)).astype(np.float32))
        g.set_invvars(rng.uniform(0.5, 2, (n, dim)).astype(np.float32))
        g.compute_gconsts()
        am.add_pdf(g)
    feats = rng.normal(0, 2, (5, dim)).astype(np.float32)
    ll = GmmLoglikes(am)(feats)
    kaldi = khg.DecodableAmDiagGmmScaled(am, tm, feats, 1.0)
    for t in range(5):
        for tid in range(1, tm.num_transition_ids + 1, 3):
            assert ll[t, tm.transition_id_to_pdf(tid)] == pytest.approx(kaldi.log_likelihood(t, tid), abs=1e-3)


def test_lattice_arrays_reject_bad_input():
    from asrdistill.decode.lattice import parse_lattice_bytes, topological_levels
    from asrdistill.errors import UserFacingError

    with pytest.raises(UserFacingError, match="not an OpenFst binary FST"):
        parse_lattice_bytes(b"\0" * 64, "x.fst")
    with pytest.raises(UserFacingError, match="cycle"):
        topological_levels(3, np.array([0, 1, 2]), np.array([1, 2, 1]))
    assert list(topological_levels(4, np.array([0, 0, 1, 3]), np.array([1, 2, 2, 1]))) == [0, 1, 2, 0]
