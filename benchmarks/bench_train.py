"""Training throughput of the DNN presets: frames/s, achieved FLOP/s and MFU, on any device and dtype.

One *step* is what :func:`asrdistill.nnet.train.train_one_epoch` does per batch: splice a batch of frame rows
from frames already on the device, forward (under autocast for bf16), cross-entropy, backward, SGD-momentum
update. FLOPs per frame count the matmuls only (2 per weight forward, 4 per weight backward, except that the
first layer needs no gradient with respect to its input): ``6 * W - 2 * W_first``; the tests check this
count against ``torch.utils.flop_counter``.

MFU here is the step's achieved FLOP/s divided by the FLOP/s of *the same matmuls* (the step's forward and
backward GEMMs, same shapes, same dtype, same device) run back to back with nothing else: the share of the
machine's matmul speed at these shapes that training gets, i.e. what the rest of the step (splicing,
softmax, elementwise ops, the optimiser, Python) costs. ``peak_gflop_per_s`` is a large square matmul of
the dtype, for reference (``mfu_vs_peak`` divides by it).

``--train-loop`` also runs :func:`~asrdistill.nnet.train.train_model` for one epoch on random frames of the
same shape and reports its training frames/s (without the dev pass): the loop's overhead over the pure step
(fp32 and bf16: the trainer's ``--precision``; it has no tf32 mode).

Usage::

    python benchmarks/bench_train.py [--presets tiny,small,medium,paper] [--pdfs 2000] [--batch 256]
        [--dtype fp32|tf32|bf16] [--device cpu|cuda] [--threads N] [--seconds 3] [--train-loop] [--json OUT]

On a CUDA machine (not measured in this project so far), the paper setting::

    python benchmarks/bench_train.py --device cuda --presets paper --pdfs 14000 --batch 1024 --dtype bf16 \\
        --seconds 10 --train-loop
    python benchmarks/bench_train.py --device cuda --presets paper --pdfs 14000 --batch 1024 --dtype tf32

``tf32`` only differs from ``fp32`` on CUDA (Ampere or newer); on CPU it is reported as fp32. bf16 on CPU
runs where the CPU has bf16 matmul kernels (slowly where it emulates them).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any, Iterator

import torch

from asrdistill.features.splice import Splicer
from asrdistill.nnet.config import PRESETS, DnnConfig
from asrdistill.nnet.device import autocast_context
from asrdistill.nnet.model import build_model

DTYPES = ("fp32", "tf32", "bf16")


def layer_dims(cfg: DnnConfig) -> list[int]:
    return [cfg.input_dim] + [cfg.hidden_dim] * cfg.hidden_layers + [cfg.num_pdfs]


def flops_per_frame(cfg: DnnConfig) -> int:
    """Matmul FLOPs of one training frame (forward + backward; see the module docstring)."""
    dims = layer_dims(cfg)
    weights = [a * b for a, b in zip(dims[:-1], dims[1:])]
    return 6 * sum(weights) - 2 * weights[0]


@contextlib.contextmanager
def precision(dtype: str, device: torch.device) -> Iterator[None]:
    """tf32 matmuls allowed only for ``tf32`` (CUDA); restored afterwards."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = dtype == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def autocast_dtype(dtype: str) -> torch.dtype:
    return torch.bfloat16 if dtype == "bf16" else torch.float32


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, device: torch.device, seconds: float, min_steps: int) -> tuple[int, float]:
    """(steps, seconds) of calling ``fn`` for about ``seconds`` (at least ``min_steps``) after 3 warm-up calls."""
    for _ in range(3):
        fn()
    _sync(device)
    steps, t0 = 0, time.perf_counter()
    while steps < min_steps or time.perf_counter() - t0 < seconds:
        fn()
        steps += 1
        if device.type == "cuda" and steps % 20 == 0:
            _sync(device)
    _sync(device)
    return steps, time.perf_counter() - t0


def make_step(cfg: DnnConfig, batch: int, dtype: str, device: torch.device, num_frames: int = 100_000):
    """The training step closure (model, optimiser and frames on ``device``)."""
    model = build_model(cfg, seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    gen = torch.Generator(device="cpu").manual_seed(0)
    frames = torch.randn(num_frames, cfg.feat_dim, generator=gen).to(device)
    targets = torch.randint(0, cfg.num_pdfs, (num_frames,), generator=gen).to(device)
    splicer = Splicer(torch.tensor([0, num_frames // 2, num_frames]).numpy(), cfg.left, cfg.right, device)
    perm = torch.randint(0, num_frames, (64, batch), generator=gen).to(device)  # row indices, int64 on device
    amp = autocast_dtype(dtype)
    state = {"i": 0}

    def step() -> None:
        rows = perm[state["i"] % len(perm)]
        state["i"] += 1
        x = splicer(frames, rows)
        with autocast_context(device, amp):
            logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), targets[rows])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def make_gemms(cfg: DnnConfig, batch: int, dtype: str, device: torch.device):
    """The step's matmuls alone: per layer the forward GEMM, the weight gradient and (but for the first
    layer) the input gradient, in the compute dtype."""
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    dims = layer_dims(cfg)
    mats = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        x = torch.randn(batch, a, device=device, dtype=dt)
        w = torch.randn(a, b, device=device, dtype=dt)
        dy = torch.randn(batch, b, device=device, dtype=dt)
        mats.append((x, w, dy, i > 0))

    def gemms() -> None:
        for x, w, dy, input_grad in mats:
            x @ w
            dy.t() @ x
            if input_grad:
                dy @ w.t()

    return gemms


def peak_matmul(dtype: str, device: torch.device, seconds: float, n: int = 2048) -> float:
    """FLOP/s of one n x n x n matmul of the dtype (the device's reference pace)."""
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    steps, dt_s = _time(lambda: a @ b, device, seconds, 2)
    return steps * 2 * n ** 3 / dt_s


def bench(preset: str, pdfs: int, batch: int, dtype: str = "fp32", device: str | torch.device = "cpu",
          seconds: float = 3.0, min_steps: int = 5, left: int | None = None, right: int | None = None,
          peak_size: int = 2048) -> dict[str, Any]:
    """Frames/s, GFLOP/s and MFU of the training step of ``preset`` (see the module docstring)."""
    device = torch.device(device)
    kw = {k: v for k, v in (("left", left), ("right", right)) if v is not None}
    cfg = DnnConfig.from_preset(preset, pdfs, **kw)
    with precision(dtype, device):
        steps, dt = _time(make_step(cfg, batch, dtype, device), device, seconds, min_steps)
        g_steps, g_dt = _time(make_gemms(cfg, batch, dtype, device), device, seconds / 2, min_steps)
        peak = peak_matmul(dtype, device, seconds / 3, peak_size)
    fpf = flops_per_frame(cfg)
    fps = steps * batch / dt
    achieved = fps * fpf
    gemm_rate = g_steps * batch * fpf / g_dt
    return {"preset": preset, "layers": cfg.hidden_layers, "hidden": cfg.hidden_dim, "pdfs": pdfs,
            "params": cfg.num_params(), "batch": batch, "dtype": dtype if device.type == "cuda" or dtype != "tf32"
            else "tf32(=fp32 on cpu)", "device": str(device), "threads": torch.get_num_threads(),
            "frames_per_s": round(fps), "gflop_per_s": round(achieved / 1e9, 2),
            "gemm_gflop_per_s": round(gemm_rate / 1e9, 2), "mfu": round(achieved / gemm_rate, 3),
            "peak_gflop_per_s": round(peak / 1e9, 2), "mfu_vs_peak": round(achieved / peak, 3),
            "s_per_1M_frames": round(1e6 / fps, 1)}


def bench_train_loop(preset: str, pdfs: int, batch: int, device: str = "cpu", num_frames: int = 50_000,
                     threads: int | None = None, out_dir: str | None = None,
                     precision: str = "auto") -> dict[str, Any]:
    """Training frames/s of :func:`~asrdistill.nnet.train.train_model` itself (one epoch at ``precision``, the
    trainer's option) on ``num_frames`` random frames; the dev pass is excluded."""
    import tempfile

    from asrdistill.nnet.config import DnnTrainConfig
    from asrdistill.nnet.data import FrameDataset
    from asrdistill.nnet.train import train_model

    cfg = DnnConfig.from_preset(preset, pdfs)
    gen = torch.Generator().manual_seed(0)
    utt_len = 500
    offsets = torch.arange(0, num_frames + 1, utt_len)
    n = int(offsets[-1])

    def data(m: int) -> FrameDataset:
        off = offsets[:m // utt_len + 1]
        return FrameDataset(torch.randn(int(off[-1]), cfg.feat_dim, generator=gen),
                            torch.randint(0, pdfs, (int(off[-1]),), generator=gen), off,
                            [f"u{i:06d}" for i in range(len(off) - 1)], pdfs)

    train, dev = data(n), data(utt_len * 2)
    config = DnnTrainConfig(max_epochs=1, batch_size=batch, num_threads=threads, device=device, tensorboard=False,
                            progress=False, schedule="constant", precision=precision)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        try:
            res = train_model(cfg, train, dev, tmp, config)
            record = res.history[-1]
        except Exception as err:  # random targets may not improve dev: then the record is in last.pt
            from asrdistill.errors import UserFacingError

            if not isinstance(err, UserFacingError):
                raise
            record = torch.load(f"{tmp}/checkpoints/last.pt", weights_only=True)["history"][-1]
    return {"preset": preset, "pdfs": pdfs, "batch": batch, "device": device, "threads": torch.get_num_threads(),
            "train_loop_frames_per_s": round(n / record["train_seconds"]), "frames": n}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--pdfs", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--dtype", choices=DTYPES, default="fp32")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--min-steps", type=int, default=5)
    ap.add_argument("--left", type=int, default=None)
    ap.add_argument("--right", type=int, default=None)
    ap.add_argument("--peak-size", type=int, default=2048, help="side of the reference square matmul")
    ap.add_argument("--train-loop", action="store_true", help="also time train_model (one epoch)")
    ap.add_argument("--loop-frames", type=int, default=50_000)
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
          f"dtype {args.dtype}, batch {args.batch}, pdfs {args.pdfs}", flush=True)
    rows = []
    for preset in args.presets.split(","):
        row = bench(preset, args.pdfs, args.batch, args.dtype, args.device, args.seconds, args.min_steps,
                    args.left, args.right, args.peak_size)
        if args.train_loop and args.dtype == "tf32":
            print("# --train-loop skipped: train_model has no tf32 precision (fp32 or bf16)", flush=True)
        elif args.train_loop:
            loop = bench_train_loop(preset, args.pdfs, args.batch, args.device, args.loop_frames, args.threads,
                                    precision=args.dtype)
            row["train_loop_frames_per_s"] = loop["train_loop_frames_per_s"]
            row["loop_vs_step"] = round(loop["train_loop_frames_per_s"] / row["frames_per_s"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    keys = ["preset", "params", "frames_per_s", "gflop_per_s", "gemm_gflop_per_s", "mfu", "peak_gflop_per_s",
            "mfu_vs_peak"] + (["train_loop_frames_per_s", "loop_vs_step"] if args.train_loop else [])
    print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
    for r in rows:
        print("| " + " | ".join(f"{r[k]:,}" if isinstance(r[k], int) else str(r[k]) for k in keys) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
