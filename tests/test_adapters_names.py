"""Instrument names of Deribit, OKX, Bybit and Derive: parse, format back, errors."""

from __future__ import annotations

import pandas as pd
import pytest

from greeksmargin.adapters.names import InstrumentName, format_name, parse_name, parse_names
from greeksmargin.errors import InputError

T8 = "08:00:00+00:00"

# (exchange, name, underlying, kind, expiry date or None, strike or None, option_type, settlement, currency)
CASES = [
    ("deribit", "BTC-25DEC26-100000-C", "BTC", "option", "2026-12-25", 100000.0, "call", "inverse", "BTC"),
    ("deribit", "ETH-5JAN27-3000-P", "ETH", "option", "2027-01-05", 3000.0, "put", "inverse", "ETH"),
    ("deribit", "BTC_USDC-25DEC26-100000-C", "BTC", "option", "2026-12-25", 100000.0, "call", "linear", "USDC"),
    ("deribit", "XRP_USDC-30MAY25-0d625-C", "XRP", "option", "2025-05-30", 0.625, "call", "linear", "USDC"),
    ("deribit", "BTC_USDC-PERPETUAL", "BTC", "perpetual", None, None, None, "linear", "USDC"),
    ("deribit", "BTC-27JUN25", "BTC", "future", "2025-06-27", None, None, "inverse", "BTC"),
    ("deribit", "BTC-PERPETUAL", "BTC", "perpetual", None, None, None, "inverse", "BTC"),
    ("deribit", "SYN.BTC-29MAY26", "BTC", "future", "2026-05-29", None, None, "inverse", "BTC"),
    ("deribit", "BTC_USDC", "BTC", "spot", None, None, None, "linear", "USDC"),
    ("okx", "BTC-USD-251226-100000-C", "BTC", "option", "2025-12-26", 100000.0, "call", "inverse", "BTC"),
    ("okx", "ETH-USD-250328-2500.5-P", "ETH", "option", "2025-03-28", 2500.5, "put", "inverse", "ETH"),
    ("okx", "BTC-USD-SWAP", "BTC", "perpetual", None, None, None, "inverse", "BTC"),
    ("okx", "BTC-USDT-SWAP", "BTC", "perpetual", None, None, None, "linear", "USDT"),
    ("okx", "BTC-USD-251226", "BTC", "future", "2025-12-26", None, None, "inverse", "BTC"),
    ("okx", "BTC-USDT-251226", "BTC", "future", "2025-12-26", None, None, "linear", "USDT"),
    ("okx", "ETH-USDT", "ETH", "spot", None, None, None, "linear", "USDT"),
    ("bybit", "BTC-26DEC25-100000-C", "BTC", "option", "2025-12-26", 100000.0, "call", "linear", "USDC"),
    ("bybit", "BTC-26DEC25-100000-C-USDT", "BTC", "option", "2025-12-26", 100000.0, "call", "linear", "USDT"),
    ("bybit", "BTCUSDT", "BTC", "perpetual", None, None, None, "linear", "USDT"),
    ("bybit", "BTCUSD", "BTC", "perpetual", None, None, None, "inverse", "BTC"),
    ("bybit", "ETHPERP", "ETH", "perpetual", None, None, None, "linear", "USDC"),
    ("bybit", "BTC-26DEC25", "BTC", "future", "2025-12-26", None, None, "linear", "USDC"),
    ("bybit", "BTCUSDT-26DEC25", "BTC", "future", "2025-12-26", None, None, "linear", "USDT"),
    ("bybit", "BTCUSDH26", "BTC", "future", "2026-03-27", None, None, "inverse", "BTC"),
    ("derive", "ETH-20250328-3000-C", "ETH", "option", "2025-03-28", 3000.0, "call", "linear", "USDC"),
    ("derive", "ETH-PERP", "ETH", "perpetual", None, None, None, "linear", "USDC"),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_parse_fields_and_round_trip(case: tuple) -> None:
    ex, name, und, kind, day, strike, cp, settle, ccy = case
    rec = parse_name(name, ex)
    assert (rec.exchange, rec.underlying, rec.kind, rec.settlement, rec.settlement_currency) == (
        ex, und, kind, settle, ccy)
    assert rec.strike == strike and rec.option_type == cp
    if day is None:
        assert rec.expiry is None
    else:
        assert rec.expiry == pd.Timestamp(f"{day}T{T8}")  # every exchange expires at 08:00 UTC
    assert format_name(rec) == name
    assert format_name(rec, ex) == name


def test_synthetic_flag_is_kept() -> None:
    assert parse_name("SYN.BTC-29MAY26", "deribit").synthetic
    assert not parse_name("BTC-29MAY26", "deribit").synthetic


def test_same_contract_across_exchanges() -> None:
    rec = parse_name("BTC-25DEC26-100000-C", "deribit")
    assert format_name(rec, "okx") == "BTC-USD-261225-100000-C"
    # Bybit lists no inverse option: an error, not a wrong name
    with pytest.raises(InputError, match="bybit lists no inverse option on BTC settled in BTC"):
        format_name(rec, "bybit")
    assert format_name(parse_name("BTC-USDT-SWAP", "okx"), "bybit") == "BTCUSDT"
    assert format_name(parse_name("BTC_USDC-PERPETUAL", "deribit"), "bybit") == "BTCPERP"


def test_same_name_differs_by_exchange() -> None:
    assert parse_name("BTC-26DEC25-100000-C", "deribit").settlement == "inverse"
    assert parse_name("BTC-26DEC25-100000-C", "bybit").settlement == "linear"


@pytest.mark.parametrize(
    ("exchange", "name", "message"),
    [
        ("deribit", "BTC-25DEX26-100000-C", "unknown month 'DEX'"),
        ("deribit", "BTC-31JUN26", "no such date 2026-06-31"),
        ("deribit", "BTC-25DEC26-abc-C", "strike 'abc' is not a number"),
        ("deribit", "BTC-25DEC26-0-C", "strike must be positive"),
        ("deribit", "BTC_USDC-25DEC26-0.625-C", "strike '0.625' is not a number \\(decimal mark 'd'\\)"),
        ("deribit", "BTC-25DEC26-100000-X", "not a Deribit name"),
        ("deribit", "SYN.BTC-PERPETUAL", "not a Deribit name"),
        ("deribit", "BTC-FOO", "not a Deribit name"),
        ("okx", "BTC-USD-251326", "unknown month '13'"),
        ("okx", "BTC-USD-FOO", "not an OKX name"),
        ("okx", "BTC-EUR-SWAP", "not an OKX name"),
        ("bybit", "BTC-26DEX25-100000-C", "unknown month 'DEX'"),
        ("bybit", "BTC/USDT", "not a Bybit name"),
        ("derive", "ETH-20251328-3000-C", "unknown month '13'"),
        ("derive", "ETH-20250328-3000", "not a Derive name"),
    ],
)
def test_bad_names_name_row_and_name(exchange: str, name: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        parse_name(name, exchange, row=7)
    assert info.value.row == 7 and info.value.column == "instrument"
    assert name in str(info.value)


def test_unknown_exchange() -> None:
    with pytest.raises(InputError, match="unknown exchange 'ftx'"):
        parse_name("BTC-PERP", "ftx")


def test_empty_name() -> None:
    with pytest.raises(InputError, match="non-empty string"):
        parse_name("", "deribit")


def test_parse_names_series_and_first_bad_row() -> None:
    names = pd.Series(["BTC-PERPETUAL", "BTC-25DEC26-100000-C", "BTC-PERPETUAL"], index=[10, 11, 12])
    out = parse_names(names, "deribit")
    assert list(out.index) == [10, 11, 12]
    assert list(out["kind"]) == ["perpetual", "option", "perpetual"]
    assert out["strike"].isna().tolist() == [True, False, True]
    assert out["expiry"].isna().tolist() == [True, False, True]
    assert isinstance(out["expiry"].dtype, pd.DatetimeTZDtype) and str(out["expiry"].dt.tz) == "UTC"
    per_row = parse_names(pd.Series(["BTC-USD-SWAP", "BTCUSD"]), pd.Series(["okx", "bybit"]))
    assert per_row["settlement"].tolist() == ["inverse", "inverse"]
    bad = pd.Series(["BTC-PERPETUAL", "BTC-25DEC26-100000-C", "BTC-32DEC26"], index=["a", "b", "c"])
    with pytest.raises(InputError, match="row c.*BTC-32DEC26"):
        parse_names(bad, "deribit")


def test_format_refuses_wrong_expiry_hour_and_bybit_inverse_day() -> None:
    rec = InstrumentName("okx", "BTC", "future", "inverse", "BTC", pd.Timestamp("2025-12-26T09:00Z"))
    with pytest.raises(InputError, match="not at okx's expiry hour 08:00 UTC"):
        format_name(rec)
    rec = InstrumentName("bybit", "BTC", "future", "inverse", "BTC", pd.Timestamp("2025-12-19T08:00Z"))
    with pytest.raises(InputError, match="last Friday"):
        format_name(rec)
