"""Vega-charge shocks calibrated on reference portfolios: the ATM straddles of the vega pivot tenor.

The marginal c-quantile of the vol index's h-day change (:func:`greeksmargin.calibration.shocks.vol_shocks`)
is the right shock for a book whose only risk is the vol level. An option book also carries gamma and
theta over the MPOR, and the tails of the vol and of the spot move together: the largest vol falls of an
equity index come in rallies (a long straddle's gamma gain offsets part of its vega loss), its largest
vol rises in sell-offs, where the scan's joint (price, vol) scenarios already charge a short straddle.
The house model combines its charges by ``max(scan, delta, gamma, vega)``, so a vega charge at the marginal
vol quantile on top of a scan that already covers the joint tail over-covers option books (fewer breaches
than ``1 - c``, which a two-sided coverage test rejects as firmly as too many).

Reference calibration (``vega_method = "reference"``) sets the vega charge's two shocks so that the model,
*with its calibrated price shocks and scan already in place*, covers the realised h-day loss of two
reference portfolios at confidence ``c`` in the calibration window:

* vol **down** shock (charged on net long vega): the long ATM straddle (1 call + 1 put struck at the spot);
* vol **up** shock (charged on net short vega): the short ATM straddle;

both of the vega rule's pivot tenor (``pivot_days``, where the term multiplier ``(pivot / DTE)^p`` is 1),
priced as the backtest prices them (:mod:`greeksmargin.calibration.backtest`: Black-76, zero rate, flat vol
at the history's ``vol`` of the day, realised loss revalued at ``S_{t+h}``, ``vol_{t+h}`` and the remaining
time). For each day ``t`` of the window:

1. the figures of the model with the vega charge switched off (the template's shocks of the target set to
   0) come from :func:`greeksmargin.calibration.backtest.engine_figures` (``compute_margin``);
2. the vega figure at a shock ``s`` is the engine's own charge of the reference straddle at that shock
   (``method = "revaluation"``: the revalued loss of the losing direction, the shocked-down vol floored at
   :data:`greeksmargin.engine.margin.REVAL_MIN_VOL`; ``"taylor"``: net vega x shock), and ``IM_t(s)`` is the
   model's ``im`` expression evaluated on these figures (floored at 0);
3. ``s_t`` is the smallest ``s >= 0`` with ``IM_t(s) >= L_t`` (0 when the other charges already cover the
   day's loss ``L_t``; bisection, ``IM_t`` is non-decreasing in ``s``); ``+inf`` when no shock up to the
   bound covers it.

The shock is ``quantile(s_t, c)`` (numpy, the calibration's interpolation method): by construction the
model covers the reference straddle on a fraction ``c`` of the window's days (up to the interpolation
between two order statistics). ``cap_at_isolated`` is not applied in step 2 (for a straddle of same-sign
legs the unit and isolated vega charges coincide); the coverage the engine actually achieves is what
:func:`greeksmargin.calibration.backtest.run_backtest` measures, and the tests check it.

This is an in-sample calibration on two of the backtest's nine portfolios (as the price shock is in-sample
for the futures); the strangles, risk reversal, covered call and call spread are not used.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.calibration.backtest import Leg, engine_figures, position_arrays, realised_pnl
from greeksmargin.calibration.shocks import QuantileMethod, ReferenceVega
from greeksmargin.errors import InputError, ModelError

__all__ = ["REFERENCE_PORTFOLIOS", "ReferenceVega", "reference_vega_shocks"]

#: the reference portfolios of the vol-down (long) and vol-up (short) shocks, per unit of underlying
REFERENCE_PORTFOLIOS: dict[str, tuple[Leg, ...]] = {
    "long_straddle": (Leg("option", 1, "call"), Leg("option", 1, "put")),
    "short_straddle": (Leg("option", -1, "call"), Leg("option", -1, "put")),
}

#: bisection bounds of the implied shock (relative: a fall cannot exceed 100% of the vol)
_BOUND = {("relative", "down"): 1.0, ("relative", "up"): 20.0, ("absolute", "down"): 5.0, ("absolute", "up"): 5.0}
_ITERATIONS = 60


def _without_vega(raw: dict[str, Any], target: str) -> dict[str, Any]:
    """The model dict with the target's vega shocks set to 0 (the vega charge off for that underlying)."""
    out = copy.deepcopy(raw)
    vega = out.get("components", {}).get("vega")
    if vega is None:
        raise ModelError("the template has no [components.vega] to calibrate", key="components.vega")
    if target == "default":
        vega["shock"] = 0.0
        vega["shock_down"] = 0.0
    else:
        vega.setdefault("shock_by_underlying", {})[target] = 0.0
        vega.setdefault("shock_down_by_underlying", {})[target] = 0.0
    return out


def _vega_figure(
    arrays: dict[str, np.ndarray], day_pos: np.ndarray, n_days: int, side: str, params: dict[str, Any],
) -> Callable[[np.ndarray], np.ndarray]:
    """``shock (n_days,) -> the engine's vega charge of one reference straddle per day`` at those shocks."""
    from greeksmargin.engine.margin import REVAL_MIN_VOL
    from greeksmargin.risk.scenarios import VolShockRule, scenario_pnl, sensitivities

    rule = VolShockRule(kind=params["kind"], short_power=params["short_power"], long_power=params["long_power"],
                        pivot_days=params["pivot_days"], floor_days=params["floor_days"])
    mult = rule.multiplier(arrays["T"])
    vol = arrays["vol"]
    sign = 1.0 if side == "up" else -1.0
    relative = params["kind"] == "relative"
    # Taylor: the P&L per unit of shock does not depend on the shock (vega per 1.00 vol, computed once)
    slope = None if params["method"] == "revaluation" else sensitivities(arrays)[2] * (vol if relative else 1.0)

    def charge(shock: np.ndarray) -> np.ndarray:
        s = sign * shock[day_pos] * mult
        if slope is not None:
            pnl = slope * s
        else:
            shocked = np.maximum(vol * (1.0 + s) if relative else vol + s, np.minimum(vol, REVAL_MIN_VOL))
            pnl = scenario_pnl(arrays, np.zeros((1, vol.size)), shocked[None, :])[0]
        return np.maximum(-np.bincount(day_pos, weights=pnl, minlength=n_days), 0.0)

    return charge


def reference_vega_shocks(
    raw: dict[str, Any],
    hist: pd.DataFrame,
    confidence: float,
    mpor: int,
    *,
    target: str,
    underlying: str,
    quantile_method: QuantileMethod = "linear",
    tenor_days: float | None = None,
) -> ReferenceVega:
    """Vega-charge shocks that make the model cover the reference straddles at ``confidence`` (module docstring).

    Parameters
    ----------
    raw : dict
        A ``greeks-stress`` model dict with its price shocks and scan already calibrated for ``target``.
    hist : pandas.DataFrame
        The calibration window of the history, with a ``vol`` on every row used.
    confidence : float
        ``c`` in (0.5, 1).
    mpor : int
        Margin period of risk ``h`` in rows (trading days).
    target : str
        ``"default"`` or the override name the calibration writes (its vega shocks are switched off).
    underlying : str
        Underlying name of the reference positions (selects the model's overrides).
    quantile_method : str
        numpy quantile interpolation method.
    tenor_days : float, optional
        Tenor of the straddles (default: the vega rule's ``pivot_days``).

    Returns
    -------
    ReferenceVega

    Raises
    ------
    InputError
        Fewer than 20 days with a vol at ``t`` and ``t + h``, or more than ``1 - c`` of the days cannot be
        covered by any shock up to the bound.
    """
    from greeksmargin.calibration.model_file import build_model
    from greeksmargin.methodologies.house.combine import evaluate

    if not 0.5 < confidence < 1:
        raise InputError(f"confidence must be in (0.5, 1), got {confidence}", column="confidence")
    h = int(mpor)
    model0 = build_model(_without_vega(raw, target), "<vega off>")
    rs = model0.params
    params = rs.components["vega"]
    tenor = float(params["pivot_days"] if tenor_days is None else tenor_days)
    vol = hist["vol"].to_numpy(dtype=float)
    ok = np.isfinite(vol[:-h]) & np.isfinite(vol[h:]) if len(hist) > h else np.zeros(0, dtype=bool)
    days = np.flatnonzero(ok)
    if days.size < 20:
        raise InputError(f"{days.size} days with a vol at t and t + {h}: too few for reference calibration",
                         column="vol")
    figures = engine_figures(model0, hist, days, REFERENCE_PORTFOLIOS, tenor, underlying=underlying)
    loss = -realised_pnl(hist, days, REFERENCE_PORTFOLIOS, h, tenor)
    nd = days.size
    shocks: dict[str, float] = {}
    covered: dict[str, float] = {}
    zero: dict[str, float] = {}
    for j, (name, side) in enumerate((("long_straddle", "down"), ("short_straddle", "up"))):
        arrays, day_pos, _ = position_arrays(hist, days, {name: REFERENCE_PORTFOLIOS[name]}, tenor)
        base = {f: v[:, j].copy() for f, v in figures.items() if f != "im"}
        if "long_premium_cap" in base:  # the accounts table reports a cap that does not apply as NaN
            base["long_premium_cap"] = np.where(np.isnan(base["long_premium_cap"]), np.inf, base["long_premium_cap"])

        vega_at = _vega_figure(arrays, day_pos, nd, side, params)

        def im_at(shock: np.ndarray, base: dict[str, np.ndarray] = base,
                  vega_at: Callable[[np.ndarray], np.ndarray] = vega_at) -> np.ndarray:
            return np.maximum(evaluate(rs.im, dict(base, vega=vega_at(shock))) * np.ones(nd), 0.0)

        target_loss = loss[:, j]
        hi_bound = _BOUND[(params["kind"], side)]
        lo = np.zeros(nd)
        hi = np.full(nd, hi_bound)
        covered0 = im_at(lo) >= target_loss
        reachable = im_at(hi) >= target_loss
        for _ in range(_ITERATIONS):
            mid = 0.5 * (lo + hi)
            ok_mid = im_at(mid) >= target_loss
            hi = np.where(ok_mid, mid, hi)
            lo = np.where(ok_mid, lo, mid)
        s_t = np.where(covered0, 0.0, np.where(reachable, hi, np.inf))
        q = float(np.quantile(s_t, confidence, method=quantile_method))
        if not np.isfinite(q):
            raise InputError(
                f"the {name.replace('_', ' ')} loses more than any vol-{side} shock up to {hi_bound} covers on "
                f"{(~reachable).mean():.2%} of the days (> 1 - c): no reference shock at c={confidence}",
                column="vol",
            )
        shocks[side] = q
        covered[side] = float(np.mean(s_t <= q))
        zero[side] = float(np.mean(covered0))
    dates = hist["date"]
    return ReferenceVega(
        up=shocks["up"], down=shocks["down"], kind=str(params["kind"]), tenor_days=tenor, n_days=int(nd),
        covered_up=covered["up"], covered_down=covered["down"], zero_up=zero["up"], zero_down=zero["down"],
        start=str(pd.Timestamp(dates.iat[int(days[0])]).date()), end=str(pd.Timestamp(dates.iat[int(days[-1])]).date()),
    )
