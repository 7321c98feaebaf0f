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
#: grid moves evaluated together by the distance search (one layout of that many copies of the book)
BATCH = 4

SharedGap = Callable[[NDArray[np.float64]], tuple[NDArray[np.float64], NDArray[np.float64]]]


def shared_gap(book: Any) -> SharedGap | None:
    """``mv -> (equity, mm)`` of every account of ``book`` at shared moves ``mv``.

    ``mv``: shape (n_underlyings,), or (k, n_underlyings) for k moves (then shapes (k, n_accounts)).

    Built once per book (kept on it). None when not covered: no positions, a margin function other than
    the engine's cross margin (:func:`~greeksmargin.solvency.margin_fn.margin_function`), or a model / book
    :func:`~greeksmargin.engine.shared_moves.shared_move_evaluator` does not cover (it says which).

    Returns
    -------
    callable or None
        ``f(mv) -> (equity, mm)``, each of shape (n_accounts,) (or (k, n_accounts)) in the accounts' margin
        currencies.
    """
    if not ENABLED:
        return None
    cache = book.__dict__
    if "_shared_gap" in cache:
        return cache["_shared_gap"]
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
    # the engine's accounts (sorted, those with positions) in the book's order; an account without
    # positions needs no margin (BookValuer._margin_in_account_ccy: absent -> 0)
    at = ev.account_names.get_indexer(pd.Index(book.accounts))
    present = at >= 0
    m_ccy = np.where(present, ev.currency[np.maximum(at, 0)], "").astype(object)

    def ratio(link: NDArray[np.intp], mv: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.where(link >= 0, 1.0 + mv[:, np.maximum(link, 0)], 1.0)

    def f(mv: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        mv = np.asarray(mv, dtype=float)
        one = mv.ndim == 1
        M = np.atleast_2d(mv)
        k = M.shape[0]
        pm = M[:, u_code]
        g = 1.0 + pm
        shape = pm.shape
        vol = _react(np.broadcast_to(vol0, shape), np.broadcast_to(kc, shape), pm, np.broadcast_to(vol_up, shape),
                     np.broadcast_to(vol_range, shape))
        moved = {"spot": spot0 * g, "forward": fwd0 * g, "vol": vol,
                 "size_scale": ratio(pos_link, M) / ratio(eng_link, M)}
        _, mm_k = ev.requirements(moved)  # the k moves as one book of k copies
        eq_out = np.empty((k, n_acc))
        mm_out = np.empty((k, n_acc))
        for j in range(k):
            m = M[j]
            mm_j = mm_k[j]
            # the engine's MM in the account's currency (BookValuer._margin_in_account_ccy)
            m_fx = book.ccy_fx(m_ccy, m)
            conv = np.where(np.isfinite(m_fx), m_fx / book.account_fx(m), 1.0)
            mm_out[j] = np.where(present, mm_j[np.maximum(at, 0)], 0.0) * conv
            # each position's value as BookValuer.position_values (per unit of size x size), in its order
            per_unit = book.position_values(m, rep, unit_size=True)
            mtm = np.bincount(acct, weights=per_unit[ev.row_of] * size, minlength=n_acc)
            eq_out[j] = book.collateral_values(m, "mm") + mtm
        return (eq_out[0], mm_out[0]) if one else (eq_out, mm_out)

    return f
