"""Exporting a trained acoustic model (TorchScript + ONNX, with graph, features and CMVN options) and
transcribing WAV files with the export.

Modules:
  module      -- :class:`UtteranceScorer`: feats [T, D] -> pdf log-likelihoods [T, P], splicing inside
  export      -- :func:`export_model`: write the self-contained export dir (manifest.json with sha256s)
  runtime     -- :class:`ExportedModel`: load it, compute features (per-utterance CMVN) and
                 log-likelihoods with torch (TorchScript) or onnxruntime
  transcribe  -- :func:`transcribe` (WAV files -> words), :class:`Transcriber`,
                 :func:`compare_with_decode` (integration check against a recipe decode)
"""
from asrdistill.export.export import export_model
from asrdistill.export.runtime import ExportedModel, read_manifest
from asrdistill.export.transcribe import Transcriber, compare_with_decode, read_wav, transcribe

__all__ = ["ExportedModel", "Transcriber", "compare_with_decode", "export_model", "read_manifest", "read_wav",
           "transcribe"]
