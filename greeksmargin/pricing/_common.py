"""Shared helpers of the pricing kernels: option-type parsing and argument checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

#: accepted spellings of the option type (compared case-insensitively)
CALL_NAMES = frozenset({"call", "c"})
PUT_NAMES = frozenset({"put", "p"})

#: |d1|, |d2| are clipped to this: N(+-D_CLIP) is 1 / 0 in double precision and n(D_CLIP) underflows to 0,
#: so the clip changes no result and keeps 0 * inf (-> NaN) out of vanna and volga.
D_CLIP = 60.0
INV_SQRT_2PI = 0.3989422804014327


def is_call_array(option_type: ArrayLike) -> NDArray[np.bool_]:
    """Parse option types into a boolean array, True for calls.

    Parameters
    ----------
    option_type : str, bool, or array_like of str or bool
        ``"call"``/``"put"`` (case-insensitive, also ``"c"``/``"p"``), a bool (True = call), or an array
        of either.

    Returns
    -------
    ndarray of bool
        Same shape as ``option_type`` (0-d for a scalar); True where the option is a call.

    Raises
    ------
    ValueError
        If a value is not a recognised option type (the message names ``option_type`` and the value).
    """
    if isinstance(option_type, str):
        return np.asarray(_parse_one(option_type))
    arr = np.asarray(option_type)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind in "iu":
        if np.all((arr == 0) | (arr == 1)):
            return arr.astype(bool)
        raise ValueError("option_type: integer values must be 0 (put) or 1 (call)")
    if arr.dtype.kind in "UOS":
        values, inverse = np.unique(arr.ravel(), return_inverse=True)
        parsed = np.array([_parse_one(v) for v in values], dtype=bool)
        return parsed[inverse].reshape(arr.shape)
    raise ValueError(f"option_type: expected 'call'/'put' strings or booleans, got dtype {arr.dtype}")


def _parse_one(value: object) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str):
        value = str(value)
        key = value.strip().lower()
        if key in CALL_NAMES:
            return True
        if key in PUT_NAMES:
            return False
    raise ValueError(f"option_type: unknown option type {value!r} (use 'call'/'put' or 'c'/'p')")


def as_float(name: str, value: ArrayLike) -> NDArray[np.float64]:
    """Convert ``value`` to a float64 array, naming ``name`` if it cannot be converted."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: cannot convert to float ({exc})") from exc


def check_positive(name: str, x: NDArray[np.float64]) -> None:
    """Raise ValueError naming ``name`` unless every value is finite and > 0."""
    bad = ~(x > 0.0) | ~np.isfinite(x)
    if np.any(bad):
        raise ValueError(f"{name} must be finite and > 0; got {_first_bad(x, bad)}")


def check_non_negative(name: str, x: NDArray[np.float64]) -> None:
    """Raise ValueError naming ``name`` unless every value is finite and >= 0."""
    bad = ~(x >= 0.0) | ~np.isfinite(x)
    if np.any(bad):
        raise ValueError(f"{name} must be finite and >= 0; got {_first_bad(x, bad)}")


def check_finite(name: str, x: NDArray[np.float64]) -> None:
    """Raise ValueError naming ``name`` unless every value is finite."""
    bad = ~np.isfinite(x)
    if np.any(bad):
        raise ValueError(f"{name} must be finite; got {_first_bad(x, bad)}")


def full(a: ArrayLike, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """``a`` as a float64 ndarray of exactly ``shape`` (broadcast and copied if needed; -0.0 becomes 0.0)."""
    arr = np.asarray(a, dtype=np.float64)
    if arr.shape != shape:
        arr = np.broadcast_to(arr, shape).copy()
    return np.asarray(arr + 0.0)


def _first_bad(x: NDArray[np.float64], bad: NDArray[np.bool_]) -> str:
    if x.ndim == 0:
        return repr(float(x))
    idx = np.argwhere(bad)[0]
    n = int(np.count_nonzero(bad))
    where = tuple(int(i) for i in idx)
    return f"{float(x[where])!r} at index {where if len(where) > 1 else where[0]} ({n} bad value{'s' * (n > 1)})"


def checked_flat_inputs(option_type: ArrayLike, spot: ArrayLike, strike: ArrayLike, time_to_expiry: ArrayLike,
             vol: ArrayLike, rate: ArrayLike, dividend_yield: ArrayLike, *, vol_positive: bool = True,
             extra_shape: tuple[int, ...] = ()
             ) -> tuple[tuple[int, ...], NDArray[np.float64], list[NDArray[np.float64]]]:
    """Checked vanilla-option inputs, broadcast and flattened.

    Returns ``(shape, w, [S, K, T, sigma, r, q])`` with ``w`` +1 for a call, -1 for a put.
    """
    call = is_call_array(option_type)
    names = ("spot", "strike", "time_to_expiry", "vol", "rate", "dividend_yield")
    arrays = [as_float(n, a) for n, a in zip(names, (spot, strike, time_to_expiry, vol, rate, dividend_yield))]
    check_positive("spot", arrays[0])
    check_positive("strike", arrays[1])
    check_non_negative("time_to_expiry", arrays[2])
    (check_positive if vol_positive else check_non_negative)("vol", arrays[3])
    check_finite("rate", arrays[4])
    check_finite("dividend_yield", arrays[5])
    try:
        shape = np.broadcast_shapes(call.shape, *(a.shape for a in arrays), extra_shape)
    except ValueError as exc:
        raise ValueError(f"option_type, {', '.join(names)}{', exercise' if extra_shape else ''}: {exc}") from exc
    w = np.where(np.broadcast_to(call, shape).ravel(), 1.0, -1.0)
    flat = [np.broadcast_to(a, shape).ravel().astype(np.float64) for a in arrays]
    return shape, w, flat


@dataclass(frozen=True)
class Greeks:
    """Price and textbook Greeks of vanilla options; every attribute is an ndarray of the broadcast shape.

    Attributes
    ----------
    price : ndarray
        Option value (currency of the strike).
    delta : ndarray
        dV/dS (BSM) or dV/dF (Black-76).
    gamma : ndarray
        d2V/dS2 (BSM) or d2V/dF2 (Black-76).
    vega : ndarray
        dV/dsigma, per 1.00 of vol.
    theta : ndarray
        dV/dt per year as calendar time passes (= -dV/dT).
    rho : ndarray
        dV/dr per 1.00 of rate (BSM: spot and dividend yield fixed; Black-76: forward fixed).
    vanna : ndarray
        d2V/dS dsigma (Black-76: w.r.t. F), per 1.00 of vol.
    volga : ndarray
        d2V/dsigma2, per 1.00 of vol squared.
    """

    price: NDArray[np.float64]
    delta: NDArray[np.float64]
    gamma: NDArray[np.float64]
    vega: NDArray[np.float64]
    theta: NDArray[np.float64]
    rho: NDArray[np.float64]
    vanna: NDArray[np.float64]
    volga: NDArray[np.float64]
