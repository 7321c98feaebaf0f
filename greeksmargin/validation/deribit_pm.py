"""Validation suite ``deribit-pm``: Deribit portfolio-margin risk matrix (``private/pme/simulate`` examples).

Case file format (JSON list): ``id``, ``currency``, ``index_price``, ``timestamp_ms`` (needed for futures and
options; a perpetual-only case may omit it; ``parameters.timestamp`` stands in for it),
``parameters`` (exchange names), ``positions`` (instrument, kind perpetual|future, size in coin, mark_price,
expiry_ms for futures) and ``expected`` {price_moves, position_pnl_coin, aggregated_pnl_coin, worst_case,
roll_shock, delta_shock, risk_matrix_margin, maintenance_margin}. Pass: risk_matrix_margin, maintenance_margin,
worst_case, roll_shock and every aggregated_pnl_coin entry within :data:`TOLERANCE_COIN` (those present in
``expected``); the other figures of ``expected`` (price_moves, position_pnl_coin, delta_shock, note) are
reported field by field as not checked (``fields`` of the case).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greeksmargin.engine.params_files import load_deribit_pm_params
from greeksmargin.errors import CaseFormatError
from greeksmargin.methodologies.deribit_pm import DeribitPMParams, deribit_pm_margin
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

TOLERANCE_COIN = 1e-8
#: the pass rule (validation README): these figures within TOLERANCE_COIN coin; the other figures of 'expected'
#: are reported field by field as not checked (not part of the published pass rule)
RULE = {k: Tolerance("abs", TOLERANCE_COIN) for k in ("risk_matrix_margin", "maintenance_margin", "worst_case",
                                                      "roll_shock", "aggregated_pnl_coin")}
SCALARS = ("risk_matrix_margin", "maintenance_margin", "worst_case", "roll_shock")
REQUIRED = ("id", "index_price", "positions", "expected")
FILE_KEYS = ("positions", "index_price")


def _files(path: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    return load_case_files(path, lambda doc: is_case_list(doc, FILE_KEYS),
                           lambda doc, f: check_case_list(doc, f, "Deribit PM", FILE_KEYS),
                           "Deribit PM case file (JSON list with 'positions', 'index_price')", "positions")


#: keys the exchange publishes in ``model_params`` that do not enter a single-currency risk matrix: accepted
#: (checked by case_schemas.DeribitPMCaseParams) and not used; ``timestamp`` (general.timestamp, ms)
#: stands in for a missing ``timestamp_ms``
PUBLISHED_UNUSED = ("m_inc", "haircut", "equity_side_impact", "correlation_set", "vol_scenarios_count", "timestamp")
#: keys of 'expected' that are text, not figures
EXPECTED_TEXT = ("note", "notes")


def _params(case: dict[str, Any]) -> DeribitPMParams:
    if "parameters" in case:
        raw = case["parameters"]
        if not isinstance(raw, dict):
            raise CaseFormatError("'parameters' must be an object", column="parameters")
        # strict: a key neither of the risk matrix nor published-unused is an error naming it
        return DeribitPMParams.from_dict({k: v for k, v in raw.items() if k not in PUBLISHED_UNUSED}, strict=True)
    if "currency" not in case:
        raise CaseFormatError("case needs 'parameters' or 'currency'", column="parameters")
    return load_deribit_pm_params(str(case["currency"]))


def run_case(case: dict[str, Any]) -> CaseResult:
    """Run one Deribit PM case; failures become a CaseResult with ``error``."""
    cid = case.get("id", "?")
    expected = case.get("expected", {})

    def compute() -> CaseResult:
        require_keys(case, REQUIRED, cid)
        if not isinstance(expected, dict):
            raise CaseFormatError(f"case {cid}: 'expected' must be an object", column="expected")
        ts = case.get("timestamp_ms")
        if ts is None and isinstance(case.get("parameters"), dict):
            ts = case["parameters"].get("timestamp")
        res = deribit_pm_margin(case["positions"], float(case["index_price"]), _params(case), timestamp_ms=ts)
        computed = res.summary()
        unknown = [k for k in expected if k not in computed and k not in EXPECTED_TEXT]
        if unknown:
            raise CaseFormatError(f"case {cid}: unknown key '{unknown[0]}' in 'expected'", column=unknown[0])
        computed = {k: v for k, v in computed.items() if k in expected} or computed
        if not any(k in expected for k in (*SCALARS, "aggregated_pnl_coin")):
            raise CaseFormatError(f"case {cid}: 'expected' has none of {SCALARS}", column="expected")
        return CaseResult(cid, computed, expected, tolerance=RULE)

    return run_guarded(cid, expected, compute)


def run(path: Path) -> SuiteResult:
    """Run every Deribit PM case of a case file, or of every case file in a folder.

    Parameters
    ----------
    path : Path
        A case file or a folder.

    Returns
    -------
    SuiteResult
        Computed figures in the shape of each case's ``expected``.
    """
    path = Path(path)
    cases = [run_case(case) for _f, doc in _files(path) for case in doc]
    return SuiteResult("deribit-pm", cases, source=str(path), tolerance=f"{TOLERANCE_COIN} coin")
