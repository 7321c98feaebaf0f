"""The one post-condition of every margin result, native engine and book adapters alike.

A *computed* account has finite IM and MM with ``0 <= MM <= IM``. An account row that says ``computed``
(or has no status) but breaks this becomes ``status = "not_computed"`` with the reason and NaN figures: a
NaN, an infinity, a negative MM or an MM above IM is never shown as a margin (nor, downstream, as a
``healthy`` solvency status).

The comparison ``MM <= IM`` allows the rounding of a product computed in floating point:
``MM <= IM + 1e-12 x max(1, |IM|)`` (an ``mm_factor`` of 1 gives MM = IM to the last bit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["RTOL", "enforce"]

#: relative slack of ``MM <= IM`` (floating-point rounding of MM = factor x IM)
RTOL = 1e-12


def enforce(accounts: pd.DataFrame) -> pd.DataFrame:
    """Apply the post-condition to an accounts table in place; returns it.

    Parameters
    ----------
    accounts : DataFrame
        ``account, im, mm`` and optionally ``status``, ``reason``, ``error`` (one row per account).

    Returns
    -------
    DataFrame
        The same object: ``status`` (added as ``computed`` / ``error`` when absent) and ``reason`` set on
        rows that break the post-condition, their ``im``, ``mm`` (and ``isolated_im``, ``saving``,
        ``saving_pct`` when present) set to NaN.
    """
    acc = accounts
    if len(acc) == 0 or "im" not in acc.columns or "mm" not in acc.columns:
        return acc
    err = acc["error"].notna() & (acc["error"].astype(str) != "") if "error" in acc.columns else \
        pd.Series(False, index=acc.index)
    if "status" not in acc.columns:
        acc["status"] = np.where(err, "error", "computed")
    if "reason" not in acc.columns:
        acc["reason"] = np.where(err, acc["error"] if "error" in acc.columns else None, None)
    im = pd.to_numeric(acc["im"], errors="coerce").to_numpy(dtype=float)
    mm = pd.to_numeric(acc["mm"], errors="coerce").to_numpy(dtype=float)
    computed = (acc["status"].astype(str) == "computed").to_numpy() & ~err.to_numpy()
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(im) & np.isfinite(mm)
        ordered = (mm >= 0) & (mm <= im + RTOL * np.maximum(1.0, np.abs(im)))
    bad = computed & ~(finite & ordered)
    if not bad.any():
        return acc
    reasons = []
    for i in np.flatnonzero(bad):
        if not np.isfinite(im[i]) or not np.isfinite(mm[i]):
            reasons.append(f"post-condition: IM {im[i]!r} / MM {mm[i]!r} not finite")
        elif mm[i] < 0:
            reasons.append(f"post-condition: MM {mm[i]!r} is negative")
        else:
            reasons.append(f"post-condition: MM {mm[i]!r} above IM {im[i]!r}")
    rows = acc.index[bad]
    acc["status"] = acc["status"].astype(object)
    acc["reason"] = acc["reason"].astype(object)
    acc.loc[rows, "status"] = "not_computed"
    acc.loc[rows, "reason"] = reasons
    for c in ("im", "mm", "isolated_im", "saving", "saving_pct"):
        if c in acc.columns:
            acc.loc[rows, c] = np.nan
    return acc
