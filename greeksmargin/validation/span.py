"""Validation suite ``span``: aggregation of exchange-published SPAN risk arrays.

Case file format (JSON list of cases): ``id``, ``risk_arrays`` (contract -> 16 values per long contract),
``risk_array_convention`` (``profit_positive`` | ``loss_positive``), ``extreme_weights_applied`` (bool, default
true), ``positions`` (list of ``{contract, quantity}``), ``expected_scan_risk``. Pass: scan risk exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greeksmargin.methodologies.span import scan_risk
from greeksmargin.validation.core import (
    CaseResult,
    SuiteResult,
    Tolerance,
    check_case_list,
    is_case_list,
    load_case_files,
    require_keys,
    run_guarded,
)

REQUIRED = ("id", "risk_arrays", "positions", "expected_scan_risk")
#: the pass rule: scan risk exact
RULE = Tolerance("exact")


def _files(path: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    return load_case_files(path, lambda doc: is_case_list(doc, ("risk_arrays",)),
                           lambda doc, f: check_case_list(doc, f, "SPAN", ("risk_arrays",)),
                           "SPAN case file (JSON list of cases with 'risk_arrays')", "risk_arrays")


def run_case(case: dict[str, Any]) -> CaseResult:
    """Run one SPAN case; failures become a CaseResult with ``error``."""
    cid = case.get("id", "?")
    expected = {"scan_risk": case.get("expected_scan_risk")}

    def compute() -> CaseResult:
        require_keys(case, REQUIRED, cid)
        value = scan_risk(
            case["risk_arrays"],
            case["positions"],
            convention=case.get("risk_array_convention", "profit_positive"),
            extreme_weights_applied=bool(case.get("extreme_weights_applied", True)),
            extreme_weight=float(case.get("extreme_weight", 0.35)),
        )
        return CaseResult(cid, {"scan_risk": value}, expected, tolerance=RULE)

    return run_guarded(cid, expected, compute)


def run(path: Path) -> SuiteResult:
    """Run every SPAN case of a case file, or of every case file in a folder.

    Parameters
    ----------
    path : Path
        A case file or a folder.

    Returns
    -------
    SuiteResult
        Computed/expected ``{"scan_risk": value}`` per case.
    """
    path = Path(path)
    cases = [run_case(case) for _f, doc in _files(path) for case in doc]
    return SuiteResult("span", cases, source=str(path), tolerance="exact")
