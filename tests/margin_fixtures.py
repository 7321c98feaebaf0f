"""Small synthetic books and markets for the margin engine tests (not a test module)."""

from __future__ import annotations

import pandas as pd

from greeksmargin.book.market import load_market

VALUATION = "2026-11-20T08:00:00Z"
EXPIRIES = ["2026-11-27T08:00:00Z", "2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z"]


def market_dict(*, btc_vol: bool = True) -> dict:
    flat = {"axis": "log_moneyness", "expiries": EXPIRIES, "points": [-1.0, 0.0, 1.0],
            "vols": [[0.62, 0.55, 0.60], [0.60, 0.52, 0.57], [0.58, 0.50, 0.55]]}
    spx = {"axis": "log_moneyness", "expiries": EXPIRIES, "points": [-0.5, 0.0, 0.5],
           "vols": [[0.25, 0.18, 0.16], [0.24, 0.17, 0.15], [0.23, 0.17, 0.15]]}
    btc = {"spot": 95000.0, "currency": "BTC", "rate": 0.0, "perpetual_mark": 95010.0,
           "forwards": {EXPIRIES[1]: 95500.0, EXPIRIES[2]: 96900.0}}
    if btc_vol:
        btc["surface"] = flat
    return {
        "valuation_time": VALUATION,
        "fx_to_usd": {"USD": 1.0},
        "underlyings": {
            "BTC": btc,
            "ETH": {"spot": 3500.0, "currency": "ETH", "rate": 0.0, "surface": flat},
            "SPX": {"spot": 6000.0, "rate": 0.04, "dividend_yield": 0.013, "surface": spx},
            "RUT": {"spot": 2400.0, "rate": 0.04, "dividend_yield": 0.01, "surface": spx},
        },
    }


def market(**kw):
    return load_market(market_dict(**kw))


def row(account, underlying, kind="option", option_type="call", strike=None, expiry=1, quantity=1.0,
        multiplier=1.0, settlement="linear"):
    spot = {"BTC": 95000.0, "ETH": 3500.0, "SPX": 6000.0, "RUT": 2400.0}[underlying]
    if kind == "option":
        strike = float(strike if strike is not None else spot)
        exp = EXPIRIES[expiry]
        name = f"{underlying}-{exp[:10]}-{strike:g}-{option_type[0].upper()}"
    elif kind == "future":
        exp = EXPIRIES[expiry]
        strike, option_type, name = float("nan"), None, f"{underlying}-FUT-{exp[:10]}"
    else:
        strike, option_type, exp, name = float("nan"), None, None, f"{underlying}-{kind.upper()}"
    ccy = underlying if settlement == "inverse" else "USD"
    return {"account": account, "instrument": name, "underlying": underlying, "kind": kind,
            "option_type": option_type, "strike": strike, "expiry": exp, "quantity": float(quantity),
            "multiplier": float(multiplier), "settlement": settlement, "premium_currency": ccy}


def book(rows) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def sample_book() -> pd.DataFrame:
    """A few accounts covering every kind, linear and inverse, one and several underlyings."""
    return book([
        row("A", "SPX", "option", "put", 5700, 1, -10, 100),
        row("A", "SPX", "option", "put", 5400, 1, 10, 100),
        row("A", "SPX", "option", "call", 6300, 2, -5, 100),
        row("A", "RUT", "option", "call", 2400, 1, 20, 100),
        row("B", "BTC", "option", "call", 100000, 1, -3, 1, "inverse"),
        row("B", "BTC", "option", "put", 90000, 2, 2, 1, "inverse"),
        row("B", "BTC", "future", expiry=2, quantity=1.5, settlement="inverse"),
        row("B", "BTC", "perpetual", quantity=-0.5, settlement="inverse"),
        row("C", "BTC", "option", "call", 95000, 0, 2, 1, "linear"),
        row("C", "ETH", "option", "put", 3000, 1, -20, 1, "inverse"),
        row("C", "ETH", "perpetual", quantity=5, settlement="linear"),
        row("C", "SPX", "spot", quantity=3),
        row("D", "SPX", "future", expiry=1, quantity=2, multiplier=50),
        row("D", "SPX", "future", expiry=2, quantity=-2, multiplier=50),
    ])
