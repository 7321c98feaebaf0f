import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from margin_fixtures import market, sample_book

from greeksmargin.pricing import black76, inverse_price
from greeksmargin.risk.greeks import market_arrays, price_positions
from greeksmargin.risk.scenarios import ScenarioGrid, VolShockRule, revalue, scenario_pnl, sensitivities

RULE = VolShockRule(up=0.45, down=0.3, short_power=0.3, long_power=0.13, min_vol=0.01)


@pytest.fixture(scope="module")
def arrays():
    return market_arrays(sample_book(), market())


def test_deribit_like_grid_has_27_ordered_scenarios_and_weighted_tails():
    g = ScenarioGrid.build(range_down=0.16, tail_moves=[-0.66, 0.5], tail_weight=1.0,
                           tail_weight_rule="range_over_move", vol_rule=RULE)
    assert g.n_scenarios == 27 + 2
    core = ~g.is_tail
    assert np.allclose(np.unique(g.spot_move[core]), np.linspace(-0.16, 0.16, 9))
    assert list(g.vol_dir[:3]) == [1, 0, -1]
    assert np.all(np.diff(g.spot_move[core]) >= 0)
    assert np.allclose(g.weights[g.is_tail], [0.16 / 0.66, 0.16 / 0.5])
    assert np.all(g.weights[core] == 1.0)
    assert g.labels[0] == "-16% vol up"
    assert len(g.to_frame()) == 29


def test_tims_grid_has_ten_points_without_zero():
    g = ScenarioGrid.build(range_down=0.08, range_up=0.06, points_down=5, include_zero=False, vol_states=["none"])
    assert g.n_scenarios == 10
    assert 0.0 not in g.spot_move
    assert g.spot_move.min() == pytest.approx(-0.08) and g.spot_move.max() == pytest.approx(0.06)


def test_vol_shock_term_rule():
    t = np.array([7, 30, 60, 0.1]) / 365
    mult = RULE.multiplier(t)
    assert mult[0] == pytest.approx((30 / 7) ** 0.3)
    assert mult[1] == pytest.approx(1.0)
    assert mult[2] == pytest.approx((30 / 60) ** 0.13)
    assert mult[3] == pytest.approx(30.0**0.3)  # DTE floored at 1 day
    v = RULE.shocked(np.full(4, 0.5), t, np.array([1, 0, -1]))
    assert np.allclose(v[0], 0.5 * (1 + 0.45 * mult))
    assert np.allclose(v[1], 0.5)
    assert np.allclose(v[2], np.maximum(0.5 * (1 - 0.3 * mult), 0.01))
    absolute = VolShockRule(kind="absolute", up=0.05, down=0.05, min_vol_up=0.3)
    va = absolute.shocked(np.array([0.1, 0.5]), np.array([0.1, 0.1]), np.array([1, -1]))
    assert np.allclose(va, [[0.3, 0.55], [0.05, 0.45]])


def _reference_pnl(a, m, vol):
    """Plain loop, one position at a time, from the textbook formulas (inverse options as on Deribit)."""
    out = np.zeros(len(a["size"]))
    for i in range(len(out)):
        kc, q, inv = a["kind_code"][i], a["size"][i], a["inverse"][i]
        F, S = a["forward"][i], a["spot"][i]
        if kc == 0:
            args = (a["strike"][i], a["T"][i])
            if inv:
                v0 = inverse_price(a["is_call"][i], F, *args, a["vol"][i])
                v1 = inverse_price(a["is_call"][i], F * (1 + m), *args, vol[i])
                out[i] = q * float(v1 - v0)
            else:
                c = "call" if a["is_call"][i] else "put"
                v0 = black76(c, F, *args, a["vol"][i], a["rate"][i]).price
                v1 = black76(c, F * (1 + m), *args, vol[i], a["rate"][i]).price
                out[i] = q * float(v1 - v0)
        elif kc == 3:
            out[i] = 0.0 if inv else q * S * m
        else:
            ref = S * a["perp_ratio"][i] if kc == 2 else F
            out[i] = q * (1 - 1 / (1 + m)) if inv else q * ref * m
    return out


def test_revalue_matches_a_plain_loop_for_every_kind(arrays):
    g = ScenarioGrid.build(range_down=0.2, points_down=2, tail_moves=[-0.5, 1.0], vol_rule=RULE)
    pnl = revalue(arrays, g)
    assert pnl.shape == (g.n_scenarios, len(arrays["size"]))
    vols = RULE.shocked(arrays["vol"], arrays["T"], g.vol_dir)
    for s in range(g.n_scenarios):
        ref = _reference_pnl(arrays, g.spot_move[s], vols[s])
        assert np.allclose(pnl[s], ref, rtol=1e-9, atol=1e-9)


def test_revalue_is_zero_at_the_centre_and_chunk_invariant(arrays):
    g = ScenarioGrid.build(range_down=0.1, vol_rule=RULE)
    pnl = revalue(arrays, g)
    centre = (g.spot_move == 0) & (g.vol_dir == 0)
    assert np.all(pnl[centre] == 0.0)
    assert np.array_equal(revalue(arrays, g, chunk=3), pnl)


def test_inverse_future_coin_pnl():
    a = {"kind_code": np.array([1]), "is_call": np.array([False]), "strike": np.array([np.nan]),
         "T": np.array([0.1]), "forward": np.array([100.0]), "spot": np.array([99.0]), "vol": np.array([np.nan]),
         "rate": np.array([0.0]), "size": np.array([2.0]), "inverse": np.array([True]), "perp_ratio": np.array([1.0])}
    p = scenario_pnl(a, np.array([-0.5, 0.25]), None)
    assert np.allclose(p[:, 0], [2 * (1 - 1 / 0.5), 2 * (1 - 1 / 1.25)])


def test_finite_difference_greeks_match_the_pricing_greeks():
    pos = sample_book()
    mk = market()
    a = market_arrays(pos, mk)
    pr = price_positions(pos, mk)
    d, g, v = sensitivities(a)
    opt = (a["kind_code"] == 0) & ~a["inverse"]
    # central differences with a 1e-4 relative step: truncation error ~1e-6 relative
    assert np.allclose(d[opt], pr["delta_cash"].to_numpy()[opt], rtol=2e-5)
    assert np.allclose(g[opt] * 1e-4, pr["gamma_cash_1pct"].to_numpy()[opt], rtol=1e-4)
    assert np.allclose(v[opt] * 0.01, pr["vega_1volpt"].to_numpy()[opt], rtol=2e-5)
    inv = a["inverse"] & (a["kind_code"] <= 2)
    assert np.allclose(d[inv], pr["coin_delta"].to_numpy()[inv], rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(k=st.floats(0.01, 100.0), m=st.floats(-0.9, 3.0), vdir=st.sampled_from([-1, 0, 1]))
def test_pnl_is_linear_in_quantity(arrays, k, m, vdir):
    vols = RULE.shocked(arrays["vol"], arrays["T"], np.array([vdir]))
    p1 = scenario_pnl(arrays, np.array([m]), vols)
    scaled = dict(arrays, size=arrays["size"] * k)
    pk = scenario_pnl(scaled, np.array([m]), vols)
    assert np.allclose(pk, k * p1, rtol=1e-12, atol=1e-9)
