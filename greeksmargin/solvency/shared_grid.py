"""Equity and MM of every account at moves shared by all accounts, per contract (the distance's bracketing grid).

At a shared move every account sees the same market, so :func:`shared_gap` prices each contract once
(:mod:`greeksmargin.engine.shared_moves`) instead of every position: the figures of
:meth:`~greeksmargin.solvency.book.BookValuer.gap` (the margin function's batched engine run on the moved
inputs, :func:`~greeksmargin.solvency.margin_fn._batched_margin`; the positions' values), summed in another
order. Only for the cross margin of :func:`~greeksmargin.solvency.margin_fn.margin_function` and the models
and books :func:`~greeksmargin.engine.shared_moves.shared_move_evaluator` covers; otherwise None (the caller
evaluates with ``gap``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.solvency.margin_fn import _codes_of, _react

#: False: the distance's grid phase evaluates with :meth:`BookValuer.gap` (e.g. to compare)
ENABLED = True

SharedGap = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]]


def shared_gap(book: Any) -> SharedGap | None:
    """``mv -> (equity, mm)`` of every account of ``book`` at a shared move ``mv`` (shape (n_underlyings,)).

    Built once per book (kept on it). None when not covered: no positions, a margin function other than
    the engine's cross margin (:func:`~greeksmargin.solvency.margin_fn.margin_function`), or a model / book
    :func:`~greeksmargin.engine.shared_moves.shared_move_evaluator` does not cover (it says which).

    Returns
    -------
    callable or None
        ``f(mv) -> (equity, mm)``, each of shape (n_accounts,) in the accounts' margin currencies.
    """
    if not ENABLED:
        return None
    cache = book.__dict__
    if "_shared_gap" in cache:
        return cache["_shared_gap"]  # type: ignore[no-any-return]
    cache["_shared_gap"] = f = _build(book)
    return f


def _build(book: Any) -> SharedGap | None:
    from greeksmargin.engine.shared_moves import shared_move_evaluator

    model = getattr(book.margin_fn, "shared_model", None)
    if model is None or book.a is None or not len(book.positions):
        return None
    a = book.a
    acct = book.acct_code
    key = [book.u_code, book._vol_up, book._vol_range, book._pos_link, book._eng_link, book._acc_link[acct],
           book._same_ccy, book._pos_fx0, book._acc_fx0[acct]]
    ev = shared_move_evaluator(book.positions, book.market, model, a, key=key,
                               account_codes=_codes_of(book, None, "account"),
                               underlying_codes=_codes_of(book, None, "underlying"))
    if ev is None:
        return None
    rep = ev.rows
    size = np.asarray(a["size"], dtype=float)
    n_acc = len(book.accounts)
    kc, u_code = a["kind_code"][rep], book.u_code[rep]
    spot0, fwd0, vol0 = a["spot"][rep], a["forward"][rep], a["vol"][rep]
    vol_up, vol_range = book._vol_up[rep], book._vol_range[rep]
    pos_link, eng_link = book._pos_link[rep], book._eng_link[rep]
    index = ev.account_names

    def ratio(link: NDArray[np.intp], mv: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(link >= 0, 1.0 + mv[np.maximum(link, 0)], 1.0)

    def f(mv: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        mv = np.asarray(mv, dtype=float)
        pm = mv[u_code]
        g = 1.0 + pm
        moved = {"spot": spot0 * g, "forward": fwd0 * g, "vol": _react(vol0, kc, pm, vol_up, vol_range),
                 "size_scale": ratio(pos_link, mv) / ratio(eng_link, mv)}
        im, mm = ev.requirements(moved)
        margin = pd.DataFrame({"im": im, "mm": mm, "currency": ev.currency}, index=index)
        _, mm_acc, _, _ = book._margin_in_account_ccy(margin, mv, book.account_fx(mv))
        # each position's value as BookValuer.position_values (per unit of size x size), summed in its order
        per_unit = book.position_values(mv, rep, unit_size=True)
        mtm = np.bincount(acct, weights=per_unit[ev.row_of] * size, minlength=n_acc)
        return book.collateral_values(mv, "mm") + mtm, mm_acc

    return f
