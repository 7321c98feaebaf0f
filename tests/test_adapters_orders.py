"""Deribit open orders -> buy-side and sell-side trade tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.adapters import deribit
from greeksmargin.adapters.orders import open_orders_to_trades
from greeksmargin.errors import InputError

SEEN = Path(__file__).resolve().parent / "data" / "deribit_api" / "btc_inverse"
INSTRUMENTS = {r["instrument_name"]: r for r in json.loads((SEEN / "instruments.json").read_text())["result"]}
MARKS = {"BTC-PERPETUAL": 97362.5, "BTC-25SEP26": 98968.5}

ORDERS = {"jsonrpc": "2.0", "id": 7, "result": [
    {"instrument_name": "BTC-26JUN26-100000-C", "direction": "buy", "amount": 1.0, "filled_amount": 0.0,
     "price": 0.048, "order_state": "open", "order_type": "limit"},
    {"instrument_name": "BTC-26JUN26-110000-C", "direction": "sell", "amount": 2.0, "filled_amount": 0.5,
     "price": 0.02, "order_state": "open", "order_type": "limit"},
    {"instrument_name": "BTC-PERPETUAL", "direction": "sell", "amount": 50000.0, "filled_amount": 10000.0,
     "price": 98000.0, "order_state": "untriggered", "order_type": "stop_limit"},
    {"instrument_name": "BTC-PERPETUAL", "direction": "buy", "amount": 20000.0, "filled_amount": 0.0,
     "price": 95000.0, "order_state": "open", "order_type": "limit"},
    {"instrument_name": "BTC-25SEP26", "direction": "buy", "amount": 1000.0, "filled_amount": 1000.0,
     "price": 98000.0, "order_state": "open", "order_type": "limit"},
    {"instrument_name": "BTC-25DEC26-80000-P", "direction": "buy", "amount": 3.0, "filled_amount": 0.0,
     "price": 0.07, "order_state": "cancelled", "order_type": "limit"},
]}


def test_two_sides_in_product_units() -> None:
    buys, sells = open_orders_to_trades(ORDERS, INSTRUMENTS, account="btc_inverse", mark_prices=MARKS)
    assert list(buys.columns) == list(deribit.POSITION_COLUMNS)
    b = buys.set_index("instrument")["quantity"]
    s = sells.set_index("instrument")["quantity"]
    assert b.to_dict() == {"BTC-26JUN26-100000-C": 1.0, "BTC-PERPETUAL": pytest.approx(20000.0 / 97362.5)}
    # unfilled part only; the perpetual's USD amount in coin at the mark, not at the order's price
    assert s.to_dict() == {"BTC-26JUN26-110000-C": -1.5, "BTC-PERPETUAL": pytest.approx(-40000.0 / 97362.5)}
    assert (buys["quantity"] > 0).all() and (sells["quantity"] < 0).all()
    assert set(buys["kind"]) == {"option", "perpetual"} and set(sells["settlement"]) == {"inverse"}


def test_trades_margin_as_positions() -> None:
    t = deribit.read(SEEN)
    buys, sells = open_orders_to_trades(ORDERS, INSTRUMENTS, account="btc_inverse", mark_prices=MARKS)
    base = gm.compute_margin(t["positions"], t["market"], "greeks-default").accounts["im"].iloc[0]
    ims = []
    for side in (buys, sells):
        book = pd.concat([t["positions"], side], ignore_index=True)
        ims.append(gm.compute_margin(book, t["market"], "greeks-default").accounts["im"].iloc[0])
    assert all(im > 0 for im in ims)
    assert ims[0] != ims[1] and base not in ims  # each side changes the requirement its own way


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("direction", "long", "direction must be 'buy' or 'sell'"),
        ("amount", "x", "amount must be a number"),
        ("filled_amount", 5.0, "need 0 <= filled_amount <= amount"),
        ("order_state", "weird", "unknown order_state 'weird'"),
    ],
)
def test_bad_orders_name_row_and_field(field: str, value: object, message: str) -> None:
    bad = json.loads(json.dumps(ORDERS))
    bad["result"][1][field] = value
    with pytest.raises(InputError, match=message) as info:
        open_orders_to_trades(bad, INSTRUMENTS, account="a", mark_prices=MARKS)
    assert info.value.row == 1 and info.value.column == field


def test_inverse_future_order_needs_a_mark() -> None:
    with pytest.raises(InputError, match="row 2, column 'amount': BTC-PERPETUAL: an inverse perpetual's amount is in"):
        open_orders_to_trades(ORDERS, INSTRUMENTS, account="a", mark_prices={})
