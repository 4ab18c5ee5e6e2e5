"""Fingerprints: what a piece of work was made from, as one sha256 hex string.

The fingerprint of an *input* (:func:`input_fingerprint`) is

* for a directory that the toolkit made (it holds a completion record, see :mod:`.step`): that record's
  fingerprint, which already covers everything upstream of it, so nothing big is re-read;
* for a Kaldi data dir (it has ``wav.scp``): the contents of its text files plus, for every recording that is
  a file, its size and modification time (the audio itself is not read: a data dir of 1000 hours stays cheap);
* for any other directory (a dict dir, a lang dir made elsewhere): the contents of all its files;
* for a file: its contents.

The fingerprint of a *step* is the digest of its name, its options and its inputs' fingerprints
(:func:`step_fingerprint`); options and names are serialised as canonical JSON.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from asrdistill.errors import UserFacingError

#: Files of a Kaldi data dir that describe it (the audio is covered by size and mtime, see the module doc).
DATA_DIR_FILES = ("wav.scp", "segments", "text", "utt2spk", "spk2utt", "spk2gender", "reco2file_and_channel",
                  "utt2dur", "phones.ctm")
_CHUNK = 1 << 20
RECORD = ".done"   # the completion record of a step's output dir (see :mod:`.step`)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(_CHUNK), b""):
                h.update(block)
    except OSError as err:
        raise UserFacingError(f"{path}: cannot read ({err.strerror or err})") from None
    return h.hexdigest()


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same object always gives the same text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def digest_json(obj: Any) -> str:
    return sha256_bytes(canonical_json(obj).encode())


def data_dir_digest(path: Path) -> str:
    h = hashlib.sha256(b"kaldi-data-dir\0")
    for name in DATA_DIR_FILES:
        f = path / name
        if f.is_file():
            h.update(f"{name}\0".encode())
            h.update(f.read_bytes())
    wav_scp = path / "wav.scp"
    for line in wav_scp.read_text(errors="replace").splitlines():
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or parts[1].rstrip().endswith("|"):
            continue  # a command: its text is covered above
        audio = Path(parts[1].strip())
        if not audio.is_absolute():
            audio = path / audio
        try:
            st = audio.stat()
            h.update(f"{parts[0]}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        except OSError:
            h.update(f"{parts[0]}\0missing\0".encode())
    return h.hexdigest()


def tree_digest(path: Path) -> str:
    """Digest of every file under ``path`` (names and contents; hidden temp dirs and markers left out)."""
    h = hashlib.sha256(b"tree\0")
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue
        h.update(f"{rel.as_posix()}\0{sha256_file(f)}\0".encode())
    return h.hexdigest()


def read_record(directory: str | os.PathLike, name: str = RECORD) -> dict | None:
    """The completion record of ``directory`` (a dict), ``{}`` for a bare marker, None if there is none."""
    path = Path(directory) / name
    if not path.is_file():
        return None
    try:
        text = path.read_text()
        return json.loads(text) if text.strip() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}


def input_fingerprint(path: str | os.PathLike) -> str:
    """The fingerprint of one input file or directory (see the module docstring)."""
    p = Path(path)
    if p.is_dir():
        record = read_record(p)
        if record is not None and record.get("fingerprint"):
            return str(record["fingerprint"])
        if (p / "wav.scp").is_file():
            return data_dir_digest(p)
        return tree_digest(p)
    if p.is_file():
        return sha256_file(p)
    raise UserFacingError(f"{p}: no such file or directory (an input of this step)")


def step_fingerprint(step: str, options: Mapping[str, Any], input_fingerprints: Mapping[str, str]) -> str:
    return digest_json({"step": step, "options": dict(options), "inputs": dict(input_fingerprints)})
