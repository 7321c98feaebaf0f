"""Walk-forward (out-of-sample) backtest: refit the model's calibration recipe on the past only, margin the future.

At each refit date ``D_k`` (yearly or quarterly from ``oos_start``) the model's calibration *recipe* (the
``greeksmargin calibrate`` command line recorded in its ``[meta.calibration.<target>]``, parsed into the
keyword arguments of :func:`~greeksmargin.calibration.sweep.calibrated_model`) is re-run on the rows
dated strictly before ``D_k`` (a realised-vol proxy is recomputed on those rows only, so its scale uses
no later vol index either), and the refitted model margins the representative portfolios opened on each
test day of ``[D_k, D_{k+1})`` (:func:`~greeksmargin.calibration.backtest.engine_figures`, one engine
call per period and shock level). A window with no vol-index day (BTC before the DVOL, 2021-03-24) takes
the recipe's policy vol shocks (``calibrate --policy-vol UP,DOWN``), else its realised-vol proxy's:
keeping the template's would carry a later calibration's vol shocks into the past. The realised loss
of a test day ``t`` uses the rows ``t`` and ``t + h``
only. The in-sample figures beside are the same recipe fitted once on the whole history and backtested
on the same test days (what the README's earlier coverage table showed).

Regime-following shocks (``scaling``)
    ``"static"``: the refitted shocks apply unchanged for the period. ``"ewma"``: filtered-HS style, every
    calibrated shock (price, scan vol, vega charge: apply_calibration's ``scale``) is multiplied on test
    day ``t`` by ``k_t = sigma_t / sigma_ref``, ``sigma_t`` the EWMA (decay ``lam``) forecast of the daily
    log-return vol known at the close of ``t`` and ``sigma_ref`` the root mean square of the EWMA forecasts
    over the calibration window (the average level the HS quantiles were drawn at). ``"implied"``: the
    same with the vol index, ``k_t = v_t / mean(v over the calibration window)``. ``k_t`` is rounded to the
    grid ``1.05^n`` so one engine run serves every day of a level (a rounding of at most 2.5% of a shock).
    Relative vol shocks already follow the level (a 30% fall from 80 is 24 vol points, from 12 it is 3.6).

Anti-procyclicality (:class:`APC`, EMIR RTS 153/2013 Art. 28(1), the three options)
    (a) ``buffer``: a margin buffer of ``buffer`` (0.25) of the calculated margin, exhausted when the
    calculated margin rises: ``IM_t = max(B_t, min((1 + b) B_t, (1 + b) median(B_{t-w..t-1})))`` per
    portfolio (``B`` the calculated margin, ``w`` = ``buffer_window`` test days): ``(1 + b) B`` while
    ``B`` is at or below its recent median, the buffer absorbing a rise of up to ``b`` above it, ``B``
    itself beyond (:func:`buffered_margin`).
    (b) ``stressed_weight``: at least this weight (0.25) on stressed observations in the lookback: the
    h-day returns starting in the most volatile year of the calibration window (highest realised variance
    of daily log returns, :func:`stressed_rows`) weigh ``max(w, natural share)`` in the quantiles
    (:func:`weighted_tail_quantiles`); each price shock is the larger of the recipe's and the weighted one.
    (c) ``lookback_floor_years``: each price shock at least the plain-HS shock of the last 10 years of
    the calibration window (the floor binds when the recipe's window is shorter, ``lookback_years``, or
    calmer than the last 10 years).
    Procyclicality is reported beside coverage: peak-to-trough (max/min) IM ratio over the test period
    and over rolling 252-row windows, largest 5-day and 30-day relative IM increase (calendar days), and
    efficiency ``mean(IM) / mean(max(loss, 0))``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.calibration import stats
from greeksmargin.calibration.backtest import PORTFOLIOS, Leg, engine_figures, realised_pnl
from greeksmargin.calibration.history import ewma_sigma, with_vol_proxy
from greeksmargin.calibration.shocks import Calibration, h_day_returns
from greeksmargin.errors import InputError

REFITS = {"yearly": 12, "quarterly": 3}
SCALINGS = ("static", "ewma", "implied")
#: grid of the regime scale k_t (one engine run per level)
SCALE_STEP = 1.05


@dataclass(frozen=True)
class APC:
    """The three anti-procyclicality options of EMIR RTS 153/2013 Art. 28(1) (module docstring).

    Parameters
    ----------
    buffer : float
        (a) margin buffer as a fraction of the calculated margin (EMIR: at least 0.25); 0 = off.
    buffer_window : int
        Test days of the median the buffer is measured against.
    stressed_weight : float
        (b) minimum total weight of the stressed observations (EMIR: at least 0.25); 0 = off.
    lookback_floor_years : float
        (c) price shocks at least those of this many most recent years (EMIR: 10); 0 = off.
    """

    buffer: float = 0.0
    buffer_window: int = 20
    stressed_weight: float = 0.0
    lookback_floor_years: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.buffer <= 10.0:
            raise InputError(f"APC buffer must be in [0, 10], got {self.buffer}", column="apc_buffer")
        if not 0.0 <= self.stressed_weight < 1.0:
            raise InputError(f"stressed weight must be in [0, 1), got {self.stressed_weight}",
                             column="apc_stressed_weight")
        if not 0.0 <= self.lookback_floor_years <= 100.0:
            raise InputError(f"lookback floor must be in [0, 100] years, got {self.lookback_floor_years}",
                             column="apc_lookback_floor")
        if int(self.buffer_window) != self.buffer_window or self.buffer_window < 1:
            raise InputError(f"buffer window must be a positive whole number, got {self.buffer_window}",
                             column="apc_buffer_window")


def buffered_margin(base: np.ndarray, buffer: float, window: int = 20) -> np.ndarray:
    """EMIR Art. 28(1)(a) buffer on a calculated-margin series, released as the margin rises.

    Parameters
    ----------
    base : ndarray of shape (n,)
        Calculated margin, one per test day (USD).
    buffer : float
        Buffer fraction ``b``.
    window : int
        Days of the trailing median ``M_t = median(B_{t-w..t-1})`` (``B_0`` itself on the first day).

    Returns
    -------
    ndarray of shape (n,)
        ``max(B_t, min((1 + b) B_t, (1 + b) M_t))``.
    """
    b = np.asarray(base, dtype=float)
    if buffer == 0.0 or b.size == 0:
        return b.copy()
    med = pd.Series(b).shift(1).rolling(int(window), min_periods=1).median().to_numpy().copy()
    med[0] = b[0]
    return np.maximum(b, np.minimum((1.0 + buffer) * b, (1.0 + buffer) * med))


def stressed_rows(prices: np.ndarray, periods_per_year: int) -> tuple[int, int]:
    """Rows ``[i, j)`` of the most volatile year: the ``periods_per_year`` daily log returns of highest variance.

    Returns the whole sample when it is shorter than a year.
    """
    r = np.diff(np.log(np.asarray(prices, dtype=float)))
    w = int(periods_per_year)
    if r.size <= w:
        return 0, len(prices)
    c = np.concatenate([[0.0], np.cumsum(r * r)])
    var = c[w:] - c[:-w]
    i = int(np.argmax(var))
    return i, i + w + 1


def weighted_tail_quantiles(
    returns: np.ndarray, stressed: np.ndarray, weight: float, confidence: float
) -> tuple[float, float]:
    """``(1 - c)`` and ``c`` quantiles of a sample whose stressed observations carry total weight ``>= weight``.

    Stressed observations weigh ``max(weight, k / n) / k`` each and the others ``(1 - that) / (n - k)``
    (``k`` stressed of ``n``); the quantile is the weighted inverted CDF (the first sorted value whose
    cumulative weight reaches ``p``).

    Parameters
    ----------
    returns : ndarray of shape (n,)
    stressed : ndarray of bool, shape (n,)
    weight : float
    confidence : float

    Returns
    -------
    (float, float)
    """
    r = np.asarray(returns, dtype=float)
    s = np.asarray(stressed, dtype=bool)
    n, k = r.size, int(s.sum())
    if k == 0 or k == n:
        lo, hi = np.quantile(r, [1.0 - confidence, confidence], method="inverted_cdf")
        return float(lo), float(hi)
    ws = max(weight, k / n)
    w = np.where(s, ws / k, (1.0 - ws) / (n - k))
    order = np.argsort(r, kind="stable")
    cw = np.cumsum(w[order])
    cw /= cw[-1]

    def q(p: float) -> float:
        return float(r[order][min(int(np.searchsorted(cw, p - 1e-12)), n - 1)])

    return q(1.0 - confidence), q(confidence)


def has_vol_index(window: pd.DataFrame) -> bool:
    """Whether a history has at least one vol-index day (``vol_source == "index"``)."""
    return bool((window["vol_source"] == "index").any())


def apc_adjust(window: pd.DataFrame, apc: APC, confidence: float, mpor: int, kind: str = "simple",
               policy_vol: tuple[float, float] | None = None) -> Any:
    """The ``adjust`` function of :func:`~greeksmargin.calibration.sweep.calibrated_model` for options (b) and (c).

    Returns a function ``Calibration -> Calibration`` raising each price shock to the stressed-weighted
    and the lookback-floor shocks computed on ``window`` (module docstring); ``extra["apc"]`` records them.
    With ``policy_vol = (up, down)`` (relative) and no vol-index day in ``window``, the vol shocks (marginal
    and joint) are these policy values (source ``"policy"``) instead of the realised-vol proxy's.
    """
    from greeksmargin.calibration.shocks import VolShock

    no_index = not has_vol_index(window)
    prices = window["price"].to_numpy(dtype=float)
    ppy = int(window.attrs.get("periods_per_year", 252))

    def adjust(cal: Calibration) -> Calibration:
        down, up = cal.price_shock_down, cal.price_shock_up
        info: dict[str, Any] = {}
        r = h_day_returns(prices, int(mpor), kind)
        sign = (lambda q: -q) if kind == "simple" else (lambda q: -float(np.expm1(q)))
        rise = (lambda q: q) if kind == "simple" else (lambda q: float(np.expm1(q)))
        if apc.stressed_weight > 0:
            i, j = stressed_rows(prices, ppy)
            start = np.arange(r.size)
            mask = (start >= i) & (start + int(mpor) < j)
            lo, hi = weighted_tail_quantiles(r, mask, apc.stressed_weight, confidence)
            info.update(stressed_from=str(window["date"].iat[i].date()),
                        stressed_to=str(window["date"].iat[j - 1].date()),
                        stressed_down=sign(lo), stressed_up=rise(hi))
            down, up = max(down, sign(lo)), max(up, rise(hi))
        if apc.lookback_floor_years > 0:
            n = int(round(apc.lookback_floor_years * ppy))
            tail = prices[-n - 1:] if n + 1 < prices.size else prices
            lo, hi = np.quantile(h_day_returns(tail, int(mpor), kind), [1.0 - confidence, confidence])
            info.update(floor_down=sign(float(lo)), floor_up=rise(float(hi)))
            down, up = max(down, sign(float(lo))), max(up, rise(float(hi)))
        out = dataclasses.replace(cal, price_shock_down=float(down), price_shock_up=float(up),
                                  price_shock=float(max(down, up)))
        if policy_vol is not None and no_index:
            vu, vd = float(policy_vol[0]), float(policy_vol[1])
            level = float(np.mean(window["vol"].to_numpy(dtype=float)))
            out = dataclasses.replace(out, vol=VolShock(
                up=vu, down=vd, up_abs=vu * level, down_abs=vd * level, source="policy", n_obs=0,
                start=cal.vol.start, end=cal.vol.end, up_joint=vu, up_joint_abs=vu * level, down_joint=vd,
                down_joint_abs=vd * level))
        out.extra["apc"] = info
        return out

    return adjust


def _past_only(hist: pd.DataFrame, end: pd.Timestamp, start: pd.Timestamp | None = None) -> pd.DataFrame:
    """Rows dated before ``end`` (and from ``start``), with the realised-vol proxy recomputed on them alone."""
    d = hist["date"]
    mask = (d < end).to_numpy().copy()
    if start is not None:
        mask &= (d >= start).to_numpy()
    w = hist.loc[mask].reset_index(drop=True)
    w.attrs = dict(hist.attrs)
    if len(w) < 30:
        raise InputError(f"only {len(w)} rows before {end.date()} to calibrate on", column="oos_start")
    if (w["vol_source"] == "proxy").any():
        w = w.copy()
        w.loc[w["vol_source"] == "proxy", "vol"] = np.nan
        w["vol_source"] = np.where(np.isfinite(w["vol"].to_numpy(dtype=float)), "index", "none")
        w = with_vol_proxy(w, float(hist.attrs.get("vol_proxy_lambda", 0.94)))
    return w


def refit_dates(hist: pd.DataFrame, oos_start: Any, refit: str = "yearly") -> list[pd.Timestamp]:
    """Refit dates from ``oos_start`` every 12 (yearly) or 3 (quarterly) months up to the last test day."""
    if refit not in REFITS:
        raise InputError(f"unknown refit {refit!r} (use one of {sorted(REFITS)})", column="refit")
    start = pd.Timestamp(oos_start)
    last = hist["date"].iat[-1]
    if start <= hist["date"].iat[0] or start >= last:
        raise InputError(f"out-of-sample start {start.date()} is not inside the history "
                         f"{hist['date'].iat[0].date()}..{last.date()}", column="oos_start")
    out = []
    d = start
    while d <= last:
        out.append(d)
        d = d + pd.DateOffset(months=REFITS[refit])
    return out


@dataclass
class WalkForwardResult:
    """Outcome of :func:`walk_forward`.

    Attributes
    ----------
    daily : pandas.DataFrame
        One row per (test day, portfolio): date, portfolio, spot, vol, refit (date of the model used),
        scale (regime factor), im_calculated (before the buffer), im, loss, breach, im_in_sample,
        breach_in_sample.
    summary : dict
        ``{"portfolios": [...], "pooled": {...}, "refits": [...], "settings": {...}}`` (:func:`summary`).
    """

    daily: pd.DataFrame
    summary: dict[str, Any] = field(default_factory=dict)


def walk_forward(
    hist: pd.DataFrame,
    template: Any,
    recipe: Mapping[str, Any],
    *,
    oos_start: Any,
    refit: str = "yearly",
    target: str | None = None,
    apc: APC | None = None,
    scaling: str = "static",
    lam: float = 0.94,
    lookback_years: float | None = None,
    portfolios: Mapping[str, Sequence[Leg]] | None = None,
    tenor_days: float = 30.0,
    in_sample: bool = True,
) -> WalkForwardResult:
    """Walk-forward backtest of a calibration recipe (module docstring).

    Parameters
    ----------
    hist : pandas.DataFrame
        History (:func:`~greeksmargin.calibration.history.load_history`, vol filled).
    template : str, Path or Model
        The model whose recipe is refitted (its non-calibrated parameters are kept).
    recipe : mapping
        Keyword arguments of :func:`~greeksmargin.calibration.sweep.calibrated_model` (``confidence``,
        ``mpor``, ``method``, ``vol_series``, ``joint_vol``, ``vega_method``, ...; a ``start`` entry is the
        first calibration day).
    oos_start : date
        First out-of-sample test day (the first refit).
    refit : {"yearly", "quarterly"}
    target : str, optional
        Model target (default: the history's, :func:`~greeksmargin.calibration.sweep.default_target`).
    apc : APC, optional
        Anti-procyclicality options (default none).
    scaling : {"static", "ewma", "implied"}
        Regime scaling of the shocks.
    lam : float
        EWMA decay of ``scaling="ewma"``.
    lookback_years : float, optional
        Rolling calibration window (default: every row before the refit date, from ``recipe["start"]``).
    portfolios : mapping, optional
        Name -> legs (default :data:`~greeksmargin.calibration.backtest.PORTFOLIOS`).
    tenor_days : float
    in_sample : bool
        Also margin the test days with the recipe fitted on the whole history.

    Returns
    -------
    WalkForwardResult
    """
    from greeksmargin.calibration.model_file import build_model
    from greeksmargin.calibration.sweep import calibrated_model, default_target, underlying_name

    apc = apc or APC()
    if scaling not in SCALINGS:
        raise InputError(f"unknown scaling {scaling!r} (use one of {SCALINGS})", column="scaling")
    rec = dict(recipe)
    first_day = rec.pop("start", None)
    rec.pop("end", None)
    confidence = float(rec.get("confidence", 0.99))
    mpor = int(rec.get("mpor", 2))
    kind = str(rec.get("kind", "simple"))
    portfolios = dict(PORTFOLIOS if portfolios is None else portfolios)
    names = list(portfolios)
    target = target or default_target(hist)
    und = underlying_name(hist)
    dates = hist["date"]
    refits = refit_dates(hist, oos_start, refit)
    n = len(hist)
    last_test = n - 1 - mpor
    logp = np.log(hist["price"].to_numpy(dtype=float))
    sig = ewma_sigma(np.diff(logp), lam)  # sig[j]: forecast known at row j's close
    vol = hist["vol"].to_numpy(dtype=float)

    def fit(end: pd.Timestamp | None) -> tuple[Any, Calibration, pd.DataFrame]:
        start = pd.Timestamp(first_day) if first_day is not None else None
        if lookback_years is not None and end is not None:
            lb = end - pd.DateOffset(days=int(round(365.25 * lookback_years)))
            start = lb if start is None else max(start, lb)
        w = _past_only(hist, end if end is not None else dates.iat[-1] + pd.Timedelta(days=1), start)
        r = dict(rec)
        policy = r.pop("policy_vol", None)
        src = str(r.get("vol_series", "index"))
        if not has_vol_index(w) and r.get("calibrate_vol") is None:
            # no vol index before the refit date: the template's vol shocks may come from a later
            # calibration (look-ahead); the recipe's policy vol shocks, else the window's realised-vol proxy
            r.update(calibrate_vol=True, vol_series="filled")
            src = "policy (no vol index before the refit)" if policy else "proxy (no vol index before the refit)"
        raw, cal = calibrated_model(w, template=template, target=target,
                                    adjust=apc_adjust(w, apc, confidence, mpor, kind, policy), **r)
        cal.extra["vol_shocks_from"] = src
        return raw, cal, w

    def ref_level(w: pd.DataFrame) -> float:
        if scaling == "ewma":
            s = ewma_sigma(np.diff(np.log(w["price"].to_numpy(dtype=float))), lam)
            return float(np.sqrt(np.mean(s[:-1] ** 2)))
        if scaling == "implied":
            return float(np.mean(w["vol"].to_numpy(dtype=float)))
        return 1.0

    def margins(
        raw: dict[str, Any], cal: Calibration, w: pd.DataFrame, days: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        from greeksmargin.engine.models import load_model

        ref = cal.extra.get("vega_reference")
        if scaling == "static":
            k = np.ones(days.size)
        else:
            level = sig[days] if scaling == "ewma" else vol[days]
            k = SCALE_STEP ** np.round(np.log(level / ref_level(w)) / np.log(SCALE_STEP))
        im = np.zeros((days.size, len(names)))
        base_raw = load_model(template).raw
        from greeksmargin.calibration.model_file import apply_calibration

        for kq in np.unique(k):
            sel = k == kq
            if scaling == "static":
                model = build_model(raw)
            else:
                model = build_model(apply_calibration(
                    base_raw, cal, target=target, scale=float(kq), joint_vol=bool(rec.get("joint_vol", False)),
                    calibrate_vol=rec.get("calibrate_vol"), vega_reference=ref,
                    vega_floor=float(rec.get("vega_floor", 0.5))))
            im[sel] = engine_figures(model, hist, days[sel], portfolios, tenor_days, underlying=und)["im"]
        return im, k

    frames: list[pd.DataFrame] = []
    rows: list[np.ndarray] = []
    refit_rows = []
    for k_, d0 in enumerate(refits):
        d1 = refits[k_ + 1] if k_ + 1 < len(refits) else dates.iat[-1] + pd.Timedelta(days=1)
        days = np.flatnonzero(((dates >= d0) & (dates < d1)).to_numpy())
        days = days[days <= last_test]
        if days.size == 0:
            continue
        raw, cal, w = fit(d0)
        im, kk = margins(raw, cal, w, days)
        refit_rows.append(_refit_record(d0, raw, cal, w, target, days.size))
        frames.append(_frame(hist, days, names, im, kk, d0))
        rows.append(days)
    if not frames:
        raise InputError(f"no test days from {pd.Timestamp(oos_start).date()}", column="oos_start")
    daily = pd.concat(frames, ignore_index=True)
    test_days = np.concatenate(rows)
    pnl = realised_pnl(hist, test_days, portfolios, mpor, tenor_days)
    daily["loss"] = -pnl.ravel()
    daily = daily.sort_values(["pidx", "date"], kind="stable").reset_index(drop=True)
    daily["im"] = daily["im_calculated"]
    if apc.buffer > 0:
        for p in range(len(names)):
            m = daily["pidx"] == p
            daily.loc[m, "im"] = buffered_margin(daily.loc[m, "im_calculated"].to_numpy(), apc.buffer,
                                                 apc.buffer_window)
    daily["breach"] = daily["loss"] > daily["im"]
    is_rec = None
    if in_sample:
        raw, cal, w = fit(None)
        ims, _ = margins(raw, cal, w, test_days)
        is_frame = _frame(hist, test_days, names, ims, np.ones(test_days.size), dates.iat[0])
        is_frame = is_frame.sort_values(["pidx", "date"], kind="stable").reset_index(drop=True)
        im_is = is_frame["im_calculated"].to_numpy().copy()
        if apc.buffer > 0:
            for p in range(len(names)):
                m = (is_frame["pidx"] == p).to_numpy()
                im_is[m] = buffered_margin(im_is[m], apc.buffer, apc.buffer_window)
        daily["im_in_sample"] = im_is
        daily["breach_in_sample"] = daily["loss"] > daily["im_in_sample"]
        is_rec = _refit_record(None, raw, cal, w, target, test_days.size)
    settings = {
        "dataset": hist.attrs.get("name"), "oos_start": str(pd.Timestamp(oos_start).date()), "refit": refit,
        "confidence": confidence, "mpor": mpor, "scaling": scaling, "lookback_years": lookback_years,
        "apc": dataclasses.asdict(apc),
        "recipe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in recipe.items()},
        "target": target, "underlying": und, "tenor_days": tenor_days,
        "test_start": str(daily["date"].min().date()), "test_end": str(daily["date"].max().date()),
    }
    return WalkForwardResult(daily.drop(columns=["pidx"]), summary(daily, names, confidence, refit_rows, is_rec,
                                                                   settings))


def _frame(hist: pd.DataFrame, days: np.ndarray, names: list[str], im: np.ndarray, k: np.ndarray,
           refit: pd.Timestamp) -> pd.DataFrame:
    npf = len(names)
    f = pd.DataFrame({
        "date": np.repeat(hist["date"].to_numpy()[days], npf),
        "portfolio": np.tile(names, days.size),
        "pidx": np.tile(np.arange(npf), days.size),
        "spot": np.repeat(hist["price"].to_numpy()[days], npf),
        "vol": np.repeat(hist["vol"].to_numpy()[days], npf),
        "refit": str(pd.Timestamp(refit).date()),
        "scale": np.repeat(k, npf),
        "im_calculated": im.ravel(),
    })
    return f


def _refit_record(d0: pd.Timestamp | None, raw: dict[str, Any], cal: Calibration, w: pd.DataFrame, target: str,
                  n_days: int) -> dict[str, Any]:
    rec = raw["meta"]["calibration"][target]
    out = {
        "refit": None if d0 is None else str(d0.date()),
        "window": f"{w['date'].iat[0].date()}..{w['date'].iat[-1].date()}",
        "test_days": int(n_days),
        "price_shock_down": cal.price_shock_down,
        "price_shock_up": cal.price_shock_up,
        "vol_shock_up": cal.vol.up,
        "vol_shock_down": cal.vol.down,
        "vega_shock_up": rec.get("vega_shock_up"),
        "vega_shock_down": rec.get("vega_shock_down"),
    }
    out["vol_shocks_from"] = cal.extra.get("vol_shocks_from")
    out.update({f"apc_{k}": v for k, v in cal.extra.get("apc", {}).items()})
    return out


def procyclicality(im: np.ndarray, dates: np.ndarray) -> dict[str, float]:
    """Peak-to-trough ratio and largest 5- and 30-calendar-day relative increases of a margin series.

    Parameters
    ----------
    im : ndarray of shape (n,)
        Margin (> 0) per test day, oldest first.
    dates : ndarray of datetime64, shape (n,)

    Returns
    -------
    dict
        ``peak_to_trough`` (max / min over the series), ``peak_to_trough_1y`` (rolling 252 rows),
        ``max_increase_5d``, ``max_increase_30d`` (``max_t IM(t') / IM(t) - 1`` with ``t'`` the last day
        at most 5 / 30 calendar days after ``t``).
    """
    m = np.asarray(im, dtype=float)
    d = np.asarray(dates, dtype="datetime64[D]")
    out: dict[str, float] = {
        "peak_to_trough": float(m.max() / m.min()) if m.size and m.min() > 0 else float("nan"),
        "peak_to_trough_1y": stats.peak_to_trough(m, 252),
    }
    for days in (5, 30):
        j = np.searchsorted(d, d + np.timedelta64(days, "D"), side="right") - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            inc = np.where(m > 0, m[j] / m - 1.0, np.nan)
        out[f"max_increase_{days}d"] = float(np.nanmax(inc)) if inc.size else float("nan")
    return out


def _cover(b: np.ndarray, im: np.ndarray, loss: np.ndarray, confidence: float) -> dict[str, Any]:
    nb, n = int(b.sum()), int(b.size)
    excess = np.where(b & (im > 0), loss / np.where(im > 0, im, 1.0) - 1.0, 0.0)
    return {
        "days": n,
        "breaches": nb,
        "expected": n * (1.0 - confidence),
        "kupiec_p": stats.kupiec_pof(nb, n, confidence).p_value,
        "excess_p": stats.excess_breaches_p(nb, n, confidence),
        "christoffersen_p": stats.christoffersen_independence(b).p_value,
        "worst_excess": float(excess.max()) if n else 0.0,
        "efficiency": stats.margin_efficiency(im, loss),
    }


def summary(daily: pd.DataFrame, names: list[str], confidence: float, refits: list[dict[str, Any]],
            in_sample: dict[str, Any] | None, settings: dict[str, Any]) -> dict[str, Any]:
    """The walk-forward JSON: per-portfolio and pooled coverage, procyclicality, breaches by year, refits."""
    ports = []
    for p, name in enumerate(names):
        g = daily[daily["pidx"] == p]
        im, loss, b = (g["im"].to_numpy(dtype=float), g["loss"].to_numpy(dtype=float),
                       g["breach"].to_numpy(dtype=bool))
        row: dict[str, Any] = {"portfolio": name, **_cover(b, im, loss, confidence)}
        row.update(procyclicality(im, g["date"].to_numpy()))
        row["breaches_by_year"] = {str(y): int(v) for y, v in g.groupby(g["date"].dt.year)["breach"].sum().items()}
        if "im_in_sample" in g:
            ins = _cover(g["breach_in_sample"].to_numpy(dtype=bool), g["im_in_sample"].to_numpy(dtype=float), loss,
                         confidence)
            ins.update(procyclicality(g["im_in_sample"].to_numpy(dtype=float), g["date"].to_numpy()))
            row["in_sample"] = ins
        ports.append(row)
    nb = int(daily["breach"].sum())
    n = len(daily)
    pooled: dict[str, Any] = {
        "days": n, "breaches": nb, "expected": n * (1.0 - confidence),
        "kupiec_p": stats.kupiec_pof(nb, n, confidence).p_value,
        "excess_p": stats.excess_breaches_p(nb, n, confidence),
        "max_peak_to_trough": max(r["peak_to_trough"] for r in ports),
        "max_increase_5d": max(r["max_increase_5d"] for r in ports),
        "max_increase_30d": max(r["max_increase_30d"] for r in ports),
        "mean_efficiency": float(np.mean([r["efficiency"] for r in ports])),
    }
    if "breach_in_sample" in daily:
        ni = int(daily["breach_in_sample"].sum())
        pooled["in_sample"] = {"breaches": ni, "kupiec_p": stats.kupiec_pof(ni, n, confidence).p_value,
                               "excess_p": stats.excess_breaches_p(ni, n, confidence),
                               "mean_efficiency": float(np.mean([r["in_sample"]["efficiency"] for r in ports]))}
    return {"portfolios": ports, "pooled": pooled, "refits": refits, "in_sample_fit": in_sample,
            "settings": settings}
