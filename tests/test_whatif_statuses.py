"""margin_change: per-account statuses (error, not_computed) and a trade that changes the margin currency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import greeksmargin as gm
from greeksmargin.errors import ModelError

BOOK = gm.datasets.load_example_book()
MK = BOOK.market
POS = BOOK.positions


def _row(instrument: str, account: str, quantity: float) -> dict:
    return {**POS[POS["instrument"] == instrument].iloc[0].to_dict(), "account": account, "quantity": quantity}


@pytest.mark.parametrize("model", ["greeks-default", "span"])
def test_currency_change_is_converted(model):
    """A linear USDC perpetual in an all-inverse BTC account: the account is margined in USD after the trade."""
    tr = pd.DataFrame([_row("BTC_USDC-PERPETUAL", "BTC-COVCALL", 1000.0)])
    r = gm.margin_change(POS, MK, model, tr).iloc[0]
    assert r["currency_before"] == "BTC" and r["currency"] == "USD"
    before = gm.compute_margin(POS, MK, model).accounts.set_index("account").loc["BTC-COVCALL"]
    assert r["im_before"] == pytest.approx(float(before["im"]), rel=1e-9)
    fx = MK.fx_to_usd("BTC")
    assert r["im_change"] == pytest.approx(r["im_after"] - r["im_before"] * fx, rel=1e-12)


@pytest.mark.parametrize("model", ["greeks-default", "deribit-pm"])
def test_account_the_market_cannot_price_is_an_error_row(model):
    """An option whose underlying has no vol in the market: status error with the message, NaN, others computed."""
    mk = gm.load_market({"valuation_time": "2026-11-20T08:00:00Z",
                         "underlyings": {"BTC": {"spot": 95000.0, "currency": "BTC", "rate": 0.0}}})
    pos = pd.DataFrame([{**_row("BTC-PERPETUAL", "OK", 1.0)}, {**_row("BTC-PERPETUAL", "BAD", 1.0)}])
    tr = pd.DataFrame([_row("BTC-PERPETUAL", "OK", 2.0), _row("BTC-25DEC26-100000-C", "BAD", -1.0)])
    ch = gm.margin_change(pos, mk, model, tr).set_index("account")
    assert ch.loc["OK", "status"] == "computed" and np.isfinite(ch.loc["OK", "im_after"])
    assert ch.loc["BAD", "status"] == "error" and "vol" in ch.loc["BAD", "reason"]
    assert np.isnan(ch.loc["BAD", "im_after"]) and np.isnan(ch.loc["BAD", "im_change"])


def test_model_that_cannot_run_on_a_book_is_refused(tmp_path):
    with pytest.raises(ModelError):
        gm.margin_change(POS, MK, "no-such-model", POS.head(1))
