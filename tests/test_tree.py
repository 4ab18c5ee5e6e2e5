"""Tests of the triphone decision tree: statistics, likelihood gains, building, Kaldi binary I/O."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from asrdistill.tree import (Root, TreeStats, Tree, build_tree, gauss_objf, make_questions, make_roots,
                             read_tree, write_tree)
from asrdistill.tree.build import _cluster_bottom_up, _Splitter, parse_roots
from asrdistill.tree.kaldi_io import (context_dependency_from_bytes, context_dependency_to_bytes, from_context_dependency,
                                     to_context_dependency)
from asrdistill.tree.questions import Questions

kaldi_hmm_gmm = pytest.importorskip("kaldi_hmm_gmm")

SIL = 7
PHONES = list(range(1, 8))  # 1..6 speech (3 pdf-classes), 7 = silence (5 pdf-classes)
NPC = {p: (5 if p == SIL else 3) for p in PHONES}


def brute_force_loglik(x: np.ndarray) -> float:
    """Log-likelihood of frames under their own ML diagonal Gaussian, from the frames themselves."""
    mu, var = x.mean(0), x.var(0)
    return float(np.sum(-0.5 * np.log(2 * math.pi * var) - 0.5 * (x - mu) ** 2 / var))


def synthetic_stats(num_frames=60000, dim=4, seed=0, left_effect=6.0, sep=8.0):
    """Frames whose mean depends on (centre, pdf-class) and on whether the left phone is in {1,2,3}."""
    rng = np.random.default_rng(seed)
    left = rng.integers(0, 8, num_frames)
    centre = rng.integers(1, 8, num_frames)
    right = rng.integers(0, 8, num_frames)
    pc = (rng.random(num_frames) * np.array([NPC[c] for c in centre])).astype(int)
    left_class = np.isin(left, [1, 2, 3]) & (centre != SIL)
    mean = sep * (centre * 5 + pc)[:, None] + left_effect * left_class[:, None]
    mean = mean * np.linspace(1, 0.5, dim)[None]
    x = mean + rng.standard_normal((num_frames, dim))
    stats = TreeStats(dim)
    stats.accumulate_frames(x.astype(np.float32), left, centre, right, pc)
    return stats, (left, centre, right, pc, left_class, x)


def all_contexts():
    rows = []
    for l, c, r in itertools.product(range(8), PHONES, range(8)):
        for p in range(NPC[c]):
            rows.append((l, c, r, p))
    return np.array(rows)


# ----------------------------------------------------------------------------------------- statistics
def test_objf_equals_brute_force_loglik_and_gain():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (500, 3)) * [1, 2, 3]
    b = rng.normal(2, 1, (300, 3))
    stats = []
    for x in (a, b, np.concatenate([a, b])):
        stats.append(gauss_objf(len(x), x.sum(0), (x ** 2).sum(0), var_floor=1e-4))
    for x, s in zip((a, b, np.concatenate([a, b])), stats):
        assert s == pytest.approx(brute_force_loglik(x), rel=1e-9)
    gain = stats[0] + stats[1] - stats[2]
    brute = brute_force_loglik(a) + brute_force_loglik(b) - brute_force_loglik(np.concatenate([a, b]))
    assert gain == pytest.approx(brute, rel=1e-8)
    assert gain > 0


def test_best_split_gain_matches_brute_force_over_all_questions():
    stats, (left, centre, right, pc, _, x) = synthetic_stats(num_frames=8000, seed=3)
    questions = Questions([(1, 2, 3), (4, 5), (0,), (2, 6, 7)], [(0,), (0, 1)])
    splitter = _Splitter(stats, questions, num_values=8, min_count=1)
    keys = stats.keys
    rows = np.flatnonzero((keys[:, 1] == 2) & (keys[:, 3] == 0))
    gain, q = splitter.best(rows, allow_centre=False)
    frames_in = (centre == 2) & (pc == 0)
    cols = {0: left, 2: right, -1: pc}
    brute = {}
    for qi, (key, qset) in enumerate(zip(splitter.qkeys, splitter.qsets)):
        if key == 1:
            continue
        yes = frames_in & np.isin(cols[int(key)], qset)
        no = frames_in & ~yes
        if yes.sum() == 0 or no.sum() == 0:
            continue
        brute[qi] = brute_force_loglik(x[yes]) + brute_force_loglik(x[no]) - brute_force_loglik(x[frames_in])
    best_q = max(brute, key=brute.get)
    assert q == best_q
    assert gain == pytest.approx(brute[best_q], rel=1e-6)
    assert splitter.qkeys[q] == 0 and set(splitter.qsets[q]) == {1, 2, 3}  # the planted left-context effect
    # more rows than the small-leaf path handles: all pdf-classes of phone 2 (the pdf-class split wins)
    rows = np.flatnonzero(keys[:, 1] == 2)
    assert len(rows) > 64
    gain, q = splitter.best(rows, allow_centre=False)
    frames_in = centre == 2
    yes = frames_in & np.isin(cols[int(splitter.qkeys[q])], splitter.qsets[q])
    brute = brute_force_loglik(x[yes]) + brute_force_loglik(x[frames_in & ~yes]) - brute_force_loglik(x[frames_in])
    assert splitter.qkeys[q] == -1 and gain == pytest.approx(brute, rel=1e-6)


def test_accumulate_contexts_from_segments_and_merge_save_load(tmp_path):
    feats = np.arange(7 * 2, dtype=np.float32).reshape(7, 2)
    segments = [(3, np.array([0, 1])), (3, np.array([0, 1, 2])), (5, np.array([0, 0]))]
    s = TreeStats(2)
    s.accumulate(feats, segments)
    got = {tuple(k): c for k, c in zip(s.keys.tolist(), s.counts)}
    assert got == {(0, 3, 3, 0): 1, (0, 3, 3, 1): 1, (3, 3, 5, 0): 1, (3, 3, 5, 1): 1, (3, 3, 5, 2): 1,
                   (3, 5, 0, 0): 2}
    i = s.keys.tolist().index([3, 5, 0, 0])
    np.testing.assert_allclose(s.sums[i], feats[5] + feats[6])
    np.testing.assert_allclose(s.sumsq[i], feats[5] ** 2 + feats[6] ** 2)
    with pytest.raises(ValueError):
        s.accumulate(feats[:6], segments)

    full, (left, centre, right, pc, _, x) = synthetic_stats(num_frames=5000, seed=5)
    h1, h2 = TreeStats(4), TreeStats(4)
    h1._FRAME_BUFFER, h1._FLUSH_ROWS = 300, 100  # exercise the buffered reductions and folding
    for a in range(0, 2000, 100):
        b = a + 100
        h1.accumulate_frames(x[a:b], left[a:b], centre[a:b], right[a:b], pc[a:b])
    h2.accumulate_frames(x[2000:], left[2000:], centre[2000:], right[2000:], pc[2000:])
    h1.merge(h2)
    np.testing.assert_array_equal(h1.keys, full.keys)
    np.testing.assert_allclose(h1.sums, full.sums, rtol=1e-6)
    np.testing.assert_allclose(h1.counts, full.counts)
    # weighted frames: weight 2 = the frame twice
    w = TreeStats(4)
    w.accumulate_frames(x[:100], left[:100], centre[:100], right[:100], pc[:100], weights=np.full(100, 2.0))
    d = TreeStats(4)
    for _ in range(2):
        d.accumulate_frames(x[:100], left[:100], centre[:100], right[:100], pc[:100])
    np.testing.assert_allclose(w.sumsq, d.sumsq, rtol=1e-6)
    np.testing.assert_allclose(w.counts, d.counts)
    h1.save(tmp_path / "stats.npz")
    back = TreeStats.load(tmp_path / "stats.npz")
    np.testing.assert_array_equal(back.keys, h1.keys)
    np.testing.assert_array_equal(back.sumsq, h1.sumsq)


# ----------------------------------------------------------------------------------------- building
@pytest.fixture(scope="module")
def built():
    stats, data = synthetic_stats()
    roots = make_roots(PHONES, not_split=[SIL])
    questions = make_questions(stats, [r.phones for r in roots], num_pdf_classes=NPC)
    assert len(questions.pdf_class_questions) == 4 + 5 - 1  # prefixes {0..i}, singletons; {0} once
    tree, info = build_tree(stats, questions, roots, NPC, num_leaves=200, thresh=100, min_count=50,
                            cluster_thresh=100, return_info=True)
    return stats, data, roots, questions, tree, info


def test_recovers_planted_tying(built):
    stats, _, _, _, tree, info = built
    # truth: one class per (centre, pdf-class), times left-in-{1,2,3} for speech phones
    ctx = all_contexts()
    l, c, r, p = ctx.T
    truth = (c * 10 + p) * 2 + (np.isin(l, [1, 2, 3]) & (c != SIL))
    pdfs = tree.compute_array(l, c, r, p)
    assert np.all(pdfs >= 0)
    # the pdfs partition the contexts exactly as the planted classes do (a bijection)
    pairs = set(zip(truth.tolist(), pdfs.tolist()))
    assert len(pairs) == len(set(truth.tolist())) == len(set(pdfs.tolist()))
    assert tree.num_pdfs == 6 * 3 * 2 + 5
    assert info["num_leaves"] == tree.num_pdfs  # nothing planted to merge
    # Kaldi's default --cluster-thresh=-1 merges up to the smallest split made
    _, info = build_tree(stats, built[3], built[2], NPC, num_leaves=200, thresh=100, min_count=50,
                         return_info=True)
    assert info["cluster_thresh"] == info["smallest_split"] > 100


def test_num_leaves_and_min_count_respected():
    stats, _ = synthetic_stats(num_frames=30000, left_effect=0.5, sep=0.3, seed=7)
    roots = make_roots(PHONES)
    questions = make_questions(stats, [r.phones for r in roots])
    for n in (10, 25, 60):
        tree, info = build_tree(stats, questions, roots, NPC, num_leaves=n, thresh=0, min_count=200,
                                cluster_thresh=0, return_info=True)
        assert info["num_leaves"] <= n
        assert tree.num_pdfs == info["num_leaves"]  # no merging with cluster_thresh=0
        counts, _, _ = tree.pdf_stats(stats)
        assert counts.min() >= 200
    assert info["num_leaves"] == 60  # enough data for 60 leaves of >= 200 frames
    tree, info = build_tree(stats, questions, roots, NPC, num_leaves=60, thresh=0, min_count=2000,
                            cluster_thresh=0, return_info=True)
    assert info["num_leaves"] < 60
    assert tree.pdf_stats(stats)[0].min() >= 2000


def test_merging_reduces_pdfs_within_roots_only(built):
    stats, _, roots, questions, _, _ = built
    tree, info = build_tree(stats, questions, roots, NPC, num_leaves=200, thresh=100, min_count=50,
                            cluster_thresh=1e12, return_info=True)
    # everything mergeable is merged: one pdf per shared root, one per pdf-class of the not-split root
    assert tree.num_pdfs == 6 + 5
    ctx = all_contexts()
    pdfs = tree.compute_array(*ctx.T)
    for pdf in np.unique(pdfs):
        assert len(np.unique(ctx[pdfs == pdf, 1])) == 1


def test_unseen_phones_and_contexts_still_map():
    stats, _ = synthetic_stats(num_frames=20000, seed=2)
    phones = PHONES + [8, 9]  # 8, 9 never seen
    npc = {**NPC, 8: 3, 9: 5}
    roots = make_roots(phones, not_split=[9])
    questions = make_questions(stats, [r.phones for r in roots])
    tree = build_tree(stats, questions, roots, npc, num_leaves=100, thresh=50, min_count=20)
    for l, c, r in itertools.product(range(10), phones, range(10)):
        for p in range(npc[c]):
            assert tree.compute(l, c, r, p) >= 0
    counts, means, variances = tree.pdf_stats(stats)
    assert len(counts) == tree.num_pdfs and means.shape == (tree.num_pdfs, 4)
    assert np.all(variances > 0) and np.sum(counts == 0) >= 1 + 5


def test_pdf_stats_pool_the_frames(built):
    stats, (left, centre, right, pc, _, x), _, _, tree, _ = built
    counts, means, variances = tree.pdf_stats(stats)
    pdf_of_frame = tree.compute_array(left, centre, right, pc)
    for pdf in (0, tree.num_pdfs // 2, tree.num_pdfs - 1):
        sel = pdf_of_frame == pdf
        assert counts[pdf] == sel.sum()
        np.testing.assert_allclose(means[pdf], x[sel].mean(0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(variances[pdf], x[sel].var(0), rtol=1e-4)


def test_cluster_bottom_up_merges_closest_first():
    def objf(d):
        return gauss_objf(d[..., 0], d[..., 1:2], d[..., 2:3], 1e-3)

    def item(n, mu):
        return [n, n * mu, n * (mu * mu + 1)]
    st = np.array([item(100, 0.0), item(100, 0.1), item(100, 5.0), item(100, 5.2), item(100, 20.0)])
    assign = _cluster_bottom_up(st, thresh=50.0, objf=objf)
    assert assign[0] == assign[1] and assign[2] == assign[3]
    assert len(set(assign.tolist())) == 3
    assert len(set(_cluster_bottom_up(st, thresh=1e9, objf=objf).tolist())) == 1


# ----------------------------------------------------------------------------------------- Kaldi I/O
def test_kaldi_context_dependency_agrees_on_every_context(built):
    tree = built[4]
    cd = to_context_dependency(tree)
    assert cd.context_width == 3 and cd.central_position == 1
    assert cd.num_pdfs == tree.num_pdfs
    ctx = all_contexts()
    ours = tree.compute_array(*ctx.T)
    for (l, c, r, p), pdf in zip(ctx.tolist(), ours.tolist()):
        ok, ans = cd.compute([l, c, r], p)
        assert ok and ans == pdf, (l, c, r, p)
    # a phone outside the tree has no pdf in either
    assert cd.compute([1, 9, 1], 0)[0] is False
    assert tree.compute_array(1, 9, 1, 0)[0] == -1


def test_binary_roundtrip_and_file(built, tmp_path):
    tree = built[4]
    data = context_dependency_to_bytes(tree)
    back = context_dependency_from_bytes(data)
    assert context_dependency_to_bytes(back) == data
    ctx = all_contexts()
    np.testing.assert_array_equal(back.compute_array(*ctx.T), tree.compute_array(*ctx.T))
    write_tree(tmp_path / "tree", tree)
    raw = (tmp_path / "tree").read_bytes()
    assert raw[:2] == b"\0B" and raw[2:] == data
    np.testing.assert_array_equal(read_tree(tmp_path / "tree").compute_array(*ctx.T), tree.compute_array(*ctx.T))
    # Kaldi's own writer produces the same file from the loaded ContextDependency
    cd = to_context_dependency(tree)
    cd.write(True, str(tmp_path / "tree.kaldi"))
    assert (tmp_path / "tree.kaldi").read_bytes() == raw


def test_reads_kaldi_written_monophone_tree(tmp_path):
    cd = kaldi_hmm_gmm.monophone_context_dependency([1, 2, 3], [0, 3, 3, 5])
    cd.write(True, str(tmp_path / "mono"))
    tree = read_tree(tmp_path / "mono")
    assert (tree.context_width, tree.central_position) == (1, 0)
    assert tree.num_pdfs == 11 == cd.num_pdfs
    for phone, n in ((1, 3), (2, 3), (3, 5)):
        for p in range(n):
            assert tree.compute(0, phone, 0, p) == cd.compute([phone], p)[1]
    assert context_dependency_to_bytes(from_context_dependency(cd)) == context_dependency_to_bytes(tree)


def test_bad_tree_bytes_raise_user_facing_error():
    from asrdistill.errors import UserFacingError

    data = context_dependency_to_bytes(Tree(built_tree_small()))
    with pytest.raises(UserFacingError):
        context_dependency_from_bytes(data[:-10])
    with pytest.raises(UserFacingError):
        context_dependency_from_bytes(b"Nonsense " + data)


def built_tree_small():
    from asrdistill.tree import ConstantEventMap, SplitEventMap, TableEventMap
    return TableEventMap(1, [None, SplitEventMap(0, (1, 2), ConstantEventMap(0), ConstantEventMap(1)),
                             TableEventMap(-1, [ConstantEventMap(2), ConstantEventMap(3)])])


def test_parse_roots_and_make_roots():
    roots = parse_roots("shared split A B\nnot-shared not-split SIL\n", {"A": 1, "B": 2, "SIL": 3})
    assert roots == [Root((1, 2), True, True), Root((3,), False, False)]
    assert make_roots([1, 2, 3], not_split=[3], shared_sets=[[1, 2]]) == roots


def _topology_text(speech, silence) -> str:
    def entry(phones, n):
        states = [f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>"
                  for s in range(n)] + [f"<State> {n} </State>"]
        return ("<TopologyEntry>\n<ForPhones>\n" + " ".join(map(str, phones)) + "\n</ForPhones>\n"
                + "\n".join(states) + "\n</TopologyEntry>\n")
    return "<Topology>\n" + entry(speech, 3) + entry(silence, 5) + "</Topology>\n"


def test_tree_works_in_kaldi_transition_model(built):
    tree = built[4]
    topo = kaldi_hmm_gmm.HmmTopology()
    topo.read(_topology_text(PHONES[:-1], [SIL]))
    tm = kaldi_hmm_gmm.TransitionModel(ctx_dep=to_context_dependency(tree), hmm_topo=topo)
    assert tm.num_pdfs == tree.num_pdfs
    pdfs = set(np.asarray(tm.transition_id_to_pdf_array()).tolist()[1:])
    assert pdfs == set(range(tree.num_pdfs))
