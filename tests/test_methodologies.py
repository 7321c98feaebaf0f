"""Book adapters of the exchange methodologies (greeksmargin.engine.adapters)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greeksmargin.book.positions import load_positions
from greeksmargin.datasets import load_example_book
from greeksmargin.engine import adapter_dispatch as D
from greeksmargin.engine import adapters as M
from greeksmargin.engine.dispatch import run_model, runnable_models
from greeksmargin.engine.models import list_models, load_model
from greeksmargin.engine.params_files import load_deribit_pm_params, load_simm_params
from greeksmargin.errors import ModelError
from greeksmargin.methodologies.deribit_pm import deribit_pm_margin
from greeksmargin.methodologies.simm import simm_margin
from greeksmargin.risk.greeks import price_positions

ROOT = Path(__file__).resolve().parents[1]
COLS = ["account", "instrument", "underlying", "kind", "option_type", "strike", "expiry", "quantity", "multiplier",
        "settlement", "premium_currency"]


@pytest.fixture(scope="module")
def book():
    return load_example_book()


def _derive_model():
    """The shipped derive-pm2 model when it exists, else the parameters of the first published case."""
    if "derive-pm2" in set(list_models()["name"]):
        return "derive-pm2"
    return json.loads((ROOT / "validation" / "cases" / "derive_pm2" / "cases.json").read_text())[0]["parameters"]


ADAPTERS = {
    "simm": (M.simm_accounts, "simm-2.6"),
    "span": (M.span_accounts, "span"),
    "deribit_pm": (M.deribit_pm_accounts, "deribit-pm"),
    "derive_pm2": (M.derive_pm2_accounts, None),
}


@pytest.fixture(scope="module")
def results(book):
    out = {}
    for name, (fn, model) in ADAPTERS.items():
        out[name] = fn(book.positions, book.market, model if model is not None else _derive_model())
    return out


def _pos(rows, market):
    df = pd.DataFrame(rows, columns=COLS)
    return load_positions(df, valuation_time=market.valuation_time)


def _row(account, instrument, und, kind, qty, *, opt=None, strike=None, expiry=None, mult=1.0, settle="linear"):
    ccy = und if settle == "inverse" else "USD"
    return [account, instrument, und, kind, opt, strike, expiry, qty, mult, settle, ccy]


# ------------------------------------------------------------------------------------ every adapter
@pytest.mark.parametrize("name", list(ADAPTERS))
def test_every_account_non_negative_finite_or_explicit_error(name, results, book):
    df = results[name]
    assert sorted(df["account"]) == sorted(set(book.positions["account"]))
    for r in df.itertuples():
        if isinstance(r.error, str) and r.error:
            assert math.isnan(r.im) and r.status == "error"
            continue
        if r.status == "not_computed":  # outside the model's domain: null figures with the reason, never 0
            assert math.isnan(r.im) and math.isnan(r.mm) and "outside the domain" in r.reason
            continue
        assert r.status == "computed" and r.reason is None
        assert math.isfinite(r.im) and r.im >= 0.0, (name, r.account)
        assert math.isfinite(r.mm) and r.mm >= 0.0
        assert math.isfinite(r.isolated_im) and r.isolated_im >= 0.0
        assert r.currency in ("USD", "BTC", "ETH")
    assert list(df.columns[:7]) == M.ACCOUNT_COLUMNS


@pytest.mark.parametrize("name", ["simm", "span", "derive_pm2"])
def test_adapters_cover_the_whole_bundled_book(name, results):
    assert results[name]["error"].isna().all(), results[name]["error"].dropna().tolist()


def test_deribit_pm_linear_accounts_are_not_computed_explicitly(results):
    df = results["deribit_pm"].set_index("account")
    for acc in ("MIXED", "SPX-DESK", "SPX-NAKEDPUT"):  # outside the model's domain: null with the reason, not 0
        assert df.loc[acc, "status"] == "not_computed" and np.isnan(df.loc[acc, "im"])
        assert "settlement linear not in [inverse]" in df.loc[acc, "reason"]
    assert "underlying SPX not in [BTC, ETH]" in df.loc["SPX-DESK", "reason"]
    for acc in ("BTC-COVCALL", "BTC-SPREADS", "ETH-STRADDLE", "MM-CRYPTO"):
        assert df.loc[acc, "error"] is None and df.loc[acc, "status"] == "computed"
        assert df.loc[acc, "left_out_positions"] == 0
    assert df.loc["BTC-COVCALL", "currency"] == "BTC"
    assert df.loc["MM-CRYPTO", "currency"] == "USD"  # two coins: summed in USD


def test_scan_based_cross_never_above_isolated(results):
    for name in ("span", "deribit_pm"):
        ok = results[name][results[name]["status"] == "computed"]
        assert len(ok) >= 4
        assert (ok["im"] <= ok["isolated_im"] * (1 + 1e-12) + 1e-12).all(), name


def test_components_are_tidy_and_totals_match(results):
    for name, df in results.items():
        comps = df.attrs["components"]
        assert list(comps.columns) == ["account", "underlying", "rule", "component", "amount", "currency"]
        tot = comps[(comps["rule"] == "aggregation") & (comps["component"] == "im")].set_index("account")["amount"]
        ok = df[df["status"] == "computed"].set_index("account")["im"]
        assert np.allclose(tot.reindex(ok.index).to_numpy(), ok.to_numpy()), name


# ------------------------------------------------------------------------------------------- SIMM
def test_simm_adapter_equals_rules_on_a_hand_built_crif(book):
    mk = book.market
    exp = "2027-03-26T08:00:00Z"
    pos = _pos([
        _row("A", "ESH7", "SPX", "future", 10.0, expiry="2027-03-19T13:30:00Z", mult=50.0),
        _row("A", "BTC-PERPETUAL", "BTC", "perpetual", -3.0, settle="inverse"),
        _row("A", "BTC-FUT", "BTC", "future", 2.0, expiry=exp, settle="inverse"),
    ], mk)
    priced = price_positions(pos, mk)
    f_spx = float(priced.loc[priced["instrument"] == "ESH7", "forward"].iloc[0])
    f_btc = float(priced.loc[priced["instrument"] == "BTC-FUT", "forward"].iloc[0])
    s_btc = mk.perpetual_mark("BTC")
    # delta per 1% = 0.01 x size x forward (future) or x mark (perpetual): its value moves with the spot
    crif = pd.DataFrame([
        ["Equity", "Risk_Equity", "SPX", "11", "", "", 0.01 * 500.0 * f_spx],
        ["Equity", "Risk_Equity", "BTC", "Residual", "", "", 0.01 * (-3.0 * s_btc + 2.0 * f_btc)],
    ], columns=["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2", "AmountUSD"])
    for horizon in ("10d", "1d"):
        expected = simm_margin(crif, load_simm_params("2.6"), horizon).total
        got = M.simm_accounts(pos, mk, "simm-2.6", horizon=horizon)
        assert got.loc[0, "currency"] == "USD"
        assert got.loc[0, "im"] == pytest.approx(expected, rel=1e-9)
        assert got.loc[0, "mm"] == got.loc[0, "im"]


def test_simm_adapter_equals_rules_on_the_accounts_crif(book):
    from greeksmargin.risk.aggregation import to_crif

    priced = price_positions(book.positions, book.market)
    got = M.simm_accounts(book.positions, book.market, "simm-2.5", isolated=False).set_index("account")
    sub = priced[priced["account"] == "SPX-DESK"]
    expected = simm_margin(to_crif(sub), load_simm_params("2.5")).total
    assert got.loc["SPX-DESK", "im"] == pytest.approx(expected, rel=1e-12)
    assert math.isnan(got.loc["SPX-DESK", "isolated_im"])


def test_single_position_account_isolated_equals_cross(book):
    pos = _pos([_row("A", "SPX 2027-01-15 5400 PUT", "SPX", "option", -5.0, opt="put", strike=5400.0,
                     expiry="2027-01-15T21:00:00Z", mult=100.0)], book.market)
    for fn, model in ((M.simm_accounts, "simm-2.6"), (M.span_accounts, "span")):
        r = fn(pos, book.market, model).iloc[0]
        assert r["isolated_im"] == pytest.approx(r["im"], rel=1e-12)
        assert r["saving"] == pytest.approx(0.0, abs=1e-9 * r["im"])


# ------------------------------------------------------------------------------------------- SPAN
def test_span_offsetting_book_has_zero_scan_risk(book):
    exp = "2027-01-15T21:00:00Z"
    pos = _pos([
        _row("A", "C6000", "SPX", "option", 7.0, opt="call", strike=6000.0, expiry=exp, mult=100.0),
        _row("A", "C6000", "SPX", "option", -7.0, opt="call", strike=6000.0, expiry=exp, mult=100.0),
        _row("A", "ESH7", "SPX", "future", 4.0, expiry="2027-03-19T13:30:00Z", mult=50.0),
        _row("A", "ESH7", "SPX", "future", -4.0, expiry="2027-03-19T13:30:00Z", mult=50.0),
        _row("A", "BTC-PERPETUAL", "BTC", "perpetual", 1.5, settle="inverse"),
        _row("A", "BTC-PERPETUAL", "BTC", "perpetual", -1.5, settle="inverse"),
    ], book.market)
    r = M.span_accounts(pos, book.market, "span").iloc[0]
    assert r["scan_risk"] == 0.0
    assert r["spread_charge"] == 0.0
    assert r["isolated_im"] > 0.0  # each leg alone does carry risk


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    und=st.sampled_from(["SPX", "BTC", "ETH"]),
    is_call=st.booleans(),
    moneyness=st.floats(0.6, 1.5),
    expiry=st.sampled_from(["2026-12-18T21:00:00Z", "2027-03-19T21:00:00Z", "2027-06-25T08:00:00Z"]),
    qty=st.floats(0.1, 50.0),
)
def test_span_long_option_requirement_never_exceeds_its_premium(book, und, is_call, moneyness, expiry, qty):
    mk = book.market
    strike = round(mk.spot(und) * moneyness, 0)
    settle = "linear" if und == "SPX" else "inverse"
    mult = 100.0 if und == "SPX" else 1.0
    pos = _pos([_row("A", "OPT", und, "option", qty, opt="call" if is_call else "put", strike=strike,
                     expiry=expiry, mult=mult, settle=settle)], mk)
    r = M.span_accounts(pos, mk, "span", isolated=False).iloc[0]
    assert r["short_option_minimum"] == 0.0
    assert r["im"] <= r["net_option_value"] * (1 + 1e-9) + 1e-9
    assert r["requirement_net_nov"] <= 1e-9 * max(1.0, r["net_option_value"])


def test_span_uses_the_model_product_when_the_underlying_has_one(book):
    raw = {"defaults": {"extreme_multiple": 3.0, "extreme_weight": 0.35},
           "products": {"SPX": {"psr": 300.0, "vsr": 0.04, "short_option_minimum": 100.0}}}
    pos = _pos([_row("A", "P5400", "SPX", "option", -2.0, opt="put", strike=5400.0,
                     expiry="2027-01-15T21:00:00Z", mult=100.0)], book.market)
    r = M.span_accounts(pos, book.market, raw, isolated=False).iloc[0]
    assert r["psr_source"] == "model"
    r2 = M.span_accounts(pos, book.market, "span", isolated=False).iloc[0]  # shipped illustrative SPX table
    assert r2["psr_source"] == "illustrative"
    assert r["scan_risk"] != pytest.approx(r2["scan_risk"])
    assert r["im"] >= 2 * 100.0  # never below the short option minimum
    r3 = M.span_accounts(pos, book.market, {"products": {}}, isolated=False).iloc[0]
    assert np.isnan(r3["im"]) and "products.SPX" in r3["error"]  # no product table: an error naming the key


# ------------------------------------------------------------------------------------- Deribit PM
def test_deribit_pm_adapter_equals_rule_module(book):
    mk = book.market
    exp = "2027-03-26T08:00:00Z"
    pos = _pos([
        _row("A", "BTC-PERPETUAL", "BTC", "perpetual", -2.0, settle="inverse"),
        _row("A", "BTC-26MAR27", "BTC", "future", 3.0, expiry=exp, settle="inverse"),
        _row("A", "BTC-26MAR27-100000-C", "BTC", "option", -1.5, opt="call", strike=100000.0, expiry=exp,
             settle="inverse"),
        _row("A", "BTC_USDC-PERPETUAL", "BTC", "perpetual", 5.0, mult=0.001),  # linear: left out
    ], mk)
    # the model's tables without its [domain]: the linear position is left out (the shipped model: not computed)
    got = M.deribit_pm_accounts(pos, mk, dict(load_model("deribit-pm").raw)).iloc[0]
    priced = price_positions(pos, mk)
    opt = priced[priced["kind"] == "option"].iloc[0]
    rows = [
        {"instrument": "BTC-PERPETUAL", "kind": "perpetual", "size": -2.0},
        {"instrument": "BTC-26MAR27", "kind": "future", "size": 3.0,
         "expiry_ms": pd.Timestamp(exp).value // 1_000_000},
        {"instrument": "opt", "kind": "option", "size": -1.5, "strike": 100000.0, "option_type": "call",
         "vol": float(opt["vol"]), "underlying_price": float(opt["forward"]),
         "expiry_ms": pd.Timestamp(exp).value // 1_000_000},
    ]
    ts = pd.Timestamp(mk.valuation_time).value // 1_000_000
    res = deribit_pm_margin(rows, mk.spot("BTC"), load_deribit_pm_params("BTC"), timestamp_ms=ts)
    assert got["currency"] == "USD"  # a linear position in the account: USD, as compute_margin
    k = mk.fx_to_usd("BTC")
    assert got["im"] == pytest.approx(res.initial_margin * k, rel=1e-12)
    assert got["mm"] == pytest.approx(res.maintenance_margin * k, rel=1e-12)
    assert got["roll_shock"] == pytest.approx(res.roll_shock * k, rel=1e-12)
    assert got["left_out_positions"] == 1 and got["covered_positions"] == 3


# ------------------------------------------------------------------------------------- Derive PM2
def test_derive_portfolio_conversion(book):
    mk = book.market
    exp = "2027-01-29T08:00:00Z"
    pos = _pos([
        _row("A", "ETH-C", "ETH", "option", -4.0, opt="call", strike=3600.0, expiry=exp, settle="inverse"),
        _row("A", "ETH-P", "ETH", "option", 3.0, opt="put", strike=3000.0, expiry=exp, mult=1.0),
        _row("A", "ETH-FUT", "ETH", "future", 2.0, expiry="2027-03-26T08:00:00Z", settle="inverse"),
        _row("A", "ETH-PERPETUAL", "ETH", "perpetual", -5.0, settle="inverse"),
        _row("A", "ETH", "ETH", "spot", 10.0),
    ], mk)
    priced = price_positions(pos, mk)
    pf = M.derive_portfolio(priced, mk, "ETH")
    assert pf["perp"]["size"] == pytest.approx(-3.0)
    assert [o["amount"] for o in pf["options"]] == [-4.0, 3.0]
    assert len(pf["forwards"]) == 1 and pf["forwards"][0]["seconds_to_expiry"] == pf["options"][0]["seconds_to_expiry"]
    assert pf["collaterals"][0]["amount"] == 10.0 and pf["collaterals"][0]["risk_cancelling"]
    from greeksmargin.methodologies.derive_pm2 import derive_pm2_margin

    params = M._derive_params(_derive_model())
    res = derive_pm2_margin(pf, params)
    got = M.derive_pm2_accounts(pos, mk, params).iloc[0]
    assert got["im"] == pytest.approx(max(res.portfolio_mtm - res.im, 0.0), rel=1e-12)
    assert got["mm"] == pytest.approx(max(res.portfolio_mtm - res.mm, 0.0), rel=1e-12)
    assert got["im"] >= got["mm"] >= 0.0


# -------------------------------------------------------------------------------------- dispatch
def test_dispatch_and_margin_by_methodology(book):
    assert {"simm", "span", "deribit_pm", "derive_pm2"} <= set(D.DISPATCH)
    res = D.margin_by_methodology(book.positions, book.market, "simm-2.6", isolated=False)
    assert isinstance(res, D.AdapterMarginResult)
    assert res.model.name == "simm-2.6"
    assert set(res.accounts["account"]) == set(book.positions["account"])
    assert "SPX-DESK" in res.explain("SPX-DESK") and "IM" in res.explain("SPX-DESK")
    with pytest.raises(ModelError, match="no book adapter"):
        D.margin_by_methodology(book.positions, book.market, "greeks-default")


def test_runnable_models_cover_native_and_adapted():
    names = runnable_models()
    assert {"greeks-default", "deribit-sm", "tims-pm", "simm-2.6", "span", "deribit-pm"} <= set(names)


def test_run_model_native_and_adapted_share_leading_columns(book):
    a = run_model(book.positions, book.market, "deribit-sm").accounts
    b = run_model(book.positions, book.market, "simm-2.5", isolated=False).accounts
    for c in ("account", "im", "mm", "isolated_im", "currency", "error"):
        assert c in a.columns and c in b.columns


def test_unpriceable_account_gets_an_error_row_and_others_compute(book):
    mk = book.market
    pos = _pos([
        _row("GOOD", "ESH7", "SPX", "future", 1.0, expiry="2027-03-19T13:30:00Z", mult=50.0),
        _row("BAD", "XYZ", "NOPE", "future", 1.0, expiry="2027-03-19T13:30:00Z"),
    ], mk)
    df = M.simm_accounts(pos, mk, "simm-2.6").set_index("account")
    assert isinstance(df.loc["BAD", "error"], str) and "NOPE" in df.loc["BAD", "error"]
    assert df.loc["GOOD", "im"] > 0


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_span_cross_never_above_isolated_on_random_sub_books(book, data):
    pos = book.positions
    idx = data.draw(st.lists(st.sampled_from(list(pos.index)), min_size=1, max_size=6, unique=True))
    sub = pos.loc[idx].assign(account="A")
    r = M.span_accounts(sub, book.market, "span").iloc[0]
    assert r["error"] is None
    assert 0.0 <= r["im"] <= r["isolated_im"] * (1 + 1e-12) + 1e-9


def test_the_adapter_table_matches_the_methodologies_table():
    from greeksmargin.methodologies import BOOK_ADAPTED

    assert set(D.DISPATCH) == set(BOOK_ADAPTED)
