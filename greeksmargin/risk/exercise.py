"""American exercise on the position arrays: which positions are American, and their values on the forward.

The book declares an option's exercise style in the positions' ``exercise`` column
(:mod:`greeksmargin.book.positions`); :func:`greeksmargin.risk.greeks.market_arrays` turns it into the
boolean position array ``american``. Every place that values an option from the position arrays (per-position
pricing, scenario revaluation, solvency revaluation, the SPAN adapter's risk arrays) branches on
:func:`american_mask`: None (no American option, or no ``american`` array) keeps the Black-76 code exactly
as it is, so a European book never reaches the American code.

An American option is valued by :func:`greeksmargin.pricing.american_price` (method :data:`AMERICAN_METHOD`,
Barone-Adesi-Whaley) on the generalised Black-Scholes-Merton model of its spot: with the position's forward
``F``, its forward ratio ``F/S`` (fixed under a scenario: every forward and the spot move by the same
factor), rate ``r`` and time ``T``::

    S = F / (F/S),      carry b = ln(F/S) / T,      dividend yield q = r - b

so that the European value of the same inputs is Black-76 on ``F`` (``F = S e^(bT)``). Its vol is floored at
:data:`AMERICAN_MIN_VOL` (the approximations need ``sigma > 0``; a scenario's shocked-down vol can reach 0
where a European option takes the zero-vol limit). Options at or past expiry (``T <= 0``) are worth their
intrinsic value ``max(w (S - K), 0)`` (``S = F`` there).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["AMERICAN_METHOD", "AMERICAN_MIN_VOL", "american_forward_price", "american_mask", "carry_dividend_yield"]

#: the American approximation the product uses (see :mod:`greeksmargin.pricing.american`)
AMERICAN_METHOD: Final = "baw"
#: floor of an American option's vol (decimal) in any valuation (the SPAN adapter's floor of a shocked vol)
AMERICAN_MIN_VOL = 1e-4


def american_mask(arrays: Mapping[str, Any], idx: Any = None) -> NDArray[np.bool_] | None:
    """The ``american`` flags of the position arrays (optionally at ``idx``), or None when there are none.

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays (:func:`greeksmargin.risk.greeks.market_arrays`); ``american`` is optional.
    idx : slice, index array or bool mask, optional
        Positions to return the flags of.

    Returns
    -------
    ndarray of bool or None
        The flags (shape of ``arrays[...][idx]``), or None when the array is absent or no selected position
        is American (the caller's European path then runs unchanged).
    """
    v = arrays.get("american") if hasattr(arrays, "get") else None
    if v is None:
        return None
    m = np.asarray(v, dtype=bool)
    if idx is not None:
        m = m[idx]
    return m if m.any() else None


def carry_dividend_yield(forward_ratio: ArrayLike, time_to_expiry: ArrayLike, rate: ArrayLike) -> NDArray[np.float64]:
    """Dividend yield ``q = r - ln(F/S) / T`` implied by a forward ratio (``r`` where ``T <= 0``).

    Parameters
    ----------
    forward_ratio : array_like
        ``F / S``.
    time_to_expiry : array_like
        ``T``, years.
    rate : array_like
        Continuous rate ``r``.

    Returns
    -------
    ndarray of float64
        ``q`` of the broadcast shape.
    """
    ratio = np.asarray(forward_ratio, dtype=float)
    t = np.asarray(time_to_expiry, dtype=float)
    r = np.asarray(rate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.where(t > 0.0, r - np.log(ratio) / np.where(t > 0.0, t, 1.0), r), dtype=np.float64)


def american_forward_price(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike,
    forward_ratio: ArrayLike,
) -> NDArray[np.float64]:
    """American option values from forward inputs (module docstring), broadcasting.

    Parameters
    ----------
    is_call : array_like of bool
        Calls (True) and puts.
    forward : array_like
        Forward of the option's expiry (possibly moved by a scenario), USD.
    strike : array_like
        Strike K > 0, USD.
    time_to_expiry : array_like
        T >= 0, years.
    vol : array_like
        Implied vol (decimal), floored at :data:`AMERICAN_MIN_VOL`.
    rate : array_like
        Continuous rate r.
    forward_ratio : array_like
        ``F / S`` of the unmoved market (the carry).

    Returns
    -------
    ndarray of float64
        Values (USD per unit of underlying) of the broadcast shape.

    Raises
    ------
    ComputationError
        From :func:`greeksmargin.pricing.american_price` (two-boundary negative-rate regime, no convergence);
        :func:`greeksmargin.risk.greeks.market_arrays` refuses the former at the boundary, naming the row.
    """
    from greeksmargin.pricing import american_price

    f, ratio = np.asarray(forward, dtype=float), np.asarray(forward_ratio, dtype=float)
    t, r = np.asarray(time_to_expiry, dtype=float), np.asarray(rate, dtype=float)
    q = carry_dividend_yield(ratio, t, r)
    s = np.where(t > 0.0, f / ratio, f)
    v = np.maximum(np.asarray(vol, dtype=float), AMERICAN_MIN_VOL)
    return american_price(np.asarray(is_call, dtype=bool), s, strike, np.maximum(t, 0.0), v, r, q,
                          method=AMERICAN_METHOD)
