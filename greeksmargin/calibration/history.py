"""Daily market history for calibration and backtests: loading and validation.

A history is a :class:`pandas.DataFrame` with one row per trading day and the columns

``date``
    ``pandas.Timestamp`` (naive, midnight), strictly increasing.
``price``
    closing price of the underlying (USD), > 0.
``vol``
    annualised implied volatility (decimal, 0.20 = 20%) of the underlying's vol index for that day,
    ``NaN`` where the index has no value (and before :func:`with_vol_proxy` fills it).
``vol_source``
    ``"index"`` where ``vol`` is the vol index, ``"proxy"`` where it was filled from realised volatility,
    ``"none"`` where it is missing.

``DataFrame.attrs`` carry ``name`` (data set), ``source`` (provenance text) and ``periods_per_year``
(252 for exchange-traded history, 365 for markets that trade every calendar day).

Bundled data sets (:func:`load_history`):

``"sp500"``
    S&P 500 ``Adj Close`` 1999-01-04 to 2018-12-31 from ``arch.data.sp500`` with the CBOE VIX
    (``arch.data.vix``, 2014-01-03 to 2019-01-03, divided by 100) as vol index where it exists.
``"btc"``
    BTC-USD ``Adj Close`` 2014-09-17 to 2022-03-01 (Yahoo Finance, ``greeksmargin/datasets/data``);
    no vol index is bundled.

Days without a vol index get a realised-vol proxy in :func:`with_vol_proxy` (annualised EWMA volatility
of daily log returns times a scale fitted where both exist); backtests need a vol every day.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from greeksmargin import io
from greeksmargin.errors import InputError

#: bundled data sets accepted by :func:`load_history`
BUNDLED = ("sp500", "btc")

_DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "data"

_PRICE_ALIASES = ("price", "adj close", "adj_close", "close")
_VOL_ALIASES = ("vol", "vol_index", "implied_vol", "iv")

#: a vol above this is almost surely a percentage (DESIGN.md, Units)
MAX_DECIMAL_VOL = 5.0


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    lower = {c.strip().lower(): c for c in columns}
    for a in aliases:
        if a in lower:
            return lower[a]
    return None


def validate_history(
    table: pd.DataFrame,
    *,
    file: str = "<DataFrame>",
    max_gap_days: int = 10,
    name: str | None = None,
    periods_per_year: int | None = None,
) -> pd.DataFrame:
    """Validate a raw daily-history table and return it normalised.

    Parameters
    ----------
    table : pandas.DataFrame
        Raw table with a ``date`` column, a price column (``price``, or ``Adj Close``/``Close``) and
        optionally a vol-index column (``vol``, ``vol_index``, ``implied_vol`` or ``iv``; decimal).
        Column names are matched case-insensitively.
    file : str
        Name used in error messages.
    max_gap_days : int
        Largest accepted distance in calendar days between consecutive rows (10 lets weekends,
        holidays and the 2001-09-11 closure pass; a longer hole is reported as a gap).
    name : str, optional
        Data-set name stored in ``attrs["name"]`` (default: the file stem).
    periods_per_year : int, optional
        Trading days per year; inferred when omitted (365 if the history has weekend rows, else 252).

    Returns
    -------
    pandas.DataFrame
        Columns ``date, price, vol, vol_source`` (module docstring), default RangeIndex.

    Raises
    ------
    InputError
        Missing column, unparseable date, duplicate date, dates out of order, gap longer than
        ``max_gap_days``, missing or non-positive price, negative or percentage vol. The message names
        the file, the 0-based data row and the column.
    """
    cols = [str(c) for c in table.columns]
    date_col = _pick(cols, ("date", "timestamp", "time"))
    if date_col is None:
        raise InputError("missing column 'date'", file=file, column="date")
    price_col = _pick(cols, _PRICE_ALIASES)
    if price_col is None:
        raise InputError("missing price column (one of: price, Adj Close, Close)", file=file, column="price")
    vol_col = _pick(cols, _VOL_ALIASES)

    dates = pd.to_datetime(table[date_col], errors="coerce", utc=False)
    for i, (raw, parsed) in enumerate(zip(table[date_col], dates)):
        if pd.isna(parsed):
            raise InputError(f"unparseable date {raw!r}", file=file, row=i, column=date_col)
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    dates = dates.dt.normalize().reset_index(drop=True)
    dup = dates.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise InputError(f"duplicate date {dates[i].date()}", file=file, row=i, column=date_col)
    step = dates.diff().dt.days.to_numpy()
    if len(step) > 1:
        bad = np.flatnonzero(step[1:] <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise InputError(
                f"date {dates[i].date()} is not after the previous row's {dates[i - 1].date()}",
                file=file,
                row=i,
                column=date_col,
            )
        gaps = np.flatnonzero(step[1:] > max_gap_days)
        if gaps.size:
            i = int(gaps[0]) + 1
            raise InputError(
                f"gap of {int(step[i])} days after {dates[i - 1].date()} (max_gap_days={max_gap_days})",
                file=file,
                row=i,
                column=date_col,
            )

    price = pd.to_numeric(table[price_col], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(price) | (price <= 0))
    if bad.size:
        i = int(bad[0])
        raw = table[price_col].iloc[i]
        what = "missing or non-numeric price" if not np.isfinite(price[i]) else f"non-positive price {raw!r}"
        raise InputError(what, file=file, row=i, column=price_col)

    if vol_col is not None:
        vol = pd.to_numeric(table[vol_col], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(np.isfinite(vol) & (vol <= 0))
        if bad.size:
            raise InputError(f"non-positive vol {vol[bad[0]]!r}", file=file, row=int(bad[0]), column=vol_col)
        bad = np.flatnonzero(np.isfinite(vol) & (vol > MAX_DECIMAL_VOL))
        if bad.size:
            raise InputError(
                f"vol {vol[bad[0]]!r} above {MAX_DECIMAL_VOL}: give vols as decimals (0.20), not percent",
                file=file,
                row=int(bad[0]),
                column=vol_col,
            )
    else:
        vol = np.full(len(price), np.nan)

    out = pd.DataFrame(
        {
            "date": dates,
            "price": price,
            "vol": vol,
            "vol_source": np.where(np.isfinite(vol), "index", "none"),
        }
    )
    if len(out) < 3:
        raise InputError(f"history has {len(out)} rows; need at least 3", file=file)
    if periods_per_year is None:
        periods_per_year = 365 if (out["date"].dt.day_of_week >= 5).any() else 252
    out.attrs.update(
        name=name or Path(file).stem,
        source=file,
        periods_per_year=int(periods_per_year),
    )
    return out


def load_history(
    source: str | Path | pd.DataFrame,
    *,
    max_gap_days: int = 10,
    vol_proxy: bool = True,
) -> pd.DataFrame:
    """Load a daily history: a bundled data set (``"sp500"``, ``"btc"``), a CSV/Parquet file or a table.

    Parameters
    ----------
    source : str, Path or pandas.DataFrame
        ``"sp500"`` / ``"btc"`` (module docstring), a file path, or a raw table.
    max_gap_days : int
        See :func:`validate_history`.
    vol_proxy : bool
        Fill days without a vol index by :func:`with_vol_proxy` (``vol_source == "proxy"``).

    Returns
    -------
    pandas.DataFrame
        Validated history (columns ``date, price, vol, vol_source``; ``attrs`` name, source,
        periods_per_year).
    """
    if isinstance(source, pd.DataFrame):
        hist = validate_history(source, max_gap_days=max_gap_days)
    elif str(source).lower() == "sp500":
        hist = _load_sp500(max_gap_days)
    elif str(source).lower() == "btc":
        path = _DATA_DIR / "btc_usd_daily.csv"
        hist = validate_history(
            io.read_table(path), file=str(path), max_gap_days=max_gap_days, name="btc", periods_per_year=365
        )
        hist.attrs["source"] = (
            "BTC-USD daily Adj Close, Yahoo Finance via the public repository FeritYikar/bitcoin-daily "
            "(greeksmargin/datasets/data/btc_usd_daily.csv, see SOURCES.md); no vol index"
        )
    else:
        path = Path(source)
        hist = validate_history(io.read_table(path), file=str(path), max_gap_days=max_gap_days)
    if vol_proxy:
        hist = with_vol_proxy(hist)
    return hist


def _load_sp500(max_gap_days: int) -> pd.DataFrame:
    import arch.data.sp500
    import arch.data.vix

    spx = arch.data.sp500.load()
    vix = arch.data.vix.load()
    table = pd.DataFrame({"date": spx.index, "price": spx["Adj Close"].to_numpy()})
    table["vol"] = (vix["vix"] / 100.0).reindex(spx.index).to_numpy()
    hist = validate_history(
        table, file="arch.data.sp500", max_gap_days=max_gap_days, name="sp500", periods_per_year=252
    )
    hist.attrs["source"] = (
        "S&P 500 Adj Close 1999-2018 (arch.data.sp500, Yahoo Finance) with CBOE VIX/100 as vol index "
        "2014-2018 (arch.data.vix)"
    )
    return hist


def ewma_sigma(returns: np.ndarray, lam: float = 0.94, *, seed_obs: int = 30) -> np.ndarray:
    """EWMA volatility forecasts (RiskMetrics) of a return series.

    ``sigma2[0]`` is the mean square of the first ``seed_obs`` returns; then
    ``sigma2[t] = lam * sigma2[t-1] + (1 - lam) * r[t-1]**2``: ``sigma[t]`` uses returns strictly before
    ``t`` and is the forecast for ``r[t]``. The extra last element is the forecast for the next,
    unobserved, return.

    Parameters
    ----------
    returns : ndarray of shape (n,)
        Periodic (e.g. daily log) returns.
    lam : float
        Decay factor in (0, 1).
    seed_obs : int
        Number of leading returns whose mean square seeds the recursion.

    Returns
    -------
    ndarray of shape (n + 1,)
        Per-period volatility forecasts (same unit as ``returns``).
    """
    r = np.asarray(returns, dtype=float)
    if not 0.0 < lam < 1.0:
        raise InputError(f"EWMA lambda must be in (0, 1), got {lam}", column="lambda")
    if r.size == 0:
        raise InputError("no returns to filter")
    s2 = np.empty(r.size + 1)
    s2[0] = np.mean(r[: max(1, min(seed_obs, r.size))] ** 2)
    # s2[t] = lam * s2[t-1] + (1 - lam) * r[t-1]**2 as a linear filter (reference loop in the tests)
    s2[1:], _ = lfilter([1.0 - lam], [1.0, -lam], r**2, zi=[lam * s2[0]])
    return np.sqrt(s2)


def with_vol_proxy(hist: pd.DataFrame, lam: float = 0.94) -> pd.DataFrame:
    """Fill days without a vol index with a scaled realised-volatility proxy.

    The proxy is the annualised EWMA volatility of daily log returns known at the close of the day
    (``sigma * sqrt(periods_per_year)``), multiplied by ``scale = median(vol_index / proxy)`` over the days
    where both exist (1.0 when the history has no vol index). Rows filled get ``vol_source = "proxy"``;
    ``attrs["vol_proxy_scale"]`` records the scale.

    Parameters
    ----------
    hist : pandas.DataFrame
        Validated history (:func:`validate_history`).
    lam : float
        EWMA decay of the proxy.

    Returns
    -------
    pandas.DataFrame
        A copy with ``vol`` filled everywhere.
    """
    out = hist.copy()
    out.attrs = dict(hist.attrs)
    r = np.diff(np.log(out["price"].to_numpy()))
    # sigma known at the close of day t = forecast for the return of day t+1
    # ewma_sigma(r)[j] uses r[0..j-1], i.e. prices up to row j: the forecast known at row j's close
    proxy = ewma_sigma(r, lam) * np.sqrt(out.attrs.get("periods_per_year", 252))
    vol = out["vol"].to_numpy(dtype=float)
    have = np.isfinite(vol)
    scale = float(np.median(vol[have] / proxy[have])) if have.sum() >= 20 else 1.0
    fill = ~have
    vol = vol.copy()
    vol[fill] = proxy[fill] * scale
    out["vol"] = vol
    src = out["vol_source"].to_numpy(dtype=object).copy()
    src[fill] = "proxy"
    out["vol_source"] = src
    out.attrs["vol_proxy_scale"] = scale
    out.attrs["vol_proxy_lambda"] = lam
    return out


def select_dates(hist: pd.DataFrame, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Rows of ``hist`` with ``start <= date <= end`` (either bound optional), attrs kept."""
    mask = np.ones(len(hist), dtype=bool)
    if start is not None:
        mask &= (hist["date"] >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        mask &= (hist["date"] <= pd.Timestamp(end)).to_numpy()
    out = hist.loc[mask].reset_index(drop=True)
    out.attrs = dict(hist.attrs)
    if len(out) < 3:
        raise InputError(f"only {len(out)} rows between {start} and {end}", file=str(hist.attrs.get("source")))
    return out
