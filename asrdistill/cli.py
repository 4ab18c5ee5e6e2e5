"""Command-line entry point: ``asrdistill <command> [options]``.

Each command lives in its own module under :mod:`asrdistill.commands` and exposes
``register(subparsers)``; the command's handler imports heavy libraries lazily so that
``asrdistill --help`` stays fast. This layer only parses options and calls library functions.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from asrdistill import __version__, commands
from asrdistill.errors import UserFacingError
from asrdistill.utils import setup_logging


CONVENTIONS = """conventions of every command:
  directories   inputs first, in pipeline order; the output dir is --out (the Kaldi-style GMM commands
                take positional dirs, the output last); nothing is written outside it
  models        several models are --model (or --teacher, --dnn) repeated, or one ensemble dir
  finished work an output dir holds a completion record (.done) with the fingerprint of the options and
                inputs it was made from: the same command again is skipped (SKIPPING), a changed option or
                input redoes it and says what changed; downstream dirs are redone when they next run
  data files    commands in scp files ('cmd |') run only with --allow-pipes
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asrdistill", description=__doc__.splitlines()[0],
                                     epilog=CONVENTIONS, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"asrdistill {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        if hasattr(module, "register"):  # helper modules (shared options) register nothing
            module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        return 130
    except UserFacingError as err:  # a clear one-line message, no traceback
        print(f"asrdistill {args.command}: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # disk full, permissions, ...: `file: what went wrong`, no traceback
        from asrdistill.errors import os_error_message

        print(f"asrdistill {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 1
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
