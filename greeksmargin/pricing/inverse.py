"""Coin-settled (inverse) options, as listed on Deribit (Deribit's inverse-option conventions).

Payoff in coin: ``max(S_T - K, 0) / S_T`` (call), ``max(K - S_T, 0) / S_T`` (put). With r = 0 the coin
value is ``V = C_usd(F) / F`` where ``C_usd`` is the Black-76 USD price; for a call
``V = N(d1) - (K/F) N(d2)``, for a put ``V = (K/F) N(-d2) - N(-d1)``.

Deltas. ``d(V F)/dF = N(d1)`` (put ``N(d1) - 1``) is the USD delta the exchange reports. The coin
(premium-adjusted) delta is ``N(d1) - V`` (put ``N(d1) - 1 - V``), which equals ``F dV/dF``
(= ``K N(d2) / F`` for a call, ``-K N(-d2) / F`` for a put): the coin amount of the underlying whose
coin P&L matches the option's for a small relative move of F. A call struck at 0 is worth exactly
1 coin and has coin delta 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from greeksmargin.pricing._common import (
    D_CLIP,
    INV_SQRT_2PI,
    as_float,
    check_non_negative,
    check_positive,
    full,
    is_call_array,
)

__all__ = ["InverseGreeks", "inverse_option", "inverse_price"]


@dataclass(frozen=True)
class InverseGreeks:
    """Coin value and Greeks of coin-settled options; every attribute is an ndarray of the broadcast shape.

    Attributes
    ----------
    price : ndarray
        Coin value per contract ``V = C_usd(F) / F`` (coin).
    delta : ndarray
        Coin (premium-adjusted) delta ``N(d1) - V`` (put ``N(d1) - 1 - V``) = ``F dV/dF``, in coin per
        contract: coin P&L ~ delta * dF/F.
    gamma : ndarray
        ``d2V/dF2``, coin per USD**2.
    vega : ndarray
        ``dV/dsigma`` per 1.00 of vol, coin (= ``n(d1) sqrt(T)``).
    theta : ndarray
        ``dV/dt`` per year as calendar time passes, coin (= ``-n(d1) sigma / (2 sqrt T)``).
    price_usd : ndarray
        ``V * F``: the Black-76 USD value (r = 0).
    deribit_delta : ndarray
        ``N(d1)`` (put ``N(d1) - 1``): the USD delta the exchange reports.
    deribit_gamma : ndarray
        ``n(d1) / (F sigma sqrt T)``, per USD.
    deribit_vega : ndarray
        ``F n(d1) sqrt(T) / 100``, USD per vol point.
    deribit_theta : ndarray
        ``-F n(d1) sigma / (2 sqrt T) / 365``, USD per calendar day.
    """

    price: NDArray[np.float64]
    delta: NDArray[np.float64]
    gamma: NDArray[np.float64]
    vega: NDArray[np.float64]
    theta: NDArray[np.float64]
    price_usd: NDArray[np.float64]
    deribit_delta: NDArray[np.float64]
    deribit_gamma: NDArray[np.float64]
    deribit_vega: NDArray[np.float64]
    deribit_theta: NDArray[np.float64]


def inverse_option(
    option_type: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
) -> InverseGreeks:
    """Coin value and Greeks of coin-settled (inverse) options, with r = 0 as on Deribit.

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` (or ``"c"``/``"p"``, case-insensitive), a bool is_call, or an array of either.
    forward : array_like
        Forward of the expiry F > 0, USD (Deribit's ``underlying_price``).
    strike : array_like
        Strike K >= 0, USD (K = 0 allowed: a call is then 1 coin).
    time_to_expiry : array_like
        T >= 0, years (ACT/365).
    vol : array_like
        sigma >= 0, decimal.

    Returns
    -------
    InverseGreeks
        Arrays of the broadcast shape. With ``s = sigma sqrt T == 0`` the value is the intrinsic
        ``max(w (1 - K/F), 0)``, the deltas use the step (0.5 exactly at the money), vega, theta and the
        Deribit gamma are 0, and the coin gamma is the curvature of the coin intrinsic value,
        ``-2 w (K/F) step / F**2``.

    Raises
    ------
    ValueError
        If forward is not > 0, strike, time_to_expiry or vol is negative, or any input is NaN/inf.
    """
    call = is_call_array(option_type)
    f = as_float("forward", forward)
    k = as_float("strike", strike)
    t = as_float("time_to_expiry", time_to_expiry)
    v = as_float("vol", vol)
    check_positive("forward", f)
    check_non_negative("strike", k)
    check_non_negative("time_to_expiry", t)
    check_non_negative("vol", v)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        m = k / f
        sqrt_t = np.sqrt(t)
        s = v * sqrt_t
        pos = s > 0.0
        s_safe = np.where(pos, s, 1.0)
        x = -np.log(m)  # +inf for K = 0
        d1 = np.where(pos, x / s_safe + 0.5 * s, np.sign(x) * D_CLIP)
        d2 = np.clip(d1 - s, -D_CLIP, D_CLIP)
        d1 = np.clip(d1, -D_CLIP, D_CLIP)
        w = np.where(call, 1.0, -1.0)
        n_d1 = ndtr(w * d1)
        n_d2 = ndtr(w * d2)
        pdf = np.where(pos, INV_SQRT_2PI * np.exp(-0.5 * d1 * d1), 0.0)
        price = w * (n_d1 - m * n_d2)
        usd_delta = np.where(call, n_d1, -n_d1)  # N(d1) for calls, N(d1) - 1 = -N(-d1) for puts
        coin_delta = w * m * n_d2  # = usd_delta - price, without the cancellation
        # d2V/dF2 = (K/F^2) (n(d2)/(F s) - 2 w N(w d2)/F); n(d2) K = n(d1) F
        gamma = (pdf / s_safe - 2.0 * w * m * n_d2) / (f * f)
        vega = pdf * sqrt_t
        theta = -pdf * v / (2.0 * np.where(t > 0.0, sqrt_t, 1.0))
        deribit_gamma = pdf / (f * s_safe)
    shape = np.broadcast_shapes(call.shape, f.shape, k.shape, t.shape, v.shape)
    res = InverseGreeks(
        price=price,
        delta=coin_delta,
        gamma=gamma,
        vega=vega,
        theta=theta,
        price_usd=price * f,
        deribit_delta=usd_delta,
        deribit_gamma=deribit_gamma,
        deribit_vega=f * vega / 100.0,
        deribit_theta=f * theta / 365.0,
    )
    return InverseGreeks(*(full(getattr(res, name), shape) for name in res.__dataclass_fields__))


def inverse_price(
    is_call: ArrayLike,
    forward: ArrayLike,
    strike: ArrayLike,
    time_to_expiry: ArrayLike,
    vol: ArrayLike,
    *,
    backend: Literal["numpy", "numba"] = "numpy",
) -> NDArray[np.float64]:
    """Coin value per contract of coin-settled options (hot path: no validation), r = 0.

    Parameters
    ----------
    is_call : array_like of bool
        True for calls.
    forward : array_like
        F > 0, USD (not checked).
    strike : array_like
        K >= 0, USD (not checked; K = 0 call = 1 coin).
    time_to_expiry : array_like
        T years; T <= 0 gives the intrinsic coin value.
    vol : array_like
        sigma, decimal; vol <= 0 gives the intrinsic coin value.
    backend : {"numpy", "numba"}, default "numpy"
        Vectorised numpy, or the compiled loop :func:`greeksmargin.pricing._numba.inverse_price_numba`.

    Returns
    -------
    ndarray of float64
        ``C_usd(F) / F`` of the broadcast shape.
    """
    if backend == "numba":
        from greeksmargin.pricing._numba import inverse_price_numba

        return inverse_price_numba(is_call, forward, strike, time_to_expiry, vol)
    w = np.where(is_call, 1.0, -1.0)
    f = np.asarray(forward, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.maximum(np.asarray(time_to_expiry, dtype=np.float64), 0.0)
    v = np.asarray(vol, dtype=np.float64)
    shape = np.broadcast_shapes(w.shape, f.shape, k.shape, t.shape, v.shape)
    m = np.empty(shape)
    s = np.empty(shape)
    d1 = np.empty(shape)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        np.divide(k, f, out=m)
        np.multiply(np.sqrt(t), v, out=s)
        np.maximum(s, 1e-300, out=s)
        np.log(m, out=d1)
        np.negative(d1, out=d1)
        d1 /= s
        s *= 0.5
        d1 += s
        s *= 2.0
        d2 = np.subtract(d1, s, out=s)
        d1 *= w
        d2 *= w
        out = ndtr(d1, out=d1)
        nd2 = ndtr(d2, out=d2)
        nd2 *= m
        out -= nd2
        out *= w
    return out
