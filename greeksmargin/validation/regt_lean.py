"""Lean-format cases of the ``regt`` suite: strategy-based margin beside a backtesting engine's and a broker's figures.

Source of the format: QuantConnect/Lean @ 2486390, ``Tests/Common/Securities/
OptionStrategyPositionGroupBuyingPowerModelTests.cs`` and ``OptionMarginBuyingPowerModelTests.cs`` (Apache-2.0).
A case file is a JSON object ``{"source", "n_cases", "cases"}``; every case has ``id``, ``group`` (one of
:data:`GROUPS`), ``underlying`` {symbol, price, index_type, equity_leverage?}, ``legs`` (options: kind, option_type,
strike, expiry (ISO date or null), price per share, signed quantity in contracts, multiplier; stock: kind,
quantity in signed shares) and ``expected``; optional ``strategy``, ``group_quantity`` (the legs are already
signed for it), ``note`` and the text comments ``ib_comment_im``, ``ib_comment_mm``, ``lean_formula_comment``.

Computed figures, by the Cboe Margin Manual / FINRA Rule 4210 rules of :mod:`greeksmargin.methodologies.strategy`
(optimal pairing; the greedy heuristic's figures are reported in ``detail``):

- ``initial_margin``: the initial requirement including the proceeds of the short sales, excluding the cost of
  the long options (Lean and Interactive Brokers debit option purchases to cash and call the rest margin:
  a long option alone is 0 margin in both): :attr:`StrategyResult.margin_excl_long_premium`;
- ``maintenance_margin``: the same with FINRA 4210(c) maintenance on stock (25% long, 30% short);
- per-unit figures (``*_unit`` keys) divide by the case's units (``|group_quantity|``, else the greatest common
  divisor of the option quantities).

Which expected keys are checked (:func:`resolve`; keys of the families below beyond the seen ones resolve by
name): ``*_exact`` figures, to the cent (pass/fail). Lean's assertions
(``lean_*_asserted``, which Lean itself allows 20% for strategies and 5% for naked options) and Interactive
Brokers' house figures (``ib_*``) are reported beside the rule with their gap, not checked; the tolerances
(``*_tolerance_rel``) and the figures of Lean's comments (``*_comment``) are inputs of the publisher's test, not
figures to compare. ``equity_leverage`` is Lean's margin-account leverage for the stock (its broker model),
not a leveraged-ETF factor: the rules do not use it. The format has no valuation date: expiries order the legs
(calendars, diagonals) and the 9-month long-term provision for long options is not applied.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date
from decimal import Decimal
from functools import reduce
from pathlib import Path
from typing import Any

from greeksmargin.errors import CaseFormatError, InputError
from greeksmargin.methodologies.strategy import (
    Leg,
    StrategyParams,
    StrategyResult,
    Underlying,
    strategy_margin,
)
from greeksmargin.validation.core import CaseResult, Tolerance, compare_fields, run_guarded

GROUPS = ("strategy", "covered_call_by_strike", "naked_exact", "naked_ib_equity", "naked_ib_index", "pairing")
TOP_KEYS = ("source", "n_cases", "cases")
CASE_REQUIRED = ("id", "group", "underlying", "legs", "expected")
CASE_OPTIONAL = ("strategy", "group_quantity", "note", "ib_comment_im", "ib_comment_mm", "lean_formula_comment")
UNDERLYING_REQUIRED = ("price", "index_type")
UNDERLYING_OPTIONAL = ("symbol", "equity_leverage")
OPTION_REQUIRED = ("kind", "option_type", "strike", "price", "quantity", "multiplier")
OPTION_OPTIONAL = ("expiry",)
STOCK_REQUIRED = ("kind", "quantity")

#: to the cent
EXACT = Tolerance("abs", 0.005)
#: Interactive Brokers' figure: "within 5% where the rule agrees" (the case format's README)
IB_REL = 0.05

#: expected key -> (computed figure, role): role "exact" is checked; "lean" / "ib" are information with the gap;
#: "tolerance" / "comment" are the publisher's test inputs, not figures to compare
FIELDS: dict[str, tuple[str | None, str]] = {
    "lean_total_maintenance_margin_exact": ("maintenance_margin", "exact"),
    "lean_maintenance_margin_exact": ("maintenance_margin", "exact"),
    "lean_initial_margin_asserted": ("initial_margin", "lean"),
    "lean_maintenance_margin_asserted": ("maintenance_margin", "lean"),
    "lean_maintenance_margin_unit_asserted": ("maintenance_margin_unit", "lean"),
    "lean_initial_margin_incl_premium_asserted": ("initial_margin", "lean"),
    "ib_initial_margin": ("initial_margin", "ib"),
    "ib_maintenance_margin": ("maintenance_margin", "ib"),
    "ib_margin_unit": ("maintenance_margin_unit", "ib"),
    "lean_initial_margin_tolerance_rel": (None, "tolerance"),
    "lean_maintenance_margin_tolerance_rel": (None, "tolerance"),
    "lean_tolerance_rel": (None, "tolerance"),
    "lean_unit_im_comment": (None, "comment"),
    "lean_unit_premium_comment": (None, "comment"),
    "lean_im_incl_premium_x10_comment": (None, "comment"),
}


def resolve(key: str) -> tuple[str | None, str]:
    """(computed figure, role) of an expected key: :data:`FIELDS`, else by the format's key families.

    The families (the format's README): ``*_exact`` (checked to the cent), ``lean_*_asserted`` (Lean's
    assertion), ``ib_*`` (the broker's figure), ``*_tolerance_rel`` and ``*_comment`` (the publisher's test
    inputs). The figure: ``maintenance`` or ``initial`` in the key (a bare ``margin`` is the maintenance margin,
    which Lean's naked-option tests assert; for options both are the same), per unit with ``unit``.

    Raises
    ------
    CaseFormatError
        A key of no family, or naming no margin figure.
    """
    if key in FIELDS:
        return FIELDS[key]
    if key.endswith("_tolerance_rel"):
        return None, "tolerance"
    if key.endswith("_comment"):
        return None, "comment"
    if key.endswith("_exact"):
        role = "exact"
    elif key.startswith("lean_") and key.endswith("_asserted"):
        role = "lean"
    elif key.startswith("ib_"):
        role = "ib"
    else:
        raise CaseFormatError(f"expected: unknown key {key!r} (known: {', '.join(FIELDS)}, or a key of the "
                              "families *_exact, lean_*_asserted, ib_*, *_tolerance_rel, *_comment)",
                              column=f"expected.{key}")
    if "margin" not in key:
        raise CaseFormatError(f"expected: key {key!r} names no margin figure", column=f"expected.{key}")
    target = "initial_margin" if "initial" in key else "maintenance_margin"
    return (target + "_unit" if "unit" in key else target), role


def is_lean_doc(doc: Any) -> bool:
    """Whether a case document is of the Lean format (its cases carry ``group``)."""
    return isinstance(doc, dict) and isinstance(doc.get("cases"), list) and any(
        isinstance(c, dict) and "group" in c for c in doc["cases"])


def check_doc(doc: dict[str, Any], file: Path) -> None:
    """Top-level keys and ``n_cases`` of a Lean-format file; a :class:`CaseFormatError` naming the key."""
    unknown = sorted(set(doc) - set(TOP_KEYS))
    if unknown:
        raise CaseFormatError(f"unknown key(s) {unknown} (known: {', '.join(TOP_KEYS)})", file=str(file),
                              column=unknown[0])
    n = doc.get("n_cases")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n != len(doc["cases"])):
        raise CaseFormatError(f"n_cases is {n!r} but the file holds {len(doc['cases'])} cases", file=str(file),
                              column="n_cases")


def _keys(obj: Any, required: tuple[str, ...], optional: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise CaseFormatError(f"{where} must be an object", column=where)
    missing = [k for k in required if k not in obj]
    if missing:
        raise CaseFormatError(f"{where}: missing key(s) {missing}", column=f"{where}.{missing[0]}")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise CaseFormatError(f"{where}: unknown key(s) {unknown} (known: {', '.join(required + optional)})",
                              column=f"{where}.{unknown[0]}")
    return obj


def _number(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise CaseFormatError(f"{where} must be a finite number, got {v!r}", column=where)
    return float(v)


def case_book(case: dict[str, Any], params: StrategyParams) -> tuple[Underlying, list[Leg], StrategyParams, int]:
    """The underlying, legs, parameters (the case's contract multiplier) and units of one Lean-format case.

    Raises
    ------
    CaseFormatError
        Unknown or missing keys, an unknown group or leg kind, bad numbers or dates (naming the case and key).
    """
    cid = case.get("id", "?")
    try:
        _keys(case, CASE_REQUIRED, CASE_OPTIONAL, "case")
        if case["group"] not in GROUPS:
            raise CaseFormatError(f"unknown group {case['group']!r} (known: {', '.join(GROUPS)})", column="group")
        u = _keys(case["underlying"], UNDERLYING_REQUIRED, UNDERLYING_OPTIONAL, "underlying")
        if "equity_leverage" in u:
            _number(u["equity_leverage"], "underlying.equity_leverage")
        und = Underlying.of(_number(u["price"], "underlying.price"), str(u["index_type"]), 1)
        if not isinstance(case["legs"], list) or not case["legs"]:
            raise CaseFormatError("'legs' must be a non-empty list", column="legs")
        if not isinstance(case["expected"], dict) or not case["expected"]:
            raise CaseFormatError("'expected' must be a non-empty object", column="expected")
        for key, v in case["expected"].items():
            resolve(key)
            _number(v, f"expected.{key}")
        raw_legs, expiries, mults = [], [], set()
        for n, leg in enumerate(case["legs"]):
            where = f"legs[{n}]"
            kind = leg.get("kind") if isinstance(leg, dict) else None
            if kind == "option":
                _keys(leg, OPTION_REQUIRED, OPTION_OPTIONAL, where)
                mults.add(_number(leg["multiplier"], f"{where}.multiplier"))
                exp = leg.get("expiry")
                if exp is not None:
                    try:
                        exp = date.fromisoformat(str(exp))
                    except ValueError:
                        raise CaseFormatError(f"{where}.expiry must be an ISO date, got {exp!r}",
                                              column=f"{where}.expiry") from None
                    expiries.append(exp)
                raw_legs.append((leg, exp))
            elif kind == "stock":
                _keys(leg, STOCK_REQUIRED, (), where)
                raw_legs.append((leg, None))
            else:
                raise CaseFormatError(f"{where}: unknown kind {kind!r} (option | stock)", column=f"{where}.kind")
        if len(mults) > 1:
            raise CaseFormatError(f"options with different multipliers {sorted(mults)} cannot be paired",
                                  column="legs.multiplier")
        first = min(expiries) if expiries else None
        legs: list[Leg] = []
        for n, (leg, exp) in enumerate(raw_legs):
            try:
                if leg["kind"] == "option":
                    days = (exp - first).days if exp is not None and first is not None else 0
                    legs.append(Leg.option(leg["option_type"], _number(leg["strike"], f"legs[{n}].strike"),
                                           _number(leg["price"], f"legs[{n}].price"), leg["quantity"], days))
                else:
                    legs.append(Leg.stock(leg["quantity"], und.price))
            except CaseFormatError:
                raise
            except ValueError as exc:
                raise CaseFormatError(f"legs[{n}]: {exc}", column=f"legs[{n}]") from None
    except InputError as exc:
        raise CaseFormatError(f"case {cid}: {exc.reason}", column=exc.column) from None
    # no valuation date in the format: the long-term provision (days from valuation) cannot apply
    p = dataclasses.replace(params, long_term_days=Decimal("Infinity"))
    if mults:
        mult = Decimal(repr(mults.pop()))  # shares per contract: the stock that covers one contract
        p = dataclasses.replace(p, multiplier=mult, shares_per_contract=mult)
    gq = case.get("group_quantity")
    if gq is not None:
        if isinstance(gq, bool) or not isinstance(gq, int) or gq == 0:
            raise CaseFormatError(f"case {cid}: group_quantity must be a non-zero integer, got {gq!r}",
                                  column="group_quantity")
        units = abs(gq)
    else:
        units = reduce(math.gcd, (abs(lg.quantity) for lg in legs if lg.kind == "option"), 0) or 1
    return und, legs, p, units


def figures(res: StrategyResult, units: int) -> dict[str, float]:
    """The Lean-comparable figures of a strategy result (module docstring), USD."""
    im = float(res.margin_excl_long_premium)
    mm = float(res.maintenance_excl_long_premium)
    return {"initial_margin": im, "maintenance_margin": mm, "initial_margin_unit": im / units,
            "maintenance_margin_unit": mm / units}


def _gap(computed: float, expected: float) -> str:
    rel = f" ({(computed - expected) / abs(expected):+.1%})" if expected else ""
    return f"rule {computed:,.2f} vs {expected:,.2f}: gap {computed - expected:+,.2f} USD{rel}"


def run_case(case: dict[str, Any], params: StrategyParams) -> CaseResult:
    """Run one Lean-format case; failures become a CaseResult with ``error``."""
    cid = case.get("id", "?") if isinstance(case, dict) else "?"
    expected = case.get("expected", {}) if isinstance(case, dict) and isinstance(case.get("expected"), dict) else {}

    def compute() -> CaseResult:
        und, legs, p, units = case_book(case, params)
        opt = strategy_margin(legs, und, p, method="optimal")
        greedy = strategy_margin(legs, und, p, method="greedy")
        fig = figures(opt, units)
        computed: dict[str, Any] = {}
        rule: dict[str, Tolerance] = {}
        reasons: dict[str, str] = {}
        info: dict[str, str] = {}
        for key, value in expected.items():
            target, role = resolve(key)
            computed[key] = fig[target] if target is not None else None
            if role == "exact":
                rule[key] = EXACT
            elif role in ("lean", "ib"):
                tol = IB_REL if role == "ib" else float(expected.get(
                    key.replace("_asserted", "_tolerance_rel"), expected.get("lean_tolerance_rel", 0.2)))
                rule[key] = Tolerance("rel", tol)
                assert target is not None  # a lean / ib figure always names the computed figure it is compared with
                who = "Lean's own assertion" if role == "lean" else "Interactive Brokers' house figure"
                within = "within" if abs(fig[target] - float(value)) <= tol * abs(float(value)) else "outside"
                reasons[key] = (f"not checked (information, not pass/fail): {who}; {_gap(fig[target], float(value))}"
                                f", {within} rel {tol:g}")
                info[key] = _gap(fig[target], float(value))
        fields = compare_fields(computed, expected, rule, not_checked=reasons)
        for key in expected:
            role = resolve(key)[1]
            if role == "tolerance":
                fields[key]["reason"] = "not checked: a tolerance of the publisher's assertion, not a figure"
            elif role == "comment":
                fields[key]["reason"] = "not checked: a figure in a comment of the publisher's test, not asserted"
        detail = {
            "group": case["group"],
            "convention": "requirement incl. short-sale proceeds, excl. long option cost (paid in cash)",
            "units": units,
            **{k: v for k, v in fig.items()},
            "margin_requirement_incl_proceeds": float(opt.margin_requirement),
            "maintenance_requirement_incl_proceeds": float(opt.maintenance_requirement),
            "long_premium": float(opt.long_premium),
            "short_proceeds": float(opt.short_proceeds),
            "deposit_excl_proceeds": float(opt.deposit_excl_proceeds),
            "greedy_initial_margin": float(greedy.margin_excl_long_premium),
            "greedy_maintenance_margin": float(greedy.maintenance_excl_long_premium),
            "strategies": [f"{ln.strategy} x{ln.units}" for ln in opt.lines],
            "greedy_strategies": [f"{ln.strategy} x{ln.units}" for ln in greedy.lines],
            "gaps": info,
        }
        for k in ("strategy", "note", "ib_comment_im", "ib_comment_mm", "lean_formula_comment"):
            if k in case:
                detail[k] = case[k]
        return CaseResult(cid, computed, expected, detail=detail, tolerance=rule, fields=fields)

    return run_guarded(cid, expected, compute)


def run_doc(doc: dict[str, Any], file: Path, params: StrategyParams) -> list[CaseResult]:
    """Every case of one Lean-format document (the file's top-level keys checked first)."""
    check_doc(doc, file)
    return [run_case(case, params) for case in doc["cases"]]
