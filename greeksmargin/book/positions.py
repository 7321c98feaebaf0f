"""Positions table: schema, normalisation and validation at the boundary.

Schema (one row per position; CSV, Parquet or DataFrame)
--------------------------------------------------------
===================  ==========================================================================
column               meaning
===================  ==========================================================================
account              account name (str), required
instrument           instrument name (str), required
underlying           underlying name as in the market snapshot (str), required
kind                 ``option`` | ``future`` | ``perpetual`` | ``spot`` (case-insensitive), required
option_type          ``call`` | ``put`` (also ``C`` / ``P``); options only
strike               strike in USD (> 0); options only, NaN otherwise
expiry               ISO date-time (UTC if naive); options and futures; NaT for perpetual / spot
quantity             signed number of contracts, + long (required, finite)
multiplier           units of underlying per contract (> 0), default 1
settlement           ``linear`` (USD-settled) | ``inverse`` (coin-settled), default ``linear``
premium_currency     currency of the premium, default ``USD`` (linear) / the underlying (inverse)
===================  ==========================================================================

Row numbering in errors
-----------------------
Errors are :class:`~greeksmargin.errors.InputError` naming the file (``"<DataFrame>"`` for in-memory
input), the row and the column. For a DataFrame the row is its **index label**; for a file it is the
**0-based data row** (the index of the table as read: the header is not counted), and the message
adds the 1-based line of the file, e.g. ``file book.csv, row 3, column 'strike': strike must be
positive (got -5.0) (CSV line 5)``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.book.market import to_utc
from greeksmargin.book.tables import DATE_MAX, DATE_MIN, DATE_RANGE, check_columns, check_magnitude
from greeksmargin.errors import ArgumentTypeError, InputError, MarketDataError

if TYPE_CHECKING:
    from greeksmargin.book.market import MarketSnapshot

__all__ = ["COLUMNS", "KINDS", "SETTLEMENTS", "REQUIRED", "load_positions", "load_positions_collect",
           "validate_against_market"]

COLUMNS = (
    "account",
    "instrument",
    "underlying",
    "kind",
    "option_type",
    "strike",
    "expiry",
    "quantity",
    "multiplier",
    "settlement",
    "premium_currency",
)
REQUIRED = ("account", "instrument", "underlying", "kind", "quantity")
KINDS = ("option", "future", "perpetual", "spot")
SETTLEMENTS = ("linear", "inverse")
#: largest accepted |quantity| (contracts), strike (USD) and multiplier: beyond them a figure is a typo
MAX_QUANTITY = 1e12
MAX_PRICE = 1e12
MIN_STRIKE = 1e-9
MAX_MULTIPLIER = 1e9
_OPTION_TYPES = {"call": "call", "c": "call", "put": "put", "p": "put"}


class _Where:
    """Builds errors naming the file and row of the input."""

    def __init__(self, file: str, is_file: bool, df: pd.DataFrame) -> None:
        self.file = file
        self.is_file = is_file
        self.pos = {lab: i for i, lab in enumerate(df.index)} if is_file else {}

    def error(self, msg: str, row: Any, column: str | None, cls: type[InputError] = InputError) -> InputError:
        if self.is_file and row is not None and self.file.lower().endswith(".csv"):
            msg = f"{msg} (CSV line {int(row) + 2})"
        return cls(msg, file=self.file, row=row, column=column)


def _first_bad(mask: pd.Series | np.ndarray, index: pd.Index) -> Any:
    m = np.asarray(mask, dtype=bool)
    return index[int(np.argmax(m))] if m.any() else None


def load_positions(
    source: str | Path | pd.DataFrame,
    *,
    valuation_time: Any = None,
    name: str | None = None,
) -> pd.DataFrame:
    """Read and validate a positions table.

    Parameters
    ----------
    source : str, Path or DataFrame
        A CSV / Parquet file, or a DataFrame with the columns of the schema (module docstring).
    valuation_time : str, datetime or Timestamp, optional
        When given, options and futures expiring at or before it are rejected.
    name : str, optional
        Name used in error messages instead of the file name / ``"<DataFrame>"``.

    Returns
    -------
    DataFrame of shape (n_positions, 11)
        Columns :data:`COLUMNS` normalised: str columns stripped, ``kind``/``settlement``/``option_type``
        lower-case (``option_type`` None for non-options), ``strike`` float (NaN for non-options),
        ``expiry`` UTC Timestamp (NaT for perpetual / spot), ``quantity``/``multiplier`` float. The index
        of a DataFrame input is preserved (a file gets a RangeIndex = 0-based data row).

    Raises
    ------
    InputError
        Missing column, wrong type, unknown kind / settlement / option type, option without strike,
        option_type or expiry, future without expiry, strike or multiplier <= 0, NaN quantity, expired
        future (an option at or past its expiry is kept: it is valued at intrinsic). The message names
        the file, the row and the column.
    """
    if isinstance(source, pd.DataFrame):
        df = source.copy()
        where = _Where(name or "<DataFrame>", False, df)
    else:
        if not isinstance(source, (str, Path)):
            raise ArgumentTypeError("source", "a positions file path (str or Path) or a DataFrame", source)
        df = io.read_table(source, dtype={"account": str, "instrument": str, "underlying": str},
                           keep_default_na=False, na_values=[""])
        where = _Where(name or str(source), True, df)
        if len(df) == 0:
            raise InputError("no rows: the positions table holds a header but no position", file=where.file)
    idx = df.index
    if not idx.is_unique:
        raise InputError("the index of the positions must be unique (it labels each position)", file=where.file)
    check_columns(df.columns, known=COLUMNS, required=REQUIRED, file=where.file)
    n = len(df)

    def text(col: str, default: str | None = None) -> pd.Series:
        if col not in df.columns:
            return pd.Series([default] * n, index=idx, dtype=object)
        s = df[col]
        stripped = s.astype(str).str.strip()
        blank = s.isna() | (stripped == "")
        out = stripped.where(~blank, default)
        return out.astype(object)

    out = pd.DataFrame(index=idx)
    for col in ("account", "instrument", "underlying"):
        s = text(col)
        bad = s.isna()
        if bad.any():
            raise where.error("empty value", _first_bad(bad, idx), col)
        out[col] = s

    kind = text("kind", "").str.lower()
    bad = ~kind.isin(KINDS)
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(f"unknown kind '{df['kind'].loc[r]}' (expected one of {', '.join(KINDS)})", r, "kind")
    out["kind"] = kind
    is_opt = (kind == "option").to_numpy()
    needs_expiry = kind.isin(("option", "future")).to_numpy()

    # option_type
    ot_raw = text("option_type")
    ot = ot_raw.str.lower().map(_OPTION_TYPES)
    miss = is_opt & ot_raw.isna().to_numpy()
    if miss.any():
        raise where.error("an option needs an option_type (call or put)", _first_bad(miss, idx), "option_type")
    bad = is_opt & ot.isna().to_numpy()
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(f"unknown option_type '{ot_raw.loc[r]}' (expected call or put)", r, "option_type")
    out["option_type"] = pd.Series(
        np.where(is_opt, ot.to_numpy(dtype=object), np.array(None, dtype=object)), index=idx, dtype=object
    )

    # strike
    strike = _numeric(df, "strike", where, idx, required_mask=is_opt, what="an option needs a strike")
    bad = is_opt & ~(strike >= MIN_STRIKE)
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(f"strike must be positive (got {float(strike[idx.get_loc(r)])!r}; allowed "
                          f"[{MIN_STRIKE:g}, {MAX_PRICE:.0e}])", r, "strike")
    bad = ~is_opt & ~np.isnan(strike) & ~((strike >= 0) & (strike <= MAX_PRICE))
    if bad.any():  # a strike on a future / perpetual / spot row is not used, but a bad one is a bad row
        r = _first_bad(bad, idx)
        raise where.error(f"strike must be empty or a number in [0, {MAX_PRICE:.0e}] on a {kind.loc[r]} row "
                          f"(got {float(strike[idx.get_loc(r)])!r})", r, "strike")
    check_magnitude(np.where(is_opt, strike, 0.0), idx, "strike", where.error, max_abs=MAX_PRICE)
    out["strike"] = np.where(is_opt, strike, np.nan)

    # expiry
    if "expiry" in df.columns:
        exp_raw = df["expiry"]
        blank = exp_raw.isna() | (exp_raw.astype(str).str.strip() == "")
        try:
            expiry = pd.to_datetime(exp_raw.where(~blank, None), utc=True, format="mixed")
            expiry = pd.Series(expiry, index=idx).astype("datetime64[ns, UTC]")
        except (ValueError, TypeError, OverflowError):  # find the row (OutOfBoundsDatetime is a ValueError)
            expiry = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
            for lab in idx:
                v = exp_raw.loc[lab]
                if pd.isna(v) or str(v).strip() == "":
                    continue
                try:
                    ts = to_utc(v)
                except (ValueError, TypeError, OverflowError):
                    raise where.error(f"not a date-time: '{v}'", lab, "expiry") from None
                if not DATE_MIN <= ts <= DATE_MAX:
                    raise where.error(f"expiry {v!r} out of range ({DATE_RANGE})", lab, "expiry") from None
                expiry.loc[lab] = ts
        expiry = pd.Series(expiry, index=idx)
    else:
        expiry = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
    miss = needs_expiry & expiry.isna().to_numpy()
    if miss.any():
        r = _first_bad(miss, idx)
        raise where.error(f"an {kind.loc[r]} needs an expiry", r, "expiry")
    expiry = expiry.where(needs_expiry, pd.NaT)
    if valuation_time is not None:
        try:
            vt = to_utc(valuation_time)
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"argument 'valuation_time' is not a date-time (got {valuation_time!r})") from None
        # an option at or past its expiry is valued at intrinsic (greeks.market_arrays); a future errors
        bad = needs_expiry & ~is_opt & (expiry <= vt).to_numpy()
        if bad.any():
            r = _first_bad(bad, idx)
            raise where.error(
                f"{kind.loc[r]} expired: expiry {expiry.loc[r].isoformat()} is not after the valuation time "
                f"{vt.isoformat()}",
                r,
                "expiry",
            )
    out["expiry"] = expiry.astype("datetime64[ns, UTC]")

    # quantity, multiplier
    qty = _numeric(df, "quantity", where, idx, required_mask=np.ones(n, bool), what="quantity is missing (NaN)")
    bad = ~np.isfinite(qty)
    if bad.any():
        raise where.error("quantity must be finite", _first_bad(bad, idx), "quantity")
    check_magnitude(qty, idx, "quantity", where.error, max_abs=MAX_QUANTITY)
    out["quantity"] = qty
    if "multiplier" in df.columns:
        mult = _numeric(df, "multiplier", where, idx, required_mask=np.zeros(n, bool), what="")
        mult = np.where(np.isnan(mult), 1.0, mult)
    else:
        mult = np.ones(n)
    bad = ~(mult > 0) | ~np.isfinite(mult)
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(f"multiplier must be positive (got {float(mult[idx.get_loc(r)])!r})", r, "multiplier")
    check_magnitude(mult, idx, "multiplier", where.error, max_abs=MAX_MULTIPLIER)
    out["multiplier"] = mult

    settle = text("settlement", "linear").str.lower()
    bad = ~settle.isin(SETTLEMENTS)
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(
            f"unknown settlement '{df['settlement'].loc[r]}' (expected linear or inverse)", r, "settlement"
        )
    out["settlement"] = settle
    prem = text("premium_currency")
    codes = pd.unique(prem.dropna())  # the pattern checked once per distinct code
    wrong = [c for c in codes if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{1,9}", str(c))]
    bad = prem.isin(wrong) if wrong else pd.Series(False, index=prem.index)
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(f"not a currency code: {prem.loc[r]!r} (expected e.g. USD, USDC, BTC)", r,
                          "premium_currency")
    default_prem = pd.Series(np.where(settle == "inverse", out["underlying"], "USD"), index=idx)
    out["premium_currency"] = prem.where(prem.notna(), default_prem).astype(object)
    out = out[list(COLUMNS)]
    out.attrs["source"] = where.file
    return out


def load_positions_collect(
    source: str | Path | pd.DataFrame, *, valuation_time: Any = None, max_bad: int = 1000
) -> tuple[pd.DataFrame, dict[str, str]]:
    """:func:`load_positions`, setting aside the accounts with a bad row instead of failing the whole table.

    Parameters
    ----------
    source : str, Path or DataFrame
        As for :func:`load_positions`.
    valuation_time : optional
        As for :func:`load_positions`.
    max_bad : int
        Stop (re-raising the error) after this many bad accounts.

    Returns
    -------
    (DataFrame, dict of str -> str)
        The validated positions of the good accounts (rows keep their file row labels), and per bad
        account the error naming its first bad row (file, row, column, value).

    Raises
    ------
    InputError
        An error that is not about one row (missing column, unreadable file, ...), or one in a row whose
        account is not known, or more than ``max_bad`` bad accounts.
    """
    if isinstance(source, pd.DataFrame):
        df, name = source, None
    else:
        if not isinstance(source, (str, Path)):
            raise ArgumentTypeError("source", "a positions file path (str or Path) or a DataFrame", source)
        df = io.read_table(source, dtype={"account": str, "instrument": str, "underlying": str},
                           keep_default_na=False, na_values=[""])
        name = str(source)
        if len(df) == 0:
            raise InputError("no rows: the positions table holds a header but no position", file=name)
    bad: dict[str, str] = {}
    while True:
        try:
            return load_positions(df, valuation_time=valuation_time, name=name), bad
        except InputError as exc:
            row = exc.row
            if row is None or "account" not in df.columns or row not in df.index or len(bad) >= max_bad:
                raise
            acc = df.loc[row, "account"]
            if pd.isna(acc) or str(acc).strip() == "":
                raise
            acc = str(acc).strip()
            bad[acc] = str(exc)
            df = df[df["account"].astype(str).str.strip() != acc]
            if len(df) == 0:
                return load_positions(df.iloc[:0], valuation_time=valuation_time, name=name), bad


def _numeric(
    df: pd.DataFrame, col: str, where: _Where, idx: pd.Index, *, required_mask: np.ndarray, what: str
) -> np.ndarray:
    """Column ``col`` as float64 (NaN where blank); errors name the first non-numeric / missing row."""
    if col not in df.columns:
        if required_mask.any():
            if col in REQUIRED:
                raise InputError(f"missing column (required: {', '.join(REQUIRED)})", file=where.file, column=col)
            raise where.error(what, _first_bad(required_mask, idx), col)
        return np.full(len(df), np.nan)
    raw = df[col]
    if raw.dtype == bool or pd.api.types.is_complex_dtype(raw.dtype):
        raise where.error(f"must be a real number (got a {raw.dtype} column)", idx[0] if len(idx) else None, col)
    vals = pd.to_numeric(raw, errors="coerce")
    # blank (missing) or not a number: only the rows that did not parse are looked at as text
    bad = np.array(vals.isna() & ~raw.isna(), dtype=bool)
    if bad.any():
        at = np.flatnonzero(bad)
        bad[at[(raw.iloc[at].astype(str).str.strip() == "").to_numpy()]] = False
    bad = pd.Series(bad, index=raw.index)
    if bad.any():
        r = _first_bad(bad, idx)
        raise where.error(f"must be a number (got '{raw.loc[r]}')", r, col)
    arr = vals.to_numpy(dtype=float)
    miss = required_mask & np.isnan(arr)
    if miss.any():
        raise where.error(what, _first_bad(miss, idx), col)
    return arr


def validate_against_market(positions: pd.DataFrame, market: MarketSnapshot, *, file: str = "<DataFrame>") -> None:
    """Check that the market snapshot covers every position.

    Parameters
    ----------
    positions : DataFrame
        Output of :func:`load_positions`.
    market : MarketSnapshot
        The snapshot.
    file : str
        Name of the positions source for messages.

    Raises
    ------
    MarketDataError
        An underlying absent from the market, or an option whose underlying has no implied vol; the
        message names the row (index label) and the column ``'underlying'``.
    """
    if file == "<DataFrame>":
        file = str(positions.attrs.get("source", file))
    und = positions["underlying"]
    known = set(market.underlyings)
    absent = ~und.isin(known)
    if absent.any():
        r = _first_bad(absent, positions.index)
        raise MarketDataError(
            f"underlying '{und.loc[r]}' is not in the market snapshot (known: {', '.join(sorted(known))})",
            file=file,
            row=r,
            column="underlying",
        )
    no_vol = {u for u in known if not market.has_vol(u)}
    bad = (positions["kind"] == "option") & und.isin(no_vol)
    if bad.any():
        r = _first_bad(bad, positions.index)
        raise MarketDataError(
            f"option on '{und.loc[r]}' but the market has no implied vol for it (no surface, no instrument vols)",
            file=file,
            row=r,
            column="underlying",
        )


def account_currency(positions: pd.DataFrame, market: MarketSnapshot) -> pd.Series:
    """Margin currency per account: the coin if every position is inverse on one coin, else ``USD``."""
    if len(positions) == 0:
        return pd.Series(dtype=object)
    inv = positions["settlement"].to_numpy(dtype=object) == "inverse"
    und = positions["underlying"].to_numpy(dtype=object)
    ccy_of = {u: market.currency(u) for u in pd.unique(und)}
    coin = np.where(inv, [ccy_of[u] for u in und], "USD")
    df = pd.DataFrame({"account": positions["account"].to_numpy(dtype=object), "c": coin})
    g = df.groupby("account", sort=False)["c"].agg(["first", "nunique"])
    return pd.Series(np.where(g["nunique"] == 1, g["first"], "USD"), index=g.index, dtype=object)
