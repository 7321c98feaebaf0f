"""Output of the sub-commands: aligned text tables, JSON-ready records, writing to stdout or ``--out``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io


def significant(column: str, value: float) -> str:
    """6 significant digits, whole units from 1e5, thousands separators (``column`` is not used)."""
    if abs(value) < 1e5:
        return f"{value:,.6g}"
    return f"{value:,.0f}" if abs(value) < 1e15 else f"{value:.4g}"


def format_table(df: pd.DataFrame, number: Callable[[str, float], str] = significant) -> str:
    """Render a DataFrame as an aligned text table.

    Parameters
    ----------
    df : DataFrame
        Rows to print; the index is not printed.
    number : callable, default :func:`significant`
        ``number(column, value) -> str`` for the non-missing values of numeric (non-bool) columns; these are
        right-aligned, the other columns left-aligned. Missing values print as empty cells.

    Returns
    -------
    str
        Header, a dashed rule, one line per row; ends with a newline.
    """
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    cells: list[list[str]] = []
    for row in df.itertuples(index=False):
        line = []
        for c, v, is_num in zip(df.columns, row, numeric):
            if is_num:
                line.append("" if pd.isna(v) else number(str(c), v))
            else:
                line.append("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        cells.append(line)
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(df.columns)]

    def fmt(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric)).rstrip()

    lines = [fmt([str(c) for c in df.columns]), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines) + "\n"


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
        print(f"wrote {out}")
