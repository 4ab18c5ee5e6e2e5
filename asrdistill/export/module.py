"""The exported network: CMVN'd fbank of one utterance [T, D] -> per-frame pdf log-likelihoods [T, P].

:class:`UtteranceScorer` wraps one :class:`~asrdistill.nnet.model.AcousticDnn` (or the members of an
:class:`~asrdistill.nnet.ensemble.Ensemble`) so that everything between the features and the decoder
happens inside the model: the per-dimension input normalisation, the context window
(:func:`~asrdistill.features.splice.splice_utterance`, clamped at the utterance edges), the MLP, the
log-softmax (combined over ensemble members) and the subtraction of the log prior. It only holds
plain torch layers and tensors, so it compiles with ``torch.jit.script`` and exports to ONNX
(``torch.onnx.export(..., dynamo=False)``) with a dynamic time axis.

Normalising before splicing gives exactly what the DNN computes after splicing (the shift and scale
are per feature dim, shared by every window position), with 26 times fewer operations.
"""
# (no `from __future__ import annotations`: TorchScript reads the class annotations)

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from asrdistill.features.splice import splice_utterance
from asrdistill.nnet.model import AcousticDnn


class UtteranceScorer(nn.Module):
    """feats [T, D] -> log p(pdf | window) - log p(pdf), [T, num_pdfs] (float32).

    ``combine`` is how ensemble members' distributions are averaged (as in
    :func:`asrdistill.nnet.ensemble.combine_log_probs` at temperature 1); unused for one model.
    """

    left: torch.jit.Final[int]
    right: torch.jit.Final[int]
    geometric: torch.jit.Final[bool]
    log_members: torch.jit.Final[float]

    def __init__(self, members: Sequence[AcousticDnn], combine: str = "arithmetic"):
        super().__init__()
        if not members:
            raise ValueError("no model to export")
        if combine not in ("arithmetic", "geometric"):
            raise ValueError(f"unknown combination {combine!r}")
        first = members[0]
        c = first.config
        for m in members[1:]:
            if (m.config.left, m.config.right, m.config.feat_dim, m.config.num_pdfs) != \
                    (c.left, c.right, c.feat_dim, c.num_pdfs):
                raise ValueError("ensemble members differ in context, feature dim or pdf set")
            if not (torch.equal(m.input_shift, first.input_shift) and torch.equal(m.input_scale, first.input_scale)):
                raise ValueError("ensemble members use different input normalisations")
        self.left, self.right = int(c.left), int(c.right)
        self.geometric = combine == "geometric"
        self.log_members = math.log(len(members))
        self.hidden = nn.ModuleList([m.hidden for m in members])
        self.output = nn.ModuleList([m.output for m in members])
        self.register_buffer("input_shift", first.input_shift.detach().clone().float())
        self.register_buffer("input_scale", first.input_scale.detach().clone().float())
        self.register_buffer("log_prior", first.log_prior.detach().clone().float())

    def forward(self, feats: Tensor) -> Tensor:
        x = (feats - self.input_shift) * self.input_scale
        x = splice_utterance(x, self.left, self.right)
        logps: list[Tensor] = []
        for hidden, output in zip(self.hidden, self.output):
            logps.append(torch.log_softmax(output(hidden(x)), dim=-1))
        if len(logps) == 1:
            logp = logps[0]
        elif self.geometric:
            logp = torch.log_softmax(torch.stack(logps).mean(dim=0), dim=-1)
        else:
            logp = torch.logsumexp(torch.stack(logps), dim=0) - self.log_members
        return logp - self.log_prior
