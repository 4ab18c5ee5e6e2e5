"""Decoding: the HCLG graph, Viterbi beam search with Kaldi's decoders, and WER scoring.

Modules:
  graph    -- :func:`make_hclg` (H o C o L o G as Kaldi's mkgraph.sh) -> :class:`GraphInfo`
  decoder  -- :func:`decode` (GMM features or DNN pdf log-likelihoods, nj processes, RTF),
              :func:`sweep_decode` (acoustic scale chosen on dev), :func:`decode_and_score` (decode dir),
              :class:`GraphDecoder`
  score    -- :func:`compute_wer` / :func:`score_files` (%WER line, per_utt alignments, bootstrap CI)
"""
from asrdistill.decode.decoder import (DecodeOptions, DecodeResult, GraphDecoder, UttResult, decode, decode_and_score,
                                       expand_to_transition_ids, sweep_decode)
from asrdistill.decode.graph import GraphInfo, load_graph_info, make_hclg
from asrdistill.decode.score import compute_wer, read_text, score_files

__all__ = ["DecodeOptions", "DecodeResult", "GraphDecoder", "GraphInfo", "UttResult", "compute_wer", "decode",
           "decode_and_score",
           "expand_to_transition_ids", "load_graph_info", "make_hclg", "read_text", "score_files", "sweep_decode"]
