"""Output of the sub-commands: aligned text tables, JSON-ready records, writing to stdout or ``--out``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.reports import fmt


def significant(column: str, value: float) -> str:
    """One number of ``column`` by the package's rules (:func:`greeksmargin.reports.fmt.cell`); never scientific."""
    return fmt.cell(column, value)


#: ``--quiet``: no informational messages (set by :func:`greeksmargin.cli.main`)
QUIET = False

#: line width of tables printed to a terminal (None: no wrapping); set by :func:`greeksmargin.cli.main`
TERMINAL_WIDTH: int | None = None


def format_table(df: pd.DataFrame, number: Callable[[str, float], str] = significant) -> str:
    """Render a DataFrame as an aligned text table (:func:`greeksmargin.reports.fmt.format_table`).

    Parameters
    ----------
    df : DataFrame
        Rows to print; the index is not printed.
    number : callable, default :func:`significant`
        ``number(column, value) -> str`` for the non-missing values of numeric (non-bool) columns.

    Returns
    -------
    str
        Header, a dashed rule, one line per row; ends with a newline. In a terminal narrower than the table
        the columns are printed in blocks that repeat the key columns.
    """
    return fmt.format_table(df, number, width=TERMINAL_WIDTH)


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready records of ``df``: numpy scalars to Python, missing and non-finite numbers to ``None``."""
    clean = df.astype(object).where(df.notna(), None)
    out = []
    for rec in clean.to_dict(orient="records"):
        r = {}
        for k, v in rec.items():
            if isinstance(v, np.generic):
                v = v.item()
            if isinstance(v, float) and not np.isfinite(v):
                v = None
            r[k] = v
        out.append(r)
    return out


def render(df: pd.DataFrame, fmt: str, number: Callable[[str, float], str] = significant) -> str:
    """``df`` as ``"csv"``, ``"json"`` (a list of :func:`records`) or an aligned ``"table"`` (:func:`format_table`)."""
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return json.dumps(records(df), indent=1) + "\n"
    return format_table(df, number)


def emit(text: str, out: Path | None) -> None:
    """Print ``text`` (ending with a newline), or write it to ``out`` and say so."""
    if out is None:
        print(text, end="" if text.endswith("\n") else "\n")
    else:
        io.write_text(text, out)
        if not QUIET:
            print(f"wrote {out}", file=sys.stderr)
