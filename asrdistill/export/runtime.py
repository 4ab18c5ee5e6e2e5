"""Loading an export dir and scoring audio with it: fbank + per-utterance CMVN, then the network.

:class:`ExportedModel` reads ``manifest.json`` (checking the format and, by default, every file's
sha256), the feature and CMVN options, and the network as TorchScript (``backend="torch"``,
``torch.jit.load``: an archive of tensors and code, no pickled Python objects) or ONNX
(``backend="onnxruntime"``). Nothing here unpickles anything.
"""
from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.export.export import EXPORT_FORMAT, INPUT_NAME, MANIFEST, OUTPUT_NAME, sha256_file
from asrdistill.utils import get_logger

log = get_logger(__name__)

BACKENDS = ("torch", "onnxruntime")


def read_manifest(export_dir: str | os.PathLike) -> dict[str, Any]:
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise UserFacingError(f"{export_dir}: not an export dir (no {MANIFEST}; run `asrdistill export`)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserFacingError(f"{path}: not valid JSON ({err})") from None
    if manifest.get("format") != EXPORT_FORMAT:
        raise UserFacingError(f"{path}: unknown export format {manifest.get('format')!r} "
                              f"(this asrdistill reads {EXPORT_FORMAT!r})")
    return manifest


def verify_files(export_dir: str | os.PathLike, manifest: dict[str, Any]) -> None:
    """Check every file listed in the manifest is there with its recorded sha256."""
    for name, entry in manifest.get("files", {}).items():
        path = Path(export_dir) / name
        if not path.is_file():
            raise UserFacingError(f"{path}: missing from the export dir")
        if sha256_file(path) != entry["sha256"]:
            raise UserFacingError(f"{path}: contents changed since export (sha256 mismatch)")


class ExportedModel:
    """An export dir ready to score audio. ``features`` then ``log_likelihoods`` (or ``score`` for both)."""

    def __init__(self, export_dir: str | os.PathLike, backend: str = "torch", verify: bool = True,
                 num_threads: int | None = None):
        from asrdistill.features.fbank import FbankConfig

        if backend not in BACKENDS:
            raise UserFacingError(f"unknown backend {backend!r} (choose from {', '.join(BACKENDS)})")
        self.path = Path(export_dir)
        self.manifest = read_manifest(self.path)
        if verify:
            verify_files(self.path, self.manifest)
        self.backend = backend
        self.num_pdfs = int(self.manifest["num_pdfs"])
        self.feat_dim = int(self.manifest["feat_dim"])
        self.acoustic_scale = float(self.manifest["acoustic_scale"])
        self.fbank_config = FbankConfig.from_json((self.path / "fbank.json").read_text())
        self.cmvn = json.loads((self.path / "cmvn.json").read_text())
        self.norm_vars = bool(self.cmvn.get("norm_vars", False))
        if backend == "torch":
            import torch

            if num_threads:
                torch.set_num_threads(num_threads)
            with warnings.catch_warnings():  # TorchScript is deprecated in torch 2.13 but still supported
                warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit")
                self._module = torch.jit.load(str(self.path / "model.pt"), map_location="cpu").eval()
        else:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            if num_threads:
                opts.intra_op_num_threads = num_threads
            self._session = ort.InferenceSession(str(self.path / "model.onnx"), opts,
                                                 providers=["CPUExecutionProvider"])

    # --- properties of the export -----------------------------------------------------------------
    @property
    def sample_rate(self) -> int | None:
        return self.fbank_config.sample_rate

    @property
    def has_graph(self) -> bool:
        return (self.path / "HCLG.fst").is_file() and (self.path / "trans.mdl").is_file()

    def load_trans_model(self):
        """The transition model (kaldi_hmm_gmm.TransitionModel) the graph was built with."""
        from asrdistill.hmm.model import GmmHmm

        path = self.path / "trans.mdl"
        if not path.is_file():
            raise UserFacingError(f"{self.path}: this export has no transition model / graph "
                                  f"(export with --graph and --trans-model to transcribe)")
        return GmmHmm.load(path).trans_model

    # --- scoring --------------------------------------------------------------------------------
    def features(self, samples: np.ndarray, sample_rate: int, cmvn_stats: np.ndarray | None = None) -> np.ndarray:
        """CMVN'd fbank [T, D] of int16-scale ``samples``.

        CMVN uses the utterance's own statistics, unless ``cmvn_stats`` (Kaldi [2, D+1] stats, e.g. of
        the utterance's speaker) are given. ``norm_vars`` as in training.
        """
        from asrdistill.features.cmvn import apply_cmvn
        from asrdistill.features.cmvn import cmvn_stats as compute_stats
        from asrdistill.features.fbank import compute_fbank

        want = self.fbank_config.sample_rate
        if want is not None and int(sample_rate) != int(want):
            raise UserFacingError(f"audio sampled at {sample_rate} Hz, but the model in {self.path} was trained on "
                                  f"{want} Hz audio (fbank.json); resample it to {want} Hz first")
        feats = compute_fbank(np.asarray(samples, dtype=np.float32), int(sample_rate), self.fbank_config)
        if len(feats) == 0:
            return feats
        stats = compute_stats(feats) if cmvn_stats is None else cmvn_stats
        return apply_cmvn(feats, stats, self.norm_vars)

    def log_likelihoods(self, feats: np.ndarray) -> np.ndarray:
        """Per-frame pdf log-likelihoods [T, num_pdfs] (float32) of CMVN'd features ``feats`` [T, D]."""
        feats = np.ascontiguousarray(feats, dtype=np.float32)
        if feats.ndim != 2 or feats.shape[1] != self.feat_dim:
            raise UserFacingError(f"features of shape {feats.shape}, expected [frames, {self.feat_dim}]")
        if len(feats) == 0:
            return np.zeros((0, self.num_pdfs), dtype=np.float32)
        if self.backend == "torch":
            import torch

            with torch.inference_mode():
                return self._module(torch.from_numpy(feats)).numpy()
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: feats})[0]

    def score(self, samples: np.ndarray, sample_rate: int) -> np.ndarray:
        """Audio -> [T, num_pdfs] log-likelihoods (features with per-utterance CMVN)."""
        return self.log_likelihoods(self.features(samples, sample_rate))

    def __repr__(self) -> str:
        return (f"ExportedModel({str(self.path)!r}, backend={self.backend!r}, pdfs={self.num_pdfs}, "
                f"rate={self.sample_rate})")
