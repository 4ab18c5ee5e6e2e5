"""The GMM-HMM acoustic model: Kaldi's topology, tree, transition model and diagonal GMMs (kaldi-hmm-gmm),
the GMM features, and reproducible mixing up. Used by align (training, alignment), decode and export.

Public names:
  GmmHmm        -- the model (topology, ContextDependency, TransitionModel, AmDiagGmm) and its pickle-free file
  GmmFeatures   -- 39-dim GMM cepstra + deltas from the frame store's CMVN'd fbank (module ``cepstra``)
  mix_up        -- split Gaussians towards a total with a seeded generator (module ``mixup``)
"""
from asrdistill.hmm.cepstra import GmmFeatures
from asrdistill.hmm.mixup import mix_up
from asrdistill.hmm.model import GmmHmm

__all__ = ["GmmFeatures", "GmmHmm", "mix_up"]
