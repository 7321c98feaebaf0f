"""Deribit portfolio margin (risk matrix): published case, parameter file, properties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.engine.params_files import load_deribit_pm_params
from greeksmargin.errors import CaseFormatError, InputError, ModelError
from greeksmargin.methodologies.deribit_pm import DeribitPMParams, deribit_pm_margin
from greeksmargin.validation.deribit_pm import run

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases" / "deribit_pm"
CASE = json.loads((CASES / "cases.json").read_text())[0]
BTC = load_deribit_pm_params("BTC")
TS = CASE["timestamp_ms"]
DAY_MS = 86_400_000


def test_published_case_within_1e8_coin():
    res = run(CASES)
    assert res.n_passed == 1 and res.n_failed == 0
    c = res.cases[0]
    for k in ("worst_case", "roll_shock", "risk_matrix_margin", "maintenance_margin"):
        assert abs(c.computed[k] - c.expected[k]) <= 1e-8
    assert np.allclose(c.computed["aggregated_pnl_coin"], c.expected["aggregated_pnl_coin"], atol=1e-8, rtol=0)
    exp = c.expected["position_pnl_coin"]["BTC-PERPETUAL"]
    assert np.allclose(c.computed["position_pnl_coin"]["BTC-PERPETUAL"], exp, atol=1e-8, rtol=0)


def test_inverse_pnl_formula():
    r = deribit_pm_margin([dict(instrument="P", kind="perpetual", size=2.0)], 50_000.0, BTC)
    assert r.position_pnl["P"][0, 1] == pytest.approx(2.0 * (1 - 1 / 0.84))
    assert r.worst_case == pytest.approx(-2.0 * (1 - 1 / 0.84))
    assert r.maintenance_margin == pytest.approx(0.8 * r.risk_matrix_margin)


def test_zero_position_gives_zero():
    for positions in ([], [dict(instrument="P", kind="perpetual", size=0.0)]):
        r = deribit_pm_margin(positions, 60_000.0, BTC)
        assert r.worst_case == 0.0 and r.roll_shock == 0.0 and r.risk_matrix_margin == 0.0


sizes = st.floats(min_value=-50.0, max_value=50.0, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(sizes, sizes, st.floats(min_value=0.01, max_value=5.0))
def test_scaling_sizes_scales_worst_case(q1, q2, k):
    def pos(s):
        return [dict(instrument="P", kind="perpetual", size=s * q1),
                dict(instrument="F", kind="future", size=s * q2, expiry_ms=TS + 30 * DAY_MS)]

    base = deribit_pm_margin(pos(1.0), 60_000.0, BTC, TS)
    scaled = deribit_pm_margin(pos(k), 60_000.0, BTC, TS)
    assert scaled.worst_case == pytest.approx(k * base.worst_case, rel=1e-12, abs=1e-15)
    assert scaled.roll_shock == pytest.approx(k * base.roll_shock, rel=1e-12, abs=1e-15)
    assert base.worst_case >= 0.0


def test_pnl_offset_counts_part_of_gains():
    eth = load_deribit_pm_params("ETH")
    assert eth.pnl_offset == 0.6 and eth.price_range == 0.18
    r = deribit_pm_margin([dict(instrument="P", kind="perpetual", size=1.0)], 3_000.0, eth)
    assert r.standard[-1, 1] == pytest.approx(0.6 * (1 - 1 / 1.18))


def test_roll_shock_rules():
    fut = [dict(instrument="F", kind="future", size=-3.0, expiry_ms=TS + 365 * DAY_MS)]
    r = deribit_pm_margin(fut, 60_000.0, BTC, TS)
    assert r.roll_shock == pytest.approx(3.0 * 0.075)  # 0.075 * T > 0.01
    p = DeribitPMParams.from_dict({**BTC.to_dict(), "roll_shock_rule": "min"})
    assert deribit_pm_margin(fut, 60_000.0, p, TS).roll_shock == pytest.approx(3.0 * 0.01)


def test_delta_shock_zero_below_threshold_positive_above():
    below = deribit_pm_margin([dict(instrument="P", kind="perpetual", size=100.0)], 60_000.0, BTC)
    above = deribit_pm_margin([dict(instrument="P", kind="perpetual", size=500.0)], 60_000.0, BTC)
    assert below.delta_shock == 0.0
    assert 0.0 < above.delta_shock <= 0.1 * 500.0


def test_short_option_worst_case_and_extended_table():
    opt = dict(instrument="C", kind="option", size=-1.0, strike=70_000.0, option_type="call", vol=0.6,
               underlying_price=66_000.0, expiry_ms=TS + 30 * DAY_MS)
    r = deribit_pm_margin([opt], 65_666.0, BTC, TS)
    assert r.standard.shape == (9, 3) and r.extended.shape == (8,)
    assert r.worst_case == pytest.approx(-r.standard.min())
    # big short call: the extended +500% entry is beyond the dampener and counted at R/5
    big = deribit_pm_margin([dict(opt, size=-1000.0)], 65_666.0, BTC, TS)
    assert big.extended[-1] < 0.0


def test_model_file_and_bad_parameters():
    assert BTC.price_range == 0.16 and BTC.mm_factor == 0.8
    with pytest.raises(ModelError, match="roll_shock_rule"):
        DeribitPMParams.from_dict({"roll_shock_rule": "other"})
    with pytest.raises(ModelError, match="nope"):
        DeribitPMParams.from_dict({"nope": 1}, strict=True)
    with pytest.raises(InputError, match="kind"):
        deribit_pm_margin([dict(instrument="X", kind="swap", size=1.0)], 1.0, BTC)


def test_malformed_case_files(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(CaseFormatError, match="list"):
        run(f)
    f.write_text(json.dumps([{"id": "a", "positions": []}]))
    with pytest.raises(CaseFormatError, match="index_price"):
        run(f)
    broken = {k: v for k, v in CASE.items() if k != "expected"}
    f.write_text(json.dumps([broken, CASE]))
    res = run(f)
    assert [c.passed for c in res.cases] == [False, True]
    assert "expected" in res.cases[0].error
