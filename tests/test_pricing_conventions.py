"""FX delta conventions: spot, forward, premium-adjusted; strike from delta and its branch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.errors import ComputationError
from greeksmargin.pricing import black76
from greeksmargin.pricing.conventions import (
    fx_delta,
    max_premium_adjusted_call_delta,
    parse_delta_type,
    strike_from_delta,
)

TYPES = ("spot", "forward", "pa_spot", "pa_forward")

#: Castagna (2009) / Reiswich-Wystup values as asserted by QuantLib's test-suite/blackdeltacalculator.cpp
#: (option, delta type, spot, D_d, D_f, std_dev, strike, delta)
PUBLISHED = [
    ("call", "PaSpot", 1.421, 0.997306, 0.992266, 0.1180654, 1.600545, 0.15),
    ("call", "PaFwd", 1.421, 0.997306, 0.992266, 0.1180654, 1.60155, 0.15),
    ("call", "PaSpot", 122.121, 0.9695434, 0.9872347, 0.0887676, 117.7096, 0.67),
    ("put", "PaFwd", 3.4582, 0.99979, 0.9250616, 0.3199034, 3.65728, -0.821),
    ("put", "PaSpot", 103.0, 0.99482, 0.98508, 0.07247845, 97.22, -0.25),
]


@pytest.mark.parametrize(("opt", "kind", "spot", "dd", "df", "sd", "strike", "delta"), PUBLISHED)
def test_published_deltas_and_strikes(opt, kind, spot, dd, df, sd, strike, delta):
    assert float(fx_delta(opt, spot, strike, dd, df, sd, kind)) == pytest.approx(delta, abs=1e-3)
    assert float(strike_from_delta(opt, delta, spot, dd, df, sd, kind)) == pytest.approx(strike, abs=1e-2)


def test_relations_between_conventions():
    rng = np.random.default_rng(2)
    n = 40
    call = rng.random(n) < 0.5
    s0, k = rng.uniform(50, 150, n), rng.uniform(50, 150, n)
    t, vol = rng.uniform(0.05, 2, n), rng.uniform(0.1, 1.0, n)
    rd, rf = rng.uniform(-0.01, 0.1, n), rng.uniform(0, 0.1, n)
    dd, df, sd = np.exp(-rd * t), np.exp(-rf * t), vol * np.sqrt(t)
    f = s0 * df / dd
    fwd = fx_delta(call, s0, k, dd, df, sd, "forward")
    # the forward delta is Black-76's dV/dF without the discount
    np.testing.assert_allclose(fwd, black76(call, f, k, t, vol, rd).delta / dd, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fx_delta(call, s0, k, dd, df, sd, "spot"), df * fwd, rtol=1e-12)
    # premium adjustment: minus the premium in foreign units, V / (D_d F) (forward) or V / S (spot)
    value = black76(call, f, k, t, vol, rd).price
    np.testing.assert_allclose(fx_delta(call, s0, k, dd, df, sd, "pa_forward"), fwd - value / (dd * f),
                               rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fx_delta(call, s0, k, dd, df, sd, "pa_spot"), df * fwd - value / s0,
                               rtol=1e-9, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(TYPES), st.booleans(), st.floats(0.5, 2.0), st.floats(0.02, 1.2), st.floats(0.9, 1.0),
       st.floats(0.9, 1.0))
def test_strike_from_delta_inverts_delta(kind, call, moneyness, sd, dd, df):
    spot = 100.0
    strike = spot * moneyness
    opt = "call" if call else "put"
    delta = float(fx_delta(opt, spot, strike, dd, df, sd, kind))
    if kind.startswith("pa") and call:
        _top, k_max = max_premium_adjusted_call_delta(spot, dd, df, sd, kind)
        if strike < float(k_max) or delta < 1e-12:
            return  # the left branch: the inverse returns the other strike (tested below)
    if not kind.startswith("pa") and not (1e-12 < abs(delta) < (df if kind == "spot" else 1.0) - 1e-12):
        return  # delta rounds to its bound: no strike information left
    if abs(delta) < 1e-12:
        return
    k = float(strike_from_delta(opt, delta, spot, dd, df, sd, kind))
    assert k == pytest.approx(strike, rel=1e-7)


def test_premium_adjusted_call_branch_and_maximum():
    spot, dd, df, sd = 1.421, 0.997306, 0.992266, 0.5
    top, k_max = max_premium_adjusted_call_delta(spot, dd, df, sd, "pa_spot")
    # delta is not monotone: strikes on both sides of K_max have the same delta; the right-hand one is returned
    right = float(k_max) * 1.5
    delta = float(fx_delta("call", spot, right, dd, df, sd, "pa_spot"))
    left = float(k_max) * 0.5
    assert float(fx_delta("call", spot, left, dd, df, sd, "pa_spot")) < float(top)
    assert float(strike_from_delta("call", delta, spot, dd, df, sd, "pa_spot")) == pytest.approx(right, rel=1e-9)
    # the maximum is a maximum
    for kk in (float(k_max) * 0.99, float(k_max) * 1.01):
        assert float(fx_delta("call", spot, kk, dd, df, sd, "pa_spot")) < float(top)
    with pytest.raises(ComputationError, match="exceeds the largest pa_spot call delta"):
        strike_from_delta("call", float(top) + 0.01, spot, dd, df, sd, "pa_spot")


def test_vectorised_and_errors():
    k = strike_from_delta(["call", "put"], [0.25, -0.25], 100.0, 0.99, 0.98, 0.2, "PaFwd")
    assert k.shape == (2,) and k[0] > 100.0 > k[1]
    assert parse_delta_type("PaSpot") == "pa_spot" and parse_delta_type("Fwd") == "forward"
    with pytest.raises(ValueError, match="unknown delta type 'AtmDeltaNeutral'"):
        fx_delta("call", 100.0, 100.0, 0.99, 0.98, 0.2, "AtmDeltaNeutral")
    with pytest.raises(ValueError, match="outside the range of a call spot delta"):
        strike_from_delta("call", 0.995, 100.0, 0.99, 0.98, 0.2, "spot")
    with pytest.raises(ValueError, match="outside the range of a put pa_forward delta"):
        strike_from_delta("put", 0.2, 100.0, 0.99, 0.98, 0.2, "pa_forward")
    with pytest.raises(ValueError, match="std_dev"):
        fx_delta("call", 100.0, 100.0, 0.99, 0.98, 0.0, "spot")
