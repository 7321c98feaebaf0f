"""The loader converts a declared quantity_unit and never margins a USD size taken as coins (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.errors import InputError

MK = gm.load_market({"valuation_time": "2026-11-20T08:00:00Z",
                     "underlyings": {"BTC": {"spot": 97362.5, "currency": "BTC", "rate": 0.0}}})


def _perp(account: str, qty: float, **extra: object) -> dict[str, object]:
    return {"account": account, "instrument": "BTC-PERPETUAL", "underlying": "BTC", "kind": "perpetual",
            "quantity": qty, "settlement": "inverse", **extra}


def test_usd_size_declared_as_usd_is_converted_to_coins():
    pos = pd.DataFrame([_perp("A", 250_000.0, quantity_unit="usd", mark_price=97362.5)])
    book = gm.load_book(pos, MK)
    assert book.positions["quantity"].iloc[0] == pytest.approx(250_000.0 / 97362.5)
    coins = gm.compute_margin(pd.DataFrame([_perp("A", 250_000.0 / 97362.5)]), MK, "greeks-default")
    declared = gm.compute_margin(pos, MK, "greeks-default")
    assert declared.accounts["im"].iloc[0] == pytest.approx(coins.accounts["im"].iloc[0], rel=1e-12)


def test_usd_size_passed_as_coins_is_never_margined():
    pos = pd.DataFrame([_perp("A", 250_000.0), _perp("B", 2.5)])
    with pytest.raises(InputError, match="quantity"):
        gm.load_book(pos, MK)
    res = gm.compute_margin(pos, MK, "greeks-default", errors="collect").accounts.set_index("account")
    assert res.loc["A", "status"] != "computed" and np.isnan(res.loc["A", "im"])
    assert res.loc["B", "status"] == "computed" and np.isfinite(res.loc["B", "im"])


def test_unknown_quantity_unit_is_an_error():
    with pytest.raises(InputError, match="quantity_unit|unit"):
        gm.load_book(pd.DataFrame([_perp("A", 1.0, quantity_unit="lots")]), MK)
