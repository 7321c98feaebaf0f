"""American options: BAW and Bjerksund-Stensland against a binomial lattice, bounds, Greeks, dispatcher."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from greeksmargin.errors import ComputationError
from greeksmargin.pricing import american as am
from greeksmargin.pricing import black_scholes_merton, bsm_price
from greeksmargin.pricing.american import (
    american_greeks,
    american_price,
    bivariate_normal_cdf,
    early_exercise_regime,
    parse_exercise,
    price_vanilla,
    vanilla_greeks,
)
from greeksmargin.pricing.lattice import lattice_price

#: grid of the lattice comparison: S/K in [0.8, 1.25], T in [0.05, 1] y, vol in [0.1, 0.6], r, q in [0, 0.1]
option = st.tuples(
    st.booleans(),
    st.floats(np.log(0.8), np.log(1.25)),
    st.floats(0.05, 1.0),
    st.floats(0.1, 0.6),
    st.floats(0.0, 0.1),
    st.floats(0.0, 0.1),
)
#: stated tolerance against the lattice on that grid: 0.3% of the strike. Measured on 1,000 random draws against
#: a 2001-step Leisen-Reimer lattice: max |error| 0.13% K (BAW), 0.20% K (BS2002), 0.15% K (BS1993); the
#: 301-step lattice used here is within 0.004% K of the 2001-step one.
TOL_K = 3e-3
LATTICE_STEPS = 301


def _arrays(opts: list[tuple[bool, float, float, float, float, float]]) -> tuple[np.ndarray, ...]:
    a = np.array(opts, dtype=float)
    k = np.full(len(opts), 100.0)
    return a[:, 0] > 0.5, k * np.exp(a[:, 1]), k, a[:, 2], a[:, 3], a[:, 4], a[:, 5]


@settings(max_examples=25, deadline=None)
@given(st.lists(option, min_size=1, max_size=16))
def test_approximations_within_tolerance_of_lattice(opts):
    c, s, k, t, v, r, q = _arrays(opts)
    ref = lattice_price(c, s, k, t, v, r, q, n_steps=LATTICE_STEPS)
    for method in ("baw", "bs2002", "bs1993"):
        val = american_price(c, s, k, t, v, r, q, method=method)
        assert np.all(np.abs(val - ref) <= TOL_K * k), method
    # Bjerksund-Stensland values an exercise strategy: a lower bound (up to the lattice's own error)
    for method in ("bs2002", "bs1993"):
        assert np.all(american_price(c, s, k, t, v, r, q, method=method) <= ref + 5e-5 * k)


@settings(max_examples=25, deadline=None)
@given(st.lists(option, min_size=1, max_size=16))
def test_american_at_least_european_and_intrinsic_and_bounds(opts):
    c, s, k, t, v, r, q = _arrays(opts)
    euro = bsm_price(c, s, k, t, v, r, q)
    intrinsic = np.maximum(np.where(c, s - k, k - s), 0.0)
    for method in ("baw", "bs2002", "bs1993"):
        val = american_price(c, s, k, t, v, r, q, method=method)
        assert np.all(val >= euro - 1e-12)
        assert np.all(val >= intrinsic)
        assert np.all(np.where(c, val <= s, val <= k))


@settings(max_examples=15, deadline=None)
@given(st.lists(option, min_size=1, max_size=8))
def test_american_put_call_bounds_on_lattice_and_baw(opts):
    # S e^(-qT) - K <= C - P <= S - K e^(-rT) for American options with a continuous yield (Hull, ch. 17)
    _c, s, k, t, v, r, q = _arrays(opts)
    lat_c = lattice_price("call", s, k, t, v, r, q, n_steps=LATTICE_STEPS)
    lat_p = lattice_price("put", s, k, t, v, r, q, n_steps=LATTICE_STEPS)
    lo, hi = s * np.exp(-q * t) - k, s - k * np.exp(-r * t)
    assert np.all(lat_c - lat_p >= lo - 1e-9) and np.all(lat_c - lat_p <= hi + 1e-9)
    diff = american_price("call", s, k, t, v, r, q) - american_price("put", s, k, t, v, r, q)
    assert np.all(diff >= lo - 2 * TOL_K * k) and np.all(diff <= hi + 2 * TOL_K * k)


@settings(max_examples=25, deadline=None)
@given(st.lists(option, min_size=1, max_size=16))
def test_call_without_dividends_is_european(opts):
    _c, s, k, t, v, r, _q = _arrays(opts)
    euro = bsm_price(True, s, k, t, v, r, 0.0)
    for method in ("baw", "bs2002", "bs1993"):
        np.testing.assert_array_equal(american_price("call", s, k, t, v, r, 0.0, method=method), euro)
    lat = lattice_price("call", s, k, t, v, r, 0.0, n_steps=LATTICE_STEPS)
    np.testing.assert_allclose(lat, euro, atol=1e-3)


def test_lattice_european_converges_to_bsm():
    rng = np.random.default_rng(3)
    n = 50
    c = rng.random(n) < 0.5
    s, t, v = rng.uniform(80, 125, n), rng.uniform(0.05, 2, n), rng.uniform(0.1, 0.8, n)
    r, q = rng.uniform(0, 0.1, n), rng.uniform(0, 0.1, n)
    bsm = bsm_price(c, s, 100.0, t, v, r, q)
    lr = lattice_price(c, s, 100.0, t, v, r, q, exercise="european", n_steps=301)
    crr = lattice_price(c, s, 100.0, t, v, r, q, exercise="european", n_steps=800, scheme="crr")
    assert np.abs(lr - bsm).max() < 1e-4
    assert np.abs(crr - bsm).max() < 2e-2
    # American >= European on the lattice, and CRR agrees with LR for American exercise
    lr_am = lattice_price(c, s, 100.0, t, v, r, q, n_steps=301)
    assert np.all(lr_am >= lr - 1e-12)
    np.testing.assert_allclose(lattice_price(c, s, 100.0, t, v, r, q, n_steps=800, scheme="crr"), lr_am, atol=2e-2)


def test_haug_baw_and_bs_examples():
    # Haug (2007) ch. 3 example: call S=42, K=40, T=0.75, r=0.04, b=-0.04, sigma=0.35
    assert american_price("call", 42, 40, 0.75, 0.35, 0.04, 0.08, method="bs1993") == pytest.approx(5.2704, abs=5e-5)
    # Haug (1998) VBA code value quoted by the QuantLib test suite: put S=36, K=40, T=1, r=0.06, sigma=0.2
    assert american_price("put", 36, 40, 1.0, 0.2, 0.06, 0.0, method="bs1993") == pytest.approx(4.4531, abs=5e-5)
    # Haug (1998) p. 24 BAW table, first entry
    assert american_price("call", 90, 100, 0.1, 0.15, 0.1, 0.1) == pytest.approx(0.0206, abs=1e-4)


#: Bjerksund-Stensland (2002) prices as published to two decimals (K = 100, S = 80..120, calls then puts), as
#: asserted by google/tf-quant-finance (black_scholes/approximations/american_option_test.py, bs2002 table)
BS2002_TABLE = [
    (0.08, 0.12, 0.2, 0.25, [0.03, 0.58, 3.51, 10.34, 20.00, 20.41, 11.25, 4.40, 1.12, 0.18]),
    (0.12, 0.16, 0.2, 0.25, [0.03, 0.57, 3.49, 10.31, 20.00, 20.23, 11.14, 4.35, 1.11, 0.18]),
    (0.08, 0.12, 0.4, 0.25, [1.05, 3.26, 7.39, 13.51, 21.26, 21.44, 13.91, 8.27, 4.52, 2.29]),
    (0.08, 0.12, 0.2, 0.5, [0.21, 1.35, 4.69, 10.98, 20.00, 20.96, 12.63, 6.37, 2.65, 0.92]),
    (0.08, 0.04, 0.2, 0.25, [0.05, 0.85, 4.44, 11.66, 20.90, 20.00, 10.21, 3.53, 0.79, 0.11]),
    (0.12, 0.08, 0.2, 0.25, [0.05, 0.84, 4.40, 11.55, 20.69, 20.00, 10.19, 3.51, 0.78, 0.11]),
    (0.08, 0.04, 0.4, 0.25, [1.29, 3.82, 8.35, 14.80, 22.71, 20.55, 12.94, 7.45, 3.94, 1.94]),
    (0.08, 0.04, 0.2, 0.5, [0.41, 2.18, 6.50, 13.42, 22.06, 20.00, 10.73, 4.74, 1.72, 0.52]),
]


@pytest.mark.parametrize(("r", "q", "vol", "t", "expected"), BS2002_TABLE)
def test_bs2002_published_table_to_rounding(r, q, vol, t, expected):
    s = np.array([80.0, 90, 100, 110, 120] * 2)
    call = np.array([True] * 5 + [False] * 5)
    val = american_price(call, s, 100.0, t, vol, r, q, method="bs2002")
    assert np.abs(val - np.array(expected)).max() <= 0.005 + 1e-9


def test_baw_critical_price_value_matching():
    # at the critical price the BAW value equals the exercise value, and beyond it the option is exercised
    for w, q, r in ((1.0, 0.06, 0.03), (-1.0, 0.01, 0.08)):
        a = [np.array([x]) for x in (w, 100.0, 0.7, 0.3, r, q)]
        crit = float(am._baw_critical(*a)[0])
        val = american_price("call" if w > 0 else "put", crit, 100.0, 0.7, 0.3, r, q)
        assert float(val) == pytest.approx(w * (crit - 100.0), abs=1e-8)
        beyond = crit * (1.1 if w > 0 else 0.9)
        assert float(american_price("call" if w > 0 else "put", beyond, 100.0, 0.7, 0.3, r, q)) == pytest.approx(
            w * (beyond - 100.0), abs=1e-12)


def test_baw_non_convergence_raises(monkeypatch):
    monkeypatch.setattr(am, "NEWTON_MAX_ITER", 1)
    with pytest.raises(ComputationError, match="did not converge in 1 Newton steps"):
        american_price("put", 100.0, 100.0, 1.0, 0.3, 0.05, 0.0)


def test_tiny_dividend_call_converges_to_european():
    # q -> 0: the critical price runs off to infinity; Newton still converges and the value tends to European
    val = american_price("call", 100.0, 100.0, 1.3, 0.57, 0.097, 1e-9)
    assert float(val) == pytest.approx(float(bsm_price(True, 100.0, 100.0, 1.3, 0.57, 0.097, 1e-9)), abs=1e-6)


def test_regimes_and_double_boundary_refused():
    reg = early_exercise_regime(["call", "call", "call", "put", "put", "put"],
                                [0.05, 0.05, -0.02, 0.05, 0.0, -0.02], [0.0, 0.02, -0.01, 0.0, 0.0, -0.03])
    assert reg.tolist() == ["european", "single", "double", "single", "european", "double"]
    with pytest.raises(ComputationError, match="two exercise boundaries"):
        american_price("put", 100.0, 100.0, 1.0, 0.2, -0.02, -0.03)
    # the lattice prices it
    assert float(lattice_price("put", 100.0, 100.0, 1.0, 0.2, -0.02, -0.03)) > 0


def test_bivariate_normal_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-5, 5, 40), rng.uniform(-5, 5, 40)
    rho = rng.choice([-0.9, -0.786, 0.0, 0.3, 0.786, 0.92], 40)
    ref = [multivariate_normal(cov=[[1, r], [r, 1]]).cdf([x, y]) for x, y, r in zip(a, b, rho)]
    np.testing.assert_allclose(bivariate_normal_cdf(a, b, rho), ref, atol=1e-12)
    with pytest.raises(ValueError, match=r"\|rho\| <= 0.925"):
        bivariate_normal_cdf(0.0, 0.0, 0.95)


def test_greeks_equal_bsm_where_no_early_exercise():
    # call without dividends: American = European, so the finite differences must match the analytic Greeks
    g = american_greeks("call", [90.0, 100.0, 115.0], 100.0, 0.6, 0.3, 0.04, 0.0, method="baw")
    e = black_scholes_merton("call", [90.0, 100.0, 115.0], 100.0, 0.6, 0.3, 0.04, 0.0)
    np.testing.assert_allclose(g.price, e.price, rtol=1e-14)
    np.testing.assert_allclose(g.delta, e.delta, rtol=1e-7)
    np.testing.assert_allclose(g.gamma, e.gamma, rtol=1e-4)
    np.testing.assert_allclose(g.vega, e.vega, rtol=1e-6)
    np.testing.assert_allclose(g.theta, e.theta, rtol=1e-6)
    np.testing.assert_allclose(g.rho, e.rho, rtol=1e-6)


def test_american_greeks_against_lattice_differences():
    # delta and gamma of BAW near those of the lattice (its own central differences on a 1201-step tree); the
    # bound is BAW's approximation error in delta (0.005 here), not the finite differences
    s, h = 100.0, 1.0
    args = (100.0, 0.5, 0.3, 0.08, 0.0)
    lat = [float(lattice_price("put", x, *args, n_steps=1201)) for x in (s - h, s, s + h)]
    g = american_greeks("put", s, *args)
    assert float(g.delta) == pytest.approx((lat[2] - lat[0]) / (2 * h), abs=1e-2)
    assert float(g.gamma) == pytest.approx((lat[2] - 2 * lat[1] + lat[0]) / h**2, abs=2e-3)
    # deep in the exercise region: delta -1, gamma 0
    deep = american_greeks("put", 40.0, *args)
    assert float(deep.delta) == pytest.approx(-1.0, abs=1e-9) and abs(float(deep.gamma)) < 1e-6
    for method in ("bs2002", "bs1993"):
        gm = american_greeks("put", s, *args, method=method)
        assert float(gm.delta) == pytest.approx(float(g.delta), abs=2e-2)
        assert float(gm.vega) > 0 and float(gm.rho) < 0


def test_price_vanilla_dispatches_by_exercise():
    s = np.array([90.0, 100.0, 110.0, 100.0])
    ex = np.array(["european", "american", "American ", "european"])
    val = price_vanilla("put", s, 100.0, 0.5, 0.25, 0.06, 0.01, ex)
    np.testing.assert_array_equal(val[[0, 3]], bsm_price(False, s[[0, 3]], 100.0, 0.5, 0.25, 0.06, 0.01))
    np.testing.assert_array_equal(val[1:3], american_price("put", s[1:3], 100.0, 0.5, 0.25, 0.06, 0.01))
    bs = price_vanilla("put", s, 100.0, 0.5, 0.25, 0.06, 0.01, ex, american_method="bs2002")
    np.testing.assert_array_equal(bs[1:3], american_price("put", s[1:3], 100.0, 0.5, 0.25, 0.06, 0.01,
                                                          method="bs2002"))
    # a scalar exercise broadcasts; European options take vol = 0
    assert float(price_vanilla("call", 120.0, 100.0, 1.0, 0.0, 0.0, 0.0, "european")) == pytest.approx(20.0)
    assert price_vanilla("call", s, 100.0, 0.5, 0.25, 0.06, 0.01, "american").shape == (4,)
    with pytest.raises(ValueError, match="unknown exercise style 'bermudan' at index 1"):
        price_vanilla("put", s[:2], 100.0, 0.5, 0.25, 0.06, 0.01, ["european", "bermudan"])
    with pytest.raises(ValueError, match="vol"):
        price_vanilla("put", 100.0, 100.0, 0.5, 0.0, 0.06, 0.01, "american")
    with pytest.raises(ValueError, match="method"):
        price_vanilla("put", 100.0, 100.0, 0.5, 0.2, 0.06, 0.01, "american", american_method="ju")
    assert parse_exercise(["AMERICAN", "european"]).tolist() == [True, False]


def test_vanilla_greeks_european_dividend_rho_and_american_rows():
    g = vanilla_greeks(["put", "put"], 500.0, 490.0, 0.25, 0.15, 0.08, 0.05, ["european", "american"])
    # Haug (1998) p. 16 dividend rho of the European put (also a validation case): 42.2254
    assert float(g.dividend_rho[0]) == pytest.approx(42.2254, abs=1e-4)
    ga = american_greeks("put", 500.0, 490.0, 0.25, 0.15, 0.08, 0.05)
    assert float(g.price[1]) == float(ga.price) and float(g.delta[1]) == float(ga.delta)
    # European dividend rho against a central difference of BSM in q
    h = 1e-5
    fd = (bsm_price(False, 500.0, 490.0, 0.25, 0.15, 0.08, 0.05 + h)
          - bsm_price(False, 500.0, 490.0, 0.25, 0.15, 0.08, 0.05 - h)) / (2 * h)
    assert float(g.dividend_rho[0]) == pytest.approx(float(fd), rel=1e-7)


def test_bad_inputs_named():
    with pytest.raises(ValueError, match="spot"):
        american_price("call", -1.0, 100.0, 1.0, 0.2, 0.05, 0.02)
    with pytest.raises(ValueError, match="vol"):
        american_price("call", 100.0, 100.0, 1.0, 0.0, 0.05, 0.02)
    with pytest.raises(ValueError, match="time_to_expiry"):
        american_price("call", 100.0, 100.0, np.nan, 0.2, 0.05, 0.02)
    with pytest.raises(ValueError, match="method"):
        american_price("call", 100.0, 100.0, 1.0, 0.2, 0.05, 0.02, method="ju")
    with pytest.raises(ValueError, match="n_steps"):
        lattice_price("call", 100.0, 100.0, 1.0, 0.2, n_steps=0)
    with pytest.raises(ValueError, match="branching probability"):
        lattice_price("call", 100.0, 100.0, 1.0, 0.05, 0.9, 0.0, n_steps=2, scheme="crr")
    # T = 0: intrinsic value
    assert float(american_price("put", 90.0, 100.0, 0.0, 0.2, 0.05, 0.0)) == 10.0
    assert american_price(["call", "put"], [[90.0], [110.0]], 100.0, 0.5, 0.2, 0.05, 0.02).shape == (2, 2)


def test_low_vol_and_negative_carry_extremes():
    # rows that once broke the solvers: a low-vol put whose critical-price equation is not monotone (Newton from
    # the left ran away), and low-vol calls where the published h(t) > 0 put the flat boundary below K
    rows = [("put", 100.0, 0.9087658, 0.0392423, 0.1249235, -0.0071206),
            ("call", 66.698, 0.2110226, 0.0117266, 0.0032612, 0.0592809),
            ("call", 79.37, 2.8772018, 0.0184823, 0.1372054, 0.0783817)]
    for opt, s, t, vol, r, q in rows:
        ref = float(lattice_price(opt, s, 100.0, t, vol, r, q, n_steps=4000, scheme="crr"))
        euro = float(bsm_price(opt == "call", s, 100.0, t, vol, r, q))
        for method in ("baw", "bs2002", "bs1993"):
            val = float(american_price(opt, s, 100.0, t, vol, r, q, method=method))
            assert euro - 1e-12 <= val <= ref + 0.5, (opt, method, val, ref)
            assert abs(val - ref) <= 0.01 * 100.0, (opt, method, val, ref)


def test_greeks_bump_one_sided_at_the_regime_edge():
    # put with r = 5e-5 > 0 and q < 0: the down-bump of r (r - 1e-4 < 0, q < r) enters the two-boundary regime
    g = american_greeks("put", 100.0, 100.0, 0.5, 0.2, 5e-5, -0.02)
    assert np.isfinite(float(g.rho)) and np.isfinite(float(g.dividend_rho))
    up = float(american_price("put", 100.0, 100.0, 0.5, 0.2, 5e-5 + 1e-4, -0.02))
    assert float(g.rho) == pytest.approx((up - float(g.price)) / 1e-4, rel=1e-12)
