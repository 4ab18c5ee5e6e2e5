"""Triphone decision trees for Kaldi-style tied-state HMMs.

Written by hand because no Python library builds Kaldi decision trees: kaldi-hmm-gmm can use a tree
(``ContextDependency``) but has no tree statistics, phone clustering or tree building, and no tree
reader/writer other than its pickling hook. This package provides all of it, following the design of
Kaldi's ``src/tree`` (single-Gaussian likelihood criterion, greedy splitting, bottom-up leaf merging,
binary ``ContextDependency`` files that Kaldi's own tools can read).

Modules:
  stats      -- per-context sufficient statistics (count, sum x, sum x^2) of the aligned frames
  questions  -- phone questions from top-down phone clustering, plus user and pdf-class questions
  event_map  -- the tree itself (Kaldi EventMap nodes CE/SE/TE) and ``Tree.compute``
  build      -- greedy likelihood-gain splitting and within-root leaf merging
  kaldi_io   -- Kaldi binary ContextDependency writer/reader, conversion to kaldi_hmm_gmm
"""
from asrdistill.tree.build import Root, build_tree, make_roots, parse_roots
from asrdistill.tree.event_map import ConstantEventMap, SplitEventMap, TableEventMap, Tree
from asrdistill.tree.kaldi_io import from_context_dependency, read_tree, to_context_dependency, write_tree
from asrdistill.tree.questions import Questions, make_questions, parse_extra_questions
from asrdistill.tree.stats import TreeStats, gauss_objf

__all__ = [
    "ConstantEventMap", "Questions", "Root", "SplitEventMap", "TableEventMap", "Tree", "TreeStats",
    "build_tree", "from_context_dependency", "gauss_objf", "make_questions", "make_roots",
    "parse_extra_questions", "parse_roots", "read_tree", "to_context_dependency", "write_tree",
]
