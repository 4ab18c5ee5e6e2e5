"""GMM-HMM alignment in the manner of Kaldi's steps/train_mono.sh, train_deltas.sh and align_si.sh, on
kaldi-hmm-gmm (Kaldi's own HMM/GMM C++ code) and kaldifst. The model itself lives in :mod:`asrdistill.hmm`.

Modules:
  engine      -- one pass over the data: align (Viterbi / equal / given) and accumulate, over nj processes
  train       -- monophone and triphone training, tree statistics, convert-ali, align_data
  alidir      -- alignment dirs (ali/pdf ark+scp, pdf_counts.txt, num_pdfs), importing your own alignments
  boundaries  -- phone-boundary accuracy against ground-truth phones.ctm
"""
from asrdistill.align.alidir import AlignmentDir, import_pdf_alignments, read_alignment_dir, write_alignment_dir
from asrdistill.align.boundaries import (alignments_to_segments, boundary_table, read_ctm, score_alignment_dir,
                                         score_boundaries)
from asrdistill.align.train import (GmmTrainConfig, align_data, convert_alignments, train_mono, train_tri,
                                    tri_config)

__all__ = [
    "AlignmentDir", "GmmTrainConfig", "align_data", "alignments_to_segments",
    "boundary_table", "convert_alignments", "import_pdf_alignments", "read_alignment_dir", "read_ctm",
    "score_alignment_dir", "score_boundaries", "train_mono", "train_tri", "tri_config", "write_alignment_dir",
]
