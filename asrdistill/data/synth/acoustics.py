"""Acoustic degradation of clean synthetic speech: synthetic-RIR reverb and additive noise.

Reverb: a synthetic room impulse response, a unit direct path followed by exponentially
decaying Gaussian noise whose decay reaches -60 dB at the drawn RT60 (a few ms of pre-delay,
direct-to-reverberant energy ratio drawn per utterance). The direct path sits at lag 0, so
phone timings are unchanged. Noise: white, pink (1/f power) or babble-like (speech-shaped
noise with slow syllable-rate amplitude modulation), scaled to an exact SNR measured against
the power of the (reverberant) speech over the speech region. All randomness comes from the
``numpy.random.Generator`` passed in.
"""
from __future__ import annotations

import numpy as np
from scipy import signal

NOISE_TYPES = ("white", "pink", "babble")


def synthetic_rir(rng: np.random.Generator, rt60: float, sample_rate: int,
                  drr_db: float = 6.0) -> np.ndarray:
    """Impulse response with direct path 1.0 at lag 0 and an exponential tail of the given RT60."""
    n = max(int(rt60 * sample_rate), 16)
    t = np.arange(n) / sample_rate
    tail = rng.standard_normal(n) * np.exp(-6.908 * t / rt60)  # 60 dB decay at rt60
    predelay = int(0.003 * sample_rate)
    tail[:predelay] = 0.0
    energy = float(np.sum(tail**2))
    if energy > 0:
        tail *= np.sqrt(10 ** (-drr_db / 10) / energy)  # direct energy is 1
    tail[0] = 1.0
    return tail


def reverberate(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """Convolve and keep the input's length (the tail runs into the trailing silence)."""
    return signal.fftconvolve(x, rir)[: len(x)]


def make_noise(rng: np.random.Generator, kind: str, n: int, sample_rate: int) -> np.ndarray:
    from scipy import fft

    if kind == "white":
        return rng.standard_normal(n)
    m = fft.next_fast_len(n, real=True)  # shaped in the frequency domain at a fast FFT size
    spec = fft.rfft(rng.standard_normal(m))
    freqs = fft.rfftfreq(m, 1.0 / sample_rate)
    if kind == "pink":
        shape = 1.0 / np.sqrt(np.maximum(freqs, 20.0))
        return fft.irfft(spec * shape, m)[:n]
    if kind == "babble":
        # long-term speech spectrum: a broad peak around 500 Hz, rolling off above
        shape = (freqs / 500.0) / (1.0 + (freqs / 500.0) ** 2) + 0.05
        noise = fft.irfft(spec * shape, m)[:n]
        t = np.arange(n) / sample_rate
        envelope = np.ones(n)
        for _ in range(4):  # several "talkers", each with a 3-6 Hz syllable-rate envelope
            rate, phase = rng.uniform(3.0, 6.0), rng.uniform(0, 2 * np.pi)
            envelope += 0.5 * (1 + np.sin(2 * np.pi * rate * t + phase))
        return noise * envelope
    raise ValueError(f"unknown noise type {kind!r}; choose from {NOISE_TYPES}")


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float,
              speech_region: tuple[int, int] | None = None) -> np.ndarray:
    """x + noise scaled so that power(x over speech_region) / power(noise) = snr_db."""
    lo, hi = speech_region or (0, len(x))
    p_speech = float(np.mean(x[lo:hi] ** 2))
    p_noise = float(np.mean(noise**2))
    if p_speech <= 0 or p_noise <= 0:
        return x.copy()
    scale = np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return x + scale * noise
