"""Fbank speed: ours (torchaudio.compliance.kaldi) vs kaldi-native-fbank on the same audio, and
end-to-end ``compute_features`` (audio reading, fbank, CMVN, archives, frame store) on a small corpus.

    python benchmarks/bench_fbank.py [--seconds 120] [--utt-seconds 4] [--rate 16000] [--nj 2] [--threads 1]

Prints frames/s of each, their ratio and the largest absolute difference between the two.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# the speech-like test signal is a test fixture: tests/testsignal.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def knf_fbank(samples: np.ndarray, rate: int, num_bins: int) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = rate
    opts.mel_opts.num_bins = num_bins
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(rate, samples)
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def timed(fn, utts):
    """Outputs, wall seconds and CPU seconds of this process (the CPU figure holds up on a busy machine)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = [fn(x) for x in utts]
    return out, time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    import torch

    from asrdistill.features.fbank import FbankConfig, compute_fbank
    from testsignal import speech_like

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=120.0, help="total audio (default 120)")
    ap.add_argument("--utt-seconds", type=float, default=4.0, help="length of each utterance (default 4)")
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--nj", type=int, default=2, help="jobs for the end-to-end run (default 2)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the in-process comparison")
    ap.add_argument("--skip-e2e", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    n_utts = max(1, int(args.seconds / args.utt_seconds))
    utts = [speech_like(args.utt_seconds, args.rate, seed=i) for i in range(n_utts)]
    cfg = FbankConfig()
    compute_fbank(utts[0], args.rate, cfg)  # warm-up (import, first-call costs)
    knf_fbank(utts[0], args.rate, cfg.num_mel_bins)

    ours, t_ours, c_ours = timed(lambda x: compute_fbank(x, args.rate, cfg), utts)
    ref, t_knf, c_knf = timed(lambda x: knf_fbank(x, args.rate, cfg.num_mel_bins), utts)
    frames = sum(len(f) for f in ours)
    diff = max(float(np.abs(a - b).max()) for a, b in zip(ours, ref))
    print(f"audio: {n_utts} x {args.utt_seconds:g} s at {args.rate} Hz = {frames} frames; torch threads "
          f"{args.threads}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"ours (torchaudio.compliance.kaldi): {frames / t_ours:9.0f} frames/s wall, {frames / c_ours:9.0f} per CPU-s")
    print(f"kaldi-native-fbank:                 {frames / t_knf:9.0f} frames/s wall, {frames / c_knf:9.0f} per CPU-s")
    print(f"ratio ours / knf: {t_knf / t_ours:.2f}x wall, {c_knf / c_ours:.2f}x CPU   max |diff|: {diff:.2e}")

    if args.skip_e2e:
        return
    import soundfile as sf

    from asrdistill.data.kaldi_dir import write_data_dir
    from asrdistill.features.extract import compute_features

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "wav").mkdir()
        wav, utt2spk = {}, {}
        for i, x in enumerate(utts):
            spk = f"spk{i % 4}"
            utt = f"{spk}-{i:05d}"
            sf.write(root / "wav" / f"{utt}.wav", x.astype(np.int16), args.rate, subtype="PCM_16")
            wav[utt], utt2spk[utt] = str(root / "wav" / f"{utt}.wav"), spk
        data = write_data_dir(root / "data", wav, None, utt2spk)
        summary = compute_features(data, root / "fbank", nj=args.nj, progress=False)
        print(f"compute_features nj={args.nj}: {summary.frames_per_second:10.0f} frames/s end to end "
              f"({summary.frames} frames in {summary.wall_seconds:.2f} s, incl. worker start-up)")


if __name__ == "__main__":
    main()
