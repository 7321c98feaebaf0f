"""Contingency charges, floors and caps, computed per position (then summed per unit by the caller).

All amounts are in the position's margin currency: ``unit_price`` is the price of one unit of underlying
in that currency (``S`` for linear positions, 1 for coin-settled ones, whose figures are in coin).

* short option minimum: ``rate x unit_price x |size|`` per short option;
* per-contract floor (TIMS, FINRA 4210(g)): ``per_contract x multiplier x |quantity|`` (USD, converted);
* roll / basis: ``B_e = sum size x unit_price x max(min_annual_move, annual_move x T)`` per expiry ``e``
  of the unit's futures / perpetuals (Deribit's portfolio-margin documentation, "probably"; T = 0 for perpetuals), then
  (:func:`roll_unit_charge`) scope ``"gross"``: ``sum_e |B_e|`` (every expiry's net exposure), scope
  ``"calendar"``: ``sum_e |B_e| - |sum_e B_e|``, the part of the exposure that offsets across expiries
  (a calendar spread pays as in ``"gross"``, an outright future or several same-direction expiries pay
  nothing: their price risk is already in the scan and the delta charge);
* long-premium cap: the value of the long options of a unit when the unit holds long options only
  (the most such a unit can lose), else +inf;
* exchange standard margin of an option (Deribit's standard-margin documentation), per contract::

      short call IM = max(im_base - OTM/S, im_min) + mark        MM = mm_base + mark
      short put  IM = max(max(im_base - OTM/S, im_min) + mark, MM)   MM = max(mm_base, mm_base x mark) + mark
      long       IM = mark if long_premium else 0                 MM = 0

  percentages x ``unit_price``; ``mark`` per unit in the margin currency;
* delta-one standard margin: ``rate x |size| x unit_price`` (IM and MM rates).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "contract_floor",
    "delta_one_margin",
    "long_premium_cap",
    "option_standard_margin",
    "roll_charge",
    "roll_unit_charge",
    "short_option_minimum",
]


def short_option_minimum(is_option: ArrayLike, size: ArrayLike, unit_price: ArrayLike, rate: float) -> NDArray:
    """Per position ``rate x unit_price x |size|`` for short options, 0 otherwise; shape (n,)."""
    sz = np.asarray(size, dtype=float)
    short = np.asarray(is_option, dtype=bool) & (sz < 0)
    return np.where(short, rate * np.asarray(unit_price, dtype=float) * np.abs(sz), 0.0)


def contract_floor(applies: ArrayLike, quantity: ArrayLike, multiplier: ArrayLike, per_contract: float) -> NDArray:
    """Per position ``per_contract x multiplier x |quantity|`` where ``applies``; shape (n,), currency of the rate."""
    q = np.abs(np.asarray(quantity, dtype=float)) * np.asarray(multiplier, dtype=float)
    return np.where(np.asarray(applies, dtype=bool), per_contract * q, 0.0)


def roll_charge(
    applies: ArrayLike,
    size: ArrayLike,
    unit_price: ArrayLike,
    time_to_expiry: ArrayLike,
    min_annual_move: float,
    annual_move: float,
) -> NDArray:
    """Per position ``|size| unit_price max(min_annual_move, annual_move T)`` where ``applies``; shape (n,)."""
    t = np.nan_to_num(np.asarray(time_to_expiry, dtype=float), nan=0.0)
    move = np.maximum(min_annual_move, annual_move * t)
    amt = np.abs(np.asarray(size, dtype=float)) * np.asarray(unit_price, dtype=float) * move
    return np.where(np.asarray(applies, dtype=bool), amt, 0.0)


def roll_unit_charge(by_expiry: ArrayLike, scope: str = "gross") -> NDArray:
    """Roll charge per unit from its signed per-expiry exposures.

    Parameters
    ----------
    by_expiry : array_like of shape (n_units, n_expiries)
        ``B_e``: signed roll exposure of each unit in each expiry (margin currency).
    scope : {"gross", "calendar"}
        ``"gross"``: ``sum_e |B_e|``; ``"calendar"``: ``sum_e |B_e| - |sum_e B_e|`` (only exposure that
        offsets across expiries; 0 for an outright position).

    Returns
    -------
    ndarray of shape (n_units,)
        Charges (>= 0).
    """
    b = np.atleast_2d(np.asarray(by_expiry, dtype=float))
    gross = np.abs(b).sum(axis=1)
    if scope == "gross":
        return gross
    if scope == "calendar":
        return np.maximum(gross - np.abs(b.sum(axis=1)), 0.0)
    raise ValueError(f"roll scope must be 'gross' or 'calendar', got {scope!r}")


def long_premium_cap(long_option_value: ArrayLike, is_long_option: ArrayLike) -> tuple[NDArray, NDArray]:
    """Per position pieces of the long-premium cap.

    Returns
    -------
    value : ndarray of shape (n,)
        Value of each long option (0 for other positions); sum per unit gives the cap.
    other : ndarray of shape (n,)
        1 for a position that is not a long option (a unit with any such position has no cap).
    """
    lo = np.asarray(is_long_option, dtype=bool)
    return np.where(lo, np.asarray(long_option_value, dtype=float), 0.0), (~lo).astype(float)


def option_standard_margin(
    is_option: ArrayLike,
    is_call: ArrayLike,
    size: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    mark: ArrayLike,
    unit_price: ArrayLike,
    *,
    im_base: float,
    im_min: float,
    mm_base: float,
    long_premium: bool,
) -> tuple[NDArray, NDArray]:
    """Exchange standard (isolated) margin of each option position (Deribit rule, module docstring).

    Parameters
    ----------
    is_option, is_call : array_like of bool, shape (n,)
        Kind flags.
    size : array_like of shape (n,)
        Signed units of underlying (quantity x multiplier).
    spot, strike : array_like of shape (n,)
        USD.
    mark : array_like of shape (n,)
        Option value per unit of underlying in the margin currency (coin for inverse).
    unit_price : array_like of shape (n,)
        ``S`` (linear) or 1 (coin).
    im_base, im_min, mm_base : float
        0.15, 0.10, 0.075 at Deribit.
    long_premium : bool
        Charge the mark of long options as IM (premium paid).

    Returns
    -------
    im, mm : ndarray of shape (n,)
        Per position amounts (0 for non-options), margin currency.
    """
    opt = np.asarray(is_option, dtype=bool)
    call = np.asarray(is_call, dtype=bool)
    sz = np.asarray(size, dtype=float)
    s = np.asarray(spot, dtype=float)
    k = np.asarray(strike, dtype=float)
    mk = np.asarray(mark, dtype=float)
    up = np.asarray(unit_price, dtype=float)
    otm = np.where(call, np.maximum(k - s, 0.0), np.maximum(s - k, 0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = np.maximum(im_base - otm / s, im_min)
    mm_call = mm_base * up + mk
    mm_put = np.maximum(mm_base * up, mm_base * mk) + mk
    im_call = pct * up + mk
    im_put = np.maximum(pct * up + mk, mm_put)
    short_im = np.where(call, im_call, im_put)
    short_mm = np.where(call, mm_call, mm_put)
    n = np.abs(sz)
    im = np.where(opt & (sz < 0), short_im * n, np.where(opt & long_premium, mk * n, 0.0))
    mm = np.where(opt & (sz < 0), short_mm * n, 0.0)
    return np.nan_to_num(im), np.nan_to_num(mm)


def delta_one_margin(
    applies: ArrayLike, size: ArrayLike, unit_price: ArrayLike, im_rate: float, mm_rate: float
) -> tuple[NDArray, NDArray]:
    """IM and MM ``rate x |size| x unit_price`` of delta-one positions where ``applies``; shapes (n,)."""
    a = np.asarray(applies, dtype=bool)
    base = np.abs(np.asarray(size, dtype=float)) * np.asarray(unit_price, dtype=float)
    return np.where(a, im_rate * base, 0.0), np.where(a, mm_rate * base, 0.0)
