"""GMM-HMM training and alignment on a tiny synthetic corpus with known phone boundaries."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from asrdistill.align.alidir import import_pdf_alignments, read_alignment_dir
from asrdistill.align.boundaries import (alignments_to_segments, equal_alignment_segments, read_ctm,
                                         score_boundaries)
from asrdistill.hmm.cepstra import GmmFeatures, add_deltas
from asrdistill.hmm.model import GmmHmm
from toy_corpus import make_toy_corpus
from asrdistill.align.train import GmmTrainConfig, align_data, train_mono, train_tri, tri_config
from asrdistill.errors import UserFacingError
from asrdistill.features.store import FrameStore
from asrdistill.lang import prepare_lang, transcripts_to_ids

MONO_CFG = GmmTrainConfig(num_iters=8, tot_gauss=100, max_iter_inc=5, realign_iters=(1, 2, 3, 4, 6))


@pytest.fixture(scope="module")
def mono_system(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    corpus = make_toy_corpus(root, num_utts=40)
    lang = prepare_lang(corpus.dict_dir, root / "lang")
    transcripts = transcripts_to_ids(lang, corpus.text)
    model, alis, report = train_mono(lang, str(corpus.feat_dir), transcripts, MONO_CFG)
    return root, corpus, lang, transcripts, model, alis, report


def test_gmm_features_shapes_and_deltas():
    x = np.random.default_rng(0).normal(size=(7, 40)).astype(np.float32)
    f = GmmFeatures()(x)
    assert f.shape == (7, 39) and f.dtype == np.float32
    ramp = np.arange(10, dtype=np.float64)[:, None]
    d = add_deltas(ramp)
    assert np.allclose(d[2:-2, 1], 1.0) and np.allclose(d[4:-4, 2], 0.0)


def test_mono_alignment_lengths_and_likelihood(mono_system):
    _, corpus, _, _, _, alis, report = mono_system
    store = FrameStore(corpus.feat_dir)
    assert set(alis) == set(store.utts)
    for utt, a in alis.items():
        assert len(a) == len(store.get(utt))
    likes = [it["acc_like_per_frame"] for it in report.iterations]
    assert likes[-1] > likes[0] + 5


def test_mono_beats_equal_alignment(mono_system):
    _, corpus, _, _, model, alis, _ = mono_system
    ref = read_ctm(corpus.data_dir / "phones.ctm")
    store = FrameStore(corpus.feat_dir)
    trained = score_boundaries(ref, alignments_to_segments(alis, model, frame_offset=0.0))
    flat = score_boundaries(ref, equal_alignment_segments(ref, dict(zip(store.utts, store.lengths.tolist()))))
    assert trained["matched_fraction"] > 0.95
    assert trained["within_20ms"] > 50 and trained["within_20ms"] > flat["within_20ms"] + 30


def test_model_save_load_identical_likelihoods(mono_system, tmp_path):
    _, corpus, _, _, model, _, _ = mono_system
    path = tmp_path / "final.mdl"
    model.save(path)
    loaded = GmmHmm.load(path)
    x = GmmFeatures()(FrameStore(corpus.feat_dir).frames[:20])
    for pdf in range(model.num_pdfs):
        for t in range(0, 20, 5):
            assert loaded.am.log_likelihood(pdf, x[t]) == model.am.log_likelihood(pdf, x[t])
    assert loaded.trans_model.num_transition_ids == model.trans_model.num_transition_ids
    assert np.array_equal(loaded.tid2pdf(), model.tid2pdf())
    assert loaded.to_bytes() == model.to_bytes()
    path.write_bytes(b"not a model")
    with pytest.raises(UserFacingError):
        GmmHmm.load(path)


def test_align_dir_and_failures(mono_system, tmp_path):
    _, corpus, lang, transcripts, model, _, _ = mono_system
    bad = dict(transcripts)
    first = sorted(bad)[0]
    bad[first] = bad[first] * 40  # far too many words for its frames: cannot align
    alis, failed = align_data(model, lang, corpus.feat_dir, bad, tmp_path / "ali", beam=10, retry_beam=20)
    assert failed == [first] and first not in alis
    ad = read_alignment_dir(tmp_path / "ali")
    assert ad.num_pdfs == model.num_pdfs and len(ad.pdf) == len(transcripts) - 1
    assert ad.counts.sum() == sum(len(v) for v in ad.pdf.values())
    assert (tmp_path / "ali" / "failed.txt").read_text() == f"{first}\n"


def test_import_pdf_alignments(mono_system, tmp_path):
    import kaldiio
    _, corpus, _, _, model, alis, _ = mono_system
    tid2pdf = model.tid2pdf()
    pdf = {u: tid2pdf[a] for u, a in alis.items()}
    kaldiio.save_ark(str(tmp_path / "pdf.ark"), pdf, scp=str(tmp_path / "pdf.scp"))
    out = import_pdf_alignments(tmp_path / "pdf.scp", model.num_pdfs, corpus.feat_dir, tmp_path / "byo")
    ad = read_alignment_dir(out)
    assert all(np.array_equal(ad.pdf[u], pdf[u]) for u in pdf)
    u = sorted(pdf)[0]
    kaldiio.save_ark(str(tmp_path / "short.ark"), {u: pdf[u][:-1]})
    with pytest.raises(UserFacingError, match=f"{u}.*feature frames"):
        import_pdf_alignments(tmp_path / "short.ark", model.num_pdfs, corpus.feat_dir, tmp_path / "byo2")
    kaldiio.save_ark(str(tmp_path / "range.ark"), {u: pdf[u] + model.num_pdfs})
    with pytest.raises(UserFacingError, match=f"{u}.*outside"):
        import_pdf_alignments(tmp_path / "range.ark", model.num_pdfs, corpus.feat_dir, tmp_path / "byo3")


def test_triphone_training(mono_system):
    _, corpus, lang, transcripts, model, alis, _ = mono_system
    cfg = tri_config(num_iters=4, realign_iters=(2,), max_iter_inc=3, tot_gauss=150, num_leaves=50,
                     tree_min_count=20)
    tri, tri_alis, report = train_tri(lang, str(corpus.feat_dir), transcripts, model, alis, cfg)
    assert tri.info["kind"] == "tri" and tri.num_pdfs > model.num_pdfs
    store = FrameStore(corpus.feat_dir)
    assert all(len(a) == len(store.get(u)) for u, a in tri_alis.items())
    ref = read_ctm(corpus.data_dir / "phones.ctm")
    score = score_boundaries(ref, alignments_to_segments(tri_alis, tri, frame_offset=0.0))
    assert score["matched_fraction"] > 0.95 and score["within_40ms"] > 70


def test_gmm_training_is_reproducible(mono_system):
    """Two runs with the same inputs give byte-identical models and alignments, whatever nj is (Kaldi's own
    mix-up draws from std::random_device, so ours is seeded; statistics are summed in job order)."""
    _, corpus, lang, transcripts, model, alis, _ = mono_system
    cfg = tri_config(num_iters=4, realign_iters=(2,), max_iter_inc=3, tot_gauss=150, num_leaves=50,
                     tree_min_count=20)
    runs = [train_tri(lang, str(corpus.feat_dir), transcripts, model, alis, replace(cfg, nj=nj))
            for nj in (2, 2, 1)]
    first = runs[0][0].to_bytes()
    assert runs[0][0].am.num_gauss > runs[0][0].num_pdfs  # the runs did mix up
    for tri, tri_alis, _ in runs[1:]:
        assert tri.to_bytes() == first
        assert set(tri_alis) == set(runs[0][1])
        assert all(np.array_equal(tri_alis[u], runs[0][1][u]) for u in tri_alis)
    other = train_tri(lang, str(corpus.feat_dir), transcripts, model, alis, replace(cfg, seed=1))[0]
    assert other.to_bytes() != first  # the seed is what decides the perturbation


def test_mix_up_targets_follow_kaldi_rules():
    from asrdistill.hmm.mixup import split_targets

    occs = np.array([1000.0, 100.0, 0.0, 30.0])
    t = split_targets(occs, 16, power=1.0, min_count=20.0)
    assert t.sum() == 16 and t[2] == 1 and t[3] == 1  # no counts / too few for two: stays at one
    assert t[0] > t[1] > 1
    assert split_targets(occs, 100, power=1.0, min_count=20.0)[1] == 4  # 5 * 20 >= 100 freezes it at 4


def test_cli_chain_with_boost_silence(mono_system, tmp_path, capsys):
    from asrdistill.cli import main
    root, corpus, _, _, _, _, _ = mono_system
    lang_dir, exp = tmp_path / "lang", tmp_path / "exp"
    data, feats = str(corpus.data_dir), str(corpus.feat_dir)
    assert main(["prepare-lang", str(corpus.dict_dir), str(lang_dir)]) == 0
    assert main(["train-mono", data, feats, str(lang_dir), str(exp / "mono"), "--num-iters", "4",
                 "--num-gauss", "60", "--max-iter-inc", "2", "--realign-iters", "1 2", "--boost-silence", "1.5",
                 "--nj", "2", "--subset", "30"]) == 0
    assert main(["align", data, feats, str(lang_dir), str(exp / "mono"), str(exp / "mono" / "ali_train"),
                 "--nj", "1"]) == 0
    assert main(["score-boundaries", str(exp / "mono" / "ali_train"), "--json", str(exp / "b.json")]) == 0
    out = capsys.readouterr().out
    assert "mono/ali_train" in out and (exp / "b.json").is_file()
    assert (exp / "mono" / "ali_train" / "phones.ctm").is_file()


def test_parallel_pass_matches_serial_and_stats_roundtrip(mono_system):
    """nj=2 gives the same alignments and statistics as nj=1, and the statistics re-injected into a Kaldi
    accumulator (two weighted points per Gaussian) reproduce count, mean and variance."""
    from asrdistill.align.engine import PassConfig, run_pass, stats_to_accumulator
    _, corpus, lang, transcripts, model, _, _ = mono_system
    kw = dict(transcripts=transcripts, lexicon_fst=str(lang.L_path), disambig=lang.disambig_phones)
    utts = sorted(transcripts)
    r1 = run_pass(model, str(corpus.feat_dir), utts, PassConfig(), nj=1, **kw)
    import asrdistill.align.engine as engine
    old_buffer = engine._STATS_BUFFER_FRAMES
    engine._STATS_BUFFER_FRAMES = 300  # also exercise folding the statistics in several batches
    try:
        r2 = run_pass(model, str(corpus.feat_dir), utts, PassConfig(), nj=2, **kw)
    finally:
        engine._STATS_BUFFER_FRAMES = old_buffer
    assert all(np.array_equal(r1.alignments[u], r2.alignments[u]) for u in utts)
    assert np.allclose(r1.trans_stats, r2.trans_stats)
    for p in range(model.num_pdfs):
        assert np.allclose(r1.gmm_occ[p], r2.gmm_occ[p]) and np.allclose(r1.gmm_x2[p], r2.gmm_x2[p])
    acc = stats_to_accumulator(model.am, r1)
    for p in range(0, model.num_pdfs, 5):
        a = acc.get_acc(p)
        assert np.allclose(a.occupancy, r1.gmm_occ[p])
        assert np.allclose(a.mean_accumulator, r1.gmm_x[p], rtol=1e-4, atol=1e-2)
        assert np.allclose(a.variance_accumulator, r1.gmm_x2[p], rtol=1e-4, atol=1e-1)


def test_numpy_gmm_stats_match_kaldi_accumulator(mono_system):
    import kaldi_hmm_gmm as khg

    from asrdistill.align.engine import gmm_params, gmm_stats
    _, corpus, _, _, model, alis, _ = mono_system
    store = FrameStore(corpus.feat_dir)
    tid2pdf = model.tid2pdf()
    utts = sorted(alis)[:5]
    feats = np.concatenate([GmmFeatures()(store.get(u)) for u in utts])
    pdfs = np.concatenate([tid2pdf[alis[u]] for u in utts])
    acc = khg.AccumAmDiagGmm()
    acc.init(model.am, int(khg.GmmUpdateFlags.kGmmAll.value))
    like = sum(acc.accumulate_for_gmm(model.am, feats[t], int(pdfs[t]), 1.0) for t in range(len(pdfs)))
    occ, sx, sx2, total = gmm_stats(gmm_params(model.am), feats, pdfs)
    assert abs(total - like) < 1e-3 * abs(like)
    for p in set(pdfs.tolist()):
        a = acc.get_acc(p)
        assert np.allclose(a.occupancy, occ[p], rtol=1e-4, atol=1e-3)
        assert np.allclose(a.mean_accumulator, sx[p], rtol=1e-4, atol=1e-2)
        assert np.allclose(a.variance_accumulator, sx2[p], rtol=1e-4, atol=1e-1)
