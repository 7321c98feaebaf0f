"""Calibration pipeline: calibrate a house-model template on a history, backtest it, sweep parameters.

:func:`calibrated_model` = :func:`~greeksmargin.calibration.shocks.calibrate` +
:func:`~greeksmargin.calibration.model_file.apply_calibration`; :func:`sweep_point` adds the backtest
and returns one row of a sweep table (run by :func:`greeksmargin.engine.distributed.run_sweep`);
:func:`fhs_rescaled_margin` backtests dynamic FHS shocks (rescaled by the EWMA vol of each day).

Underlying names and targets of the bundled histories: ``sp500`` is margined as ``SPX`` and calibrates
the model's ``[grid.overrides.SPX]`` (and the SPX Greeks shocks); ``btc`` is ``BTC`` and calibrates the
model's default grid and Greeks shocks (crypto underlyings without their own override, ETH included,
inherit it). Any other history is its ``attrs["name"]`` upper-cased and calibrates the default.
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
import pandas as pd

from greeksmargin.calibration.backtest import engine_margin, run_backtest, stress_grid_margin
from greeksmargin.calibration.model_file import apply_calibration, build_model, sets_vol_shocks
from greeksmargin.calibration.shocks import Calibration, QuantileMethod, calibrate
from greeksmargin.errors import InputError, ModelError

_UNDERLYING = {"sp500": "SPX", "btc": "BTC", "eth": "ETH"}
_TARGET = {"sp500": "SPX", "btc": "default"}


def underlying_name(hist: pd.DataFrame) -> str:
    """Underlying name used for a history in positions and market snapshots (``SPX``, ``BTC``, ...)."""
    name = str(hist.attrs.get("name", "UNDERLYING"))
    return _UNDERLYING.get(name, name.upper())


def default_target(hist: pd.DataFrame) -> str:
    """Model target calibrated by a history: ``"SPX"`` for sp500, ``"default"`` otherwise."""
    return _TARGET.get(str(hist.attrs.get("name", "")), "default")


def calibrated_model(
    hist: pd.DataFrame,
    *,
    template: Any = "greeks-default",
    target: str | None = None,
    confidence: float = 0.99,
    mpor: int = 2,
    method: str = "hs",
    lam: float = 0.94,
    stress: tuple[Any, Any] | None = None,
    stress_weight: float = 1.0,
    kind: str = "simple",
    scale: float = 1.0,
    provenance: dict[str, Any] | None = None,
    calibrate_vol: bool | None = None,
    vol_series: str = "index",
    joint_vol: bool = False,
    vega_method: str = "index",
    vega_reference: Any = None,
    vega_floor: float = 0.5,
    adjust: Any = None,
) -> tuple[dict[str, Any], Calibration]:
    """Calibrate ``template`` on ``hist``: the new model dict and the calibration.

    Parameters
    ----------
    hist : pandas.DataFrame
        History (:func:`~greeksmargin.calibration.history.load_history`).
    template : str, Path or Model
        A ``greeks-stress`` model (name, file or loaded).
    target : str, optional
        ``"default"`` or an override name (default :func:`default_target`).
    confidence, mpor, method, lam, stress, stress_weight, kind
        See :func:`~greeksmargin.calibration.shocks.calibrate`.
    scale : float
        Multiplier of every calibrated shock (0.5 = halved shocks).
    provenance : dict, optional
        Extra ``[meta.calibration.<target>]`` entries.
    calibrate_vol : bool, optional
        See :func:`~greeksmargin.calibration.model_file.apply_calibration` (default: vol index only).
    vol_series : {"index", "filled"}
        Vol series of the vol shocks (:func:`~greeksmargin.calibration.shocks.vol_shocks`).
    joint_vol : bool
        Joint vol shock on the scan's vol-up state (:func:`~greeksmargin.calibration.model_file.apply_calibration`).
    vega_method : {"index", "reference"}
        Vega-charge shocks: the vol index's marginal c-quantiles, or the shocks with which the model
        (price shocks and scan calibrated first, at scale 1) covers the reference ATM straddles at c
        (:func:`~greeksmargin.calibration.reference.reference_vega_shocks`).
    vega_reference : ReferenceVega, optional
        With ``vega_method="reference"``: reuse these reference shocks (e.g. those of the scale-1 run, to
        build its halved-shocks twin) instead of computing them.
    vega_floor : float
        Floor of the reference shocks as a fraction of the marginal vol quantiles
        (:func:`~greeksmargin.calibration.model_file.apply_calibration`).
    adjust : callable, optional
        ``Calibration -> Calibration`` applied to the calibration before anything is derived from it
        (the anti-procyclicality floors of :mod:`greeksmargin.calibration.walkforward`).

    Returns
    -------
    (dict, Calibration)
        With ``vega_method="reference"`` the calibration's ``extra["vega_reference"]`` holds the
        :class:`~greeksmargin.calibration.reference.ReferenceVega` used.
    """
    from greeksmargin.engine.models import load_model

    model = load_model(template)
    cal = calibrate(
        hist, confidence, mpor, method, lam, kind=kind, stress=stress, stress_weight=stress_weight,
        vol_series=vol_series,
    )
    if adjust is not None:
        cal = adjust(cal)
    if vega_method not in ("index", "reference"):
        raise InputError(f"unknown vega method {vega_method!r} (use 'index' or 'reference')", column="vega_method")
    target = target or default_target(hist)
    ref = vega_reference if vega_method == "reference" else None
    if vega_method == "reference" and ref is None:
        from greeksmargin.calibration.reference import reference_vega_shocks

        if not sets_vol_shocks(cal, calibrate_vol):
            raise ModelError(f"reference vega shocks need calibrated vol shocks: {cal.dataset} has no vol index "
                             "(give --vol-from-proxy to calibrate on its realised-vol proxy)",
                             key="components.vega.shock")
        unscaled = apply_calibration(model.raw, cal, target=target, calibrate_vol=calibrate_vol, joint_vol=joint_vol)
        ref = reference_vega_shocks(
            unscaled, _vol_rows(hist, vol_series), confidence, mpor, target=target, underlying=underlying_name(hist),
            quantile_method=cast(QuantileMethod, cal.quantile_method),
        )
    raw = apply_calibration(
        model.raw, cal, target=target, scale=scale, provenance=provenance,
        calibrate_vol=calibrate_vol, joint_vol=joint_vol, vega_reference=ref, vega_floor=vega_floor,
    )
    if ref is not None:
        cal.extra["vega_reference"] = ref
    return raw, cal


def _vol_rows(hist: pd.DataFrame, vol_series: str) -> pd.DataFrame:
    """The history with ``vol`` kept on the rows the vol series uses (index rows only for ``"index"``)."""
    if vol_series != "index" or not (hist["vol_source"] == "index").any():
        return hist
    out = hist.copy()
    out.loc[out["vol_source"] != "index", "vol"] = np.nan
    return out


def margin_function(model: Any, hist: pd.DataFrame, margin: str = "engine") -> Any:
    """The backtest margin function of a model: ``"engine"`` (compute_margin) or ``"stress-grid"`` (scan only)."""
    if margin == "engine":
        return engine_margin(model, underlying=underlying_name(hist))
    if margin == "stress-grid":
        grid = model.params.grid_for(underlying_name(hist))
        if grid is None:
            raise InputError(f"model {model.name} has no scenario grid", column="model")
        return stress_grid_margin(grid)
    raise InputError(f"unknown margin function {margin!r} (use engine or stress-grid)", column="margin")


def sweep_point(
    confidence: float,
    mpor: int,
    lam: float,
    model: str,
    *,
    history: pd.DataFrame,
    method: str = "fhs",
    step: int = 1,
    margin: str = "engine",
    scale: float = 1.0,
    vol_series: str = "index",
    joint_vol: bool = False,
    vega_method: str = "index",
) -> dict[str, Any]:
    """One sweep cell: calibrate ``model`` at (confidence, MPOR, lambda), backtest it, summarise.

    Parameters
    ----------
    confidence, mpor, lam : float, int, float
        Calibration settings (``lam`` is used by FHS only).
    model : str
        Template model name or path.
    history : pandas.DataFrame
        History (calibration and backtest on the same data: an in-sample check).
    method : {"hs", "fhs"}
        Calibration method.
    step : int
        Backtest every ``step``-th day.
    margin : {"engine", "stress-grid"}
        Margin function of the backtest.
    scale : float
        Multiplier of the calibrated shocks.
    vol_series, joint_vol, vega_method
        Vol settings of :func:`calibrated_model` (the shipped house model: ``"filled"``, ``True``,
        ``"reference"``).

    Returns
    -------
    dict
        ``price_shock_down``, ``price_shock_up``, ``vol_shock_up``, ``vol_shock_down`` (relative, of the
        vol series), ``vega_shock_up`` / ``vega_shock_down`` (those of the vega charge: the floored reference
        shocks, or the vol series' with ``vega_method="index"``), pooled
        ``breaches`` / ``expected`` / ``kupiec_p``, ``kupiec_p_long_future``, ``kupiec_p_short_future``,
        ``portfolios_passing`` (Kupiec p > 0.05), ``min_christoffersen_p``, ``mean_efficiency``,
        ``max_peak_to_trough``.
    """
    raw, cal = calibrated_model(
        history, template=model, confidence=confidence, mpor=int(mpor), method=method, lam=lam, scale=scale,
        vol_series=vol_series, joint_vol=joint_vol, vega_method=vega_method,
    )
    rec = raw["meta"]["calibration"][default_target(history)]
    built = build_model(raw)
    res = run_backtest(history, margin_function(built, history, margin), confidence=confidence, mpor=int(mpor),
                       step=step)
    s = res.summary.set_index("portfolio")
    per = s.drop(index="all")
    return {
        "price_shock_down": cal.price_shock_down,
        "price_shock_up": cal.price_shock_up,
        "vol_shock_up": cal.vol.up,
        "vol_shock_down": cal.vol.down,
        "vega_shock_up": rec.get("vega_shock_up", cal.vol.up),
        "vega_shock_down": rec.get("vega_shock_down", cal.vol.down),
        "breaches": int(s.at["all", "breaches"]),
        "expected": float(s.at["all", "expected"]),
        "kupiec_p": float(s.at["all", "kupiec_p"]),
        "kupiec_p_long_future": float(s.at["long_future", "kupiec_p"]) if "long_future" in s.index else float("nan"),
        "kupiec_p_short_future": float(s.at["short_future", "kupiec_p"])
        if "short_future" in s.index
        else float("nan"),
        "portfolios_passing": int((per["kupiec_p"] > 0.05).sum()),
        "min_christoffersen_p": float(per["christoffersen_p"].min()),
        "mean_efficiency": float(per["efficiency"].mean()),
        "max_peak_to_trough": float(per["peak_to_trough_1y"].max()),
    }


def fhs_rescaled_margin(
    template: Any,
    hist: pd.DataFrame,
    *,
    confidence: float = 0.99,
    mpor: int = 2,
    lam: float = 0.94,
    target: str | None = None,
    margin: str = "engine",
    floor: tuple[float, float] | None = None,
) -> Any:
    """Margin function of a model whose price shocks follow the EWMA volatility day by day (dynamic FHS).

    The filtered h-day log-return quantiles ``q_low, q_high`` are computed once on the whole history
    (:func:`~greeksmargin.calibration.shocks.filtered_h_day_returns`, rescaled to ``sigma_now``); on test
    day ``t`` the shocks are ``down_t = 1 - exp(k_t q_low)``, ``up_t = exp(k_t q_high) - 1`` with
    ``k_t = sigma_t / sigma_now`` and ``sigma_t`` the EWMA forecast known at the close of ``t`` (causal).
    The standardised-return distribution is in-sample. ``floor = (down, up)`` floors both shocks
    (anti-procyclicality). Vol shocks and every other parameter stay as in ``template`` calibrated by
    :func:`calibrated_model` (HS-equivalent settings, vol from the index).

    Parameters
    ----------
    template : str, Path or Model
        House-model template.
    hist : pandas.DataFrame
        History.
    confidence, mpor, lam : float, int, float
        FHS settings.
    target : str, optional
        Model target (default :func:`default_target`).
    margin : {"engine", "stress-grid"}
        Margin function used each day.
    floor : (float, float), optional
        Minimum down and up shocks.

    Returns
    -------
    MarginFunction
        Named ``fhs_rescaled_<margin>``.
    """
    import dataclasses

    import numpy as np

    from greeksmargin.calibration.history import ewma_sigma
    from greeksmargin.calibration.shocks import filtered_h_day_returns

    _, cal0 = calibrated_model(hist, template=template, target=target, confidence=confidence, mpor=mpor,
                               method="fhs", lam=lam)
    prices = hist["price"].to_numpy(dtype=float)
    logs, sigma_now = filtered_h_day_returns(prices, int(mpor), lam, "log")
    q_lo, q_hi = np.quantile(logs, [1.0 - confidence, confidence])
    sig = ewma_sigma(np.diff(np.log(prices)), lam)  # sig[j]: forecast known at row j's close
    fl_down, fl_up = floor if floor is not None else (0.0, 0.0)
    tgt = target or default_target(hist)
    from greeksmargin.engine.models import load_model

    base_raw = load_model(template).raw

    def margin_fn(h: pd.DataFrame, days: np.ndarray, portfolios: Any, tenor_days: float) -> np.ndarray:
        out = np.zeros((len(days), len(portfolios)))
        for r, j in enumerate(days):
            k = sig[j] / sigma_now
            down = max(float(-np.expm1(k * q_lo)), fl_down)
            up = max(float(np.expm1(k * q_hi)), fl_up)
            cal = dataclasses.replace(cal0, price_shock_down=down, price_shock_up=up, price_shock=max(down, up))
            model = build_model(apply_calibration(base_raw, cal, target=tgt))
            out[r] = margin_function(model, h, margin)(h, np.array([j]), portfolios, tenor_days)[0]
        return out

    margin_fn.__name__ = f"fhs_rescaled_{margin}"
    return margin_fn
