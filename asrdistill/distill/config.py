"""The distillation options, without torch (the CLI reads their defaults): the loss, the teacher, the student's
priors (:class:`DistillConfig`) and the teacher cache (:class:`TeacherCacheConfig`)."""
from __future__ import annotations

from dataclasses import dataclass

from asrdistill.errors import UserFacingError
from asrdistill.utils import JsonConfig

PRIORS = ("counts", "posterior")


@dataclass
class DistillConfig(JsonConfig):
    """Options of the distillation loss, the teacher and the student's priors.

    ``priors`` (how the student's log prior, used only for decoding, is obtained; see
    :mod:`asrdistill.distill.priors`): ``"counts"``, the pdf counts of the full training alignments
    (never those of a ``--subset``), or ``"posterior"``, the student's own mean posterior over the full
    training set's frames.
    """

    temperature: float = 2.0
    soft_weight: float = 1.0
    hard_weight: float = 0.5
    loss: str = "soft"                 # "soft" (soft targets at T) or "logits" (logit matching)
    combine: str = "arithmetic"        # how member distributions make p_T: "arithmetic" or "geometric"
    teacher_mode: str = "onthefly"     # "onthefly" (exact) or "cache" (member logits cached once, any T)
    priors: str = "counts"             # "counts" (full training alignments) or "posterior" (mean posterior)

    def check(self) -> None:
        if self.temperature <= 0:
            raise UserFacingError(f"temperature must be positive, got {self.temperature}")
        if self.loss not in ("soft", "logits"):
            raise UserFacingError(f"unknown distillation loss {self.loss!r} (soft or logits)")
        if self.combine not in ("arithmetic", "geometric"):
            raise UserFacingError(f"unknown combination {self.combine!r} (arithmetic or geometric)")
        if self.teacher_mode not in ("onthefly", "cache"):
            raise UserFacingError(f"unknown teacher mode {self.teacher_mode!r} (onthefly or cache)")
        if self.priors not in PRIORS:
            raise UserFacingError(f"unknown priors {self.priors!r} (choose from {', '.join(PRIORS)})")
        if self.soft_weight < 0 or self.hard_weight < 0 or self.soft_weight + self.hard_weight == 0:
            raise UserFacingError("loss weights must be non-negative and not both zero")


@dataclass
class TeacherCacheConfig(JsonConfig):
    """Options of ``build-teacher-cache`` / ``check-teacher-cache`` (see :mod:`asrdistill.distill.cache`)."""

    encoding: str = "u8-sqrt"          # "u8-sqrt" (1 byte per pdf and member) or "f16" (2 bytes)
    batch_size: int = 4096             # frames per teacher forward pass (does not change the result)
    check_frames: int = 20000          # frames sampled to measure the distance from the exact teacher (0: none)
    check_seed: int = 0
    check_temperatures: str = "1,2,5,10"

    def temperatures(self) -> list[float]:
        try:
            ts = [float(t) for t in self.check_temperatures.split(",") if t.strip()]
        except ValueError:
            raise UserFacingError(f"temperatures must be numbers separated by commas, got "
                                  f"{self.check_temperatures!r}") from None
        if not ts or any(t <= 0 for t in ts):
            raise UserFacingError(f"temperatures must be positive, got {self.check_temperatures!r}")
        return ts
