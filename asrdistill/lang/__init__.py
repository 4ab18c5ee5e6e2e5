"""The lang dir: phone and word symbol tables, HMM topology, lexicon FSTs (L.fst, L_disambig.fst).

Modules:
  lexicon  -- reading and validating a Kaldi dict dir (lexicon.txt, silence/nonsilence phone lists)
  prepare  -- building a lang dir from a dict dir (:func:`prepare_lang`), loading it (:func:`load_lang`)
              and mapping transcripts to word ids with OOV handling (:func:`transcripts_to_ids`)
"""
from asrdistill.lang.lexicon import DictDir, read_dict_dir
from asrdistill.lang.prepare import Lang, load_lang, prepare_lang, transcripts_to_ids

__all__ = ["DictDir", "Lang", "load_lang", "prepare_lang", "read_dict_dir",
           "transcripts_to_ids"]
