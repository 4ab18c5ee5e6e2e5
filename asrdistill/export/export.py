"""Writing an export dir: a trained acoustic model with everything needed to transcribe WAV files.

Layout of ``<out_dir>/`` (written under a temporary name and renamed into place):

  model.pt          TorchScript of :class:`~asrdistill.export.module.UtteranceScorer`: input ``feats``
                    [T, D] (CMVN'd fbank of ONE utterance), output ``loglikes`` [T, num_pdfs]
                    (log-posterior minus log-prior); splicing, input normalisation and the prior are inside
  model.onnx        the same network in ONNX (opset 17, dynamic time axis ``frames``)
  model.state.pt    the weights as a plain state (``torch.load(weights_only=True)``; the format of
                    :func:`asrdistill.nnet.model.model_state`, or ``{"format", "combine", "members"}`` for
                    an ensemble); left out with ``keep_state=False``
  log_priors.npy    log p(pdf) [num_pdfs] (float32, no pickle)
  fbank.json        the feature options (:class:`~asrdistill.features.fbank.FbankConfig`, bound to a rate)
  cmvn.json         how CMVN was done in training (per speaker, ``norm_vars``) and at transcription
                    (per utterance: a file has no speaker statistics)
  HCLG.fst, words.txt, graph.json   the decoding graph (when ``graph_dir`` is given)
  trans.mdl         the transition model (and tree) in :class:`asrdistill.hmm.model.GmmHmm`'s pickle-free
                    file format, with the GMMs left out (when ``trans_model_path`` is given)
  manifest.json     format, package versions, model config, num_pdfs, context, acoustic scale, decoding
                    options, metrics, the result of the TorchScript/ONNX/original agreement check, and every
                    file's size and sha256 (written last)
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import os
import platform
import shutil
import time
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import atomic_path, get_logger

log = get_logger(__name__)

EXPORT_FORMAT = "asrdistill-export-1"
ENSEMBLE_STATE_FORMAT = "asrdistill-dnn-ensemble-1"
ONNX_OPSET = 17
INPUT_NAME = "feats"
OUTPUT_NAME = "loglikes"
MANIFEST = "manifest.json"
#: Distributions whose versions are recorded in the manifest.
PACKAGES = ("torch", "onnx", "onnxruntime", "numpy", "kaldi-hmm-gmm", "kaldifst", "kaldi-decoder",
            "kaldi-native-fbank", "torchaudio", "soundfile")
#: Frame counts on which the exported TorchScript and ONNX networks are checked against the original
#: model (shorter and longer than the context window).
CHECK_LENGTHS = (1, 7, 26, 61)
CHECK_TOLERANCE = 1e-3


def sha256_file(path: str | os.PathLike, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict[str, str | None]:
    from asrdistill import __version__

    out: dict[str, str | None] = {"asrdistill": __version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


# --- the model ---------------------------------------------------------------------------------------
def _load_members(model: Any) -> tuple[list, str, str]:
    """(members, combine, kind) from a model file, an ensemble.json / ensemble dir, or a model object."""
    import torch

    from asrdistill.nnet.ensemble import Ensemble, load_ensemble
    from asrdistill.nnet.model import AcousticDnn, load_model

    if isinstance(model, Ensemble):
        members, combine = list(model.members), model.combine
    elif isinstance(model, AcousticDnn):
        members, combine = [model], "arithmetic"
    else:
        path = Path(model)
        if path.suffix == ".json" or (path.is_dir() and (path / "ensemble.json").is_file()):
            info_path = path if path.suffix == ".json" else path / "ensemble.json"
            if not info_path.is_file():
                raise UserFacingError(f"{info_path}: ensemble description not found")
            combine = json.loads(info_path.read_text()).get("combine", "arithmetic")
            ens = load_ensemble([info_path], combine=combine)
            members = list(ens.members)
        elif path.is_dir():
            raise UserFacingError(f"{path}: a directory without ensemble.json; give the model file (final.mdl)")
        else:
            members, combine = [load_model(path)], "arithmetic"
    members = [copy.deepcopy(m).to(device="cpu", dtype=torch.float32).eval() for m in members]
    return members, combine, "ensemble" if len(members) > 1 else "dnn"


def _export_onnx(scorer, path: Path, feat_dim: int) -> None:
    import torch

    example = torch.zeros(40, feat_dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(scorer, (example,), str(path), opset_version=ONNX_OPSET, dynamo=False,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "frames"}, OUTPUT_NAME: {0: "frames"}},
                          do_constant_folding=True)
    import onnx

    onnx.checker.check_model(str(path))


def _agreement_check(members, combine: str, script_path: Path, onnx_path: Path, feat_dim: int) -> dict[str, Any]:
    """Max |difference| of TorchScript and ONNX Runtime outputs vs. the original model (splice + DNN)."""
    import onnxruntime as ort
    import torch

    from asrdistill.features.splice import splice_utterance
    from asrdistill.nnet.ensemble import Ensemble

    reference = members[0] if len(members) == 1 else Ensemble(members, combine=combine)
    c = members[0].config
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
        scripted = torch.jit.load(str(script_path), map_location="cpu")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    worst = {"torchscript": 0.0, "onnx": 0.0}
    with torch.no_grad():
        for n in CHECK_LENGTHS:
            feats = torch.randn(n, feat_dim, generator=gen) * 3.0
            ref = reference.log_likelihoods(splice_utterance(feats, c.left, c.right)).numpy()
            ts = scripted(feats).numpy()
            ox = session.run([OUTPUT_NAME], {INPUT_NAME: feats.numpy()})[0]
            worst["torchscript"] = max(worst["torchscript"], float(np.abs(ts - ref).max()))
            worst["onnx"] = max(worst["onnx"], float(np.abs(ox - ref).max()))
    for what, diff in worst.items():
        if not diff <= CHECK_TOLERANCE:
            raise RuntimeError(f"exported {what} model differs from the original by {diff:.3g} "
                               f"(tolerance {CHECK_TOLERANCE})")
    return {"lengths": list(CHECK_LENGTHS), "max_abs_diff": worst}


# --- features, graph, transition model -----------------------------------------------------------------
def _feature_setup(feat_dir: str | os.PathLike | None, fbank_config, norm_vars: bool | None
                   ) -> tuple[Any, dict[str, Any]]:
    from asrdistill.features.cmvn import VARIANCE_FLOOR
    from asrdistill.features.fbank import FbankConfig

    training_cmvn = "unknown"
    if feat_dir is not None:
        fd = Path(feat_dir)
        if not (fd / "fbank.json").is_file():
            raise UserFacingError(f"{fd}: no fbank.json here (is this a feature dir from compute-feats?)")
        config = FbankConfig.from_json((fd / "fbank.json").read_text())
        index = fd / "frames.json"
        if index.is_file():
            info = json.loads(index.read_text())
            if norm_vars is None:
                norm_vars = bool(info.get("norm_vars", False))
            training_cmvn = str(info.get("cmvn", "per-speaker"))
    else:
        config = fbank_config or FbankConfig()
        log.warning("no feature dir given: using %s fbank options and norm_vars=%s",
                    "the given" if fbank_config else "the default", bool(norm_vars))
    if config.sample_rate is None:
        log.warning("the fbank config has no sample rate: transcription will accept any rate")
    cmvn = {
        "training": training_cmvn,
        "norm_vars": bool(norm_vars),
        "transcribe": "per-utterance",
        "variance_floor": VARIANCE_FLOOR,
        "note": ("training frames were normalised with per-speaker statistics (Kaldi compute-cmvn-stats "
                 "--spk2utt + apply-cmvn); a WAV file alone has no speaker, so transcription subtracts the "
                 "utterance's own mean" + (" and divides by its standard deviation" if norm_vars else "")),
    }
    return config, cmvn


def _copy_graph(graph_dir: str | os.PathLike, tmp: Path) -> dict[str, Any]:
    g = Path(graph_dir)
    hclg, words = g / "HCLG.fst", g / "words.txt"
    for f in (hclg, words):
        if not f.is_file():
            raise UserFacingError(f"{f}: not found (graph dir from `asrdistill make-graph` expected)")
    shutil.copyfile(hclg, tmp / "HCLG.fst")
    shutil.copyfile(words, tmp / "words.txt")
    info: dict[str, Any] = {"source": str(g)}
    if (g / "graph.json").is_file():
        shutil.copyfile(g / "graph.json", tmp / "graph.json")
        graph = json.loads((g / "graph.json").read_text())
        info.update({k: graph[k] for k in ("states", "arcs", "context_width", "self_loop_scale") if k in graph})
    return info


def _write_trans_model(trans_model_path: str | os.PathLike, tmp: Path, num_pdfs: int) -> dict[str, Any]:
    import kaldi_hmm_gmm as khg

    from asrdistill.hmm.model import GmmHmm

    src = Path(trans_model_path)
    model = GmmHmm.load(src)
    tm_pdfs = int(model.trans_model.num_pdfs)
    if tm_pdfs != num_pdfs:
        raise UserFacingError(f"{src}: the transition model has {tm_pdfs} pdfs but the acoustic model outputs "
                              f"{num_pdfs}; export the DNN together with the GMM system it was trained on")
    stripped = GmmHmm(model.topo_text, model.ctx_dep, model.trans_model, khg.AmDiagGmm(), model.phones,
                      model.feature_config, dict(model.info, gmm_removed_by_export=True))
    (tmp / "trans.mdl").write_bytes(stripped.to_bytes())
    return {"source": str(src), "num_pdfs": tm_pdfs, "num_transition_ids": int(model.trans_model.num_transition_ids),
            "context_width": int(model.ctx_dep.context_width)}


# --- the export ------------------------------------------------------------------------------------------
def export_model(model_path: Any, out_dir: str | os.PathLike, *, graph_dir: str | os.PathLike | None = None,
                 trans_model_path: str | os.PathLike | None = None, feat_dir: str | os.PathLike | None = None,
                 metrics: dict | None = None, acoustic_scale: float = 0.1, decode_options: dict | None = None,
                 fbank_config=None, norm_vars: bool | None = None, keep_state: bool = True,
                 overwrite: bool = True) -> Path:
    """Write the export dir ``out_dir`` (layout in the module doc) and return its path.

    ``model_path``: a DNN model file (``final.mdl`` of train-dnn / distill), an ``ensemble.json`` or
    ensemble dir, or an in-memory :class:`AcousticDnn` / :class:`Ensemble`. ``graph_dir``: HCLG.fst +
    words.txt (+ graph.json); ``trans_model_path``: the GMM-HMM model file whose transition model the graph
    was built with; ``feat_dir``: the training feature dir (fbank.json; norm_vars from frames.json).
    ``fbank_config`` / ``norm_vars`` are used when there is no feature dir. ``metrics`` (e.g. measured dev /
    test WER and frame accuracy) and ``decode_options`` (beam etc.) are stored in the manifest as given.
    ``keep_state=False`` leaves out ``model.state.pt`` (a third copy of the weights; only needed to load the
    model back into asrdistill, e.g. for further training).
    """
    import torch

    from asrdistill.export.module import UtteranceScorer
    from asrdistill.nnet.model import model_state

    t0 = time.perf_counter()
    out = Path(out_dir)
    if out.exists() and not overwrite:
        raise UserFacingError(f"{out}: already exists")
    if not acoustic_scale > 0:
        raise UserFacingError(f"acoustic scale must be positive, got {acoustic_scale}")
    if (graph_dir is None) != (trans_model_path is None):
        raise UserFacingError("give both the graph dir and the transition model (or neither): decoding needs both")
    members, combine, kind = _load_members(model_path)
    config = members[0].config
    fbank, cmvn = _feature_setup(feat_dir, fbank_config, norm_vars)
    if fbank.dim != config.feat_dim:
        raise UserFacingError(f"the features have {fbank.dim} dims but the model expects {config.feat_dim}")
    scorer = UtteranceScorer(members, combine).eval()
    num_pdfs = int(config.num_pdfs)

    manifest: dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "model": {"kind": kind, "config": config.to_dict(), "members": len(members), "combine": combine,
                  "num_params": int(sum(p.numel() for p in scorer.parameters())),
                  "source": str(model_path) if isinstance(model_path, (str, os.PathLike)) else None},
        "num_pdfs": num_pdfs,
        "feat_dim": int(config.feat_dim),
        "context": {"left": int(config.left), "right": int(config.right), "frames": int(config.context)},
        "input": {"name": INPUT_NAME, "shape": ["frames", int(config.feat_dim)], "dtype": "float32",
                  "meaning": "CMVN'd log-mel fbank of one utterance (see fbank.json, cmvn.json)"},
        "output": {"name": OUTPUT_NAME, "shape": ["frames", num_pdfs], "dtype": "float32",
                   "meaning": "per-frame pdf log-likelihoods: log p(pdf | window) - log p(pdf)"},
        "onnx_opset": ONNX_OPSET,
        "sample_rate": fbank.sample_rate,
        "frame_shift_ms": fbank.frame_shift_ms,
        "acoustic_scale": float(acoustic_scale),
        "decode_options": dict(decode_options or {}),
        "cmvn": {k: cmvn[k] for k in ("training", "norm_vars", "transcribe")},
        "metrics": metrics or {},
        "feat_dir": str(feat_dir) if feat_dir is not None else None,
    }
    with atomic_path(out) as tmp:
        tmp.mkdir()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
            scripted = torch.jit.script(scorer)
            scripted.save(str(tmp / "model.pt"))
            _export_onnx(scorer, tmp / "model.onnx", config.feat_dim)
        if keep_state:
            if kind == "dnn":
                state = model_state(members[0])
            else:
                state = {"format": ENSEMBLE_STATE_FORMAT, "combine": combine,
                         "members": [model_state(m) for m in members]}
            torch.save(state, tmp / "model.state.pt")
        np.save(tmp / "log_priors.npy", scorer.log_prior.numpy().astype(np.float32), allow_pickle=False)
        (tmp / "fbank.json").write_text(fbank.to_json())
        (tmp / "cmvn.json").write_text(json.dumps(cmvn, indent=2, sort_keys=True) + "\n")
        if graph_dir is not None:
            manifest["graph"] = _copy_graph(graph_dir, tmp)
            manifest["transition_model"] = _write_trans_model(trans_model_path, tmp, num_pdfs)
        manifest["export_check"] = _agreement_check(members, combine, tmp / "model.pt", tmp / "model.onnx",
                                                    config.feat_dim)
        manifest["files"] = {f.name: {"bytes": f.stat().st_size, "sha256": sha256_file(f)}
                             for f in sorted(tmp.iterdir()) if f.is_file()}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    sizes = {k: v["bytes"] for k, v in manifest["files"].items()}
    log.info("exported %s (%s, %d pdfs, %d parameters) to %s in %.1f s: model.pt %.1f MB, model.onnx %.1f MB%s",
             kind, f"{len(members)} members" if kind == "ensemble" else "1 model", num_pdfs,
             manifest["model"]["num_params"], out, time.perf_counter() - t0, sizes["model.pt"] / 1e6,
             sizes["model.onnx"] / 1e6,
             f", HCLG.fst {sizes['HCLG.fst'] / 1e6:.1f} MB" if "HCLG.fst" in sizes else " (no decoding graph)")
    return out
