"""Validation honesty (issue 12 item 4): every field compared, per-field results, not checked is not passed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from greeksmargin import io
from greeksmargin.cli import main
from greeksmargin.reports.validation import render_validation_report
from greeksmargin.validation import run_suite
from greeksmargin.validation.core import CaseResult, SuiteResult, Tolerance, compare_fields

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases"
CHAIN = CASES / "deribit_chain" / "btc_2020-05-14.csv"
FIELDS = {"mark_price", "delta", "gamma", "vega", "theta"}


@pytest.fixture(scope="module")
def chain():
    return io.read_table(CHAIN)


def _first(chain, checked: bool) -> int:
    res = run_suite("deribit-chain", CHAIN)
    return next(i for i, c in enumerate(res.cases) if c.detail["checked"] == checked)


def test_theta_off_10x_fails_with_the_field_named(tmp_path, chain):
    i = _first(chain, checked=True)
    t = chain.copy()
    t.loc[i, "theta"] *= 10.0
    f = tmp_path / "theta10.csv"
    io.write_table(t, f)
    out = tmp_path / "o.json"
    assert main(["validate", "deribit-chain", "--cases", str(f), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    case = doc["cases"][i]
    assert case["passed"] is False and case["status"] == "failed"
    assert set(case["fields"]) == FIELDS
    theta = case["fields"]["theta"]
    assert theta["ok"] is False and "out of tolerance" in theta["reason"]
    assert theta["expected"] == pytest.approx(10.0 * chain.loc[i, "theta"])
    assert theta["tolerance"].startswith("rel <= 0.001")
    assert all(case["fields"][k]["ok"] is True for k in FIELDS - {"theta"})
    assert doc["summary"] == {"passed": 227, "failed": 1, "not_checked": 82}
    assert set(case) >= {"id", "computed", "expected", "passed"}  # the README keys stay


def test_every_field_of_a_checked_instrument_is_compared(tmp_path, chain):
    i = _first(chain, checked=True)
    for name in sorted(FIELDS):
        t = chain.copy()
        t.loc[i, name] = t.loc[i, name] * 10.0 + (1.0 if t.loc[i, name] == 0 else 0.0)
        f = tmp_path / f"{name}.csv"
        io.write_table(t, f)
        case = run_suite("deribit-chain", f).cases[i]
        assert case.status == "failed", name
        assert [k for k, v in case.fields.items() if v["ok"] is False] == [name]


def test_unchecked_instrument_is_not_passed_whatever_its_theta(tmp_path, chain):
    i = _first(chain, checked=False)
    t = chain.copy()
    t.loc[i, "theta"] *= 10.0
    f = tmp_path / "t.csv"
    io.write_table(t, f)
    res = run_suite("deribit-chain", f)
    case = res.cases[i]
    assert case.status == "not_checked" and case.passed is False
    assert all(v["ok"] is None and "checked range" in v["reason"] for v in case.fields.values())
    assert res.to_dict()["summary"]["not_checked"] == 82 and res.n_passed == 228


def test_generic_core_for_any_suite():
    rule = {"margin_requirement": Tolerance("abs", 0.005), "cash_requirement": Tolerance("abs", 0.005)}
    ok = CaseResult("a", {"margin_requirement": 100.0, "cash_requirement": 50.0},
                    {"margin_requirement": 100.004, "cash_requirement": 50.0}, tolerance=rule)
    assert ok.status == "passed" and ok.passed
    bad = CaseResult("b", {"margin_requirement": 100.0, "cash_requirement": 50.0},
                     {"margin_requirement": 100.02, "cash_requirement": 50.0}, tolerance=rule)
    assert bad.status == "failed" and bad.fields["margin_requirement"]["ok"] is False
    assert bad.fields["cash_requirement"]["ok"] is True
    none = CaseResult("c", {"x": 1.0}, {"x": 1.0})  # no tolerance rule: nothing checked, not passed
    assert none.status == "not_checked" and not none.passed and "no tolerance rule" in none.fields["x"]["reason"]
    part = CaseResult("d", {"x": 1.0, "y": 5.0}, {"x": 1.0, "y": 2.0}, tolerance={"x": Tolerance("exact")})
    assert part.status == "passed" and part.fields["y"]["ok"] is None  # y is reported, not part of the rule
    err = CaseResult("e", {}, {"x": 1.0}, False, error="boom", tolerance=Tolerance("exact"))
    assert err.status == "failed" and err.fields["x"]["reason"] == "not computed: boom"
    nan = CaseResult("f", {"x": math.nan}, {"x": 1.0}, tolerance=Tolerance("rel", 1e-3))
    assert nan.status == "failed" and nan.fields["x"]["reason"] == "not computed"
    veto = CaseResult("g", {"x": 1.0}, {"x": 1.0}, False, tolerance=Tolerance("exact"))
    assert veto.status == "failed"  # the suite may fail a case the fields cannot (never pass one)
    s = SuiteResult("regt", [ok, bad, none, part, err, nan, veto])
    assert s.to_dict()["summary"] == {"passed": 2, "failed": 4, "not_checked": 1}
    assert s.summary_line() == "regt: 2 passed, 4 failed, 1 not checked"


def test_tolerance_kinds_and_lists():
    assert Tolerance("rel_max1", 1e-6).check(0.5 + 9e-7, 0.5)[0]  # max(1, |e|) = 1
    assert not Tolerance("rel", 1e-6).check(0.5 + 9e-7, 0.5)[0]
    assert Tolerance("rel", 1e-3, or_abs=5e-6).check(0.004, 0.004004)[0]  # within the rounding
    ok, why = Tolerance("abs", 1e-8).check([1.0, 2.0], [1.0, 2.1])
    assert not ok and "element 1" in why
    ok, why = Tolerance("abs", 1e-8).check([1.0], [1.0, 2.0])
    assert not ok and "shape" in why
    with pytest.raises(ValueError):
        Tolerance("fuzzy")
    f = compare_fields({"p": {"A": [1.0]}, "note": None}, {"p": {"A": [1.0]}, "note": "text"},
                       {"p": Tolerance("abs", 1e-8)})
    assert f["p.A"]["ok"] is True and f["note"]["ok"] is None


def test_deribit_pm_worst_case_perturbed_fails_named(tmp_path):
    doc = io.read_json(CASES / "deribit_pm" / "cases.json")
    doc[0]["expected"]["worst_case"] += 1e-6
    f = tmp_path / "pm.json"
    f.write_text(json.dumps(doc))
    case = run_suite("deribit-pm", f).cases[0]
    assert case.status == "failed" and case.fields["worst_case"]["ok"] is False
    assert case.fields["aggregated_pnl_coin"]["ok"] is True
    assert case.fields["position_pnl_coin.BTC-PERPETUAL"]["ok"] is None  # reported, not in the README rule


def test_simm_horizon_perturbed_fails_named(tmp_path):
    doc = io.read_json(CASES / "simm" / "cases.json")
    doc["cases"] = doc["cases"][:1]
    doc["cases"][0]["expected"]["10d"] += 2.0
    f = tmp_path / "simm.json"
    f.write_text(json.dumps(doc))
    case = run_suite("simm", f).cases[0]
    assert case.status == "failed"
    assert case.fields["10d"]["ok"] is False and case.fields["1d"]["ok"] is True


def test_html_report_shows_the_per_field_table(tmp_path, chain):
    i = _first(chain, checked=True)
    t = chain.head(i + 1).copy()
    t.loc[i, "theta"] *= 10.0
    f = tmp_path / "t.csv"
    io.write_table(t, f)
    html = render_validation_report([run_suite("deribit-chain", f)])
    assert "<th>tolerance</th>" in html and "<td>theta</td>" in html and ">NO<" in html
    assert "not checked" in html
