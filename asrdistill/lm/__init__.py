"""Word n-gram language models: estimation (interpolated modified Kneser-Ney), ARPA files, perplexity,
and the grammar FST G.fst.

Modules:
  arpa        -- :class:`ArpaLM`: read/write ARPA, back-off scoring, perplexity, normalisation check
  kneser_ney  -- :func:`estimate_kneser_ney` (hand-written; no offline LM toolkit is available)
  gfst        -- :func:`arpa_to_G` (Kaldi's arpa2fst via kaldilm in a subprocess)
  train       -- :func:`train_lm`: text files -> lm.arpa (+ lm.json with perplexities), optionally G.fst
"""
from asrdistill.lm.arpa import ArpaLM, Perplexity, read_sentences
from asrdistill.lm.gfst import arpa_to_G
from asrdistill.lm.kneser_ney import estimate_kneser_ney
from asrdistill.lm.train import train_lm

__all__ = ["ArpaLM", "Perplexity", "arpa_to_G", "estimate_kneser_ney", "read_sentences", "train_lm"]
