"""Log-mel filterbank (fbank) features matching Kaldi's ``compute-fbank-feats``.

The computation is ``torchaudio.compliance.kaldi.fbank`` (pure torch; only that module of torchaudio
is imported, see STACK.md trap 1). Input samples are int16-scale floats, as Kaldi reads WAV files.
:class:`FbankConfig` holds Kaldi's options with Kaldi's defaults, except ``dither`` (0: deterministic
features) and ``num_mel_bins`` (40).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from asrdistill.errors import UserFacingError
from asrdistill.utils import JsonConfig


@dataclass(frozen=True)
class FbankConfig(JsonConfig):
    """Options of Kaldi's ``compute-fbank-feats`` (names as in Kaldi, Kaldi defaults).

    ``sample_rate`` None means "take the rate of the data" (every utterance of one data dir must
    share it); a number makes a data dir at any other rate an error, as Kaldi does.
    ``high_freq`` <= 0 is an offset from the Nyquist frequency (Kaldi's convention), so the mel bins
    always reach up to Nyquist whatever the rate.
    """

    num_mel_bins: int = 40
    sample_rate: int | None = None
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    preemphasis_coefficient: float = 0.97
    remove_dc_offset: bool = True
    window_type: str = "povey"
    blackman_coeff: float = 0.42
    round_to_power_of_two: bool = True
    snip_edges: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0
    use_energy: bool = False
    raw_energy: bool = True
    energy_floor: float = 0.0
    htk_compat: bool = False
    use_log_fbank: bool = True
    use_power: bool = True


    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> "FbankConfig":
        return cls.from_dict(json.loads(text))

    # -- derived quantities ----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        return self.num_mel_bins + (1 if self.use_energy else 0)

    def with_sample_rate(self, sample_rate: int) -> "FbankConfig":
        """This config bound to the data's rate (an error if it was fixed to another rate)."""
        if self.sample_rate is not None and int(self.sample_rate) != int(sample_rate):
            raise UserFacingError(
                f"the data is sampled at {sample_rate} Hz but the fbank config asks for {self.sample_rate} Hz")
        return dataclasses.replace(self, sample_rate=int(sample_rate))

    def window_samples(self, sample_rate: int) -> tuple[int, int]:
        """(window length, window shift) in samples, truncated as Kaldi does."""
        return int(sample_rate * self.frame_length_ms * 0.001), int(sample_rate * self.frame_shift_ms * 0.001)

    def num_frames(self, num_samples: int, sample_rate: int) -> int:
        """Number of frames Kaldi produces for ``num_samples`` samples."""
        length, shift = self.window_samples(sample_rate)
        if self.snip_edges:
            return 0 if num_samples < length else 1 + (num_samples - length) // shift
        return (num_samples + shift // 2) // shift


def _kaldi_module():
    # Only this submodule: torchaudio's compiled libraries may be missing on CPU machines.
    import torchaudio.compliance.kaldi as kaldi

    return kaldi


def compute_fbank(samples: np.ndarray, sample_rate: int, config: FbankConfig = FbankConfig()) -> np.ndarray:
    """Fbank features [T, dim] (float32) of one utterance's int16-scale samples.

    Audio too short for a single frame gives a [0, dim] array (Kaldi produces no frames either).
    Dithering (``config.dither`` > 0) draws from torch's global random generator.
    """
    import torch

    cfg = config.with_sample_rate(sample_rate)
    samples = np.asarray(samples, dtype=np.float32)
    if samples.ndim != 1:
        raise ValueError(f"expected mono samples of shape [n], got {samples.shape}")
    length, _ = cfg.window_samples(sample_rate)
    if cfg.num_frames(len(samples), sample_rate) == 0:
        return np.zeros((0, cfg.dim), dtype=np.float32)
    if len(samples) < length:  # torchaudio asserts here even with snip_edges=False
        raise ValueError(f"{len(samples)} samples is shorter than one {length}-sample window")
    with torch.no_grad():
        # Computed in float64 (about as fast here): float32 FFT rounding alone moves low-energy mel bins of
        # loud frames by ~1e-3; in float64 the only difference to Kaldi is Kaldi's own float32 rounding.
        feats = _kaldi_module().fbank(
            torch.from_numpy(samples.astype(np.float64)).unsqueeze(0),
            num_mel_bins=cfg.num_mel_bins,
            sample_frequency=float(sample_rate),
            frame_length=cfg.frame_length_ms,
            frame_shift=cfg.frame_shift_ms,
            dither=cfg.dither,
            preemphasis_coefficient=cfg.preemphasis_coefficient,
            remove_dc_offset=cfg.remove_dc_offset,
            window_type=cfg.window_type,
            blackman_coeff=cfg.blackman_coeff,
            round_to_power_of_two=cfg.round_to_power_of_two,
            snip_edges=cfg.snip_edges,
            low_freq=cfg.low_freq,
            high_freq=cfg.high_freq,
            use_energy=cfg.use_energy,
            raw_energy=cfg.raw_energy,
            energy_floor=cfg.energy_floor,
            htk_compat=cfg.htk_compat,
            use_log_fbank=cfg.use_log_fbank,
            use_power=cfg.use_power,
        )
    return feats.numpy().astype(np.float32, copy=False)
