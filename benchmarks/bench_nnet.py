"""Training throughput of the DNN presets: frames/s and FLOP/s of one SGD step (forward + backward).

Usage: ``python benchmarks/bench_nnet.py [--pdfs 2000] [--batch 256] [--threads N] [--presets tiny,small]
[--seconds 3] [--device cpu|cuda]``. Each step splices a batch of random frame indices from an in-memory
frame array (as training does), runs forward, cross-entropy, backward and an SGD-momentum update.
FLOPs per frame are counted as 2 per weight forward, 4 per weight backward, except that the first
layer needs no gradient w.r.t. its input (2 per weight): ``6 * W - 2 * W_first``.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from asrdistill.features.splice import Splicer
from asrdistill.nnet.device import autocast_context
from asrdistill.nnet.model import PRESETS, DnnConfig, build_model


def bench(preset: str, pdfs: int, batch: int, seconds: float, device: torch.device) -> dict:
    cfg = DnnConfig.from_preset(preset, pdfs)
    model = build_model(cfg, seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    n = 200_000
    frames = torch.randn(n, cfg.feat_dim, device=device)
    targets = torch.randint(0, pdfs, (n,), device=device)
    splicer = Splicer(torch.tensor([0, n // 2, n]).numpy(), cfg.left, cfg.right, device)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        rows = torch.randint(0, n, (batch,), generator=gen).to(device)
        x = splicer(frames, rows)
        with autocast_context(device):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), targets[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        steps += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    dims = [cfg.input_dim] + [cfg.hidden_dim] * cfg.hidden_layers + [pdfs]
    weights = [a * b for a, b in zip(dims[:-1], dims[1:])]
    flops_per_frame = 6 * sum(weights) - 2 * weights[0]
    fps = steps * batch / dt
    return {"preset": preset, "layers": cfg.hidden_layers, "hidden": cfg.hidden_dim, "pdfs": pdfs,
            "params": cfg.num_params(), "batch": batch, "frames_per_s": round(fps),
            "gflop_per_s": round(fps * flops_per_frame / 1e9, 2),
            "s_per_1M_frames": round(1e6 / fps, 1)}


def gemm_reference(device: torch.device, seconds: float = 1.0) -> float:
    """GFLOP/s of one plain float32 matmul [256 x 1040] @ [1040 x 2048] now (the machine's current pace)."""
    a = torch.randn(256, 1040, device=device)
    b = torch.randn(1040, 2048, device=device)
    a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n * 2 * 256 * 1040 * 2048 / (time.perf_counter() - t0) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdfs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"# torch {torch.__version__}, device {device}, threads {torch.get_num_threads()}")
    print(json.dumps({"gemm_reference_gflop_per_s": round(gemm_reference(device), 1)}), flush=True)
    for preset in args.presets.split(","):
        print(json.dumps(bench(preset, args.pdfs, args.batch, args.seconds, device)), flush=True)
    print(json.dumps({"gemm_reference_gflop_per_s": round(gemm_reference(device), 1)}), flush=True)


if __name__ == "__main__":
    main()
