"""Reading Kaldi tables (``.scp`` / ``.ark``) of matrices and vectors, with one policy for commands in them.

Every scp / ark reader of the toolkit goes through this module. The policy:

* **Commands.** An scp entry (rxfilename) that would run something -- ``cmd |``, ``| cmd``, ``cmd |:OFFSET``,
  anything else with a ``|``, ``-`` (stdin) -- or that is an ``ark:`` / ``scp:`` specifier is refused with an
  error naming the file, the line and the utterance, unless the caller passes ``allow_pipes=True`` (what a
  command's ``--allow-pipes`` turns on; only commands reading a user's own tables have that option). Then the
  command runs through the shell and must exit 0. Readers of files the toolkit writes itself (``pdf.scp``,
  ``ali.scp``, ``cmvn.scp``) never pass it, whatever the user's flag. kaldiio is never handed a name to
  open (it would start any command it sees, also after a ``:offset``): files are opened here.
* **Contents.** Only Kaldi's binary (``\\0B``: float / double / compressed matrices and vectors, int32
  vectors) and text (``[ ... ]``) objects are read. Pickles (kaldiio's ``PKL`` extension, which would run
  code), ``.npy`` and audio objects are refused.
* **Numbers.** Float tables are checked finite: a NaN or Inf is an error naming the utterance and the frame.
* Keys are unique; every error names ``file:line (utterance X)`` (scp) or ``file (utterance X)`` (ark).
"""
from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from asrdistill.errors import UserFacingError, os_error_message

#: What a table entry that runs a command looks like, for the messages.
PIPES_HINT = "commands in scp files run only with --allow-pipes"


def is_command(rx: str) -> bool:
    """True for rxfilenames that would run a command, read stdin or open another table (``cmd |``, ``ark:...``)."""
    rx = rx.strip()
    return "|" in rx or rx == "-" or rx.startswith(("ark:", "scp:", "ark,", "scp,"))


def _where(path: Path, lineno: int | None, key: str | None) -> str:
    loc = f"{path}:{lineno}" if lineno is not None else str(path)
    return f"{loc} (utterance {key})" if key is not None else loc


def read_scp_lines(path: str | os.PathLike, allow_pipes: bool = False) -> list[tuple[int, str, str]]:
    """``(line number, key, rxfilename)`` of an scp file; commands refused unless ``allow_pipes``; keys unique."""
    from asrdistill.textio import read_lines

    path = Path(path)
    out = []
    seen: dict[str, int] = {}
    for lineno, line in enumerate(read_lines(path), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2:
            raise UserFacingError(f"{path}:{lineno}: expected '<key> <rxfilename>'")
        key, rx = parts[0], parts[1].strip()
        if key in seen:
            raise UserFacingError(f"{_where(path, lineno, key)}: duplicate key (first at line {seen[key]})")
        seen[key] = lineno
        if is_command(rx) and not allow_pipes:
            raise UserFacingError(f"{_where(path, lineno, key)}: {rx!r} is a command; {PIPES_HINT}")
        out.append((lineno, key, rx))
    return out


# --- one object ------------------------------------------------------------------------------------------
def _read_object(fd: BinaryIO, where: str) -> np.ndarray:
    """One Kaldi matrix or vector from ``fd`` (positioned at it): binary or text, nothing else."""
    from kaldiio.matio import read_ascii_mat, read_int32vector, read_matrix_or_vector

    start = fd.tell()
    head = fd.read(5)
    fd.seek(start)
    if head[:2] == b"\0B":
        if head[2:3] == b"\4":
            return np.asarray(read_int32vector(fd, "<"))
        return np.asarray(read_matrix_or_vector(fd, "<"))
    if head[:3] == b"PKL":
        raise UserFacingError(f"{where}: a pickled object (kaldiio's PKL format); pickles are never loaded, "
                              "since they can run code")
    if head[:4] in (b"RIFF", b"fLaC") or head[:3] == b"NPY" or head[:5] == b"AUDIO":
        raise UserFacingError(f"{where}: not a Kaldi matrix or vector (audio or .npy data)")
    stripped = head.lstrip(b" \t\r\n")
    if not head:
        raise UserFacingError(f"{where}: no data (offset past the end of the file?)")
    if stripped[:1] not in (b"[", b""):
        raise UserFacingError(f"{where}: not a Kaldi matrix or vector (unknown header {head!r})")
    return np.asarray(read_ascii_mat(fd))


def _parse_range(spec: str, where: str) -> tuple[slice, ...]:
    """Kaldi's ``[r1:r2]`` / ``[r1:r2,c1:c2]`` row/column ranges (inclusive ends)."""
    out = []
    for part in spec.split(","):
        part = part.strip()
        if part in ("", ":"):
            out.append(slice(None))
            continue
        try:
            ends = [int(x) for x in part.split(":")]
        except ValueError:
            raise UserFacingError(f"{where}: bad range [{spec}]") from None
        if len(ends) == 1:
            out.append(slice(ends[0], ends[0] + 1))
        elif len(ends) == 2:
            out.append(slice(ends[0], ends[1] + 1))
        else:
            raise UserFacingError(f"{where}: bad range [{spec}]")
    return tuple(out)


def _split_rx(rx: str, where: str) -> tuple[str, int | None, tuple[slice, ...] | None]:
    """``file[:offset][[range]]`` -> (file, offset, range)."""
    ranges = None
    if rx.endswith("]") and "[" in rx:
        rx, spec = rx[:-1].rsplit("[", 1)
        ranges = _parse_range(spec, where)
    name, sep, offset = rx.rpartition(":")
    if sep and offset.isdigit():
        return name, int(offset), ranges
    return rx, None, ranges


def _resolve(name: str, base: Path) -> Path:
    p = Path(name)
    if not p.is_absolute() and not p.exists() and (base / p).exists():
        return base / p  # a path relative to the scp's dir
    return p


def _run_command(cmd: str, where: str) -> bytes:
    proc = subprocess.run(cmd, shell=True, capture_output=True)
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise UserFacingError(f"{where}: command {cmd!r} failed with exit status {proc.returncode}"
                              + (f": {tail}" if tail else ""))
    return proc.stdout


def load_entry(rx: str, base: Path, where: str, allow_pipes: bool = False) -> np.ndarray:
    """The object an scp entry points at (``where`` names it in errors; see the module policy)."""
    rx = rx.strip()
    if is_command(rx):
        if not allow_pipes:
            raise UserFacingError(f"{where}: {rx!r} is a command; {PIPES_HINT}")
        if rx.startswith(("ark:", "scp:", "ark,", "scp,")) or rx == "-":
            raise UserFacingError(f"{where}: {rx!r}: table specifiers and stdin are not supported in scp entries")
        if not rx.endswith("|"):
            raise UserFacingError(f"{where}: {rx!r}: only 'command |' entries are supported (no offsets)")
        data = _run_command(rx[:-1].strip(), where)
        fd: BinaryIO = io.BytesIO(data)
        try:
            return _read_object(fd, f"{where}: the output of {rx!r}")
        except UserFacingError:
            raise
        except Exception as err:  # kaldiio raises assorted errors (AssertionError, ValueError, ...)
            raise UserFacingError(f"{where}: the output of {rx!r} is not a Kaldi matrix or vector "
                                  f"({_describe(err)})") from None
    name, offset, ranges = _split_rx(rx, where)
    path = _resolve(name, base)
    if not path.is_file():
        raise UserFacingError(f"{where}: {name}: no such file")
    try:
        with open(path, "rb") as fd:
            if offset is not None:
                fd.seek(offset)
            array = _read_object(fd, where)
    except UserFacingError:
        raise
    except OSError as err:
        raise UserFacingError(f"{where}: {os_error_message(err, path, 'read')}") from None
    except Exception as err:
        raise UserFacingError(f"{where}: {path}: corrupt or truncated data ({_describe(err)})") from None
    if ranges is not None:
        try:
            array = array[ranges]
        except IndexError:
            raise UserFacingError(f"{where}: range does not fit a {array.shape} array") from None
    return array


def _describe(err: BaseException) -> str:
    text = str(err).strip().replace("\n", " ")
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# --- whole tables ----------------------------------------------------------------------------------------
def iter_table(path: str | os.PathLike, allow_pipes: bool = False) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(where, key, array)`` of every entry of an ``.scp`` or ``.ark`` file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: no such file")
    if path.suffix == ".scp":
        for lineno, key, rx in read_scp_lines(path, allow_pipes):
            where = _where(path, lineno, key)
            yield where, key, load_entry(rx, path.parent, where, allow_pipes)
        return
    if path.suffix != ".ark":
        raise UserFacingError(f"{path}: expected a Kaldi .scp or .ark file")
    from kaldiio.matio import read_token

    seen: set[str] = set()
    n = 0
    try:
        fd = open(path, "rb")
    except OSError as err:
        raise UserFacingError(os_error_message(err, path, "read")) from None
    with fd:
        while True:
            try:
                key = read_token(fd)
            except Exception as err:
                raise UserFacingError(f"{path}: corrupt archive after {n} entries ({_describe(err)})") from None
            if key is None:
                return
            if isinstance(key, bytes):
                key = key.decode("utf-8", "replace")
            where = _where(path, None, key)
            if key in seen:
                raise UserFacingError(f"{where}: duplicate key")
            seen.add(key)
            try:
                array = _read_object(fd, where)
            except UserFacingError:
                raise
            except Exception as err:
                raise UserFacingError(f"{where}: corrupt or truncated archive entry ({_describe(err)})") from None
            n += 1
            yield where, key, array


def check_finite(array: np.ndarray, where: str) -> None:
    """An error naming ``where`` and the first frame (row) holding a NaN or Inf."""
    a = np.asarray(array)
    if a.dtype.kind in "fc" and a.size and not np.isfinite(a).all():
        bad = np.argwhere(~np.isfinite(a))[0]
        value = a[tuple(bad)]
        at = f"frame {bad[0]}" + (f", column {bad[1]}" if len(bad) > 1 else "")
        raise UserFacingError(f"{where}: {value} at {at} (NaN/Inf values are not allowed)")


def read_matrix_table(path: str | os.PathLike, allow_pipes: bool = False, dtype=np.float32,
                      finite: bool = True) -> dict[str, np.ndarray]:
    """utt -> float matrix from an ``.scp`` or ``.ark`` file; NaN/Inf refused (``finite``); errors name the file,
    line and utterance."""
    out: dict[str, np.ndarray] = {}
    for where, key, value in iter_table(path, allow_pipes):
        if value.dtype.kind not in "fiu":
            raise UserFacingError(f"{where}: expected a numeric matrix, got {value.dtype}")
        if finite:
            check_finite(value, where)
        out[key] = np.asarray(value, dtype=dtype)
    return out


def read_int_vector_table(path: str | os.PathLike, allow_pipes: bool = False) -> dict[str, np.ndarray]:
    """utt -> int32 vector (alignments) from an ``.scp`` or ``.ark`` file. Float data must hold whole finite
    numbers (an alignment written as a float vector is accepted, a NaN or 1.5 is an error naming the frame)."""
    out: dict[str, np.ndarray] = {}
    for where, key, value in iter_table(path, allow_pipes):
        if value.ndim == 2 and 1 in value.shape:
            value = value.reshape(-1)
        if value.ndim != 1:
            raise UserFacingError(f"{where}: expected a vector of integer ids, got an array of shape {value.shape}")
        if value.dtype.kind == "f":
            check_finite(value, where)
            frac = np.flatnonzero(value != np.round(value))
            if len(frac):
                raise UserFacingError(f"{where}: {value[frac[0]]} at frame {frac[0]} is not an integer id")
        elif value.dtype.kind not in "iu":
            raise UserFacingError(f"{where}: expected integer ids, got {value.dtype}")
        if value.size and (value.max() > np.iinfo(np.int32).max or value.min() < np.iinfo(np.int32).min):
            raise UserFacingError(f"{where}: id out of the int32 range")
        out[key] = value.astype(np.int32)
    return out
