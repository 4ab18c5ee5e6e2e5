"""Speech-like synthetic audio (numpy only) for feature tests and benchmarks.

Voiced stretches are glottal-like pulse trains with a gliding pitch shaped by a few formant
resonances, unvoiced stretches are filtered noise, and there are pauses of low noise and of exact
digital silence (which exercises the log floor). Samples are int16-scale float32, as Kaldi reads WAV.
"""
from __future__ import annotations

import numpy as np


def _resonator(x: np.ndarray, freq: float, bandwidth: float, sample_rate: int) -> np.ndarray:
    from scipy.signal import lfilter

    r = np.exp(-np.pi * bandwidth / sample_rate)
    theta = 2 * np.pi * freq / sample_rate
    a = [1.0, -2 * r * np.cos(theta), r * r]
    return lfilter([1.0 - r], a, x)


def speech_like(seconds: float, sample_rate: int = 16000, seed: int = 0, noise_floor: float = 3.0) -> np.ndarray:
    """``seconds`` of speech-like audio at ``sample_rate``, int16 scale (peak about 12000).

    ``noise_floor`` is the standard deviation of the background noise added outside digital silence.
    """
    rng = np.random.default_rng(seed)
    n_total = int(round(seconds * sample_rate))
    pieces: list[np.ndarray] = []
    n = 0
    nyquist = sample_rate / 2
    while n < n_total:
        kind = rng.choice(["voiced", "voiced", "unvoiced", "pause", "silence"])
        dur = int(rng.uniform(0.05, 0.3) * sample_rate)
        if kind == "voiced":
            f0 = rng.uniform(90, 250) * np.linspace(1.0, rng.uniform(0.8, 1.2), dur)
            phase = np.cumsum(f0 / sample_rate)
            src = (np.diff(np.floor(phase), prepend=0.0) > 0).astype(np.float64)  # one pulse per period
            src = src + 0.02 * rng.standard_normal(dur)
            seg = np.zeros(dur)
            for formant, bw in ((rng.uniform(300, 900), 80), (rng.uniform(900, 2500), 120),
                                (rng.uniform(2300, 3500), 200)):
                if formant < nyquist * 0.95:
                    seg += _resonator(src, formant, bw, sample_rate)
            seg *= rng.uniform(0.3, 1.0)
        elif kind == "unvoiced":
            fc = min(rng.uniform(2000, 6000), nyquist * 0.8)
            seg = _resonator(rng.standard_normal(dur), fc, 1500, sample_rate) * rng.uniform(0.05, 0.3)
        elif kind == "pause":
            seg = 0.002 * rng.standard_normal(dur)
        else:
            seg = np.zeros(dur)
        pieces.append(seg)
        n += dur
    x = np.concatenate(pieces)[:n_total]
    peak = np.max(np.abs(x)) or 1.0
    x = x / peak * 12000.0
    # a recording's noise floor (about -70 dB), except in the stretches of digital silence
    x = np.where(x != 0.0, x + noise_floor * rng.standard_normal(len(x)), 0.0)
    return np.round(x).astype(np.float32)
