"""Export dirs (TorchScript + ONNX + manifest) and transcription of WAV files with them.

The end-to-end case is synthetic: a toy lang (4 phones, monophone HMMs, 22 pdfs), a trigram LM and HCLG;
audio where each HMM state of the intended words is a pure tone at the centre frequency of "its" mel bin;
and a hand-set DNN that reads the centre frame's mel bin of each pdf. Transcribing that audio must give
back the intended words, with either backend.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from asrdistill.errors import UserFacingError
from asrdistill.features.splice import splice_utterance
from asrdistill.nnet.ensemble import Ensemble
from asrdistill.nnet.model import DnnConfig, build_model, load_model, model_from_state, save_model

onnxruntime = pytest.importorskip("onnxruntime")

from asrdistill.export import ExportedModel, export_model, read_manifest, transcribe  # noqa: E402
from asrdistill.export.export import EXPORT_FORMAT  # noqa: E402

LENGTHS = (1, 2, 5, 20, 25, 26, 27, 64, 300)


def _random_model(num_pdfs=37, seed=0, hidden_layers=2, hidden_dim=64, left=20, right=5):
    model = build_model(DnnConfig(num_pdfs=num_pdfs, hidden_layers=hidden_layers, hidden_dim=hidden_dim,
                                  left=left, right=right), seed=seed)
    gen = np.random.default_rng(seed)
    model.set_input_normalization(gen.normal(0, 1, 40), gen.uniform(0.5, 2.0, 40))
    counts = gen.integers(1, 1000, num_pdfs)
    model.set_log_prior(np.log(counts / counts.sum()))
    return model.eval()


def _reference(model, feats):
    c = model.config
    with torch.no_grad():
        return model.log_likelihoods(splice_utterance(torch.from_numpy(feats), c.left, c.right)).numpy()


@pytest.fixture(scope="module")
def plain_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = _random_model()
    save_model(root / "final.mdl", model)
    feat_dir = root / "fbank"
    feat_dir.mkdir()
    from asrdistill.features.fbank import FbankConfig

    (feat_dir / "fbank.json").write_text(FbankConfig(sample_rate=16000).to_json())
    (feat_dir / "frames.json").write_text(json.dumps({"dim": 40, "utts": [], "offsets": [0], "norm_vars": True,
                                                      "cmvn": "per-speaker"}))
    out = export_model(root / "final.mdl", root / "exp", feat_dir=feat_dir,
                       metrics={"dev": {"wer": 12.5}}, acoustic_scale=0.083)
    return out, load_model(root / "final.mdl")


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_exported_model_matches_original(plain_export, backend):
    out, model = plain_export
    exported = ExportedModel(out, backend=backend)
    rng = np.random.default_rng(1)
    for n in LENGTHS:  # shorter and longer than the 26-frame window
        feats = (rng.normal(0, 3, size=(n, 40))).astype(np.float32)
        got = exported.log_likelihoods(feats)
        assert got.shape == (n, 37) and got.dtype == np.float32
        np.testing.assert_allclose(got, _reference(model, feats), atol=1e-4, rtol=0)
    assert exported.log_likelihoods(np.zeros((0, 40), np.float32)).shape == (0, 37)


def test_torchscript_and_onnx_agree(plain_export):
    out, _ = plain_export
    ts, ox = ExportedModel(out, "torch"), ExportedModel(out, "onnxruntime")
    rng = np.random.default_rng(2)
    for n in LENGTHS:
        feats = rng.normal(0, 3, size=(n, 40)).astype(np.float32)
        np.testing.assert_allclose(ts.log_likelihoods(feats), ox.log_likelihoods(feats), atol=1e-4, rtol=0)


def test_manifest(plain_export):
    out, model = plain_export
    m = read_manifest(out)
    assert m["format"] == EXPORT_FORMAT and m["onnx_opset"] == 17
    assert m["num_pdfs"] == 37 and m["feat_dim"] == 40
    assert m["context"] == {"left": 20, "right": 5, "frames": 26}
    assert m["model"]["config"] == model.config.to_dict() and m["model"]["kind"] == "dnn"
    assert m["acoustic_scale"] == pytest.approx(0.083)
    assert m["metrics"] == {"dev": {"wer": 12.5}}
    assert m["sample_rate"] == 16000
    assert m["cmvn"] == {"training": "per-speaker", "norm_vars": True, "transcribe": "per-utterance"}
    for pkg in ("asrdistill", "torch", "onnx", "onnxruntime", "kaldi-hmm-gmm", "kaldifst", "kaldi-decoder"):
        assert pkg in m["versions"]
    assert m["versions"]["torch"] == torch.__version__
    assert {"model.pt", "model.onnx", "model.state.pt", "log_priors.npy", "fbank.json", "cmvn.json"} <= set(m["files"])
    assert "manifest.json" not in m["files"]
    for name, entry in m["files"].items():
        assert (out / name).stat().st_size == entry["bytes"] and len(entry["sha256"]) == 64
    assert max(m["export_check"]["max_abs_diff"].values()) < 1e-4
    cmvn = json.loads((out / "cmvn.json").read_text())
    assert cmvn["norm_vars"] is True and cmvn["transcribe"] == "per-utterance"
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temp dir left behind


def test_export_loads_without_pickle(plain_export):
    out, model = plain_export
    state = torch.load(out / "model.state.pt", weights_only=True)
    again = model_from_state(state).eval()
    feats = np.random.default_rng(3).normal(size=(30, 40)).astype(np.float32)
    np.testing.assert_array_equal(_reference(again, feats), _reference(model, feats))
    np.testing.assert_allclose(np.load(out / "log_priors.npy", allow_pickle=False), model.log_prior.numpy())
    import onnx

    onnx.checker.check_model(str(out / "model.onnx"))
    dims = onnx.load(str(out / "model.onnx")).graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "frames" and dims[1].dim_value == 40


def test_tampered_export_is_refused(plain_export, tmp_path):
    import shutil

    out, _ = plain_export
    copy = tmp_path / "exp"
    shutil.copytree(out, copy)
    with open(copy / "log_priors.npy", "ab") as f:
        f.write(b"\0")
    with pytest.raises(UserFacingError, match="sha256"):
        ExportedModel(copy)
    ExportedModel(copy, verify=False)  # explicitly unchecked: loads
    (copy / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(UserFacingError, match="format"):
        ExportedModel(copy)


def test_features_per_utterance_cmvn_and_bad_sample_rate(plain_export):
    from asrdistill.features.fbank import FbankConfig, compute_fbank

    out, _ = plain_export
    exported = ExportedModel(out)
    rng = np.random.default_rng(4)
    samples = (rng.normal(0, 1000, 16000)).astype(np.float32)
    feats = exported.features(samples, 16000)
    raw = compute_fbank(samples, 16000, FbankConfig())
    assert feats.shape == raw.shape == (98, 40)
    np.testing.assert_allclose(feats.mean(0), 0, atol=1e-4)  # norm_vars: true in this export
    np.testing.assert_allclose(feats.std(0), 1, atol=1e-3)
    with pytest.raises(UserFacingError, match="8000 Hz.*16000 Hz"):
        exported.features(samples[:8000], 8000)
    assert exported.features(samples[:100], 16000).shape == (0, 40)


def test_ensemble_export(tmp_path):
    members = [_random_model(seed=s) for s in (5, 6, 7)]
    for m in members[1:]:  # members share the input normalisation and prior
        m.input_shift.copy_(members[0].input_shift)
        m.input_scale.copy_(members[0].input_scale)
        m.log_prior.copy_(members[0].log_prior)
    ens = Ensemble(members, combine="arithmetic").eval()
    out = export_model(ens, tmp_path / "exp")
    m = read_manifest(out)
    assert m["model"]["kind"] == "ensemble" and m["model"]["members"] == 3
    feats = np.random.default_rng(5).normal(0, 2, size=(40, 40)).astype(np.float32)
    with torch.no_grad():
        ref = ens.log_likelihoods(splice_utterance(torch.from_numpy(feats))).numpy()
    for backend in ("torch", "onnxruntime"):
        np.testing.assert_allclose(ExportedModel(out, backend).log_likelihoods(feats), ref, atol=1e-4, rtol=0)
    state = torch.load(out / "model.state.pt", weights_only=True)
    assert len(state["members"]) == 3


def test_export_needs_graph_and_transition_model_together(plain_export, tmp_path):
    with pytest.raises(UserFacingError, match="both"):
        export_model(_random_model(), tmp_path / "x", graph_dir=tmp_path)
    out, _ = plain_export
    with pytest.raises(UserFacingError, match="no decoding graph"):
        transcribe(out, [])


# --- end to end: WAV -> words on a toy system -------------------------------------------------------------
khg = pytest.importorskip("kaldi_hmm_gmm")

TOY_PHONES = ["AA", "IY", "S", "T"]
TOY_LEXICON = {"at": ["AA", "T"], "sat": ["S", "AA", "T"], "tea": ["T", "IY"], "see": ["S", "IY"],
               "<UNK>": ["SPN"]}
WORDS = ["at", "sat", "see", "tea"]
RATE = 16000
STATE_SAMPLES = 640  # 4 frames of 10 ms per HMM state
FIRST_BIN = 16       # pdf p is the tone at the centre of mel bin FIRST_BIN + p


def _mel_centres(num_bins=40, low=20.0, high=RATE / 2):
    mel = lambda f: 1127.0 * np.log(1.0 + f / 700.0)  # noqa: E731
    lo, hi = mel(low), mel(high)
    m = lo + (np.arange(num_bins) + 1) * (hi - lo) / (num_bins + 1)
    return 700.0 * (np.exp(m / 1127.0) - 1.0)


class ToySystem:
    def __init__(self, root):
        from asrdistill.hmm.model import GmmHmm
        from toy_corpus import write_dict_dir
        from asrdistill.decode import make_hclg
        from asrdistill.lang import prepare_lang
        from asrdistill.lm import arpa_to_G, estimate_kneser_ney

        self.root = root
        self.lang = prepare_lang(write_dict_dir(root / "dict", TOY_LEXICON, TOY_PHONES), root / "lang")
        rng = np.random.default_rng(0)
        sents = [list(rng.choice(WORDS, size=int(rng.integers(1, 5)))) for _ in range(100)]
        estimate_kneser_ney(sents, 3, vocabulary=WORDS + ["<UNK>"]).write(root / "lm.arpa")
        arpa_to_G(root / "lm.arpa", root / "lang" / "words.txt", root / "G.fst")
        self.npc = [0] * (max(self.lang.real_phones) + 1)
        for p, n in self.lang.num_pdf_classes.items():
            self.npc[p] = n
        self.ctx = khg.monophone_context_dependency(self.lang.real_phones, self.npc)
        self.tm = khg.TransitionModel(ctx_dep=self.ctx, hmm_topo=self.lang.topology())
        self.num_pdfs = int(self.tm.num_pdfs)
        make_hclg(root / "lang", self.ctx, self.tm, root / "G.fst", root / "graph")
        GmmHmm(self.lang.topo_text, self.ctx, self.tm, khg.AmDiagGmm(), self.lang.phones).save(root / "final.mdl")
        self.freqs = _mel_centres()[FIRST_BIN:FIRST_BIN + self.num_pdfs]

    def pdf_sequence(self, words):
        p2i = self.lang.phone2id
        phones = [p2i["SIL"]] + [p2i[p] for w in words for p in TOY_LEXICON[w]] + [p2i["SIL"]]
        out = []
        for ph in phones:
            for c in range(self.npc[ph]):
                ok, pdf = self.ctx.compute([ph], c)
                assert ok
                out.append(pdf)
        return out

    def audio(self, words, seed=0):
        """int16 samples: per HMM state, STATE_SAMPLES of the state's pdf's tone, plus a little noise."""
        t = np.arange(STATE_SAMPLES) / RATE
        pdfs = self.pdf_sequence(words)
        parts = [3000.0 * np.sin(2 * np.pi * self.freqs[p] * t) for p in pdfs]
        parts.append(parts[-1][:400])  # so that the last state keeps its frames
        x = np.concatenate(parts) + np.random.default_rng(seed).normal(0, 10, sum(len(p) for p in parts))
        return np.clip(np.round(x), -32768, 32767).astype(np.int16)

    def model(self):
        """One hidden layer copying the centre frame's mel bins; pdf p's logit is twice its bin's value."""
        config = DnnConfig(num_pdfs=self.num_pdfs, hidden_layers=1, hidden_dim=40)
        model = build_model(config, seed=0)
        with torch.no_grad():
            lin, out = model.hidden[0], model.output
            lin.weight.zero_()
            lin.weight[:, config.left * 40:(config.left + 1) * 40] = torch.eye(40)
            lin.bias.fill_(100.0)
            out.weight.zero_()
            out.bias.fill_(-200.0)
            for p in range(self.num_pdfs):
                out.weight[p, FIRST_BIN + p] = 2.0
        return model.eval()


@pytest.fixture(scope="module")
def toy_export(tmp_path_factory):
    from asrdistill.features.fbank import FbankConfig

    root = tmp_path_factory.mktemp("toy")
    toy = ToySystem(root)
    save_model(root / "dnn.mdl", toy.model())
    out = export_model(root / "dnn.mdl", root / "exp", graph_dir=root / "graph", trans_model_path=root / "final.mdl",
                       fbank_config=FbankConfig(sample_rate=RATE), norm_vars=False, acoustic_scale=0.5,
                       decode_options={"beam": 15.0})
    return toy, out


def _write_wavs(toy, tmp_path, sentences):
    import soundfile

    paths = []
    for i, words in enumerate(sentences):
        p = tmp_path / f"utt{i}.wav"
        soundfile.write(str(p), toy.audio(words, seed=i), RATE, subtype="PCM_16")
        paths.append(str(p))
    return paths


SENTENCES = [["sat"], ["see", "tea"], ["tea", "at", "sat"], ["at", "see", "sat", "tea"]]


def test_toy_export_contents(toy_export):
    toy, out = toy_export
    m = read_manifest(out)
    assert {"HCLG.fst", "words.txt", "trans.mdl"} <= set(m["files"])
    assert m["transition_model"]["num_pdfs"] == toy.num_pdfs
    assert m["decode_options"] == {"beam": 15.0}
    from asrdistill.hmm.model import GmmHmm

    tm = GmmHmm.load(out / "trans.mdl").trans_model  # the align package's pickle-free format
    np.testing.assert_array_equal(tm.transition_id_to_pdf_array(), toy.tm.transition_id_to_pdf_array())


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_transcribe_synthetic_audio(toy_export, tmp_path, backend, caplog):
    toy, out = toy_export
    paths = _write_wavs(toy, tmp_path, SENTENCES)
    with caplog.at_level("WARNING"):
        results = transcribe(out, paths, backend=backend)
    assert [p for p, _ in results] == paths
    assert [w for _, w in results] == [" ".join(s) for s in SENTENCES]
    assert sum("utterance-level CMVN" in r.getMessage() for r in caplog.records) == 1


def test_transcribe_cli_and_errors(toy_export, tmp_path, capsys):
    import soundfile

    from asrdistill.cli import main

    toy, out = toy_export
    paths = _write_wavs(toy, tmp_path, SENTENCES[:2])
    short = tmp_path / "short.wav"
    soundfile.write(str(short), np.zeros(100, np.int16), RATE, subtype="PCM_16")
    assert main(["transcribe", str(out), paths[0], str(short), paths[1], paths[0], "--backend", "onnxruntime"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{paths[0]} sat", str(short), f"{paths[1]} see tea", f"{paths[0]} sat"]
    low = tmp_path / "8k.wav"
    soundfile.write(str(low), np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    assert main(["transcribe", str(out), paths[0], str(low)]) == 1
    err = capsys.readouterr().err
    assert "8k.wav: sampled at 8000 Hz" in err and "16000 Hz" in err and "Traceback" not in err
    assert main(["transcribe", str(out), str(tmp_path / "missing.wav")]) == 1
    assert "no such audio file" in capsys.readouterr().err


def test_export_cli(toy_export, tmp_path, capsys):
    from asrdistill.cli import main

    toy, _ = toy_export
    root = toy.root
    (tmp_path / "dev.json").write_text(json.dumps({"wer": 3.0}))
    rc = main(["export", str(root / "dnn.mdl"), str(tmp_path / "exp"), "--graph", str(root / "graph"),
               "--trans-model", str(root / "final.mdl"), "--acoustic-scale", "0.5",
               "--metrics", f"dev={tmp_path / 'dev.json'}", "--metrics", "test_wer=4.5", "--no-state"])
    assert rc == 0
    assert "model.onnx" in capsys.readouterr().out
    m = read_manifest(tmp_path / "exp")
    assert m["metrics"] == {"dev": {"wer": 3.0}, "test_wer": 4.5}
    assert "model.state.pt" not in m["files"] and not (tmp_path / "exp" / "model.state.pt").exists()
    # a transition model of another pdf set is refused
    bad = build_model(DnnConfig(num_pdfs=toy.num_pdfs + 1, hidden_layers=1, hidden_dim=8), seed=0)
    save_model(tmp_path / "bad.mdl", bad)
    assert main(["export", str(tmp_path / "bad.mdl"), str(tmp_path / "exp2"), "--graph", str(root / "graph"),
                 "--trans-model", str(root / "final.mdl")]) == 1
    assert "pdfs" in capsys.readouterr().err and not (tmp_path / "exp2").exists()


def test_compare_with_decode_on_a_toy_recipe(toy_export, tmp_path):
    """The integration check: the recipe's path (data dir -> features with per-speaker CMVN -> frame store ->
    DNN -> decode dir) and the export's path (WAV -> export) give the same words."""
    from asrdistill.data.kaldi_dir import write_data_dir
    from asrdistill.decode import DecodeOptions, decode_and_score
    from asrdistill.export import compare_with_decode
    from asrdistill.features.extract import compute_features
    from asrdistill.features.store import FrameStore

    toy, _ = toy_export
    paths = _write_wavs(toy, tmp_path, SENTENCES)
    utts = [f"s{i % 2}-{i:03d}" for i in range(len(paths))]
    text = {u: " ".join(s) for u, s in zip(utts, SENTENCES)}
    write_data_dir(tmp_path / "data", dict(zip(utts, paths)), text, {u: u.split("-")[0] for u in utts})
    compute_features(tmp_path / "data", tmp_path / "fbank", nj=1, progress=False)
    store = FrameStore(tmp_path / "fbank")
    model = load_model(toy.root / "dnn.mdl")
    loglikes = {u: _reference(model, np.array(store.get(u))) for u in utts}
    decode_and_score(toy.root / "graph", toy.tm, loglikes, tmp_path / "decode", utts=utts, ref_text=text,
                     options=DecodeOptions(acoustic_scale=0.5, beam=15.0), bootstrap=0, progress=False)
    out = export_model(toy.root / "dnn.mdl", tmp_path / "exp", graph_dir=toy.root / "graph",
                       trans_model_path=toy.root / "final.mdl", feat_dir=tmp_path / "fbank", acoustic_scale=0.5)
    assert read_manifest(out)["sample_rate"] == RATE
    same = compare_with_decode(out, tmp_path / "data", tmp_path / "decode", feat_dir=tmp_path / "fbank")
    assert same["cmvn"] == "per-speaker" and same["utterances"] == 4
    assert same["identical"] == 4, same["mismatches"]
    per_utt = compare_with_decode(out, tmp_path / "data", tmp_path / "decode" / "text", utts=utts[:2],
                                  backend="onnxruntime")
    assert per_utt["cmvn"] == "per-utterance" and per_utt["identical"] == 2
    (tmp_path / "decode" / "text").write_text("".join(f"{u} tea\n" for u in utts))
    assert compare_with_decode(out, tmp_path / "data", tmp_path / "decode")["identical"] == 0
