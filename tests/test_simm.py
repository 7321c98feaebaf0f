"""ISDA SIMM (equity and FX): published unit-test cases, parameter files and properties."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.engine.params_files import load_simm_params
from greeksmargin.errors import CaseFormatError, InputError, ModelError
from greeksmargin.methodologies.simm import simm_margin
from greeksmargin.validation.simm import run

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases" / "simm"
P25 = load_simm_params("2.5")


def row(amount, bucket="1", qualifier="Q1", risk_type="Risk_Equity", label1="", pc="Equity"):
    return dict(ProductClass=pc, RiskType=risk_type, Qualifier=qualifier, Bucket=bucket, Label1=label1, Label2="",
                AmountUSD=amount)


def test_published_cases_all_pass_within_one_usd():
    result = run(CASES / "cases.json")
    assert len(result.cases) == 11
    for case in result.cases:
        assert case.error is None, case.error
        for h, exp in case.expected.items():
            assert abs(case.computed[h] - exp) <= 1.0, (case.id, h)
    assert result.n_failed == 0


def test_single_case_file_path_and_lower_case_columns():
    doc = json.loads((CASES / "cases.json").read_text())
    rows = [doc["sensitivities"]["S_EQ_1"]]  # lower-case names of the case file
    assert simm_margin(rows, load_simm_params("2.5"), "10d").total == pytest.approx(156_000_000.0)
    assert run(CASES / "cases.json").n_passed == 11


def test_concentration_and_one_day_without_it():
    # 12mm in bucket 1 (threshold 10mm): CR = sqrt(1.2); 1-day has no concentration
    r10 = simm_margin([row(12e6)], P25, "10d")
    r1 = simm_margin([row(12e6)], P25, "1d")
    assert r10.total == pytest.approx(26 * 12e6 * math.sqrt(1.2))
    assert r1.total == pytest.approx(9.3 * 12e6)


def test_residual_is_added_not_correlated():
    a = simm_margin([row(1e6, "1", "A")], P25).total
    r = simm_margin([row(0.5e6, "Residual", "R")], P25).total
    both = simm_margin([row(1e6, "1", "A"), row(0.5e6, "residual", "R")], P25).total
    assert both == pytest.approx(a + r)


def test_vega_and_curvature_single_sensitivity_by_hand():
    from scipy.stats import norm

    alpha, q = norm.ppf(0.99), norm.ppf(0.995)
    sigma = 26 * math.sqrt(365 / 14) / alpha
    vega = 0.45 * 0.58 * sigma * 1.2e6
    sf = 0.5 * 14 / (365 / 12)
    curv = sf * sigma * 1.2e6 * (q**2)  # theta = 0: lambda = q^2 - 1, margin = CVR (1 + lambda)
    res = simm_margin([row(1.2e6, risk_type="Risk_EquityVol", label1="1m")], P25, "10d")
    assert res.measure("Vega") == pytest.approx(vega)
    assert res.measure("Curvature") == pytest.approx(curv)
    assert res.total == pytest.approx(vega + curv)


def test_volatility_index_bucket_has_no_curvature():
    res = simm_margin([row(5e7, "12", "VIX", "Risk_EquityVol", "30y")], P25, "10d")
    assert res.measure("Curvature") == 0.0
    assert res.measure("Vega") > 0.0


def test_product_classes_are_added():
    eq = simm_margin([row(1e6)], P25).total
    both = simm_margin([row(1e6), row(1e6, pc="Credit")], P25)
    assert both.total == pytest.approx(2 * eq)
    assert set(both.product_classes) == {"Equity", "Credit"}


def test_simm_26_delta_by_hand():
    # v2.6 (ORE transcription): bucket 1 RW 30, threshold 3mm -> CR = sqrt(2) for 6mm
    p26 = load_simm_params("2.6")
    assert p26.version == "2.6"
    assert simm_margin([row(6e6)], p26, "10d").total == pytest.approx(30 * 6e6 * math.sqrt(2))
    assert simm_margin([row(6e6)], p26, "1d").total == pytest.approx(8.8 * 6e6)


@pytest.mark.parametrize("name", ["2.5", "2.6", "2.7", "2.8", "simm-2.5"])
def test_model_files_load(name):
    p = load_simm_params(name)
    assert len(p.buckets) == 13
    assert p.inter_bucket()[1].shape == (12, 12)


def test_bad_inputs_name_the_column_or_key(tmp_path):
    with pytest.raises(InputError, match="RiskType"):
        simm_margin([row(1.0, risk_type="Risk_Bogus")], P25)
    with pytest.raises(InputError, match="Bucket"):
        simm_margin([row(1.0, bucket="99")], P25)
    with pytest.raises(ModelError, match="unknown SIMM version"):
        load_simm_params("9.9")
    bad = dict(P25.raw)
    bad["equity"] = {k: v for k, v in P25.raw["equity"].items() if k != "inter_bucket_correlation"}
    with pytest.raises(ModelError, match="equity.inter_bucket_correlation"):
        load_simm_params(bad)


def test_malformed_case_files(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"cases": []}))
    with pytest.raises(CaseFormatError, match="sensitivities"):
        run(f)
    f.write_text(json.dumps({"sensitivities": {"A": row(1e6)}, "cases": [
        {"id": "bad", "sensitivities": ["NOPE"], "expected": {"10d": 1.0}},
        {"id": "ok", "sensitivities": ["A"], "expected": {"10d": 26e6}}]}))
    res = run(f)
    assert [c.passed for c in res.cases] == [False, True]
    assert "NOPE" in res.cases[0].error


amounts = st.floats(min_value=-1e5, max_value=1e5, allow_nan=False).filter(lambda x: abs(x) > 1.0)
buckets = st.sampled_from([str(b) for b in range(1, 12)] + ["Residual"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(amounts, buckets), min_size=1, max_size=6), st.floats(min_value=0.1, max_value=3.0))
def test_delta_margin_homogeneous_below_thresholds(items, k):
    crif = [row(a, b, f"Q{i}") for i, (a, b) in enumerate(items)]
    scaled = [row(k * a, b, f"Q{i}") for i, (a, b) in enumerate(items)]
    assert simm_margin(scaled, P25).total == pytest.approx(k * simm_margin(crif, P25).total, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), buckets,
       st.sampled_from(["Risk_Equity", "Risk_EquityVol"]))
def test_sign_flip_invariance_of_single_qualifier_delta_and_vega(a, b, rt):
    lab = "1y" if rt == "Risk_EquityVol" else ""
    plus = simm_margin([row(a, b, "Q", rt, lab)], P25)
    minus = simm_margin([row(-a, b, "Q", rt, lab)], P25)
    for m in ("Delta", "Vega"):
        assert plus.measure(m) == pytest.approx(minus.measure(m), rel=1e-12, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), buckets,
                          st.sampled_from(["Risk_Equity", "Risk_EquityVol"]),
                          st.sampled_from(["2w", "1m", "6m", "1y", "5y", "30y"])), min_size=1, max_size=6))
def test_one_day_not_above_ten_day(items):
    crif = [row(a, b, f"Q{i % 3}", rt, lab if rt == "Risk_EquityVol" else "") for i, (a, b, rt, lab) in
            enumerate(items)]
    assert simm_margin(crif, P25, "1d").total <= simm_margin(crif, P25, "10d").total + 1e-6


def fx(amount, qualifier, risk_type="Risk_FX", label1="", pc="RatesFX"):
    return dict(ProductClass=pc, RiskType=risk_type, Qualifier=qualifier, Bucket="", Label1=label1, Label2="",
                AmountUSD=amount)


def test_fx_delta_by_hand():
    assert simm_margin([fx(1e6, "EUR")], P25).total == pytest.approx(7.4e6)
    # regular vs high-vol currency: weights 7.4 and 13.6, correlation 0.27 (USD calculation currency)
    two = simm_margin([fx(1e6, "EUR"), fx(-1e6, "BRL")], P25).total
    assert two == pytest.approx(math.sqrt(7.4**2 + 13.6**2 - 2 * 0.27 * 7.4 * 13.6) * 1e6)
    assert simm_margin([fx(1e6, "USD")], P25).total == 0.0  # calculation currency: no risk
    big = simm_margin([fx(6000e6, "EUR")], P25).total  # category-1 threshold 5100mm
    assert big == pytest.approx(7.4 * 6000e6 * math.sqrt(6000 / 5100))


def test_fx_vega_curvature_and_cross_risk_class_by_hand():
    from scipy.stats import norm

    sigma = 7.4 * math.sqrt(365 / 14) / norm.ppf(0.99)
    r = simm_margin([fx(1e6, "EURUSD", "Risk_FXVol", "1m")], P25)
    assert r.measure("Vega", "FX") == pytest.approx(0.47 * 0.52 * sigma * 1e6)
    assert r.measure("Curvature", "FX") == pytest.approx(0.5 * 14 / (365 / 12) * sigma * 1e6 * norm.ppf(0.995) ** 2)
    a = simm_margin([fx(1e6, "EUR", pc="Equity")], P25).total
    e = simm_margin([row(1e6)], P25).total
    both = simm_margin([fx(1e6, "EUR", pc="Equity"), row(1e6)], P25).total
    assert both == pytest.approx(math.sqrt(a * a + e * e + 2 * 0.35 * a * e))  # psi(Equity, FX) = 0.35 in v2.5
    with pytest.raises(InputError, match="Qualifier"):
        simm_margin([fx(1e6, "EUR", "Risk_FXVol", "1m")], P25)
