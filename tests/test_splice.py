"""Context windows: Splicer and splice_utterance against a plain Python loop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from asrdistill.features.splice import Splicer, splice_utterance

LENGTHS = [1, 3, 30, 7, 0, 26, 2]  # includes utterances shorter than the window and an empty one


def naive_splice(utt_feats: np.ndarray, t: int, left: int, right: int) -> np.ndarray:
    rows = []
    for k in range(t - left, t + right + 1):
        rows.append(utt_feats[min(max(k, 0), len(utt_feats) - 1)])
    return np.concatenate(rows)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    offsets = np.concatenate([[0], np.cumsum(LENGTHS)]).astype(np.int64)
    frames = rng.standard_normal((offsets[-1], 4)).astype(np.float32)
    return frames, offsets


@pytest.mark.parametrize("left,right", [(20, 5), (2, 1), (0, 0), (0, 3)])
def test_splicer_matches_naive_loop(data, left, right):
    frames, offsets = data
    splicer = Splicer(offsets, left, right)
    index = torch.arange(len(frames)).flip(0)  # every frame, in an arbitrary order
    out = splicer(torch.from_numpy(frames), index)
    assert out.shape == (len(frames), (left + 1 + right) * 4)
    for row, i in enumerate(index.tolist()):
        u = int(np.searchsorted(offsets, i, side="right") - 1)
        utt = frames[offsets[u]:offsets[u + 1]]
        np.testing.assert_array_equal(out[row].numpy(), naive_splice(utt, i - offsets[u], left, right))


def test_default_window_is_26_frames_time_major(data):
    frames, offsets = data
    splicer = Splicer(offsets)
    i = int(offsets[5]) + 22  # frame 22 of the 26-frame utterance
    out = splicer(torch.from_numpy(frames), torch.tensor([i])).reshape(26, 4)
    np.testing.assert_array_equal(out[0].numpy(), frames[i - 20])  # t-20 first
    np.testing.assert_array_equal(out[20].numpy(), frames[i])  # the current frame at position 21
    np.testing.assert_array_equal(out[23].numpy(), frames[offsets[6] - 1])  # right edge repeats, no neighbour
    np.testing.assert_array_equal(out[25].numpy(), frames[offsets[6] - 1])


def test_splicer_reads_numpy_memmap_rows(data, tmp_path):
    frames, offsets = data
    path = tmp_path / "f.f32"
    frames.tofile(path)
    mm = np.memmap(path, dtype=np.float32, mode="r", shape=frames.shape)
    splicer = Splicer(offsets, 3, 2)
    index = torch.tensor([0, 5, 40, 68])
    torch.testing.assert_close(splicer(mm, index), splicer(torch.from_numpy(frames), index), rtol=0, atol=0)


def test_splice_utterance_agrees_with_splicer(data):
    frames, offsets = data
    splicer = Splicer(offsets, 20, 5)
    all_rows = splicer(torch.from_numpy(frames), torch.arange(len(frames)))
    for u in range(len(LENGTHS)):
        a, b = offsets[u], offsets[u + 1]
        out = splice_utterance(torch.from_numpy(frames[a:b]), 20, 5)
        assert out.shape == (b - a, 26 * 4)
        torch.testing.assert_close(out, all_rows[a:b], rtol=0, atol=0)


def test_splice_utterance_scripts_and_exports_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")

    class Splice(torch.nn.Module):
        def forward(self, feats: torch.Tensor) -> torch.Tensor:
            return splice_utterance(feats, 4, 2)

    model = Splice()
    scripted = torch.jit.script(model)
    for t in (0, 1, 9):
        x = torch.randn(t, 3)
        torch.testing.assert_close(scripted(x), model(x), rtol=0, atol=0)
    path = tmp_path / "splice.onnx"
    torch.onnx.export(model, (torch.randn(12, 3),), str(path), opset_version=17, dynamo=False,
                      input_names=["feats"], output_names=["spliced"],
                      dynamic_axes={"feats": {0: "T"}, "spliced": {0: "T"}})
    sess = onnxruntime.InferenceSession(str(path))
    for t in (1, 5, 40):  # lengths other than the traced one
        x = torch.randn(t, 3)
        np.testing.assert_array_equal(sess.run(None, {"feats": x.numpy()})[0], model(x).numpy())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_splicer_on_cuda(data):
    frames, offsets = data
    cpu = Splicer(offsets, 20, 5)
    gpu = Splicer(offsets, 20, 5, device="cuda")
    index = torch.randint(0, len(frames), (50,))
    out = gpu(torch.from_numpy(frames).cuda(), index.cuda())
    assert out.is_cuda
    torch.testing.assert_close(out.cpu(), cpu(torch.from_numpy(frames), index), rtol=0, atol=0)
    torch.testing.assert_close(splice_utterance(torch.from_numpy(frames[:30]).cuda()).cpu(),
                               splice_utterance(torch.from_numpy(frames[:30])), rtol=0, atol=0)
