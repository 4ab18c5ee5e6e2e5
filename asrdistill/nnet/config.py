"""The DNN configs, without torch (the CLI reads their defaults for ``--help``): the architecture
(:class:`DnnConfig`, :data:`PRESETS`) and the training options (:class:`DnnTrainConfig`). Every default of
a DNN option lives here and nowhere else. :func:`member_files` reads an ensemble's description."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from asrdistill.errors import UserFacingError
from asrdistill.utils import JsonConfig

#: Values of the training ``precision`` option (here, not in :mod:`.device`, so that the command-line options
#: can offer them without importing torch).
PRECISIONS = ("auto", "fp32", "bf16")

#: name -> (hidden layers, hidden units). ``paper`` is Hinton et al. 2015 Sec. 4 (8 x 2560 ReLU,
#: ~85M parameters with 14000 pdfs). ``small`` (the demo's) and ``medium`` are CPU sizes (see
#: benchmarks/bench_train.py), ``tiny`` the tests'. ``small`` was 3 x 256 until the demo's dev sets showed a
#: 3 x 384 student keeping more of its 3 x 384 ensemble's gain (README, "Measured").
PRESETS: dict[str, tuple[int, int]] = {
    "paper": (8, 2560),
    "medium": (4, 512),
    "small": (3, 384),
    "tiny": (2, 128),
}


@dataclass(frozen=True)
class DnnConfig(JsonConfig):
    """Architecture of an :class:`~asrdistill.nnet.model.AcousticDnn` (all that is needed to rebuild it).

    The input is a window of ``left + 1 + right`` frames (26 by default, the paper's: 20 left, 5 right).
    """

    num_pdfs: int
    feat_dim: int = 40
    left: int = 20
    right: int = 5
    hidden_layers: int = 8
    hidden_dim: int = 2560

    @property
    def context(self) -> int:
        return self.left + 1 + self.right

    @property
    def input_dim(self) -> int:
        return self.context * self.feat_dim

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "DNN config") -> "DnnConfig":
        base = JsonConfig.from_dict.__func__(cls, d, where)  # type: ignore[attr-defined]
        return cls(**{k: int(v) for k, v in base.to_dict().items()})

    @classmethod
    def from_preset(cls, preset: str, num_pdfs: int, **kw: int) -> "DnnConfig":
        if preset not in PRESETS:
            raise UserFacingError(f"unknown model preset {preset!r} (choose from {', '.join(PRESETS)})")
        layers, dim = PRESETS[preset]
        return cls(num_pdfs=num_pdfs, hidden_layers=layers, hidden_dim=dim, **kw)

    def num_params(self) -> int:
        dims = [self.input_dim] + [self.hidden_dim] * self.hidden_layers + [self.num_pdfs]
        return sum(a * b + b for a, b in zip(dims[:-1], dims[1:]))


@dataclass
class DnnTrainConfig(JsonConfig):
    """Options of :func:`~asrdistill.nnet.train.train_model` (see that module's docstring)."""

    max_epochs: int = 20
    min_epochs: int = 1
    batch_size: int = 256
    optimizer: str = "sgd"            # "sgd" (with momentum) or "adam"
    learning_rate: float = 0.02
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "newbob"          # "newbob" or "constant"
    halving_factor: float = 0.5
    start_halving_impr: float = 0.01
    end_halving_impr: float = 0.001
    start_halving_epoch: int | None = None  # halve after this epoch even if dev still improves a lot
    keep_lr_epochs: int = 0           # Kaldi nnet1's keep_lr_iters: the first N epochs keep the lr, none is rejected
    reject_worse: bool = True
    early_stop_patience: int | None = None
    dev_criterion: str = "ce"         # what newbob / early stopping compare: dev "ce" or frame "error" (1 - acc)
    seed: int = 0
    num_threads: int | None = None
    device: str = "auto"              # "auto" (cuda if present), "cpu", "cuda", "cuda:1", ...
    precision: str = "auto"           # training passes: "auto" (bf16 on CUDA / native-bf16 CPUs), "fp32", "bf16"
    eval_batch_size: int = 4096
    prior_count_floor: float = 1.0
    tensorboard: bool = True
    progress: bool = True


def member_files(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The model files of ``paths``: model files as they are, an ensemble dir or ``ensemble.json`` expanded
    to its members (in order)."""
    import json

    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir() and (p / "ensemble.json").is_file():
            p = p / "ensemble.json"
        if p.suffix == ".json":
            try:
                info = json.loads(p.read_text())
                files += [p.parent / m for m in info["members"]]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise UserFacingError(f"{p}: not an ensemble description ({err})") from None
        else:
            files.append(p)
    return files
