"""Vectorised checks shared by the table readers (positions, collateral, exchange margin, history).

Each check looks at a whole column at once and raises :class:`~greeksmargin.errors.InputError` for the
first bad row, naming the file, the row, the column, the value and the allowed range. Column names are
checked for duplicates and for near-misses of the schema's names (``multipler`` for ``multiplier``): an
optional column with a typo would otherwise be silently replaced by its default.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.errors import InputError

__all__ = ["DATE_MAX", "DATE_MIN", "check_columns", "check_magnitude", "first_bad", "nearest_column"]

#: the range of dates pandas represents at nanosecond resolution
DATE_MIN = pd.Timestamp.min.tz_localize("UTC")
DATE_MAX = pd.Timestamp.max.tz_localize("UTC")
DATE_RANGE = f"allowed {DATE_MIN.date()} .. {DATE_MAX.date()}"

ErrorFn = Callable[[str, Any, "str | None"], InputError]


def first_bad(mask: Any, index: pd.Index) -> Any:
    """Label of the first True of ``mask`` in ``index`` (None when all False)."""
    m = np.asarray(mask, dtype=bool)
    return index[int(np.argmax(m))] if m.any() else None


def nearest_column(name: str, choices: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The schema column closest to ``name`` (case-insensitive), or None."""
    ch = list(choices)
    low = {c.lower(): c for c in ch}
    m = difflib.get_close_matches(str(name).strip().lower(), list(low), n=1, cutoff=cutoff)
    return low[m[0]] if m else None


def check_columns(
    columns: Sequence[Any],
    *,
    known: Sequence[str],
    required: Sequence[str],
    file: str,
    strict: bool = False,
) -> None:
    """Check a table's column names.

    Parameters
    ----------
    columns : sequence
        The column labels as read.
    known : sequence of str
        Every column of the schema.
    required : sequence of str
        Columns that must be present.
    file : str
        Source name for messages.
    strict : bool
        Refuse every unknown column (otherwise only those that look like a typo of an absent schema column).

    Raises
    ------
    InputError
        A duplicated column label, a missing required column (naming the near-miss found instead, if any),
        or an unknown column close to an absent schema column (``did you mean``).
    """
    labels = [str(c) for c in columns]
    seen: dict[str, int] = {}
    for i, c in enumerate(labels):
        if c in seen:
            raise InputError(f"duplicate column '{c}' (columns {seen[c] + 1} and {i + 1} of the header)", file=file,
                             column=c)
        seen[c] = i
    present = set(labels)
    unknown = [c for c in labels if c not in known]
    absent = [k for k in known if k not in present]
    for c in required:
        if c not in present:
            near = [u for u in unknown if nearest_column(u, [c])]
            hint = f"; found '{near[0]}' instead: a typo?" if near else ""
            raise InputError(f"missing column (a required column; required: {', '.join(required)}){hint}", file=file,
                             column=c)
    for u in unknown:
        sug = nearest_column(u, absent) or next(
            (k for k in absent if len(k) >= 4 and (k in u.lower() or u.lower() in k)), None)
        if sug is not None:
            raise InputError(f"unknown column '{u}' (did you mean '{sug}'? known: {', '.join(known)})", file=file,
                             column=u)
        if strict:
            raise InputError(f"unknown column '{u}' (known: {', '.join(known)})", file=file, column=u)


def check_magnitude(values: np.ndarray, index: pd.Index, column: str, error: ErrorFn, *, max_abs: float,
                    what: str = "") -> None:
    """Raise ``error`` for the first value that is not finite or larger than ``max_abs`` in magnitude.

    NaN is left to the caller (it may mean "not given"); ``inf`` and magnitudes above ``max_abs`` (which
    would overflow a square or a notional) are refused.
    """
    v = np.asarray(values, dtype=float)
    bad = np.isinf(v) | (np.abs(np.nan_to_num(v)) > max_abs)
    if bad.any():
        r = first_bad(bad, index)
        x = float(v[int(np.argmax(bad))])
        raise error(f"{what or column} out of range (got {x!r}; allowed |{column}| <= {max_abs:.0e})", r, column)

