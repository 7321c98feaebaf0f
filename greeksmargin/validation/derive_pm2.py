"""Validation suite ``derive-pm2``: Derive (Lyra v2) on-chain portfolio margin PM2.

Case file format (JSON list of cases; a single case object is accepted too): ``id``, optional ``name``,
``portfolio`` (spot, confidences, cash, stable_price, perp, collaterals, options, forwards), ``parameters``
(scenarios and the vol_shock, margin, basis_contingency, other_contingency, skew_shock groups; when absent the
shipped ``models/derive-pm2.toml`` is used) and ``expected`` (``im``, ``mm`` and any of the intermediate
figures of :data:`greeksmargin.methodologies.derive_pm2.SUMMARY_KEYS`). ``computed`` mirrors the keys of
``expected``. Pass: ``im`` and ``mm`` (required) within :data:`TOLERANCE_REL` relative to
``max(1, |expected|)``; the other figures are reported per field as not checked (``fields``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greeksmargin.errors import CaseFormatError
from greeksmargin.methodologies.derive_pm2 import PM2Params, derive_pm2_margin
from greeksmargin.validation.core import (
    CaseResult,
    SuiteResult,
    Tolerance,
    load_case_files,
    require_keys,
    run_guarded,
)

TOLERANCE_REL = 1e-6
CHECKED = ("im", "mm")
#: the pass rule (validation README): im and mm within TOLERANCE_REL x max(1, |expected|); the other figures of
#: 'expected' are reported field by field as not checked (not part of the published pass rule)
RULE = {k: Tolerance("rel_max1", TOLERANCE_REL) for k in CHECKED}
REQUIRED = ("portfolio", "expected")


def _is_case(obj: Any) -> bool:
    return isinstance(obj, dict) and "portfolio" in obj


def _is_case_file(doc: Any) -> bool:
    if isinstance(doc, dict):
        return _is_case(doc)
    return isinstance(doc, list) and any(_is_case(c) for c in doc)


def _check_format(doc: Any, file: Path) -> list[Any]:
    """The list of cases of a document, or a :class:`CaseFormatError` naming the file and the missing key."""
    if isinstance(doc, dict):
        if not _is_case(doc):
            raise CaseFormatError("missing key 'portfolio' (not a Derive PM2 case)", file=str(file),
                                  column="portfolio")
        return [doc]
    if not isinstance(doc, list):
        raise CaseFormatError("expected a JSON list of Derive PM2 cases", file=str(file))
    if doc and not any(_is_case(c) for c in doc):
        raise CaseFormatError("missing key 'portfolio' (not a Derive PM2 case file)", file=str(file), row=0,
                              column="portfolio")
    return doc


def _files(path: Path) -> list[tuple[Path, list[Any]]]:
    return load_case_files(path, _is_case_file, _check_format,
                           "Derive PM2 case file (JSON with 'portfolio', 'parameters', 'expected')", "portfolio")


def _default_params() -> PM2Params:
    from greeksmargin.engine.models import load_model

    return load_model("derive-pm2").params  # cached by load_model: read once per run


def run_case(case: Any, index: int = 0) -> CaseResult:
    """Run one Derive PM2 case; a malformed or failing case becomes a CaseResult with ``error``.

    Parameters
    ----------
    case : dict
        One case of the published format.
    index : int, default 0
        Position in its file (the id when the case has none).

    Returns
    -------
    CaseResult
        ``computed`` has the keys of ``expected`` (all of them when ``expected`` is empty).
    """
    if not isinstance(case, dict):
        return CaseResult(index, {}, {}, False, error=f"case {index}: a case must be an object")
    cid = case.get("id", index)
    expected = case.get("expected", {})
    if not isinstance(expected, dict):
        return CaseResult(cid, {}, {}, False, error=f"case {cid}: 'expected' must be an object")

    def compute() -> CaseResult:
        require_keys(case, REQUIRED, cid)
        missing = [k for k in CHECKED if k not in expected]
        if missing:
            raise CaseFormatError(f"case {cid}: 'expected' lacks {', '.join(missing)}", column="expected")
        params = case["parameters"] if "parameters" in case else _default_params()
        result = derive_pm2_margin(case["portfolio"], params)
        summary = result.summary()
        unknown = [k for k in expected if k not in summary]
        if unknown:  # an expected figure the suite does not know is an error, never silently unchecked
            raise CaseFormatError(f"case {cid}: unknown key '{unknown[0]}' in 'expected' (known: "
                                  f"{', '.join(summary)})", column=unknown[0])
        computed = {k: summary[k] for k in expected}
        detail = {"min_span": result.min_span, "worst_scenario": result.worst_scenario,
                  "scenario_pnl": result.scenario_pnl.tolist()}
        return CaseResult(cid, computed, expected, detail=detail, tolerance=RULE)

    return run_guarded(cid, expected, compute)


def run(path: Path) -> SuiteResult:
    """Run every Derive PM2 case of a case file, or of every case file in a folder.

    Parameters
    ----------
    path : Path
        A case file or a folder (its ``*.json`` files of the format are run; others are skipped).

    Returns
    -------
    SuiteResult
        One CaseResult per case; computed figures in the shape of each case's ``expected``.

    Raises
    ------
    CaseFormatError
        The file is not of the format (the message names the file and the missing key), or a folder holds
        no file of the format.
    """
    path = Path(path)
    cases = [run_case(case, i) for _f, doc in _files(path) for i, case in enumerate(doc)]
    return SuiteResult("derive-pm2", cases, source=str(path),
                       tolerance=f"im, mm within {TOLERANCE_REL:g} x max(1, |expected|)")
