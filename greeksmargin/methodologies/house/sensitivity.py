"""Sensitivity (Greeks) charges per risk unit.

With ``Delta`` the net delta per 1.00 relative move, ``Gamma`` the net second derivative w.r.t. the
relative move (``gamma S^2 size``), both in the margin currency, and a price shock ``h`` (relative)::

    delta charge = max(Delta, 0) h_down + max(-Delta, 0) h_up   (the shock in the losing direction)
    gamma charge = 0.5 max(-Gamma, 0) h^2          (net short gamma only)

Vega: each position's vega exposure ``e_i = vega_i x shock_i`` (vega per 1.00 vol times the vol shock of
its expiry, e.g. the (30/DTE)^p rule) is netted inside its expiry bucket ``b``; buckets then net partially
with the across-bucket netting fraction ``lambda`` (0 none, 1 full)::

    B_ub = sum_{i in unit u, bucket b} e_i
    vega charge_u = (1 - lambda) sum_b |B_ub| + lambda |sum_b B_ub|

**Revaluation** (``method = "revaluation"`` of ``[components.delta]`` / ``[components.gamma]`` /
``[components.vega]``): the exact quantities the Taylor charges approximate, from full revaluation with the
same kernel as the scan.

* Delta: with ``P_+ = P&L(+h_up)`` and ``P_- = P&L(-h_down)`` of the unit at its delta shocks (vol
  unchanged), the loss of the losing direction::

      delta charge = max(0, -P_+, -P_-)

  For a linear P&L ``D x`` this is the direction-aware Taylor charge; an option book's convexity enters
  as it is (a long-gamma book loses less than ``Delta x h`` on the move, a short-gamma book more). With
  the scan over the same range the charge is one of the scan's own points, so it only binds when its
  shocks are wider than the grid (or the grid is absent).

* Gamma: with ``P_+ = P&L(+m_up)`` and ``P_- = P&L(-m_down)`` of the unit (vol unchanged), the
  second-order (short-convexity) part of the P&L, the delta part eliminated::

      gamma charge = max(0, -(m_down P_+ + m_up P_-) / (m_up + m_down))

  For a quadratic P&L ``D x + 0.5 G x^2``: ``m_down P_+ + m_up P_- = 0.5 G m_up m_down (m_up + m_down)``,
  so the charge is ``0.5 max(-G, 0) m_up m_down`` (``0.5 max(-G, 0) h^2`` for a symmetric shock ``h``,
  the Taylor charge); beyond second order it is the convexity loss actually revalued.
* Vega: with ``U_ub`` / ``D_ub`` the P&L of unit ``u``'s bucket ``b`` with every vol of the bucket shocked
  up / down by the term-dependent shock (spot unchanged), netted inside the bucket by construction::

      L(U, D) = max(0, -U, -D)                       (the loss of the losing direction)
      vega charge_u = (1 - lambda) sum_b L(U_ub, D_ub) + lambda L(sum_b U_ub, sum_b D_ub)

  For a P&L linear in the vol this is the direction-aware Taylor charge (long vega charged by the
  fall, short by the rise); revaluation adds the volga (a long out-of-the-money option loses less than
  ``vega x fall``, and never more than its value).


Every charge is >= 0, positively homogeneous in the quantities and sub-additive (cross <= isolated).
"""

from __future__ import annotations

from typing import cast

import numpy as np
from numpy.typing import ArrayLike, NDArray

from greeksmargin.units import DAYS_PER_YEAR

__all__ = [
    "delta_charge",
    "delta_charge_revaluation",
    "expiry_bucket",
    "gamma_charge",
    "gamma_charge_revaluation",
    "vega_charge",
    "vega_charge_revaluation",
    "vega_loss",
]


def delta_charge(
    net_delta: ArrayLike, price_shock: ArrayLike, price_shock_up: ArrayLike | None = None
) -> NDArray[np.float64]:
    """Delta charge with the price shock of the losing direction; shapes broadcast (n_units,).

    Parameters
    ----------
    net_delta : array_like
        Net delta per 1.00 relative move, margin currency.
    price_shock : array_like
        Relative fall ``h_down`` (> 0) charged on a long net delta; with ``price_shock_up`` omitted the
        symmetric shock of both directions (``|net delta| x price_shock``).
    price_shock_up : array_like, optional
        Relative rise ``h_up`` charged on a short net delta.

    Returns
    -------
    ndarray
        ``max(Delta, 0) h_down + max(-Delta, 0) h_up`` (>= 0).
    """
    d = np.asarray(net_delta, dtype=float)
    down = np.asarray(price_shock, dtype=float)
    up = down if price_shock_up is None else np.asarray(price_shock_up, dtype=float)
    return np.maximum(d, 0.0) * down + np.maximum(-d, 0.0) * up


def delta_charge_revaluation(pnl_up: ArrayLike, pnl_down: ArrayLike) -> NDArray[np.float64]:
    """Loss of the losing direction at the delta shocks (module docstring); shapes broadcast (n_units,).

    Parameters
    ----------
    pnl_up, pnl_down : array_like
        P&L at the rise ``+h_up`` and at the fall ``-h_down`` (vol unchanged), margin currency.

    Returns
    -------
    ndarray
        ``max(0, -P_+, -P_-)`` (>= 0).
    """
    return vega_loss(pnl_up, pnl_down)


def gamma_charge(net_gamma: ArrayLike, price_shock: ArrayLike) -> NDArray[np.float64]:
    """``0.5 max(-net gamma, 0) shock^2`` (net short gamma only); shapes broadcast (n_units,)."""
    h = np.asarray(price_shock, dtype=float)
    return 0.5 * np.maximum(-np.asarray(net_gamma, dtype=float), 0.0) * h * h


def expiry_bucket(time_to_expiry: ArrayLike, bucket_days: ArrayLike) -> NDArray[np.intp]:
    """Expiry bucket index of each position.

    Parameters
    ----------
    time_to_expiry : array_like of shape (n,)
        Years (NaN for perpetual / spot: bucket 0).
    bucket_days : array_like of shape (n_edges,)
        Increasing upper edges in days; bucket ``j`` holds ``edge_{j-1} < DTE <= edge_j``, the last
        bucket everything beyond the last edge.

    Returns
    -------
    ndarray of shape (n,)
        Codes in ``0..n_edges``.
    """
    t = np.asarray(time_to_expiry, dtype=float)
    dte = np.where(np.isfinite(t), t * DAYS_PER_YEAR, 0.0)
    return np.searchsorted(np.asarray(bucket_days, dtype=float), dte, side="left").astype(np.intp)


def _bucket_sums(
    x: ArrayLike, unit: ArrayLike, bucket: ArrayLike, n_units: int, n_buckets: int
) -> NDArray[np.float64]:
    """Sum of ``x`` per (unit, expiry bucket), shape (n_units, n_buckets)."""
    key = np.asarray(unit, dtype=np.intp) * n_buckets + np.asarray(bucket, dtype=np.intp)
    # weighted bincount returns float64; numpy's stub types every bincount as intp
    b = cast(NDArray[np.float64], np.bincount(key, weights=np.asarray(x, dtype=float), minlength=n_units * n_buckets))
    return b.reshape(n_units, n_buckets)


def vega_charge(
    exposure: ArrayLike,
    unit: ArrayLike,
    bucket: ArrayLike,
    n_units: int,
    n_buckets: int,
    cross_bucket_netting: float,
    *,
    shock_up: ArrayLike | None = None,
    shock_down: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Vega charge per unit with netting inside buckets and partial netting across.

    Without ``shock_up`` / ``shock_down`` the exposures already include their shock and the charge is
    the module formula with ``|.|``. With them, ``exposure`` is the signed vega per unit of vol shock
    and each netted amount ``x`` (a bucket, or the sum across buckets) is charged in its losing
    direction, ``max(x, 0) shock_down_u + max(-x, 0) shock_up_u`` (long vega loses on a vol fall).

    Parameters
    ----------
    exposure : array_like of shape (n,)
        Signed vega exposure of each position (vega x vol shock), margin currency.
    unit : array_like of shape (n,)
        Unit code of each position (``0..n_units-1``).
    bucket : array_like of shape (n,)
        Bucket code of each position (``0..n_buckets-1``).
    n_units, n_buckets : int
        Numbers of units and buckets.
    cross_bucket_netting : float
        Fraction ``lambda`` in [0, 1].

    Returns
    -------
    ndarray of shape (n_units,)
        Charges (>= 0).
    """
    b = _bucket_sums(exposure, unit, bucket, n_units, n_buckets)
    lam = float(cross_bucket_netting)
    if shock_up is None and shock_down is None:
        return (1.0 - lam) * np.abs(b).sum(axis=1) + lam * np.abs(b.sum(axis=1))
    up = np.broadcast_to(np.asarray(1.0 if shock_up is None else shock_up, dtype=float), (n_units,))
    dn = np.broadcast_to(np.asarray(up if shock_down is None else shock_down, dtype=float), (n_units,))

    def side(x: NDArray[np.float64], u: NDArray[np.float64], d: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.maximum(x, 0.0) * d + np.maximum(-x, 0.0) * u

    within = side(b, up[:, None], dn[:, None]).sum(axis=1)
    return (1.0 - lam) * within + lam * side(b.sum(axis=1), up, dn)


def gamma_charge_revaluation(
    pnl_up: ArrayLike, pnl_down: ArrayLike, move_up: ArrayLike, move_down: ArrayLike
) -> NDArray[np.float64]:
    """Short-convexity loss from revalued P&L (module docstring); shapes broadcast (n_units,).

    Parameters
    ----------
    pnl_up, pnl_down : array_like
        P&L at the rise ``+m_up`` and at the fall ``-m_down`` (vol unchanged), margin currency.
    move_up, move_down : array_like
        ``m_up`` and ``m_down`` (relative, > 0).

    Returns
    -------
    ndarray
        ``max(0, -(m_down P_+ + m_up P_-) / (m_up + m_down))`` (>= 0).
    """
    pu = np.asarray(pnl_up, dtype=float)
    pd_ = np.asarray(pnl_down, dtype=float)
    u = np.asarray(move_up, dtype=float)
    d = np.asarray(move_down, dtype=float)
    return np.maximum(-(d * pu + u * pd_) / (u + d), 0.0)


def vega_charge_revaluation(
    pnl_up: ArrayLike,
    pnl_down: ArrayLike,
    unit: ArrayLike,
    bucket: ArrayLike,
    n_units: int,
    n_buckets: int,
    cross_bucket_netting: float,
) -> NDArray[np.float64]:
    """Vega charge per unit from revalued P&L with vols shocked up / down (module docstring).

    Parameters
    ----------
    pnl_up, pnl_down : array_like of shape (n,)
        P&L of each position with its vol shocked up / down (spot unchanged), margin currency.
    unit, bucket : array_like of shape (n,)
        Unit and expiry-bucket codes.
    n_units, n_buckets : int
        Numbers of units and buckets.
    cross_bucket_netting : float
        Fraction ``lambda`` in [0, 1].

    Returns
    -------
    ndarray of shape (n_units,)
        Charges (>= 0).
    """
    bu = _bucket_sums(pnl_up, unit, bucket, n_units, n_buckets)
    bd = _bucket_sums(pnl_down, unit, bucket, n_units, n_buckets)
    lam = float(cross_bucket_netting)
    within = vega_loss(bu, bd).sum(axis=1)
    return (1.0 - lam) * within + lam * vega_loss(bu.sum(axis=1), bd.sum(axis=1))


def vega_loss(pnl_up: ArrayLike, pnl_down: ArrayLike) -> NDArray[np.float64]:
    """``max(0, -U, -D)``: the loss of the losing vol direction (elementwise)."""
    return np.maximum(np.maximum(-np.asarray(pnl_up, dtype=float), -np.asarray(pnl_down, dtype=float)), 0.0)
