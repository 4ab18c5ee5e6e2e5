"""Kaldi data directories: read, write and validate ``wav.scp``, ``text``, ``utt2spk``, ``spk2utt``,
optional ``segments`` and ``spk2gender``, following the rules of Kaldi's ``utils/validate_data_dir.sh``:

- every file is sorted in C-locale byte order on its first field, with unique keys;
- ``utt2spk`` and ``spk2utt`` describe the same mapping, and sorting utterances by speaker gives the same order
  as sorting them by utterance id (so speaker ids should be prefixes of utterance ids);
- every utterance has a speaker, a transcript (unless ``require_text=False``) and a recording: an entry of
  ``wav.scp`` under its own id, or, when ``segments`` exists, a segment ``utt rec start end`` of a recording;
- ``wav.scp`` values are file paths; shell pipes (``cmd |``) are refused unless ``allow_pipes=True``.

Every error names the file, the line and the utterance (:class:`asrdistill.errors.DataDirError`).
"""
from __future__ import annotations

import io
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from asrdistill.errors import DataDirError
from asrdistill.textio import BOM_BYTES
from asrdistill.utils import atomic_path, get_logger

log = get_logger(__name__)

REQUIRED_FILES = ("wav.scp", "utt2spk")


@dataclass
class DataDir:
    """An in-memory Kaldi data dir (all mappings keyed by utterance or recording id)."""

    path: Path
    wav_scp: dict[str, str]
    text: dict[str, str] | None
    utt2spk: dict[str, str]
    spk2utt: dict[str, list[str]]
    segments: dict[str, tuple[str, float, float]] | None = None
    spk2gender: dict[str, str] | None = None
    allow_pipes: bool = field(default=False, repr=False)
    wav_lines: dict[str, int] = field(default_factory=dict, repr=False)  # recording -> line of wav.scp

    @property
    def utts(self) -> list[str]:
        return sorted(self.utt2spk, key=_c_key)

    @property
    def spks(self) -> list[str]:
        return sorted(self.spk2utt, key=_c_key)

    def recording_of(self, utt: str) -> str:
        return self.segments[utt][0] if self.segments is not None else utt

    def __len__(self) -> int:
        return len(self.utt2spk)


def _c_key(s: str) -> bytes:
    """Sort key equal to ``LC_ALL=C sort`` on the field."""
    return s.encode("utf-8")


def _read_table(path: Path, min_fields: int, max_fields: int | None = None,
                what: str = "utterance") -> list[tuple[int, str, list[str], str]]:
    """Read ``key rest...`` lines; check sorting, uniqueness and field counts.

    Returns ``(lineno, key, fields, rest)`` per line, ``rest`` being the text after the key as written.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataDirError(str(path), None, f"cannot read: {err.strerror}") from None
    rows: list[tuple[int, str, list[str]]] = []
    prev: str | None = None
    if raw.startswith(BOM_BYTES):
        log.warning("%s: starts with a UTF-8 byte-order mark; ignored", path)
        raw = raw[len(BOM_BYTES):]
    for lineno, line_bytes in enumerate(raw.split(b"\n"), start=1):
        if BOM_BYTES in line_bytes:
            raise DataDirError(str(path), lineno, "a UTF-8 byte-order mark (U+FEFF) inside the file (were files "
                                                  "concatenated?); remove it")
        if not line_bytes.strip():
            if line_bytes == b"" and lineno == raw.count(b"\n") + 1:
                continue  # the end of the file
            raise DataDirError(str(path), lineno, "empty line")
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError:
            raise DataDirError(str(path), lineno, "line is not valid UTF-8") from None
        if line.endswith("\r"):
            raise DataDirError(str(path), lineno, "line ends in a carriage return (DOS line ending)")
        fields = line.split()
        key = fields[0]
        if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
            want = f"{min_fields}" if max_fields == min_fields else f"at least {min_fields}"
            raise DataDirError(str(path), lineno, f"expected {want} fields, found {len(fields)}",
                               key if what == "utterance" else None)
        if prev is not None:
            if key == prev:
                raise DataDirError(str(path), lineno, f"duplicate {what} id {key!r}",
                                   key if what == "utterance" else None)
            if _c_key(key) < _c_key(prev):
                raise DataDirError(str(path), lineno,
                                   f"not sorted: {key!r} comes after {prev!r} (sort with LC_ALL=C sort)",
                                   key if what == "utterance" else None)
        prev = key
        parts = line.split(maxsplit=1)
        rows.append((lineno, key, fields, parts[1].strip() if len(parts) > 1 else ""))
    return rows


def read_data_dir(path: str | os.PathLike, allow_pipes: bool = False, require_text: bool = True,
                  check_audio_exists: bool = True) -> DataDir:
    """Read and validate the Kaldi data dir at ``path``; raise :class:`DataDirError` on the first problem."""
    path = Path(path)
    if not path.is_dir():
        raise DataDirError(str(path), None, "not a directory")
    for name in REQUIRED_FILES:
        if not (path / name).is_file():
            raise DataDirError(str(path / name), None, "missing (a Kaldi data dir needs wav.scp and utt2spk)")

    utt2spk_rows = _read_table(path / "utt2spk", 2, 2)
    utt2spk = {key: fields[1] for _, key, fields, _ in utt2spk_rows}
    utt_line = {key: lineno for lineno, key, _, _ in utt2spk_rows}
    if not utt2spk:
        raise DataDirError(str(path / "utt2spk"), None, "no utterances")

    # Kaldi requires that sorting by speaker gives the same utterance order as sorting by utterance.
    by_spk = sorted(utt2spk, key=lambda u: (_c_key(utt2spk[u]), _c_key(u)))
    by_utt = [key for _, key, _, _ in utt2spk_rows]
    if by_spk != by_utt:
        bad = next(u for u, v in zip(by_utt, by_spk) if u != v)
        raise DataDirError(str(path / "utt2spk"), utt_line[bad],
                           "utterances sorted by speaker are not in utterance order; make speaker ids prefixes "
                           "of utterance ids (Kaldi's rule, see utils/validate_data_dir.sh)", bad)

    spk2utt_expected: dict[str, list[str]] = {}
    for utt in by_utt:
        spk2utt_expected.setdefault(utt2spk[utt], []).append(utt)
    if (path / "spk2utt").is_file():
        spk2utt_rows = _read_table(path / "spk2utt", 2, None, what="speaker")
        for lineno, spk, fields, _ in spk2utt_rows:
            utts = fields[1:]
            if spk not in spk2utt_expected:
                raise DataDirError(str(path / "spk2utt"), lineno, f"speaker {spk!r} has no utterance in utt2spk")
            if utts != spk2utt_expected[spk]:
                extra = sorted(set(utts) ^ set(spk2utt_expected[spk]))
                raise DataDirError(str(path / "spk2utt"), lineno,
                                   f"speaker {spk!r} does not match utt2spk (differs on {extra[:3] or 'order'})",
                                   extra[0] if extra else None)
        missing = set(spk2utt_expected) - {spk for _, spk, _, _ in spk2utt_rows}
        if missing:
            raise DataDirError(str(path / "spk2utt"), None, f"speakers missing: {sorted(missing)[:5]}")
    else:
        log.warning("%s: no spk2utt; derived from utt2spk", path)

    segments = None
    if (path / "segments").is_file():
        segments = {}
        for lineno, utt, fields, _ in _read_table(path / "segments", 4, 4):
            try:
                start, end = float(fields[2]), float(fields[3])
            except ValueError:
                raise DataDirError(str(path / "segments"), lineno, "start and end must be numbers (seconds)",
                                   utt) from None
            if start < 0 or (end != -1 and end <= start):
                raise DataDirError(str(path / "segments"), lineno, f"bad times: start {start}, end {end}", utt)
            segments[utt] = (fields[1], start, end)

    wav_scp: dict[str, str] = {}
    wav_lines: dict[str, int] = {}
    for lineno, rec, fields, value in _read_table(path / "wav.scp", 2, None, what="recording"):
        wav_lines[rec] = lineno
        if value.endswith("|"):
            if not allow_pipes:
                raise DataDirError(str(path / "wav.scp"), lineno,
                                   f"recording {rec!r} is a shell pipe ({value!r}); pipes are refused unless "
                                   "explicitly enabled (--allow-pipes), since they run arbitrary commands")
        elif len(fields) != 2:
            raise DataDirError(str(path / "wav.scp"), lineno,
                               f"recording {rec!r}: expected 'id path' (paths with spaces are not supported)")
        elif check_audio_exists and not _resolve(path, value).is_file():
            raise DataDirError(str(path / "wav.scp"), lineno, f"recording {rec!r}: audio file {value} not found")
        wav_scp[rec] = value

    text = None
    if (path / "text").is_file():
        text = {}
        for lineno, utt, _, words in _read_table(path / "text", 1, None):
            if not words:
                log.warning("%s:%d (utterance %s): empty transcript", path / "text", lineno, utt)
            text[utt] = words
    elif require_text:
        raise DataDirError(str(path / "text"), None, "missing (transcripts are required here)")

    # Cross-file consistency.
    for utt in by_utt:
        if text is not None and utt not in text:
            raise DataDirError(str(path / "text"), None, "utterance in utt2spk has no transcript", utt)
        if segments is not None:
            if utt not in segments:
                raise DataDirError(str(path / "segments"), None, "utterance in utt2spk has no segment", utt)
            if segments[utt][0] not in wav_scp:
                raise DataDirError(str(path / "wav.scp"), None,
                                   f"recording {segments[utt][0]!r} of the segment is not in wav.scp", utt)
        elif utt not in wav_scp:
            raise DataDirError(str(path / "wav.scp"), None, "utterance in utt2spk has no entry in wav.scp", utt)
    for name, table in (("text", text), ("segments", segments)):
        if table is not None:
            extra = [u for u in table if u not in utt2spk]
            if extra:
                raise DataDirError(str(path / name), None, "utterance not in utt2spk", extra[0])

    spk2gender = None
    if (path / "spk2gender").is_file():
        spk2gender = {}
        for lineno, spk, fields, _ in _read_table(path / "spk2gender", 2, 2, what="speaker"):
            if fields[1] not in ("m", "f"):
                raise DataDirError(str(path / "spk2gender"), lineno, f"gender must be m or f, got {fields[1]!r}")
            spk2gender[spk] = fields[1]

    return DataDir(path=path, wav_scp=wav_scp, text=text, utt2spk=utt2spk, spk2utt=spk2utt_expected,
                   segments=segments, spk2gender=spk2gender, allow_pipes=allow_pipes, wav_lines=wav_lines)


def validate_data_dir(path: str | os.PathLike, allow_pipes: bool = False, require_text: bool = True) -> DataDir:
    """Alias of :func:`read_data_dir` for readability at call sites that only check."""
    return read_data_dir(path, allow_pipes=allow_pipes, require_text=require_text)


def _check_id(value: str, what: str) -> None:
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{what} id {value!r} is empty or contains whitespace")


def write_data_dir(path: str | os.PathLike, wav_scp: dict[str, str], text: dict[str, str] | None,
                   utt2spk: dict[str, str], segments: dict[str, tuple[str, float, float]] | None = None,
                   spk2gender: dict[str, str] | None = None, extra_files: dict[str, str] | None = None) -> Path:
    """Write a sorted Kaldi data dir atomically (the directory appears complete or not at all).

    ``extra_files`` maps other file names (e.g. ``phones.ctm``) to their full text.
    """
    path = Path(path)
    for utt, spk in utt2spk.items():
        _check_id(utt, "utterance")
        _check_id(spk, "speaker")

    def table(d: dict[str, str]) -> str:
        return "".join(f"{k} {d[k]}\n" for k in sorted(d, key=_c_key))

    spk2utt: dict[str, list[str]] = {}
    for utt in sorted(utt2spk, key=_c_key):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    with atomic_path(path) as tmp:
        tmp.mkdir()
        (tmp / "wav.scp").write_text(table(wav_scp))
        (tmp / "utt2spk").write_text(table(utt2spk))
        (tmp / "spk2utt").write_text(table({s: " ".join(u) for s, u in spk2utt.items()}))
        if text is not None:
            (tmp / "text").write_text(table(text))
        if segments is not None:
            (tmp / "segments").write_text(
                table({u: f"{r} {s:.3f} {e:.3f}" for u, (r, s, e) in segments.items()}))
        if spk2gender is not None:
            (tmp / "spk2gender").write_text(table(spk2gender))
        for name, content in (extra_files or {}).items():
            (tmp / name).write_text(content)
    return path


def copy_data_dir(src: DataDir, dest: str | os.PathLike, extra_files: Iterable[str] = ()) -> Path:
    """Write a validated copy of ``src`` to ``dest``; audio paths are made absolute. ``extra_files`` are copied."""
    wav_scp = {r: (v if v.endswith("|") else str(_resolve(src.path, v))) for r, v in src.wav_scp.items()}
    extras = {name: (src.path / name).read_text() for name in extra_files if (src.path / name).is_file()}
    return write_data_dir(dest, wav_scp, src.text, src.utt2spk, src.segments, src.spk2gender, extras)


def _resolve(data_dir: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else (Path.cwd() / p)


@dataclass(frozen=True)
class AudioInfo:
    """What a recording's header says."""

    num_samples: int
    sample_rate: int
    channels: int


# a WAV data chunk of this size or more is a streamed header (sox and others writing to a pipe), not a length
_STREAMED_SIZE = 0x7FFFFF00
_SHOULD_BE = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)


def _wav_error(dd: DataDir, rec: str, message: str) -> DataDirError:
    return DataDirError(str(dd.path / "wav.scp"), dd.wav_lines.get(rec), f"recording {rec!r}: {message}")


def _audio_source(dd: DataDir, rec: str) -> tuple[object, bool]:
    """(a path or the bytes of a pipe's output, whether it came from a pipe)."""
    value = dd.wav_scp[rec]
    if value.endswith("|"):
        if not dd.allow_pipes:
            raise _wav_error(dd, rec, f"{value!r} is a shell pipe; pipes run only with --allow-pipes")
        proc = subprocess.run(value[:-1], shell=True, capture_output=True)
        if proc.returncode != 0:
            raise _wav_error(dd, rec, f"command {value!r} failed with exit status {proc.returncode}: "
                                      f"{proc.stderr.decode(errors='replace')[-300:].strip()}")
        if not proc.stdout:
            raise _wav_error(dd, rec, f"command {value!r} wrote no audio")
        return io.BytesIO(proc.stdout), True
    path = _resolve(dd.path, value)
    if not path.is_file():
        raise _wav_error(dd, rec, f"audio file {value} not found")
    return str(path), False


def recording_info(dd: DataDir, rec: str) -> AudioInfo:
    """Open recording ``rec`` and read its header (a pipe is run): readable, non-empty and, for a WAV file, not
    shorter than its header says; errors name wav.scp's line, the recording and the file."""
    import soundfile

    source, piped = _audio_source(dd, rec)
    what = dd.wav_scp[rec]
    try:
        info = soundfile.info(source)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise _wav_error(dd, rec, f"cannot read audio {what}: {err}") from None
    if info.frames <= 0:
        raise _wav_error(dd, rec, f"audio {what} holds no samples (empty or only a header)")
    if not piped:
        m = _SHOULD_BE.search(getattr(info, "extra_info", "") or "")
        if m and _STREAMED_SIZE > int(m.group(1)) > int(m.group(2)):
            raise _wav_error(dd, rec, f"audio {what} is truncated: its header announces {int(m.group(1))} bytes "
                                      f"of samples, the file holds {int(m.group(2))}")
    return AudioInfo(int(info.frames), int(info.samplerate), int(info.channels))


def _pick_channel(samples: np.ndarray, channel: int | None, dd: DataDir, rec: str) -> np.ndarray:
    _check_channels(dd, rec, samples.shape[1], channel)
    return samples[:, 0 if samples.shape[1] == 1 else channel]


def _check_channels(dd: DataDir, rec: str, channels: int, channel: int | None) -> None:
    """Mono recordings are used as they are; of a multichannel one, ``channel`` must name one that exists."""
    if channels == 1:
        return
    if channel is None:
        raise _wav_error(dd, rec, f"{dd.wav_scp[rec]} has {channels} channels; choose one with --channel N "
                                  "(0 = the first), or select it in wav.scp (e.g. 'sox FILE -t wav - remix 1 |')")
    if not 0 <= channel < channels:
        raise _wav_error(dd, rec, f"{dd.wav_scp[rec]} has {channels} channels; --channel {channel} does not exist")


def read_recording(dd: DataDir, rec: str, channel: int | None = None) -> tuple[np.ndarray, int]:
    """Samples of recording ``rec`` as float32 at int16 scale (as Kaldi reads WAV files) and the sample rate.

    ``channel``: the channel (0-based) of a multichannel recording; None makes one an error naming it. A mono
    recording is used as it is."""
    import soundfile

    source, _ = _audio_source(dd, rec)
    try:
        samples, rate = soundfile.read(source, dtype="int16", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, OSError) as err:
        raise _wav_error(dd, rec, f"cannot read audio {dd.wav_scp[rec]}: {err}") from None
    return _pick_channel(samples, channel, dd, rec).astype(np.float32), int(rate)


def _cut_segment(dd: DataDir, utt: str, samples: np.ndarray, rate: int) -> np.ndarray:
    rec, start, end = dd.segments[utt]
    first = int(round(start * rate))
    last = len(samples) if end == -1 else int(round(end * rate))
    if first >= len(samples):
        raise DataDirError(str(dd.path / "segments"), None,
                           f"segment starts at {start}s, after the end of recording {rec!r} "
                           f"({len(samples) / rate:.2f}s)", utt)
    return samples[first:last]


def load_utterance_audio(dd: DataDir, utt: str, channel: int | None = None) -> tuple[np.ndarray, int]:
    """Samples of ``utt`` as float32 at int16 scale (as Kaldi reads WAV files) and the sample rate (its
    recording, or the segment of it; ``channel`` as in :func:`read_recording`)."""
    samples, rate = read_recording(dd, dd.recording_of(utt), channel)
    if dd.segments is not None:
        samples = _cut_segment(dd, utt, samples, rate)
    return samples, rate


def iter_utterance_audio(dd: DataDir, utts: Iterable[str] | None = None, channel: int | None = None
                         ) -> Iterator[tuple[str, np.ndarray, int]]:
    """Yield ``(utt, samples, sample_rate)`` in sorted utterance order (or the order of ``utts``).

    With ``segments``, each recording is read once for all its segments among ``utts``: it is kept until its
    last segment has been yielded."""
    utts = list(dd.utts if utts is None else utts)
    if dd.segments is None:
        for utt in utts:
            samples, rate = read_recording(dd, utt, channel)
            yield utt, samples, rate
        return
    left: dict[str, int] = {}
    for utt in utts:
        left[dd.recording_of(utt)] = left.get(dd.recording_of(utt), 0) + 1
    held: dict[str, tuple[np.ndarray, int]] = {}
    for utt in utts:
        rec = dd.recording_of(utt)
        if rec not in held:
            held[rec] = read_recording(dd, rec, channel)
        samples, rate = held[rec]
        left[rec] -= 1
        if left[rec] == 0:
            del held[rec]
        yield utt, _cut_segment(dd, utt, samples, rate), rate


def check_audio(dd: DataDir, channel: int | None = None, pipes: str = "all", check_channels: bool = True
                ) -> int | None:
    """Open every recording (header only): readable, non-empty, not truncated, one channel (or ``channel``
    present), one sample rate for the whole dir, every segment starting inside its recording. Returns the
    sample rate (None when nothing was opened). ``pipes``: which pipe entries to run, ``"all"``, ``"first"``
    (only the first one: its rate stands for the rest) or ``"none"``. Errors name wav.scp's line and the
    recording (:class:`DataDirError`). ``check_channels`` False: any number of channels is fine (the
    feature stage chooses one)."""
    if pipes not in ("all", "first", "none"):
        raise ValueError(f"pipes must be all, first or none, got {pipes!r}")
    rate: int | None = None
    rate_rec = ""
    ran_pipe = False
    durations: dict[str, float] = {}
    for rec in sorted(dd.wav_scp, key=_c_key):
        if dd.wav_scp[rec].endswith("|"):
            if pipes == "none" or (pipes == "first" and ran_pipe):
                continue
            ran_pipe = True
        info = recording_info(dd, rec)
        if check_channels:
            _check_channels(dd, rec, info.channels, channel)
        if rate is None:
            rate, rate_rec = info.sample_rate, rec
        elif info.sample_rate != rate:
            raise _wav_error(dd, rec, f"sampled at {info.sample_rate} Hz but recording {rate_rec!r} at {rate} Hz; "
                                      "all recordings of a data dir must share one sample rate (resample them)")
        durations[rec] = info.num_samples / info.sample_rate
    if dd.segments is not None:
        for utt in dd.utts:
            rec, start, _ = dd.segments[utt]
            if rec in durations and start >= durations[rec]:
                raise DataDirError(str(dd.path / "segments"), None,
                                   f"segment starts at {start}s, after the end of recording {rec!r} "
                                   f"({durations[rec]:.2f}s)", utt)
    return rate


def subset_data_dir(src: DataDir, dest: str | os.PathLike, num_utts: int,
                    extra_files: Iterable[str] = ()) -> Path:
    """Write a data dir of ``num_utts`` utterances of ``src`` spread evenly over its sorted utterances (every
    k-th, as Kaldi's ``utils/subset_data_dir.sh`` without ``--shortest``), so every speaker keeps a share.

    ``extra_files`` with utterance-keyed lines (e.g. ``phones.ctm``) are filtered to the subset.
    """
    utts = src.utts
    if num_utts >= len(utts):
        keep = utts
    else:
        keep = [utts[(i * len(utts)) // num_utts] for i in range(num_utts)]
    keep_set = set(keep)
    recs = {src.recording_of(u) for u in keep}
    extras = {}
    for name in extra_files:
        if (src.path / name).is_file():
            extras[name] = "".join(line + "\n" for line in (src.path / name).read_text().splitlines()
                                   if line.split(maxsplit=1)[0] in keep_set)
    return write_data_dir(dest, {r: v for r, v in src.wav_scp.items() if r in recs},
                          {u: t for u, t in src.text.items() if u in keep_set} if src.text is not None else None,
                          {u: src.utt2spk[u] for u in keep},
                          {u: s for u, s in src.segments.items() if u in keep_set} if src.segments else None,
                          {s: g for s, g in src.spk2gender.items() if s in {src.utt2spk[u] for u in keep}}
                          if src.spk2gender else None, extras)
