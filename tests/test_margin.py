import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from margin_fixtures import book, market, row, sample_book

import greeksmargin as gm
from greeksmargin.errors import MarketDataError
from greeksmargin.risk.greeks import price_positions

MK = market()
MODELS = ["greeks-default", "tims-pm", "deribit-sm"]
SCAN_MODELS = ["greeks-default", "tims-pm"]


def _open_domain(name):
    """The shipped model with its [domain] lifted: these tests exercise the engine's rules on any book."""
    import dataclasses

    from greeksmargin.engine.models import Domain, load_model

    return dataclasses.replace(load_model(name), domain=Domain())


OPEN = {m: _open_domain(m) for m in MODELS}

TEMPLATES = [
    ("SPX", "option", "put", 5700, 1, 100, "linear"),
    ("SPX", "option", "call", 6300, 2, 100, "linear"),
    ("SPX", "option", "call", 6000, 0, 100, "linear"),
    ("RUT", "option", "put", 2300, 1, 100, "linear"),
    ("SPX", "future", None, None, 1, 50, "linear"),
    ("BTC", "option", "call", 100000, 1, 1, "inverse"),
    ("BTC", "option", "put", 85000, 2, 1, "inverse"),
    ("BTC", "future", None, None, 2, 1, "inverse"),
    ("BTC", "perpetual", None, None, 0, 1, "inverse"),
    ("ETH", "option", "put", 3000, 1, 1, "inverse"),
    ("ETH", "option", "call", 4000, 0, 1, "linear"),
    ("ETH", "spot", None, None, 0, 1, "linear"),
]


def _row(t, account, q):
    u, kind, ot, k, e, mult, settle = t
    return row(account, u, kind, ot or "call", k, e, q, mult, settle)


books = st.lists(
    st.tuples(st.sampled_from(range(len(TEMPLATES))), st.sampled_from(["X", "Y", "Z"]),
              st.floats(-20, 20).filter(lambda q: abs(q) > 0.01)),
    min_size=1, max_size=10,
).map(lambda items: book([_row(TEMPLATES[i], a, q) for i, a, q in items]))

SET = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def results():
    return {m: gm.compute_margin(sample_book(), MK, OPEN[m]) for m in MODELS}


def test_result_tables_have_the_contract_columns(results):
    r = results["greeks-default"]
    for c in ("account", "im", "mm", "isolated_im", "saving", "saving_pct", "currency", "scan", "delta", "gamma",
              "vega", "worst_scenario"):
        assert c in r.accounts.columns
    assert list(r.components.columns) == ["account", "underlying", "rule", "component", "amount", "currency"]
    assert set(r.components["rule"]) >= {"scan", "sensitivity", "contingency", "combination", "aggregation"}
    assert len(r.by_underlying) == 7  # A: SPX, RUT; B: BTC; C: BTC, ETH, SPX; D: SPX
    assert np.allclose(r.accounts["mm"], 0.8 * r.accounts["im"])
    assert set(r.net_greeks.columns) >= {"account", "underlying", "delta_cash", "vega_1volpt"}
    assert (r.worst_scenarios["pnl"] * r.worst_scenarios["weight"] <= 0).all()


def test_margin_currency_rule(results):
    cur = results["greeks-default"].accounts.set_index("account")["currency"]
    assert cur["A"] == "USD"  # linear only
    assert cur["B"] == "BTC"  # all coin-settled in BTC
    assert cur["C"] == "USD"  # mixed: USD


def test_explain_summary_and_pnl_matrix(results):
    r = results["greeks-default"]
    text = r.explain("B")
    assert "Account B" in text and "BTC" in text and "scan" in text and "Isolated" in text
    pm = r.pnl_matrix("B")
    assert pm.shape == (r.model.params.grid.n_scenarios, 4)
    w = r.worst_scenarios.set_index("account").loc["B"]
    assert pm.sum(axis=1).iloc[int(w["scenario"])] == pytest.approx(w["pnl"], rel=1e-12)
    s = r.summary()
    assert set(s["currency"]) == {"USD", "BTC"}


@pytest.mark.parametrize("model", MODELS)
def test_attribution_sums_to_im(results, model):
    r = results[model]
    at = r.attribution()
    assert len(at) == len(sample_book())
    assert list(at["position"]) == list(sample_book().index)
    tot = at.groupby("account")["contribution"].sum()
    im = r.accounts.set_index("account")["im"]
    assert np.allclose(tot[im.index], im, rtol=1e-12, atol=1e-9)


@SET
@given(books, st.sampled_from(MODELS))
def test_margin_is_non_negative_and_attribution_adds_up(b, model):
    r = gm.compute_margin(b, MK, OPEN[model])
    acc = r.accounts
    assert (acc["im"] >= 0).all() and (acc["mm"] >= 0).all() and (acc["isolated_im"] >= 0).all()
    tot = r.attribution().groupby("account")["contribution"].sum()
    assert np.allclose(tot[acc["account"]], acc["im"], rtol=1e-10, atol=1e-9)


@SET
@given(books, st.sampled_from(SCAN_MODELS))
def test_cross_never_exceeds_isolated_for_scan_models(b, model):
    acc = gm.compute_margin(b, MK, OPEN[model]).accounts
    assert (acc["im"] <= acc["isolated_im"] * (1 + 1e-10) + 1e-9).all()


@SET
@given(books, st.floats(0.1, 10.0))
def test_scan_scales_with_quantity(b, k):
    r1 = gm.compute_margin(b, MK, "greeks-default").accounts
    b2 = b.copy()
    b2["quantity"] = b2["quantity"] * k
    r2 = gm.compute_margin(b2, MK, "greeks-default").accounts
    assert np.allclose(r2["scan"], k * r1["scan"], rtol=1e-9, atol=1e-9)
    assert np.allclose(r2["delta"], k * r1["delta"], rtol=1e-9, atol=1e-9)


@SET
@given(books, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(b, rnd):
    idx = list(b.index)
    rnd.shuffle(idx)
    r1 = gm.compute_margin(b, MK, "greeks-default").accounts
    r2 = gm.compute_margin(b.loc[idx], MK, "greeks-default").accounts
    num = ["im", "mm", "isolated_im", "scan", "delta", "gamma", "vega"]
    assert np.allclose(r1[num], r2[num], rtol=1e-10, atol=1e-9)


@SET
@given(books)
def test_whole_book_equals_account_by_account(b):
    whole = gm.compute_margin(b, MK, "greeks-default").accounts.set_index("account")
    for acc, sub in b.groupby("account"):
        one = gm.compute_margin(sub, MK, "greeks-default").accounts.set_index("account")
        assert one.loc[acc, "im"] == pytest.approx(whole.loc[acc, "im"], rel=1e-12, abs=1e-12)
        assert one.loc[acc, "isolated_im"] == pytest.approx(whole.loc[acc, "isolated_im"], rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("t", TEMPLATES, ids=lambda t: f"{t[0]}-{t[1]}-{t[2]}-{t[6]}")
def test_offsetting_positions_carry_no_requirement(t):
    b = book([_row(t, "X", 3.0), _row(t, "X", -3.0)])
    acc = gm.compute_margin(b, MK, "greeks-default").accounts
    assert acc["im"].iloc[0] == pytest.approx(0.0, abs=1e-9)
    assert acc["isolated_im"].iloc[0] > 0


@settings(max_examples=30, deadline=None)
@given(st.sampled_from(["SPX", "BTC", "ETH"]), st.sampled_from(["call", "put"]), st.floats(0.5, 1.6),
       st.integers(0, 2), st.floats(0.01, 50), st.sampled_from(["linear", "inverse"]))
def test_house_model_long_option_never_needs_more_than_its_premium(u, ot, mny, e, q, settle):
    if u == "SPX":
        settle = "linear"
    spot = {"SPX": 6000.0, "BTC": 95000.0, "ETH": 3500.0}[u]
    b = book([row("L", u, "option", ot, round(spot * mny), e, q, 1, settle)])
    r = gm.compute_margin(b, MK, "greeks-default")
    premium = price_positions(b, MK)["value_ccy"].iloc[0]
    assert r.accounts["im"].iloc[0] <= premium * (1 + 1e-12) + 1e-12


def test_deribit_standard_is_isolated(results):
    acc = results["deribit-sm"].accounts
    assert np.allclose(acc["im"], acc["isolated_im"], rtol=1e-12)
    assert (acc["mm"] <= acc["im"] + 1e-12).all()


def test_deribit_standard_short_call_by_hand():
    b = book([row("S", "BTC", "option", "call", 110000, 1, -2.0, 1, "inverse")])
    r = gm.compute_margin(b, MK, OPEN["deribit-sm"]).accounts
    mark = price_positions(b, MK)["value_ccy"].iloc[0] / -2.0
    otm = (110000 - 95000) / 95000
    assert r["im"].iloc[0] == pytest.approx(2 * (max(0.15 - otm, 0.10) + mark), rel=1e-12)
    assert r["mm"].iloc[0] == pytest.approx(2 * (0.075 + mark), rel=1e-12)
    assert r["currency"].iloc[0] == "BTC"


def test_tims_floor_and_class_offsets():
    tiny = book([row("T", "SPX", "option", "call", 9000, 0, 2.0, 100)])
    acc = gm.compute_margin(tiny, MK, OPEN["tims-pm"]).accounts
    assert acc["im"].iloc[0] == pytest.approx(0.375 * 100 * 2)  # far OTM long call: the floor binds
    # SPX long put against RUT short put: both broad-based indices, 90% of the gain offsets
    pair = book([row("P", "SPX", "option", "put", 6000, 1, 10, 100),
                 row("P", "RUT", "option", "put", 2400, 1, -25, 100)])
    r = gm.compute_margin(pair, MK, OPEN["tims-pm"])
    units = r.by_underlying.set_index("underlying")["scan"]
    assert r.accounts["im"].iloc[0] < units.sum()
    assert r.accounts["im"].iloc[0] >= units.max() - 0.9 * units.sum()


def test_position_without_vol_is_rejected_or_collected():
    mk = market(btc_vol=False)
    b = sample_book()
    with pytest.raises(MarketDataError, match="BTC"):
        gm.compute_margin(b, mk, "greeks-default")
    r = gm.compute_margin(b, mk, "greeks-default", errors="collect")
    acc = r.accounts.set_index("account")
    assert acc.loc["B", "error"] and "vol" in acc.loc["B", "error"]
    assert np.isnan(acc.loc["B", "im"]) and np.isnan(acc.loc["C", "im"])  # C holds a BTC option too
    good = gm.compute_margin(b[b["account"].isin(["A", "D"])], MK, "greeks-default").accounts.set_index("account")
    assert acc.loc["A", "im"] == pytest.approx(good.loc["A", "im"], rel=1e-12)
    assert acc.loc["A", "error"] is None or pd.isna(acc.loc["A", "error"])


@pytest.mark.parametrize("model", MODELS)
def test_margin_change_equals_a_full_recompute(model):
    b = sample_book()
    trades = book([row("B", "BTC", "option", "put", 80000, 1, -4, 1, "inverse"),
                   row("A", "SPX", "future", expiry=1, quantity=-3, multiplier=50),
                   row("NEW", "ETH", "option", "call", 4000, 1, -1, 1, "inverse")])
    ch = gm.margin_change(b, MK, OPEN[model], trades).set_index("account")
    assert set(ch.index) == {"A", "B", "NEW"}
    before = gm.compute_margin(b, MK, OPEN[model]).accounts.set_index("account")
    after = gm.compute_margin(pd.concat([b, trades], ignore_index=True), MK, OPEN[model]).accounts.set_index("account")
    for a in ("A", "B"):
        assert ch.loc[a, "im_before"] == pytest.approx(before.loc[a, "im"], rel=1e-9)
        assert ch.loc[a, "mm_before"] == pytest.approx(before.loc[a, "mm"], rel=1e-9)
    for a in ("A", "B", "NEW"):
        assert ch.loc[a, "im_after"] == pytest.approx(after.loc[a, "im"], rel=1e-9)
        assert ch.loc[a, "mm_after"] == pytest.approx(after.loc[a, "mm"], rel=1e-9)
    assert ch.loc["NEW", "im_before"] == 0.0


def test_bundled_book_and_collateral():
    ex = gm.datasets.load_example_book()
    from greeksmargin.book.collateral import load_example_collateral

    r = gm.compute_margin(ex.positions, ex.market, "greeks-default", collateral=load_example_collateral())
    acc = r.accounts
    assert acc["error"].isna().all() and (acc["im"] > 0).all()
    assert {"collateral_im", "excess_im"} <= set(acc.columns)
    assert (acc["saving"] >= -1e-9).all()


def test_chunking_does_not_change_the_result():
    b = sample_book()
    r1 = gm.compute_margin(b, MK, "greeks-default").accounts
    r2 = gm.compute_margin(b, MK, "greeks-default", chunk=2).accounts
    assert np.allclose(r1[["im", "isolated_im"]], r2[["im", "isolated_im"]], rtol=1e-13)


@pytest.mark.parametrize("model", MODELS)
def test_compiled_kernel_equals_the_numpy_reference(model):
    b = sample_book()
    a = gm.compute_margin(b, MK, OPEN[model], backend="numba")
    r = gm.compute_margin(b, MK, OPEN[model], backend="numpy")
    num = ["im", "mm", "isolated_im"]
    assert np.allclose(a.accounts[num], r.accounts[num], rtol=1e-12, atol=1e-9)
    assert np.allclose(a.by_underlying["scan"] if "scan" in a.by_underlying else 0,
                       r.by_underlying["scan"] if "scan" in r.by_underlying else 0, rtol=1e-12, atol=1e-9)
    assert list(a.accounts["worst_scenario"]) == list(r.accounts["worst_scenario"])
    assert np.allclose(a.attribution()["contribution"], r.attribution()["contribution"], rtol=1e-10, atol=1e-8)


def test_precomputed_arrays_give_the_same_margin_and_moved_arrays_the_moved_market():
    from greeksmargin.book.positions import load_positions
    from greeksmargin.risk.greeks import market_arrays

    ex = gm.datasets.load_example_book()
    pos, mk = ex.positions, ex.market
    base = gm.compute_margin(pos, mk, "greeks-default").accounts
    same = gm.compute_margin(pos, mk, "greeks-default", arrays=market_arrays(pos, mk)).accounts
    pd.testing.assert_frame_equal(same, base)
    # SPX-only accounts at SPX -5%: inputs moved per position equal a moved snapshot (USD accounts, no FX)
    spx = load_positions(pos[pos["account"].isin(["SPX-DESK", "SPX-NAKEDPUT"])])
    moved_mk = mk.bumped("SPX", spot_rel=-0.05)
    arr = dict(market_arrays(spx, moved_mk))
    got = gm.compute_margin(spx, mk, "greeks-default", arrays=arr).accounts
    want = gm.compute_margin(spx, moved_mk, "greeks-default").accounts
    np.testing.assert_allclose(got["im"], want["im"], rtol=1e-12)
    assert not np.allclose(got["im"], base.set_index("account").loc[list(got["account"]), "im"])
    with pytest.raises(gm.errors.InputError, match="rows for"):
        gm.compute_margin(pos, mk, "greeks-default", arrays={k: v[:3] if k != "underlyings" else v
                                                           for k, v in market_arrays(pos, mk).items()})
