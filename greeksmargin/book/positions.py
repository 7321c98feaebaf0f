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
exercise             ``european`` | ``american`` (case-insensitive); options only, default ``european``
===================  ==========================================================================

Exercise style is declared per position (the product cannot tell a single-stock or ETF underlying from an
index): blank means ``european``. ``american`` is refused on futures, perpetuals and spot (no exercise) and
on coin-settled (inverse) options (no listed coin-settled option is American, and the American
approximations of :mod:`greeksmargin.pricing.american` price a USD payoff); normalised to None on
non-option rows.

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
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin import io
from greeksmargin.book.market import to_utc
from greeksmargin.book.quantity_units import UNIT_COLUMNS, convert_quantity
from greeksmargin.book.tables import DATE_MAX, DATE_MIN, DATE_RANGE, check_columns, check_magnitude
from greeksmargin.errors import ArgumentTypeError, InputError, MarketDataError

if TYPE_CHECKING:
    from greeksmargin.book.market import MarketSnapshot

__all__ = ["COLUMNS", "EXERCISES", "KINDS", "PROBLEM_COLUMNS", "REQUIRED", "SETTLEMENTS", "bad_accounts",
           "check_positions", "empty_problems", "load_positions", "load_positions_collect",
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
    "exercise",
)
REQUIRED = ("account", "instrument", "underlying", "kind", "quantity")
KINDS = ("option", "future", "perpetual", "spot")
SETTLEMENTS = ("linear", "inverse")
EXERCISES = ("european", "american")
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


def _all_text(s: pd.Series) -> bool:
    """True for a column of ``str`` values and missing values only (a string dtype, or objects that are all str)."""
    return isinstance(s.dtype, pd.StringDtype) or (
        s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"))


class _Text:
    """A text column factorised once: per row the code of its stripped value (-1 where blank).

    The checks and case folding run on the distinct values (``uniq``), never per row; a row's value is
    ``uniq[code]``. A column holding only ``str`` (or missing) values is factorised as is and each distinct
    value stripped; any other column is first turned into text as ``str(value).strip()`` per row (so that
    ``1`` and ``1.0`` stay two names), then factorised.
    """

    __slots__ = ("codes", "uniq")

    def __init__(self, codes: NDArray[np.intp], uniq: NDArray[Any]) -> None:
        self.codes = codes
        self.uniq = uniq

    @classmethod
    def of(cls, df: pd.DataFrame, col: str, n: int) -> _Text:
        """Column ``col`` of ``df`` (all blank when absent); blank = missing or empty after stripping."""
        if col not in df.columns:
            return cls(np.full(n, -1, dtype=np.intp), np.empty(0, dtype=object))
        s = df[col]
        if _all_text(s):
            codes, uniq = pd.factorize(s, use_na_sentinel=True)
            raw = np.asarray(uniq, dtype=object)
            st = np.array([None if not isinstance(v, str) and pd.isna(v) else str(v).strip() for v in raw],
                          dtype=object)
        else:  # numbers, dates, mixed objects: the text of each value, as pandas writes it
            t = s.astype(str).str.strip()
            t = t.where(~(s.isna() | (t == "")), None).to_numpy(dtype=object)
            codes, st = pd.factorize(t, use_na_sentinel=True)
            st = np.asarray(st, dtype=object)
        blank = np.array([v is None or v == "" for v in st], dtype=bool)
        codes = np.asarray(codes, dtype=np.intp)
        if blank.any():
            lut = np.arange(len(st) + 1, dtype=np.intp)
            lut[:-1][blank] = -1
            lut[-1] = -1
            codes = lut[codes]
        return cls(codes, st)

    def values(self, default: Any = None) -> NDArray[Any]:
        """The stripped value of each row (``default`` where blank), object array of shape (n,)."""
        lut = np.empty(len(self.uniq) + 1, dtype=object)
        lut[:-1] = self.uniq
        lut[-1] = default
        return lut[self.codes]

    def map(self, fn: Any) -> _Text:
        """``fn`` applied to each distinct non-blank value (``None`` results stay as values)."""
        return _Text(self.codes, np.array([v if v is None or v == "" else fn(v) for v in self.uniq], dtype=object))

    def isin_fn(self, fn: Any, default: bool) -> NDArray[np.bool_]:
        """``fn(value)`` per row, evaluated once per distinct value; ``default`` where blank; shape (n,)."""
        lut = np.empty(len(self.uniq) + 1, dtype=bool)
        lut[:-1] = [bool(fn(v)) if v is not None and v != "" else default for v in self.uniq]
        lut[-1] = default
        return lut[self.codes]

    def isin(self, allowed: tuple[Any, ...], default: Any) -> NDArray[np.bool_]:
        """Whether each row's value (``default`` where blank) is one of ``allowed``; shape (n,)."""
        ok = set(allowed)
        lut = np.empty(len(self.uniq) + 1, dtype=bool)
        lut[:-1] = [(default if v is None or v == "" else v) in ok for v in self.uniq]
        lut[-1] = default in ok
        return lut[self.codes]


#: columns of the problems table of :func:`check_positions` and :class:`~greeksmargin.book.book.Book`
PROBLEM_COLUMNS = ("account", "file", "row", "column", "rule", "message")


class _Sink:
    """Where row faults go: raised at once (``collect=False``) or recorded, every bad row, in one pass.

    A recorded row is *dead*: later checks skip it (one problem per row: its first fault in check order,
    the same one ``collect=False`` would raise), and its account is set aside by the caller.
    """

    def __init__(self, where: _Where, idx: pd.Index, collect: bool) -> None:
        self.where = where
        self.idx = idx
        self.collect = collect
        self.dead = np.zeros(len(idx), dtype=bool)
        self.rows: list[tuple[int, str, str, str]] = []  # (position, column, rule, message)

    def fail(self, mask: Any, column: str, rule: str, message: Any, cls: type[InputError] = InputError) -> None:
        """Rows of ``mask`` break ``rule``; ``message(i)`` (or a str) says how for position ``i``."""
        m = np.asarray(mask, dtype=bool) & ~self.dead
        if not m.any():
            return
        text = message if callable(message) else (lambda i: message)
        if not self.collect:
            i = int(np.argmax(m))
            raise self.where.error(text(i), self.idx[i], column, cls)
        for j in np.flatnonzero(m):
            self.rows.append((int(j), column, rule, text(int(j))))
        self.dead |= m


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
    DataFrame of shape (n_positions, 12)
        Columns :data:`COLUMNS` normalised: str columns stripped, ``kind``/``settlement``/``option_type``
        lower-case (``option_type`` None for non-options), ``strike`` float (NaN for non-options),
        ``expiry`` UTC Timestamp (NaT for perpetual / spot), ``quantity``/``multiplier`` float. The index
        of a DataFrame input is preserved (a file gets a RangeIndex = 0-based data row). ``exercise``
        ``european`` / ``american`` for options (blank: ``european``), None otherwise.

    Raises
    ------
    InputError
        Missing column, wrong type, unknown kind / settlement / option type, option without strike,
        option_type or expiry, future without expiry, strike or multiplier <= 0, NaN quantity, unknown
        exercise style or ``american`` on a non-option or coin-settled row, expired future (an option at
        or past its expiry is kept: it is valued at intrinsic), a CSV row with too few or too many fields.
        The message names the file, the row and the column.
    """
    out, _, _ = check_positions(source, valuation_time=valuation_time, name=name, collect=False)
    return out


def check_positions(
    source: str | Path | pd.DataFrame,
    *,
    valuation_time: Any = None,
    name: str | None = None,
    collect: bool = True,
    codes: dict[str, Any] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, NDArray[np.bool_]]:
    """Validate a positions table in one vectorised pass, recording every bad row (``collect=True``).

    Parameters
    ----------
    source : str, Path or DataFrame
        As for :func:`load_positions`.
    valuation_time : optional
        As for :func:`load_positions`.
    name : str, optional
        As for :func:`load_positions`.
    collect : bool
        True: a row fault is recorded (its row marked bad) and the pass goes on; False: raised at once.
    codes : dict, optional
        Filled, when given, with what the pass already knows of each returned row as arrays of shape
        (n_kept,): ``kind_code`` (0 option, 1 future, 2 perpetual, 3 spot), ``inverse``, ``is_call``,
        ``american`` (bool), ``underlying_code`` and ``underlyings`` (the codes of ``pd.factorize`` of the
        normalised ``underlying`` column, first-seen order), so that the market look-ups
        (:func:`greeksmargin.book.arrays.position_arrays`) need not compare the strings again.

    Returns
    -------
    positions : DataFrame
        The normalised rows that passed every check (all rows when none failed).
    problems : DataFrame
        Columns :data:`PROBLEM_COLUMNS`, one row per bad row (its first fault): ``account`` (stripped
        name), ``file``, ``row`` (label as in error messages), ``column``, ``rule``, ``message`` (the
        full error text, as :func:`load_positions` would raise it).
    bad : ndarray of bool, shape (n_rows,)
        The rows of the input that failed.

    Raises
    ------
    InputError
        Faults that are not about a row: unreadable file, no rows, duplicate or missing column, a
        non-unique index, a column of booleans or complex numbers, an empty account name (the row
        cannot be attributed to an account). A CSV row with too few or too many fields is raised with
        ``collect=False``; with ``collect=True`` it is a problem of its account (rule ``field_count``, see
        :func:`_field_fault_problems`) unless it has no ``account`` field or a blank one, or every row is
        such a row.
    """
    field_problems = empty_problems()
    if isinstance(source, pd.DataFrame):
        df = source.copy()
        where = _Where(name or "<DataFrame>", False, df)
    else:
        if not isinstance(source, (str, Path)):
            raise ArgumentTypeError("source", "a positions file path (str or Path) or a DataFrame", source)
        read = dict(dtype={"account": str, "instrument": str, "underlying": str}, keep_default_na=False,
                    na_values=[""])
        if collect:  # a row of the wrong field count sets its account aside (raised: no account column)
            df, faults = io.read_table_field_faults(source, **read)
            if len(df) == 0 and faults:  # every row is broken: nothing to validate, no account to compute
                raise faults[0].error
            names = set(df["account"].dropna().astype(str).str.strip()) if "account" in df.columns else set()
            field_problems = _field_fault_problems(faults, name or str(source), names)
        else:
            df = io.read_table(source, strict_fields=True, **read)
        where = _Where(name or str(source), True, df)
        if len(df) == 0:
            raise InputError("no rows: the positions table holds a header but no position", file=where.file)
    idx = df.index
    if not idx.is_unique:
        raise InputError("the index of the positions must be unique (it labels each position)", file=where.file)
    if "quantity_unit" in df.columns:  # coin / usd / contracts -> the product's unit (README, unit of quantity)
        check_columns(df.columns, known=(*COLUMNS, *UNIT_COLUMNS), required=REQUIRED, file=where.file)
        df = convert_quantity(df, file=where.file)
        where = _Where(where.file, where.is_file, df)
    check_columns(df.columns, known=COLUMNS, required=REQUIRED, file=where.file, strict=True)
    n = len(df)
    sink = _Sink(where, idx, collect)

    def text(col: str) -> _Text:
        return _Text.of(df, col, n)

    def series(values: NDArray[Any]) -> pd.Series:
        return pd.Series(values, index=idx, dtype=object, copy=False)

    cols: dict[str, Any] = {}
    account = text("account")
    und_t = account
    for col in ("account", "instrument", "underlying"):
        t = account if col == "account" else text(col)
        und_t = t
        bad = t.codes < 0
        if bad.any():
            if col == "account":  # a row that names no account cannot be set aside: refuse the table
                raise where.error("empty value", _first_bad(bad, idx), col)
            sink.fail(bad, col, "required", "empty value")
        cols[col] = t.values()
    raw_kind = df["kind"]
    kind_t = text("kind").map(str.lower)
    kind = kind_t.values("")
    sink.fail(~kind_t.isin(KINDS, ""), "kind", "allowed_values",
              lambda i: f"unknown kind '{raw_kind.iloc[i]}' (expected one of {', '.join(KINDS)})")
    cols["kind"] = kind
    is_opt = kind_t.isin(("option",), "")
    needs_expiry = kind_t.isin(("option", "future"), "")

    ot_raw = text("option_type")
    ot = ot_raw.map(lambda v: _OPTION_TYPES.get(v.lower()))
    ot_raw_v = ot_raw.values()
    sink.fail(is_opt & (ot_raw.codes < 0), "option_type", "required",
              "an option needs an option_type (call or put)")
    sink.fail(is_opt & ~ot.isin(("call", "put"), None), "option_type", "allowed_values",
              lambda i: f"unknown option_type '{ot_raw_v[i]}' (expected call or put)")
    cols["option_type"] = np.where(is_opt, ot.values(), np.array(None, dtype=object))

    strike = _numeric(df, "strike", sink, required_mask=is_opt, what="an option needs a strike")
    sink.fail(is_opt & ~(strike >= MIN_STRIKE), "strike", "range",
              lambda i: f"strike must be positive (got {float(strike[i])!r}; allowed [{MIN_STRIKE:g}, "
                        f"{MAX_PRICE:.0e}])")
    # a strike on a future / perpetual / spot row is not used, but a bad one is a bad row
    sink.fail(~is_opt & ~np.isnan(strike) & ~((strike >= 0) & (strike <= MAX_PRICE)), "strike", "range",
              lambda i: f"strike must be empty or a number in [0, {MAX_PRICE:.0e}] on a {kind[i]} row "
                        f"(got {float(strike[i])!r})")
    _magnitude(sink, np.where(is_opt, strike, 0.0), "strike", MAX_PRICE)
    cols["strike"] = np.where(is_opt, strike, np.nan)

    expiry = _expiry(df, sink, idx)
    sink.fail(needs_expiry & expiry.isna().to_numpy(), "expiry", "required",
              lambda i: f"an {kind[i]} needs an expiry")
    expiry = expiry.where(needs_expiry, pd.NaT)
    if valuation_time is not None:
        try:
            vt = to_utc(valuation_time)
        except (ValueError, TypeError, OverflowError):
            raise InputError(f"argument 'valuation_time' is not a date-time (got {valuation_time!r})") from None
        # an option at or past its expiry is valued at intrinsic (greeks.market_arrays); a future errors
        sink.fail(needs_expiry & ~is_opt & (expiry <= vt).to_numpy(), "expiry", "expired",
                  lambda i: f"{kind[i]} expired: expiry {expiry.iloc[i].isoformat()} is not after the "
                            f"valuation time {vt.isoformat()}")
    cols["expiry"] = expiry.astype("datetime64[ns, UTC]")

    qty = _numeric(df, "quantity", sink, required_mask=np.ones(n, bool), what="quantity is missing (NaN)")
    sink.fail(~np.isfinite(qty) & ~np.isnan(qty), "quantity", "finite", "quantity must be finite")
    _magnitude(sink, qty, "quantity", MAX_QUANTITY)
    cols["quantity"] = qty
    if "multiplier" in df.columns:
        mult = _numeric(df, "multiplier", sink, required_mask=np.zeros(n, bool), what="")
        mult = np.where(np.isnan(mult), 1.0, mult)
    else:
        mult = np.ones(n)
    sink.fail(~(mult > 0) | ~np.isfinite(mult), "multiplier", "range",
              lambda i: f"multiplier must be positive (got {float(mult[i])!r})")
    _magnitude(sink, mult, "multiplier", MAX_MULTIPLIER)
    cols["multiplier"] = mult

    raw_settle = df["settlement"] if "settlement" in df.columns else None
    settle_t = text("settlement").map(str.lower)
    sink.fail(~settle_t.isin(SETTLEMENTS, "linear"), "settlement", "allowed_values",
              lambda i: f"unknown settlement '{raw_settle.iloc[i] if raw_settle is not None else ''}' "
                        "(expected linear or inverse)")
    cols["settlement"] = settle_t.values("linear")
    inverse = settle_t.isin(("inverse",), "linear")
    prem = text("premium_currency")  # the pattern checked once per distinct code
    prem_v = prem.values()
    sink.fail(~prem.isin_fn(lambda c: re.fullmatch(r"[A-Za-z][A-Za-z0-9]{1,9}", c) is not None, True),
              "premium_currency", "format",
              lambda i: f"not a currency code: {prem_v[i]!r} (expected e.g. USD, USDC, BTC)")
    default_prem = np.where(inverse, cols["underlying"], "USD")
    cols["premium_currency"] = np.where(prem.codes < 0, default_prem, prem_v)

    # exercise style: explicit per position, european by default (module docstring)
    ex: Any = "european"
    if "exercise" in df.columns:
        raw_ex = df["exercise"]
        ex_t = text("exercise").map(str.lower)
        sink.fail(~ex_t.isin(EXERCISES, "european"), "exercise", "allowed_values",
                  lambda i: f"unknown exercise style '{raw_ex.iloc[i]}' (expected european or american)")
        ex = ex_t.values("european")
        amer = ex_t.isin(("american",), "european")
        sink.fail(amer & ~is_opt, "exercise", "allowed_values",
                  lambda i: f"exercise 'american' on a {kind[i]} row: only options have an exercise style")
        sink.fail(amer & inverse, "exercise", "allowed_values",
                  "exercise 'american' on a coin-settled (inverse) option is not supported (the American "
                  "approximations price a USD payoff)")
    cols["exercise"] = np.where(is_opt, ex, np.array(None, dtype=object))
    out = pd.DataFrame({c: (series(cols[c]) if c not in ("expiry", "strike", "quantity", "multiplier")
                            else cols[c]) for c in COLUMNS}, index=idx)
    bad = sink.dead
    if codes is not None:
        und_names = list(dict.fromkeys(und_t.uniq))  # the stripped names in first-seen row order
        lut = np.append(np.array([und_names.index(v) for v in und_t.uniq], dtype=np.int64), -1)
        kind_lut = np.append(np.array([_KIND_CODE.get(v, -1) for v in kind_t.uniq], dtype=np.int8), -1)
        codes.update(kind_code=kind_lut[kind_t.codes], inverse=inverse, is_call=is_opt & ot.isin(("call",), None),
                     american=is_opt & amer if "exercise" in df.columns else np.zeros(n, dtype=bool),
                     underlying_code=lut[und_t.codes], underlyings=np.asarray(und_names, dtype=object))
        if bad.any():
            keep_codes(codes, ~bad)
    if bad.any():
        out = out[~bad]
    out.attrs["source"] = where.file
    problems = _problem_table(sink, out_accounts=series(cols["account"]))
    if len(field_problems):  # read first, so first in the table (the fault errors="raise" raises first)
        problems = pd.concat([field_problems, problems], ignore_index=True) if len(problems) else field_problems
    return out, problems, bad


#: kind -> code of :func:`check_positions`'s ``codes`` (the order of :data:`KINDS`)
_KIND_CODE = {k: i for i, k in enumerate(KINDS)}


def keep_codes(codes: dict[str, Any], keep: NDArray[np.bool_]) -> None:
    """Restrict :func:`check_positions`'s ``codes`` to the rows ``keep`` (in place; underlyings renumbered)."""
    for k in ("kind_code", "inverse", "is_call", "american", "underlying_code"):
        codes[k] = codes[k][keep]
    uc = codes["underlying_code"]
    _, first = np.unique(uc, return_index=True)
    present = uc[np.sort(first)]  # the names still held, in first-seen order of the kept rows
    remap = np.full(len(codes["underlyings"]) + 1, -1, dtype=np.int64)
    remap[present] = np.arange(present.size)
    codes["underlying_code"] = remap[uc]
    codes["underlyings"] = np.asarray(codes["underlyings"], dtype=object)[present]


def _field_fault_problems(faults: list[io.CsvFieldFault], file: str, accounts: set[str]) -> pd.DataFrame:
    """Problems (:data:`PROBLEM_COLUMNS`, rule ``field_count``) of CSV rows of the wrong field count.

    The row's account is its field at the header's ``account`` column. A row without that field (a short
    row cut before it, or a header without ``account``), or with a blank one, cannot be attributed to an
    account: its error is raised, as with ``errors="raise"``. A missing or an extra field may sit before
    the account column (an unquoted comma in an instrument name, say), so the fields the account could have
    been shifted from are read too: any of them that names another account of the file (``accounts``, the
    names of the rows read) sets that account aside as well, so that no account is computed without a row
    that may be its own.
    """
    rows: list[dict[str, Any]] = []
    for f in faults:
        header = [h.strip() for h in f.header]
        a = header.index("account") if "account" in header else -1
        if a < 0 or a >= f.found or not f.fields[a].strip():
            raise f.error
        err = InputError(f.error.reason, file=file, row=f.row, column=f.error.column)
        acc = f.fields[a].strip()
        rows.append(dict(account=acc, file=file, row=f.row, column=err.column, rule="field_count",
                         message=str(err)))
        shift = f.found - f.expected  # > 0: the account may sit up to `shift` fields later; < 0: earlier
        near = range(a + 1, min(a + shift, f.found - 1) + 1) if shift > 0 else range(max(a + shift, 0), a)
        for other in dict.fromkeys(f.fields[j].strip() for j in near):
            if other != acc and other in accounts:
                rows.append(dict(account=other, file=file, row=f.row, column="account", rule="field_count",
                                 message=f"{err} (the row's 'account' field reads '{acc}', but with its fields "
                                         f"shifted it may be a row of '{other}': set aside too)"))
    return pd.DataFrame(rows, columns=list(PROBLEM_COLUMNS)) if rows else empty_problems()


def _problem_table(sink: _Sink, out_accounts: pd.Series) -> pd.DataFrame:
    """The recorded faults as a :data:`PROBLEM_COLUMNS` table (row labels as in the error messages)."""
    if not sink.rows:
        return empty_problems()
    pos = np.array([r[0] for r in sink.rows], dtype=np.intp)
    labels = sink.idx[pos]
    msgs = [str(sink.where.error(r[3], lab, r[1])) for r, lab in zip(sink.rows, labels)]
    return pd.DataFrame({
        "account": out_accounts.to_numpy(dtype=object)[pos],
        "file": sink.where.file,
        "row": np.asarray(labels, dtype=object),
        "column": [r[1] for r in sink.rows],
        "rule": [r[2] for r in sink.rows],
        "message": msgs,
    }, columns=list(PROBLEM_COLUMNS))


def empty_problems() -> pd.DataFrame:
    """A problems table with no row (columns :data:`PROBLEM_COLUMNS`)."""
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in PROBLEM_COLUMNS})


def _magnitude(sink: _Sink, values: NDArray[np.float64], column: str, max_abs: float) -> None:
    """``inf`` or a magnitude above ``max_abs`` (same rule and message as :func:`tables.check_magnitude`)."""
    v = np.asarray(values, dtype=float)
    bad = np.isinf(v) | (np.abs(np.nan_to_num(v)) > max_abs)
    if not sink.collect:  # the shared check raises the first (one message for every table reader)
        check_magnitude(np.where(sink.dead, 0.0, v), sink.idx, column, sink.where.error, max_abs=max_abs)
        return
    sink.fail(bad, column, "magnitude",
              lambda i: f"{column} out of range (got {float(v[i])!r}; allowed |{column}| <= {max_abs:.0e})")


def _expiry(df: pd.DataFrame, sink: _Sink, idx: pd.Index) -> pd.Series:
    """The expiry column as UTC timestamps (NaT where blank); unparseable / out-of-range values are faults."""
    if "expiry" not in df.columns:
        return pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
    exp_raw = df["expiry"]
    if _all_text(exp_raw):  # each distinct string parsed once ("mixed": every value parsed on its own)
        codes, uniq = pd.factorize(exp_raw, use_na_sentinel=True)
        u = np.asarray(uniq, dtype=object)
        u_blank = np.array([(not isinstance(v, str) and pd.isna(v)) or str(v).strip() == "" for v in u], dtype=bool)
        blank = (codes < 0) | np.append(u_blank, True)[codes]
        try:
            texts = pd.Series(u, dtype=object).where(~np.asarray(u_blank, dtype=bool), None)
            parsed = pd.to_datetime(texts, utc=True, format="mixed",
                                    errors="coerce").astype("datetime64[ns, UTC]").array
            expiry = pd.Series(parsed.take(codes, allow_fill=True), index=idx)
        except (ValueError, TypeError, OverflowError):
            expiry = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
    else:
        if pd.api.types.is_datetime64_any_dtype(exp_raw.dtype) or pd.api.types.is_numeric_dtype(exp_raw.dtype):
            blank = exp_raw.isna().to_numpy()  # a date or a number is never blank text (NaT / NaN are missing)
        else:
            blank = (exp_raw.isna() | (exp_raw.astype(str).str.strip() == "")).to_numpy()
        try:
            parsed = pd.to_datetime(exp_raw.where(~blank, None), utc=True, format="mixed", errors="coerce")
            expiry = pd.Series(parsed, index=idx).astype("datetime64[ns, UTC]")
        except (ValueError, TypeError, OverflowError):
            expiry = pd.Series(pd.NaT, index=idx, dtype="datetime64[ns, UTC]")
    failed = np.flatnonzero(expiry.isna().to_numpy() & ~blank)
    msgs: dict[int, str] = {}
    for i in failed:  # the rows pandas could not parse in one go: one at a time (ms since epoch, ...)
        v = exp_raw.iloc[i]
        try:
            ts = to_utc(v)
        except (ValueError, TypeError, OverflowError):
            msgs[int(i)] = (f"expiry {v!r} out of range ({DATE_RANGE})" if _is_calendar_date(v)
                            else f"not a date-time: '{v}'")
            continue
        if not DATE_MIN <= ts <= DATE_MAX:
            msgs[int(i)] = f"expiry {v!r} out of range ({DATE_RANGE})"
            continue
        expiry.iloc[i] = ts
    if msgs:
        mask = np.zeros(len(idx), dtype=bool)
        mask[list(msgs)] = True
        sink.fail(mask, "expiry", "date", lambda i: msgs[i])
    return expiry


def _is_calendar_date(v: Any) -> bool:
    """True for an ISO date-time Python reads (years 1-9999) that pandas' nanosecond range cannot hold."""
    s = str(v).strip().replace("Z", "+00:00")
    try:
        datetime.fromisoformat(s)
    except ValueError:
        return False
    return True


def load_positions_collect(
    source: str | Path | pd.DataFrame, *, valuation_time: Any = None, max_bad: int | None = None
) -> tuple[pd.DataFrame, dict[str, str]]:
    """:func:`load_positions`, setting aside the accounts with a bad row instead of failing the whole table.

    One vectorised pass (:func:`check_positions`): the cost does not grow with the number of bad rows,
    and there is no cap on the number of bad accounts.

    Parameters
    ----------
    source : str, Path or DataFrame
        As for :func:`load_positions`.
    valuation_time : optional
        As for :func:`load_positions`.
    max_bad : int, optional
        Raise the first error when more than this many accounts are bad (default: no limit).

    Returns
    -------
    (DataFrame, dict of str -> str)
        The validated positions of the good accounts (rows keep their file row labels), and per bad
        account the error naming its first bad row (file, row, column, value).

    Raises
    ------
    InputError
        An error that is not about one row (missing column, unreadable file, an empty account name).
    """
    pos, problems, _ = check_positions(source, valuation_time=valuation_time, collect=True)
    bad = bad_accounts(problems)
    if max_bad is not None and len(bad) > max_bad:
        raise InputError(f"{len(bad)} accounts with a bad row (more than max_bad={max_bad}); first: "
                         f"{next(iter(bad.values()))}")
    if bad:
        pos = pos[~pos["account"].isin(list(bad))]
    return pos, bad


def bad_accounts(problems: pd.DataFrame) -> dict[str, str]:
    """First message of each account of a problems table (account -> message, in table order)."""
    if not len(problems):
        return {}
    first = problems.drop_duplicates("account", keep="first")
    return dict(zip(first["account"].astype(str), first["message"].astype(str)))


def _numeric(df: pd.DataFrame, col: str, sink: _Sink, *, required_mask: np.ndarray, what: str) -> np.ndarray:
    """Column ``col`` as float64 (NaN where blank); non-numeric and missing values are row faults."""
    where, idx = sink.where, sink.idx
    if col not in df.columns:
        if required_mask.any():
            if col in REQUIRED:
                raise InputError(f"missing column (required: {', '.join(REQUIRED)})", file=where.file, column=col)
            sink.fail(required_mask, col, "required", what)
        return np.full(len(df), np.nan)
    raw = df[col]
    if raw.dtype == bool or pd.api.types.is_complex_dtype(raw.dtype):
        raise where.error(f"must be a real number (got a {raw.dtype} column)", idx[0] if len(idx) else None, col)
    if pd.api.types.is_float_dtype(raw.dtype) or pd.api.types.is_integer_dtype(raw.dtype):
        arr = raw.to_numpy(dtype=float)
    else:
        vals = pd.to_numeric(raw, errors="coerce")
        # blank (missing) or not a number: only the rows that did not parse are looked at as text
        bad = np.array(vals.isna() & ~raw.isna(), dtype=bool)
        if bad.any():
            at = np.flatnonzero(bad)
            bad[at[(raw.iloc[at].astype(str).str.strip() == "").to_numpy()]] = False
        sink.fail(bad, col, "type", lambda i: f"must be a number (got '{raw.iloc[i]}')")
        # a bool or complex cell is not a real number (pandas would read True as 1 and drop an imaginary part)
        obj = raw.to_numpy(dtype=object)
        odd = np.fromiter((isinstance(v, (bool, np.bool_, complex, np.complexfloating)) for v in obj), dtype=bool,
                          count=len(obj))
        sink.fail(odd, col, "type", lambda i: f"must be a real number (got {raw.iloc[i]!r})")
        vals = vals.where(~odd, np.nan) if odd.any() else vals
        arr = np.real(vals.to_numpy()).astype(float) if pd.api.types.is_complex_dtype(vals.dtype) else \
            vals.to_numpy(dtype=float)
    sink.fail(required_mask & np.isnan(arr), col, "required", what)
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
