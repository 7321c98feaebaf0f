"""Implied volatility, vectorised: safeguarded Newton on the out-of-the-money time value.

Method. The discounted price is turned into the undiscounted time value ``tv = price / exp(-rT) -
intrinsic``, which by put-call parity is the undiscounted price of the out-of-the-money option of the
same strike (no cancellation from converting deep in-the-money prices). With total vol ``s = sigma sqrt T``
and ``x = ln(F/K)``, ``b(s)`` (the OTM Black price) is convex below ``s_c = sqrt(2|x|)`` and concave above.
Newton starts at ``s_c`` (Brenner-Subrahmanyam ``sqrt(2 pi) tv / F`` at the money); below the inflection
value it iterates on ``ln b(s) - ln tv`` (the convex, tiny-price wing), above it on ``b(s) - tv``. Every
iterate updates a bracket that starts at sigma in ``[1e-6, 10]``; a step leaving the bracket is replaced
by bisection, so each option converges; iterations stop at a relative step of 1e-15 (at most 100).

Reasons (``""`` when solved): ``"invalid input"`` (NaN, forward/strike <= 0), ``"non-positive time"``,
``"below intrinsic"``, ``"no time value"`` (price equals intrinsic value: the vol is not identified),
``"above maximum"`` (price >= F exp(-rT) for a call, K exp(-rT) for a put), ``"vol below 1e-06"``,
``"vol above 10"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from greeksmargin.pricing._common import INV_SQRT_2PI, is_call_array

__all__ = ["ImpliedVolResult", "implied_vol", "inverse_implied_vol"]

VOL_MIN = 1e-6
VOL_MAX = 10.0
MAX_ITER = 100
_SQRT_2PI = 2.5066282746310002


@dataclass(frozen=True)
class ImpliedVolResult:
    """Implied vols and why some are missing.

    Attributes
    ----------
    vol : ndarray of float64
        Implied vol (decimal), NaN where none; broadcast shape of the inputs.
    reason : ndarray of str
        ``""`` where solved, else the reason (see :mod:`greeksmargin.pricing.implied`).
    """

    vol: NDArray[np.float64]
    reason: NDArray[np.str_]

    @property
    def ok(self) -> NDArray[np.bool_]:
        """True where a vol was found."""
        return self.reason == ""


def _otm_price(f: NDArray, k: NDArray, x: NDArray, s: NDArray, w: NDArray) -> tuple[NDArray, NDArray]:
    """Undiscounted OTM Black price b(s) and db/ds = F n(d1)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        d1 = x / s + 0.5 * s
        d2 = d1 - s
        b = w * (f * ndtr(w * d1) - k * ndtr(w * d2))
        db = f * INV_SQRT_2PI * np.exp(-0.5 * d1 * d1)
    return np.maximum(b, 0.0), db


def implied_vol(
    price: ArrayLike,
    option_type: ArrayLike,
    forward: ArrayLike | None,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    rate: ArrayLike = 0.0,
    model: Literal["black76", "bsm"] = "black76",
    *,
    spot: ArrayLike | None = None,
    dividend_yield: ArrayLike = 0.0,
) -> ImpliedVolResult:
    """Implied volatility of European option prices, Black-76 or Black-Scholes-Merton.

    Parameters
    ----------
    price : array_like
        Discounted option price (currency of the strike).
    option_type : str, bool or array_like
        ``"call"``/``"put"`` (or ``"c"``/``"p"``), a bool is_call, or an array of either.
    forward : array_like or None
        Forward F > 0 (model ``"black76"``). For model ``"bsm"`` pass ``None`` and ``spot=`` (a ``forward``
        given with ``model="bsm"`` and no ``spot`` is read as the spot).
    strike : array_like
        Strike K > 0.
    time_to_expiry : array_like
        T, years (ACT/365).
    rate : array_like, default 0.0
        Continuously compounded discount rate r.
    model : {"black76", "bsm"}, default "black76"
        Pricing model of ``price``.
    spot : array_like, optional
        Spot S (model ``"bsm"``): F = S exp((r - q) T).
    dividend_yield : array_like, default 0.0
        Dividend yield q (model ``"bsm"``).

    Returns
    -------
    ImpliedVolResult
        ``vol`` (NaN where none) and ``reason`` ("" where solved), of the broadcast shape of the inputs.
    """
    if model == "bsm":
        underlying = spot if spot is not None else forward
        if underlying is None:
            raise ValueError("spot: required for model='bsm'")
    elif model == "black76":
        if forward is None:
            raise ValueError("forward: required for model='black76'")
        underlying = forward
    else:
        raise ValueError(f"model: expected 'black76' or 'bsm', got {model!r}")
    arrays = [
        np.asarray(price, dtype=np.float64),
        is_call_array(option_type),
        np.asarray(underlying, dtype=np.float64),
        np.asarray(strike, dtype=np.float64),
        np.asarray(time_to_expiry, dtype=np.float64),
        np.asarray(rate, dtype=np.float64),
        np.asarray(dividend_yield, dtype=np.float64),
    ]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    p, call, u, k, t, r, q = (np.broadcast_to(a, shape).reshape(-1) for a in arrays)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = u * np.exp((r - q) * t) if model == "bsm" else u
        vol, reason = _solve(p, call, f, k, t, r)
    return ImpliedVolResult(vol.reshape(shape), reason.reshape(shape))


def inverse_implied_vol(
    coin_price: ArrayLike,
    option_type: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
) -> ImpliedVolResult:
    """Implied vol of coin-settled (inverse) options from their coin price: ``implied_vol(coin_price * F, ...)``.

    Parameters
    ----------
    coin_price : array_like
        Coin value per contract (e.g. Deribit ``mark_price``).
    option_type : str, bool or array_like
        As in :func:`implied_vol`.
    forward : array_like
        F > 0, USD.
    strike : array_like
        K > 0, USD.
    time_to_expiry : array_like
        T, years.

    Returns
    -------
    ImpliedVolResult
        As :func:`implied_vol` with r = 0.
    """
    f = np.asarray(forward, dtype=np.float64)
    return implied_vol(np.asarray(coin_price, dtype=np.float64) * f, option_type, f, strike, time_to_expiry, 0.0)


def _solve(
    p: NDArray, call: NDArray, f: NDArray, k: NDArray, t: NDArray, r: NDArray
) -> tuple[NDArray[np.float64], NDArray[np.str_]]:
    n = p.shape[0]
    vol = np.full(n, np.nan)
    reason = np.full(n, "", dtype="<U20")
    bad = ~(np.isfinite(p) & np.isfinite(f) & np.isfinite(k) & np.isfinite(t) & np.isfinite(r) & (f > 0) & (k > 0))
    reason[bad] = "invalid input"
    todo = ~bad
    nonpos_t = todo & ~(t > 0)
    reason[nonpos_t] = "non-positive time"
    todo &= ~nonpos_t
    und = p / np.exp(-r * t)  # undiscounted price
    w = np.where(call, 1.0, -1.0)
    intrinsic = np.maximum(w * (f - k), 0.0)
    upper = np.where(call, f, k)
    below = todo & (und < intrinsic)
    reason[below] = "below intrinsic"
    todo &= ~below
    above = todo & (und >= upper)
    reason[above] = "above maximum"
    todo &= ~above
    tv = und - intrinsic
    flat = todo & ~(tv > 0)
    reason[flat] = "no time value"
    todo &= ~flat

    idx = np.flatnonzero(todo)
    if idx.size == 0:
        return vol, reason
    fi, ki, tvi, ti = f[idx], k[idx], tv[idx], t[idx]
    sqrt_t = np.sqrt(ti)
    x = np.log(fi / ki)
    wo = np.where(x > 0, -1.0, 1.0)  # the out-of-the-money side: put if F > K, else call
    lo = VOL_MIN * sqrt_t
    hi = VOL_MAX * sqrt_t
    b_lo, _ = _otm_price(fi, ki, x, lo, wo)
    b_hi, _ = _otm_price(fi, ki, x, hi, wo)
    too_low = tvi < b_lo
    too_high = tvi > b_hi
    reason[idx[too_low]] = f"vol below {VOL_MIN:g}"
    reason[idx[too_high]] = f"vol above {VOL_MAX:g}"
    keep = ~(too_low | too_high)
    idx, fi, ki, tvi, sqrt_t, x, wo, lo, hi = (a[keep] for a in (idx, fi, ki, tvi, sqrt_t, x, wo, lo, hi))

    s_c = np.sqrt(2.0 * np.abs(x))
    b_c, _ = _otm_price(fi, ki, x, np.where(s_c > 0, s_c, 1.0), wo)
    b_c = np.where(s_c > 0, b_c, 0.0)
    use_log = tvi < b_c  # convex wing: Newton on ln b
    s = np.where(s_c > 0, s_c, _SQRT_2PI * tvi / fi)
    s = np.clip(s, lo, hi)
    log_tv = np.log(tvi)
    s_out = np.empty_like(s)
    act = np.arange(s.size)
    for _it in range(MAX_ITER):
        b, db = _otm_price(fi[act], ki[act], x[act], s, wo[act])
        high = b > tvi[act]
        hi_a = np.where(high, s, hi[act])
        lo_a = np.where(high, lo[act], s)
        hi[act], lo[act] = hi_a, lo_a
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            step = np.where(use_log[act], (np.log(b) - log_tv[act]) * b / db, (b - tvi[act]) / db)
            s_new = s - step
        out_of = ~((s_new >= lo_a) & (s_new <= hi_a))
        s_new = np.where(out_of, 0.5 * (lo_a + hi_a), s_new)
        exact = b == tvi[act]
        s_new = np.where(exact, s, s_new)
        done = exact | (np.abs(s_new - s) <= 1e-15 * s_new) | (hi_a - lo_a <= 4e-16 * hi_a)
        s_out[act[done]] = s_new[done]
        act, s = act[~done], s_new[~done]
        if act.size == 0:
            break
    else:
        s_out[act] = s
    vol[idx] = s_out / sqrt_t
    return vol, reason
