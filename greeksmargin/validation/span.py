"""Validation suite ``span``: aggregation of exchange-published SPAN risk arrays.

Case file format (JSON list of cases): ``id``, ``risk_arrays`` (contract -> 16 values per long contract),
``risk_array_convention`` (``profit_positive`` | ``loss_positive``), ``extreme_weights_applied`` (bool, default
true), ``positions`` (list of ``{contract, quantity}``), ``expected_scan_risk``. Pass: scan risk exact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import io
from ..errors import CaseFormatError, GreeksMarginError, InputError
from ..rules.span import scan_risk
from .core import CaseResult, SuiteResult

REQUIRED = ("id", "risk_arrays", "positions", "expected_scan_risk")


def _is_case_file(doc: Any) -> bool:
    return isinstance(doc, list) and any(isinstance(c, dict) and "risk_arrays" in c for c in doc)


def _check_format(doc: Any, file: Path) -> None:
    if not isinstance(doc, list):
        raise CaseFormatError("expected a JSON list of SPAN cases", file=str(file))
    for i, case in enumerate(doc):
        if not isinstance(case, dict):
            raise CaseFormatError("a case must be an object", file=str(file), row=i)
    if doc and not any("risk_arrays" in c for c in doc):
        raise CaseFormatError("missing key 'risk_arrays'", file=str(file), row=0, column="risk_arrays")


def _read(file: Path) -> Any:
    try:
        return io.read_json(file)
    except CaseFormatError:
        raise
    except InputError as exc:
        raise CaseFormatError(f"not a JSON case file: {exc.reason}", file=str(file), row=exc.row) from exc


def _files(path: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    if path.is_dir():
        out = []
        for f in sorted(path.glob("*.json")):
            doc = _read(f)
            if _is_case_file(doc):
                _check_format(doc, f)
                out.append((f, doc))
        if not out:
            raise CaseFormatError("no SPAN case file (JSON list of cases with 'risk_arrays') in folder",
                                  file=str(path), column="risk_arrays")
        return out
    doc = _read(path)
    _check_format(doc, path)
    return [(path, doc)]


def run_case(case: dict[str, Any]) -> CaseResult:
    """Run one SPAN case; failures become a CaseResult with ``error``."""
    cid = case.get("id", "?")
    expected = {"scan_risk": case.get("expected_scan_risk")}
    try:
        for key in REQUIRED:
            if key not in case:
                raise CaseFormatError(f"case {cid}: missing key '{key}'", column=key)
        value = scan_risk(
            case["risk_arrays"],
            case["positions"],
            convention=case.get("risk_array_convention", "profit_positive"),
            extreme_weights_applied=bool(case.get("extreme_weights_applied", True)),
            extreme_weight=float(case.get("extreme_weight", 0.35)),
        )
        passed = value == float(case["expected_scan_risk"])
        return CaseResult(cid, {"scan_risk": value}, expected, passed)
    except (GreeksMarginError, ValueError, KeyError, TypeError) as exc:
        return CaseResult(cid, {}, expected, False, error=str(exc))


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
