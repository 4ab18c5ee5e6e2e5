"""The distillation options, without torch (the CLI reads their defaults): the loss and the teacher."""
from __future__ import annotations

from dataclasses import dataclass

from asrdistill.errors import UserFacingError
from asrdistill.utils import JsonConfig


@dataclass
class DistillConfig(JsonConfig):
    """Options of the distillation loss and the teacher (see module docstring)."""

    temperature: float = 2.0
    soft_weight: float = 1.0
    hard_weight: float = 0.5
    loss: str = "soft"                 # "soft" (soft targets at T) or "logits" (logit matching)
    combine: str = "arithmetic"        # how member distributions make p_T: "arithmetic" or "geometric"
    teacher_mode: str = "onthefly"     # "onthefly" (exact) or "cache" (top-k)
    topk: int = 32
    cache_remainder: str = "uniform"   # "uniform" or "renormalize"

    def check(self) -> None:
        if self.temperature <= 0:
            raise UserFacingError(f"temperature must be positive, got {self.temperature}")
        if self.loss not in ("soft", "logits"):
            raise UserFacingError(f"unknown distillation loss {self.loss!r} (soft or logits)")
        if self.teacher_mode not in ("onthefly", "cache"):
            raise UserFacingError(f"unknown teacher mode {self.teacher_mode!r} (onthefly or cache)")
        if self.loss == "logits" and self.teacher_mode == "cache":
            raise UserFacingError("logit matching needs --teacher-mode onthefly (the cache holds no logits)")
        if self.soft_weight < 0 or self.hard_weight < 0 or self.soft_weight + self.hard_weight == 0:
            raise UserFacingError("loss weights must be non-negative and not both zero")
