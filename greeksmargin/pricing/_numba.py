"""Compiled (numba) twins of the numpy kernels: the Greeks loop and the Black-76 / inverse price loops.

Same formulas and limit conventions as :mod:`greeksmargin.pricing.black` (see its module docstring);
``N(x) = 0.5 * erfc(-x / sqrt 2)``. Tests hold these equal to the numpy kernels to 1e-12.
Loops run with ``prange`` (numba's threading layer; at most the machine's cores).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numpy.typing import ArrayLike, NDArray

from greeksmargin.pricing._common import D_CLIP, INV_SQRT_2PI, Greeks

__all__ = ["black76_greeks5_numba", "black76_price_numba", "greeks_numba", "inverse_price_numba"]

_INV_SQRT2 = 0.7071067811865476


@njit(cache=True, inline="always")
def _ncdf(x: float) -> float:
    return 0.5 * math.erfc(-x * _INV_SQRT2)


@njit(cache=True, inline="always")
def _d12(x: float, s: float) -> tuple[float, float, bool]:
    """``d1, d2`` clipped to +-D_CLIP from ``x = ln(S/K) + (r - q) T`` and ``s = sigma sqrt(T)``.

    The third value is False at ``s = 0`` (the intrinsic limit: ``d1 = +-D_CLIP`` by the sign of ``x``,
    0 at the money, and no density).
    """
    if s > 0.0:
        d1 = x / s + 0.5 * s
        pdf_ok = True
    else:
        d1 = D_CLIP if x > 0.0 else (-D_CLIP if x < 0.0 else 0.0)
        pdf_ok = False
    d2 = min(max(d1 - s, -D_CLIP), D_CLIP)
    d1 = min(max(d1, -D_CLIP), D_CLIP)
    return d1, d2, pdf_ok


@njit(cache=True, parallel=True, fastmath=False)
def _greeks_loop(call, s0, k, t, vol, r, q, forward_rho, out):
    n = s0.shape[0]
    for i in prange(n):
        w = 1.0 if call[i] else -1.0
        ti = t[i]
        vi = vol[i]
        sqrt_t = math.sqrt(ti)
        s = vi * sqrt_t
        d1, d2, pdf_ok = _d12(math.log(s0[i] / k[i]) + (r[i] - q[i]) * ti, s)
        n1 = _ncdf(w * d1)
        n2 = _ncdf(w * d2)
        pdf = INV_SQRT_2PI * math.exp(-0.5 * d1 * d1) if pdf_ok else 0.0
        dfq = math.exp(-q[i] * ti)
        dfr = math.exp(-r[i] * ti)
        sq = s0[i] * dfq
        kr = k[i] * dfr
        price = w * (sq * n1 - kr * n2)
        s_safe = s if pdf_ok else 1.0
        vol_safe = vi if vi > 0.0 else 1.0
        vega = sq * pdf * sqrt_t
        out[0, i] = price
        out[1, i] = w * dfq * n1
        out[2, i] = dfq * pdf / (s0[i] * s_safe)
        out[3, i] = vega
        out[4, i] = -sq * pdf * vi / (2.0 * (sqrt_t if ti > 0.0 else 1.0)) + w * (q[i] * sq * n1 - r[i] * kr * n2)
        out[5, i] = -ti * price if forward_rho else w * ti * kr * n2
        out[6, i] = -dfq * pdf * d2 / vol_safe
        out[7, i] = vega * d1 * d2 / vol_safe


@njit(cache=True, parallel=True, fastmath=False)
def _greeks5_loop(call, f, k, t, vol, r, out):
    """Black-76 price, delta, gamma, vega, theta: the first five rows of :func:`_greeks_loop` with ``q = r``."""
    n = f.shape[0]
    for i in prange(n):
        w = 1.0 if call[i] else -1.0
        ti = t[i]
        vi = vol[i]
        sqrt_t = math.sqrt(ti)
        s = vi * sqrt_t
        d1, d2, pdf_ok = _d12(math.log(f[i] / k[i]), s)
        n1 = _ncdf(w * d1)
        n2 = _ncdf(w * d2)
        pdf = INV_SQRT_2PI * math.exp(-0.5 * d1 * d1) if pdf_ok else 0.0
        df = math.exp(-r[i] * ti)
        sq = f[i] * df
        kr = k[i] * df
        out[0, i] = w * (sq * n1 - kr * n2)
        out[1, i] = w * df * n1
        out[2, i] = df * pdf / (f[i] * (s if pdf_ok else 1.0))
        out[3, i] = sq * pdf * sqrt_t
        out[4, i] = -sq * pdf * vi / (2.0 * (sqrt_t if ti > 0.0 else 1.0)) + w * (r[i] * sq * n1 - r[i] * kr * n2)


@njit(cache=True, parallel=True, fastmath=False)
def _black76_price_loop(call, f, k, t, vol, r, out):
    n = f.shape[0]
    for i in prange(n):
        w = 1.0 if call[i] else -1.0
        ti = t[i] if t[i] > 0.0 else 0.0
        s = vol[i] * math.sqrt(ti)
        fi = f[i]
        ki = k[i]
        if s > 0.0:
            d1 = math.log(fi / ki) / s + 0.5 * s
            p = w * (fi * _ncdf(w * d1) - ki * _ncdf(w * (d1 - s)))
        else:
            p = max(w * (fi - ki), 0.0)
        out[i] = p * math.exp(-r[i] * ti)


@njit(cache=True, parallel=True, fastmath=False)
def _inverse_price_loop(call, f, k, t, vol, out):
    n = f.shape[0]
    for i in prange(n):
        w = 1.0 if call[i] else -1.0
        ti = t[i] if t[i] > 0.0 else 0.0
        s = vol[i] * math.sqrt(ti)
        fi = f[i]
        m = k[i] / fi
        if m <= 0.0:
            out[i] = 1.0 if call[i] else 0.0
        elif s > 0.0:
            d1 = -math.log(m) / s + 0.5 * s
            out[i] = w * (_ncdf(w * d1) - m * _ncdf(w * (d1 - s)))
        else:
            out[i] = max(w * (1.0 - m), 0.0)


def _flat(shape: tuple[int, ...], *arrays: ArrayLike) -> list[NDArray]:
    out = []
    for a in arrays:
        arr = np.asarray(a)
        if arr.shape != shape:
            arr = np.broadcast_to(arr, shape)
        out.append(np.ascontiguousarray(arr).reshape(-1))
    return out


def greeks_numba(
    call: ArrayLike,
    s0: ArrayLike,
    k: ArrayLike,
    t: ArrayLike,
    vol: ArrayLike,
    r: ArrayLike,
    q: ArrayLike,
    *,
    forward_rho: bool,
) -> Greeks:
    """Compiled generalised Black-Scholes Greeks (inputs already validated).

    Parameters
    ----------
    call : array_like of bool
        True for calls.
    s0, k, t, vol, r, q : array_like
        Underlying (spot, or forward with ``q = r``), strike, years, vol, rate, dividend yield.
    forward_rho : bool
        True for Black-76 (rho at fixed forward = -T V), False for BSM (rho at fixed spot).

    Returns
    -------
    Greeks
        Arrays of the broadcast shape of the inputs.
    """
    arrays = [np.asarray(a) for a in (call, s0, k, t, vol, r, q)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    c, s0f, kf, tf, vf, rf, qf = _flat(shape, *arrays)
    out = np.empty((8, c.shape[0]), dtype=np.float64)
    _greeks_loop(
        c.astype(np.bool_, copy=False),
        s0f.astype(np.float64, copy=False),
        kf.astype(np.float64, copy=False),
        tf.astype(np.float64, copy=False),
        vf.astype(np.float64, copy=False),
        rf.astype(np.float64, copy=False),
        qf.astype(np.float64, copy=False),
        bool(forward_rho),
        out,
    )
    return Greeks(*(out[j].reshape(shape) for j in range(8)))


def black76_greeks5_numba(
    is_call: NDArray[np.bool_],
    forward: NDArray[np.float64],
    strike: NDArray[np.float64],
    time_to_expiry: NDArray[np.float64],
    vol: NDArray[np.float64],
    rate: NDArray[np.float64],
    out: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Compiled Black-76 price, delta, gamma, vega, theta of 1-D inputs into ``out`` (5, n) (no validation)."""
    c = np.ascontiguousarray
    _greeks5_loop(c(is_call, dtype=np.bool_), c(forward, dtype=np.float64), c(strike, dtype=np.float64),
                  c(time_to_expiry, dtype=np.float64), c(vol, dtype=np.float64), c(rate, dtype=np.float64), out)
    return out


def black76_price_numba(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
) -> NDArray[np.float64]:
    """Compiled twin of :func:`greeksmargin.pricing.black76_price` (no validation).

    Parameters
    ----------
    is_call : array_like of bool
        True for calls.
    forward, strike, time_to_expiry, vol, rate : array_like
        As in :func:`~greeksmargin.pricing.black76_price`.

    Returns
    -------
    ndarray of float64
        Discounted Black-76 prices of the broadcast shape.
    """
    arrays = [np.asarray(a) for a in (is_call, forward, strike, time_to_expiry, vol, rate)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    c, f, k, t, v, r = _flat(shape, *arrays)
    out = np.empty(c.shape[0], dtype=np.float64)
    _black76_price_loop(
        c.astype(np.bool_, copy=False),
        f.astype(np.float64, copy=False),
        k.astype(np.float64, copy=False),
        t.astype(np.float64, copy=False),
        v.astype(np.float64, copy=False),
        r.astype(np.float64, copy=False),
        out,
    )
    return out.reshape(shape)


def inverse_price_numba(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
) -> NDArray[np.float64]:
    """Compiled twin of :func:`greeksmargin.pricing.inverse_price`: coin value per contract (r = 0).

    Parameters
    ----------
    is_call : array_like of bool
        True for calls.
    forward, strike, time_to_expiry, vol : array_like
        F > 0 (USD), K >= 0 (USD), T years, sigma decimal.

    Returns
    -------
    ndarray of float64
        Coin value ``C_usd(F) / F`` of the broadcast shape.
    """
    arrays = [np.asarray(a) for a in (is_call, forward, strike, time_to_expiry, vol)]
    shape = np.broadcast_shapes(*(a.shape for a in arrays))
    c, f, k, t, v = _flat(shape, *arrays)
    out = np.empty(c.shape[0], dtype=np.float64)
    _inverse_price_loop(
        c.astype(np.bool_, copy=False),
        f.astype(np.float64, copy=False),
        k.astype(np.float64, copy=False),
        t.astype(np.float64, copy=False),
        v.astype(np.float64, copy=False),
        out,
    )
    return out.reshape(shape)
