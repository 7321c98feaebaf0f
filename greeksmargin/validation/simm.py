"""Validation suite ``simm``: ISDA SIMM unit-test cases (every risk class, add-ons; 10-day and 1-day).

Case file format (JSON object): ``sensitivities`` maps a name to a CRIF row (product_class, risk_type, qualifier,
bucket, label1, label2, amount_usd; any CRIF spelling of the column names); ``cases`` is a list of ``{id,
sensitivities: [names], expected: {"10d": x, "1d": y}}``; a name listed twice counts twice. Add-ons of a case
(all optional): ``product_multipliers`` ``[{product_class, multiplier}]`` or ``{ProductClass: multiplier}``,
``addon_notional_factors`` ``[{product, factor_pct}]`` or ``{product: factor_pct}``, ``addon_notionals``
``[{product, notional_usd}]`` or ``{product: notional_usd}``, ``addon_fixed_amounts`` ``[{amount_usd}]`` or
numbers (:data:`ADDONS`). Optional ``simm_version`` and ``calculation_currency`` (file or case level, default
"2.5" and "USD"); descriptive keys (:data:`DESCRIPTIVE`). The add-on keys are also read under the spellings
of :data:`case_schemas.SIMM_ADDON_KEYS` (``productMultipliers``, ``fixed_addons``, ...). Any other key,
or an add-on in another form, is an error naming it.

A case passes when every expected horizon is within :data:`TOLERANCE_USD` of the computed SIMM. The ISDA
benchmarks (as published in the simm-lib unit tests) are whole dollars, rounded half-up; the comparison is on
the unrounded figure, so a benchmark rounded to whole dollars is met within 0.5 USD of rounding plus the tolerance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from greeksmargin import io
from greeksmargin.engine.params_files import load_simm_params
from greeksmargin.errors import CaseFormatError
from greeksmargin.methodologies.simm import SimmParams, normalize_crif, simm_margin
from greeksmargin.risk.crif import canonical_column
from greeksmargin.validation.case_schemas import simm_addon_key
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
    return load_simm_params(io.shipped_simm_file(version))


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


#: add-on lists of a case: key -> (CRIF risk type, entry's name fields, entry's value fields); each is a list of
#: objects ``[{name field: ..., value field: ...}]`` or an object ``{name: value}`` (simm-lib's tests use the
#: latter for product multipliers); fixed amounts are a list of numbers / ``{amount_usd}`` objects or one number
ADDONS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "product_multipliers": ("Param_ProductClassMultiplier", ("product_class", "productclass", "qualifier"),
                            ("multiplier", "value", "amount", "amount_usd")),
    "addon_notional_factors": ("Param_AddOnNotionalFactor", ("product", "qualifier", "name"),
                               ("factor_pct", "factor", "percent", "value", "amount", "amount_usd")),
    "addon_notionals": ("Notional", ("product", "qualifier", "name"),
                        ("notional_usd", "notional", "amount_usd", "amount")),
    "addon_fixed_amounts": ("Param_AddOnFixedAmount", (), ("amount_usd", "amount", "fixed_amount", "value")),
}
#: keys of a case that describe it (not used in the computation)
DESCRIPTIVE = ("id", "group", "measure", "element", "required_passes", "risk_classes", "notes", "source",
               "description")
CASE_KEYS = (*DESCRIPTIVE, "sensitivities", "expected", "simm_version", "calculation_currency", *ADDONS)


def _number(v: Any, cid: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise CaseFormatError(f"case {cid}: '{key}': expected a number, got {v!r}", column=key)
    return float(v)


def _entry(item: Any, names: tuple[str, ...], values: tuple[str, ...], cid: Any, key: str) -> tuple[str, float]:
    """``(name, value)`` of one add-on entry object; an unknown or missing field is an error naming it."""
    if not isinstance(item, dict):
        raise CaseFormatError(f"case {cid}: each entry of '{key}' must be an object", column=key)
    low = {str(k).lower().replace(" ", "_"): v for k, v in item.items()}
    unknown = [k for k in low if k not in names + values]
    if unknown:
        raise CaseFormatError(f"case {cid}: an entry of '{key}' has an unknown field '{unknown[0]}' (known: "
                              f"{', '.join(names + values)})", column=key)
    name = next((str(low[n]) for n in names if n in low), None)
    if names and name is None:
        raise CaseFormatError(f"case {cid}: an entry of '{key}' has no {names[0]} (one of {', '.join(names)})",
                              column=key)
    val = next((low[v] for v in values if v in low), None)
    if val is None:
        raise CaseFormatError(f"case {cid}: an entry of '{key}' has no {values[0]} (one of {', '.join(values)})",
                              column=key)
    return name or "", _number(val, cid, key)


def addon_rows(case: dict[str, Any]) -> list[dict[str, Any]]:
    """CRIF parameter rows of a case's add-ons (:data:`ADDONS`).

    Param_ProductClassMultiplier, Param_AddOnNotionalFactor, Notional and Param_AddOnFixedAmount rows. A key of
    the case outside :data:`CASE_KEYS`, or an add-on in another form, is a :class:`CaseFormatError` naming it.
    """
    cid = case.get("id", "?")
    unknown = [k for k in case if k not in CASE_KEYS and simm_addon_key(k) is None]
    if unknown:
        raise CaseFormatError(f"case {cid}: unknown key '{unknown[0]}' (known: {', '.join(CASE_KEYS)})",
                              column=str(unknown[0]))
    rows: list[dict[str, Any]] = []
    for key, items in case.items():
        canonical = simm_addon_key(key)
        if canonical is None:
            continue
        risk_type, names, values = ADDONS[canonical]
        if not names and isinstance(items, int | float) and not isinstance(items, bool):
            items = [items]
        if isinstance(items, dict) and names:
            pairs = [(str(k), _number(v, cid, key)) for k, v in items.items()]
        elif isinstance(items, list):
            pairs = [("", _number(it, cid, key)) if not names and not isinstance(it, dict)
                     else _entry(it, names, values, cid, key) for it in items]
        else:
            form = "a list of objects or an object {name: value}" if names else "a list of amounts"
            raise CaseFormatError(f"case {cid}: '{key}' must be {form}, got {type(items).__name__}", column=key)
        rows.extend(dict(risk_type=risk_type, qualifier=q, amount_usd=v) for q, v in pairs)
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
        for n in dict.fromkeys(names):  # a field that is no CRIF column would be dropped by the CRIF reader
            row = sensitivities[n]
            if not isinstance(row, dict):
                raise CaseFormatError(f"sensitivity '{n}' must be an object (a CRIF row)", column="sensitivities")
            bad = [k for k in row if canonical_column(k) is None]
            if bad:
                raise CaseFormatError(f"sensitivity '{n}': unknown CRIF field '{bad[0]}'", column=str(bad[0]))
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
