"""CLI subcommands, one module each; every module defines ``register(subparsers)``."""

from asrdistill.errors import UserFacingError


def named_values(items: list[str], option: str, value_name: str) -> dict[str, str]:
    """Parse repeated ``NAME=VALUE`` options (e.g. ``--split train=DIR``) into a dict; bad items are errors."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UserFacingError(f"{option} expects NAME={value_name}, got {item!r}")
        out[name] = value
    return out
