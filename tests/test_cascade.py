import numpy as np
import pandas as pd
import pytest

from greeksmargin.book.collateral import load_collateral, load_example_collateral
from greeksmargin.book.positions import load_positions
from greeksmargin.datasets import load_example_book
from greeksmargin.errors import InputError
from greeksmargin.solvency.assess import simple_scan_margin
from greeksmargin.solvency.cascade import compare_cross_isolated, isolate, price_impact, run_cascade
from greeksmargin.solvency.population import generate_population

BOOK = load_example_book()
MKT = BOOK.market
FN = simple_scan_margin()


@pytest.fixture(scope="module")
def population():
    pos, coll = generate_population(200, seed=7, market=MKT)
    return load_positions(pos, valuation_time=MKT.valuation_time), load_collateral(coll)


def test_price_impact_models():
    f = np.array([-1e8, 4e8, 0.0])
    liq = np.array([1e9, 1e9, 1e9])
    np.testing.assert_allclose(price_impact(f, liq, "linear"), [-0.1, 0.4, 0.0])
    # square-root law beyond a linear region: sign(x) (sqrt(1 + 2|x|) - 1), never above the linear impact
    np.testing.assert_allclose(price_impact(f, liq, "sqrt"), [-(np.sqrt(1.2) - 1), np.sqrt(1.8) - 1, 0.0])
    assert abs(price_impact([-1e9], [1e9], "sqrt")[0]) < abs(price_impact([-1e9], [1e9], "linear")[0])
    assert price_impact([-5e9], [1e9], "linear")[0] == -0.95
    np.testing.assert_array_equal(price_impact(f, liq, "none"), 0.0)
    np.testing.assert_array_equal(price_impact(f, np.full(3, np.inf), "linear"), 0.0)
    with pytest.raises(InputError, match="impact model"):
        price_impact(f, liq, "cubic")


def test_cascade_is_deterministic_for_a_seed(population):
    pos, coll = population
    kw = dict(margin_fn=FN, shock=-0.3, underlying="BTC", liquidity={"BTC": 5e7, "ETH": 5e7, "SPX": 1e9})
    a = run_cascade(pos, MKT, coll, **kw)
    b = run_cascade(pos, MKT, coll, **kw)
    pd.testing.assert_frame_equal(a.rounds, b.rounds)
    pd.testing.assert_frame_equal(a.units, b.units)
    # and a population regenerated from the same seed gives the same cascade
    p2, c2 = generate_population(200, seed=7, market=MKT)
    c = run_cascade(load_positions(p2, valuation_time=MKT.valuation_time), MKT, load_collateral(c2), **kw)
    pd.testing.assert_frame_equal(a.rounds, c.rounds)


def test_cascade_terminates_and_feeds_on_itself(population):
    pos, coll = population
    r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=-0.3, liquidity=2e7, impact="sqrt", max_rounds=100)
    assert 1 <= r.n_rounds <= 100
    assert not r.hit_cap
    assert r.rounds["n_liquidated"].iloc[-1] == 0 or not np.any(r.rounds.filter(like="impact_").iloc[-1])
    # impact made prices fall further than the shock alone
    assert r.final_moves["BTC"] < -0.3
    # every unit liquidated at most once; round numbers within the run
    assert r.units["round"].between(0, r.n_rounds).all()
    assert r.summary()["units_liquidated"] == int(r.rounds["n_liquidated"].sum())


def test_round_cap_is_reported(population):
    pos, coll = population
    r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=-0.3, liquidity=1e6, impact="sqrt", max_rounds=1)
    assert r.n_rounds == 1 and r.hit_cap


@pytest.mark.parametrize("kw", [{"impact": "none"}, {"liquidity": float("inf")}])
def test_zero_impact_is_one_round(population, kw):
    pos, coll = population
    r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=-0.3, **kw)
    assert r.n_rounds == 1
    assert r.rounds["n_liquidated"].iloc[0] > 0
    assert r.final_moves["BTC"] == pytest.approx(-0.3)


def test_no_liquidation_is_one_round(population):
    from greeksmargin.solvency.assess import assess_solvency

    pos, coll = population
    st = assess_solvency(pos, MKT, coll, margin_fn=FN).accounts
    ok = set(st.loc[st["status"].isin(["healthy", "below_im"]), "account"])
    pos, coll = pos[pos["account"].isin(ok)], coll[coll["account"].isin(ok)]
    r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=0.0, liquidity=1e6)
    assert r.n_rounds == 1
    assert r.rounds["n_liquidated"].iloc[0] == 0
    assert (r.units["round"] == 0).all()


def test_shortfall_is_loss_beyond_collateral(population):
    pos, coll = population
    r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=-0.5, impact="none", slippage=0.01)
    u = r.units[r.units["round"] > 0]
    assert (u["shortfall_usd"] >= 0).all()
    assert (u.loc[u["equity_usd"] > 0, "shortfall_usd"] <= 0.01 * 1e12).all()
    assert r.total_shortfall_usd == pytest.approx(r.rounds["shortfall_usd"].sum())
    bankrupt = u[u["equity_usd"] <= 0]
    assert (bankrupt["shortfall_usd"] >= -bankrupt["equity_usd"] - 1e-6).all()


def test_isolate_splits_collateral_and_positions():
    pos = BOOK.positions
    coll = load_example_collateral()
    upos, ucol = isolate(pos, coll, FN, MKT)
    assert len(upos) == len(pos) and upos["account"].nunique() == len(pos)
    total = coll.groupby(["account", "asset"])["amount"].sum()
    owner = ucol["account"].str.rsplit("#", n=1).str[0]
    back = ucol.assign(account=owner).groupby(["account", "asset"])["amount"].sum()
    pd.testing.assert_series_equal(total.sort_index(), back.sort_index(), check_exact=False, rtol=1e-12)


def test_cross_versus_isolated_on_the_example_book():
    coll = load_example_collateral()
    cross, iso, comp = compare_cross_isolated(BOOK.positions, MKT, coll, "greeks-default", shock=-0.25,
                                              liquidity=5e8)
    assert list(comp["mode"]) == ["cross", "isolated"]
    assert comp.loc[1, "units"] == len(BOOK.positions)
    assert comp.loc[0, "units"] == BOOK.positions["account"].nunique()
    for r in (cross, iso):
        assert not r.hit_cap and r.n_rounds >= 1


def test_cli_population_then_cascade_html(tmp_path, capsys):
    import json

    from greeksmargin.cli import main

    out = tmp_path / "pop"
    assert main(["population", "--accounts", "60", "--seed", "2", "--out", str(out), "--model", "none"]) == 0
    capsys.readouterr()
    args = [str(out / "positions.csv"), str(out / "market.json"), "--collateral", str(out / "collateral.csv")]
    assert main(["cascade", *args, "--shock", "-0.3", "--format", "json", "--liquidity", "1e8"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [c["mode"] for c in doc["comparison"]] == ["cross", "isolated"]
    html = tmp_path / "c.html"
    assert main(["cascade", *args, "--shock", "-0.3", "--format", "html", "--out", str(html)]) == 0
    text = html.read_text()
    assert "Cross versus isolated margin" in text and text.count("data:image/png;base64") >= 2
