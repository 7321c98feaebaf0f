"""Incremental what-if (greeksmargin.engine.incremental): AccountState == compute_margin with the trades appended."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.datasets import load_example_book
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.margin import compute_margin
from greeksmargin.errors import InputError
from greeksmargin.risk import kernels
from greeksmargin.solvency.population import generate_population

BACKENDS = ["numpy", pytest.param("numba", marks=pytest.mark.skipif(not kernels.numba_available(), reason="numba"))]


def _rel(x: float, y: float) -> float:
    if np.isnan(x) and np.isnan(y):  # both not computed (outside the model's domain): they agree
        return 0.0
    return abs(x - y) / max(abs(y), 1e-12)


@pytest.fixture(scope="module")
def book():
    pos, _ = generate_population(40, seed=11)
    return pos, load_example_book().market


def _full(pos: pd.DataFrame, mk, model: str, account: str) -> tuple[float, float]:
    row = compute_margin(pos, mk, model).accounts.set_index("account").loc[account]
    return float(row["im"]), float(row["mm"])


@pytest.mark.parametrize("model", ["greeks-default", "deribit-sm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_with_trades_equals_compute_margin(book, model, backend):
    pos, mk = book
    checked = computed = 0
    for acc, sub in list(pos.groupby("account"))[:40]:
        if len(sub) < 2:
            continue
        base, trades = sub.iloc[:-1], sub.iloc[-1:]
        state = AccountState.from_positions(base, mk, model, backend=backend)
        im0, mm0 = _full(base, mk, model, acc)
        im_s, mm_s = state.margin()
        assert _rel(im_s, im0) < 1e-9 and _rel(mm_s, mm0) < 1e-9
        want = _full(sub, mk, model, acc)
        for tr in (trades, trades.to_dict("records")):  # DataFrame path and the fast mapping path
            im, mm = state.with_trades(tr)
            assert _rel(im, want[0]) < 1e-9, (acc, im, want)
            assert _rel(mm, want[1]) < 1e-9, (acc, mm, want)
        # the state is unchanged by a what-if
        assert _rel(state.margin()[0], im_s) == 0.0 and _rel(state.margin()[1], mm_s) == 0.0
        computed += not np.isnan(im_s)
        checked += 1
    assert checked >= 5 and computed >= 3


def test_add_trades_commits_and_new_underlying(book):
    pos, mk = book
    acc, sub = next((a, s) for a, s in pos.groupby("account") if len(s) >= 2 and s["settlement"].eq("linear").all())
    state = AccountState.from_positions(sub, mk)
    other = pos[(pos["account"] != acc) & (pos["settlement"] == "linear")]
    new_und = other[~other["underlying"].isin(sub["underlying"])]
    trade = (new_und if len(new_und) else other).iloc[:1].assign(account=acc)
    want = _full(pd.concat([sub, trade]), mk, "greeks-default", acc)
    assert _rel(state.with_trades(trade)[0], want[0]) < 1e-9
    got = state.add_trades(trade)
    assert _rel(got[0], want[0]) < 1e-9 and _rel(got[1], want[1]) < 1e-9
    assert len(state.positions) == len(sub) + 1
    assert _rel(state.margin()[0], want[0]) < 1e-9


def test_currency_change_falls_back_to_full_computation(book):
    pos, mk = book
    inv = pos[pos["settlement"] == "inverse"]
    acc = inv["account"].iloc[0]
    sub = pos[pos["account"] == acc]
    if not sub["settlement"].eq("inverse").all():
        pytest.skip("no all-inverse account in this population")
    state = AccountState.from_positions(sub, mk)
    assert state.currency != "USD"
    lin = pos[pos["settlement"] == "linear"].iloc[:1].assign(account=acc)
    want = _full(pd.concat([sub, lin]), mk, "greeks-default", acc)
    im, mm = state.with_trades(lin)
    assert _rel(im, want[0]) < 1e-9 and _rel(mm, want[1]) < 1e-9


@settings(max_examples=10, deadline=None)
@given(qty=st.floats(-50, 50).filter(lambda q: abs(q) > 1e-3), k_rel=st.floats(0.7, 1.3), call=st.booleans())
def test_random_option_trade(qty, k_rel, call):
    ex = load_example_book()
    pos, mk = ex.positions, ex.market
    acc = "BTC-COVCALL" if "BTC-COVCALL" in set(pos["account"]) else pos["account"].iloc[0]
    sub = pos[pos["account"] == acc]
    tmpl = sub[sub["kind"] == "option"].iloc[0]
    trade = {**tmpl.to_dict(), "quantity": qty, "strike": round(float(tmpl["strike"]) * k_rel, -2),
             "option_type": "call" if call else "put", "instrument": "NEW-TRADE"}
    state = AccountState.from_positions(sub, mk, backend="numpy")
    want = _full(pd.concat([sub, pd.DataFrame([trade])], ignore_index=True), mk, "greeks-default", acc)
    im, mm = state.with_trades(trade)
    assert _rel(im, want[0]) < 1e-9 and _rel(mm, want[1]) < 1e-9
    assert im >= 0 and mm >= 0


def test_errors_name_the_field():
    ex = load_example_book()
    acc = ex.positions["account"].iloc[0]
    state = AccountState.from_positions(ex.positions[ex.positions["account"] == acc], ex.market)
    good = ex.positions[ex.positions["account"] == acc].iloc[0].to_dict()
    with pytest.raises(InputError, match="kind"):
        state.with_trades({**good, "kind": "swap"})
    with pytest.raises(InputError, match="account"):
        state.with_trades({**good, "account": "SOMEONE-ELSE"})
    with pytest.raises(InputError, match="accounts"):
        AccountState.from_positions(ex.positions, ex.market)
    assert np.isfinite(state.with_trades(good)[0])
