"""Black-Scholes-Merton and Black-76 kernels: vollib, textbooks, finite differences, limits, errors."""

import math

import numpy as np
import pytest
import vollib.black.greeks.analytical as vb_greeks
import vollib.black_scholes_merton.greeks.analytical as vbsm_greeks
from vollib.black import black as vb_price
from vollib.black_scholes_merton import black_scholes_merton as vbsm_price

from greeksmargin import units
from greeksmargin.pricing import (
    Greeks,
    black76,
    black76_price,
    black_scholes_merton,
    bsm_price,
    is_call_array,
)

FIELDS = ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga")


def _random_inputs(n, seed):
    rng = np.random.default_rng(seed)
    s = rng.uniform(10.0, 200.0, n)
    k = s * np.exp(rng.uniform(-0.7, 0.7, n))
    t = rng.uniform(0.02, 3.0, n)
    vol = rng.uniform(0.05, 1.2, n)
    r = rng.uniform(-0.02, 0.1, n)
    q = rng.uniform(0.0, 0.06, n)
    call = rng.random(n) < 0.5
    return call, s, k, t, vol, r, q


# ---------------------------------------------------------------- scalar reference (math.erf)
def _ncdf(x):
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _ref_bsm(call, s, k, t, vol, r, q):
    """Obviously-correct scalar BSM price, delta, gamma, vega (per 1.00), theta (per year)."""
    d1 = (math.log(s / k) + (r - q + 0.5 * vol * vol) * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    pdf = math.exp(-0.5 * d1 * d1) / math.sqrt(2.0 * math.pi)
    eq, er = math.exp(-q * t), math.exp(-r * t)
    if call:
        price = s * eq * _ncdf(d1) - k * er * _ncdf(d2)
        delta = eq * _ncdf(d1)
        theta = -s * eq * pdf * vol / (2 * math.sqrt(t)) - r * k * er * _ncdf(d2) + q * s * eq * _ncdf(d1)
    else:
        price = k * er * _ncdf(-d2) - s * eq * _ncdf(-d1)
        delta = -eq * _ncdf(-d1)
        theta = -s * eq * pdf * vol / (2 * math.sqrt(t)) + r * k * er * _ncdf(-d2) - q * s * eq * _ncdf(-d1)
    gamma = eq * pdf / (s * vol * math.sqrt(t))
    vega = s * eq * pdf * math.sqrt(t)
    return price, delta, gamma, vega, theta


def test_matches_scalar_reference():
    call, s, k, t, vol, r, q = _random_inputs(300, 11)
    g = black_scholes_merton(call, s, k, t, vol, r, q)
    for i in range(300):
        ref = _ref_bsm(call[i], s[i], k[i], t[i], vol[i], r[i], q[i])
        got = (g.price[i], g.delta[i], g.gamma[i], g.vega[i], g.theta[i])
        # math.erf form of the put loses ~1e-14 relative; scale-aware tolerance
        assert got == pytest.approx(ref, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------- vollib on 10,000 random inputs
def test_bsm_matches_vollib_analytical_10k():
    n = 10_000
    call, s, k, t, vol, r, q = _random_inputs(n, 1)
    g = black_scholes_merton(call, s, k, t, vol, r, q)
    ref = np.empty((6, n))
    for i in range(n):
        f = "c" if call[i] else "p"
        args = (f, s[i], k[i], t[i], r[i], vol[i], q[i])
        ref[:, i] = (
            vbsm_price(*args),
            vbsm_greeks.delta(*args),
            vbsm_greeks.gamma(*args),
            vbsm_greeks.vega(*args),
            vbsm_greeks.theta(*args),
            vbsm_greeks.rho(*args),
        )
    np.testing.assert_allclose(g.price, ref[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.delta, ref[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.gamma, ref[2], rtol=0, atol=1e-10)
    # vollib: vega per vol point, theta per calendar day (/365, same sign: value change as time passes),
    # rho per 1% of rate
    np.testing.assert_allclose(g.vega, units.vega_per_unit_vol(ref[3]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.theta, units.theta_per_year(ref[4]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.rho, ref[5] / units.ONE_PERCENT, rtol=0, atol=1e-10)


def test_black76_matches_vollib_analytical_10k():
    n = 10_000
    call, f, k, t, vol, r, _ = _random_inputs(n, 2)
    g = black76(call, f, k, t, vol, r)
    ref = np.empty((6, n))
    for i in range(n):
        flag = "c" if call[i] else "p"
        args = (flag, f[i], k[i], t[i], r[i], vol[i])
        ref[:, i] = (
            vb_price(*args),
            vb_greeks.delta(*args),
            vb_greeks.gamma(*args),
            vb_greeks.vega(*args),
            vb_greeks.theta(*args),
            vb_greeks.rho(*args),
        )
    np.testing.assert_allclose(g.price, ref[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.delta, ref[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.gamma, ref[2], rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.vega, units.vega_per_unit_vol(ref[3]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(g.theta, units.theta_per_year(ref[4]), rtol=0, atol=1e-10)
    # vollib's Black rho is -T V per 1%: dV/dr at fixed forward, as ours
    np.testing.assert_allclose(g.rho, ref[5] / units.ONE_PERCENT, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- textbook values
def test_hull_textbook_prices():
    # Hull, Options Futures and Other Derivatives, Example 15.6: S=42, K=40, r=10%, T=0.5, sigma=20%
    call = black_scholes_merton("call", 42.0, 40.0, 0.5, 0.2, 0.1)
    put = black_scholes_merton("PUT", 42.0, 40.0, 0.5, 0.2, 0.1)
    assert round(float(call.price), 2) == 4.76
    assert round(float(put.price), 2) == 0.81


def test_hull_textbook_greeks():
    # Hull, Examples 19.x: S=49, K=50, r=5%, T=20 weeks (0.3846), sigma=20%
    g = black_scholes_merton("c", 49.0, 50.0, 0.3846, 0.2, 0.05)
    assert float(g.delta) == pytest.approx(0.522, abs=5e-4)
    assert float(g.gamma) == pytest.approx(0.066, abs=5e-4)
    assert float(g.vega) == pytest.approx(12.1, abs=0.05)
    assert float(g.theta) == pytest.approx(-4.31, abs=0.005)
    assert float(g.rho) == pytest.approx(8.91, abs=0.005)


def test_haug_black76_example():
    # Haug, The Complete Guide to Option Pricing Formulas, Black-76: F=19, K=19, T=0.75, r=10%, sigma=28%
    g = black76(["call", "put"], 19.0, 19.0, 0.75, 0.28, 0.10)
    np.testing.assert_allclose(g.price, [1.7011, 1.7011], atol=5e-5)


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("model", ["bsm", "black76"])
def test_greeks_match_finite_differences(model):
    call, s, k, t, vol, r, q = _random_inputs(500, 3)
    vol = np.clip(vol, 0.1, None)
    t = np.clip(t, 0.1, None)

    def price(s_=s, t_=t, vol_=vol, r_=r):
        if model == "bsm":
            return black_scholes_merton(call, s_, k, t_, vol_, r_, q).price
        return black76(call, s_, k, t_, vol_, r_).price

    def delta(s_=s, vol_=vol):
        if model == "bsm":
            return black_scholes_merton(call, s_, k, t, vol_, r, q).delta
        return black76(call, s_, k, t, vol_, r).delta

    g = black_scholes_merton(call, s, k, t, vol, r, q) if model == "bsm" else black76(call, s, k, t, vol, r)
    hs, hv, ht, hr = 1e-4 * s, 1e-4, 1e-5, 1e-5
    fd_delta = (price(s_=s + hs) - price(s_=s - hs)) / (2 * hs)
    fd_gamma = (price(s_=s + hs) - 2 * price() + price(s_=s - hs)) / hs**2
    fd_vega = (price(vol_=vol + hv) - price(vol_=vol - hv)) / (2 * hv)
    fd_volga = (price(vol_=vol + hv) - 2 * price() + price(vol_=vol - hv)) / hv**2
    fd_vanna = (delta(vol_=vol + hv) - delta(vol_=vol - hv)) / (2 * hv)
    fd_theta = -(price(t_=t + ht) - price(t_=t - ht)) / (2 * ht)  # value change as calendar time passes
    fd_rho = (price(r_=r + hr) - price(r_=r - hr)) / (2 * hr)
    scale = np.maximum(1.0, s)
    np.testing.assert_allclose(g.delta, fd_delta, atol=1e-7)
    np.testing.assert_allclose(g.gamma * scale, fd_gamma * scale, atol=1e-4)
    np.testing.assert_allclose(g.vega, fd_vega, atol=1e-6 * scale.max())
    np.testing.assert_allclose(g.volga, fd_volga, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(g.vanna, fd_vanna, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g.theta, fd_theta, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(g.rho, fd_rho, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- limits
def test_expiry_gives_intrinsic_and_step_delta():
    k = np.array([80.0, 100.0, 120.0])
    for model in ("bsm", "b76"):
        c = (
            black_scholes_merton("call", 100.0, k, 0.0, 0.3, 0.05, 0.02)
            if model == "bsm"
            else black76("c", 100.0, k, 0.0, 0.3)
        )
        p = (
            black_scholes_merton("put", 100.0, k, 0.0, 0.3, 0.05, 0.02)
            if model == "bsm"
            else black76("p", 100.0, k, 0.0, 0.3)
        )
        np.testing.assert_array_equal(c.price, [20.0, 0.0, 0.0])
        np.testing.assert_array_equal(p.price, [0.0, 0.0, 20.0])
        np.testing.assert_array_equal(c.delta, [1.0, 0.5, 0.0])  # 0.5 exactly at the money (documented)
        np.testing.assert_array_equal(p.delta, [0.0, -0.5, -1.0])
        for g in (c, p):
            for name in ("gamma", "vega", "vanna", "volga", "rho"):
                np.testing.assert_array_equal(getattr(g, name), 0.0)
            assert np.all(np.isfinite(g.theta))


def test_zero_vol_gives_discounted_forward_intrinsic():
    s, k, t, r, q = 100.0, np.array([90.0, 110.0]), 1.0, 0.05, 0.01
    fwd = s * np.exp((r - q) * t)
    c = black_scholes_merton("call", s, k, t, 0.0, r, q)
    np.testing.assert_allclose(c.price, np.exp(-r * t) * np.maximum(fwd - k, 0.0), rtol=1e-15)
    np.testing.assert_allclose(c.delta, [np.exp(-q * t), 0.0])
    # theta = limit of the formula: q S e^{-qT} - r K e^{-rT} in the money, 0 out of it
    np.testing.assert_allclose(c.theta, [q * s * np.exp(-q * t) - r * 90.0 * np.exp(-r * t), 0.0], rtol=1e-12)
    for name in ("gamma", "vega", "vanna", "volga"):
        np.testing.assert_array_equal(getattr(c, name), 0.0)
    b = black76(["c", "p"], 100.0, 110.0, 2.0, 0.0, 0.03)
    np.testing.assert_allclose(b.price, [0.0, 10.0 * np.exp(-0.06)], rtol=1e-15)


def test_tiny_time_and_vol_converge_to_limits():
    k = np.array([80.0, 100.0, 120.0])
    for eps in (1e-8, 1e-14, 1e-300):
        g = black76("c", 100.0, k, eps, 0.5)
        for name in FIELDS:
            assert np.all(np.isfinite(getattr(g, name))), (eps, name)
        np.testing.assert_allclose(g.price[[0, 2]], [20.0, 0.0], atol=1e-12)
        np.testing.assert_allclose(g.delta[[0, 2]], [1.0, 0.0], atol=1e-12)
        g = black76("p", 100.0, k, 1.0, eps)
        np.testing.assert_allclose(g.price, [0.0, 0.0, 20.0], atol=1e-6)


def test_deep_itm_otm_finite_and_bounded():
    k = np.array([1e-6, 1e-3, 1.0, 1e3, 1e6, 1e9])
    for vol in (1e-4, 0.2, 5.0):
        for t in (1e-6, 1.0, 50.0):
            for opt in ("c", "p"):
                g = black_scholes_merton(opt, 100.0, k, t, vol, 0.05, 0.01)
                for name in FIELDS:
                    assert np.all(np.isfinite(getattr(g, name))), (vol, t, opt, name)
                assert np.all(g.price >= 0.0)
                assert np.all(g.gamma >= 0.0) and np.all(g.vega >= 0.0)


def test_deep_otm_keeps_relative_precision():
    # N(-d) directly, never 1 - N(d): a 10-sigma OTM call keeps a tiny positive price and delta
    g = black76("c", 100.0, 100.0 * np.exp(10 * 0.2), 1.0, 0.2)
    assert 0.0 < float(g.price) < 1e-20
    assert 0.0 < float(g.delta) < 1e-20


# ---------------------------------------------------------------- inputs
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"spot": 0.0}, "spot"),
        ({"spot": np.nan}, "spot"),
        ({"strike": -1.0}, "strike"),
        ({"strike": 0.0}, "strike"),
        ({"time_to_expiry": -0.1}, "time_to_expiry"),
        ({"vol": -0.2}, "vol"),
        ({"vol": np.nan}, "vol"),
        ({"rate": np.inf}, "rate"),
        ({"dividend_yield": np.nan}, "dividend_yield"),
    ],
)
def test_bad_inputs_raise_naming_argument(kwargs, name):
    args = {"option_type": "call", "spot": 100.0, "strike": 100.0, "time_to_expiry": 1.0, "vol": 0.2}
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"^{name} must be"):
        black_scholes_merton(**args)


def test_bad_forward_and_option_type():
    with pytest.raises(ValueError, match="^forward must be"):
        black76("c", [100.0, -1.0], 100.0, 1.0, 0.2)
    with pytest.raises(ValueError, match="option_type: unknown option type 'straddle'"):
        black76(["c", "straddle"], 100.0, 100.0, 1.0, 0.2)
    with pytest.raises(ValueError, match="backend"):
        black76("c", 100.0, 100.0, 1.0, 0.2, backend="gpu")


def test_is_call_array_forms():
    np.testing.assert_array_equal(is_call_array(["Call", "PUT", "c", "P", " call "]), [True, False, True, False, True])
    assert is_call_array("C").shape == () and bool(is_call_array("C"))
    np.testing.assert_array_equal(is_call_array(np.array([True, False])), [True, False])
    np.testing.assert_array_equal(is_call_array(np.array(["call", "put"], dtype=object)), [True, False])
    assert bool(is_call_array(True)) and not bool(is_call_array(False))


def test_broadcasting_and_shapes():
    g = black76(np.array([[True], [False]]), 100.0, np.array([90.0, 100.0, 110.0]), 0.5, 0.3)
    assert isinstance(g, Greeks)
    for name in FIELDS:
        assert getattr(g, name).shape == (2, 3)
    g0 = black76("c", 100.0, 100.0, 0.5, 0.3)
    assert all(isinstance(getattr(g0, n), np.ndarray) and getattr(g0, n).shape == () for n in FIELDS)
    with pytest.raises(dataclass_frozen_error()):
        g0.price = np.array(1.0)


def dataclass_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


# ---------------------------------------------------------------- fast kernels
def test_price_kernels_equal_full_kernels():
    call, s, k, t, vol, r, q = _random_inputs(5000, 4)
    t[:100] = 0.0
    vol[100:200] = 0.0
    k[200:300] = s[200:300]
    t[200:250] = 0.0
    full = black76(call, s, k, t, vol, r)
    np.testing.assert_allclose(black76_price(call, s, k, t, vol, r), full.price, rtol=1e-13, atol=1e-13)
    full = black_scholes_merton(call, s, k, t, vol, r, q)
    np.testing.assert_allclose(bsm_price(call, s, k, t, vol, r, q), full.price, rtol=1e-13, atol=1e-12)
    # negative T in the hot path = expired: intrinsic
    np.testing.assert_array_equal(black76_price(np.array([True, False]), 100.0, 90.0, -1.0, 0.2), [10.0, 0.0])
