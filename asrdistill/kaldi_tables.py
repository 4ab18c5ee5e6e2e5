"""Reading Kaldi tables (``.scp`` / ``.ark``) of matrices and vectors, with one policy for commands in them.

An scp entry or rxfilename that is a shell command (``cmd |``) or an ``ark:`` / ``scp:`` specifier runs
nothing here: it is refused with an error naming the file, the line and the utterance, unless the caller
passes ``allow_pipes=True`` (what ``--allow-pipes`` turns on). Files the toolkit writes itself (``pdf.scp``,
``ali.scp``, caches) are always read with ``allow_pipes=False``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from asrdistill.errors import UserFacingError


def is_command(rx: str) -> bool:
    """True for rxfilenames that would run a command or open another table (``cmd |``, ``ark:...``)."""
    rx = rx.strip()
    return rx.endswith("|") or rx.startswith(("ark:", "scp:", "ark,", "scp,")) or rx == "-"


def read_scp_lines(path: str | os.PathLike, allow_pipes: bool = False) -> list[tuple[int, str, str]]:
    """``(line number, key, rxfilename)`` of an scp file; commands refused unless ``allow_pipes``."""
    path = Path(path)
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserFacingError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise UserFacingError(f"{path}: cannot read ({err.strerror or err})") from None
    for lineno, line in enumerate(text.lstrip("\ufeff").splitlines(), 1):
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if len(parts) != 2:
            raise UserFacingError(f"{path}:{lineno}: expected '<key> <rxfilename>'")
        key, rx = parts[0], parts[1].strip()
        if is_command(rx) and not allow_pipes:
            raise UserFacingError(f"{path}:{lineno} (utterance {key}): {rx!r} is a command; commands in scp "
                                  "files run only with --allow-pipes")
        out.append((lineno, key, rx))
    return out


def _resolve(rx: str, base: Path) -> str:
    ark = rx.rsplit(":", 1)[0]
    if not os.path.isabs(ark) and not Path(ark).exists() and (base / ark).exists():
        return str(base / rx)  # a path relative to the scp's dir
    return rx


def read_matrix_table(path: str | os.PathLike, allow_pipes: bool = False, dtype=np.float32) -> dict[str, np.ndarray]:
    """utt -> array from an ``.scp`` or ``.ark`` file; errors name the file, line and utterance."""
    import kaldiio

    path = Path(path)
    if not path.is_file():
        raise UserFacingError(f"{path}: no such file")
    out: dict[str, np.ndarray] = {}
    if path.suffix == ".scp":
        for lineno, key, rx in read_scp_lines(path, allow_pipes):
            try:
                out[key] = np.asarray(kaldiio.load_mat(_resolve(rx, path.parent)), dtype=dtype)
            except Exception as err:  # kaldiio raises many kinds on a corrupt entry
                raise UserFacingError(f"{path}:{lineno} (utterance {key}): cannot read: {err}") from None
        return out
    if path.suffix == ".ark":
        try:
            for key, value in kaldiio.load_ark(str(path)):
                out[key] = np.asarray(value, dtype=dtype)
        except Exception as err:
            raise UserFacingError(f"{path}: cannot read the archive after {len(out)} entries: {err}") from None
        return out
    raise UserFacingError(f"{path}: expected a Kaldi .scp or .ark file")
