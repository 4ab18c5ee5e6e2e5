"""asrdistill: Kaldi-style hybrid DNN-HMM acoustic models, ensembles and their distillation."""

__version__ = "0.1.0"
