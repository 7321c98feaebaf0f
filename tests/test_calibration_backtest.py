import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from greeksmargin.calibration.backtest import PORTFOLIOS, Leg, realised_pnl, run_backtest
from greeksmargin.calibration.history import load_history
from greeksmargin.calibration.model_file import build_model
from greeksmargin.calibration.sweep import calibrated_model, margin_function
from greeksmargin.errors import InputError
from greeksmargin.pricing import black76_price

DELTA_ONE = {k: PORTFOLIOS[k] for k in ("long_future", "short_future")}


@pytest.fixture(scope="module")
def sp500():
    return load_history("sp500")


@pytest.fixture(scope="module")
def models(sp500):
    """The house model calibrated on the S&P 500 (HS, 99%, 2 days) and the same with every shock halved."""
    full, _ = calibrated_model(sp500, confidence=0.99, mpor=2, method="hs")
    half, _ = calibrated_model(sp500, confidence=0.99, mpor=2, method="hs", scale=0.5)
    return build_model(full), build_model(half)


def test_realised_pnl_matches_direct_revaluation(sp500):
    days = np.array([10, 2000, 4000])
    ports = {"fut": (Leg("future", 2.0),), "put": (Leg("option", -1.0, "put", 0.95),)}
    pnl = realised_pnl(sp500, days, ports, mpor=2, tenor_days=30)
    s, v, d = sp500["price"].to_numpy(), sp500["vol"].to_numpy(), sp500["date"]
    for k, i in enumerate(days):
        assert pnl[k, 0] == pytest.approx(2.0 * (s[i + 2] - s[i]), rel=1e-12)
        dt = (d[i + 2] - d[i]).days / 365
        v0 = black76_price(False, s[i], 0.95 * s[i], 30 / 365, v[i])
        v1 = black76_price(False, s[i + 2], 0.95 * s[i], 30 / 365 - dt, v[i + 2])
        assert pnl[k, 1] == pytest.approx(-(v1 - v0), rel=1e-10)


def test_stress_rule_daily_backtest_kupiec(sp500, models):
    """Full daily run, the house model's scan alone: calibrated futures pass Kupiec, halved shocks fail."""
    full, half = models
    res = run_backtest(sp500, margin_function(full, sp500, "stress-grid"), confidence=0.99, mpor=2)
    s = res.summary.set_index("portfolio")
    assert s.at["long_future", "observations"] == len(sp500) - 2
    assert s.at["long_future", "kupiec_p"] > 0.05 and s.at["short_future", "kupiec_p"] > 0.05
    assert (s.drop(index="all")["excess_p"] > 0.05).all()  # no portfolio breached too often
    res_h = run_backtest(sp500, margin_function(half, sp500, "stress-grid"), confidence=0.99, mpor=2)
    sh = res_h.summary.set_index("portfolio")
    assert sh.at["long_future", "kupiec_p"] < 0.05 and sh.at["short_future", "kupiec_p"] < 0.05
    assert sh.at["all", "excess_p"] < 1e-6
    assert {"peak_to_trough_1y", "efficiency", "christoffersen_p"} <= set(s.columns)
    assert (s.drop(index="all")["peak_to_trough_1y"] >= 1).all()


def test_house_model_engine_backtest_kupiec(sp500, models):
    """compute_margin with the calibrated house model, weekly test days 1999-2018 (the CLI runs daily)."""
    full, half = models
    res = run_backtest(sp500, margin_function(full, sp500, "engine"), confidence=0.99, mpor=2, step=5,
                       portfolios=DELTA_ONE)
    s = res.summary.set_index("portfolio")
    assert s.at["long_future", "observations"] > 1000
    assert s.at["long_future", "kupiec_p"] > 0.05
    assert (s["excess_p"] > 0.05).all()
    res_h = run_backtest(sp500, margin_function(half, sp500, "engine"), confidence=0.99, mpor=2, step=10,
                         portfolios=DELTA_ONE)
    sh = res_h.summary.set_index("portfolio")
    assert sh.at["long_future", "kupiec_p"] < 0.05 and sh.at["short_future", "kupiec_p"] < 0.05
    assert sh.at["all", "excess_p"] < 1e-6


def test_daily_table_layout(sp500, models):
    res = run_backtest(sp500, margin_function(models[0], sp500, "stress-grid"), confidence=0.99, mpor=2,
                       start="2008-01-01", end="2008-12-31")
    d = res.daily
    assert set(d["portfolio"]) == set(PORTFOLIOS)
    assert d["date"].min() >= pd.Timestamp("2008-01-01") and d["date"].max() <= pd.Timestamp("2008-12-31")
    assert (d["breach"] == (d["loss"] > d["im"])).all() and (d["im"] >= 0).all()
    assert res.settings["start"].startswith("2008-01")


def test_bad_backtest_arguments(sp500, models):
    f = margin_function(models[0], sp500, "stress-grid")
    with pytest.raises(InputError, match="MPOR"):
        run_backtest(sp500, f, confidence=0.99, mpor=0)
    with pytest.raises(InputError, match="no test days"):
        run_backtest(sp500, f, confidence=0.99, mpor=2, start="2030-01-01")
    with pytest.raises(InputError, match="unknown kind"):
        run_backtest(sp500, f, confidence=0.99, mpor=2, portfolios={"x": (Leg("swap", 1.0),)})


def test_dynamic_fhs_passes_coverage_and_independence_but_is_more_procyclical(sp500):
    from greeksmargin.calibration.sweep import fhs_rescaled_margin

    dyn = fhs_rescaled_margin("greeks-default", sp500, confidence=0.99, mpor=2, lam=0.94, margin="stress-grid")
    res = run_backtest(sp500, dyn, confidence=0.99, mpor=2, step=2, portfolios=DELTA_ONE)  # non-overlapping
    s = res.summary.set_index("portfolio")
    for p in DELTA_ONE:
        assert s.at[p, "kupiec_p"] > 0.05 and s.at[p, "christoffersen_p"] > 0.05
    full, _ = calibrated_model(sp500, confidence=0.99, mpor=2, method="hs")
    static = run_backtest(sp500, margin_function(build_model(full), sp500, "stress-grid"), confidence=0.99, mpor=2,
                          step=2, portfolios=DELTA_ONE).summary.set_index("portfolio")
    assert static.at["long_future", "christoffersen_p"] < 0.05  # static shocks: breaches cluster in crises
    assert s.at["long_future", "peak_to_trough_1y"] > 2 * static.at["long_future", "peak_to_trough_1y"]
    assert s.at["long_future", "efficiency"] < static.at["long_future", "efficiency"]


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.permutations(list(PORTFOLIOS)), st.integers(1, 4))
def test_portfolio_order_and_subset_do_not_change_results(sp500, models, order, step):
    f = margin_function(models[0], sp500, "stress-grid")
    kw = {"confidence": 0.99, "mpor": 2, "step": step, "start": "2008-06-01", "end": "2009-06-30"}
    a = run_backtest(sp500, f, portfolios={k: PORTFOLIOS[k] for k in order}, **kw).daily
    b = run_backtest(sp500, f, portfolios={order[0]: PORTFOLIOS[order[0]]}, **kw).daily
    a = a.set_index(["portfolio", "date"]).sort_index()
    pd.testing.assert_frame_equal(a.loc[[order[0]]], b.set_index(["portfolio", "date"]).sort_index())
