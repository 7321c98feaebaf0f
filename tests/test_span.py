"""SPAN: aggregation of published risk arrays, generation of arrays and the requirement."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import norm

from greeksmargin.engine.params_files import load_span_params
from greeksmargin.errors import CaseFormatError, InputError, ModelError
from greeksmargin.methodologies.span import (
    generate_risk_array,
    scan_risk,
    scan_risk_detail,
    span_requirement,
    spread_charge,
)
from greeksmargin.validation.span import run

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases" / "span"
MCMILLAN_FUTURE = [0, 0, 3330, 3330, -3330, -3330, 6670, 6670, -6670, -6670, 10000, 10000, -10000, -10000, 7000, -7000]


def test_published_cases_exact():
    res = run(CASES)
    assert len(res.cases) == 2
    assert all(c.passed and c.computed["scan_risk"] == c.expected["scan_risk"] for c in res.cases)


def test_worst_scenario_of_long_call_is_down_move_vol_down():
    doc = json.loads((CASES / "cases.json").read_text())[0]
    d = scan_risk_detail(doc["risk_arrays"], doc["positions"])
    assert d.scan_risk == 3990 and d.worst_scenario == 14


arrays16 = st.lists(st.integers(min_value=-10_000, max_value=10_000), min_size=16, max_size=16)


@settings(max_examples=50, deadline=None)
@given(arrays16, st.integers(min_value=-20, max_value=20))
def test_offsetting_positions_have_zero_scan_risk(arr, q):
    arrays = {"A": arr}
    assert scan_risk(arrays, [("A", q), ("A", -q)]) == 0.0
    assert scan_risk({"A": arr, "B": arr}, {"A": q, "B": -q}) == 0.0


@settings(max_examples=50, deadline=None)
@given(arrays16, arrays16, st.integers(-5, 5), st.integers(-5, 5), st.booleans())
def test_loss_positive_equals_profit_positive_with_flipped_arrays(a, b, qa, qb, applied):
    pos = {"A": qa, "B": qb}
    profit = scan_risk({"A": a, "B": b}, pos, "profit_positive", applied)
    loss = scan_risk({"A": [-x for x in a], "B": [-x for x in b]}, pos, "loss_positive", applied)
    assert profit == loss
    assert profit >= 0.0


def test_extreme_weight_applied_when_asked():
    arr = [0.0] * 14 + [-100.0, 0.0]  # loss of 100 in scenario 15 (profit positive)
    assert scan_risk({"A": arr}, {"A": 1}, extreme_weights_applied=True) == 100.0
    assert scan_risk({"A": arr}, {"A": 1}, extreme_weights_applied=False) == 35.0


def test_scan_risk_is_exact_on_decimals():
    assert scan_risk({"A": [0.1] * 16, "B": [0.2] * 16}, {"A": -1, "B": -1}) == 0.3


def test_bad_input_names_the_contract():
    with pytest.raises(InputError, match="no risk array for contract 'X'"):
        scan_risk({"A": [0] * 16}, {"X": 1})
    with pytest.raises(InputError, match="16"):
        scan_risk({"A": [0] * 15}, {"A": 1})


def test_generated_future_array_matches_mcmillan():
    p = load_span_params("ES")
    arr = generate_risk_array("future", 410.0, p.psr, multiplier=500.0, extreme_multiple=p.extreme_multiple,
                              convention="profit_positive")
    assert np.array_equal(np.round(arr, -1), MCMILLAN_FUTURE)


def _b76_call(f, k, t, v):
    d1 = (math.log(f / k) + 0.5 * v * v * t) / (v * math.sqrt(t))
    return f * norm.cdf(d1) - k * norm.cdf(d1 - v * math.sqrt(t))


def test_generated_option_array_by_hand():
    f, k, t, v, psr, vsr, m = 100.0, 105.0, 0.5, 0.3, 6.0, 0.05, 10.0
    arr = generate_risk_array("call", f, psr, vsr, strike=k, time_to_expiry=t, vol=v, multiplier=m,
                              extreme_multiple=3.0, convention="profit_positive")
    v0 = _b76_call(f, k, t, v)
    assert arr[0] == pytest.approx((_b76_call(f, k, t, v + vsr) - v0) * m)  # 1: price 0, vol up
    assert arr[5] == pytest.approx((_b76_call(f - 2.0, k, t, v - vsr) - v0) * m)  # 6: -1/3, vol down
    assert arr[10] == pytest.approx((_b76_call(f + 6.0, k, t, v + vsr) - v0) * m)  # 11: +1, vol up
    assert arr[15] == pytest.approx(0.35 * (_b76_call(f - 18.0, k, t, v) - v0) * m)  # 16: -3 PSR, 35%
    loss = generate_risk_array("call", f, psr, vsr, strike=k, time_to_expiry=t, vol=v, multiplier=m)
    assert np.allclose(loss, -arr)


def test_spread_charge_pairs_months_in_order():
    assert spread_charge({"M1": 2.0, "M2": -1.0, "M3": -3.0}, 100.0) == 200.0
    assert spread_charge({"M1": 2.0, "M2": 1.0}, 100.0) == 0.0
    assert spread_charge({"M1": 1.0, "M2": -1.0}, 100.0, {"M1/M2": 40.0}) == 40.0


def test_requirement_small_example_by_hand():
    contracts = pd.DataFrame([
        dict(contract="F1", kind="future", month="1", price=100.0, multiplier=10.0),
        dict(contract="F2", kind="future", month="2", price=101.0, multiplier=10.0),
        dict(contract="C", kind="call", month="1", price=100.0, strike=100.0, time_to_expiry=0.25, vol=0.2,
             multiplier=10.0),
    ])
    params = dict(psr=6.0, vsr=0.05, extreme_multiple=3.0, short_option_minimum=5.0, spread_rate=7.0)
    # calendar spread: scan risk 0 (same moves), one spread charged
    r = span_requirement(contracts, {"F1": 1, "F2": -1}, params)
    assert r.scan_risk == 0.0 and r.spread_charge == 7.0 and r.requirement == 7.0
    # long call: requirement = max(scan, SOM = 0) - NOV
    r = span_requirement(contracts, {"C": 1}, params)
    premium = _b76_call(100.0, 100.0, 0.25, 0.2) * 10.0
    assert r.net_option_value == pytest.approx(premium)
    assert r.requirement == pytest.approx(r.scan_risk - premium)
    # short call: the short option minimum floors the risk part
    r = span_requirement(contracts, {"C": -1}, dict(params, short_option_minimum=1e6))
    assert r.requirement == pytest.approx(1e6 + premium)


def test_model_file_loads_and_rejects_unknown_product():
    p = load_span_params("ES")
    assert p.psr == 20.0 and p.extreme_weight == 0.35
    with pytest.raises(ModelError, match="products.NOPE"):
        load_span_params("NOPE")


def test_malformed_case_file(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps([{"id": "x", "positions": []}]))
    with pytest.raises(CaseFormatError, match="risk_arrays"):
        run(f)
    f.write_text(json.dumps([{"id": "x", "risk_arrays": {"A": [0] * 16}, "positions": [{"contract": "A"}],
                              "expected_scan_risk": 0},
                             {"id": "y", "risk_arrays": {"A": [0] * 16}, "positions": [], "expected_scan_risk": 0}]))
    res = run(f)
    assert [c.passed for c in res.cases] == [False, True]
    assert "quantity" in res.cases[0].error


def test_illustrative_products_give_the_scan_range_as_a_fraction_of_the_price():
    p = load_span_params("BTC", spot=100000.0)
    assert p.psr == pytest.approx(30000.0) and p.vsr == 0.1 and p.extreme_multiple == 2.0
    with pytest.raises(ModelError, match=r"products\.BTC\.psr_fraction"):
        load_span_params("BTC")
