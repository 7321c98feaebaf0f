"""Validation suite ``regt``: strategy-based (Reg T) margin, Cboe Margin Manual / FINRA Rule 4210.

Model ``cboe-strategy``, rule module :mod:`greeksmargin.methodologies.strategy`.

Case file format (JSON object with ``cases``, one account per case): ``id``, ``underlying`` {price, index_type
(equity | broad | broad_index | narrow | narrow_index | volatility), leverage_factor}, ``legs`` [{kind option |
stock | shares, option_type, strike, premium (per share), quantity (contracts or shares, signed),
days_to_expiry; stock legs: price (default the underlying price)}], ``expected`` {margin_requirement,
cash_requirement?} in USD; contract multiplier 100. ``computed`` mirrors the keys of ``expected``; a case passes
when every expected figure matches to the cent (|difference| < 0.005 USD).

Pairing: the published figures come from a broker margin estimator that pairs legs with the usual greedy
heuristic, so the computed figures use :func:`~greeksmargin.methodologies.strategy.decompose_greedy`
(``PAIRING``); the exact optimal pairing of the same rules is reported beside them in the case's ``detail``
(``optimal_margin_requirement``; with the proceeds included, ``optimal_margin_requirement_incl_proceeds`` is
never above the greedy ``margin_requirement_incl_proceeds``: the optimiser minimises that figure).

Proceeds: the publisher's ``margin_requirement`` charges a spread group its deposit (net debit plus maximum
loss: the shorts' proceeds applied) and every other strategy its requirement including its proceeds (naked
shorts, straddles, covered calls / puts, stock); the computed figure is that one
(:meth:`~greeksmargin.methodologies.strategy.StrategyResult.spread_proceeds_applied`), and ``detail`` gives the rule
module's own convention (``margin_requirement_incl_proceeds``: every short sale's proceeds included,
``short_proceeds``, ``deposit_excl_proceeds``, ``maintenance_requirement_incl_proceeds``).

Files of the Lean format (cases carrying ``group``) are run by :mod:`greeksmargin.validation.regt_lean`; a
folder may hold both formats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from greeksmargin.engine.params_files import load_strategy_params
from greeksmargin.errors import CaseFormatError
from greeksmargin.methodologies.strategy import (
    Leg,
    StrategyParams,
    Underlying,
    strategy_margin,
)
from greeksmargin.validation import regt_lean
from greeksmargin.validation.core import (
    CaseResult,
    SuiteResult,
    Tolerance,
    load_case_files,
    require_keys,
    run_guarded,
)

TOLERANCE_USD = 0.005
#: to the cent: a computed figure within half a cent of the published one
RULE = Tolerance("abs", TOLERANCE_USD)
PAIRING = "greedy"
FIGURES = ("margin_requirement", "cash_requirement")
STOCK_KINDS = ("stock", "shares", "equity")


def _is_case_file(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("cases"), list) and any(
        isinstance(c, dict) and "legs" in c and "underlying" in c for c in doc["cases"])


def _check_format(doc: Any, file: Path) -> dict[str, Any]:
    if not isinstance(doc, dict) or "cases" not in doc:
        raise CaseFormatError("expected a JSON object with 'cases'", file=str(file), column="cases")
    if not isinstance(doc["cases"], list):
        raise CaseFormatError("'cases' must be a list", file=str(file), column="cases")
    for i, case in enumerate(doc["cases"]):
        if not isinstance(case, dict):
            raise CaseFormatError("a case must be an object", file=str(file), row=i)
    return doc


def _files(path: Path) -> list[tuple[Path, dict[str, Any]]]:
    return load_case_files(path, _is_case_file, _check_format,
                           "Reg T strategy case file (JSON object with 'cases' holding 'underlying' and 'legs')",
                           "cases")


def case_legs(case: dict[str, Any]) -> tuple[Underlying, list[Leg]]:
    """The underlying and legs of one case (errors name the case, the leg and the field).

    Parameters
    ----------
    case : dict
        One case of the format in the module docstring.

    Returns
    -------
    (Underlying, list of Leg)
    """
    cid = case.get("id", "?")
    u = case["underlying"]
    if not isinstance(u, dict) or "price" not in u:
        raise CaseFormatError(f"case {cid}: 'underlying' needs 'price'", column="underlying.price")
    try:
        und = Underlying.of(u["price"], u.get("index_type", "equity"), u.get("leverage_factor", 1.0))
    except CaseFormatError:
        raise
    except (ValueError, TypeError) as exc:
        raise CaseFormatError(f"case {cid}: underlying: {exc}", column="underlying") from None
    legs = []
    if not isinstance(case["legs"], list) or not case["legs"]:
        raise CaseFormatError(f"case {cid}: 'legs' must be a non-empty list", column="legs")
    for n, leg in enumerate(case["legs"]):
        if not isinstance(leg, dict):
            raise CaseFormatError(f"case {cid}: leg {n} must be an object", row=n, column="legs")
        kind = str(leg.get("kind", "option")).lower()
        try:
            if kind == "option":
                for key in ("option_type", "strike", "premium", "quantity"):
                    if key not in leg:
                        raise CaseFormatError(f"case {cid}: leg {n}: missing '{key}'", row=n, column=key)
                legs.append(Leg.option(leg["option_type"], leg["strike"], leg["premium"], leg["quantity"],
                                       leg.get("days_to_expiry", 0)))
            elif kind in STOCK_KINDS:
                if "quantity" not in leg:
                    raise CaseFormatError(f"case {cid}: leg {n}: missing 'quantity'", row=n, column="quantity")
                legs.append(Leg.stock(leg["quantity"], leg.get("price", u["price"])))
            else:
                raise CaseFormatError(f"case {cid}: leg {n}: unknown kind {kind!r} (option | stock)", row=n,
                                      column="kind")
        except CaseFormatError:
            raise
        except ValueError as exc:
            raise CaseFormatError(f"case {cid}: leg {n}: {exc}", row=n, column=getattr(exc, "column", None)) from None
    return und, legs


def run_case(case: dict[str, Any], params: StrategyParams) -> CaseResult:
    """Run one case; failures become a CaseResult with ``error``."""
    cid = case.get("id", "?")
    expected = case.get("expected", {}) if isinstance(case.get("expected"), dict) else {}

    def compute() -> CaseResult:
        require_keys(case, ("id", "underlying", "legs", "expected"), cid)
        keys = [k for k in FIGURES if k in expected]
        if not keys:
            raise CaseFormatError(f"case {cid}: 'expected' needs margin_requirement or cash_requirement",
                                  column="expected")
        und, legs = case_legs(case)
        res = strategy_margin(legs, und, params, method=PAIRING)
        opt = strategy_margin(legs, und, params, method="optimal")
        figures: dict[str, Any] = {
            "margin_requirement": float(res.spread_proceeds_applied()),
            "cash_requirement": None if res.cash_requirement is None else float(res.cash_requirement),
        }
        computed = {k: figures[k] for k in keys}
        detail = {
            "optimal_margin_requirement": float(opt.spread_proceeds_applied()),
            "margin_requirement_incl_proceeds": float(res.margin_requirement),
            "optimal_margin_requirement_incl_proceeds": float(opt.margin_requirement),
            "maintenance_requirement_incl_proceeds": float(res.maintenance_requirement),
            "short_proceeds": float(res.short_proceeds),
            "deposit_excl_proceeds": float(res.deposit_excl_proceeds),
            "strategies": [ln.strategy for ln in res.lines],
            "optimal_strategies": [ln.strategy for ln in opt.lines],
        }
        if res.cash_reason:
            detail["cash_reason"] = res.cash_reason
        return CaseResult(cid, computed, expected, detail=detail, tolerance=RULE)

    return run_guarded(cid, expected, compute)


def run(path: Path, model: str | Path = "cboe-strategy") -> SuiteResult:
    """Run every case of a case file, or of every case file of the format in a folder.

    Parameters
    ----------
    path : Path
        A case file or a folder.
    model : str or Path, default "cboe-strategy"
        The strategy-margin model whose parameters are used.

    Returns
    -------
    SuiteResult
        Computed/expected ``margin_requirement`` (and ``cash_requirement`` where expected) per case.
    """
    params = load_strategy_params(model)
    path = Path(path)
    cases = []
    for f, doc in _files(path):
        if regt_lean.is_lean_doc(doc):
            cases.extend(regt_lean.run_doc(doc, f, params))
        else:
            cases.extend(run_case(case, params) for case in doc["cases"])
    return SuiteResult("regt", cases, source=str(path), tolerance="to the cent (< 0.005 USD)")
