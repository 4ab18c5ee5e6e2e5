"""Exceptions whose message is shown to the user as is (file, line, utterance named), and the one way to turn
operating-system and library errors about a file into such a message (``file: what went wrong``)."""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from pathlib import Path
from typing import Iterator


class UserFacingError(Exception):
    """An error caused by the user's input or configuration; the CLI prints it without a traceback."""


class DataDirError(UserFacingError):
    """A Kaldi data dir is malformed. The message names the file, the line and the utterance."""

    def __init__(self, file: str, line: int | None, message: str, utt: str | None = None):
        where = f"{file}:{line}" if line is not None else str(file)
        who = f" (utterance {utt})" if utt else ""
        super().__init__(f"{where}{who}: {message}")
        self.file, self.line, self.utt = file, line, utt

    def __reduce__(self):  # survives pickling between worker processes
        return (DataDirError, (self.file, self.line, self._message(), self.utt))

    def _message(self) -> str:
        text = str(self)
        where = f"{self.file}:{self.line}" if self.line is not None else str(self.file)
        who = f" (utterance {self.utt})" if self.utt else ""
        return text[len(where) + len(who) + 2:]


# torch.save / numpy writes that hit a full disk report it in their own words
_WRITE_FAILED = re.compile(r"unexpected pos|file write failed|PytorchStreamWriter failed|No space left", re.I)


def _free_bytes(path: Path) -> int | None:
    for p in (path, *path.parents):
        try:
            return shutil.disk_usage(p).free
        except OSError:
            continue
    return None


def os_error_message(err: BaseException, path: str | os.PathLike | None = None, action: str = "") -> str:
    """``file: what went wrong`` for an OSError (or a library's write error) about ``path``."""
    name = getattr(err, "filename", None) or path
    what = f"cannot {action}: " if action else ""
    if isinstance(err, OSError) and err.errno is not None:
        reason = err.strerror or os.strerror(err.errno)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            reason += " (the disk is full: free some space or write the output elsewhere)"
        elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            reason += " (check the permissions of the file and its directory)"
        elif err.errno == errno.EFBIG:
            reason += " (a file size limit was reached)"
    else:
        reason = str(err) or type(err).__name__
        if _WRITE_FAILED.search(reason) and path is not None:
            free = _free_bytes(Path(path))
            reason = "write failed" + (f" with {free} bytes free on the disk (disk full?)" if free is not None
                                       else " (disk full?)") + f" [{reason.strip().splitlines()[-1][:200]}]"
    return f"{name}: {what}{reason}" if name else f"{what}{reason}"


@contextlib.contextmanager
def reported(path: str | os.PathLike, action: str = "write") -> Iterator[None]:
    """Turn OSErrors (and torch's / numpy's "write failed" RuntimeErrors) raised inside the block into a
    :class:`UserFacingError` ``path: cannot <action>: <reason>``. Wrap the writes of one output with it."""
    try:
        yield
    except UserFacingError:
        raise
    except OSError as err:
        raise UserFacingError(os_error_message(err, path, action)) from None
    except RuntimeError as err:
        if _WRITE_FAILED.search(str(err)):
            raise UserFacingError(os_error_message(err, path, action)) from None
        raise
