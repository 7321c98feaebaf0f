import numpy as np
import pandas as pd
import pytest

from greeksmargin.book.collateral import load_collateral, value_collateral
from greeksmargin.book.positions import load_positions
from greeksmargin.datasets import load_example_book
from greeksmargin.solvency.population import STRATEGIES, generate_population

MKT = load_example_book().market


@pytest.fixture(scope="module")
def pop():
    return generate_population(300, seed=3, market=MKT)


def test_deterministic_for_a_seed(pop):
    p2, c2 = generate_population(300, seed=3, market=MKT)
    pd.testing.assert_frame_equal(pop[0], p2)
    pd.testing.assert_frame_equal(pop[1], c2)
    p3, _ = generate_population(300, seed=4, market=MKT)
    assert not pop[0].equals(p3)


def test_tables_are_valid_inputs(pop):
    pos, coll = pop
    p = load_positions(pos, valuation_time=MKT.valuation_time)
    c = load_collateral(coll)
    assert p["account"].nunique() == 300
    assert set(p["account"]) <= set(c["account"])
    assert set(p["underlying"]) <= set(MKT.underlyings)
    assert (value_collateral(c, MKT)["value_usd"] > 0).all()


def test_strategy_mix_hedged_and_naked(pop):
    pos, _ = pop
    strategies = pos.attrs["strategies"]
    used = {s for v in strategies.values() for s in v.split("+")}
    assert used <= set(STRATEGIES)
    assert {"covered_call", "short_put", "leveraged_perp"} <= used
    assert {"option", "perpetual"} <= set(pos["kind"])
    # coin-margined (inverse) and USD-margined accounts both present
    assert {"inverse", "linear"} <= set(pos["settlement"])


def test_size_distribution_is_heavy_tailed():
    pos, coll = generate_population(2000, seed=11, market=MKT)
    v = value_collateral(load_collateral(coll), MKT)["value_usd"]
    assert v.quantile(0.99) > 10 * v.median()


def test_model_top_up_opens_every_account_at_or_above_im():
    from greeksmargin.solvency.assess import assess_solvency

    pos, coll = generate_population(150, seed=5, market=MKT, model="greeks-default")
    st = assess_solvency(pos, MKT, load_collateral(coll), "greeks-default").accounts
    ok = st["equity_im"] >= st["im"] * (1 - 1e-9)
    assert ok.all(), st.loc[~ok, ["account", "equity_im", "im"]]
    assert set(st["status"]) == {"healthy"}


def test_bad_argument():
    with pytest.raises(ValueError, match="n_accounts"):
        generate_population(0, seed=1, market=MKT)


def test_leverage_varies(pop):
    pos, coll = pop
    p = load_positions(pos, valuation_time=MKT.valuation_time)
    from greeksmargin.risk.greeks import price_positions

    pr = price_positions(p, MKT)
    gross = (pr["size"].abs() * pr["spot"]).groupby(pr["account"]).sum()
    col = value_collateral(load_collateral(coll), MKT)["value_usd"]
    lev = (gross / col.reindex(gross.index)).replace([np.inf], np.nan).dropna()
    assert lev.quantile(0.9) > 2 * lev.quantile(0.1)
