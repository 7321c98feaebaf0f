import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.datasets import load_example_book
from greeksmargin.errors import InputError
from greeksmargin.risk.aggregation import (
    CASH_GREEKS,
    SIMM_TENORS,
    aggregate_greeks,
    expiry_bucket,
    tenor_weights,
    to_crif,
)
from greeksmargin.risk.greeks import price_positions

BOOK = load_example_book()
PRICED = price_positions(BOOK.positions, BOOK.market)


def test_expiry_bucket_boundaries():
    days = np.array([0.0, 6.99, 7.0, 29.9, 30.0, 89.0, 90.0, 179.0, 180.0, 364.9, 365.0, 4000.0, np.nan])
    got = list(expiry_bucket(days / 365))
    assert got == [
        "0-7d",
        "0-7d",
        "7-30d",
        "7-30d",
        "30-90d",
        "30-90d",
        "90-180d",
        "90-180d",
        "180-365d",
        "180-365d",
        ">1y",
        ">1y",
        "none",
    ]


@pytest.mark.parametrize("by", [("account", "underlying"), ("underlying", "expiry_bucket"), "account", ()])
def test_aggregate_sums_to_book_totals(by):
    agg = aggregate_greeks(PRICED, by=by)
    for c in CASH_GREEKS:
        assert agg[c].sum() == pytest.approx(PRICED[c].sum(), rel=1e-12, abs=1e-6)
    assert agg["n_positions"].sum() == len(PRICED)


def test_aggregate_by_account_underlying_and_coins():
    agg = aggregate_greeks(PRICED, by="account,underlying").set_index(["account", "underlying"])
    sel = (PRICED["account"] == "SPX-DESK") & (PRICED["underlying"] == "SPX")
    assert agg.loc[("SPX-DESK", "SPX"), "delta_cash"] == pytest.approx(PRICED.loc[sel, "delta_cash"].sum())
    btc = (PRICED["account"] == "BTC-COVCALL") & (PRICED["settlement"] == "inverse")
    assert agg.loc[("BTC-COVCALL", "BTC"), "coin_delta_BTC"] == pytest.approx(PRICED.loc[btc, "coin_delta"].sum())
    assert np.isnan(agg.loc[("SPX-DESK", "SPX"), "coin_delta_BTC"])


def test_expiry_buckets_are_ordered():
    agg = aggregate_greeks(PRICED, by=["underlying", "expiry_bucket"])
    spx = list(agg.loc[agg["underlying"] == "SPX", "expiry_bucket"])
    assert spx == sorted(spx, key=["0-7d", "7-30d", "30-90d", "90-180d", "180-365d", ">1y", "none"].index)


def test_unknown_group_column():
    with pytest.raises(InputError, match="column 'desk': cannot group by unknown column"):
        aggregate_greeks(PRICED, by=["desk"])


@settings(max_examples=50, deadline=None)
@given(t=st.floats(0.0, 40.0))
def test_tenor_weights_split_linearly(t):
    w = tenor_weights([t])[0]
    nodes = np.array([x for _, x in SIMM_TENORS])
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all() and (w > 0).sum() <= 2
    # the weighted tenor reproduces the expiry within the tenor range
    assert float(w @ nodes) == pytest.approx(float(np.clip(t, nodes[0], nodes[-1])), rel=1e-12)


def test_tenor_weight_examples():
    w = tenor_weights([0.25, 0.375, 0.01])
    assert w[0][2] == 1.0
    assert w[1][2] == pytest.approx(0.5) and w[1][3] == pytest.approx(0.5)
    assert w[2][0] == 1.0


def _sticky_strike_market():
    from dataclasses import replace

    from greeksmargin.book.market import MarketSnapshot

    m = BOOK.market
    opt = PRICED[PRICED["kind"] == "option"]
    unders = {
        u: replace(m[u], instrument_vols=dict(zip(g["instrument"], g["vol"]))) for u, g in opt.groupby("underlying")
    }
    return MarketSnapshot(m.valuation_time, unders, m.fx)


def test_crif_delta_equals_one_percent_bump():
    crif = to_crif(PRICED)
    frozen = _sticky_strike_market()  # vols held per instrument: the delta is a sticky-strike partial
    assert list(crif.columns) == ["ProductClass", "RiskType", "Qualifier", "Bucket", "Label1", "Label2", "AmountUSD"]
    delta = crif[crif["RiskType"] == "Risk_Equity"].set_index("Qualifier")
    assert set(delta["Label1"]) == {""}
    for u in ("BTC", "ETH", "SPX"):
        up = price_positions(BOOK.positions, frozen.bumped(u, spot_rel=0.0001))
        dn = price_positions(BOOK.positions, frozen.bumped(u, spot_rel=-0.0001))
        sel = (PRICED["underlying"] == u) & PRICED["kind"].isin(["future", "perpetual"])
        # futures/perps: no premium, their P&L is the price change x size
        v_up = up["value_usd"].sum() + ((up["price"] - PRICED["price"]) * PRICED["size"])[sel].sum()
        v_dn = dn["value_usd"].sum() + ((dn["price"] - PRICED["price"]) * PRICED["size"])[sel].sum()
        bump_1pct = (v_up - v_dn) / 2 / 0.01  # central difference of +-0.01%, scaled to a 1% move
        assert delta.loc[u, "AmountUSD"] == pytest.approx(PRICED.loc[PRICED["underlying"] == u, "delta_1pct"].sum())
        assert delta.loc[u, "AmountUSD"] == pytest.approx(bump_1pct, rel=1e-5, abs=1e-3)


def test_crif_vega_split_sums_to_total():
    crif = to_crif(PRICED)
    vega = crif[crif["RiskType"] == "Risk_EquityVol"]
    assert set(vega["Label1"]) <= {lab for lab, _ in SIMM_TENORS}
    for u in ("BTC", "ETH", "SPX"):
        total = PRICED.loc[PRICED["underlying"] == u, "vega_1volpt"].sum()
        assert vega.loc[vega["Qualifier"] == u, "AmountUSD"].sum() == pytest.approx(total, rel=1e-12)


def test_crif_buckets_and_overrides():
    crif = to_crif(PRICED)
    buckets = crif.groupby("Qualifier")["Bucket"].first().to_dict()
    assert buckets == {"BTC": "Residual", "ETH": "Residual", "SPX": "11"}
    crif2 = to_crif(PRICED, qualifier_map={"SPX": "US78378X1072"}, bucket_map={"BTC": "Residual", "ETH": "9"})
    assert set(crif2["Qualifier"]) == {"BTC", "ETH", "US78378X1072"}
    b2 = crif2.groupby("Qualifier")["Bucket"].first().to_dict()
    assert b2 == {"BTC": "Residual", "ETH": "9", "US78378X1072": "11"}
    assert set(crif["ProductClass"]) == {"Equity"} and set(crif["Label2"]) == {""}


def test_crif_single_option_row():
    one = PRICED[PRICED["kind"] == "option"].iloc[[0]]
    crif = to_crif(one)
    t = one["time_to_expiry"].iloc[0]
    w = tenor_weights([t])[0]
    vega = crif[crif["RiskType"] == "Risk_EquityVol"]
    assert len(vega) == int((w > 0).sum())
    expect = pd.Series(
        w[w > 0] * one["vega_1volpt"].iloc[0], index=[lab for (lab, _), x in zip(SIMM_TENORS, w) if x > 0]
    )
    assert np.allclose(vega.set_index("Label1")["AmountUSD"].loc[expect.index], expect)


def test_crif_export_per_trade_nets_back_to_the_book_export():
    by_trade = to_crif(PRICED, trade_ids=True)
    book = to_crif(PRICED)
    assert list(by_trade.columns[:2]) == ["TradeID", "PortfolioID"]
    assert set(by_trade["PortfolioID"]) == set(PRICED["account"].astype(str))
    assert set(by_trade["TradeID"]) <= set(PRICED["instrument"].astype(str))
    keys = ["RiskType", "Qualifier", "Label1"]
    netted = by_trade.groupby(keys)["AmountUSD"].sum()
    assert netted.reindex(book.set_index(keys).index).to_numpy() == pytest.approx(book["AmountUSD"].to_numpy())
