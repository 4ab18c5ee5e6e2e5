"""CLI subcommands, one module each; every module defines ``register(subparsers)``.

Conventions shared by every command (also in ``asrdistill --help``):

* directories: inputs come first as named options or positionals in pipeline order, the output dir is
  ``--out`` (or the last positional of the Kaldi-style GMM commands); a command never writes outside it;
* several models: ``--model`` repeated (or one ensemble dir), in every command that scores models;
* finished work: every output dir holds a completion record (``.done``) with the fingerprint of the options and
  inputs it was made from; a rerun with the same fingerprint is skipped, with another one it is redone (see
  :mod:`asrdistill.experiment.step`).
"""
from __future__ import annotations

import argparse
from typing import Any, Mapping

from asrdistill.errors import UserFacingError

#: Options that never change a result, left out of every step's fingerprint (jobs, threads, device, logging,
#: the security opt-in for pipes).
NON_SEMANTIC = frozenset({"func", "command", "verbose", "nj", "threads", "device", "no_progress", "no_resume",
                          "allow_pipes", "no_tensorboard", "executor", "scheduler"})
#: Options added after experiments were made, with the value that behaves as before they existed: at that
#: value they stay out of the fingerprint, so finished work is not redone for an option it never used.
LATER_OPTIONS = {"keep_lr_epochs": 0}


def named_values(items: list[str], option: str, value_name: str) -> dict[str, str]:
    """Parse repeated ``NAME=VALUE`` options (e.g. ``--split train=DIR``) into a dict; bad items are errors."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise UserFacingError(f"{option} expects NAME={value_name}, got {item!r}")
        out[name] = value
    return out


def command_step(args: argparse.Namespace, step: str, out: str, inputs: Mapping[str, Any],
                 exclude: tuple[str, ...] = (), options: Mapping[str, Any] | None = None):
    """The :class:`~asrdistill.experiment.step.Step` of a command writing ``out``.

    ``inputs`` maps names to paths (a list becomes ``name.0``, ``name.1``, ...; None is left out). The
    options are every parsed argument except the inputs, ``exclude`` and :data:`NON_SEMANTIC`, unless
    ``options`` are given explicitly.
    """
    from asrdistill.experiment.step import Step

    flat: dict[str, Any] = {}
    for name, value in inputs.items():
        if isinstance(value, (list, tuple)):
            flat.update({f"{name}.{i}": v for i, v in enumerate(value)})
        elif value is not None:
            flat[name] = value
    if options is None:
        skip = NON_SEMANTIC | set(inputs) | set(exclude)
        options = {k: v for k, v in vars(args).items() if k not in skip and not callable(v)
                   and not (k in LATER_OPTIONS and v == LATER_OPTIONS[k])}
    return Step(out, step, options, flat)
