"""Implied vol: Let's Be Rational (vollib) on a grid, round trips, and the reasons for no vol."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vollib.black.implied_volatility import implied_volatility as lbr_implied_vol

from greeksmargin.pricing import (
    black76,
    black_scholes_merton,
    implied_vol,
    inverse_implied_vol,
    inverse_option,
)


def test_matches_lets_be_rational_on_grid():
    grid = list(
        itertools.product(
            [True, False],
            [60.0, 80.0, 95.0, 100.0, 105.0, 125.0, 160.0],
            [0.05, 0.5, 2.0],
            [0.1, 0.3, 0.8],
            [0.0, 0.05],
        )
    )
    call, k, t, vol, r = (np.array(c) for c in zip(*grid))
    f = 100.0
    price = black76(call, f, k, t, vol, r).price
    tv = price / np.exp(-r * t) - np.maximum(np.where(call, f - k, k - f), 0.0)
    sane = tv > 1e-6 * f  # the time value must carry the vol (deep ITM short-dated prices do not)
    assert sane.sum() > 200
    ours = implied_vol(price, call, f, k, t, r)
    for i in np.flatnonzero(sane):
        ref = lbr_implied_vol(price[i], f, k[i], r[i], t[i], "c" if call[i] else "p")
        assert ours.reason[i] == ""
        assert ours.vol[i] == pytest.approx(ref, abs=1e-8)
        assert ours.vol[i] == pytest.approx(vol[i], abs=1e-8)


@settings(max_examples=200, deadline=None)
@given(
    st.floats(0.5, 2e4),
    st.floats(-1.0, 1.0),
    st.floats(0.01, 5.0),
    st.floats(0.02, 4.0),
    st.floats(-0.02, 0.1),
    st.booleans(),
)
def test_round_trip(f, m, t, vol, r, call):
    k = f * np.exp(m)
    g = black76(call, f, k, t, vol, r)
    res = implied_vol(g.price, call, f, k, t, r)
    undiscounted_vega = float(g.vega) / np.exp(-r * t)
    if undiscounted_vega < 1e-6 * f:  # price does not identify the vol to double precision
        return
    assert str(res.reason) in ("", "below intrinsic", "no time value")
    if res.reason == "":
        # the vol is pinned to ~ price rounding / vega
        assert float(res.vol) == pytest.approx(vol, abs=1e-13 * max(f, k) / undiscounted_vega + 1e-12)


def test_bsm_model_round_trip():
    s, k, t, r, q = 100.0, np.array([80.0, 100.0, 130.0]), 0.7, 0.04, 0.02
    price = black_scholes_merton(["c", "p", "c"], s, k, t, 0.35, r, q).price
    res = implied_vol(price, ["c", "p", "c"], None, k, t, r, model="bsm", spot=s, dividend_yield=q)
    np.testing.assert_allclose(res.vol, 0.35, atol=1e-12)
    assert np.all(res.ok)


def test_reasons():
    f, k, t = 100.0, 90.0, 1.0
    res = implied_vol(
        np.array([5.0, 10.0, 120.0, 12.0, 12.0, np.nan, 12.0, 4e-6, 99.999999]),
        "c",
        np.array([f, f, f, f, f, f, -1.0, 100.0, f]),
        np.array([k, k, k, k, k, k, k, 100.0, k]),
        np.array([t, t, t, 0.0, -1.0, t, t, t, t]),
    )
    assert list(res.reason) == [
        "below intrinsic",
        "no time value",
        "above maximum",
        "non-positive time",
        "non-positive time",
        "invalid input",
        "invalid input",
        "vol below 1e-06",
        "vol above 10",
    ]
    assert np.all(np.isnan(res.vol))
    assert res.vol.shape == (9,)


def test_shapes_and_errors():
    res = implied_vol(np.full((2, 3), 8.0), "c", 100.0, 100.0, 1.0)
    assert res.vol.shape == (2, 3) and res.reason.shape == (2, 3)
    with pytest.raises(ValueError, match="model"):
        implied_vol(8.0, "c", 100.0, 100.0, 1.0, model="heston")
    with pytest.raises(ValueError, match="spot"):
        implied_vol(8.0, "c", None, 100.0, 1.0, model="bsm")


def test_inverse_implied_vol_round_trip():
    f, k = 9350.0, np.array([5000.0, 9000.0, 9350.0, 12000.0])
    g = inverse_option(["c", "p", "c", "c"], f, k, 0.1, 0.9)
    res = inverse_implied_vol(g.price, ["c", "p", "c", "c"], f, k, 0.1)
    np.testing.assert_allclose(res.vol, 0.9, atol=1e-10)
