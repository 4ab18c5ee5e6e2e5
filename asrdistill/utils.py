"""Small shared helpers: logging, atomic file writes, completion markers."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def get_logger(name: str) -> logging.Logger:
    """A module logger; the CLI configures the root handler once."""
    return logging.getLogger(name)


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format=LOG_FORMAT,
                        datefmt="%H:%M:%S")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    Works for files and directories alike: whatever the block creates at the temporary path
    replaces ``path`` at the end, so a failure never leaves a half-written result behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    target = tmp / path.name
    try:
        yield target
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(target, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def is_done(directory: str | os.PathLike, name: str = ".done") -> bool:
    """True when ``directory`` holds a completion marker written by :func:`mark_done`."""
    return (Path(directory) / name).is_file()


def mark_done(directory: str | os.PathLike, name: str = ".done", info: dict | None = None) -> None:
    """Write the completion marker of ``directory`` (only call after the work fully succeeded)."""
    write_json_atomic(Path(directory) / name, info or {})


class JsonConfig:
    """Mixin for the toolkit's dataclass configs: one way to serialise them. ``from_dict`` refuses unknown keys
    (naming them and ``where`` the dict came from), so a typo or a file from another version is an error."""

    def to_dict(self) -> dict[str, Any]:
        import dataclasses

        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = ""):
        import dataclasses

        if not isinstance(d, dict):
            raise _config_error(f"{where + ': ' if where else ''}{cls.__name__} must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(d) - names)
        if unknown:
            raise _config_error(f"{where + ': ' if where else ''}unknown {cls.__name__} field(s): "
                                f"{', '.join(unknown)}")
        return cls(**d)


def _config_error(message: str) -> Exception:
    from asrdistill.errors import UserFacingError

    return UserFacingError(message)
