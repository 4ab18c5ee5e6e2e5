"""Exceptions whose message is shown to the user as is (file, line, utterance named)."""
from __future__ import annotations


class UserFacingError(Exception):
    """An error caused by the user's input or configuration; the CLI prints it without a traceback."""


class DataDirError(UserFacingError):
    """A Kaldi data dir is malformed. The message names the file, the line and the utterance."""

    def __init__(self, file: str, line: int | None, message: str, utt: str | None = None):
        where = f"{file}:{line}" if line is not None else str(file)
        who = f" (utterance {utt})" if utt else ""
        super().__init__(f"{where}{who}: {message}")
        self.file, self.line, self.utt = file, line, utt
