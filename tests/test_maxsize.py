"""Pre-trade sizing (greeksmargin.solvency.sizing.max_size): the answer holds and one more minimum size breaks it.

Every check recomputes the account with the trade appended through ``compute_margin`` (not through the
incremental state the search uses) and compares with the solvency code's equity.
"""

from __future__ import annotations

import io
import math
from contextlib import redirect_stdout

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import greeksmargin as gm
from greeksmargin.book.collateral import load_example_collateral
from greeksmargin.errors import InputError
from greeksmargin.solvency.book import BookValuer
from greeksmargin.solvency.margin_fn import margin_function
from greeksmargin.solvency.sizing import default_min_size, max_size

BOOK = gm.datasets.load_example_book()
MK = BOOK.market
POS = gm.load_positions(BOOK.positions, valuation_time=MK.valuation_time)
COLL = load_example_collateral()
CRYPTO = ["BTC-COVCALL", "BTC-SPREADS", "ETH-STRADDLE", "MM-CRYPTO"]


def _im_with(account: str, instrument: str, qty: float, model: str = "greeks-default",
             extra: pd.DataFrame | None = None) -> tuple[float, str]:
    held = POS[POS["account"] == account]
    row = POS[POS["instrument"] == instrument].iloc[0].to_dict()
    row.update(account=account, quantity=qty)
    parts = [held, pd.DataFrame([row])] + ([extra] if extra is not None else [])
    r = gm.compute_margin(pd.concat(parts, ignore_index=True), MK, model).accounts.set_index("account").loc[account]
    return float(r["im"]), str(r["currency"])


def _in(x: float, ccy: str, to: str) -> float:
    return x * MK.fx_to_usd(ccy) / MK.fx_to_usd(to)


def _check_answer(ans, model: str = "greeks-default", extra: pd.DataFrame | None = None) -> None:
    sign = 1.0 if ans.side == "buy" else -1.0
    q = ans.min_size

    def im(k: int) -> float:
        v, c = _im_with(ans.account, ans.instrument, sign * k * q, model, extra)
        return _in(v, c, ans.currency)

    tol = 1e-9 * max(abs(ans.equity), 1.0)
    if ans.status == "limited":
        assert ans.multiples >= 1 and ans.quantity == pytest.approx(ans.multiples * q, rel=1e-12)
        assert im(ans.multiples) <= ans.equity + tol
        assert im(ans.multiples + 1) > ans.equity - tol
    elif ans.status == "min_breaks":
        assert ans.quantity == 0 and im(1) > ans.equity - tol
        assert "minimum size" in ans.reason
    else:
        assert ans.status == "no_limit" and "no limit up to the cap" in ans.reason
        assert im(ans.multiples) <= ans.equity + tol


@st.composite
def cases(draw: st.DrawFn):
    account = draw(st.sampled_from(CRYPTO))
    pool = POS[POS["underlying"].isin(POS.loc[POS["account"] == account, "underlying"].unique())
               & (POS["settlement"] == "inverse")]
    instrument = str(pool["instrument"].iloc[draw(st.integers(0, len(pool) - 1))])
    side = draw(st.sampled_from(["buy", "sell"]))
    min_size = draw(st.sampled_from([None, 0.5, 1.0]))
    scale = draw(st.sampled_from([0.05, 0.5, 1.0, 3.0]))
    return account, instrument, side, min_size, scale


@settings(max_examples=10, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(c=cases())
def test_answer_holds_and_one_more_breaks(c):
    account, instrument, side, min_size, scale = c
    coll = COLL.copy()
    coll["amount"] = coll["amount"] * scale
    ans = max_size(POS, MK, coll, account=account, instrument=instrument, side=side, min_size=min_size)
    assert ans.min_size == (min_size or default_min_size(str(POS.loc[POS["instrument"] == instrument, "kind"].iloc[0]),
                                                         1.0))
    _check_answer(ans)


@pytest.mark.parametrize("account", CRYPTO + ["SPX-DESK", "MIXED"])
def test_equity_is_the_solvency_equity(account):
    held = POS[POS["account"] == account]
    inst = str(held["instrument"].iloc[0])
    ans = max_size(POS, MK, COLL, account=account, instrument=inst, side="buy", max_multiples=4)
    st_ = BookValuer(held, MK, COLL[COLL["account"] == account], margin_function("greeks-default"),
               accounts=[account]).state()
    assert ans.currency == st_["currency"].iloc[0]
    assert ans.equity == pytest.approx(float(st_["equity_im"].iloc[0]), rel=1e-9)
    assert ans.im_current == pytest.approx(float(st_["im"].iloc[0]), rel=1e-9)


def test_non_monotone_hedge_goes_past_the_flat_point():
    """A short perpetual: buying first lowers IM (to the hedge), then raises it; the answer is past the hedge."""
    acc = "HEDGE"
    perp = POS[POS["instrument"] == "BTC-PERPETUAL"].iloc[0].to_dict()
    short = pd.DataFrame([{**perp, "account": acc, "quantity": -10.0}])
    book = pd.concat([POS, short], ignore_index=True)
    coll = pd.DataFrame({"account": [acc], "asset": ["BTC"], "amount": [3.0]})
    ans = max_size(book, MK, coll, account=acc, instrument="BTC-PERPETUAL", side="buy", min_size=0.5)
    assert ans.status == "limited" and ans.quantity > 20.0  # past the full hedge at 10 and its mirror at 20
    hedged = pd.concat([short, short.assign(quantity=10.0)], ignore_index=True)
    im_hedged = gm.compute_margin(hedged, MK).accounts["im"].iloc[0]
    assert im_hedged < ans.im_current  # IM fell on the way (not monotone)
    held = short
    for k in (ans.multiples, ans.multiples + 1):
        r = gm.compute_margin(pd.concat([held, short.assign(quantity=0.5 * k)], ignore_index=True), MK)
        ok = r.accounts["im"].iloc[0] <= ans.equity * (1 + 1e-12)
        assert ok == (k == ans.multiples)


def test_minimum_breaks_and_no_limit_say_why():
    coll = COLL.copy()
    coll.loc[coll["account"] == "BTC-COVCALL", "amount"] = 4.1  # IM 4.06 BTC as it stands, little room
    ans = max_size(POS, MK, coll, account="BTC-COVCALL", instrument="BTC-25DEC26-100000-C", side="sell", min_size=5.0)
    assert ans.status == "min_breaks" and ans.quantity == 0 and "even the minimum size" in ans.reason
    _check_answer(ans)
    # buying back the short calls reduces the requirement: no limit up to a small cap
    ans = max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="BTC-25DEC26-100000-C", side="buy",
                   min_size=1.0, max_multiples=8)
    assert ans.status == "no_limit" and ans.multiples == 8 and "reduces the requirement" in ans.reason
    _check_answer(ans)


def test_open_orders_worse_side():
    acc = "BTC-COVCALL"
    orders = pd.DataFrame([
        {**POS[POS["instrument"] == "BTC-25DEC26-110000-C"].iloc[0].to_dict(), "account": acc, "quantity": 4.0,
         "side": "sell"},
        {**POS[POS["instrument"] == "BTC-PERPETUAL"].iloc[0].to_dict(), "account": acc, "quantity": 20.0,
         "side": "buy"},
    ])
    ans = max_size(POS, MK, COLL, account=acc, instrument="BTC-PERPETUAL", side="buy", orders=orders, min_size=0.01)
    w = ans.with_orders
    assert w is not None and w.status == "limited" and w.equity == ans.equity
    frame = ans.to_frame()
    assert list(frame["orders"]) == ["none", "worse side"]
    buys = orders[orders["side"] == "buy"].drop(columns="side")
    sells = orders[orders["side"] == "sell"].drop(columns="side").assign(quantity=-4.0)

    def worse(k: int) -> float:
        return max(_in(*_im_with(acc, "BTC-PERPETUAL", 0.01 * k, extra=x), ans.currency) for x in (buys, sells))

    assert worse(w.multiples) <= ans.equity * (1 + 1e-12) < worse(w.multiples + 1)
    # the buy order of 20 perpetuals uses 20 of the room
    assert ans.quantity - w.quantity == pytest.approx(20.0, abs=0.011)


def test_bad_input_is_refused():
    with pytest.raises(InputError, match="side"):
        max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="BTC-PERPETUAL", side="long")
    with pytest.raises(InputError, match="instrument"):
        max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="NOT AN INSTRUMENT", side="buy")
    with pytest.raises(InputError, match="min_size"):
        max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="BTC-PERPETUAL", side="buy", min_size=-1.0)
    bad = POS[POS["account"] == "BTC-COVCALL"].head(1)
    with pytest.raises(InputError, match="side"):
        max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="BTC-PERPETUAL", side="buy", orders=bad)
    with pytest.raises(InputError, match="quantity"):
        max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="BTC-PERPETUAL", side="buy",
                 orders=bad.assign(side="sell", quantity=-1.0))


def test_other_models_and_the_cli(tmp_path):
    ans = max_size(POS, MK, COLL, account="BTC-SPREADS", instrument="BTC-PERPETUAL", side="sell", model="deribit-pm",
                   min_size=0.1)
    assert ans.status == "limited" and ans.model == "deribit-pm"
    from greeksmargin.engine.dispatch import run_model

    def im(k: int) -> float:
        held = POS[POS["account"] == "BTC-SPREADS"]
        row = {**POS[POS["instrument"] == "BTC-PERPETUAL"].iloc[0].to_dict(), "account": "BTC-SPREADS",
               "quantity": -0.1 * k}
        r = run_model(pd.concat([held, pd.DataFrame([row])], ignore_index=True), MK, "deribit-pm").accounts.iloc[0]
        return _in(float(r["im"]), str(r["currency"]), ans.currency)

    assert im(ans.multiples) <= ans.equity < im(ans.multiples + 1)
    from greeksmargin.cli import main

    pos_f, coll_f = tmp_path / "p.csv", tmp_path / "c.csv"
    BOOK.positions.to_csv(pos_f, index=False)
    COLL.to_csv(coll_f, index=False)
    mk_f = gm.datasets.__path__[0] + "/data/example_market.json"
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["maxsize", str(pos_f), mk_f, "--collateral", str(coll_f), "--account", "BTC-SPREADS",
                   "--instrument", "BTC-PERPETUAL", "--side", "sell", "--min-size", "0.1", "--format", "csv"])
    assert rc == 0
    got = pd.read_csv(io.StringIO(buf.getvalue()))
    api = max_size(POS, MK, COLL, account="BTC-SPREADS", instrument="BTC-PERPETUAL", side="sell", min_size=0.1)
    assert got["multiples"].iloc[0] == api.multiples and got["status"].iloc[0] == api.status
    assert math.isclose(got["equity"].iloc[0], api.equity, rel_tol=1e-9)
    assert np.isfinite(got["im_next"].iloc[0])


def test_deribit_open_orders_json():
    """Deribit open orders through adapters/orders.py: a USD buy of BTC-PERPETUAL of one mark is 1 BTC."""
    from greeksmargin.solvency.sizing import deribit_orders

    doc = {"jsonrpc": "2.0", "result": [
        {"instrument_name": "BTC-PERPETUAL", "direction": "buy", "amount": MK.perpetual_mark("BTC"),
         "order_state": "open"},
        {"instrument_name": "BTC-25DEC26-110000-C", "direction": "sell", "amount": 4, "filled_amount": 1},
        {"instrument_name": "BTC-26MAR27", "direction": "sell", "amount": 10000, "order_state": "untriggered"}]}
    buys, sells = deribit_orders(doc, "BTC-COVCALL", MK)
    assert list(buys["quantity"]) == [pytest.approx(1.0)]
    assert sells["quantity"].iloc[0] == pytest.approx(-3.0) and len(sells) == 2
    ans = max_size(POS, MK, COLL, account="BTC-COVCALL", instrument="BTC-PERPETUAL", side="buy",
                   orders=(buys, sells))
    assert ans.quantity - ans.with_orders.quantity == pytest.approx(1.0, abs=0.0011)
