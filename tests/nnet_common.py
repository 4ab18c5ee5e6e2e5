"""Shared settings of the DNN and distillation tests: a small model over a 20-pdf toy task."""
from __future__ import annotations

from asrdistill.nnet.model import DnnConfig
from asrdistill.nnet.train import DnnTrainConfig

NUM_PDFS = 20
SMALL = DnnConfig(num_pdfs=NUM_PDFS, left=3, right=2, hidden_layers=2, hidden_dim=64)


def quiet(**kw) -> DnnTrainConfig:
    """A fast, silent training configuration (3 epochs, one thread, no TensorBoard)."""
    base = dict(max_epochs=3, batch_size=128, learning_rate=0.02, tensorboard=False, progress=False, num_threads=1)
    base.update(kw)
    return DnnTrainConfig(**base)
