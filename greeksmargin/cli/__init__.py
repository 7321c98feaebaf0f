"""The ``greeksmargin`` command line: a thin layer over the library.

Each sub-command lives in a module of this package exposing ``register(subparsers)``; it parses
arguments, calls the library and writes the output. Exit codes: 0 done, 2 unusable arguments or files.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from collections.abc import Sequence

from greeksmargin import io
from greeksmargin._version import __version__
from greeksmargin.cli import _output, _progress
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


#: help of arguments a command module registered without one, by destination name
FALLBACK_HELP = {
    "positions": "positions table (.csv or .parquet)",
    "market": "market snapshot (.json or .toml)",
    "model": "margin model: a .toml file, a name found in the working folder (./NAME.toml, ./models/NAME.toml) "
             "or a shipped model name",
    "format": "output format",
    "out": "write to this file instead of standard output",
    "history": "price history: sp500, btc, or a CSV/Parquet file with date, price[, vol]",
    "start": "first date used (ISO)",
    "end": "last date used (ISO)",
    "html": "write an HTML report to this file",
    "html_out": "write an HTML report to this file",
    "confidence": "confidence level of the price and vol shocks",
    "method": "hs: plain historical simulation; fhs: filtered (EWMA-devolatilised) historical simulation",
    "stress_weight": "weight of the stressed-period quantile floor",
    "refit": "how often the walk-forward refits the shocks",
    "margin": "engine: the full margin engine; stress-grid: the scan only (faster)",
    "no_progress": "do not show the progress bar",
}

#: the real default and choices of ``--format`` per command (``--format`` itself defaults to None so that
#: the extension of ``--out`` can choose; a conflict is an error)
FORMAT_DEFAULTS: dict[str, tuple[str, tuple[str, ...]]] = {}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Help text with every argument's default shown (unless the help already states it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default is argparse.SUPPRESS:
            return text
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
                               argparse._VersionAction, argparse._CountAction)):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text  # a required positional has no default
        if action.required:
            return text + " (required)"
        if action.default is None or (isinstance(action.default, (list, str)) and not action.default):
            return text + " (default: none)"
        return text + " (default: %(default)s)"


def _finish(sub: argparse._SubParsersAction) -> None:
    """Give every sub-command the shared conventions: defaults in help, --quiet, --format chosen by --out."""
    for name, p in sub.choices.items():
        p.formatter_class = HelpFormatter
        dests = {a.dest: a for a in p._actions}
        for a in p._actions:
            if not a.help and not isinstance(a, argparse._HelpAction):
                a.help = FALLBACK_HELP.get(a.dest, a.dest.replace("_", " "))
        if "quiet" not in dests:
            p.add_argument("-q", "--quiet", action="store_true",
                           help="no progress, no informational messages on stderr (errors still print)")
        fmt, out = dests.get("format"), dests.get("out")
        if fmt is not None and out is not None and fmt.choices and fmt.default is not None:
            FORMAT_DEFAULTS[name] = (str(fmt.default), tuple(fmt.choices))
            fmt.help = (f"{fmt.help}; default {fmt.default}, or the one the extension of --out names "
                        "(.csv, .json, .html, .txt, .parquet where offered); a --format that contradicts it is "
                        "an error")
            fmt.default = None


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available sub-command."""
    parser = argparse.ArgumentParser(
        prog="greeksmargin",
        description="Options-aware, Greeks-based cross-margin: Greeks, margin, validation, solvency, calibration.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"greeksmargin {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", dest="global_quiet",
                        help="no progress, no informational messages on stderr (errors still print)")
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
    _finish(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    quiet = bool(getattr(args, "global_quiet", False) or getattr(args, "quiet", False))
    _progress.QUIET = quiet
    _output.QUIET = quiet
    _output.TERMINAL_WIDTH = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
    try:
        if args.command in FORMAT_DEFAULTS:
            default, choices = FORMAT_DEFAULTS[args.command]
            args.format = io.output_format(getattr(args, "out", None), args.format, choices, default)
        return int(args.func(args) or 0)
    except GreeksMarginError as exc:
        print(f"greeksmargin {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `greeksmargin margin ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
