"""Shock sizes from history: price shocks over a margin period of risk and vol shocks.

Notation: prices ``P_0..P_{n-1}`` (one per trading day), confidence ``c`` (e.g. 0.99), margin period of
risk (MPOR) ``h`` trading days.

h-day returns (overlapping, one per start day ``t = 0..n-1-h``)
    ``kind="log"``: ``R_t = ln(P_{t+h} / P_t)``; ``kind="simple"``: ``R_t = P_{t+h} / P_t - 1``.

Plain historical simulation (``method="hs"``)
    ``q_low = np.quantile(R, 1 - c)``, ``q_high = np.quantile(R, c)`` with numpy's interpolation
    ``quantile_method`` (default ``"linear"``, numpy's default): exactly what numpy returns on the same data.

EWMA-filtered historical simulation (``method="fhs"``, Hull-White / Barone-Adesi)
    Daily log returns ``r_t`` are devolatilised by the RiskMetrics EWMA forecast ``sigma_t`` (decay
    ``lam``, using returns strictly before ``t``; :func:`greeksmargin.calibration.history.ewma_sigma`),
    ``z_t = r_t / sigma_t``, and rescaled to the current forecast ``sigma_now`` (the forecast for the day
    after the last observation): ``r~_t = z_t * sigma_now``. The filtered h-day returns are the overlapping
    sums of ``h`` consecutive ``r~`` (converted to simple returns with ``exp(.) - 1`` when
    ``kind="simple"``); their quantiles are taken as for HS. The shock is therefore conditional on the
    volatility at the end of the window: high after a turbulent period, low after a calm one.

Price shocks (positive relative moves of the underlying)
    ``down = -(q_low)`` and ``up = q_high`` for simple returns, ``down = 1 - exp(q_low)`` and
    ``up = exp(q_high) - 1`` for log returns. Both tails are kept: a long position loses on the down
    shock, a short one on the up shock. ``price_shock = max(down, up)`` for a symmetric rule.

Stressed-period floor (anti-procyclicality)
    With ``stress=(from, to)`` the plain-HS shocks of the h-day returns starting inside the window,
    times ``stress_weight``, floor each tail: ``shock = max(shock, stress_weight * stressed_shock)``.

Vol shocks
    From the vol index's h-day log changes ``D_t = ln(v_{t+h} / v_t)`` over the rows where the vol comes
    from the index (``vol_source == "index"``; the realised-vol proxy is used, and said so, when the
    history has no index): ``vol_up = exp(quantile(D, c)) - 1`` and ``vol_down = 1 - exp(quantile(D, 1-c))``
    (relative moves of the vol level), and the absolute counterparts ``quantile(v_{t+h} - v_t, c)`` and
    ``-quantile(v_{t+h} - v_t, 1 - c)`` in vol (decimal). ``vol_series="filled"`` uses every row of the
    history's ``vol`` (index where it exists, realised-vol proxy elsewhere): the vol path a backtest on the
    same history prices with.

Joint vol shock (the vol move that accompanies a c-quantile price move)
    The scan combines every spot point with the vol states; with the marginal c-quantile vol shock the
    corner (spot c-quantile, vol c-quantile) is a joint event far rarer than ``1 - c`` and the scan
    over-covers short-option portfolios. ``vol_up_joint`` is the median of ``D_t`` over the rows whose
    h-day price return is in either c-tail (``r <= quantile(r, 1-c)`` or ``r >= quantile(r, c)``) when it
    is a rise (else 0), ``vol_down_joint`` the same median when it is a fall (else 0): the typical vol
    move *given* a c-quantile price move. For jointly elliptical factors with correlation ``rho`` the
    point of the c-ellipse at the marginal spot quantile has the vol move ``rho x`` its marginal quantile,
    not the marginal quantile itself. The house model (``joint_vol``) puts these on the scan's vol states,
    so every scan scenario with a price move is a joint c-scenario, and keeps the marginal shocks for the
    stand-alone vega charge (pure vol risk, spot unchanged, in the losing direction):
    ``max(scan, delta, gamma, vega)`` then covers the joint spot-vol risk and the pure vol risk each at
    c. ``_abs`` likewise for absolute changes (decimal vol).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from greeksmargin.calibration.history import ewma_sigma, select_dates
from greeksmargin.errors import InputError

METHODS = ("hs", "fhs")
# numpy.quantile's interpolation methods (the ``method`` argument)
QuantileMethod = Literal[
    "inverted_cdf",
    "averaged_inverted_cdf",
    "closest_observation",
    "interpolated_inverted_cdf",
    "hazen",
    "weibull",
    "linear",
    "median_unbiased",
    "normal_unbiased",
    "lower",
    "higher",
    "midpoint",
    "nearest",
]
RETURN_KINDS = ("log", "simple")


def h_day_returns(prices: np.ndarray, h: int, kind: str = "simple") -> np.ndarray:
    """Overlapping h-day returns of a price series.

    Parameters
    ----------
    prices : ndarray of shape (n,)
        Positive prices, one per trading day.
    h : int
        Horizon in trading days (rows), >= 1.
    kind : {"simple", "log"}
        ``P_{t+h}/P_t - 1`` or ``ln(P_{t+h}/P_t)``.

    Returns
    -------
    ndarray of shape (n - h,)
        ``R_t`` for ``t = 0..n-1-h``.
    """
    p = np.asarray(prices, dtype=float)
    _check_h(h, p.size)
    if kind == "simple":
        return p[h:] / p[:-h] - 1.0
    if kind == "log":
        return np.log(p[h:] / p[:-h])
    raise InputError(f"unknown return kind {kind!r} (use one of {RETURN_KINDS})", column="kind")


def _check_h(h: int, n: int) -> None:
    if int(h) != h or h < 1:
        raise InputError(f"MPOR must be a positive whole number of days, got {h}", column="mpor")
    if n <= h + 1:
        raise InputError(f"history of {n} rows too short for an MPOR of {h} days", column="mpor")


def _check_confidence(c: float) -> None:
    if not 0.5 < c < 1.0:
        raise InputError(f"confidence must be in (0.5, 1), got {c}", column="confidence")


def hs_quantiles(returns: np.ndarray, confidence: float, method: QuantileMethod = "linear") -> tuple[float, float]:
    """Lower and upper tail quantiles of a return sample (plain historical simulation).

    Parameters
    ----------
    returns : ndarray of shape (m,)
        h-day returns.
    confidence : float
        ``c`` in (0.5, 1).
    method : str
        numpy quantile interpolation method.

    Returns
    -------
    (float, float)
        ``(np.quantile(returns, 1 - c), np.quantile(returns, c))``.
    """
    _check_confidence(confidence)
    r = np.asarray(returns, dtype=float)
    lo, hi = np.quantile(r, [1.0 - confidence, confidence], method=method)
    return float(lo), float(hi)


def filtered_h_day_returns(
    prices: np.ndarray, h: int, lam: float = 0.94, kind: str = "simple"
) -> tuple[np.ndarray, float]:
    """EWMA-filtered h-day returns rescaled to the current volatility (module docstring, FHS).

    Parameters
    ----------
    prices : ndarray of shape (n,)
        Positive prices.
    h : int
        Horizon in trading days.
    lam : float
        EWMA decay factor.
    kind : {"simple", "log"}
        Return kind of the output.

    Returns
    -------
    (ndarray of shape (n - h,), float)
        Filtered h-day returns and ``sigma_now`` (daily EWMA volatility forecast for the next day).
    """
    p = np.asarray(prices, dtype=float)
    _check_h(h, p.size)
    r = np.diff(np.log(p))
    sig = ewma_sigma(r, lam)
    sigma_now = float(sig[-1])
    z = r / sig[:-1]
    rt = z * sigma_now
    c = np.concatenate([[0.0], np.cumsum(rt)])
    log_h = c[h:] - c[:-h]
    if kind == "log":
        return log_h, sigma_now
    if kind == "simple":
        return np.expm1(log_h), sigma_now
    raise InputError(f"unknown return kind {kind!r} (use one of {RETURN_KINDS})", column="kind")


def _to_moves(q_low: float, q_high: float, kind: str) -> tuple[float, float]:
    if kind == "log":
        return float(-np.expm1(q_low)), float(np.expm1(q_high))
    return float(-q_low), float(q_high)


@dataclass(frozen=True)
class VolShock:
    """Vol shocks from h-day changes of a vol index (relative and absolute, both directions)."""

    up: float
    down: float
    up_abs: float
    down_abs: float
    source: str
    n_obs: int
    start: str
    end: str
    up_joint: float = float("nan")
    up_joint_abs: float = float("nan")
    down_joint: float = float("nan")
    down_joint_abs: float = float("nan")


def vol_shocks(
    hist: pd.DataFrame, confidence: float, h: int, method: QuantileMethod = "linear", series: str = "index"
) -> VolShock:
    """Vol shocks at confidence ``c`` over ``h`` days from the history's vol index (module docstring).

    Parameters
    ----------
    hist : pandas.DataFrame
        History with ``vol`` and ``vol_source`` columns.
    confidence : float
        ``c`` in (0.5, 1).
    h : int
        Horizon in rows of the vol series.
    method : str
        numpy quantile interpolation method.
    series : {"index", "filled"}
        ``"index"``: the vol index's own days; ``"filled"``: every day of the history's ``vol`` (index
        where it exists, the realised-vol proxy elsewhere), i.e. the vol path a backtest on this history
        prices with (source ``"filled"``).

    Returns
    -------
    VolShock
        ``up``/``down`` relative moves of the vol level, ``up_abs``/``down_abs`` in vol (decimal),
        ``source`` ``"index"`` or ``"proxy"``; NaN shocks and source ``"none"`` when the history has no vol.
    """
    _check_confidence(confidence)
    index_rows = (hist["vol_source"] == "index").to_numpy() & np.isfinite(hist["vol"].to_numpy(dtype=float))
    source = "index"
    if series not in ("index", "filled"):
        raise ValueError(f"vol series must be 'index' or 'filled', got {series!r}")
    if series == "filled" and (hist["vol_source"] == "index").any():
        index_rows = np.isfinite(hist["vol"].to_numpy(dtype=float))
        source = "filled"
    if index_rows.sum() <= h + 20:
        index_rows = np.isfinite(hist["vol"].to_numpy(dtype=float))
        source = "proxy"
    if index_rows.sum() <= h + 1:
        nan = float("nan")
        return VolShock(nan, nan, nan, nan, "none", 0, "", "")
    sub = hist.loc[index_rows]
    v = sub["vol"].to_numpy(dtype=float)
    _check_h(h, v.size)
    d_log = np.log(v[h:] / v[:-h])
    d_abs = v[h:] - v[:-h]
    lo, hi = np.quantile(d_log, [1.0 - confidence, confidence], method=method)
    lo_a, hi_a = np.quantile(d_abs, [1.0 - confidence, confidence], method=method)
    # joint: median vol move over the rows whose h-day price return is in either c-tail (module docstring)
    up_joint = up_joint_abs = down_joint = down_joint_abs = float("nan")
    if "price" in sub.columns:
        p = sub["price"].to_numpy(dtype=float)
        r = p[h:] / p[:-h] - 1.0
        r_lo, r_hi = np.quantile(r, [1.0 - confidence, confidence], method=method)
        tail = (r <= r_lo) | (r >= r_hi)
        if tail.any():
            med, med_a = float(np.median(d_log[tail])), float(np.median(d_abs[tail]))
            up_joint, up_joint_abs = max(float(np.expm1(med)), 0.0), max(med_a, 0.0)
            down_joint, down_joint_abs = max(float(-np.expm1(med)), 0.0), max(-med_a, 0.0)
    return VolShock(
        up=float(np.expm1(hi)),
        down=float(-np.expm1(lo)),
        up_abs=float(hi_a),
        down_abs=float(-lo_a),
        source=source,
        n_obs=int(d_log.size),
        start=str(sub["date"].iloc[0].date()),
        end=str(sub["date"].iloc[-1].date()),
        up_joint=up_joint,
        up_joint_abs=up_joint_abs,
        down_joint=down_joint,
        down_joint_abs=down_joint_abs,
    )


@dataclass(frozen=True)
class Calibration:
    """Result of :func:`calibrate`: shocks and the settings that produced them.

    Price shocks are positive relative moves of the underlying over the MPOR; ``q_low``/``q_high`` the
    quantiles of the (filtered, for FHS) h-day returns in the return kind used.
    """

    dataset: str
    source: str
    start: str
    end: str
    n_returns: int
    confidence: float
    mpor: int
    method: str
    lam: float | None
    return_kind: str
    quantile_method: str
    q_low: float
    q_high: float
    price_shock_down: float
    price_shock_up: float
    price_shock: float
    hs_price_shock_down: float
    hs_price_shock_up: float
    sigma_now: float
    sigma_annual_now: float
    stress_from: str | None
    stress_to: str | None
    stress_weight: float
    stressed_shock_down: float | None
    stressed_shock_up: float | None
    floor_binding: bool
    vol: VolShock
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (nested ``vol``), ``None`` values dropped (TOML has no null)."""
        d = asdict(self)
        return _drop_none(d)


def _drop_none(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _drop_none(v) for k, v in d.items() if v is not None}
    return d


def calibrate(
    hist: pd.DataFrame,
    confidence: float = 0.99,
    mpor: int = 2,
    method: str = "hs",
    lam: float = 0.94,
    *,
    kind: str = "simple",
    quantile_method: QuantileMethod = "linear",
    stress: tuple[Any, Any] | None = None,
    stress_weight: float = 1.0,
    start: Any = None,
    end: Any = None,
    vol_series: str = "index",
) -> Calibration:
    """Calibrate the price and vol shocks of a margin model on a daily history (module docstring).

    Parameters
    ----------
    hist : pandas.DataFrame
        History from :func:`greeksmargin.calibration.history.load_history`.
    confidence : float
        ``c`` in (0.5, 1), e.g. 0.99.
    mpor : int
        Margin period of risk ``h`` in trading days.
    method : {"hs", "fhs"}
        Plain or EWMA-filtered historical simulation.
    lam : float
        EWMA decay (FHS only; ignored and recorded as ``None`` for HS).
    kind : {"simple", "log"}
        Return kind of the h-day returns.
    quantile_method : str
        numpy quantile interpolation method.
    stress : (date, date), optional
        Stressed window for the floor.
    stress_weight : float
        Weight of the stressed shocks in the floor.
    start, end : date, optional
        Calibration window (default: the whole history).
    vol_series : {"index", "filled"}
        Vol series of the vol shocks (:func:`vol_shocks`).

    Returns
    -------
    Calibration
    """
    _check_confidence(confidence)
    if method not in METHODS:
        raise InputError(f"unknown calibration method {method!r} (use one of {METHODS})", column="method")
    if kind not in RETURN_KINDS:
        raise InputError(f"unknown return kind {kind!r} (use one of {RETURN_KINDS})", column="kind")
    h = int(mpor)
    window = select_dates(hist, start, end) if (start is not None or end is not None) else hist
    prices = window["price"].to_numpy(dtype=float)
    r_hs = h_day_returns(prices, h, kind)
    hs_lo, hs_hi = hs_quantiles(r_hs, confidence, quantile_method)
    hs_down, hs_up = _to_moves(hs_lo, hs_hi, kind)
    sig = ewma_sigma(np.diff(np.log(prices)), lam)
    sigma_now = float(sig[-1])
    if method == "hs":
        q_lo, q_hi, n = hs_lo, hs_hi, r_hs.size
    else:
        r_f, sigma_now = filtered_h_day_returns(prices, h, lam, kind)
        q_lo, q_hi = hs_quantiles(r_f, confidence, quantile_method)
        n = r_f.size
    down, up = _to_moves(q_lo, q_hi, kind)
    s_down = s_up = None
    binding = False
    if stress is not None:
        s_from, s_to = pd.Timestamp(stress[0]), pd.Timestamp(stress[1])
        dates = hist["date"]
        lo_i = int(np.searchsorted(dates.to_numpy(), np.datetime64(s_from)))
        hi_i = int(np.searchsorted(dates.to_numpy(), np.datetime64(s_to), side="right"))
        sp = hist["price"].to_numpy(dtype=float)[lo_i : min(hi_i + h, len(hist))]
        if sp.size <= h + 1:
            raise InputError(f"stressed window {s_from.date()}..{s_to.date()} has too few rows", column="stress")
        s_lo, s_hi = hs_quantiles(h_day_returns(sp, h, kind)[: max(1, hi_i - lo_i)], confidence, quantile_method)
        s_down, s_up = _to_moves(s_lo, s_hi, kind)
        binding = stress_weight * s_down > down or stress_weight * s_up > up
        down = max(down, stress_weight * s_down)
        up = max(up, stress_weight * s_up)
    ppy = int(hist.attrs.get("periods_per_year", 252))
    return Calibration(
        dataset=str(hist.attrs.get("name", "history")),
        source=str(hist.attrs.get("source", "")),
        start=str(window["date"].iloc[0].date()),
        end=str(window["date"].iloc[-1].date()),
        n_returns=int(n),
        confidence=float(confidence),
        mpor=h,
        method=method,
        lam=float(lam) if method == "fhs" else None,
        return_kind=kind,
        quantile_method=quantile_method,
        q_low=float(q_lo),
        q_high=float(q_hi),
        price_shock_down=float(down),
        price_shock_up=float(up),
        price_shock=float(max(down, up)),
        hs_price_shock_down=hs_down,
        hs_price_shock_up=hs_up,
        sigma_now=sigma_now,
        sigma_annual_now=sigma_now * float(np.sqrt(ppy)),
        stress_from=None if stress is None else str(pd.Timestamp(stress[0]).date()),
        stress_to=None if stress is None else str(pd.Timestamp(stress[1]).date()),
        stress_weight=float(stress_weight),
        stressed_shock_down=s_down,
        stressed_shock_up=s_up,
        floor_binding=bool(binding),
        vol=vol_shocks(window, confidence, h, quantile_method, series=vol_series),
    )


def return_correlation(a: pd.DataFrame, b: pd.DataFrame, h: int = 2, *, start: Any = None, end: Any = None) -> float:
    """Pearson correlation of the overlapping h-day log returns of two histories on their common dates.

    The input for the ``[aggregate] correlations`` of a model (e.g. ``"BTC/SPX"``): both series are
    restricted to the dates present in both (so the h-day return of a 7-day market spans the same calendar
    interval as the trading-day one), then ``ln(P_{t+h} / P_t)`` over ``h`` common rows.

    Parameters
    ----------
    a, b : pandas.DataFrame
        Histories (``date``, ``price``).
    h : int
        Horizon in common rows.
    start, end : date, optional
        Window.

    Returns
    -------
    float
        Correlation in [-1, 1].
    """
    j = pd.merge(a[["date", "price"]], b[["date", "price"]], on="date", suffixes=("_a", "_b"))
    if start is not None:
        j = j[j["date"] >= pd.Timestamp(start)]
    if end is not None:
        j = j[j["date"] <= pd.Timestamp(end)]
    _check_h(h, len(j))
    ra = h_day_returns(j["price_a"].to_numpy(dtype=float), h, "log")
    rb = h_day_returns(j["price_b"].to_numpy(dtype=float), h, "log")
    return float(np.corrcoef(ra, rb)[0, 1])


@dataclass(frozen=True)
class ReferenceVega:
    """Vega-charge shocks from the reference straddles (module docstring).

    Attributes
    ----------
    up, down : float
        Vol shocks of the vega charge (in the vega component's ``kind``: relative or absolute decimal vol).
    kind : str
        ``"relative"`` or ``"absolute"``.
    tenor_days : float
        Tenor of the reference straddles (the vega rule's pivot tenor).
    n_days : int
        Days of the window with a realised loss.
    covered_up, covered_down : float
        In-sample fraction of days the model covers with these shocks (``s_t <= shock``).
    zero_up, zero_down : float
        Fraction of days the other charges alone cover the reference straddle (``s_t = 0``).
    start, end : str
        First and last day.
    """

    up: float
    down: float
    kind: str
    tenor_days: float
    n_days: int
    covered_up: float
    covered_down: float
    zero_up: float
    zero_down: float
    start: str
    end: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict."""
        return asdict(self)
