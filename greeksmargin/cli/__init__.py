"""The ``greeksmargin`` command line: a thin layer over the library.

Each sub-command lives in a module of this package exposing ``register(subparsers)``; it parses
arguments, calls the library and writes the output. Exit codes: 0 done, 2 unusable arguments or files.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from greeksmargin.errors import GreeksMarginError

#: sub-command modules, in the order ``--help`` lists them
COMMAND_MODULES = (
    "demo",
    "greeks",
    "margin",
    "compare",
    "validate",
    "solvency",
    "calibration",
    "simm",
    "importer",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="greeksmargin",
        description="Options-aware, Greeks-based cross-margin: Greeks, margin, validation, solvency, calibration.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:  # a command module not written yet
            if exc.name == f"{__name__}.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GreeksMarginError as exc:
        print(f"greeksmargin {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `greeksmargin margin ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
