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
    S&P 500 index close 1990-01-02 to 2025-10-06 (Stooq) with the CBOE VIX / 100 (1990 on) as vol index
    (:func:`load_sp500_vix`).
``"btc"``, ``"eth"``
    Bitstamp BTC/USD (2014-11-28 on) and ETH/USD (2017-11-09 on) daily close to 2025-07-04 with the
    Deribit DVOL / 100 (2021-03-24 on) as vol index (:func:`load_crypto_dvol`).
``"sp500-arch"``, ``"btc-yahoo"``
    The earlier bundles: S&P 500 ``Adj Close`` 1999-2018 (``arch.data.sp500``) with VIX 2014-2018
    (``arch.data.vix``); BTC-USD ``Adj Close`` 2014-09-17 to 2022-03-01 (Yahoo Finance), no vol index.

Every file is listed with its source in ``greeksmargin/datasets/data/SOURCES.md``. The loaders of the
bundled files report what they did to the raw rows in ``attrs["report"]`` (a list of sentences: rows
reversed from newest-first, vol-index rows on days without a price, calendar gaps, days without the vol
index); :func:`drop_partial_last_row` rejects or drops a partial last row.

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
BUNDLED = ("sp500", "btc", "eth", "sp500-arch", "btc-yahoo")

_DATA_DIR = Path(__file__).resolve().parent.parent / "datasets" / "data"

_PRICE_ALIASES = ("price", "adj close", "adj_close", "close")
_VOL_ALIASES = ("vol", "vol_index", "implied_vol", "iv")

#: a vol above this is almost surely a percentage (README, Conventions and units)
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
        A bundled name (:data:`BUNDLED`, module docstring), a file path, or a raw table.
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
        hist = load_sp500_vix(max_gap_days=max_gap_days)
    elif str(source).lower() in ("btc", "eth"):
        hist = load_crypto_dvol(str(source).lower(), max_gap_days=max_gap_days)
    elif str(source).lower() == "sp500-arch":
        hist = _load_sp500(max_gap_days)
    elif str(source).lower() == "btc-yahoo":
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


# --------------------------------------------------------------------------------------------------
# bundled real history (greeksmargin/datasets/data/SOURCES.md): ordering, partial rows, gaps, alignment

#: largest calendar step between two rows that is not reported as a gap: weekend plus a holiday on a
#: trading-day calendar (Friday to Tuesday = 4 days), one day on a calendar that trades every day
CALENDAR_STEP = {252: 4, 365: 1}


def oldest_first(table: pd.DataFrame, *, file: str, date_col: str = "date",
                 report: list[str] | None = None) -> pd.DataFrame:
    """Rows in increasing date order: a file stored newest-first is reversed (and the reversal reported).

    A file whose dates are neither increasing nor decreasing is returned as is, for
    :func:`validate_history` to name the first row out of order.

    Parameters
    ----------
    table : pandas.DataFrame
        Raw table with a date column.
    file : str
        Name used in the report.
    date_col : str
        The date column.
    report : list of str, optional
        Sentences describing what was done are appended here.

    Returns
    -------
    pandas.DataFrame
        The table, oldest row first, index reset.
    """
    d = pd.to_datetime(table[date_col], errors="coerce")
    if len(d) > 1 and d.notna().all() and bool((d.diff().iloc[1:] < pd.Timedelta(0)).all()):
        if report is not None:
            report.append(f"{file}: stored newest-first ({len(d)} rows), read oldest-first")
        return table.iloc[::-1].reset_index(drop=True)
    return table.reset_index(drop=True)


def drop_partial_last_row(
    table: pd.DataFrame,
    *,
    file: str,
    volume_col: str,
    min_fraction: float = 0.5,
    lookback: int = 20,
    drop: bool = True,
    report: list[str] | None = None,
) -> pd.DataFrame:
    """Drop (or reject) a last row whose volume says the day was not complete when the file was written.

    The last row (oldest-first table) is *partial* when its volume is below ``min_fraction`` times the
    median volume of the ``lookback`` rows before it: an export taken during the trading day (the Stooq
    S&P 500 file's last row has about 40% of a normal day's volume; the Bitstamp files' last row a few
    hundredths). Its close is not a daily close.

    Parameters
    ----------
    table : pandas.DataFrame
        Oldest-first table.
    file : str
        Name used in the report or error.
    volume_col : str
        Volume column.
    min_fraction : float
        Threshold as a fraction of the recent median volume.
    lookback : int
        Rows of the median.
    drop : bool
        Drop the row (and report it) or raise.

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    InputError
        ``drop=False`` and the last row is partial (names the file, row and column).
    """
    vol = pd.to_numeric(table[volume_col], errors="coerce").to_numpy(dtype=float)
    if vol.size < lookback + 1:
        return table
    ref = float(np.nanmedian(vol[-lookback - 1 : -1]))
    last = vol[-1]
    if not (np.isfinite(last) and ref > 0 and last < min_fraction * ref):
        return table
    what = (f"last row looks partial: volume {last:g} is {last / ref:.0%} of the median of the {lookback} rows "
            f"before it (threshold {min_fraction:.0%})")
    if not drop:
        raise InputError(what, file=file, row=len(vol) - 1, column=volume_col)
    if report is not None:
        report.append(f"{file}: {what}; dropped")
    return table.iloc[:-1].reset_index(drop=True)


def align_vol_index(
    prices: pd.DataFrame, vol: pd.DataFrame, *, vol_file: str, report: list[str] | None = None
) -> pd.DataFrame:
    """Put a vol index (percent) on the price rows' dates: the table ``date, price, vol`` (decimal).

    Vol rows on dates without a price (exchange holidays on which the index was still printed) are not
    used; price rows without a vol value get NaN (filled later by :func:`with_vol_proxy`). Both counts
    go to ``report``.

    Parameters
    ----------
    prices : pandas.DataFrame
        ``date`` (Timestamp), ``price``; oldest-first.
    vol : pandas.DataFrame
        ``date`` (Timestamp), ``vol`` in percent (20 = 20%).
    vol_file : str
        Name used in the report.

    Returns
    -------
    pandas.DataFrame
        ``date, price, vol`` on the price rows.
    """
    v = vol.dropna(subset=["vol"]).set_index("date")["vol"]
    lo, hi = prices["date"].iloc[0], prices["date"].iloc[-1]
    inside = v[(v.index >= lo) & (v.index <= hi)]
    extra = inside.index.difference(pd.DatetimeIndex(prices["date"]))
    out = prices.copy()
    out["vol"] = v.reindex(pd.DatetimeIndex(prices["date"])).to_numpy(dtype=float) / 100.0
    if report is not None:
        if extra.size:
            report.append(f"{vol_file}: {extra.size} rows on days without a price (not used; first "
                          f"{extra[0].date()}, last {extra[-1].date()})")
        miss = ~np.isfinite(out["vol"].to_numpy())
        if miss.any():
            first = out.loc[~miss, "date"]
            after = out.loc[miss, "date"]
            after = after[after > first.iloc[0]] if len(first) else after
            report.append(
                f"{vol_file}: no value on {int(miss.sum())} of {len(out)} price days"
                + (f" (index starts {first.iloc[0].date()})" if len(first) else "")
                + (f" (after its start: {', '.join(str(d.date()) for d in after.iloc[:5])}"
                   + (" ..." if len(after) > 5 else "") + ")" if len(after) else "")
                + "; those days get the realised-vol proxy"
            )
    return out


def calendar_gaps(hist: pd.DataFrame, *, file: str, report: list[str] | None = None) -> list[tuple[str, int]]:
    """Steps between rows longer than the calendar's normal step (:data:`CALENDAR_STEP`), reported.

    Returns
    -------
    list of (str, int)
        ``(date after the gap, calendar days)`` of each gap.
    """
    ppy = int(hist.attrs.get("periods_per_year", 252))
    limit = CALENDAR_STEP.get(ppy, 4)
    step = hist["date"].diff().dt.days.to_numpy()
    gaps = [(str(hist["date"].iat[i].date()), int(step[i])) for i in np.flatnonzero(step[1:] > limit) + 1]
    if gaps and report is not None:
        shown = ", ".join(f"{d} ({n} days)" for d, n in gaps[:5])
        report.append(f"{file}: {len(gaps)} gap(s) longer than {limit} calendar days: {shown}"
                      + (" ..." if len(gaps) > 5 else "") + "; the h-day returns across a gap span it")
    return gaps


def _bundled(name: str) -> tuple[pd.DataFrame, str]:
    path = _DATA_DIR / name
    return io.read_table(path), f"greeksmargin/datasets/data/{name}"


def load_sp500_vix(*, max_gap_days: int = 10) -> pd.DataFrame:
    """S&P 500 daily close 1990-01-02..2025-10-06 with the CBOE VIX / 100 as vol index.

    Files ``spx_daily.csv`` (Stooq ^SPX close; the export's intraday last row, 2025-10-07, is not
    bundled) and ``cboe_vol_indices_daily.csv`` (VIX, VIX3M, VVIX closes; only VIX is used as the vol).
    The index is not total-return (no dividends): over a 2-day MPOR the difference is ~0.02%.

    Returns
    -------
    pandas.DataFrame
        Validated history, ``attrs["report"]`` lists VIX rows on days without an S&P 500 close (CBOE
        prints on some exchange holidays from 2022) and the calendar gaps (2001-09-11 closure).
    """
    report: list[str] = []
    spx, f_spx = _bundled("spx_daily.csv")
    spx = oldest_first(spx, file=f_spx, report=report)
    prices = validate_history(spx.rename(columns={"close": "price"}), file=f_spx, max_gap_days=max_gap_days,
                              name="sp500", periods_per_year=252)
    cboe, f_cboe = _bundled("cboe_vol_indices_daily.csv")
    cboe = oldest_first(cboe, file=f_cboe, report=report)
    vix = pd.DataFrame({"date": pd.to_datetime(cboe["date"]), "vol": pd.to_numeric(cboe["vix"], errors="coerce")})
    table = align_vol_index(prices[["date", "price"]], vix, vol_file=f_cboe + " (vix)", report=report)
    hist = validate_history(table, file=f_spx, max_gap_days=max_gap_days, name="sp500", periods_per_year=252)
    calendar_gaps(hist, file=f_spx, report=report)
    hist.attrs["source"] = (
        "S&P 500 index daily close 1990-2025 (Stooq ^SPX) with CBOE VIX/100 as vol index 1990-2025 "
        "(CBOE VIX_History); greeksmargin/datasets/data/spx_daily.csv, cboe_vol_indices_daily.csv, see SOURCES.md"
    )
    hist.attrs["report"] = report
    return hist


_CRYPTO_FILES = {"btc": "btc_usd_daily_bitstamp.csv", "eth": "eth_usd_daily_bitstamp.csv"}


def load_crypto_dvol(name: str, *, max_gap_days: int = 10) -> pd.DataFrame:
    """Bitstamp BTC/USD or ETH/USD daily close (UTC days) with the Deribit DVOL / 100 as vol index.

    Files ``btc_usd_daily_bitstamp.csv`` / ``eth_usd_daily_bitstamp.csv`` (newest-first as published;
    the partial day 2025-07-05 and, for BTC, the stale zero-volume rows 2015-01-06..11 of a Bitstamp
    outage are not bundled: the 7-day hole is reported as a gap) and ``deribit_dvol_daily.csv`` (DVOL BTC
    and ETH closes from 2021-03-24, newest-first).

    Parameters
    ----------
    name : {"btc", "eth"}

    Returns
    -------
    pandas.DataFrame
        Validated history (365 periods a year), ``attrs["report"]`` as for :func:`load_sp500_vix`.
    """
    if name not in _CRYPTO_FILES:
        raise InputError(f"unknown crypto history {name!r} (use one of {sorted(_CRYPTO_FILES)})")
    report: list[str] = []
    px, f_px = _bundled(_CRYPTO_FILES[name])
    px = oldest_first(px, file=f_px, report=report)
    prices = validate_history(px.rename(columns={"close": "price"}), file=f_px, max_gap_days=max_gap_days,
                              name=name, periods_per_year=365)
    dv, f_dv = _bundled("deribit_dvol_daily.csv")
    dv = oldest_first(dv, file=f_dv, report=report)
    dvol = pd.DataFrame({"date": pd.to_datetime(dv["date"]), "vol": pd.to_numeric(dv[name], errors="coerce")})
    table = align_vol_index(prices[["date", "price"]], dvol, vol_file=f"{f_dv} ({name})", report=report)
    after = int((dvol["date"] > prices["date"].iloc[-1]).sum())
    if after:
        report.append(f"{f_dv} ({name}): {after} rows after the last price day {prices['date'].iloc[-1].date()} "
                      "(not used)")
    hist = validate_history(table, file=f_px, max_gap_days=max_gap_days, name=name, periods_per_year=365)
    calendar_gaps(hist, file=f_px, report=report)
    hist.attrs["source"] = (
        f"{name.upper()}/USD daily close, Bitstamp (CryptoDataDownload export), with Deribit DVOL {name.upper()}/100 "
        f"as vol index from 2021-03-24; greeksmargin/datasets/data/{_CRYPTO_FILES[name]}, deribit_dvol_daily.csv, "
        "see SOURCES.md"
    )
    hist.attrs["report"] = report
    return hist
