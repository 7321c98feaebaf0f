"""Validation suite ``pricing``: the published cases pass; further cases of the format; honesty both ways."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest

from greeksmargin.cli import main
from greeksmargin.errors import CaseFormatError
from greeksmargin.validation import run_suite

CASES = Path(__file__).resolve().parents[1] / "validation" / "cases" / "pricing" / "cases.json"
DOC = json.loads(CASES.read_text())


def _by_id(cid: str) -> dict:
    return copy.deepcopy(next(c for c in DOC["cases"] if c["id"] == cid))


def _run(tmp_path: Path, cases: list, name: str = "c.json") -> list:
    f = tmp_path / name
    f.write_text(json.dumps({"n_cases": len(cases), "cases": cases}))
    return run_suite("pricing", f).cases


def test_published_cases_all_pass_and_cli_json(tmp_path, capsys):
    res = run_suite("pricing", CASES.parent)
    assert (res.n_passed, res.n_failed, res.n_not_checked) == (81, 0, 0)
    out = tmp_path / "p.json"
    assert main(["validate", "pricing", "--cases", str(CASES.parent), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["summary"] == {"passed": 81, "failed": 0, "not_checked": 0}
    conv = next(c for c in doc["cases"] if c["id"] == "delta-conv-02-PaSpot")
    assert set(conv["computed"]) == {"delta", "strike"} and conv["expected"]["strike"] == 1.600545
    assert "pricing: 81 passed, 0 failed" in capsys.readouterr().out


def test_perturbed_expected_values_fail(tmp_path):
    price = _by_id("haug-eu-01")
    price["expected"]["price"] += 2e-4  # tolerance 1e-4
    baw = _by_id("haug-american_baw-11")
    baw["expected"]["price"] += 0.004  # tolerance 3e-3
    bs = _by_id("haug-american_bjerksund_stensland-02")
    bs["expected"]["price"] = 4.4712  # the 2002 value is not the published (1993) one
    strike = _by_id("delta-conv-06-PaSpot")
    strike["strike"] += 0.05  # moves the delta and the strike check
    res = _run(tmp_path, [price, baw, bs, strike])
    assert [c.status for c in res] == ["failed"] * 4
    assert res[0].fields["price"]["reason"].startswith("out of tolerance")
    assert res[3].fields["strike"]["ok"] is False


def test_further_cases_of_the_format(tmp_path):
    """Cases not in the shipped file, with independent published or analytic figures."""
    cases = []
    value = _by_id("haug-eu-05")
    value["id"], value["expected"] = "value-key", {"value": value["expected"]["price"]}
    cases.append(value)
    for src, key in (("haug-greek-04-gamma", "gamma"), ("haug-greek-06-vega", "vega"),
                     ("haug-greek-10-rho", "rho")):
        # American call without dividends = European: the American Greeks must meet Haug's European figures
        c = _by_id(src)
        c["id"], c["group"], c["exercise"] = f"american-{key}", "american_baw", "american"
        cases.append(c)
        assert key in c["expected"]
    # Haug (2007) ch. 3: Bjerksund-Stensland (1993) call, S=42, K=40, T=0.75, r=0.04, b=-0.04, vol=0.35
    cases.append({"id": "bs-haug", "group": "american_bjerksund_stensland", "exercise": "american",
                  "option_type": "call", "strike": 40.0, "spot": 42.0, "dividend_yield": 0.08, "rate": 0.04,
                  "time_years": 0.75, "vol": 0.35, "expected": {"price": 5.2704}, "tolerance_abs": 1e-4})
    # BAW table as asserted by google/tf-quant-finance (r=0.08, q=0.12, vol=0.2, T=0.25, K=100, S=100), 2 decimals
    cases.append({"id": "baw-table", "group": "american_baw", "option_type": "call", "strike": 100.0,
                  "spot": 100.0, "dividend_yield": 0.12, "rate": 0.08, "time_years": 0.25, "vol": 0.2,
                  "expected": {"price": 3.52}, "tolerance_abs": 0.005})
    # theta per day and elasticity from the published theta / delta cases
    theta = _by_id("haug-greek-08-theta")
    theta["id"], theta["expected"] = "theta-day", {"theta_per_day": -31.1924 / 365.0, "theta": -31.1924}
    cases.append(theta)
    # forward delta 0.5 exactly at K = F exp(s^2/2) (d+ = 0); spot delta D_f / 2
    s, dd, df, sd = 1.35, 0.99, 0.97, 0.1
    k = s * df / dd * math.exp(sd * sd / 2)
    for kind, delta in (("Fwd", 0.5), ("Spot", 0.5 * df)):
        cases.append({"id": f"atm-{kind}", "group": "delta_convention", "option_type": "call", "delta_type": kind,
                      "spot": s, "domestic_discount": dd, "foreign_discount": df, "std_dev": sd, "strike": k,
                      "expected": {"delta": delta}})
    res = _run(tmp_path, cases)
    bad = [(c.id, c.error, c.fields) for c in res if c.status != "passed"]
    assert not bad
    assert res[-1].fields["delta"]["tolerance"] == "abs <= 0.001"  # the README default
    assert res[-1].fields["strike"]["tolerance"] == "abs <= 0.01"


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c["expected"].update({"volga": 1.0}), "unknown expected figure 'volga'"),
    (lambda c: c.update({"dividend": 0.1}), "unknown key 'dividend'"),
    (lambda c: c.update({"group": "american_ju"}), "key 'group'"),
    (lambda c: c.pop("vol"), "missing key 'vol'"),
    (lambda c: c.update({"vol": "0.3"}), "key 'vol'"),
    (lambda c: c.update({"exercise": "bermudan"}), "key 'exercise'"),
    (lambda c: (c.pop("group"), c.update({"exercise": "american"})), "needs 'group'"),
    (lambda c: c.update({"exercise": "american"}), "group 'european_value' with exercise 'american'"),
    (lambda c: c.update({"tolerance_abs": {"price": 1e-4}}), "key 'tolerance_abs'"),
    (lambda c: c.update({"vol": 0.0, "group": "american_baw"}), "vol"),
])
def test_unknown_or_bad_keys_are_errors(tmp_path, mutate, message):
    case = _by_id("haug-eu-01")
    mutate(case)
    good = _by_id("haug-eu-02")
    res = _run(tmp_path, [case, good])
    assert res[0].status == "failed" and res[0].error is not None and message in res[0].error
    assert res[1].status == "passed"  # the run goes on


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda c: c["expected"].update({"strike": 1.6}), "unknown expected figure 'strike'"),
    (lambda c: c.update({"delta_type": "AtmDeltaNeutral"}), "unknown delta type 'AtmDeltaNeutral'"),
    (lambda c: c["tolerance_abs"].update({"vega": 1.0}), "unknown key 'vega'"),
    (lambda c: c.update({"tolerance_abs": 0.001}), "key 'tolerance_abs'"),
    (lambda c: c.pop("std_dev"), "missing key 'std_dev'"),
])
def test_delta_case_bad_keys(tmp_path, mutate, message):
    case = _by_id("delta-conv-02-PaSpot")
    mutate(case)
    res = _run(tmp_path, [case])
    assert res[0].status == "failed" and message in (res[0].error or "")


def test_file_level_form(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"source": {"repo": "x"}, "n_cases": 3, "cases": [_by_id("haug-eu-01")]}))
    with pytest.raises(CaseFormatError, match="n_cases is 3 but the file holds 1 cases"):
        run_suite("pricing", f)
    f.write_text(json.dumps({"cases": [_by_id("haug-eu-01")], "comment": "x"}))
    with pytest.raises(CaseFormatError, match="unknown key 'comment'"):
        run_suite("pricing", f)
    f.write_text(json.dumps({"source": {"repo": "x", "url": "y"}, "cases": [_by_id("haug-eu-01")]}))
    with pytest.raises(CaseFormatError, match="unknown key 'source.url'"):
        run_suite("pricing", f)
    assert main(["validate", "pricing", "--cases", str(f)]) == 2
    # a bare list of cases is the same format; a folder skips JSON files of other formats
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "list.json").write_text(json.dumps([_by_id("haug-eu-01"), _by_id("delta-conv-14-PaSpot")]))
    (folder / "other.json").write_text(json.dumps({"something": 1}))
    res = run_suite("pricing", folder)
    assert [c.status for c in res.cases] == ["passed", "passed"]
