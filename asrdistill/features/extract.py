"""Feature extraction for a whole data dir: fbank, per-speaker CMVN and the frame store, in parallel.

:func:`compute_features` reads a Kaldi data dir and writes a feature dir (layout in the project
conventions): ``feats.ark``/``feats.scp`` (raw fbank, Kaldi-readable), ``cmvn.ark``/``cmvn.scp``
(per-speaker stats), ``utt2num_frames``, ``fbank.json`` (the config, bound to the data's sample rate)
and the frame store ``frames.f32``/``frames.json`` of CMVN-applied frames.

The sorted utterances are split into contiguous chunks (their number depends on the utterances only,
never on ``nj`` or the executor) handled by ``nj`` worker processes or the workers of a Dask scheduler
(:mod:`asrdistill.parallel`); each writes its own archive and raw float32 piece and returns its speakers'
partial CMVN stats. The parent then merges the pieces in chunk order, so the output is byte-identical
whatever ran the chunks (cluster workers need the data and the output's parent dir at the same paths). Everything is built in a temporary directory that replaces
``feat_dir`` only on success; the completion marker is written last, and a finished dir is left alone.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asrdistill.errors import UserFacingError, reported
from asrdistill.features.cmvn import apply_cmvn, cmvn_stats
from asrdistill.features.fbank import FbankConfig
from asrdistill.features.store import open_frames_for_writing, write_index
from asrdistill.utils import atomic_path, get_logger, mark_done

log = get_logger(__name__)

# Chunks depend on the utterance count only: the CMVN stats are float sums, grouped by chunk.
MIN_CHUNKS = 32     # more chunks than jobs: finer progress and better load balance
CHUNK_UTTS = 250    # at most this many utterances per chunk beyond MIN_CHUNKS chunks (big corpora, clusters)


@dataclass
class FeatureSummary:
    """What :func:`compute_features` did."""

    utterances: int
    frames: int
    seconds: float  # of audio
    wall_seconds: float
    frames_per_second: float
    sample_rate: int = 0
    skipped: list[str] = field(default_factory=list)  # utterances too short for one frame

    def __str__(self) -> str:
        return (f"{self.utterances} utterances, {self.frames} frames, {self.seconds / 3600:.2f} h of "
                f"{self.sample_rate} Hz audio in {self.wall_seconds:.1f} s ({self.frames_per_second:.0f} frames/s)"
                + (f"; {len(self.skipped)} too short, skipped" if self.skipped else ""))


@dataclass
class _ChunkResult:
    utts: list[str]  # utterances with at least one frame, in order
    num_frames: list[int]
    num_samples: int
    sample_rate: int | None
    rate_utt: str | None  # the first utterance of the chunk, whose rate is sample_rate
    skipped: list[str]
    spk_stats: dict[str, np.ndarray]


def _split_chunks(items: list[str], num_chunks: int, group: dict[str, str] | None = None) -> list[list[str]]:
    """Contiguous chunks of about equal size. With ``group`` (utterance -> recording), a boundary never falls
    between two consecutive utterances of one recording (so a recording with segments is read once)."""
    num_chunks = max(1, min(num_chunks, len(items)))
    bounds = [int(b) for b in np.linspace(0, len(items), num_chunks + 1).round().astype(int)]
    if group is not None:
        for k in range(1, len(bounds) - 1):
            b = max(bounds[k], bounds[k - 1])
            while 0 < b < len(items) and group[items[b]] == group[items[b - 1]]:
                b += 1
            bounds[k] = b
    return [items[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _mixed_rate_error(utt: str, rate: int, first_utt: str, first_rate: int) -> UserFacingError:
    return UserFacingError(f"utterance {utt} is sampled at {rate} Hz but utterance {first_utt} at {first_rate} Hz; "
                           "all utterances of a data dir must share one sample rate (resample the audio)")


def _extract_chunk(dd, utts: list[str], config: FbankConfig, piece: str, threads: int = 1,
                   channel: int | None = None) -> _ChunkResult:
    """Worker: fbank of ``utts`` into ``piece``.ark/.scp (Kaldi) and ``piece``.f32 (raw float32)."""
    import kaldiio
    import torch

    from asrdistill.data.kaldi_dir import iter_utterance_audio
    from asrdistill.features.fbank import compute_fbank
    from asrdistill.kaldi_tables import check_finite

    saved_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # per-frame FFTs gain nothing from intra-op threads; on a busy machine they thrash
    result = _ChunkResult([], [], 0, None, None, [], {})
    try:
        with reported(f"{piece}.ark", "write features"), \
                kaldiio.WriteHelper(f"ark,scp:{piece}.ark,{piece}.scp") as ark, open(f"{piece}.f32", "wb") as raw:
            for utt, samples, rate in iter_utterance_audio(dd, utts, channel):
                if result.sample_rate is None:
                    result.sample_rate, result.rate_utt = rate, utt
                elif rate != result.sample_rate:
                    raise _mixed_rate_error(utt, rate, result.rate_utt, result.sample_rate)
                if config.sample_rate is not None and rate != config.sample_rate:
                    raise UserFacingError(f"utterance {utt} is sampled at {rate} Hz but the fbank config asks "
                                          f"for {config.sample_rate} Hz")
                result.num_samples += len(samples)
                feats = compute_fbank(samples, rate, config)
                check_finite(feats, f"utterance {utt}: fbank")
                if len(feats) == 0:
                    result.skipped.append(utt)
                    continue
                ark(utt, feats)
                np.ascontiguousarray(feats, dtype="<f4").tofile(raw)
                spk = dd.utt2spk[utt]
                stats = cmvn_stats(feats)
                if spk in result.spk_stats:
                    result.spk_stats[spk] += stats
                else:
                    result.spk_stats[spk] = stats
                result.utts.append(utt)
                result.num_frames.append(len(feats))
    except UserFacingError as err:
        # a plain UserFacingError with the same message crosses any executor (local processes, Dask workers)
        raise UserFacingError(str(err)) from None
    finally:
        torch.set_num_threads(saved_threads)
    return result


def _extract_job(job: tuple[list[str], str], shared) -> _ChunkResult:
    """Executor job: one chunk (utterances, piece path); ``shared`` is (data dir, fbank config, channel)."""
    dd, config, channel = shared
    utts, piece = job
    return _extract_chunk(dd, utts, config, piece, channel=channel)


# Local workers come from a forkserver that has imported torch and the feature code once: they start in
# milliseconds. Not plain fork: a forked copy of a process that already ran torch ops can hang on locks its
# threads held; the forkserver process never runs any.
_LOCAL_OPTIONS = {"start_method": "forkserver",
                  "preload": ["torch", "torchaudio.compliance.kaldi", "kaldiio", "asrdistill.data.kaldi_dir",
                              "asrdistill.features.extract"]}


def _read_scp(path: Path) -> list[tuple[str, str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        key, loc = line.split(maxsplit=1)
        ark, _, offset = loc.rpartition(":")
        rows.append((key, ark, int(offset)))
    return rows


def _write_scp(path: Path, rows: list[tuple[str, str, int]]) -> None:
    path.write_text("".join(f"{key} {ark}:{offset}\n" for key, ark, offset in rows))


def compute_features(data_dir: str | os.PathLike, feat_dir: str | os.PathLike, nj: int = 2,
                     config: FbankConfig = FbankConfig(), norm_vars: bool = False,
                     allow_pipes: bool = False, progress: bool = True, scheduler=None,
                     channel: int | None = None) -> FeatureSummary:
    """Compute fbank, per-speaker CMVN stats and the frame store of ``data_dir`` into ``feat_dir``.

    ``feat_dir`` is replaced atomically (complete or absent); whether finished work is reused is the
    caller's choice (``asrdistill compute-feats`` runs this as a step with a fingerprint). Utterances too short
    for one frame are skipped with a warning. ``scheduler``: run the chunks on that Dask scheduler's workers
    instead of ``nj`` local processes (see :func:`asrdistill.parallel.make_executor`). ``channel``: the
    channel of multichannel recordings (0-based); None requires mono audio. With a ``segments`` file each
    recording is read once for all its segments. NaN/Inf features are an error naming the utterance; a write
    that fails (disk full, permissions) is an error naming the file.
    """
    from tqdm import tqdm

    from asrdistill.data.kaldi_dir import read_data_dir

    feat_dir = Path(feat_dir).absolute()
    if nj < 1:
        raise UserFacingError(f"--nj must be at least 1, got {nj}")

    start = time.perf_counter()
    dd = read_data_dir(data_dir, allow_pipes=allow_pipes, require_text=False)
    utts = dd.utts
    group = {u: dd.recording_of(u) for u in utts} if dd.segments is not None else None
    chunks = _split_chunks(utts, max(MIN_CHUNKS, -(-len(utts) // CHUNK_UTTS)), group)
    from asrdistill.parallel import make_executor

    executor = make_executor(min(nj, len(chunks)), scheduler, **_LOCAL_OPTIONS)
    log.info("%s -> %s: %d utterances, %d chunks, %d jobs%s", data_dir, feat_dir, len(utts), len(chunks),
             executor.nj, f" on {scheduler}" if scheduler else "")

    with reported(feat_dir, "write the feature dir"), atomic_path(feat_dir) as tmp:
        tmp.mkdir()
        pieces_dir = tmp / "pieces"
        pieces_dir.mkdir()
        pieces = [str(pieces_dir / f"{i:04d}") for i in range(len(chunks))]
        results: list[_ChunkResult | None] = [None] * len(chunks)
        with tqdm(total=len(utts), desc="fbank", unit="utt", disable=not progress) as bar:
            # results in chunk order; a worker's error is re-raised here and cancels the rest
            for i, res in enumerate(executor.map(_extract_job, list(zip(chunks, pieces)), shared=(dd, config, channel))):
                results[i] = res
                bar.update(len(chunks[i]))
        assert all(r is not None for r in results)

        # One sample rate for the whole dir.
        first = next(r for r in results if r.sample_rate is not None)
        for r in results:
            if r.sample_rate != first.sample_rate:
                raise _mixed_rate_error(r.rate_utt, r.sample_rate, first.rate_utt, first.sample_rate)
        rate = int(first.sample_rate)
        bound = config.with_sample_rate(rate)

        skipped = [u for r in results for u in r.skipped]
        for utt in skipped:
            log.warning("utterance %s is shorter than one frame (%.0f ms); skipped", utt, bound.frame_length_ms)
        kept = [u for r in results for u in r.utts]
        lengths = np.array([n for r in results for n in r.num_frames], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        if not kept:
            raise UserFacingError(f"{data_dir}: no utterance is long enough for a single frame")

        # Per-speaker CMVN stats (Kaldi format, float64).
        import kaldiio

        from asrdistill.kaldi_tables import check_finite

        spk_stats: dict[str, np.ndarray] = {}
        for r in results:
            for spk, stats in r.spk_stats.items():
                spk_stats[spk] = spk_stats[spk] + stats if spk in spk_stats else stats.copy()
        spks = sorted(spk_stats, key=lambda s: s.encode())
        kaldiio.save_ark(str(tmp / "cmvn.ark"), {s: spk_stats[s] for s in spks}, scp=str(tmp / "cmvn.scp"))
        _write_scp(tmp / "cmvn.scp", [(k, str(feat_dir / "cmvn.ark"), off) for k, _, off in _read_scp(tmp / "cmvn.scp")])

        # Raw fbank archive: the pieces concatenated, scp offsets shifted.
        scp_rows: list[tuple[str, str, int]] = []
        base = 0
        with open(tmp / "feats.ark", "wb") as out:
            for piece in pieces:
                with open(f"{piece}.ark", "rb") as f:
                    shutil.copyfileobj(f, out)
                scp_rows += [(k, str(feat_dir / "feats.ark"), base + off) for k, _, off in _read_scp(Path(f"{piece}.scp"))]
                base = out.tell()
        _write_scp(tmp / "feats.scp", scp_rows)
        (tmp / "utt2num_frames").write_text("".join(f"{u} {n}\n" for u, n in zip(kept, lengths)))

        # Frame store: CMVN-applied frames, utterances in sorted order.
        dim = bound.dim
        frames = open_frames_for_writing(tmp, int(offsets[-1]), dim)
        row = 0
        for r, piece in zip(results, pieces):
            if not r.utts:
                continue
            raw = np.memmap(f"{piece}.f32", dtype="<f4", mode="r").reshape(-1, dim)  # read as needed
            pos = 0
            for utt, n in zip(r.utts, r.num_frames):
                normed = apply_cmvn(raw[pos:pos + n], spk_stats[dd.utt2spk[utt]], norm_vars)
                check_finite(normed, f"utterance {utt}: features after CMVN (speaker {dd.utt2spk[utt]})")
                frames[row:row + n] = normed
                pos += n
                row += n
            del raw
        if isinstance(frames, np.memmap):
            frames.flush()
        del frames
        write_index(tmp, kept, offsets, dim, extra={"norm_vars": bool(norm_vars), "cmvn": "per-speaker",
                                                   "sample_rate": rate})
        (tmp / "fbank.json").write_text(bound.to_json())
        shutil.rmtree(pieces_dir)

        wall = time.perf_counter() - start
        num_samples = sum(r.num_samples for r in results)
        summary = FeatureSummary(utterances=len(kept), frames=int(offsets[-1]), seconds=num_samples / rate,
                                 wall_seconds=wall, frames_per_second=int(offsets[-1]) / max(wall, 1e-9),
                                 sample_rate=rate, skipped=skipped)
    mark_done(feat_dir, info={"summary": dataclasses.asdict(summary), "norm_vars": bool(norm_vars)})
    log.info("%s: %s", feat_dir, summary)
    return summary
