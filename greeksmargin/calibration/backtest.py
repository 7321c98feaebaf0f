"""Coverage backtest of a margin model on daily history with representative option portfolios.

Each test day ``t`` (row ``i`` of the history) the portfolios of :data:`PORTFOLIOS` are opened afresh:
options of a fixed tenor (``tenor_days`` calendar days, 30 by default) struck at ``moneyness x S_t``,
futures of the same expiry. Pricing is Black-76 with zero rate and zero carry (forward = spot; the
S&P 500 ``Adj Close`` already folds dividends in), flat implied vol = the history's ``vol`` of the day
(vol index, or the realised-vol proxy where the index is missing: ``vol_source``). Quantities are per
unit of underlying (multiplier 1, linear USD settlement, BTC included), so margins and losses scale with
the spot and the breach statistics do not depend on the size.

Margin ``IM_t``
    computed by a *margin function* of the day's book and market: :func:`engine_margin` calls
    :func:`greeksmargin.engine.margin.compute_margin` with a model (one account per day and portfolio, each at
    its own day's market, all days in one call: :func:`engine_figures`); :func:`stress_grid_margin` is
    the house model's stress rule alone (full revaluation over a
    :class:`greeksmargin.risk.scenarios.ScenarioGrid`, worst weighted loss), vectorised over all days.
Realised loss ``L_t``
    minus the P&L from ``t`` to ``t + h`` rows (the MPOR in trading days) of the same positions revalued
    at ``S_{t+h}``, ``vol_{t+h}`` and the remaining time ``tenor - (date_{t+h} - date_t)`` (ACT/365).
Breach
    ``L_t > IM_t``. Tests: Kupiec POF at the model's confidence, Christoffersen independence and
    conditional coverage, peak-to-trough of the margin over rolling 252-day windows, margin efficiency
    (:mod:`greeksmargin.calibration.stats`). With ``h > 1`` and daily steps the windows overlap and
    breaches cluster by construction; ``step >= h`` gives non-overlapping windows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.calibration import stats
from greeksmargin.errors import InputError

DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class Leg:
    """One position of a representative portfolio (per unit of underlying).

    Parameters
    ----------
    kind : {"option", "future"}
        Instrument kind.
    quantity : float
        Signed quantity (+ long).
    option_type : {"call", "put"}, optional
        For options.
    moneyness : float
        Strike over spot at inception (options).
    """

    kind: str
    quantity: float
    option_type: str | None = None
    moneyness: float = 1.0


C, P, F = "call", "put", "future"

#: representative portfolios (per unit of underlying; options 30-day, struck at moneyness x spot)
PORTFOLIOS: dict[str, tuple[Leg, ...]] = {
    "long_straddle": (Leg("option", 1, C), Leg("option", 1, P)),
    "short_straddle": (Leg("option", -1, C), Leg("option", -1, P)),
    "long_strangle": (Leg("option", 1, C, 1.05), Leg("option", 1, P, 0.95)),
    "short_strangle": (Leg("option", -1, C, 1.05), Leg("option", -1, P, 0.95)),
    "risk_reversal": (Leg("option", 1, C, 1.05), Leg("option", -1, P, 0.95)),
    "covered_call": (Leg(F, 1), Leg("option", -1, C, 1.05)),
    "call_spread": (Leg("option", 1, C, 1.0), Leg("option", -1, C, 1.05)),
    "long_future": (Leg(F, 1),),
    "short_future": (Leg(F, -1),),
}

#: columns of a portfolio file (:func:`load_portfolios`)
PORTFOLIO_COLUMNS = ("portfolio", "kind", "quantity", "option_type", "moneyness")


def load_portfolios(path: Any) -> dict[str, tuple[Leg, ...]]:
    """Backtest portfolios from a CSV or Parquet file, one row per leg.

    Columns: ``portfolio`` (name), ``kind`` (``option`` or ``future``), ``quantity`` (signed, per unit of
    underlying, non-zero), ``option_type`` (``call``/``put``, options only; empty for futures),
    ``moneyness`` (strike / spot at inception, > 0; options only, default 1). Legs keep the file's order;
    portfolios the order of their first row.

    Parameters
    ----------
    path : str or Path
        The file.

    Returns
    -------
    dict of str -> tuple of Leg

    Raises
    ------
    InputError
        A missing column, or a bad value, naming the file, the row (0-based data row) and the column.
    """
    from greeksmargin import io
    from greeksmargin.book.tables import check_columns

    df = io.read_table(path)
    f = str(path)
    missing = [c for c in ("portfolio", "kind", "quantity") if c not in df.columns]
    if missing:
        raise InputError("missing column", file=f, column=missing[0])
    check_columns(df.columns, known=("portfolio", "kind", "quantity", "option_type", "moneyness"),
                  required=("portfolio", "kind", "quantity"), file=f)
    if df.empty:
        raise InputError("no legs", file=f)
    out: dict[str, list[Leg]] = {}
    for row, rec in enumerate(df.to_dict("records")):
        name = rec.get("portfolio")
        if not isinstance(name, str) or not name.strip():
            raise InputError("portfolio name missing", file=f, row=row, column="portfolio")
        kind = str(rec.get("kind", "")).strip().lower()
        if kind not in ("option", "future"):
            raise InputError(f"kind must be 'option' or 'future', got {rec.get('kind')!r}", file=f, row=row,
                             column="kind")
        try:
            qty = float(rec["quantity"])
        except (TypeError, ValueError):
            raise InputError(f"not a number: {rec['quantity']!r}", file=f, row=row, column="quantity") from None
        if not np.isfinite(qty) or qty == 0.0 or abs(qty) > 1e12:
            raise InputError(f"quantity must be finite and non-zero, got {qty}", file=f, row=row, column="quantity")
        opt_type: str | None = None
        mny = 1.0
        if kind == "option":
            opt_type = str(rec.get("option_type", "")).strip().lower()
            if opt_type not in ("call", "put"):
                raise InputError(f"option_type must be 'call' or 'put', got {rec.get('option_type')!r}", file=f,
                                 row=row, column="option_type")
            raw = rec.get("moneyness", 1.0)
            try:
                mny = 1.0 if raw is None or (isinstance(raw, float) and np.isnan(raw)) else float(raw)
            except (TypeError, ValueError):
                raise InputError(f"not a number: {raw!r}", file=f, row=row, column="moneyness") from None
            if not np.isfinite(mny) or mny <= 0.0 or mny > 100.0:
                raise InputError(f"moneyness must be > 0 and <= 100 (strike / spot), got {mny}", file=f, row=row,
                                 column="moneyness")
        out.setdefault(name.strip(), []).append(Leg(kind, qty, opt_type, mny))
    return {k: tuple(v) for k, v in out.items()}


#: margin function: (history, test-day rows of shape (n_days,), portfolios, tenor_days) -> IM (n_days, n_portfolios)
MarginFunction = Callable[[pd.DataFrame, np.ndarray, Mapping[str, Sequence[Leg]], float], np.ndarray]


def _legs_table(portfolios: Mapping[str, Sequence[Leg]]) -> pd.DataFrame:
    rows = []
    for j, (name, legs) in enumerate(portfolios.items()):
        if not legs:
            raise InputError(f"portfolio {name!r} has no legs")
        for k, leg in enumerate(legs):
            if leg.kind not in ("option", "future"):
                raise InputError(f"portfolio {name!r} leg {k}: unknown kind {leg.kind!r}")
            if leg.kind == "option" and leg.option_type not in ("call", "put"):
                raise InputError(f"portfolio {name!r} leg {k}: option_type must be call or put")
            rows.append(
                {
                    "portfolio": name,
                    "pidx": j,
                    "leg": k,
                    "kind": leg.kind,
                    "is_call": leg.option_type == "call",
                    "moneyness": float(leg.moneyness),
                    "quantity": float(leg.quantity),
                }
            )
    return pd.DataFrame(rows)


def position_arrays(
    hist: pd.DataFrame,
    days: np.ndarray,
    portfolios: Mapping[str, Sequence[Leg]],
    tenor_days: float = 30.0,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Flat position arrays of every (test day, leg), in the layout of :func:`greeksmargin.risk.scenarios.revalue`.

    Parameters
    ----------
    hist : pandas.DataFrame
        History (``date, price, vol``).
    days : ndarray of int, shape (n_days,)
        Rows of ``hist`` that are test days.
    portfolios : mapping
        Name -> legs.
    tenor_days : float
        Option (and future) tenor at inception, calendar days.

    Returns
    -------
    arrays : dict of str -> ndarray of shape (n_days * n_legs,)
        ``kind_code`` (0 option, 1 future), ``is_call``, ``strike``, ``T``, ``forward``, ``spot``, ``vol``,
        ``rate``, ``size``, ``inverse``, ``perp_ratio``.
    day_pos : ndarray of int, shape (n_days * n_legs,)
        Index into ``days`` of each position.
    port_pos : ndarray of int, shape (n_days * n_legs,)
        Index of the portfolio of each position.
    """
    legs = _legs_table(portfolios)
    nd, nl = len(days), len(legs)
    s = hist["price"].to_numpy(dtype=float)[days]
    v = hist["vol"].to_numpy(dtype=float)[days]
    if not np.all(np.isfinite(v)):
        raise InputError("history has days without vol: load it with vol_proxy=True", column="vol")
    day_pos = np.repeat(np.arange(nd), nl)
    port_pos = np.tile(legs["pidx"].to_numpy(), nd)
    spot = np.repeat(s, nl)
    is_opt = np.tile((legs["kind"] == "option").to_numpy(), nd)
    arrays = {
        "kind_code": np.where(is_opt, 0, 1).astype(np.int8),
        "is_call": np.tile(legs["is_call"].to_numpy(dtype=bool), nd),
        "strike": np.where(is_opt, spot * np.tile(legs["moneyness"].to_numpy(), nd), np.nan),
        "T": np.full(nd * nl, tenor_days / DAYS_PER_YEAR),
        "forward": spot,
        "spot": spot,
        "vol": np.where(is_opt, np.repeat(v, nl), np.nan),
        "rate": np.zeros(nd * nl),
        "size": np.tile(legs["quantity"].to_numpy(), nd),
        "inverse": np.zeros(nd * nl, dtype=bool),
        "perp_ratio": np.ones(nd * nl),
    }
    return arrays, day_pos, port_pos


def _sum_by(values: np.ndarray, day_pos: np.ndarray, port_pos: np.ndarray, nd: int, npf: int) -> np.ndarray:
    out = np.zeros((nd, npf))
    np.add.at(out, (day_pos, port_pos), values)
    return out


def realised_pnl(
    hist: pd.DataFrame,
    days: np.ndarray,
    portfolios: Mapping[str, Sequence[Leg]],
    mpor: int,
    tenor_days: float = 30.0,
) -> np.ndarray:
    """P&L from ``t`` to ``t + mpor`` rows of each portfolio opened at each test day.

    Parameters
    ----------
    hist : pandas.DataFrame
        History.
    days : ndarray of int, shape (n_days,)
        Test-day rows; each must have ``row + mpor`` inside the history.
    portfolios : mapping
        Name -> legs.
    mpor : int
        Horizon in rows (trading days).
    tenor_days : float
        Tenor at inception (calendar days).

    Returns
    -------
    ndarray of shape (n_days, n_portfolios)
        USD P&L per unit of underlying (+ gain).
    """
    from greeksmargin.pricing import black76_price

    days = np.asarray(days, dtype=int)
    if days.size and days.max() + mpor >= len(hist):
        raise InputError(f"test day {int(days.max())} + MPOR {mpor} is past the end of the history")
    a, dp, pp = position_arrays(hist, days, portfolios, tenor_days)
    nl = a["size"].size // max(1, days.size)
    later = days + mpor
    dt = (hist["date"].to_numpy()[later] - hist["date"].to_numpy()[days]) / np.timedelta64(1, "D")
    s1 = np.repeat(hist["price"].to_numpy(dtype=float)[later], nl)
    v1 = np.repeat(hist["vol"].to_numpy(dtype=float)[later], nl)
    t1 = a["T"] - np.repeat(dt, nl) / DAYS_PER_YEAR
    opt = a["kind_code"] == 0
    pnl = np.where(opt, 0.0, (s1 - a["spot"]) * a["size"])
    if opt.any():
        k, c = a["strike"][opt], a["is_call"][opt]
        v0 = black76_price(c, a["forward"][opt], k, a["T"][opt], a["vol"][opt])
        v_1 = black76_price(c, s1[opt], k, t1[opt], v1[opt])
        pnl[opt] = (v_1 - v0) * a["size"][opt]
    return _sum_by(pnl, dp, pp, days.size, len(portfolios))


def stress_grid_margin(grid: Any) -> MarginFunction:
    """Margin function of the house model's stress rule alone: worst weighted full-revaluation loss.

    For each day and portfolio ``IM = max(0, max_s w_s x (-P&L_s))`` over the scenarios ``s`` of ``grid``
    (spot moves x vol states and tails, :class:`greeksmargin.risk.scenarios.ScenarioGrid`), the P&L computed by
    :func:`greeksmargin.risk.scenarios.revalue` (Black-76 full revaluation). No Greeks charges, contingencies
    or floors: the fallback when the full engine is not used, and the part of the house model that the
    price and vol shocks calibrate.

    Parameters
    ----------
    grid : ScenarioGrid
        Scenarios with their vol rule.

    Returns
    -------
    MarginFunction
    """
    from greeksmargin.risk.scenarios import revalue

    def margin(
        hist: pd.DataFrame, days: np.ndarray, portfolios: Mapping[str, Sequence[Leg]], tenor_days: float
    ) -> np.ndarray:
        a, dp, pp = position_arrays(hist, days, portfolios, tenor_days)
        pnl = revalue(a, grid)  # (n_scen, n_pos)
        nd, npf = len(days), len(portfolios)
        by = np.zeros((grid.n_scenarios, nd * npf))
        key = dp * npf + pp
        for s in range(grid.n_scenarios):
            by[s] = np.bincount(key, weights=pnl[s], minlength=nd * npf)
        worst = np.max(-by * np.asarray(grid.weights)[:, None], axis=0)
        return np.maximum(worst, 0.0).reshape(nd, npf)

    margin.__name__ = "stress_grid_margin"
    return margin


def engine_figures(
    model: Any,
    hist: pd.DataFrame,
    days: np.ndarray,
    portfolios: Mapping[str, Sequence[Leg]],
    tenor_days: float,
    *,
    underlying: str = "SPX",
) -> dict[str, np.ndarray]:
    """IM and every figure of a component model for each (test day, portfolio), from ``compute_margin``.

    Each (day, portfolio) is one account holding the portfolio's positions (kind ``option``/``future``,
    linear, multiplier 1) opened that day: strikes at ``moneyness x S_t``, expiring ``tenor_days`` later,
    priced at the day's spot, zero rate and a flat vol at the day's vol. All the days go through one
    :func:`greeksmargin.engine.margin.compute_margin` call: the positions' market inputs are passed per position
    (``arrays=``, the day's spot, forward and vol on each row; the snapshot serves only the layout and FX),
    so every account is margined at its own day's market, exactly as with one snapshot per day (the tests
    hold the two equal).

    Parameters
    ----------
    model : str, Path or Model
        A component model (anything :func:`greeksmargin.engine.margin.compute_margin` accepts).
    hist : pandas.DataFrame
        History (``date, price, vol``).
    days : ndarray of int, shape (n_days,)
        Test-day rows.
    portfolios : mapping
        Name -> legs.
    tenor_days : float
        Option (and future) tenor at inception, calendar days.
    underlying : str
        Underlying name used in the positions and the snapshot (selects the model's overrides).

    Returns
    -------
    dict of str -> ndarray of shape (n_days, n_portfolios)
        ``"im"`` and each figure of the model's combination (``scan``, ``delta``, ... as
        ``MarginResult.accounts`` reports them; a figure that does not apply, e.g. the long-premium cap of
        a unit that is not long-only, is NaN), in USD per unit of underlying.
    """
    from greeksmargin.book.market import load_market
    from greeksmargin.book.positions import load_positions
    from greeksmargin.engine.margin import compute_margin
    from greeksmargin.engine.models import load_model
    from greeksmargin.risk.greeks import market_arrays

    loaded = load_model(model)
    figures = ["im", *[f for f in getattr(loaded.params, "figures", ()) if f != "im"]]
    names = list(portfolios)
    days = np.asarray(days, dtype=int)
    out = {f: np.zeros((len(days), len(names))) for f in figures}
    if days.size == 0:
        return out
    arr, day_pos, port_pos = position_arrays(hist, days, portfolios, tenor_days)
    is_opt = arr["kind_code"] == 0
    vt = pd.Timestamp(hist["date"].iat[int(days[0])]).tz_localize("UTC")
    expiry = vt + pd.Timedelta(days=tenor_days)
    accounts = np.char.add(np.char.add(day_pos.astype(str), "|"), np.asarray(names, dtype=str)[port_pos])
    pos = load_positions(
        pd.DataFrame(
            {
                "account": accounts,
                "instrument": np.char.add(accounts, np.char.add("-", np.arange(accounts.size).astype(str))),
                "underlying": underlying,
                "kind": np.where(is_opt, "option", "future"),
                # numpy's ArrayLike stub omits None, which np.where takes (an object result)
                "option_type": np.where(is_opt, np.where(arr["is_call"], "call", "put"), None),  # type: ignore[call-overload]
                "strike": arr["strike"],
                "expiry": expiry,
                "quantity": arr["size"],
                "multiplier": 1.0,
                "settlement": "linear",
                "premium_currency": "USD",
            }
        )
    )
    s0 = float(hist["price"].iat[int(days[0])])
    market = load_market(
        {
            "valuation_time": vt.isoformat(),
            "underlyings": {
                underlying: {
                    "spot": s0,
                    "rate": 0.0,
                    "surface": {
                        "axis": "log_moneyness",
                        "expiries": [expiry.isoformat()],
                        "points": [0.0],
                        "vols": [[float(np.nanmax(arr["vol"]))]],
                    },
                }
            },
        }
    )
    inputs = market_arrays(pos, market)
    # every row at its own day's market (the snapshot's spot and vol are placeholders)
    inputs.update(spot=arr["spot"], forward=arr["forward"], vol=np.where(is_opt, arr["vol"], np.nan),
                  forward_ratio=np.ones(arr["spot"].size))
    acc = compute_margin(pos, market, loaded, arrays=inputs).accounts.set_index("account")
    first = np.r_[True, accounts[1:] != accounts[:-1]]  # one row per account: the first leg of each
    for f in figures:
        if f in acc.columns:
            out[f][day_pos[first], port_pos[first]] = acc[f].reindex(accounts[first]).to_numpy(dtype=float)
    return out


def engine_margin(model: Any, *, underlying: str = "SPX") -> MarginFunction:
    """Margin function: ``compute_margin`` of each (day, portfolio) (:func:`engine_figures`).

    Parameters
    ----------
    model : str, Path or Model
        Anything :func:`greeksmargin.engine.margin.compute_margin` accepts.
    underlying : str
        Underlying name used in the positions and the snapshot.

    Returns
    -------
    MarginFunction
        ``IM`` = ``MarginResult.accounts["im"]`` of each (day, portfolio).
    """
    from greeksmargin.engine.models import load_model

    loaded = load_model(model)

    def margin(
        hist: pd.DataFrame, days: np.ndarray, portfolios: Mapping[str, Sequence[Leg]], tenor_days: float
    ) -> np.ndarray:
        return engine_figures(loaded, hist, days, portfolios, tenor_days, underlying=underlying)["im"]

    margin.__name__ = "engine_margin"
    return margin


@dataclass
class BacktestResult:
    """Outcome of :func:`run_backtest`.

    Attributes
    ----------
    daily : pandas.DataFrame
        One row per (test day, portfolio): date, portfolio, spot, vol, vol_source, im, pnl, loss
        (= -pnl), breach.
    summary : pandas.DataFrame
        One row per portfolio (and ``"all"`` pooled): observations, breaches, expected breaches,
        breach rate, Kupiec LR and p-value (two-sided), one-sided excess-breach p-value, Christoffersen
        independence LR and p-value, conditional coverage p-value, peak-to-trough of the margin over
        rolling 252-day windows, whole-sample max/min margin ratio, average margin, average positive loss,
        margin efficiency.
    settings : dict
        Confidence, MPOR, step, dates, tenor, margin function, data set.
    """

    daily: pd.DataFrame
    summary: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)


def summarise(daily: pd.DataFrame, confidence: float, *, window_days: int = 252, step: int = 1) -> pd.DataFrame:
    """Per-portfolio coverage tests and margin statistics of a backtest's daily table (see BacktestResult)."""
    rows = []
    w = max(2, int(round(window_days / max(1, step))))
    for name, g in daily.groupby("portfolio", sort=False):
        b = g["breach"].to_numpy(dtype=bool)
        im = g["im"].to_numpy(dtype=float)
        loss = g["loss"].to_numpy(dtype=float)
        k = stats.kupiec_pof(int(b.sum()), b.size, confidence)
        ind = stats.christoffersen_independence(b)
        cc = stats.conditional_coverage(b, confidence)
        rows.append(
            {
                "portfolio": name,
                "observations": int(b.size),
                "breaches": int(b.sum()),
                "expected": float(b.size * (1 - confidence)),
                "breach_rate": float(b.mean()),
                "kupiec_lr": k.statistic,
                "kupiec_p": k.p_value,
                "excess_p": stats.excess_breaches_p(int(b.sum()), b.size, confidence),
                "christoffersen_lr": ind.statistic,
                "christoffersen_p": ind.p_value,
                "cc_p": cc.p_value,
                "peak_to_trough_1y": stats.peak_to_trough(im, w),
                "max_min_ratio": float(im.max() / im.min()) if im.min() > 0 else float("nan"),
                "avg_margin": float(im.mean()),
                "avg_loss": float(np.maximum(loss, 0).mean()),
                "efficiency": stats.margin_efficiency(im, loss),
            }
        )
    out = pd.DataFrame(rows)
    tot_b, tot_n = int(out["breaches"].sum()), int(out["observations"].sum())
    k = stats.kupiec_pof(tot_b, tot_n, confidence)
    pooled = {
        "portfolio": "all",
        "observations": tot_n,
        "breaches": tot_b,
        "expected": tot_n * (1 - confidence),
        "breach_rate": tot_b / tot_n,
        "kupiec_lr": k.statistic,
        "kupiec_p": k.p_value,
        "excess_p": stats.excess_breaches_p(tot_b, tot_n, confidence),
    }
    return pd.concat([out, pd.DataFrame([pooled])], ignore_index=True)


def run_backtest(
    hist: pd.DataFrame,
    margin: MarginFunction,
    *,
    confidence: float,
    mpor: int,
    portfolios: Mapping[str, Sequence[Leg]] | None = None,
    tenor_days: float = 30.0,
    step: int = 1,
    start: Any = None,
    end: Any = None,
    window_days: int = 252,
) -> BacktestResult:
    """Roll through the history and compare each test day's margin with the realised MPOR loss.

    Parameters
    ----------
    hist : pandas.DataFrame
        History with ``vol`` filled (``load_history(..., vol_proxy=True)``).
    margin : MarginFunction
        :func:`engine_margin` or :func:`stress_grid_margin` (or any function of the same signature).
    confidence : float
        Confidence of the margin model (expected breach rate ``1 - c``).
    mpor : int
        Horizon of the realised loss, in rows (trading days).
    portfolios : mapping, optional
        Name -> legs (default :data:`PORTFOLIOS`).
    tenor_days : float
        Option tenor at inception.
    step : int
        Test every ``step``-th row (1 = daily; 5 = weekly on trading-day history).
    start, end : date, optional
        First and last test day.
    window_days : int
        Rolling window of the peak-to-trough ratio, in trading days.

    Returns
    -------
    BacktestResult
    """
    if not 0.5 < confidence < 1:
        raise InputError(f"confidence must be in (0.5, 1), got {confidence}", column="confidence")
    if int(mpor) != mpor or mpor < 1:
        raise InputError(f"MPOR must be a positive whole number of days, got {mpor}", column="mpor")
    if int(step) != step or step < 1:
        raise InputError(f"step must be a positive whole number, got {step}", column="step")
    portfolios = dict(PORTFOLIOS if portfolios is None else portfolios)
    n = len(hist)
    d = hist["date"]
    lo = 0 if start is None else int(np.searchsorted(d.to_numpy(), np.datetime64(pd.Timestamp(start))))
    hi = n - 1 - mpor
    if end is not None:
        hi = min(hi, int(np.searchsorted(d.to_numpy(), np.datetime64(pd.Timestamp(end)), side="right")) - 1)
    days = np.arange(lo, hi + 1, int(step))
    if days.size < 2:
        raise InputError(f"no test days between {start} and {end} (history of {n} rows, MPOR {mpor})")
    im = np.asarray(margin(hist, days, portfolios, tenor_days), dtype=float)
    pnl = realised_pnl(hist, days, portfolios, mpor, tenor_days)
    names = list(portfolios)
    nd, npf = pnl.shape
    daily = pd.DataFrame(
        {
            "date": np.repeat(d.to_numpy()[days], npf),
            "portfolio": np.tile(names, nd),
            "spot": np.repeat(hist["price"].to_numpy()[days], npf),
            "vol": np.repeat(hist["vol"].to_numpy()[days], npf),
            "vol_source": np.repeat(hist["vol_source"].to_numpy()[days], npf),
            "im": im.ravel(),
            "pnl": pnl.ravel(),
            "loss": -pnl.ravel(),
        }
    )
    daily["breach"] = daily["loss"] > daily["im"]
    # order by portfolio then date for the per-portfolio series
    daily = daily.sort_values(["portfolio", "date"], kind="stable", key=_portfolio_order(names)).reset_index(
        drop=True
    )
    settings = {
        "dataset": hist.attrs.get("name", "history"),
        "confidence": float(confidence),
        "mpor": int(mpor),
        "step": int(step),
        "tenor_days": float(tenor_days),
        "start": str(pd.Timestamp(d.iat[days[0]]).date()),
        "end": str(pd.Timestamp(d.iat[days[-1]]).date()),
        "margin": getattr(margin, "__name__", "margin"),
        "test_days": int(nd),
    }
    return BacktestResult(daily, summarise(daily, confidence, window_days=window_days, step=step), settings)


def _portfolio_order(names: list[str]) -> Callable[[pd.Series], pd.Series]:
    rank = {n: i for i, n in enumerate(names)}

    def key(col: pd.Series) -> pd.Series:
        return col.map(rank) if col.name == "portfolio" else col

    return key
