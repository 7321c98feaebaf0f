"""ISDA SIMM v2.5 unit-test cases of every risk class: the 80 seen cases (10-day and 1-day) and the 481 10-day
cases of simm-lib, each within 1 USD; pass counts per group."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from greeksmargin.validation.simm import run, run_case

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases" / "simm"


def test_seen_cases_every_risk_class_and_horizon_within_one_usd():
    doc = json.loads((CASES / "full_seen.json").read_text())
    result = run(CASES / "full_seen.json")
    assert len(result.cases) == 80
    groups: Counter[str] = Counter()
    for case, spec in zip(result.cases, doc["cases"]):
        assert case.error is None, (case.id, case.error)
        assert set(case.computed) == {"10d", "1d"}
        for h in ("10d", "1d"):
            assert abs(case.computed[h] - spec["expected"][h]) <= 1.0, (case.id, h, case.computed[h])
        groups[spec["group"]] += 1
    assert result.n_failed == 0
    assert groups["Credit"] == 22 and groups["Commodities"] == 19 and groups["Rates & Fx"] == 26


def test_all_481_ten_day_unit_tests_within_one_usd():
    result = run(CASES / "simmlib_v2.5_10d.json")
    assert len(result.cases) == 481
    failed = [(c.id, c.error or c.computed) for c in result.cases if not c.passed]
    assert failed == []


def test_addon_lists_in_a_case():
    doc = json.loads((CASES / "simmlib_v2.5_10d.json").read_text())
    cases = {c["id"]: c for c in doc["cases"]}
    # C476: fixed 10mm + 20mm, notional factors 12.5% x 80mm and 25% x 160mm, a notional without factor
    r = run_case(cases["C476"], doc["sensitivities"])
    assert r.computed["10d"] == pytest.approx(80e6)
    # C472: product multipliers add (M - 1) x SIMM of each product class
    base = run_case(cases["C471"], doc["sensitivities"]).computed["10d"]
    with_mult = run_case(cases["C472"], doc["sensitivities"]).computed["10d"]
    assert with_mult - base == pytest.approx(711_115_710, abs=1.0)
    # loosely named keys are understood
    alt = {"id": "alt", "sensitivities": [], "expected": {"1d": 1.0},
           "fixed_addons": [5e6], "productMultipliers": [{"productClass": "RatesFX", "value": 2.0}]}
    assert run_case(alt, {}).computed["1d"] == pytest.approx(5e6)
