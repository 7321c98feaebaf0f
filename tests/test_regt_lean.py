"""``validate regt`` on the Lean-format cases (QuantConnect/Lean strategy buying-power tests, broker figures)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from greeksmargin.errors import CaseFormatError
from greeksmargin.validation.core import run_suite

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "validation" / "cases" / "regt"
LEAN = FOLDER / "lean_cases.json"
DOC = json.loads(LEAN.read_text())


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "lean.json"
    path.write_text(json.dumps(doc))
    return path


def _one(case: dict) -> dict:
    return {"source": DOC["source"], "n_cases": 1, "cases": [case]}


def _case(cid: str) -> dict:
    return copy.deepcopy(next(c for c in DOC["cases"] if c["id"] == cid))


def test_every_seen_case_runs_and_the_exact_figures_pass():
    res = run_suite("regt", LEAN)
    assert len(res.cases) == DOC["n_cases"] == 32
    assert [c.id for c in res.cases if c.error] == []
    assert res.n_failed == 0
    by = {c.id: c for c in res.cases}
    pairing = by["lean-overlapping-bull-call-spreads"]
    assert pairing.status == "passed" and pairing.computed["lean_total_maintenance_margin_exact"] == 0.0
    naked = by["lean-naked-TestShortPutsITM"]
    assert naked.status == "passed" and naked.computed["lean_maintenance_margin_exact"] == pytest.approx(10080.0)
    assert res.n_passed == 2 and res.n_not_checked == 30


def test_interleaved_spreads_zero_by_optimal_pairing_and_greedy_reported_beside():
    c = next(c for c in run_suite("regt", LEAN).cases if c.id == "lean-overlapping-bull-call-spreads")
    assert c.detail["maintenance_margin"] == 0.0 and c.detail["greedy_maintenance_margin"] == 0.0
    assert c.detail["long_premium"] == pytest.approx(1483.0)  # paid in cash, not margin
    assert c.fields["lean_total_maintenance_margin_exact"]["ok"] is True


def test_information_fields_show_their_gap_and_are_not_checked():
    by = {c.id: c for c in run_suite("regt", LEAN).cases}
    call = by["lean-NakedCall-long1"]  # short 300 call at 112, SPY 410: 112 + 20% x 410 = 194 a share
    assert call.computed["lean_initial_margin_asserted"] == pytest.approx(19400.0)
    f = call.fields["ib_initial_margin"]
    assert f["ok"] is None and "information" in f["reason"] and "-1,800.00" in f["reason"]
    assert "tolerance" in call.fields["lean_initial_margin_tolerance_rel"]["reason"]
    assert "comment" in call.fields["lean_unit_im_comment"]["reason"]
    assert call.fields["lean_unit_im_comment"]["ok"] is None
    index_call = by["lean-ShortIndexOptionsMargin-Call-3800"]  # broad-based index 15%: 750 + 682.5 a unit
    assert index_call.computed["ib_margin_unit"] == pytest.approx(143250.0)
    ladder = by["lean-BullPutLadder-long1"]  # the optimum pairs the short 552 put with the 548 put
    assert ladder.detail["initial_margin"] == 400.0 and ladder.detail["greedy_initial_margin"] == 800.0


def test_a_wrong_exact_figure_fails(tmp_path):
    case = _case("lean-naked-TestShortPutsITM")
    case["expected"]["lean_maintenance_margin_exact"] = 10080.02
    res = run_suite("regt", _write(tmp_path, _one(case)))
    assert res.n_failed == 1 and res.cases[0].fields["lean_maintenance_margin_exact"]["ok"] is False


def test_a_new_case_of_the_format_is_computed_from_the_rules(tmp_path):
    """Held-out style cases: short 2 index puts 5000 at 445 with the index at 4,550 (broad-based, 15%):
    2 x 100 x (445 + 0.15 x 4,550 - 0) = 225,500; a covered call on 100 shares at 410: FINRA maintenance 25% of
    41,000 = 10,250 (nothing on the call)."""
    case = {"id": "new-index-puts", "group": "naked_exact",
            "underlying": {"symbol": "SPX", "price": 4550.0, "index_type": "broad_index"},
            "legs": [{"kind": "option", "option_type": "put", "strike": 5000.0, "expiry": None, "price": 445.0,
                      "quantity": -2, "multiplier": 100}],
            "expected": {"lean_maintenance_margin_exact": 225500.0}}
    covered = {"id": "new-covered-call", "group": "strategy", "strategy": "CoveredCall", "group_quantity": 1,
               "underlying": {"symbol": "SPY", "price": 410.0, "index_type": "etf"},
               "legs": [{"kind": "stock", "quantity": 100},
                        {"kind": "option", "option_type": "call", "strike": 420.0, "expiry": "2023-05-19",
                         "price": 1.5, "quantity": -1, "multiplier": 100}],
               "expected": {"lean_maintenance_margin_exact": 10250.0}}
    res = run_suite("regt", _write(tmp_path, {"source": DOC["source"], "n_cases": 2, "cases": [case, covered]}))
    assert res.n_passed == 2, [c.fields for c in res.cases]
    assert res.cases[1].detail["initial_margin"] == 20500.0  # Reg T 50% initial


def test_the_folder_runs_both_formats():
    res = run_suite("regt", FOLDER)
    assert len(res.cases) == 13 + 31 + 32 and res.n_failed == 0


@pytest.mark.parametrize("where, change, message", [
    ("case", lambda c: c.update(colour="red"), "colour"),
    ("case", lambda c: c.update(group="butterflies"), "butterflies"),
    ("case", lambda c: c["expected"].update(lean_margin_guess=1.0), "lean_margin_guess"),
    ("case", lambda c: c["underlying"].update(beta=1.2), "beta"),
    ("case", lambda c: c["legs"][0].update(kind="future"), "future"),
    ("case", lambda c: c["legs"][0].update(delta=0.5), "delta"),
    ("case", lambda c: c["legs"][0].update(expiry="19 May"), "expiry"),
    ("case", lambda c: c["expected"].update(ib_initial_margin="21200"), "ib_initial_margin"),
])
def test_unknown_keys_and_forms_are_errors_naming_them(tmp_path, where, change, message):
    case = _case("lean-NakedCall-long1")
    change(case)
    res = run_suite("regt", _write(tmp_path, _one(case)))
    assert res.n_failed == 1 and message in (res.cases[0].error or "")


def test_unknown_top_level_key_or_wrong_count_is_a_file_error(tmp_path):
    doc = _one(_case("lean-NakedCall-long1"))
    with pytest.raises(CaseFormatError, match="format_version"):
        run_suite("regt", _write(tmp_path, {**doc, "format_version": 2}))
    with pytest.raises(CaseFormatError, match="n_cases"):
        run_suite("regt", _write(tmp_path, {**doc, "n_cases": 5}))


def test_validate_cli_on_the_lean_file(tmp_path):
    from greeksmargin.cli import main

    out = tmp_path / "lean.json"
    assert main(["validate", "regt", "--cases", str(LEAN), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["summary"] == {"passed": 2, "failed": 0, "not_checked": 30}
    case = next(c for c in doc["cases"] if c["id"] == "lean-NakedCall-long1")
    assert set(case["computed"]) == set(case["expected"])


def test_keys_of_the_format_families_resolve_to_their_figure(tmp_path):
    """``*_exact`` / ``lean_*_asserted`` / ``ib_*`` keys not in the seen file: initial or maintenance, per unit."""
    case = _case("lean-naked-TestShortPutsITM")  # 2 short puts: 10,080 in total, 5,040 a contract
    case["expected"] = {"lean_initial_margin_exact": 10080.0, "ib_initial_margin_unit": 5100.0,
                        "lean_maintenance_margin_unit_exact": 5040.0}
    c = run_suite("regt", _write(tmp_path, _one(case))).cases[0]
    assert c.status == "passed"
    assert c.fields["lean_maintenance_margin_unit_exact"]["ok"] is True
    assert c.fields["ib_initial_margin_unit"]["ok"] is None and "-60.00" in c.fields["ib_initial_margin_unit"]["reason"]
    case["expected"] = {"ib_volatility": 0.2}
    assert "names no margin figure" in run_suite("regt", _write(tmp_path, _one(case))).cases[0].error
