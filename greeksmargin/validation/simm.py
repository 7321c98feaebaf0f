"""Validation suite ``simm``: ISDA SIMM unit-test cases (every risk class, add-ons; 10-day and 1-day).

Case file format (JSON object): ``sensitivities`` maps a name to a CRIF row (product_class, risk_type, qualifier,
bucket, label1, label2, amount_usd; any CRIF spelling of the column names); ``cases`` is a list of ``{id,
sensitivities: [names], expected: {"10d": x, "1d": y}}``; a name listed twice counts twice. Add-ons of a case
(all optional, lists of objects): ``product_multipliers`` ``[{product_class, multiplier}]``,
``addon_notional_factors`` ``[{product, factor_pct}]``, ``addon_notionals`` ``[{product, notional_usd}]``,
``addon_fixed_amounts`` ``[{amount_usd}]`` (key and field names are matched loosely: any key containing
"multiplier", "factor", "notional" or "fixed"). Optional ``simm_version`` and ``calculation_currency`` (file or
case level, default "2.5" and "USD").

A case passes when every expected horizon is within :data:`TOLERANCE_USD` of the computed SIMM. The ISDA
benchmarks (as published in the simm-lib unit tests) are whole dollars, rounded half-up; the comparison is on
the unrounded figure, so a benchmark rounded to whole dollars is met within 0.5 USD of rounding plus the tolerance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from greeksmargin.errors import CaseFormatError
from greeksmargin.methodologies.simm import SimmParams, load_simm_params, normalize_crif, simm_margin
from greeksmargin.validation.core import (
    CaseResult,
    SuiteResult,
    Tolerance,
    load_case_files,
    require_keys,
    run_guarded,
)

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


def _field(item: Any, names: tuple[str, ...], what: str, cid: Any, key: str) -> Any:
    if not isinstance(item, dict):
        if names and names[0] == "#number" and isinstance(item, int | float):
            return item
        raise CaseFormatError(f"case {cid}: each entry of '{key}' must be an object", column=key)
    low = {str(k).lower().replace(" ", "_"): v for k, v in item.items()}
    for n in names:
        if n in low:
            return low[n]
    raise CaseFormatError(f"case {cid}: an entry of '{key}' has no {what} (one of {', '.join(names)})", column=key)


def addon_rows(case: dict[str, Any]) -> list[dict[str, Any]]:
    """CRIF parameter rows of a case's add-on lists.

    Param_ProductClassMultiplier, Param_AddOnNotionalFactor, Notional and Param_AddOnFixedAmount rows.
    """
    cid = case.get("id", "?")
    rows: list[dict[str, Any]] = []
    pc_names = ("product_class", "productclass", "qualifier", "class", "product")
    for key, items in case.items():
        k = str(key).lower()
        if key in ("sensitivities", "expected", "risk_classes") or not isinstance(items, list):
            continue
        if "multiplier" in k:
            for it in items:
                rows.append(dict(risk_type="Param_ProductClassMultiplier",
                                 qualifier=_field(it, pc_names, "product class", cid, key),
                                 amount_usd=_field(it, ("multiplier", "value", "amount", "amount_usd"), "multiplier",
                                                   cid, key)))
        elif "factor" in k:
            for it in items:
                rows.append(dict(risk_type="Param_AddOnNotionalFactor",
                                 qualifier=_field(it, ("product", "qualifier", "name"), "product", cid, key),
                                 amount_usd=_field(it, ("factor_pct", "factor", "percent", "value", "amount",
                                                        "amount_usd"), "factor", cid, key)))
        elif "notional" in k:
            for it in items:
                rows.append(dict(risk_type="Notional",
                                 qualifier=_field(it, ("product", "qualifier", "name"), "product", cid, key),
                                 amount_usd=_field(it, ("notional_usd", "notional", "amount_usd", "amount"),
                                                   "notional", cid, key)))
        elif "fixed" in k:
            for it in items:
                rows.append(dict(risk_type="Param_AddOnFixedAmount", qualifier="",
                                 amount_usd=_field(it, ("#number", "amount_usd", "amount", "fixed_amount", "value"),
                                                   "amount", cid, key)))
    return rows


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
        if not isinstance(names, list):
            raise CaseFormatError(f"case {cid}: 'sensitivities' must be a list of names", column="sensitivities")
        if not isinstance(expected, dict) or not expected:
            raise CaseFormatError(f"case {cid}: 'expected' must be an object horizon -> USD", column="expected")
        unknown = [n for n in names if n not in sensitivities]
        if unknown:
            raise CaseFormatError(f"case {cid}: unknown sensitivity name(s) {unknown}", column="sensitivities")
        rows = normalize_crif([sensitivities[n] for n in names] + addon_rows(case)) if names or addon_rows(case) else []
        params = _params(str(case.get("simm_version", version)))
        ccy = str(case.get("calculation_currency", calculation_currency))
        computed = {h: (simm_margin(rows, params, horizon=h, calculation_currency=ccy).total if len(rows) else 0.0)
                    for h in expected}
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
