"""Frame-level training of a DNN acoustic model with a Kaldi-style "newbob" learning-rate schedule.

Each epoch visits every training frame once in a fresh random order (a permutation of all frame rows
of the whole training set, from a seeded generator); batches are spliced on the fly on the training
device. The optimiser is SGD with momentum (default; Kaldi's nnet1 recipe is plain SGD, momentum
makes the small-batch updates smoother) or Adam. The per-batch loss is frame cross-entropy against
the alignment by default; :mod:`asrdistill.distill.train` passes its own objective.

Schedule ("newbob", as Kaldi nnet1's ``train_scheduler.sh``): the dev-set CE of the initial model is
measured first. After each epoch, an epoch that does not lower the best dev CE is rejected (the
weights and optimiser state return to the best epoch's) when ``reject_worse``; the relative
improvement of the best dev CE is then ``impr``. Once ``impr < start_halving_impr`` the learning rate
is halved after every further epoch; once halving and ``impr < end_halving_impr`` training stops
(not before ``min_epochs``), and always after ``max_epochs``. ``schedule="constant"`` keeps the
learning rate fixed. ``early_stop_patience`` additionally stops after that many epochs without a new
best dev CE. The model kept is always the best-dev one.

Every epoch writes ``checkpoints/last.pt`` (model, optimiser, schedule, RNG states, epoch, history)
atomically, and ``checkpoints/best.pt`` when the dev CE improved; all load with
``torch.load(weights_only=True)`` (RNG states are byte tensors). ``resume=True`` continues from
``last.pt`` and gives the same result as an uninterrupted run (bit-identical on CPU with the same
thread count). Per-epoch dev frame accuracy / CE go to ``log.txt``, ``history.json`` and
TensorBoard (``tb/``). The result is ``final.mdl`` (see :mod:`asrdistill.nnet.model`).

On CUDA, frames and targets are copied to the GPU once and the forward/backward passes run under
bf16 autocast; on CPU everything is float32 and ``num_threads`` sets torch's thread count.
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
from asrdistill.nnet.config import DnnTrainConfig
from asrdistill.nnet.data import FrameDataset
from asrdistill.nnet.device import autocast_context, resolve_device
from asrdistill.nnet.evaluate import evaluate_frames
from asrdistill.nnet.model import (AcousticDnn, DnnConfig, build_model, log_prior_from_counts, model_state,
                                   save_model)
from asrdistill.utils import atomic_path, get_logger, is_done, mark_done, write_json_atomic, write_text_atomic

log = get_logger(__name__)

CKPT_FORMAT = "asrdistill-train-ckpt-1"


# Fields that may differ between an interrupted run and its resumption.
_RESUMABLE_CHANGES = {"max_epochs", "num_threads", "device", "eval_batch_size", "tensorboard", "progress"}


class Objective(Protocol):
    """Per-batch training loss: ``(logits [B,C] float32, spliced x [B,F], targets [B], rows [B]) -> scalar``.

    ``rows`` are the batch's row indices into the training :class:`FrameDataset`. An objective with a
    ``to(device)`` method is moved to the training device first.
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
        if self.halving and impr < self.end_halving_impr:
            if epoch >= self.min_epochs:
                self.stopped, self.stop_reason = True, f"relative dev improvement {impr:.4g} < {self.end_halving_impr}"
            return accepted
        if impr < self.start_halving_impr:
            self.halving = True
        if self.halving:
            self.lr *= self.halving_factor
        return accepted

    def state_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> "Newbob":
        return cls(**d)


@dataclass
class TrainResult:
    model: AcousticDnn                      # the best-dev model (CPU, eval mode)
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    model_path: Path | None = None


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
    if "cuda" in state and torch.cuda.is_available():
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


def _format_log(history: list[dict[str, Any]]) -> str:
    lines = ["# epoch lr train_ce train_acc dev_ce dev_acc accepted seconds"]
    for h in history:
        lines.append(f"{h['epoch']} {h['lr']:.6g} {h.get('train_ce', float('nan')):.4f} "
                     f"{h.get('train_acc', float('nan')):.4f} {h['dev_ce']:.4f} {h['dev_acc']:.4f} "
                     f"{int(h.get('accepted', True))} {h.get('seconds', 0.0):.1f}")
    return "\n".join(lines) + "\n"


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
    retrained. ``on_epoch_end(epoch, record)`` runs after each epoch's checkpoint is written.
    """
    config = config or DnnTrainConfig()
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    final_path = out / "final.mdl"
    if config.num_threads:
        torch.set_num_threads(int(config.num_threads))
    device = resolve_device(config.device)

    if resume and is_done(out) and final_path.is_file():
        from asrdistill.nnet.model import load_model

        hist = json.loads((out / "history.json").read_text()) if (out / "history.json").is_file() else {}
        if hist.get("data", _data_digest(train_data)) != _data_digest(train_data):
            raise UserFacingError(f"{out}: was trained on other training data ({hist.get('data')}); use "
                                  f"another output dir or --no-resume")
        log.info("%s: already trained; loading %s", out, final_path)
        return TrainResult(load_model(final_path), hist.get("history", []), hist.get("best_epoch", 0), final_path)

    out.mkdir(parents=True, exist_ok=True)
    (out / ".done").unlink(missing_ok=True)  # (re)training: an old result is no longer final
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
    model.to(device)
    optimizer = _make_optimizer(model, config)
    sched = Newbob(lr=config.learning_rate, schedule=config.schedule, halving_factor=config.halving_factor,
                   start_halving_impr=config.start_halving_impr, end_halving_impr=config.end_halving_impr,
                   min_epochs=config.min_epochs, early_stop_patience=config.early_stop_patience)
    gen = torch.Generator().manual_seed(config.seed)
    history: list[dict[str, Any]] = []
    epoch = 0

    last_path, best_path = ckpt_dir / "last.pt", ckpt_dir / "best.pt"
    train_data = train_data.to(device)
    dev_data = dev_data.to(device)
    if objective is not None and hasattr(objective, "to"):
        objective = objective.to(device)  # type: ignore[union-attr]
    objective = objective or cross_entropy_objective

    if resume and last_path.is_file():
        ckpt = _load_torch(last_path)
        if ckpt.get("format") != CKPT_FORMAT:
            raise UserFacingError(f"{last_path}: not a training checkpoint")
        old = ckpt["train_config"]
        changed = sorted(k for k, v in config.to_dict().items() if k not in _RESUMABLE_CHANGES and old.get(k) != v)
        if changed:
            log.warning("%s: resuming with changed options %s (the result will differ from an "
                        "uninterrupted run)", last_path, ", ".join(changed))
        if ckpt.get("data") != _data_digest(train_data):
            raise UserFacingError(f"{last_path}: checkpoint was made with other training data "
                                  f"({ckpt.get('data')}); use another output dir or --no-resume")
        model.load_state_dict(ckpt["model"]["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        sched = Newbob.from_state(ckpt["scheduler"])
        sched.min_epochs, sched.early_stop_patience = config.min_epochs, config.early_stop_patience
        _set_rng_state(gen, ckpt["rng"])
        history = list(ckpt["history"])
        epoch = int(ckpt["epoch"])
        log.info("%s: resuming after epoch %d (best epoch %d, dev CE %.4f)", out, epoch, sched.best_epoch,
                 sched.best_loss)
    else:
        dev = evaluate_frames(model, dev_data, config.eval_batch_size)
        sched.start(dev["ce"])
        history.append({"epoch": 0, "lr": sched.lr, "dev_ce": dev["ce"], "dev_acc": dev["frame_acc"],
                        "accepted": True, "seconds": 0.0})
        _save_torch(best_path, {"epoch": 0, "model": model_state(model), "optimizer": optimizer.state_dict()})
        log.info("%s: %d train frames, %d dev frames, %d params, device %s; initial dev CE %.4f acc %.4f",
                 out, len(train_data), len(dev_data), model.config.num_params(), device, dev["ce"], dev["frame_acc"])

    writer = None
    if config.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(out / "tb"), purge_step=epoch + 1 if epoch else None)
        if epoch == 0:
            writer.add_scalar("dev/ce", history[0]["dev_ce"], 0)
            writer.add_scalar("dev/acc", history[0]["dev_acc"], 0)

    splicer = train_data.splicer(model.config.left, model.config.right)
    n = len(train_data)
    bs = config.batch_size
    try:
        while not sched.stopped and epoch < config.max_epochs:
            epoch += 1
            t0 = time.time()
            for group in optimizer.param_groups:
                group["lr"] = sched.lr
            lr = sched.lr
            model.train()
            perm = torch.randperm(n, generator=gen).to(device)
            loss_sum = torch.zeros((), dtype=torch.float64, device=device)
            correct = torch.zeros((), dtype=torch.float64, device=device)
            ce_sum = torch.zeros((), dtype=torch.float64, device=device)
            batches = range(0, n, bs)
            if config.progress:
                from tqdm import tqdm

                batches = tqdm(batches, desc=f"epoch {epoch}", unit="batch", leave=False, disable=None,
                               mininterval=2.0)
            for start in batches:
                rows = perm[start:start + bs]
                x = splicer(train_data.frames, rows)
                y = train_data.targets[rows]
                with autocast_context(device):
                    logits = model(x)
                logits = logits.float()
                loss = objective(logits, x, y, rows)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    loss_sum += loss.detach() * len(rows)
                    correct += (logits.argmax(dim=-1) == y).sum()
                    ce_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum")
            train_loss = float(loss_sum) / n
            dev = evaluate_frames(model, dev_data, config.eval_batch_size)
            accepted = sched.step(epoch, dev["ce"])
            if accepted:
                _save_torch(best_path, {"epoch": epoch, "model": model_state(model),
                                        "optimizer": optimizer.state_dict()})
            elif config.reject_worse and sched.schedule == "newbob":
                best = _load_torch(best_path)
                model.load_state_dict(best["model"]["state_dict"])
                optimizer.load_state_dict(best["optimizer"])
            record = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_ce": float(ce_sum) / n,
                      "train_acc": float(correct) / n, "dev_ce": dev["ce"], "dev_acc": dev["frame_acc"],
                      "accepted": accepted, "seconds": time.time() - t0, "frames_per_s": n / (time.time() - t0)}
            history.append(record)
            log.info("%s epoch %d: lr %.4g train loss %.4f acc %.4f | dev CE %.4f acc %.4f%s (%.1fs)",
                     out.name, epoch, lr, train_loss, record["train_acc"], dev["ce"], dev["frame_acc"],
                     "" if accepted else " (rejected)", record["seconds"])
            if sched.stopped:
                log.info("%s: stopping after epoch %d: %s", out.name, epoch, sched.stop_reason)
            if writer is not None:
                for key in ("lr", "train_loss", "train_acc", "dev_ce", "dev_acc"):
                    writer.add_scalar(key.replace("_", "/", 1) if "_" in key else key, record[key], epoch)
                writer.flush()
            _save_torch(last_path, {"format": CKPT_FORMAT, "epoch": epoch, "model": model_state(model),
                                    "optimizer": optimizer.state_dict(), "scheduler": sched.state_dict(),
                                    "rng": _rng_state(gen), "history": history, "data": _data_digest(train_data),
                                    "train_config": config.to_dict()})
            write_text_atomic(out / "log.txt", _format_log(history))
            if on_epoch_end is not None:
                on_epoch_end(epoch, record)
    finally:
        if writer is not None:
            writer.close()

    best = _load_torch(best_path)
    model.load_state_dict(best["model"]["state_dict"])
    model = model.cpu().eval()
    save_model(final_path, model)
    write_json_atomic(out / "history.json", {"history": history, "best_epoch": sched.best_epoch,
                                             "data": _data_digest(train_data),
                                             "best_dev_ce": sched.best_loss, "stop_reason": sched.stop_reason,
                                             "train_config": config.to_dict(), "model_config": model.config.to_dict()})
    write_text_atomic(out / "log.txt", _format_log(history))
    mark_done(out, info={"model": final_path.name, "best_epoch": sched.best_epoch})
    return TrainResult(model, history, sched.best_epoch, final_path)
