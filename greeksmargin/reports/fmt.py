"""Number formatting for every text table and HTML page: one set of rules, never scientific notation.

Rules (a risk manager's reading, one place):

* **amounts** (USD, coin, any money column): thousands separators; whole units from 1,000; two decimals
  from 1; below 1, four significant digits in fixed notation (``0.001234`` BTC), at most 8 decimals (a
  residue such as ``1.3e-19`` prints ``0.00``);
* **relative moves** (``move``, ``shock``, ``impact``, ``distance``, ... stored as fractions): percent with a
  sign, two decimals (``-25.00%``); **percent columns** (``*_pct``, already in percent): ``12.34%``;
* **ratios** (``margin_ratio``, ``ratio``, Kupiec ``p``-values): 4 decimals, fixed notation (``< 0.0001``);
* **counts** (integers): thousands separators;
* missing: empty; infinite: ``inf`` / ``-inf``.

:func:`unit_of` infers the unit from a column name; :func:`cell` formats one value; :func:`format_table`
renders an aligned text table and, given a width, wraps a wide one into blocks that repeat the key
columns. Imported by ``reports/`` and by ``cli/`` (above ``reports/`` in the layers).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["amount", "cell", "format_table", "percent", "ratio", "tick", "unit_of"]

#: column-name pieces of relative moves stored as fractions (printed as percent)
_MOVE_WORDS = ("move", "impact", "distance", "bound", "return", "drawdown", "loss_frac")
#: shocks stored as fractions (calibration, cascade); other ``*_shock`` columns are margin amounts (Deribit PM)
_SHOCK_FRACTION = ("price_shock", "vol_shock", "vega_shock", "initial_shock")
#: column-name pieces of ratios and probabilities
_RATIO_WORDS = ("ratio", "p_value", "pvalue", "kupiec", "christoffersen", "confidence", "lambda", "coverage",
                "weight", "factor", "haircut")


def _finite(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x


def amount(value: float) -> str:
    """A money amount (any currency): separators, decimals by size, fixed notation.

    Parameters
    ----------
    value : float
        The amount.

    Returns
    -------
    str
        ``"5,228,649"``, ``"12.35"``, ``"0.001234"``, ``"0.00"``.
    """
    x = float(value)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a < 1e-8:
        return "0.00"  # also -0.0 and numerical residues
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:,.2f}"
    decimals = min(8, 3 - math.floor(math.log10(a)))
    return f"{x:,.{decimals}f}"


def percent(value: float, *, fraction: bool = True, signed: bool = True) -> str:
    """A percentage with two decimals (``fraction``: the value is a fraction, 0.25 -> ``+25.00%``)."""
    x = float(value)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    x = 100.0 * x if fraction else x
    if abs(x) < 5e-9:
        x = 0.0
    return f"{x:+,.2f}%" if signed else f"{x:,.2f}%"


def ratio(value: float) -> str:
    """A ratio or probability: 4 decimals, fixed notation (``< 0.0001`` below; p-values of 1e-13 included)."""
    x = float(value)
    if math.isnan(x):
        return ""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if 0 < a < 1e-4:
        return "< 0.0001" if x > 0 else "> -0.0001"
    return f"{x:.4f}"


def unit_of(column: str) -> str:
    """The unit of a column from its name: ``"percent"``, ``"move"``, ``"ratio"``, ``"count"`` or ``"amount"``."""
    c = str(column).lower()
    if c.endswith("_pct") or c.endswith("pct") or c == "pct" or "percent" in c:
        return "percent"
    if c.startswith("n_") or c in {"rounds", "units", "round", "n", "count", "days", "breaches", "positions",
                                   "accounts"} or c.startswith(("units_", "accounts_", "breaches")):
        return "count"
    if (any(w in c for w in _MOVE_WORDS) or c.startswith(_SHOCK_FRACTION) or c == "shock") \
            and not c.endswith(("_usd", "price")):
        return "move"
    if (any(w in c for w in _RATIO_WORDS) or c.endswith("_p") or "_p_" in c) and not c.endswith("_usd"):
        return "ratio"
    return "amount"


def cell(column: str, value: Any) -> str:
    """One numeric cell of ``column`` by :func:`unit_of` (integers of any column print as counts)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,d}"
    x = _finite(value)
    if x is None:
        return str(value)
    if math.isnan(x):
        return ""
    unit = unit_of(column)
    if unit == "percent":
        return percent(x, fraction=False, signed=False)
    if unit == "move":  # a magnitude (``price_shock_down``, ``bound``) has no "+"; a signed move has
        c = str(column).lower()
        return percent(x, signed=not any(w in c for w in ("shock", "bound", "distance")))
    if unit == "count" and x == int(x):
        return f"{int(x):,d}"
    if unit == "ratio":
        return ratio(x)
    return amount(x)


def format_table(df: pd.DataFrame, number: Callable[[str, float], str] | None = None, *,
                 width: int | None = None, keys: Sequence[str] | None = None) -> str:
    """Render a DataFrame as an aligned text table.

    Parameters
    ----------
    df : DataFrame
        Rows to print; the index is not printed.
    number : callable, optional
        ``number(column, value) -> str`` for the non-missing values of numeric (non-bool) columns (default
        :func:`cell`); these are right-aligned, the other columns left-aligned. Missing values are empty.
    width : int, optional
        Maximum line width (e.g. the terminal's). A wider table is printed as blocks of columns, each
        repeating the key columns. None: no limit.
    keys : sequence of str, optional
        Columns repeated in every block (default: the leading non-numeric columns, at most 2).

    Returns
    -------
    str
        Header, a dashed rule, one line per row (per block); ends with a newline.
    """
    fmt_num = number or cell
    cols = list(df.columns)
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in cols]
    body: list[list[str]] = []
    for row in df.itertuples(index=False):
        line = []
        for c, v, is_num in zip(cols, row, numeric):
            if is_num:
                line.append("" if pd.isna(v) else fmt_num(str(c), v))
            else:
                line.append("" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
        body.append(line)
    widths = [max([len(str(c))] + [len(r[i]) for r in body]) for i, c in enumerate(cols)]

    def render(idx: list[int]) -> str:
        def fmt(vals: list[str]) -> str:
            return "  ".join(vals[i].rjust(widths[i]) if numeric[i] else vals[i].ljust(widths[i])
                             for i in idx).rstrip()

        lines = [fmt([str(c) for c in cols]), fmt(["-" * w for w in widths])]
        lines += [fmt(r) for r in body]
        return "\n".join(lines) + "\n"

    every = list(range(len(cols)))
    total = sum(widths) + 2 * max(len(cols) - 1, 0)
    if width is None or total <= width or len(cols) < 2:
        return render(every)
    if keys is None:
        key_idx: list[int] = []
        for i in every:
            if numeric[i] or len(key_idx) >= 2:
                break
            key_idx.append(i)
    else:
        key_idx = [cols.index(k) for k in keys if k in cols]
    key_w = sum(widths[i] + 2 for i in key_idx)
    blocks: list[list[int]] = []
    cur: list[int] = []
    used = key_w
    for i in every:
        if i in key_idx:
            continue
        if cur and used + widths[i] + 2 > width:
            blocks.append(cur)
            cur, used = [], key_w
        cur.append(i)
        used += widths[i] + 2
    if cur:
        blocks.append(cur)
    parts = [render(key_idx + b) for b in blocks]
    return "\n".join(parts)


def tick(value: float, _pos: Any = None) -> str:
    """An axis tick label: separators from 1,000, plain decimals below, never an offset or scientific notation."""
    x = float(value)
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return np.format_float_positional(round(x, 10), trim="-")
