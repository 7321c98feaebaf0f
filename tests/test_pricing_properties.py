"""Hypothesis properties of the pricing kernels, and the numba twins held equal to numpy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.pricing import black76, black76_price, black_scholes_merton, inverse_option, inverse_price
from greeksmargin.pricing._numba import black76_price_numba, inverse_price_numba

FIELDS = ("price", "delta", "gamma", "vega", "theta", "rho", "vanna", "volga")

spot = st.floats(1.0, 1e4)
moneyness = st.floats(-2.0, 2.0)
expiry = st.floats(1e-4, 5.0)
vols = st.floats(0.01, 3.0)
rates = st.floats(-0.05, 0.2)
divs = st.floats(0.0, 0.1)
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(spot, moneyness, expiry, vols, rates, divs)
def test_put_call_parity(s, m, t, vol, r, q):
    k = s * np.exp(m)
    c = black_scholes_merton("c", s, k, t, vol, r, q)
    p = black_scholes_merton("p", s, k, t, vol, r, q)
    scale = max(s, k)
    assert float(c.price - p.price) == pytest.approx(s * np.exp(-q * t) - k * np.exp(-r * t), abs=1e-12 * scale)
    assert float(c.delta - p.delta) == pytest.approx(np.exp(-q * t), abs=1e-14)
    assert float(c.gamma) == pytest.approx(float(p.gamma), rel=1e-12, abs=1e-300)
    assert float(c.vega) == pytest.approx(float(p.vega), rel=1e-12, abs=1e-300)
    fc, fp = black76("c", s, k, t, vol, r), black76("p", s, k, t, vol, r)
    assert float(fc.price - fp.price) == pytest.approx(np.exp(-r * t) * (s - k), abs=1e-12 * scale)


@SETTINGS
@given(spot, moneyness, expiry, vols, rates, divs)
def test_bounds_and_signs(s, m, t, vol, r, q):
    k = s * np.exp(m)
    c = black_scholes_merton("c", s, k, t, vol, r, q)
    p = black_scholes_merton("p", s, k, t, vol, r, q)
    assert 0.0 <= float(c.delta) <= 1.0
    assert -1.0 <= float(p.delta) <= 0.0
    for g in (c, p):
        assert float(g.gamma) >= 0.0 and float(g.vega) >= 0.0
        assert float(g.price) >= 0.0
    # no-arbitrage bounds of the call: discounted forward intrinsic <= C <= S e^{-qT}
    tol = 1e-12 * max(s, k)
    assert float(c.price) >= max(s * np.exp(-q * t) - k * np.exp(-r * t), 0.0) - tol
    assert float(c.price) <= s * np.exp(-q * t) + tol


@SETTINGS
@given(spot, moneyness, expiry, vols, st.floats(1.001, 3.0), rates, st.booleans())
def test_price_increasing_in_vol(f, m, t, vol, factor, r, call):
    k = f * np.exp(m)
    low = black76(call, f, k, t, vol, r).price
    high = black76(call, f, k, t, vol * factor, r).price
    assert float(high) >= float(low) - 1e-13 * max(f, k)


@SETTINGS
@given(spot, moneyness, st.sampled_from([0.0, 1e-300, 1e-12]), st.sampled_from([0.0, 1e-300, 0.3]), rates, divs)
def test_limits_are_finite(s, m, t, vol, r, q):
    k = s * np.exp(m)
    for opt in ("c", "p"):
        g = black_scholes_merton(opt, s, k, t, vol, r, q)
        for name in FIELDS:
            assert np.isfinite(getattr(g, name)), name
        assert np.isfinite(black76(opt, s, k, t, vol, r).price)


# ---------------------------------------------------------------- numba == numpy
def _inputs(n=20_000, seed=7):
    rng = np.random.default_rng(seed)
    s = rng.uniform(1.0, 1e4, n)
    k = s * np.exp(rng.uniform(-3, 3, n))
    t = rng.uniform(0.0, 5.0, n)
    vol = rng.uniform(0.0, 3.0, n)
    t[:500] = 0.0
    vol[500:1000] = 0.0
    k[1000:1500] = s[1000:1500]
    t[1000:1250] = 0.0
    t[1500:1600] = 1e-300
    r = rng.uniform(-0.05, 0.2, n)
    q = rng.uniform(0.0, 0.1, n)
    call = rng.random(n) < 0.5
    return call, s, k, t, vol, r, q


def _close(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    err = np.abs(a - b) / np.maximum(1.0, np.abs(a))
    assert np.all(err <= 1e-12), float(np.max(err))


def test_numba_greeks_equal_numpy():
    call, s, k, t, vol, r, q = _inputs()
    for model in ("bsm", "b76"):
        if model == "bsm":
            a = black_scholes_merton(call, s, k, t, vol, r, q)
            b = black_scholes_merton(call, s, k, t, vol, r, q, backend="numba")
        else:
            a = black76(call, s, k, t, vol, r)
            b = black76(call, s, k, t, vol, r, backend="numba")
        for name in FIELDS:
            _close(getattr(a, name), getattr(b, name))


def test_numba_price_kernels_equal_numpy():
    call, s, k, t, vol, r, _ = _inputs(seed=8)
    _close(black76_price(call, s, k, t, vol, r), black76_price_numba(call, s, k, t, vol, r))
    _close(black76(call, s, k, t, vol, r).price, black76_price_numba(call, s, k, t, vol, r))
    _close(black76_price(call, s, k, t, vol, r), black76_price(call, s, k, t, vol, r, backend="numba"))
    k[:100] = 0.0
    _close(inverse_price(call, s, k, t, vol), inverse_price_numba(call, s, k, t, vol))
    _close(inverse_option(call, s, k, t, vol).price, inverse_price_numba(call, s, k, t, vol))
    _close(inverse_price(call, s, k, t, vol), inverse_price(call, s, k, t, vol, backend="numba"))


def test_numba_broadcasts_like_numpy():
    k = np.array([[90.0], [100.0], [110.0]])
    a = black76(np.array([True, False]), 100.0, k, 0.5, 0.25, 0.01)
    b = black76(np.array([True, False]), 100.0, k, 0.5, 0.25, 0.01, backend="numba")
    assert b.price.shape == (3, 2)
    for name in FIELDS:
        _close(getattr(a, name), getattr(b, name))
    _close(black76_price(True, 100.0, k, 0.5, 0.25), black76_price_numba(True, 100.0, k, 0.5, 0.25))
