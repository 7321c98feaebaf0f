"""Options at or past their expiry are valued at intrinsic, never an account error (issue 12, item 6).

Before: an option whose expiry equals the valuation time raised ``InputError: option expired``, and the
whole account (with ``errors="collect"``: its row) had no margin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from margin_fixtures import VALUATION, market, row

from greeksmargin.book.collateral import load_collateral
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.margin import compute_margin
from greeksmargin.errors import InputError
from greeksmargin.pricing import black76, black76_price, inverse_option
from greeksmargin.risk.greeks import market_arrays, price_positions
from greeksmargin.risk.scenarios import sensitivities
from greeksmargin.solvency.assess import assess_solvency

MKT = market()
# engine mechanics pinned on fixed parameters: the shipped greeks-default as of 2026-11 (before the out-of-sample
# recalibration); the shipped model's own figures are pinned in tests/pins
MODEL = str(Path(__file__).parent / "data" / "greeks-default-2026-11.toml")
AT = VALUATION
PAST = "2026-11-20T07:59:00Z"  # a minute before the valuation time
WEEK_PAST = "2026-11-13T08:00:00Z"


def _opt(account, ot, k, q, expiry, settlement="linear", underlying="BTC", mult=1.0):
    r = row(account, underlying, "option", ot, k, 0, q, mult, settlement)
    r["expiry"] = expiry
    return r


@pytest.mark.parametrize("expiry", [AT, PAST, WEEK_PAST])
def test_price_and_greeks_at_expiry_are_the_intrinsic_limits(expiry):
    s = 95000.0
    legs = [("call", 90000.0), ("call", 95000.0), ("call", 100000.0), ("put", 90000.0), ("put", 95000.0),
            ("put", 100000.0)]
    pos = pd.DataFrame([_opt("A", ot, k, 2.0, expiry) for ot, k in legs]
                       + [_opt("B", ot, k, 2.0, expiry, "inverse") for ot, k in legs])
    p = price_positions(pos, MKT)
    assert (p["time_to_expiry"] == 0.0).all()
    intrinsic = np.array([max(s - k, 0.0) if ot == "call" else max(k - s, 0.0) for ot, k in legs])
    np.testing.assert_allclose(p["price"].to_numpy()[:6], intrinsic, atol=1e-9)
    np.testing.assert_allclose(p["value_ccy"].to_numpy()[6:], intrinsic / s * 2.0, atol=1e-12)
    # the step delta (0.5 exactly at the money, the pricing kernels' convention); no gamma, vega, theta
    np.testing.assert_array_equal(p["delta"].to_numpy()[:6], [1.0, 0.5, 0.0, 0.0, -0.5, -1.0])
    for c in ("gamma", "vega", "theta", "vanna", "volga", "theta_1d", "vega_1volpt"):
        np.testing.assert_array_equal(p[c].to_numpy(), 0.0, err_msg=c)
    cols = ["price", "value_usd", "value_ccy", "delta", "rho", "delta_cash", "delta_1pct", "gamma_cash_1pct"]
    assert np.isfinite(p[cols].to_numpy(dtype=float)).all()
    assert np.isfinite(p["coin_delta"].to_numpy()[6:]).all()


def test_engine_sensitivities_at_expiry_are_the_step_not_the_kink():
    pos = pd.DataFrame([_opt("A", "call", 95000.0, 1.0, AT), _opt("A", "put", 90000.0, -1.0, AT),
                        _opt("A", "call", 90000.0, -1.0, AT, "inverse")])
    a = market_arrays(pos, MKT)
    d, g, v = sensitivities(a)
    assert d[0] == pytest.approx(0.5 * 95000.0)  # at the money: half the step, not a 1/h gamma
    np.testing.assert_array_equal(g[:2], 0.0)
    np.testing.assert_array_equal(v, 0.0)
    assert d[1] == 0.0  # out of the money
    # coin-settled in the money call: coin value 1 - K/F(1+m)
    assert d[2] == pytest.approx(-90000.0 / 95000.0)
    assert g[2] == pytest.approx(2 * 90000.0 / 95000.0)
    assert np.isfinite(d).all() and np.isfinite(g).all()


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("expiry", [AT, PAST])
def test_account_with_an_expiring_option_is_computed(expiry, backend):
    pos = pd.DataFrame([
        _opt("X", "call", 90000.0, -1.0, expiry), row("X", "BTC", "perpetual", quantity=0.5),
        row("X", "BTC", "option", "put", 90000, 1, 1.0),  # a live option next to it
        _opt("ITM", "call", 50000.0, 1.0, expiry), row("SPOT", "BTC", "spot", quantity=1.0),
        _opt("OTM", "put", 50000.0, 3.0, expiry),
        _opt("C", "put", 100000.0, -2.0, expiry, "inverse"), row("C", "BTC", "future", expiry=1, quantity=1,
                                                                  settlement="inverse"),
        _opt("S", "call", 5900.0, -10.0, expiry, underlying="SPX", mult=100.0),
    ])
    res = compute_margin(pos, MKT, MODEL, errors="collect", backend=backend)
    acc = res.accounts.set_index("account")
    assert acc["error"].isna().all()
    assert np.isfinite(acc[["im", "mm", "isolated_im"]].to_numpy(float)).all()
    # a deep in-the-money call at expiry is the underlying less the strike: the margin of a spot holding
    assert acc.loc["ITM", "im"] == pytest.approx(acc.loc["SPOT", "im"], rel=1e-9)
    # a worthless long option needs nothing
    assert acc.loc["OTM", "im"] == 0.0
    # a short in-the-money SPX call at expiry: short 1,000 SPX, charged at least the SPX calibrated rise
    assert acc.loc["S", "im"] >= 1000 * 6000.0 * 0.043 * (1 - 1e-9)
    att = res.attribution().groupby("account")["contribution"].sum()
    np.testing.assert_allclose(att.reindex(acc.index).to_numpy(), acc["im"].to_numpy(), rtol=1e-9)


def test_what_if_and_solvency_with_an_expiring_option():
    held = pd.DataFrame([row("W", "BTC", "perpetual", quantity=0.5)])
    st = AccountState.from_positions(held, MKT, MODEL, account="W")
    trade = _opt("W", "call", 90000.0, -1.0, AT)
    im, mm = st.with_trades(trade)
    full = compute_margin(pd.concat([held, pd.DataFrame([trade])], ignore_index=True), MKT, MODEL).accounts
    assert im == pytest.approx(float(full["im"].iloc[0]), rel=1e-9)
    pos = pd.concat([held, pd.DataFrame([trade])], ignore_index=True)
    coll = load_collateral(pd.DataFrame({"account": ["W"], "asset": ["USD"], "amount": [50_000.0]}))
    sol = assess_solvency(pos, MKT, coll, MODEL).accounts.set_index("account")
    assert sol.loc["W", "status"] != "error"
    assert sol.loc["W", "mtm"] == pytest.approx(-5000.0)  # the short call's intrinsic value


def test_an_expired_future_still_errors():
    fut = row("F", "BTC", "future", expiry=1, quantity=1.0)
    fut["expiry"] = PAST
    with pytest.raises(InputError, match="future expired"):
        compute_margin(pd.DataFrame([fut]), MKT, MODEL)


def test_pricing_kernels_stay_finite_at_expiry():
    call = np.array([True, False, True, False, True])
    f = np.array([100.0, 100.0, 1e-6, 1e8, 100.0])
    k = np.array([100.0, 100.0, 100.0, 100.0, 1e-8])
    for t in (0.0, 1e-300, 1e-12):
        tt = np.full(5, t)
        for vol in (0.0, 0.5, 4.9):
            g = black76(call, f, k, tt, np.full(5, vol), np.zeros(5))
            for name in ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga"):
                assert np.isfinite(getattr(g, name)).all(), (t, vol, name)
            assert np.isfinite(black76_price(call, f, k, tt, np.full(5, vol), np.zeros(5))).all()
            ig = inverse_option(call, f, k, tt, np.full(5, vol))
            assert np.isfinite(ig.price).all() and np.isfinite(ig.delta).all() and np.isfinite(ig.gamma).all()
