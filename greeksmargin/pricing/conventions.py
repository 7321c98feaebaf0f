"""FX-style delta conventions: spot, forward and premium-adjusted deltas, and strikes from deltas.

Coin-settled options quote delta in the premium currency: the premium-adjusted delta (Castagna, *FX Options
and Smile Risk*, 2009, ch. 3; Reiswich and Wystup, "FX volatility smile construction", 2010). With the
domestic (premium, numeraire) discount factor ``D_d = exp(-r_d T)``, the foreign (underlying) one
``D_f = exp(-r_f T)``, the forward ``F = S D_f / D_d``, the standard deviation ``s = sigma sqrt(T)`` and
``d+- = (ln(F/K) +- s^2/2) / s``, ``w = +1`` (call) / ``-1`` (put)::

    spot                      w D_f N(w d+)
    forward                   w N(w d+)
    premium-adjusted spot     w D_f (K/F) N(w d-)
    premium-adjusted forward  w (K/F) N(w d-)

Names: ``"spot"``, ``"forward"``, ``"pa_spot"``, ``"pa_forward"``, or QuantLib's ``DeltaVolQuote`` names
``"Spot"``, ``"Fwd"``, ``"PaSpot"``, ``"PaFwd"`` (case-insensitive).

Strike from delta. Spot and forward deltas invert in closed form, ``K = F exp(-w s N^-1(w delta / D) + s^2/2)``
(``D = D_f`` for spot, 1 for forward). A premium-adjusted put delta is monotone in K, so its strike is the root
in ``[|delta| F / (2 D), K_unadjusted]``. A premium-adjusted **call** delta is not monotone: it rises from 0
at K = 0 to a maximum at ``K_max``, where ``s N(d-) = n(d-)``, and falls back to 0, so each delta below the
maximum has two strikes. The branch chosen is the one to the right of the maximum, ``K in [K_max,
K_unadjusted]`` (Reiswich-Wystup 2010, sec. 3.3; the branch QuantLib's ``BlackDeltaCalculator`` solves on),
the strike a market quote means: as delta falls the strike rises, as for unadjusted deltas. A delta above the
maximum has no strike: :class:`~greeksmargin.errors.ComputationError` naming the option and the maximum.
Roots by vectorised bisection to a relative bracket of 1e-15 (at most 200 halvings).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr, ndtri

from ..errors import ComputationError
from ._common import INV_SQRT_2PI, as_float, check_finite, check_positive, is_call_array

__all__ = ["DELTA_TYPES", "fx_delta", "max_premium_adjusted_call_delta", "parse_delta_type", "strike_from_delta"]

#: accepted names (lower-cased) -> canonical delta type
DELTA_TYPES: dict[str, str] = {
    "spot": "spot", "forward": "forward", "fwd": "forward",
    "pa_spot": "pa_spot", "paspot": "pa_spot", "premium_adjusted_spot": "pa_spot",
    "pa_forward": "pa_forward", "pafwd": "pa_forward", "premium_adjusted_forward": "pa_forward",
}
_BISECT_MAX = 200
_BISECT_REL = 1e-15


def parse_delta_type(delta_type: str) -> str:
    """Canonical delta type (``spot``, ``forward``, ``pa_spot``, ``pa_forward``) of a name.

    Parameters
    ----------
    delta_type : str
        One of :data:`DELTA_TYPES` (case-insensitive), e.g. ``"PaSpot"``.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        Naming the unknown value.
    """
    if not isinstance(delta_type, str) or delta_type.strip().lower() not in DELTA_TYPES:
        raise ValueError(f"delta_type: unknown delta type {delta_type!r} (use Spot, Fwd, PaSpot or PaFwd)")
    return DELTA_TYPES[delta_type.strip().lower()]


def _inputs(option_type: ArrayLike, spot: ArrayLike, second_name: str, second: ArrayLike,
            domestic_discount: ArrayLike, foreign_discount: ArrayLike, std_dev: ArrayLike
            ) -> tuple[tuple[int, ...], NDArray[np.float64], list[NDArray[np.float64]]]:
    call = is_call_array(option_type)
    names = ("spot", second_name, "domestic_discount", "foreign_discount", "std_dev")
    arrays = [as_float(n, a) for n, a in zip(names, (spot, second, domestic_discount, foreign_discount, std_dev))]
    for name, arr in zip(names, arrays):
        if name == "delta":
            check_finite(name, arr)
        else:
            check_positive(name, arr)
    try:
        shape = np.broadcast_shapes(call.shape, *(a.shape for a in arrays))
    except ValueError as exc:
        raise ValueError(f"option_type, {', '.join(names)}: {exc}") from exc
    w = np.where(np.broadcast_to(call, shape).ravel(), 1.0, -1.0)
    return shape, w, [np.broadcast_to(a, shape).ravel().astype(np.float64) for a in arrays]


def _delta(kind: str, w: NDArray[np.float64], f: NDArray[np.float64], k: NDArray[np.float64],
           df: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
    d_plus = (np.log(f / k) + 0.5 * s * s) / s
    if kind in ("spot", "forward"):
        out = w * ndtr(w * d_plus)
    else:
        out = w * (k / f) * ndtr(w * (d_plus - s))
    return out * df if kind in ("spot", "pa_spot") else out


def fx_delta(
    option_type: ArrayLike,
    spot: ArrayLike,
    strike: ArrayLike,
    domestic_discount: ArrayLike,
    foreign_discount: ArrayLike,
    std_dev: ArrayLike,
    delta_type: str,
) -> NDArray[np.float64]:
    """Delta of vanilla options in one of the FX conventions (see the module docstring).

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` or is_call.
    spot : array_like
        Spot S > 0 (domestic per foreign unit; for a coin-settled option: USD per coin).
    strike : array_like
        Strike K > 0.
    domestic_discount, foreign_discount : array_like
        Discount factors ``D_d``, ``D_f`` > 0 to expiry.
    std_dev : array_like
        ``sigma sqrt(T)`` > 0.
    delta_type : str
        ``spot``, ``forward``, ``pa_spot``, ``pa_forward`` (or ``Spot``, ``Fwd``, ``PaSpot``, ``PaFwd``).

    Returns
    -------
    ndarray of float64
        Deltas (unitless: foreign units per option, in the premium currency for the adjusted ones), of the
        broadcast shape.
    """
    kind = parse_delta_type(delta_type)
    shape, w, (s0, k, dd, df, s) = _inputs(option_type, spot, "strike", strike, domestic_discount,
                                           foreign_discount, std_dev)
    return _delta(kind, w, s0 * df / dd, k, df, s).reshape(shape)


def max_premium_adjusted_call_delta(
    spot: ArrayLike,
    domestic_discount: ArrayLike,
    foreign_discount: ArrayLike,
    std_dev: ArrayLike,
    delta_type: str = "pa_forward",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Largest premium-adjusted call delta and the strike ``K_max`` where it is reached.

    ``K_max = F exp(-s x - s^2/2)`` with ``x`` the root of ``s N(x) = n(x)`` (``x > -s``; found by bisection).

    Parameters
    ----------
    spot, domestic_discount, foreign_discount, std_dev : array_like
        As :func:`fx_delta`.
    delta_type : {"pa_forward", "pa_spot"}, default "pa_forward"

    Returns
    -------
    (ndarray, ndarray)
        The maximum delta and ``K_max``, of the broadcast shape.
    """
    kind = parse_delta_type(delta_type)
    if kind not in ("pa_spot", "pa_forward"):
        raise ValueError(f"delta_type: expected a premium-adjusted type, got {delta_type!r}")
    shape, w, (s0, _k, dd, df, s) = _inputs("call", spot, "strike", 1.0, domestic_discount, foreign_discount,
                                            std_dev)
    k_max = _k_max(s0 * df / dd, s)
    return _delta(kind, np.ones_like(s), s0 * df / dd, k_max, df, s).reshape(shape), k_max.reshape(shape)


def _k_max(f: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
    """Strike of the largest premium-adjusted call delta: ``s N(x) = n(x)`` on ``x in [-s, 40]``."""
    def g(x: NDArray[np.float64]) -> NDArray[np.float64]:
        return s * ndtr(x) - INV_SQRT_2PI * np.exp(-0.5 * x * x)

    x = _bisect(g, -s, np.full(s.shape, 40.0), increasing=True)
    return f * np.exp(-s * x - 0.5 * s * s)


def _bisect(fn: object, lo: NDArray[np.float64], hi: NDArray[np.float64], *, increasing: bool) -> NDArray[np.float64]:
    """Vectorised bisection of ``fn`` (monotone on ``[lo, hi]``, signs checked by the caller)."""
    lo, hi = lo.copy(), hi.copy()
    for _ in range(_BISECT_MAX):
        mid = 0.5 * (lo + hi)
        val = fn(mid)  # type: ignore[operator]
        up = (val > 0.0) if increasing else (val < 0.0)  # root lies below mid
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
        if np.all(hi - lo <= _BISECT_REL * np.maximum(np.abs(hi), np.abs(lo)) + 1e-300):
            break
    return 0.5 * (lo + hi)


def strike_from_delta(
    option_type: ArrayLike,
    delta: ArrayLike,
    spot: ArrayLike,
    domestic_discount: ArrayLike,
    foreign_discount: ArrayLike,
    std_dev: ArrayLike,
    delta_type: str,
) -> NDArray[np.float64]:
    """Strike of vanilla options with the given delta in one of the FX conventions (module docstring).

    Parameters
    ----------
    option_type : str, bool or array_like
        ``"call"``/``"put"`` or is_call.
    delta : array_like
        Target delta (positive for calls, negative for puts).
    spot, domestic_discount, foreign_discount, std_dev : array_like
        As :func:`fx_delta`.
    delta_type : str
        As :func:`fx_delta`.

    Returns
    -------
    ndarray of float64
        Strikes of the broadcast shape; for premium-adjusted calls the strike at or above ``K_max``.

    Raises
    ------
    ValueError
        If a delta has the wrong sign or is out of the convention's range (unadjusted: ``0 < |delta| < D``).
    ComputationError
        If a premium-adjusted call delta exceeds the maximum (no strike has it; the maximum is named).
    """
    kind = parse_delta_type(delta_type)
    shape, w, (s0, target, dd, df, s) = _inputs(option_type, spot, "delta", delta, domestic_discount,
                                                foreign_discount, std_dev)
    f = s0 * df / dd
    scale = df if kind in ("spot", "pa_spot") else np.ones_like(df)
    x = w * target / scale  # N(w d+) for unadjusted deltas
    bad = ~(x > 0.0)
    if kind in ("spot", "forward"):
        bad |= ~(x < 1.0)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"delta: {float(target[i])!r} at index {i} is outside the range of a "
                         f"{'call' if w[i] > 0 else 'put'} {kind} delta")
    # the unadjusted strike: closed form; for premium-adjusted deltas the bracket's unadjusted end
    x_unadj = np.minimum(x, 1.0 - 1e-16)
    k_unadj = f * np.exp(-w * s * ndtri(x_unadj) + 0.5 * s * s)
    if kind in ("spot", "forward"):
        return k_unadj.reshape(shape)
    out = np.empty_like(f)
    call = w > 0
    if np.any(call):
        fc, sc, tc, dc, kc = f[call], s[call], target[call], scale[call], k_unadj[call]
        k_lo = _k_max(fc, sc)
        top = dc * (k_lo / fc) * ndtr((np.log(fc / k_lo) - 0.5 * sc * sc) / sc)
        over = tc > top
        if np.any(over):
            j = int(np.flatnonzero(over)[0])
            raise ComputationError(
                f"delta: {float(tc[j])!r} of the call at index {int(np.flatnonzero(call)[j])} exceeds the largest "
                f"{kind} call delta {float(top[j])!r} (reached at strike {float(k_lo[j])!r}); no strike has it")
        k_hi = np.maximum(kc, k_lo)

        def fn_call(k: NDArray[np.float64]) -> NDArray[np.float64]:
            return dc * (k / fc) * ndtr((np.log(fc / k) - 0.5 * sc * sc) / sc) - tc

        out[call] = _bisect(fn_call, k_lo, k_hi, increasing=False)
    put = ~call
    if np.any(put):
        fp, sp, tp, dp, kp = f[put], s[put], target[put], scale[put], k_unadj[put]
        k_lo = np.minimum(0.5 * np.abs(tp) * fp / dp, kp)

        def fn_put(k: NDArray[np.float64]) -> NDArray[np.float64]:
            return -dp * (k / fp) * ndtr(-(np.log(fp / k) - 0.5 * sp * sp) / sp) - tp

        # premium-adjusted put delta falls with K: the root lies in [k_lo, unadjusted strike]
        hi = kp.copy()
        grow = fn_put(hi) > 0.0  # not yet bracketed (cannot happen for a finite put premium; kept safe)
        for _ in range(60):
            if not np.any(grow):
                break
            hi = np.where(grow, 2.0 * hi, hi)
            grow = fn_put(hi) > 0.0
        out[put] = _bisect(fn_put, k_lo, hi, increasing=False)
    return out.reshape(shape)
