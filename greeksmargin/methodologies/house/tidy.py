"""Tidy rows of rule components: ``(account, underlying, rule, component, amount, currency)``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = ["TIDY_COLUMNS", "component_rows"]

TIDY_COLUMNS = ["account", "underlying", "rule", "component", "amount", "currency"]


def component_rows(
    account: ArrayLike,
    underlying: ArrayLike,
    currency: ArrayLike,
    figures: Mapping[str, ArrayLike],
    rule_of: Mapping[str, str] | str,
    *,
    drop_non_finite: bool = True,
) -> pd.DataFrame:
    """One row per (group, figure).

    Parameters
    ----------
    account, underlying, currency : array_like of shape (n_groups,)
        Labels of each group (a unit, or an account with ``underlying = "ALL"``).
    figures : mapping of str -> array_like of shape (n_groups,)
        Component name -> amount per group.
    rule_of : mapping of str -> str, or str
        Rule family of each component (or one family for all).
    drop_non_finite : bool
        Drop rows whose amount is not finite (e.g. an absent cap, +inf).

    Returns
    -------
    DataFrame
        Columns :data:`TIDY_COLUMNS`, grouped by group then figure.
    """
    names = list(figures)
    acc = np.asarray(account, dtype=object)
    n = acc.size
    k = len(names)
    rules = [rule_of if isinstance(rule_of, str) else rule_of.get(c, c) for c in names]
    amount = np.column_stack([np.broadcast_to(np.asarray(figures[c], dtype=float), (n,)) for c in names]).ravel() \
        if k else np.zeros(0)
    each_group = np.repeat(np.arange(n), k)  # row -> its group
    each_figure = np.tile(np.arange(k), n)  # row -> its figure

    def labels(values: NDArray[Any], at: NDArray[np.intp]) -> pd.Series | NDArray[Any]:
        # the labels made a column once (n groups or k figures), then taken per row: the same values and
        # dtype as the repeated array, without converting every repeated string (no rows: the empty array)
        if n * k == 0:
            return np.asarray(values, dtype=object)[at]
        return pd.Series(values).take(at).reset_index(drop=True)

    df = pd.DataFrame({
        "account": labels(acc, each_group),
        "underlying": labels(np.broadcast_to(np.asarray(underlying, dtype=object), (n,)), each_group),
        "rule": labels(np.array(rules, dtype=object), each_figure),
        "component": labels(np.array(names, dtype=object), each_figure),
        "amount": amount,
        "currency": labels(np.broadcast_to(np.asarray(currency, dtype=object), (n,)), each_group),
    })
    if drop_non_finite:
        df = df[np.isfinite(df["amount"].to_numpy(dtype=float))].reset_index(drop=True)
    return df
