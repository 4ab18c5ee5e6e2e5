"""Frame-level training of a DNN acoustic model with a Kaldi-style "newbob" learning-rate schedule.

Each epoch visits every training frame once in a fresh random order (a permutation of all frame rows
of the whole training set, from a seeded generator); batches are spliced on the fly on the training
device. The optimiser is SGD with momentum (default; Kaldi's nnet1 recipe is plain SGD, momentum
makes the small-batch updates smoother) or Adam. The per-batch loss is frame cross-entropy against
the alignment by default; :mod:`asrdistill.distill.train` passes its own objective.

Schedule ("newbob", as Kaldi nnet1's ``train_scheduler.sh``): the dev-set CE of the initial model is
measured first. After each epoch, an epoch that does not lower the best dev CE is rejected (the
weights and optimiser state return to the best epoch's) when ``reject_worse``; the relative
improvement of the best dev CE is then ``impr``. Once ``impr < start_halving_impr`` (or, with
``start_halving_epoch``, after that epoch at the latest) the learning rate is halved after every further
epoch; once halving and ``impr < end_halving_impr`` training stops (not before ``min_epochs``), and always
after ``max_epochs``. The first ``keep_lr_epochs`` epochs (Kaldi's ``keep_lr_iters``) keep the learning rate
and are never rejected: training goes on from them, and the best-dev model is still the one kept.
``schedule="constant"`` keeps the learning rate fixed. ``early_stop_patience`` additionally stops after that
many epochs without a new best dev CE. The model kept is always the
best-dev one. Guards: a non-finite training loss or dev CE, or a run in which no epoch improves on the
initial model, is an error that writes no ``final.mdl``; so is resuming a checkpoint of another architecture.

Every epoch writes ``checkpoints/last.pt`` (model, optimiser, schedule, RNG states, epoch, history)
atomically, and ``checkpoints/best.pt`` when the dev CE improved; all load with
``torch.load(weights_only=True)`` (RNG states are byte tensors). ``resume=True`` continues from
``last.pt`` and gives the same result as an uninterrupted run (bit-identical on CPU with the same
thread count). Per-epoch lr, dev frame accuracy / CE go to ``log.txt``, ``history.json`` and
TensorBoard (``tb/``). The result is ``final.mdl`` (see :mod:`asrdistill.nnet.model`).

Under ``torchrun`` (:mod:`asrdistill.nnet.distributed`) the same code trains data-parallel: ``batch_size``
is the global batch, every rank trains on its slice of each global batch of the shared permutation, dev
scores are summed over the ranks' shards, and only rank 0 writes files.

The steps, one function each (as icefall's recipes name them): :func:`compute_loss` (one batch),
:func:`train_one_epoch`, :func:`compute_validation_loss`, :func:`schedule_step` (newbob: accept / reject,
lr), :func:`save_checkpoint` / :func:`load_checkpoint`, :func:`finish` (best model -> ``final.mdl``);
:func:`train_model` strings them together.

On CUDA, frames and targets are on the GPU (or, from a memory-mapped dataset, each batch is copied there).
``precision`` sets the training passes' autocast (:func:`~asrdistill.nnet.device.training_dtype`): at ``auto``
they run in bf16 on CUDA and on CPUs with native bf16 matrix kernels (AVX512-BF16, AMX), in float32 on other
CPUs; weights, optimiser state and losses stay float32 (dev scoring keeps the device's default: float32 on CPU,
bf16 on CUDA). The dtype used is recorded in ``history.json``. On CPU ``num_threads`` sets torch's thread count.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import Tensor

from asrdistill.errors import UserFacingError
from asrdistill.nnet import distributed as dist
from asrdistill.nnet.config import DnnTrainConfig
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.device import autocast_context, training_dtype
from asrdistill.nnet.evaluate import frame_score_sums, scores_from_sums
from asrdistill.nnet.model import (AcousticDnn, DnnConfig, build_model, load_model, log_prior_from_counts,
                                   model_state, save_model)
from asrdistill.utils import atomic_path, get_logger, is_done, mark_done, write_json_atomic, write_text_atomic

log = get_logger(__name__)

CKPT_FORMAT = "asrdistill-train-ckpt-1"

#: Fields that may differ between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"max_epochs", "num_threads", "device", "eval_batch_size", "tensorboard", "progress"}

#: A non-finite training loss is looked for every this many batches (one device sync each).
CHECK_EVERY = 200


class Objective(Protocol):
    """Per-batch training loss: ``(logits [B,C] float32, spliced x [B,F], targets [B], rows [B]) -> scalar``.

    ``rows`` are the batch's (global) row indices into the training :class:`FrameDataset`, int64 on the
    training device. An objective with a ``to(device)`` method is moved to the training device first.
    """

    def __call__(self, logits: Tensor, x: Tensor, targets: Tensor, rows: Tensor) -> Tensor: ...


def cross_entropy_objective(logits: Tensor, x: Tensor, targets: Tensor, rows: Tensor) -> Tensor:
    return torch.nn.functional.cross_entropy(logits, targets)


@dataclass
class Newbob:
    """The learning-rate schedule's state (see module docstring); plain numbers, saved in checkpoints."""

    lr: float
    schedule: str = "newbob"
    halving_factor: float = 0.5
    start_halving_impr: float = 0.01
    end_halving_impr: float = 0.001
    min_epochs: int = 1
    early_stop_patience: int | None = None
    start_halving_epoch: int | None = None
    keep_lr_epochs: int = 0
    halving: bool = False
    best_loss: float = math.inf
    best_epoch: int = 0
    epochs_since_best: int = 0
    stopped: bool = False
    stop_reason: str = ""

    def start(self, initial_loss: float) -> None:
        self.best_loss, self.best_epoch = initial_loss, 0

    def step(self, epoch: int, dev_loss: float) -> bool:
        """Record epoch ``epoch``'s dev loss; returns whether it is the new best. Updates ``lr``/``stopped``."""
        prev = self.best_loss
        accepted = dev_loss < prev
        if accepted:
            self.best_loss, self.best_epoch, self.epochs_since_best = dev_loss, epoch, 0
        else:
            self.epochs_since_best += 1
        if self.early_stop_patience is not None and self.epochs_since_best >= self.early_stop_patience:
            if epoch >= self.min_epochs:
                self.stopped, self.stop_reason = True, f"no dev improvement for {self.epochs_since_best} epochs"
                return accepted
        if self.schedule != "newbob":
            return accepted
        impr = (prev - self.best_loss) / abs(prev) if math.isfinite(prev) and prev != 0 else math.inf
        if self.keeps_lr(epoch):  # no halving, no stop (and no rejection: schedule_step)
            return accepted
        if self.halving and impr < self.end_halving_impr:
            if epoch >= self.min_epochs:
                self.stopped, self.stop_reason = True, f"relative dev improvement {impr:.4g} < {self.end_halving_impr}"
            return accepted
        if impr < self.start_halving_impr or (self.start_halving_epoch is not None
                                              and epoch >= self.start_halving_epoch):
            self.halving = True
        if self.halving:
            self.lr *= self.halving_factor
        return accepted

    def keeps_lr(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` is one of the first ``keep_lr_epochs`` (Kaldi's ``keep_lr_iters``)."""
        return epoch <= self.keep_lr_epochs

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "Newbob":
        return cls(**d)

    @classmethod
    def from_config(cls, config: DnnTrainConfig) -> "Newbob":
        return cls(lr=config.learning_rate, schedule=config.schedule, halving_factor=config.halving_factor,
                   start_halving_impr=config.start_halving_impr, end_halving_impr=config.end_halving_impr,
                   min_epochs=config.min_epochs, early_stop_patience=config.early_stop_patience,
                   start_halving_epoch=config.start_halving_epoch, keep_lr_epochs=config.keep_lr_epochs)


@dataclass
class TrainResult:
    model: AcousticDnn                      # the best-dev model (CPU, eval mode)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    model_path: Path | None = None


@dataclass
class TrainState:
    """What changes during training and is saved in ``last.pt``."""

    model: AcousticDnn
    optimizer: torch.optim.Optimizer
    sched: Newbob
    gen: torch.Generator                    # draws each epoch's permutation (the same on every rank)
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0


@dataclass
class TrainRun:
    """What stays fixed during one training run."""

    out: Path
    config: DnnTrainConfig
    device: torch.device
    train_data: FrameDataset
    dev_data: FrameDataset
    objective: Objective
    net: torch.nn.Module                    # the model, wrapped in DistributedDataParallel under DDP
    world: int = 1
    rank: int = 0
    writer: Any = None
    dtype: torch.dtype = torch.float32      # autocast dtype of the training passes (``config.precision``)

    @property
    def dtype_name(self) -> str:
        """``float32`` / ``bfloat16``: :attr:`dtype` as logged and recorded in ``history.json``."""
        return str(self.dtype).removeprefix("torch.")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def last_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.out / "checkpoints" / "best.pt"

    @property
    def final_path(self) -> Path:
        return self.out / "final.mdl"

    def info(self, msg: str, *args: Any) -> None:
        if self.main:
            log.info(msg, *args)


# --- small helpers ----------------------------------------------------------------------------------------
def _make_optimizer(model: AcousticDnn, config: DnnTrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.learning_rate, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    raise UserFacingError(f"unknown optimizer {config.optimizer!r} (sgd or adam)")


def _rng_state(gen: torch.Generator) -> dict[str, Any]:
    state: dict[str, Any] = {"perm": gen.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(gen: torch.Generator, state: dict[str, Any]) -> None:
    gen.set_state(state["perm"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _save_torch(path: Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _load_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserFacingError(f"{path}: cannot read checkpoint: {err}") from err


def _data_digest(data: FrameDataset) -> dict[str, Any]:
    import hashlib

    return {"frames": len(data), "utts": len(data.utts),
            "utts_sha1": hashlib.sha1("\n".join(data.utts).encode()).hexdigest()}


def _config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def _format_log(history: list[dict[str, Any]]) -> str:
    lines = ["# epoch lr train_ce train_acc dev_ce dev_acc accepted seconds"]
    for h in history:
        lines.append(f"{h['epoch']} {h['lr']:.6g} {h.get('train_ce', float('nan')):.4f} "
                     f"{h.get('train_acc', float('nan')):.4f} {h['dev_ce']:.4f} {h['dev_acc']:.4f} "
                     f"{int(h.get('accepted', True))} {h.get('seconds', 0.0):.1f}")
    return "\n".join(lines) + "\n"


# --- the steps ------------------------------------------------------------------------------------------
def compute_loss(run: TrainRun, x: Tensor, y: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """(mean loss, float32 logits) of one (local) batch: spliced ``x``, targets ``y``, global ``rows``."""
    with autocast_context(run.device, run.dtype):
        logits = run.net(x)
    logits = logits.float()
    if not len(rows):  # a rank without rows in a short last batch still joins the gradient reduction
        return logits.sum() * 0.0, logits
    return run.objective(logits, x, y, rows), logits


def compute_validation_loss(run: TrainRun, model: AcousticDnn) -> dict[str, float]:
    """Dev frame accuracy / CE of ``model``: each rank scores its shard of the dev rows, the sums are reduced."""
    start, end = dist.shard(len(run.dev_data), run.rank, run.world)
    sums = frame_score_sums(model, run.dev_data, run.config.eval_batch_size, start=start, end=end)
    return scores_from_sums(dist.all_reduce_sum(sums))


def _check_finite(run: TrainRun, epoch: int, batch: int, loss_sum: Tensor) -> None:
    if not dist.all_agree(bool(torch.isfinite(loss_sum).item())):
        raise UserFacingError(f"{run.out}: the training loss became non-finite (NaN or Inf) in epoch {epoch} by "
                              f"batch {batch}; no final.mdl was written (checkpoints/ hold the last good epoch). "
                              "Lower the learning rate (--lr) and rerun with --no-resume")


def train_one_epoch(run: TrainRun, state: TrainState) -> dict[str, float]:
    """One pass over the training rows in a fresh permutation; returns the epoch's train loss / CE / accuracy."""
    model, optimizer, config = state.model, state.optimizer, run.config
    for group in optimizer.param_groups:
        group["lr"] = state.sched.lr
    run.net.train()
    data, device = run.train_data, run.device
    splicer = data.splicer(model.config.left, model.config.right)
    n, bs = len(data), config.batch_size
    perm_cpu = torch.randperm(n, generator=state.gen)
    perm = perm_cpu.to(device)
    index_perm = perm_cpu if _reads_on_cpu(data) else perm  # a memory map is read on the CPU: no device sync
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.float64, device=device)
    ce_sum = torch.zeros((), dtype=torch.float64, device=device)
    plain_ce = run.objective is cross_entropy_objective  # then the loss is the CE: not computed twice
    batches = range(0, n, bs)
    if config.progress and run.main:
        from tqdm import tqdm

        batches = tqdm(batches, desc=f"epoch {state.epoch}", unit="batch", leave=False, disable=None,
                       mininterval=2.0)
    for b, start in enumerate(batches):
        # this rank's slice of the global batch [start, end); DDP averages the ranks' gradients, so each
        # rank's mean loss is weighted by its share of the batch (times the world size)
        end = min(n, start + bs)
        lo, hi = (start + i for i in dist.shard(end - start, run.rank, run.world))
        rows = perm[lo:hi]
        x = splicer(data.frames, index_perm[lo:hi])
        y = data.targets[rows]
        loss, logits = compute_loss(run, x, y, rows)
        share = (hi - lo) * run.world / (end - start)
        optimizer.zero_grad(set_to_none=True)
        (loss if share == 1.0 else loss * share).backward()
        optimizer.step()
        with torch.no_grad():
            loss_sum += loss.detach() * len(rows)
            correct += (logits.argmax(dim=-1) == y).sum()
            if not plain_ce:
                ce_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum")
        if (b + 1) % CHECK_EVERY == 0:
            _check_finite(run, state.epoch, b + 1, loss_sum)
    _check_finite(run, state.epoch, len(range(0, n, bs)), loss_sum)
    sums = dist.all_reduce_sum(torch.stack([loss_sum, loss_sum if plain_ce else ce_sum, correct]))
    loss_total, ce_total, correct_total = (float(v) for v in sums.cpu())
    return {"train_loss": loss_total / n, "train_ce": ce_total / n, "train_acc": correct_total / n}


def _reads_on_cpu(data: FrameDataset) -> bool:
    """True when the dataset's splicer gathers frames on the CPU (a memory-mapped store)."""
    return isinstance(data.frames, np.ndarray)


def dev_criterion(config: DnnTrainConfig, dev: dict[str, float]) -> float:
    """The dev figure the schedule minimises: cross-entropy (Kaldi nnet1's cross-validation loss) or the frame
    error rate (for dev speakers unlike the training ones, whose CE can rise while accuracy still improves)."""
    if config.dev_criterion == "ce":
        return dev["ce"]
    if config.dev_criterion == "error":
        return 1.0 - dev["frame_acc"]
    raise UserFacingError(f"dev criterion {config.dev_criterion!r}: expected 'ce' or 'error'")


def schedule_step(run: TrainRun, state: TrainState, dev: dict[str, float]) -> bool:
    """Newbob after an epoch: accept (save ``best.pt``) or reject (back to the best epoch's weights and
    optimiser state); sets the next lr or stops. Returns whether the epoch was accepted (training goes on
    from it; within ``keep_lr_epochs`` every epoch is, a worse one without becoming the best)."""
    if not math.isfinite(dev["ce"]):
        raise UserFacingError(f"{run.out}: the dev CE became {dev['ce']} after epoch {state.epoch}; nothing was "
                              "written. Lower the learning rate (--lr) and rerun with --no-resume")
    accepted = state.sched.step(state.epoch, dev_criterion(run.config, dev))
    if accepted:
        if run.main:
            _save_torch(run.best_path, {"epoch": state.epoch, "model": model_state(state.model),
                                        "optimizer": state.optimizer.state_dict()})
    elif state.sched.keeps_lr(state.epoch):
        return True  # kept: training goes on from it, though the best model stays the best epoch's
    elif run.config.reject_worse and state.sched.schedule == "newbob":
        best = _load_torch(run.best_path)
        state.model.load_state_dict(best["model"]["state_dict"])
        state.optimizer.load_state_dict(best["optimizer"])
    return accepted


def save_checkpoint(run: TrainRun, state: TrainState) -> None:
    """``last.pt`` (everything needed to continue after this epoch) and ``log.txt``; rank 0 only."""
    if not run.main:
        return
    _save_torch(run.last_path, {"format": CKPT_FORMAT, "epoch": state.epoch, "model": model_state(state.model),
                                "optimizer": state.optimizer.state_dict(), "scheduler": state.sched.state_dict(),
                                "rng": _rng_state(state.gen), "history": state.history,
                                "data": _data_digest(run.train_data), "train_config": run.config.to_dict()})
    write_text_atomic(run.out / "log.txt", _format_log(state.history))


def load_checkpoint(run: TrainRun, state: TrainState) -> None:
    """Continue from ``last.pt``: weights, optimiser, schedule, RNG states, history (checked against this run)."""
    path = run.last_path
    ckpt = _load_torch(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != CKPT_FORMAT:
        raise UserFacingError(f"{path}: not a training checkpoint")
    saved_arch = ckpt["model"].get("config", {})
    if saved_arch != state.model.config.to_dict():
        raise UserFacingError(f"{path}: the checkpoint holds a model of another architecture "
                              f"({'; '.join(_config_changes(saved_arch, state.model.config.to_dict()))}); use "
                              "another output dir or --no-resume")
    old = ckpt["train_config"]
    changed = sorted(k for k, v in run.config.to_dict().items() if k not in _RESUMABLE_CHANGES and old.get(k) != v)
    if changed:
        log.warning("%s: resuming with changed options %s (the result will differ from an "
                    "uninterrupted run)", path, ", ".join(changed))
    if ckpt.get("data") != _data_digest(run.train_data):
        raise UserFacingError(f"{path}: checkpoint was made with other training data "
                              f"({ckpt.get('data')}); use another output dir or --no-resume")
    state.model.load_state_dict(ckpt["model"]["state_dict"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.sched = Newbob.from_state(ckpt["scheduler"])
    state.sched.min_epochs, state.sched.early_stop_patience = run.config.min_epochs, run.config.early_stop_patience
    _set_rng_state(state.gen, ckpt["rng"])
    state.history = list(ckpt["history"])
    state.epoch = int(ckpt["epoch"])
    run.info("%s: resuming after epoch %d (best epoch %d, dev criterion %.4f)", run.out, state.epoch,
             state.sched.best_epoch, state.sched.best_loss)


def _start(run: TrainRun, state: TrainState) -> None:
    """Epoch 0: the initial model's dev scores start the schedule; ``best.pt`` holds the initial model."""
    dev = compute_validation_loss(run, state.model)
    if not math.isfinite(dev["ce"]):
        raise UserFacingError(f"{run.out}: the initial model's dev CE is {dev['ce']} (non-finite features?)")
    state.sched.start(dev_criterion(run.config, dev))
    state.history.append({"epoch": 0, "lr": state.sched.lr, "dev_ce": dev["ce"], "dev_acc": dev["frame_acc"],
                          "accepted": True, "seconds": 0.0})
    if run.main:
        _save_torch(run.best_path, {"epoch": 0, "model": model_state(state.model),
                                    "optimizer": state.optimizer.state_dict()})
    run.info("%s: %d train frames, %d dev frames, %d params, device %s%s, training in %s; initial dev CE %.4f "
             "acc %.4f", run.out, len(run.train_data), len(run.dev_data), state.model.config.num_params(), run.device,
             f", {run.world} ranks" if run.world > 1 else "", run.dtype_name, dev["ce"],
             dev["frame_acc"])


def _log_epoch(run: TrainRun, state: TrainState, record: dict[str, Any]) -> None:
    run.info("%s epoch %d: lr %.4g train loss %.4f acc %.4f | dev CE %.4f acc %.4f%s (%.1fs)", run.out.name,
             record["epoch"], record["lr"], record["train_loss"], record["train_acc"], record["dev_ce"],
             record["dev_acc"], "" if record["accepted"] else " (rejected)", record["seconds"])
    if state.sched.stopped:
        run.info("%s: stopping after epoch %d: %s", run.out.name, state.epoch, state.sched.stop_reason)
    if run.writer is not None:
        for key in ("lr", "train_loss", "train_acc", "dev_ce", "dev_acc"):
            run.writer.add_scalar(key.replace("_", "/", 1) if "_" in key else key, record[key], state.epoch)
        run.writer.flush()


def finish(run: TrainRun, state: TrainState) -> TrainResult:
    """The best epoch's model becomes ``final.mdl`` (with ``history.json``, ``log.txt``, ``.done``)."""
    trained = len(state.history) - 1
    if trained > 0 and state.sched.best_epoch == 0:
        raise UserFacingError(f"{run.out}: no epoch of {trained} improved on the initial model's dev CE "
                              f"({state.history[0]['dev_ce']:.4f}): every epoch was rejected, so nothing was "
                              f"written. The learning rate ({run.config.learning_rate}) is probably too high; "
                              "lower --lr and rerun with --no-resume")
    best = _load_torch(run.best_path)
    state.model.load_state_dict(best["model"]["state_dict"])
    model = state.model.cpu().eval()
    if run.main:
        save_model(run.final_path, model)
        write_json_atomic(run.out / "history.json", {
            "history": state.history, "best_epoch": state.sched.best_epoch, "data": _data_digest(run.train_data),
            "best_dev_criterion": state.sched.best_loss, "dev_criterion": run.config.dev_criterion, "stop_reason": state.sched.stop_reason,
            "train_config": run.config.to_dict(), "model_config": model.config.to_dict(), "world_size": run.world,
            "training_dtype": run.dtype_name})
        write_text_atomic(run.out / "log.txt", _format_log(state.history))
        mark_done(run.out, info={"model": run.final_path.name, "best_epoch": state.sched.best_epoch})
    dist.barrier()
    return TrainResult(model, state.history, state.sched.best_epoch, run.final_path)


# --- the whole run --------------------------------------------------------------------------------------
def _finished(out: Path, train_data: FrameDataset, arch: DnnConfig) -> TrainResult:
    final_path = out / "final.mdl"
    hist = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else {}
    if hist.get("data", _data_digest(train_data)) != _data_digest(train_data):
        raise UserFacingError(f"{out}: was trained on other training data ({hist.get('data')}); use "
                              f"another output dir or --no-resume")
    model = load_model(final_path)
    if model.config != arch:
        raise UserFacingError(f"{final_path}: was trained with another architecture "
                              f"({'; '.join(_config_changes(model.config.to_dict(), arch.to_dict()))}); use "
                              "another output dir or --no-resume")
    log.info("%s: already trained; loading %s", out, final_path)
    return TrainResult(model, hist.get("history", []), hist.get("best_epoch", 0), final_path)


def _initial_model(model_config: DnnConfig | AcousticDnn, train_data: FrameDataset, config: DnnTrainConfig,
                   log_prior: np.ndarray | None, out: Path) -> AcousticDnn:
    if isinstance(model_config, AcousticDnn):
        model = model_config
    else:
        model = build_model(model_config, seed=config.seed)
        mean, std = train_data.feature_stats()
        model.set_input_normalization(mean, std)
    if model.config.num_pdfs != train_data.num_pdfs:
        raise UserFacingError(f"model has {model.config.num_pdfs} pdfs but the alignments have {train_data.num_pdfs}")
    if log_prior is None:
        log_prior = log_prior_from_counts(train_data.pdf_counts(), config.prior_count_floor)
    log_prior = np.asarray(log_prior, dtype=np.float32)
    if log_prior.shape != (train_data.num_pdfs,) or not np.isfinite(log_prior).all():
        raise UserFacingError(f"{out}: log_prior must be {train_data.num_pdfs} finite values, got shape "
                              f"{log_prior.shape}")
    model.set_log_prior(log_prior)
    return model


def train_model(model_config: DnnConfig | AcousticDnn, train_data: FrameDataset, dev_data: FrameDataset,
                out_dir: str | os.PathLike, config: DnnTrainConfig | None = None,
                objective: Objective | None = None, resume: bool = True,
                on_epoch_end: Callable[[int, dict[str, Any]], None] | None = None,
                log_prior: np.ndarray | None = None) -> TrainResult:
    """Train a model on ``train_data`` with newbob on ``dev_data``; write ``<out_dir>/final.mdl``.

    ``model_config`` is a :class:`DnnConfig` (a model is built from ``config.seed``, its input
    normalisation set from the training frames' statistics) or an initialised model (used as is,
    except its log prior). The log prior is ``log_prior`` (float [num_pdfs], e.g. from other data's
    counts) or, when None, from ``train_data``'s pdf counts (floored at ``config.prior_count_floor``).
    ``objective`` defaults to frame cross-entropy against the alignment. With ``resume`` an existing
    ``checkpoints/last.pt`` is continued and a finished ``out_dir`` (``.done``) is loaded, not
    retrained. ``on_epoch_end(epoch, record)`` runs after each epoch's checkpoint is written. Under
    torchrun every rank calls this with the same arguments (see :mod:`asrdistill.nnet.distributed`).
    """
    config = config or DnnTrainConfig()
    out = Path(out_dir)
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    dist.init(config.device)
    world, rank = dist.world_size(), dist.rank()
    device = dist.train_device(config.device)
    if config.batch_size < world:
        raise UserFacingError(f"the global batch ({config.batch_size} frames) is smaller than the number of "
                              f"ranks ({world})")
    arch = model_config.config if isinstance(model_config, AcousticDnn) else model_config
    if resume and is_done(out) and (out / "final.mdl").is_file():
        return _finished(out, train_data, arch)

    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".done").unlink(missing_ok=True)  # (re)training: an old result is no longer final
    model = _initial_model(model_config, train_data, config, log_prior, out).to(device)
    state = TrainState(model, _make_optimizer(model, config), Newbob.from_config(config),
                       torch.Generator().manual_seed(config.seed))
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, forward_sync_buffers=False)
    if objective is not None and hasattr(objective, "to"):
        objective = objective.to(device)  # type: ignore[union-attr]
    run = TrainRun(out, config, device, train_data.to(device), dev_data.to(device),
                   objective or cross_entropy_objective, net, world, rank,
                   dtype=training_dtype(device, config.precision))
    dist.barrier()  # rank 0 removed the old .done before anyone looks at the checkpoints
    if resume and run.last_path.is_file():
        load_checkpoint(run, state)
    else:
        _start(run, state)
    if config.tensorboard and run.main:
        from torch.utils.tensorboard import SummaryWriter

        run.writer = SummaryWriter(str(out / "tb"), purge_step=state.epoch + 1 if state.epoch else None)
        if state.epoch == 0:
            run.writer.add_scalar("dev/ce", state.history[0]["dev_ce"], 0)
            run.writer.add_scalar("dev/acc", state.history[0]["dev_acc"], 0)
    try:
        while not state.sched.stopped and state.epoch < config.max_epochs:
            state.epoch += 1
            t0, lr = time.time(), state.sched.lr
            stats = train_one_epoch(run, state)
            t1 = time.time()
            dev = compute_validation_loss(run, model)
            t2 = time.time()
            dist.barrier()  # best.pt is complete before a rejection reads it
            accepted = schedule_step(run, state, dev)
            seconds = time.time() - t0
            record = {"epoch": state.epoch, "lr": lr, **stats, "dev_ce": dev["ce"], "dev_acc": dev["frame_acc"],
                      "accepted": accepted, "seconds": seconds, "frames_per_s": len(train_data) / seconds,
                      "train_seconds": t1 - t0, "dev_seconds": t2 - t1}
            state.history.append(record)
            _log_epoch(run, state, record)
            save_checkpoint(run, state)
            dist.barrier()  # every rank sees this epoch's files before it goes on (or is killed)
            if on_epoch_end is not None:
                on_epoch_end(state.epoch, record)
    finally:
        if run.writer is not None:
            run.writer.close()
    return finish(run, state)
