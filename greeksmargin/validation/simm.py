"""Validation suite ``simm``: ISDA SIMM unit-test cases (equity delta, vega, curvature; 10-day and 1-day).

Case file format (JSON object): ``sensitivities`` maps a name to a CRIF row (product_class, risk_type, qualifier,
bucket, label1, label2, amount_usd); ``cases`` is a list of ``{id, sensitivities: [names], expected: {"10d": x,
"1d": y}}``; a name listed twice counts twice. Optional ``simm_version`` (file or case level, default "2.5").
A case passes when every expected horizon is within :data:`TOLERANCE_USD`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CaseFormatError
from ..rules.simm import SimmParams, load_simm_params, simm_margin
from .core import CaseResult, SuiteResult, Tolerance, load_case_files, require_keys, run_guarded

TOLERANCE_USD = 1.0
#: the pass rule of every horizon
RULE = Tolerance("abs", TOLERANCE_USD)
DEFAULT_VERSION = "2.5"


@lru_cache(maxsize=8)
def _params(version: str) -> SimmParams:
    return load_simm_params(version)


def _is_case_file(doc: Any) -> bool:
    return isinstance(doc, dict) and ("cases" in doc or "sensitivities" in doc)


def _check_format(doc: Any, file: Path) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise CaseFormatError("expected a JSON object with 'sensitivities' and 'cases'", file=str(file))
    for key in ("sensitivities", "cases"):
        if key not in doc:
            raise CaseFormatError(f"missing key '{key}'", file=str(file), column=key)
    if not isinstance(doc["sensitivities"], dict):
        raise CaseFormatError("'sensitivities' must be an object name -> CRIF row", file=str(file),
                              column="sensitivities")
    if not isinstance(doc["cases"], list):
        raise CaseFormatError("'cases' must be a list", file=str(file), column="cases")
    return doc


def _files(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    return load_case_files(path, _is_case_file, _check_format,
                           "SIMM case file (JSON with 'sensitivities' and 'cases')", "cases")


def run_case(
    case: dict[str, Any],
    sensitivities: dict[str, Any],
    version: str = DEFAULT_VERSION,
    calculation_currency: str = "USD",
) -> CaseResult:
    """Run one SIMM case; failures become a CaseResult with ``error``."""
    cid = case.get("id", "?") if isinstance(case, dict) else "?"
    expected = case.get("expected", {}) if isinstance(case, dict) else {}

    def compute() -> CaseResult:
        if not isinstance(case, dict):
            raise CaseFormatError("a case must be an object")
        require_keys(case, ("sensitivities", "expected"), cid)
        names = case["sensitivities"]
        unknown = [n for n in names if n not in sensitivities]
        if unknown:
            raise CaseFormatError(f"case {cid}: unknown sensitivity name(s) {unknown}", column="sensitivities")
        rows = [sensitivities[n] for n in names]
        params = _params(str(case.get("simm_version", version)))
        ccy = str(case.get("calculation_currency", calculation_currency))
        computed = {h: simm_margin(rows, params, horizon=h, calculation_currency=ccy).total for h in expected}
        return CaseResult(cid, computed, expected, tolerance=RULE)

    return run_guarded(cid, expected, compute)


def run(path: Path) -> SuiteResult:
    """Run every SIMM case of a case file, or of every case file in a folder.

    Parameters
    ----------
    path : Path
        A case file or a folder.

    Returns
    -------
    SuiteResult
        One :class:`CaseResult` per case; computed/expected ``{"10d": USD, "1d": USD}``.
    """
    path = Path(path)
    cases: list[CaseResult] = []
    for _file, doc in _files(path):
        version = str(doc.get("simm_version", DEFAULT_VERSION))
        ccy = str(doc.get("calculation_currency", "USD"))
        for case in doc["cases"]:
            cases.append(run_case(case, doc["sensitivities"], version, ccy))
    return SuiteResult("simm", cases, source=str(path), tolerance=f"{TOLERANCE_USD} USD per horizon")
