"""The executor interface (asrdistill.parallel) and the Dask executor (asrdistill.cluster) on a local Dask
cluster of 2 worker processes: feature extraction, a GMM training run and decoding give the same bytes,
models and hypotheses as the local executor."""
from __future__ import annotations

import logging
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

distributed = pytest.importorskip("distributed")

from asrdistill.errors import UserFacingError  # noqa: E402
from asrdistill.parallel import LocalExecutor, make_executor, run_ordered  # noqa: E402

FEATURE_FILES = ["frames.f32", "frames.json", "feats.ark", "feats.scp", "cmvn.ark", "cmvn.scp", "utt2num_frames",
                 "fbank.json"]


@pytest.fixture(scope="module")
def scheduler():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
    try:
        yield cluster.scheduler_address
    finally:
        from asrdistill import cluster as ours
        for client in ours._CLIENTS.values():
            client.close()
        ours._CLIENTS.clear()
        cluster.close()


# -- the interface -----------------------------------------------------------------------------------

@pytest.mark.parametrize("nj", [1, 3])
def test_local_executor_order_shared_and_lazy_jobs(nj):
    ex = LocalExecutor(nj, ahead=2)
    consumed = []

    def jobs():  # a generator: consumed only as the workers keep up
        for i in range(20):
            consumed.append(i)
            yield i

    it = ex.map(pow, jobs(), shared=3)
    assert next(it) == 0
    assert len(consumed) <= max(1, nj * 2)
    assert list(it) == [i ** 3 for i in range(1, 20)]
    assert run_ordered(ex, abs, [-2, 5, -7]) == [2, 5, 7]


def test_local_worker_error_and_death():
    with pytest.raises(ValueError, match="'x'"):
        list(LocalExecutor(2).map(int, ["1", "x", "3"]))
    with pytest.raises(UserFacingError, match="died"):
        list(LocalExecutor(2).map(os._exit, [3, 3]))


def test_dask_executor_order_errors_and_connection(scheduler):
    ex = make_executor(1, scheduler)
    assert type(ex).__name__ == "ClusterExecutor" and ex.nj == 2
    assert list(ex.map(pow, range(30), shared=2)) == [i ** 2 for i in range(30)]
    with pytest.raises(ValueError, match="'x'"):
        list(ex.map(int, ["1", "x", "3"]))
    from asrdistill.cluster import connect
    assert connect(scheduler) is ex.backend.client  # one connection per scheduler, reused by every pass
    with pytest.raises(UserFacingError, match="cannot connect"):
        connect("tcp://127.0.0.1:9", timeout=1)


# -- feature extraction ------------------------------------------------------------------------------

def _data_dir(root):
    from asrdistill.data.kaldi_dir import write_data_dir
    from testsignal import speech_like

    (root / "wav").mkdir(parents=True)
    wav, text, utt2spk = {}, {}, {}
    rng = np.random.default_rng(5)
    for k, spk in enumerate(["a01", "b02", "c03"]):
        for i in range(4):
            utt = f"{spk}-{i:03d}"
            path = root / "wav" / f"{utt}.wav"
            sf.write(path, speech_like(float(rng.uniform(0.3, 1.0)), 16000, seed=10 * k + i).astype(np.int16),
                     16000, subtype="PCM_16")
            wav[utt], text[utt], utt2spk[utt] = str(path), "hello", spk
    return write_data_dir(root / "data", wav, text, utt2spk)


def _compute_feats_cli(argv: list[str]) -> int:
    """``asrdistill compute-feats ARGV``, with that command's parser alone."""
    import argparse

    from asrdistill.commands import compute_feats

    parser = argparse.ArgumentParser()
    compute_feats.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compute-feats", *argv])
    return args.func(args)


def test_features_on_dask_are_byte_identical(scheduler, tmp_path, capsys):
    from asrdistill.features.extract import compute_features

    main = _compute_feats_cli

    data = _data_dir(tmp_path)
    compute_features(data, tmp_path / "local1", nj=1, progress=False)
    assert main([str(data), str(tmp_path / "dask"), "--scheduler", scheduler, "--no-progress"]) == 0
    assert "12 utterances" in capsys.readouterr().out
    for name in FEATURE_FILES:
        ref = (tmp_path / "local1" / name).read_bytes()
        got = (tmp_path / "dask" / name).read_bytes()
        if name.endswith(".scp"):  # scp lines name their own dir's archive
            got = got.replace(b"/dask/", b"/local1/")
        assert got == ref, name
    # the scheduler never enters the fingerprint: the same command run locally finds the work done
    assert main([str(data), str(tmp_path / "dask"), "--nj", "1", "--no-progress"]) == 0
    assert "already complete" in capsys.readouterr().out


def test_worker_error_on_dask_is_clear_and_leaves_nothing(scheduler, tmp_path):
    from asrdistill.features.extract import compute_features

    data = _data_dir(tmp_path)
    (tmp_path / "wav" / "b02-001.wav").write_bytes(b"RIFF not really a wav file")
    with pytest.raises(UserFacingError, match="b02-001"):
        compute_features(data, tmp_path / "fbank", progress=False, scheduler=scheduler)
    assert not (tmp_path / "fbank").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_dask_map_stopped_by_an_error_waits_for_the_jobs_it_sent(scheduler, tmp_path):
    """A task running on a worker cannot be stopped: the map must not return before it ends, or it writes into
    a directory its caller is already removing (it left a temporary feature dir behind now and then)."""
    done = tmp_path / "slow.done"

    def job(j):  # nested: cloudpickle sends it to the workers by value
        import time

        path, fail = j
        if fail:
            raise ValueError("job failed")
        time.sleep(1.0)
        with open(path, "w") as f:
            f.write("x")
        return path

    with pytest.raises(ValueError, match="job failed"):
        list(make_executor(scheduler=scheduler).map(job, [("", True), (str(done), False)]))
    assert done.exists()


# -- GMM training and alignment --------------------------------------------------------------------

def test_gmm_training_and_alignment_on_dask_are_identical(scheduler, tmp_path):
    from asrdistill.align.engine import PassConfig, run_pass
    from toy_corpus import make_toy_corpus
    from asrdistill.align.train import GmmTrainConfig, train_mono
    from asrdistill.lang import prepare_lang, transcripts_to_ids

    corpus = make_toy_corpus(tmp_path, num_utts=40)
    lang = prepare_lang(corpus.dict_dir, tmp_path / "lang")
    transcripts = transcripts_to_ids(lang, corpus.text)
    cfg = GmmTrainConfig(num_iters=3, tot_gauss=60, max_iter_inc=2, realign_iters=(1, 2))
    local, local_ali, _ = train_mono(lang, str(corpus.feat_dir), transcripts, cfg)
    from dataclasses import replace
    remote, remote_ali, _ = train_mono(lang, str(corpus.feat_dir), transcripts, replace(cfg, scheduler=scheduler))
    assert remote.to_bytes() == local.to_bytes()  # every pass's statistics summed in the same order
    assert local_ali.keys() == remote_ali.keys()
    assert all(np.array_equal(local_ali[u], remote_ali[u]) for u in local_ali)
    kw = dict(transcripts=transcripts, lexicon_fst=str(lang.L_path), disambig=lang.disambig_phones)
    utts = sorted(transcripts)
    a = run_pass(local, str(corpus.feat_dir), utts, PassConfig(accumulate=False), nj=1, **kw)
    b = run_pass(local, str(corpus.feat_dir), utts, PassConfig(accumulate=False), scheduler=scheduler, **kw)
    assert a.align_like == b.align_like and a.failed == b.failed
    assert all(np.array_equal(a.alignments[u], b.alignments[u]) for u in utts)


# -- decoding ------------------------------------------------------------------------------------------

def test_decoding_on_dask_gives_identical_hypotheses(scheduler, tmp_path):
    pytest.importorskip("kaldi_hmm_gmm")
    from test_decode import Toy  # tests/ is on sys.path

    from asrdistill.decode import decode, make_hclg

    toy = Toy(tmp_path)
    ctx, tm = toy.monophone()
    info = make_hclg(toy.root / "lang", ctx, tm, toy.root / "G.fst", toy.root / "graph")
    refs, ll = toy.loglikes(ctx, tm, num_utts=10)
    scales = [0.05, 1.0]  # at 0.05 the LM outweighs the acoustics: other words than the references
    local = decode(info.graph_dir, tm, ll, acoustic_scales=scales, progress=False)
    remote = decode(info.graph_dir, tm, ll.__getitem__, utts=sorted(ll), acoustic_scales=scales, progress=False,
                    scheduler=scheduler, chunk=2)
    assert local[1].text() == refs
    _same_hypotheses(local, remote)

    # the graph rebuilt at the same path (another LM): the workers, which live on, must not reuse their decoder
    from asrdistill.lm import arpa_to_G, estimate_kneser_ney
    from test_decode import WORDS
    estimate_kneser_ney([["bat", "cat"], ["cat"], ["see", "moo", "bat"]] * 5, 3,
                        vocabulary=WORDS + ["<UNK>"]).write(tmp_path / "lm2.arpa")
    arpa_to_G(tmp_path / "lm2.arpa", toy.root / "lang" / "words.txt", tmp_path / "G2.fst")
    make_hclg(toy.root / "lang", ctx, tm, tmp_path / "G2.fst", tmp_path / "graph2")
    shutil.rmtree(info.graph_dir)
    os.replace(tmp_path / "graph2", info.graph_dir)
    local2 = decode(info.graph_dir, tm, ll, acoustic_scales=scales, progress=False)
    remote2 = decode(info.graph_dir, tm, ll, acoustic_scales=scales, progress=False, scheduler=scheduler)
    assert local2[0].text() != local[0].text()  # the LM decides at scale 0.05
    _same_hypotheses(local2, remote2)


def _same_hypotheses(local, remote):
    for lo, re in zip(local, remote, strict=True):
        assert re.text() == lo.text()
        assert {u: (r.words, r.likelihood, r.ok) for u, r in re.utts.items()} == \
               {u: (r.words, r.likelihood, r.ok) for u, r in lo.utts.items()}


# -- the option ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command,argv", [
    ("compute_feats", ["compute-feats", "D", "F"]),
    ("train_mono", ["train-mono", "D", "F", "L", "E"]),
    ("train_tri", ["train-tri", "D", "F", "L", "A", "E"]),
    ("align", ["align", "D", "F", "L", "M", "O"]),
    ("decode", ["decode", "--graph", "G", "--model", "M", "--out", "O", "--feats", "F"]),
])
def test_scheduler_option_never_enters_fingerprints(command, argv):
    import argparse
    import importlib

    from asrdistill.commands import NON_SEMANTIC

    parser = argparse.ArgumentParser()
    importlib.import_module(f"asrdistill.commands.{command}").register(parser.add_subparsers(dest="command"))
    args = parser.parse_args([*argv, "--scheduler", "tcp://head:8786"])
    assert args.scheduler == "tcp://head:8786" and "scheduler" in NON_SEMANTIC
    if command.startswith("train"):
        from asrdistill.align.train import GmmTrainConfig
        from asrdistill.commands.train_mono import train_config_from_args
        cfg = train_config_from_args(args, GmmTrainConfig())
        assert cfg.scheduler == "tcp://head:8786" and "scheduler" not in cfg.model_options()
