"""Black-Scholes-Merton and Black-76: prices and textbook Greeks, vectorised on float64 arrays.

Units (README, Conventions and units): ``vega`` per 1.00 of vol, ``theta`` per year (dV/dt as calendar time passes,
negative for a long vanilla without carry), ``rho`` per 1.00 of rate, ``vanna`` d2V/dS dsigma, ``volga``
d2V/dsigma2. For Black-76, ``delta``, ``gamma`` and ``vanna`` are taken w.r.t. the forward F and ``rho`` is
dV/dr holding F fixed (``-T * price``). The Greeks tie together in the Taylor expansion::

    dV ~ delta*dS + 0.5*gamma*dS**2 + vega*dsigma + 0.5*volga*dsigma**2 + vanna*dS*dsigma + theta*dt + rho*dr

Limits. With ``s = vol * sqrt(T) == 0`` (T == 0 or vol == 0) the price is the discounted intrinsic value of
the forward, delta is the discounted step (1 in the money, 0 out of it, **0.5 exactly at the money**: the
mid-point of the jump), gamma, vega, vanna and volga are 0 and theta/rho are the limits of their formulas
with N(d1), N(d2) replaced by that step (the carry terms, e.g. ``q*S - r*K`` for an in-the-money BSM call).
For tiny positive ``s`` every output is the finite formula value (the ATM gamma grows like ``1/s``, as it
should). Normal CDFs go through :func:`scipy.special.ndtr` of +-d, never ``1 - N``, so deep in/out of the
money prices and deltas keep their precision, and |d| is clipped at 60 where N and n are exactly 1/0 in
double precision (no ``0 * inf``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from greeksmargin.pricing._common import (
    D_CLIP,
    INV_SQRT_2PI,
    Greeks,
    as_float,
    check_finite,
    check_non_negative,
    check_positive,
    full,
    is_call_array,
)

Backend = Literal["numpy", "numba"]

__all__ = ["Greeks", "black76", "black76_price", "black_scholes_merton", "bsm_price"]


def _checked_inputs(
    option_type: ArrayLike,
    underlying_name: str,
    underlying: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike,
    dividend_yield: ArrayLike,
) -> tuple[
    NDArray[np.bool_],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    call = is_call_array(option_type)
    u = as_float(underlying_name, underlying)
    k = as_float("strike", strike)
    t = as_float("time_to_expiry", time_to_expiry)
    v = as_float("vol", vol)
    r = as_float("rate", rate)
    q = as_float("dividend_yield", dividend_yield)
    check_positive(underlying_name, u)
    check_positive("strike", k)
    check_non_negative("time_to_expiry", t)
    check_non_negative("vol", v)
    check_finite("rate", r)
    check_finite("dividend_yield", q)
    try:
        np.broadcast_shapes(call.shape, u.shape, k.shape, t.shape, v.shape, r.shape, q.shape)
    except ValueError as exc:
        raise ValueError(f"option_type, {underlying_name}, strike, time_to_expiry, vol, rate: {exc}") from exc
    return call, u, k, t, v, r, q


def _greeks(
    backend: Backend,
    call: NDArray[np.bool_],
    s0: NDArray[np.float64],
    k: NDArray[np.float64],
    t: NDArray[np.float64],
    vol: NDArray[np.float64],
    r: NDArray[np.float64],
    q: NDArray[np.float64],
    *,
    forward_rho: bool,
) -> Greeks:
    """The Greeks kernel of ``backend`` (``"numpy"`` or ``"numba"``) on checked inputs."""
    if backend == "numba":
        from greeksmargin.pricing._numba import greeks_numba

        return greeks_numba(call, s0, k, t, vol, r, q, forward_rho=forward_rho)
    if backend != "numpy":
        raise ValueError(f"backend: expected 'numpy' or 'numba', got {backend!r}")
    return _greeks_numpy(call, s0, k, t, vol, r, q, forward_rho=forward_rho)


def _greeks_numpy(
    call: NDArray[np.bool_],
    s0: NDArray[np.float64],
    k: NDArray[np.float64],
    t: NDArray[np.float64],
    vol: NDArray[np.float64],
    r: NDArray[np.float64],
    q: NDArray[np.float64],
    forward_rho: bool,
) -> Greeks:
    """Generalised Black-Scholes on an underlying ``s0`` with carry ``r - q``.

    Black-76 is the case ``s0 = F``, ``q = r`` (zero carry) with ``forward_rho=True`` (rho at fixed F).
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        sqrt_t = np.sqrt(t)
        s = vol * sqrt_t
        pos = s > 0.0
        s_safe = np.where(pos, s, 1.0)
        x = np.log(s0 / k) + (r - q) * t  # log-moneyness of the forward
        d1 = np.where(pos, x / s_safe + 0.5 * s, np.sign(x) * D_CLIP)
        d2 = np.clip(d1 - s, -D_CLIP, D_CLIP)
        d1 = np.clip(d1, -D_CLIP, D_CLIP)
        w = np.where(call, 1.0, -1.0)
        n_d1 = ndtr(w * d1)
        n_d2 = ndtr(w * d2)
        pdf = np.where(pos, INV_SQRT_2PI * np.exp(-0.5 * d1 * d1), 0.0)
        dfq = np.exp(-q * t)
        dfr = np.exp(-r * t)
        sq = s0 * dfq
        kr = k * dfr
        price = w * (sq * n_d1 - kr * n_d2)
        delta = w * dfq * n_d1
        gamma = dfq * pdf / (s0 * s_safe)
        vega = sq * pdf * sqrt_t
        vol_safe = np.where(vol > 0.0, vol, 1.0)
        theta = -sq * pdf * vol / (2.0 * np.where(t > 0.0, sqrt_t, 1.0)) + w * (q * sq * n_d1 - r * kr * n_d2)
        rho = -t * price if forward_rho else w * t * kr * n_d2
        vanna = -dfq * pdf * d2 / vol_safe
        volga = vega * d1 * d2 / vol_safe
    shape = np.broadcast_shapes(call.shape, s0.shape, k.shape, t.shape, vol.shape, r.shape, q.shape)
    return Greeks(*(full(a, shape) for a in (price, delta, gamma, vega, theta, rho, vanna, volga)))


def black_scholes_merton(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
    *,
    backend: Backend = "numpy",
) -> Greeks:
    """Black-Scholes-Merton price and Greeks on the spot, with continuous rate and dividend yield.

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` (case-insensitive, ``"c"``/``"p"``), a bool is_call, or an array of either.
    spot : array_like
        Spot price S > 0.
    strike : array_like
        Strike K > 0.
    time_to_expiry : array_like
        T >= 0, years (ACT/365).
    vol : array_like
        Volatility sigma >= 0, decimal (0.20).
    rate : array_like, default 0.0
        Continuously compounded risk-free rate r.
    dividend_yield : array_like, default 0.0
        Continuous dividend yield / carry q.
    backend : {"numpy", "numba"}, default "numpy"
        Vectorised numpy, or the compiled loop of :mod:`greeksmargin.pricing._numba` (equal to 1e-12).

    Returns
    -------
    Greeks
        Arrays of the broadcast shape of the inputs: price, delta=dV/dS, gamma=d2V/dS2, vega per 1.00 vol,
        theta per year (calendar), rho per 1.00 rate (S, q fixed), vanna=d2V/dS dsigma, volga=d2V/dsigma2.

    Raises
    ------
    ValueError
        If spot or strike is not > 0, time_to_expiry or vol is negative, or any input is NaN/inf
        (the message names the argument).
    """
    call, s0, k, t, v, r, q = _checked_inputs(
        option_type, "spot", spot, strike, time_to_expiry, vol, rate, dividend_yield
    )
    return _greeks(backend, call, s0, k, t, v, r, q, forward_rho=False)


def black76(
    option_type: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    *,
    backend: Backend = "numpy",
) -> Greeks:
    """Black-76 price and Greeks of an option on a forward, discounted at exp(-r T).

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` (case-insensitive, ``"c"``/``"p"``), a bool is_call, or an array of either.
    forward : array_like
        Forward F > 0 of the option's expiry.
    strike : array_like
        Strike K > 0.
    time_to_expiry : array_like
        T >= 0, years (ACT/365).
    vol : array_like
        Volatility sigma >= 0, decimal.
    rate : array_like, default 0.0
        Continuously compounded discount rate r.
    backend : {"numpy", "numba"}, default "numpy"
        Vectorised numpy, or the compiled loop of :mod:`greeksmargin.pricing._numba` (equal to 1e-12).

    Returns
    -------
    Greeks
        Arrays of the broadcast shape: price = exp(-rT) (F N(d1) - K N(d2)) for a call, delta=dV/dF,
        gamma=d2V/dF2, vega per 1.00 vol, theta per year (F fixed; = r V - exp(-rT) F n(d1) sigma / (2 sqrt T)),
        rho = dV/dr at fixed F = -T V, vanna=d2V/dF dsigma, volga=d2V/dsigma2.

    Raises
    ------
    ValueError
        If forward or strike is not > 0, time_to_expiry or vol is negative, or any input is NaN/inf.
    """
    call, f, k, t, v, r, _ = _checked_inputs(option_type, "forward", forward, strike, time_to_expiry, vol, rate, 0.0)
    return _greeks(backend, call, f, k, t, v, r, r, forward_rho=True)


def black76_greeks5(
    is_call: NDArray[np.bool_],
    forward: NDArray[np.float64],
    strike: NDArray[np.float64],
    time_to_expiry: NDArray[np.float64],
    vol: NDArray[np.float64],
    rate: NDArray[np.float64],
    *,
    backend: Backend = "numpy",
    out: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Black-76 price, delta, gamma, vega and theta of many options in one pass (no validation).

    The first five outputs of :func:`black76` (same formulas and limit conventions), without rho, vanna and
    volga: the lean kernel of a portfolio's daily Greeks (benchmark (a)).

    Parameters
    ----------
    is_call : ndarray of bool, shape (n,)
        True for calls.
    forward, strike : ndarray of shape (n,)
        F > 0, K > 0.
    time_to_expiry : ndarray of shape (n,)
        T in years (T = 0 or vol = 0 give the intrinsic limits of :func:`black76`).
    vol : ndarray of shape (n,)
        sigma, decimal.
    rate : ndarray of shape (n,)
        Discount rate r (continuous).
    backend : {"numpy", "numba"}, default "numpy"
        numpy: :func:`black76` (the reference); numba: one parallel compiled loop (equal to 1e-12).
    out : ndarray of shape (5, n), optional
        Output buffer.

    Returns
    -------
    ndarray of shape (5, n)
        Rows: price, delta (dV/dF), gamma (d2V/dF2), vega (per 1.00 vol), theta (per year, calendar time
        passing).
    """
    n = np.asarray(forward).shape[0]
    res = np.empty((5, n)) if out is None else out
    if backend == "numba":
        from greeksmargin.pricing._numba import black76_greeks5_numba

        return black76_greeks5_numba(is_call, forward, strike, time_to_expiry, vol, rate, res)
    g = black76(is_call, forward, strike, time_to_expiry, vol, rate)
    res[0], res[1], res[2], res[3], res[4] = g.price, g.delta, g.gamma, g.vega, g.theta
    return res


def black76_price(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    *,
    backend: Backend = "numpy",
) -> NDArray[np.float64]:
    """Black-76 price only: the hot path of full revaluation (no validation, few temporaries).

    Parameters
    ----------
    is_call : array_like of bool
        True for calls, False for puts.
    forward, strike : array_like
        F > 0 and K > 0 (not checked).
    time_to_expiry : array_like
        T in years; T <= 0 gives the discounted intrinsic value.
    vol : array_like
        sigma, decimal; vol <= 0 gives the discounted intrinsic value of the forward.
    rate : array_like, default 0.0
        Discount rate r.
    backend : {"numpy", "numba"}, default "numpy"
        Vectorised numpy, or the compiled loop :func:`greeksmargin.pricing._numba.black76_price_numba`.

    Returns
    -------
    ndarray of float64
        ``exp(-rT) * w * (F N(w d1) - K N(w d2))`` with w = +1 (call) / -1 (put), of the broadcast shape.
    """
    if backend == "numba":
        from greeksmargin.pricing._numba import black76_price_numba

        return black76_price_numba(is_call, forward, strike, time_to_expiry, vol, rate)
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.maximum(np.asarray(time_to_expiry, dtype=np.float64), 0.0)
    v = np.asarray(vol, dtype=np.float64)
    w = np.where(is_call, 1.0, -1.0)
    shape = np.broadcast_shapes(w.shape, f.shape, k.shape, t.shape, v.shape)
    s = np.empty(shape)
    d1 = np.empty(shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.multiply(np.sqrt(t), v, out=s)
        np.maximum(s, 1e-300, out=s)  # s == 0: d = +-inf (0 at the money) gives the intrinsic value
        np.divide(f, k, out=d1)
        np.log(d1, out=d1)
        d1 /= s
        s *= 0.5
        d1 += s  # d1 = x/s + s/2
        s *= 2.0
        d2 = np.subtract(d1, s, out=s)
        d1 *= w
        d2 *= w
        out = ndtr(d1, out=d1)
        out *= f
        nd2 = ndtr(d2, out=d2)
        nd2 *= k
        out -= nd2
        out *= w
    if np.any(rate):
        out = out * np.exp(-np.asarray(rate, dtype=np.float64) * t)
    return out


def bsm_price(
    is_call: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    rate: ArrayLike = 0.0,
    dividend_yield: ArrayLike = 0.0,
) -> NDArray[np.float64]:
    """Black-Scholes-Merton price only (no validation): Black-76 on F = S exp((r - q) T), discounted.

    Parameters
    ----------
    is_call : array_like of bool
        True for calls, False for puts.
    spot, strike : array_like
        S > 0 and K > 0 (not checked).
    time_to_expiry : array_like
        T in years; T <= 0 gives the intrinsic value.
    vol : array_like
        sigma, decimal; vol <= 0 gives the discounted intrinsic value of the forward.
    rate, dividend_yield : array_like, default 0.0
        Continuous rate r and dividend yield q.

    Returns
    -------
    ndarray of float64
        Option value of the broadcast shape.
    """
    t = np.maximum(np.asarray(time_to_expiry, dtype=np.float64), 0.0)
    r = np.asarray(rate, dtype=np.float64)
    q = np.asarray(dividend_yield, dtype=np.float64)
    fwd = np.asarray(spot, dtype=np.float64) * np.exp((r - q) * t) if (np.any(r) or np.any(q)) else spot
    return black76_price(is_call, fwd, strike, t, vol, r)
