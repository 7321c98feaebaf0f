"""Instrument names of Deribit, OKX, Bybit and Derive -> one record, and back.

:func:`parse_name` turns an exchange's instrument name into an :class:`InstrumentName` (exchange,
underlying, kind, expiry, strike, option type, settlement, settlement currency); :func:`format_name` writes
the record back in any exchange's form, so that ``format_name(parse_name(n, ex), ex) == n`` for every
canonical name below. :func:`parse_names` does the same over a pandas Series (each distinct name parsed
once) and returns the product's positions columns.

Forms (``<D>`` a day without leading zero, ``<MMM>`` an English month, ``<YY>`` a two-digit year)
----------------------------------------------------------------------------------------------------
=========  ==============================  =========  ====================================
exchange   name                            kind       settlement (currency), note
=========  ==============================  =========  ====================================
deribit    ``BTC-25DEC26-100000-C``        option     inverse (BTC)
deribit    ``BTC_USDC-25DEC26-100000-C``   option     linear (USDC); ``0d625``: strike 0.625
deribit    ``BTC-27JUN25``                 future     inverse (BTC)
deribit    ``SYN.BTC-29MAY26``             future     inverse (BTC); synthetic (not tradable)
deribit    ``BTC-PERPETUAL``               perpetual  inverse (BTC)
deribit    ``BTC_USDC-PERPETUAL``          perpetual  linear (USDC)
deribit    ``BTC_USDC``                    spot       linear (USDC)
okx        ``BTC-USD-251226-100000-C``     option     inverse (BTC); date ``YYMMDD``
okx        ``BTC-USD-251226``              future     inverse (BTC); ``BTC-USDT-251226`` USDT
okx        ``BTC-USD-SWAP``                perpetual  inverse (BTC); ``BTC-USDT-SWAP`` USDT
okx        ``BTC-USDT``                    spot       linear (USDT)
bybit      ``BTC-26DEC25-100000-C``        option     linear (USDC)
bybit      ``BTC-26DEC25-100000-C-USDT``   option     linear (USDT)
bybit      ``BTC-26DEC25``                 future     linear (USDC)
bybit      ``BTCUSDT-26DEC25``             future     linear (USDT)
bybit      ``BTCUSDZ25``                   future     inverse (BTC); month code, last Friday
bybit      ``BTCUSDT`` / ``BTCPERP``       perpetual  linear (USDT / USDC)
bybit      ``BTCUSD``                      perpetual  inverse (BTC)
derive     ``ETH-20250328-3000-C``         option     linear (USDC); date ``YYYYMMDD``
derive     ``ETH-PERP``                    perpetual  linear (USDC)
=========  ==============================  =========  ====================================

Bybit's spot pairs share their symbols with its perpetuals (``BTCUSDT``) and are not parsed: a Bybit
``BTCUSDT`` is the perpetual.

Expiry hour (UTC) per exchange, :data:`EXPIRY_HOUR_UTC`: the names carry the date only; the time is the
exchange's delivery / exercise time stated in its contract specifications: Deribit 08:00 UTC (options and
futures), OKX 08:00 UTC (delivery and options expiry at 08:00 UTC, i.e. 16:00 Hong Kong time), Bybit 08:00
UTC (options and dated futures deliver at 08:00 UTC), Derive 08:00 UTC (options settle at 08:00 UTC on the
expiry date). Bybit's inverse futures (``BTCUSDZ25``) name only the month: they expire on the month's last
Friday.

Strikes: decimal digits (Deribit writes the decimal point of a linear option's strike as ``d``: ``0d625``);
a strike must be positive. Anything else (an unknown form, a bad month or day, a strike that is not a
positive number, an unknown exchange) is an :class:`~greeksmargin.errors.InputError` naming the row and the
name.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError

__all__ = [
    "EXCHANGES",
    "EXPIRY_HOUR_UTC",
    "InstrumentName",
    "format_name",
    "parse_name",
    "parse_names",
]

#: expiry hour (UTC) of each exchange's dated instruments (module docstring: where each comes from)
EXPIRY_HOUR_UTC: dict[str, int] = {"deribit": 8, "okx": 8, "bybit": 8, "derive": 8}
EXCHANGES = tuple(EXPIRY_HOUR_UTC)

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_MONTH_ABBR = {i: m for m, i in _MONTHS.items()}
#: futures month codes (Bybit inverse futures)
_MONTH_CODES = dict(zip("FGHJKMNQUVXZ", range(1, 13)))
_CODE_OF_MONTH = {i: c for c, i in _MONTH_CODES.items()}

_COIN = r"[A-Z0-9]{2,12}"
_DMY = r"(\d{1,2})([A-Z]{3})(\d{2})"
_STRIKE = r"([^-]+)"


@dataclass(frozen=True)
class InstrumentName:
    """One instrument, whatever the exchange's spelling of it.

    Parameters
    ----------
    exchange : str
        ``deribit``, ``okx``, ``bybit`` or ``derive``.
    underlying : str
        Base coin, e.g. ``"BTC"``.
    kind : str
        ``option``, ``future``, ``perpetual`` or ``spot``.
    settlement : str
        ``inverse`` (coin-settled, USD-quoted) or ``linear``.
    settlement_currency : str
        Currency the contract settles in: the coin for inverse contracts, ``USDC``/``USDT`` for linear ones.
    expiry : pandas.Timestamp, optional
        UTC expiry (the exchange's expiry hour) of options and futures; None otherwise.
    strike : float, optional
        Strike in the quote currency (USD); options only.
    option_type : str, optional
        ``call`` or ``put``; options only.
    synthetic : bool
        Deribit's ``SYN.`` synthetic future of an option expiry (not tradable).
    """

    exchange: str
    underlying: str
    kind: str
    settlement: str
    settlement_currency: str
    expiry: pd.Timestamp | None = None
    strike: float | None = None
    option_type: str | None = None
    synthetic: bool = False


# --------------------------------------------------------------------------------------------- helpers
class _Bad(ValueError):
    """A reason a name does not parse (turned into an InputError naming row and name)."""


def _date(day: int, month: int, year: int, exchange: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(year=year, month=month, day=day, hour=EXPIRY_HOUR_UTC[exchange], tz="UTC")
    except ValueError:
        raise _Bad(f"no such date {year:04d}-{month:02d}-{day:02d}") from None


def _dmy(d: str, mon: str, yy: str, exchange: str) -> pd.Timestamp:
    if mon not in _MONTHS:
        raise _Bad(f"unknown month '{mon}' (expected one of {', '.join(_MONTHS)})")
    return _date(int(d), _MONTHS[mon], 2000 + int(yy), exchange)


def _yymmdd(text: str, exchange: str) -> pd.Timestamp:
    yy, mm, dd = int(text[:2]), int(text[2:4]), int(text[4:6])
    if not 1 <= mm <= 12:
        raise _Bad(f"unknown month '{text[2:4]}' in date '{text}'")
    return _date(dd, mm, 2000 + yy, exchange)


def _yyyymmdd(text: str, exchange: str) -> pd.Timestamp:
    yyyy, mm, dd = int(text[:4]), int(text[4:6]), int(text[6:8])
    if not 1 <= mm <= 12:
        raise _Bad(f"unknown month '{text[4:6]}' in date '{text}'")
    return _date(dd, mm, yyyy, exchange)


def _last_friday(year: int, month: int, exchange: str) -> pd.Timestamp:
    last = calendar.monthrange(year, month)[1]
    day = max(d for d in range(last - 6, last + 1) if calendar.weekday(year, month, d) == calendar.FRIDAY)
    return _date(day, month, year, exchange)


def _strike(text: str, decimal_mark: str) -> float:
    other = "d" if decimal_mark == "." else "."
    if other in text or not re.fullmatch(rf"\d+(?:{re.escape(decimal_mark)}\d+)?", text):
        raise _Bad(f"strike '{text}' is not a number (decimal mark '{decimal_mark}')")
    k = float(text.replace("d", "."))
    if not k > 0:
        raise _Bad(f"strike must be positive (got '{text}')")
    return k


def _fmt_strike(k: float, decimal_mark: str) -> str:
    if float(k).is_integer():
        return str(int(k))
    return np.format_float_positional(float(k), trim="-").replace(".", decimal_mark)


def _cp(text: str) -> str:
    return {"C": "call", "P": "put"}[text]


def _option(ex: str, base: str, settle: str, ccy: str, expiry: pd.Timestamp, k: float, cp: str) -> InstrumentName:
    return InstrumentName(ex, base, "option", settle, ccy, expiry, k, _cp(cp))


# -------------------------------------------------------------------------------------------- parsers
def _parse_deribit(n: str) -> InstrumentName:
    ex = "deribit"
    m = re.fullmatch(rf"({_COIN})_(USDC|USDT)", n)
    if m:
        return InstrumentName(ex, m[1], "spot", "linear", m[2])
    m = re.fullmatch(rf"(SYN\.)?({_COIN})(?:_(USDC|USDT))?-(.+)", n)
    if not m:
        raise _Bad("not a Deribit name (e.g. BTC-25DEC26-100000-C, BTC_USDC-PERPETUAL, BTC-27JUN25)")
    syn, base, quote, rest = bool(m[1]), m[2], m[3], m[4]
    settle, ccy = ("linear", quote) if quote else ("inverse", base)
    if rest == "PERPETUAL" and not syn:
        return InstrumentName(ex, base, "perpetual", settle, ccy)
    d = re.fullmatch(rf"{_DMY}(?:-{_STRIKE}-([CP]))?", rest)
    if not d:
        raise _Bad("not a Deribit name: expected <D><MMM><YY>[-<strike>-C|P] or PERPETUAL after the underlying")
    expiry = _dmy(d[1], d[2], d[3], ex)
    if d[4] is None:
        if syn and quote:
            raise _Bad("a SYN. synthetic future has no _USDC / _USDT quote")
        return InstrumentName(ex, base, "future", settle, ccy, expiry, synthetic=syn)
    if syn:
        raise _Bad("SYN. names a synthetic future, not an option")
    return _option(ex, base, settle, ccy, expiry, _strike(d[4], "d" if quote else "."), d[5])


def _parse_okx(n: str) -> InstrumentName:
    ex = "okx"
    m = re.fullmatch(rf"({_COIN})-(USD|USDT|USDC)(?:-(.+))?", n)
    if not m:
        raise _Bad("not an OKX name (e.g. BTC-USD-251226-100000-C, BTC-USDT-SWAP, BTC-USD-251226)")
    base, quote, rest = m[1], m[2], m[3]
    settle, ccy = ("inverse", base) if quote == "USD" else ("linear", quote)
    if rest is None:
        if quote == "USD":
            raise _Bad("OKX spot pairs are quoted in USDT or USDC, not USD")
        return InstrumentName(ex, base, "spot", "linear", quote)
    if rest == "SWAP":
        return InstrumentName(ex, base, "perpetual", settle, ccy)
    d = re.fullmatch(rf"(\d{{6}})(?:-{_STRIKE}-([CP]))?", rest)
    if not d:
        raise _Bad("not an OKX name: expected SWAP or <YYMMDD>[-<strike>-C|P] after the pair")
    expiry = _yymmdd(d[1], ex)
    if d[2] is None:
        return InstrumentName(ex, base, "future", settle, ccy, expiry)
    return _option(ex, base, settle, ccy, expiry, _strike(d[2], "."), d[3])


def _parse_bybit(n: str) -> InstrumentName:
    ex = "bybit"
    m = re.fullmatch(rf"({_COIN})-{_DMY}-{_STRIKE}-([CP])(?:-(USDT))?", n)
    if m:
        ccy = m[7] or "USDC"
        return _option(ex, m[1], "linear", ccy, _dmy(m[2], m[3], m[4], ex), _strike(m[5], "."), m[6])
    m = re.fullmatch(rf"({_COIN}?)(USDT)?-{_DMY}", n)
    if m:
        return InstrumentName(ex, m[1], "future", "linear", m[2] or "USDC", _dmy(m[3], m[4], m[5], ex))
    m = re.fullmatch(rf"({_COIN}?)USD([FGHJKMNQUVXZ])(\d{{2}})", n)
    if m:
        return InstrumentName(ex, m[1], "future", "inverse", m[1],
                              _last_friday(2000 + int(m[3]), _MONTH_CODES[m[2]], ex))
    m = re.fullmatch(rf"({_COIN}?)(USDT|USD|PERP)", n)
    if m:
        if m[2] == "USD":
            return InstrumentName(ex, m[1], "perpetual", "inverse", m[1])
        return InstrumentName(ex, m[1], "perpetual", "linear", "USDT" if m[2] == "USDT" else "USDC")
    if re.fullmatch(rf"{_COIN}-.*", n) and re.search(r"-\d{1,2}[A-Z]{3}\d{2}(-|$)", n):
        d = re.search(rf"-{_DMY}(-|$)", n)
        if d:
            _dmy(d[1], d[2], d[3], ex)  # a bad month / day is the more useful message
    raise _Bad("not a Bybit name (e.g. BTC-26DEC25-100000-C[-USDT], BTC-26DEC25, BTCUSDT, BTCUSD, BTCUSDZ25)")


def _parse_derive(n: str) -> InstrumentName:
    ex = "derive"
    m = re.fullmatch(rf"({_COIN})-PERP", n)
    if m:
        return InstrumentName(ex, m[1], "perpetual", "linear", "USDC")
    m = re.fullmatch(rf"({_COIN})-(\d{{8}})-{_STRIKE}-([CP])", n)
    if not m:
        raise _Bad("not a Derive name (e.g. ETH-20250328-3000-C, ETH-PERP)")
    return _option(ex, m[1], "linear", "USDC", _yyyymmdd(m[2], ex), _strike(m[3], "."), m[4])


_PARSERS = {"deribit": _parse_deribit, "okx": _parse_okx, "bybit": _parse_bybit, "derive": _parse_derive}


def _exchange(exchange: Any, row: object | None = None, file: str | None = None) -> str:
    ex = str(exchange).strip().lower()
    if ex not in _PARSERS:
        raise InputError(f"unknown exchange {exchange!r} (known: {', '.join(EXCHANGES)})", file=file, row=row,
                         column="exchange")
    return ex


def parse_name(
    name: str, exchange: str, *, row: object | None = None, column: str = "instrument", file: str | None = None
) -> InstrumentName:
    """Parse one instrument name of ``exchange`` (forms in the module docstring).

    Parameters
    ----------
    name : str
        The exchange's instrument name, e.g. ``"BTC-25DEC26-100000-C"``.
    exchange : str
        ``deribit``, ``okx``, ``bybit`` or ``derive`` (case-insensitive). Names are ambiguous across
        exchanges (``BTC-26DEC25-100000-C`` is inverse on Deribit, USDC-settled on Bybit), so it is required.
    row, column, file : optional
        Where the name comes from, for the error message.

    Returns
    -------
    InstrumentName

    Raises
    ------
    InputError
        Unknown exchange, unknown form, bad month or day, strike not a positive number; names the row and
        the name.
    """
    ex = _exchange(exchange, row, file)
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"instrument name must be a non-empty string (got {name!r})", file=file, row=row,
                         column=column)
    try:
        return _PARSERS[ex](name.strip())
    except _Bad as exc:
        raise InputError(f"{ex} instrument '{name}': {exc}", file=file, row=row, column=column) from None


def _check_hour(rec: InstrumentName, exchange: str) -> pd.Timestamp:
    e = rec.expiry
    if e is None:
        raise InputError(f"a {rec.kind} needs an expiry to be named on {exchange}")
    e = pd.Timestamp(e).tz_convert("UTC") if pd.Timestamp(e).tzinfo else pd.Timestamp(e).tz_localize("UTC")
    if (e.hour, e.minute, e.second, e.microsecond) != (EXPIRY_HOUR_UTC[exchange], 0, 0, 0):
        raise InputError(f"expiry {e.isoformat()} is not at {exchange}'s expiry hour "
                         f"{EXPIRY_HOUR_UTC[exchange]:02d}:00 UTC: no {exchange} instrument has it")
    return e


def format_name(record: InstrumentName, exchange: str | None = None) -> str:
    """Write ``record`` as ``exchange``'s instrument name (default: the record's own exchange).

    Parameters
    ----------
    record : InstrumentName
        As returned by :func:`parse_name` (or built by hand).
    exchange : str, optional
        Target exchange; a record of one exchange may be written in another's form when that exchange has
        the same contract (kind, settlement, settlement currency, expiry hour).

    Returns
    -------
    str
        The canonical name (days without leading zero on Deribit and Bybit).

    Raises
    ------
    InputError
        The target exchange has no instrument of that kind / settlement / currency / expiry hour.
    """
    ex = _exchange(exchange if exchange is not None else record.exchange)
    r = record
    b, kind, settle, ccy = r.underlying, r.kind, r.settlement, r.settlement_currency
    linear = settle == "linear"
    if settle not in ("linear", "inverse") or (settle == "inverse" and ccy != b):
        raise InputError(f"settlement {settle!r} in {ccy!r} of a {b} contract is not a known combination")

    def no_form() -> InputError:
        return InputError(f"{ex} lists no {settle} {kind} on {b} settled in {ccy}")

    def option_tail(decimal_mark: str) -> str:
        if r.strike is None or r.option_type not in ("call", "put"):
            raise InputError("an option needs a strike and an option_type (call|put)")
        return f"{_fmt_strike(r.strike, decimal_mark)}-{'C' if r.option_type == 'call' else 'P'}"

    def dmy(e: pd.Timestamp) -> str:
        return f"{e.day}{_MONTH_ABBR[e.month]}{e.year % 100:02d}"

    if r.synthetic and (ex != "deribit" or kind != "future" or linear):
        raise no_form()
    if ex == "deribit":
        if linear and ccy not in ("USDC", "USDT"):
            raise no_form()
        prefix = f"{b}_{ccy}" if linear else b
        if kind == "spot":
            if not linear:
                raise no_form()
            return prefix
        if kind == "perpetual":
            return f"{prefix}-PERPETUAL"
        e = _check_hour(r, ex)
        if kind == "future":
            return f"{'SYN.' if r.synthetic else ''}{prefix}-{dmy(e)}"
        return f"{prefix}-{dmy(e)}-{option_tail('d' if linear else '.')}"
    if ex == "okx":
        quote = ccy if linear else "USD"
        if linear and ccy not in ("USDC", "USDT"):
            raise no_form()
        if kind == "spot":
            if not linear:
                raise no_form()
            return f"{b}-{quote}"
        if kind == "perpetual":
            return f"{b}-{quote}-SWAP"
        e = _check_hour(r, ex)
        date = f"{e.year % 100:02d}{e.month:02d}{e.day:02d}"
        return f"{b}-{quote}-{date}" if kind == "future" else f"{b}-{quote}-{date}-{option_tail('.')}"
    if ex == "bybit":
        if kind == "perpetual":
            return {("inverse", b): f"{b}USD", ("linear", "USDT"): f"{b}USDT",
                    ("linear", "USDC"): f"{b}PERP"}.get((settle, ccy)) or _raise(no_form())
        if kind == "option":
            if not linear or ccy not in ("USDC", "USDT"):
                raise no_form()
            e = _check_hour(r, ex)
            return f"{b}-{dmy(e)}-{option_tail('.')}" + ("-USDT" if ccy == "USDT" else "")
        if kind == "future":
            e = _check_hour(r, ex)
            if not linear:
                if e != _last_friday(e.year, e.month, ex):
                    raise InputError(f"Bybit inverse futures expire on a month's last Friday, not {e.date()}")
                return f"{b}USD{_CODE_OF_MONTH[e.month]}{e.year % 100:02d}"
            if ccy == "USDC":
                return f"{b}-{dmy(e)}"
            if ccy == "USDT":
                return f"{b}USDT-{dmy(e)}"
        raise no_form()
    # derive
    if not linear or ccy != "USDC":
        raise no_form()
    if kind == "perpetual":
        return f"{b}-PERP"
    if kind == "option":
        e = _check_hour(r, ex)
        return f"{b}-{e.year:04d}{e.month:02d}{e.day:02d}-{option_tail('.')}"
    raise no_form()


def _raise(exc: Exception) -> str:
    raise exc


NAME_COLUMNS = ("exchange", "underlying", "kind", "option_type", "strike", "expiry", "settlement",
                "settlement_currency", "synthetic")


def parse_names(
    names: pd.Series, exchange: str | pd.Series, *, column: str = "instrument", file: str | None = None
) -> pd.DataFrame:
    """Parse a Series of instrument names (each distinct ``(name, exchange)`` pair parsed once).

    Parameters
    ----------
    names : Series of str, shape (n,)
        Instrument names.
    exchange : str or Series of str, shape (n,)
        One exchange for every name, or one per row (aligned on ``names``' index).
    column, file : optional
        Named in error messages (the row is the Series' index label).

    Returns
    -------
    DataFrame of shape (n, 9)
        Columns ``exchange, underlying, kind, option_type, strike, expiry, settlement,
        settlement_currency, synthetic`` on ``names``' index; ``strike`` NaN and ``option_type`` None for
        non-options, ``expiry`` UTC (NaT for perpetuals and spot).

    Raises
    ------
    InputError
        The first bad name, naming its row (index label) and the name.
    """
    ex = exchange if isinstance(exchange, pd.Series) else pd.Series(exchange, index=names.index)
    ex = ex.reindex(names.index)
    cache: dict[tuple[Any, Any], InstrumentName] = {}
    recs = []
    for label, n, e in zip(names.index, names.to_numpy(dtype=object), ex.to_numpy(dtype=object)):
        key = (n, e)
        if key not in cache:
            cache[key] = parse_name(n, e, row=label, column=column, file=file)
        recs.append(cache[key])
    out = pd.DataFrame(
        {
            "exchange": [r.exchange for r in recs],
            "underlying": [r.underlying for r in recs],
            "kind": [r.kind for r in recs],
            "option_type": [r.option_type for r in recs],
            "strike": np.array([np.nan if r.strike is None else r.strike for r in recs], dtype=float),
            "expiry": pd.to_datetime(pd.Series([r.expiry for r in recs], dtype=object), utc=True),
            "settlement": [r.settlement for r in recs],
            "settlement_currency": [r.settlement_currency for r in recs],
            "synthetic": np.array([r.synthetic for r in recs], dtype=bool),
        }
    )
    out.index = names.index
    return out
