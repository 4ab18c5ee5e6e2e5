"""Reading the text files users give the toolkit (dict dirs, CTMs, scp files, count vectors), with one policy:

* the text must be UTF-8; a file that is not is named with the line and byte offset of the first bad byte
  (and how to convert it);
* a UTF-8 byte-order mark at the very start of the file (what some Windows editors write) is stripped; one
  anywhere else (files concatenated with ``cat``) is an error naming its line, since it would become part of
  a word or an utterance id;
* lines are split on ``\\n`` only (as Kaldi does; ``str.splitlines`` would also split on form feeds and
  Unicode separators); a ``\\r`` before it is the caller's business (Kaldi data dirs refuse it);
* a file that cannot be read is ``file: cannot read: <reason>``.

Kaldi data dirs have their own stricter reader (:mod:`asrdistill.data.kaldi_dir`) that follows the same rules.
"""
from __future__ import annotations

import os
from pathlib import Path

from asrdistill.errors import UserFacingError, os_error_message

BOM = "\ufeff"
BOM_BYTES = BOM.encode("utf-8")


def decode_utf8(raw: bytes, path: str | os.PathLike) -> str:
    """``raw`` as text under the policy of the module docstring (errors name ``path`` and the line)."""
    if raw.startswith(BOM_BYTES):
        raw = raw[len(BOM_BYTES):]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        raise UserFacingError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}); "
                              "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`") from None
    pos = text.find(BOM)
    if pos >= 0:
        line = text.count("\n", 0, pos) + 1
        raise UserFacingError(f"{path}:{line}: a byte-order mark (U+FEFF) inside the file (were files "
                              "concatenated?); remove it")
    return text


def read_text(path: str | os.PathLike) -> str:
    """The whole file as text (see the module docstring)."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise UserFacingError(os_error_message(err, path, "read")) from None
    return decode_utf8(raw, path)


def read_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a text file without their ``\\n`` (no empty last line for a final newline)."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines
