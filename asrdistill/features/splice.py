"""Context windows (splicing): each frame together with its left and right neighbours.

A DNN input is the window ``t-left .. t+right`` (26 frames by default: 20 left, the current frame,
5 right) flattened time-major: frame ``t-left`` first with its D dims contiguous. Windows never cross
an utterance boundary: positions before the first / after the last frame of the utterance repeat
that first / last frame. Windows are built on the fly by index arithmetic (a batch of B frames
reads B x window x D values); no spliced copy of the data is ever stored.

:class:`Splicer` works on the frame store's concatenated frames (CPU or CUDA tensors, or a numpy
array / memory map); :func:`splice_utterance` does one utterance with ops that ``torch.jit.script``
and ``torch.onnx.export`` support, for use inside exported models.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

DEFAULT_LEFT = 20
DEFAULT_RIGHT = 5


def splice_utterance(feats: Tensor, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT) -> Tensor:
    """Spliced features [T, (left+1+right)*D] of one utterance's features ``feats`` [T, D]."""
    num_frames = feats.size(0)
    dim = feats.size(1)
    width = left + 1 + right
    window = torch.arange(width, device=feats.device, dtype=torch.long) - left          # [W]
    times = torch.arange(num_frames, device=feats.device, dtype=torch.long)             # [T]
    idx = times.unsqueeze(1) + window.unsqueeze(0)                                      # [T, W]
    last = times[-1:].unsqueeze(1)                                                      # [1, 1]: T-1
    idx = torch.maximum(torch.minimum(idx, last), torch.zeros_like(idx))
    return feats.index_select(0, idx.reshape(-1)).reshape(num_frames, width * dim)


class Splicer:
    """Builds context windows for frame indices into the concatenated frames of many utterances.

    ``offsets`` (int64 [U+1], as :class:`~asrdistill.features.store.FrameStore.offsets`) tells
    where each utterance starts and ends; a window is clamped into its own utterance.
    Indices are not range-checked (that would synchronise a CUDA stream): keep them in [0, N).
    """

    def __init__(self, offsets: np.ndarray | Tensor, left: int = DEFAULT_LEFT, right: int = DEFAULT_RIGHT,
                 device: torch.device | str = "cpu"):
        if left < 0 or right < 0:
            raise ValueError(f"context must be non-negative, got left={left} right={right}")
        self.left, self.right = int(left), int(right)
        self.width = self.left + 1 + self.right
        self.device = torch.device(device)
        self.offsets = torch.as_tensor(np.asarray(offsets, dtype=np.int64)).to(self.device)
        if self.offsets.ndim != 1 or len(self.offsets) < 1:
            raise ValueError("offsets must be a 1-d array of U+1 values")
        self.window = torch.arange(-self.left, self.right + 1, dtype=torch.long, device=self.device)

    @property
    def num_frames(self) -> int:
        return int(self.offsets[-1])

    def to(self, device: torch.device | str) -> "Splicer":
        return Splicer(self.offsets.cpu().numpy(), self.left, self.right, device)

    def window_indices(self, index: Tensor) -> Tensor:
        """Row indices [B, W] of the window of each frame in ``index`` [B], clamped to its utterance."""
        index = torch.as_tensor(index, dtype=torch.long, device=self.device)
        utt = torch.searchsorted(self.offsets, index, right=True) - 1
        first = self.offsets[utt].unsqueeze(1)
        last = (self.offsets[utt + 1] - 1).unsqueeze(1)
        idx = index.unsqueeze(1) + self.window.unsqueeze(0)
        return torch.maximum(torch.minimum(idx, last), first)

    def __call__(self, frames: Tensor | np.ndarray, index: Tensor | np.ndarray) -> Tensor:
        """Spliced windows [B, W*D] of the frames ``index`` [B] from ``frames`` [N, D].

        ``frames`` may be a tensor on this splicer's device or a numpy array / memory map (then
        only the B x W rows needed are read, and a CPU tensor is returned).
        """
        idx = self.window_indices(index)
        batch = idx.shape[0]
        if isinstance(frames, np.ndarray):
            rows = np.asarray(frames[idx.cpu().numpy().reshape(-1)], dtype=np.float32)
            return torch.from_numpy(rows).reshape(batch, -1)
        return frames.index_select(0, idx.reshape(-1)).reshape(batch, self.width * frames.shape[1])
