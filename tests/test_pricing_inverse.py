"""Coin-settled (inverse) options: coin value, premium-adjusted delta, Deribit's USD Greeks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.pricing import InverseGreeks, black76, inverse_option, inverse_price


def test_strike_zero_call_is_one_coin_with_zero_coin_delta():
    g = inverse_option("call", np.array([5000.0, 9000.0, 20000.0]), 0.0, np.array([0.0, 0.1, 2.0]), 0.8)
    np.testing.assert_array_equal(g.price, 1.0)
    np.testing.assert_array_equal(g.delta, 0.0)
    np.testing.assert_array_equal(g.deribit_delta, 1.0)
    np.testing.assert_array_equal(inverse_price(True, 9000.0, 0.0, 0.1, 0.8), 1.0)
    p = inverse_option("put", 9000.0, 0.0, 0.1, 0.8)
    assert float(p.price) == 0.0 and float(p.delta) == 0.0


def test_coin_value_is_black76_over_forward_and_coin_parity():
    f, k, t, vol = 9350.0, np.array([4000.0, 9000.0, 9350.0, 15000.0]), 0.3, 0.85
    c, p = inverse_option("c", f, k, t, vol), inverse_option("p", f, k, t, vol)
    np.testing.assert_allclose(c.price, black76("c", f, k, t, vol).price / f, rtol=1e-13)
    np.testing.assert_allclose(c.price_usd, black76("c", f, k, t, vol).price, rtol=1e-13)
    np.testing.assert_allclose(c.price - p.price, 1.0 - k / f, atol=1e-15)  # coin parity
    np.testing.assert_allclose(c.deribit_delta - p.deribit_delta, 1.0, atol=1e-15)
    np.testing.assert_allclose(c.delta - p.delta, k / f, atol=1e-15)  # coin delta of the parity: K/F


@settings(max_examples=100, deadline=None)
@given(st.floats(100.0, 1e5), st.floats(-1.5, 1.5), st.floats(0.005, 3.0), st.floats(0.1, 2.5), st.booleans())
def test_coin_delta_is_f_dv_df_and_usd_delta_minus_value(f, m, t, vol, call):
    k = f * np.exp(m)
    g = inverse_option(call, f, k, t, vol)
    assert isinstance(g, InverseGreeks)
    h = 1e-5 * f
    v_up, v_dn = inverse_price(call, f + h, k, t, vol), inverse_price(call, f - h, k, t, vol)
    dv_df = (v_up - v_dn) / (2 * h)
    # premium-adjusted coin delta = F dV/dF = d(V F)/dF - V
    assert float(g.delta) == pytest.approx(f * dv_df, abs=1e-7)
    d_usd = ((f + h) * v_up - (f - h) * v_dn) / (2 * h)
    assert float(g.deribit_delta) == pytest.approx(float(d_usd), abs=1e-7)
    assert float(g.delta) == pytest.approx(float(g.deribit_delta - g.price), abs=1e-14)
    assert float(g.delta) == pytest.approx(float(d_usd - g.price), abs=1e-7)


def test_coin_gamma_vega_theta_match_finite_differences():
    rng = np.random.default_rng(5)
    n = 400
    f = rng.uniform(1000, 60000, n)
    k = f * np.exp(rng.uniform(-1, 1, n))
    t = rng.uniform(0.02, 2.0, n)
    vol = rng.uniform(0.3, 2.0, n)
    call = rng.random(n) < 0.5
    g = inverse_option(call, f, k, t, vol)
    h = 1e-4 * f
    v0 = inverse_price(call, f, k, t, vol)
    fd_gamma = (inverse_price(call, f + h, k, t, vol) - 2 * v0 + inverse_price(call, f - h, k, t, vol)) / h**2
    np.testing.assert_allclose(g.gamma * f**2, fd_gamma * f**2, atol=2e-5)
    fd_vega = (inverse_price(call, f, k, t, vol + 1e-5) - inverse_price(call, f, k, t, vol - 1e-5)) / 2e-5
    np.testing.assert_allclose(g.vega, fd_vega, atol=1e-8)
    fd_theta = -(inverse_price(call, f, k, t + 1e-6, vol) - inverse_price(call, f, k, t - 1e-6, vol)) / 2e-6
    np.testing.assert_allclose(g.theta, fd_theta, rtol=1e-5, atol=1e-7)
    # Deribit USD Greeks are the Black-76 ones in USD units per vol point / per day
    b = black76(call, f, k, t, vol)
    np.testing.assert_allclose(g.deribit_gamma, b.gamma, rtol=1e-12)
    np.testing.assert_allclose(g.deribit_vega, b.vega / 100, rtol=1e-12)
    np.testing.assert_allclose(g.deribit_theta, b.theta / 365, rtol=1e-12)


def test_published_deribit_row():
    # BTC-22MAY20-9250-P from validation/cases/deribit_chain/btc_2020-05-14.csv
    t = (1590134400000 - 1589434896486) / (365 * 86400e3)
    g = inverse_option("put", 9352.58, 9250.0, t, 0.7687)
    assert float(g.price) == pytest.approx(0.04010621, rel=3e-3)
    assert float(g.deribit_delta) == pytest.approx(-0.43897, abs=2e-4)
    assert float(g.deribit_gamma) == pytest.approx(0.00037, abs=1e-5)
    assert float(g.deribit_vega) == pytest.approx(5.49167, rel=1e-3)
    assert float(g.deribit_theta) == pytest.approx(-26.07217, rel=1e-3)


def test_limits_and_errors():
    g = inverse_option(["c", "p", "c"], 100.0, [80.0, 120.0, 100.0], 0.0, 0.5)
    np.testing.assert_allclose(g.price, [0.2, 0.2, 0.0])
    np.testing.assert_array_equal(g.deribit_delta, [1.0, -1.0, 0.5])
    for name in ("vega", "theta", "deribit_gamma", "deribit_vega", "deribit_theta"):
        np.testing.assert_array_equal(getattr(g, name), 0.0)
    # the coin intrinsic value max(w (1 - K/F), 0) is curved in F: gamma -2 w (K/F) step / F^2 (step 0.5 ATM)
    np.testing.assert_allclose(g.gamma, [-2 * 0.8 / 100.0**2, 2 * 1.2 / 100.0**2, -2 * 1.0 * 0.5 / 100.0**2])
    np.testing.assert_allclose(inverse_price(np.array([True, False]), 100.0, [80.0, 120.0], -1.0, 0.5), [0.2, 0.2])
    with pytest.raises(ValueError, match="^strike must be"):
        inverse_option("c", 100.0, -1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="^forward must be"):
        inverse_option("c", 0.0, 1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="^time_to_expiry must be"):
        inverse_option("c", 100.0, 1.0, -1.0, 0.5)
