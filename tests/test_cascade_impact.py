"""The cascade moves only what liquidations move, within the impact the stated liquidity allows."""

import numpy as np
import pytest

from greeksmargin.book.collateral import load_collateral
from greeksmargin.book.positions import load_positions
from greeksmargin.datasets import load_example_book
from greeksmargin.solvency.cascade import price_impact, run_cascade
from greeksmargin.solvency.margin_fn import margin_function
from greeksmargin.solvency.population import generate_population

MKT = load_example_book().market
FN = margin_function("greeks-default")


@pytest.fixture(scope="module")
def population():
    pos, coll = generate_population(1500, seed=0, market=MKT, model="greeks-default")
    return load_positions(pos, valuation_time=MKT.valuation_time), load_collateral(coll)


@pytest.mark.parametrize("x", [1e-6, 1e-3, 0.01, 0.3, 1.0, 5.0])
@pytest.mark.parametrize("model", ["linear", "sqrt"])
def test_impact_never_exceeds_the_linear_rate(model, x):
    for sign in (-1.0, 1.0):
        imp = price_impact([sign * x * 1e9], [1e9], model)[0]
        assert np.sign(imp) == sign
        assert abs(imp) <= x + 1e-15
        assert abs(imp) <= 1.0


def test_sqrt_is_linear_for_small_flows_and_concave():
    small = price_impact([1e5], [1e9], "sqrt")[0]
    assert small == pytest.approx(1e-4, rel=1e-3)
    a, b = price_impact([1e9, 2e9], [1e9, 1e9], "sqrt")
    assert b < 2 * a  # each further dollar moves the price less


@pytest.mark.parametrize("impact", ["linear", "sqrt"])
@pytest.mark.parametrize("mode", ["cross", "isolated"])
def test_btc_only_shock_moves_others_only_by_liquidation_flows(population, impact, mode):
    pos, coll = population
    r = run_cascade(pos, MKT, coll, margin_fn=FN, shock=-0.25, underlying="BTC", impact=impact, mode=mode)
    assert r.n_rounds >= 2 and r.summary()["units_liquidated"] > 0
    mv = r.moves().set_index("underlying")
    for u in mv.index:
        rounds = r.rounds
        # every round's impact is the model's function of that round's flow, and within |flow| / L
        flows = rounds[f"flow_{u}"].to_numpy()
        imps = rounds[f"impact_{u}"].to_numpy()
        np.testing.assert_allclose(imps, price_impact(flows, np.full(len(flows), r.liquidity[u]), impact))
        assert np.all(np.abs(imps) <= np.abs(flows) / r.liquidity[u] + 1e-15)
        row = mv.loc[u]
        assert row["initial_shock"] == pytest.approx(-0.25 if u == "BTC" else 0.0, abs=1e-12)
        assert abs(row["impact"]) <= row["bound"] + 1e-12
        if row["gross_flow_usd"] == 0:
            assert row["final_move"] == pytest.approx(row["initial_shock"], abs=1e-15)
    # the unshocked underlyings move by a few percent at most (the old sqrt law gave ETH +134%, SPX +100%)
    assert abs(mv.loc["ETH", "final_move"]) < 0.05
    assert abs(mv.loc["SPX", "final_move"]) < 0.05
