"""Validation suite ``pricing``: published option values, Greeks, American values and FX delta conventions.

Case format (:mod:`greeksmargin.validation.pricing_schema`): the tables the QuantLib test suite asserts
(Haug 1998 European values and Greeks, American values by Barone-Adesi-Whaley and Bjerksund-Stensland,
Castagna 2009 premium-adjusted deltas). Units (validation README): vega, rho and dividend rho per 1.00,
theta per year, ``theta_per_day = theta / 365``.

How each case is computed (every ``expected`` key is handled explicitly; any other key is an error naming it):

- groups ``european_value`` / ``european_greek`` (``exercise`` absent or ``european``): Black-Scholes-Merton
  (:func:`greeksmargin.pricing.vanilla_greeks`; ``dividend_yield = rate`` is Black-76 on the spot);
- ``american_baw``: Barone-Adesi-Whaley (:func:`greeksmargin.pricing.american_price`, ``method="baw"``);
- ``american_bjerksund_stensland``: Bjerksund-Stensland **1993** (``method="bs1993"``): the published values
  are those of Haug's (1998) VBA code, the 1993 flat-boundary approximation, which is also the engine the QuantLib
  test asserts them against (``BjerksundStenslandApproximationEngine``);
- an option case without ``group``: European unless ``exercise`` is ``american``, which is then an error
  (the case does not say which approximation produced its figure);
- ``delta_convention`` (``delta_type`` Spot, Fwd, PaSpot, PaFwd): ``computed`` holds ``delta`` (from the case's
  strike, :func:`greeksmargin.pricing.fx_delta`) and ``strike`` (from the expected delta,
  :func:`greeksmargin.pricing.strike_from_delta`); ``expected`` holds the published delta and the case's strike.

Figures: ``price`` and ``value`` (the option value), ``delta``, ``gamma``, ``vega``, ``theta``,
``theta_per_day``, ``rho``, ``dividend_rho``, ``elasticity`` (``delta S / V``). Greeks of American options are
the finite differences of :func:`greeksmargin.pricing.american_greeks`.

Pass rule: each figure within the case's ``tolerance_abs``; a delta-convention case within its
``tolerance_abs.delta_from_strike`` on delta and ``tolerance_abs.strike_from_delta`` on strike, by default the
README's 1e-3 and 1e-2 (the tolerances of QuantLib's blackdeltacalculator test).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import CaseFormatError
from ..pricing.american import american_greeks, american_price, vanilla_greeks
from ..pricing.conventions import fx_delta, parse_delta_type, strike_from_delta
from .core import CaseResult, SuiteResult, Tolerance, load_case_files, run_guarded
from .pricing_schema import DeltaCase, OptionCase, PricingFile, validate_case

#: the figures an option case may publish
OPTION_FIGURES = ("price", "value", "delta", "gamma", "vega", "theta", "theta_per_day", "rho", "dividend_rho",
                  "elasticity")
#: default tolerances of delta-convention cases (validation README; QuantLib blackdeltacalculator test)
DELTA_TOL = 1e-3
STRIKE_TOL = 1e-2
#: group -> American method
AMERICAN_GROUPS = {"american_baw": "baw", "american_bjerksund_stensland": "bs1993"}
DAYS_PER_YEAR = 365.0


def _is_pricing_file(doc: Any) -> bool:
    cases = doc.get("cases") if isinstance(doc, dict) else doc
    return isinstance(cases, list) and any(isinstance(c, dict) and "option_type" in c for c in cases)


def _check_file(doc: Any, file: Path) -> list[Any]:
    """The list of cases of a pricing case file; a malformed file is a :class:`CaseFormatError` naming it."""
    if isinstance(doc, list):
        return doc
    if not isinstance(doc, dict):
        raise CaseFormatError(f"expected a JSON object with 'cases' (got {type(doc).__name__})", file=str(file))
    try:
        parsed = PricingFile.model_validate(doc)
    except ValidationError as exc:  # name the first key at fault
        err = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        loc = ".".join(str(p) for p in err["loc"])
        what = "unknown key" if err["type"] == "extra_forbidden" else f"{err['msg']}: key"
        raise CaseFormatError(f"{what} '{loc}'", file=str(file), column=loc) from None
    if parsed.n_cases is not None and parsed.n_cases != len(parsed.cases):
        raise CaseFormatError(f"n_cases is {parsed.n_cases} but the file holds {len(parsed.cases)} cases",
                              file=str(file), column="n_cases")
    return parsed.cases


def _files(path: Path) -> list[tuple[Path, list[Any]]]:
    return load_case_files(path, _is_pricing_file, _check_file,
                           "pricing case file (JSON object with 'cases' holding 'option_type')", "cases")


def _option_figures(case: OptionCase, method: str | None) -> dict[str, float]:
    """Every figure of ``expected``, computed (method None: European; else the American method)."""
    unknown = [k for k in case.expected if k not in OPTION_FIGURES]
    if unknown:
        raise CaseFormatError(f"case {case.id}: unknown expected figure '{unknown[0]}' (known: "
                              f"{', '.join(OPTION_FIGURES)})", column="expected")
    args = (case.option_type.lower(), case.spot, case.strike, case.time_years, case.vol, case.rate,
            case.dividend_yield)
    keys = set(case.expected)
    if keys <= {"price", "value"} and method is not None:
        price = float(american_price(*args, method=method))  # type: ignore[arg-type]
        return {k: price for k in case.expected}
    if method is None:
        g = vanilla_greeks(*args, exercise="european")
    else:
        g = american_greeks(*args, method=method)  # type: ignore[arg-type]
    figures = {
        "price": float(g.price), "value": float(g.price), "delta": float(g.delta), "gamma": float(g.gamma),
        "vega": float(g.vega), "theta": float(g.theta), "theta_per_day": float(g.theta) / DAYS_PER_YEAR,
        "rho": float(g.rho), "dividend_rho": float(g.dividend_rho),
    }
    if "elasticity" in keys:
        if float(g.price) == 0.0:
            raise CaseFormatError(f"case {case.id}: elasticity of an option worth 0 is undefined",
                                  column="expected")
        figures["elasticity"] = float(g.delta) * case.spot / float(g.price)
    return {k: figures[k] for k in case.expected}


def _method(case: OptionCase) -> str | None:
    """The American method of an option case, None for European (see the module docstring)."""
    exercise = case.exercise.lower() if case.exercise is not None else None
    if case.group in AMERICAN_GROUPS:
        if exercise == "european":
            raise CaseFormatError(f"case {case.id}: group '{case.group}' with exercise 'european'",
                                  column="exercise")
        return AMERICAN_GROUPS[case.group]
    if case.group is None and exercise == "american":
        raise CaseFormatError(f"case {case.id}: an American case needs 'group' (american_baw or "
                              "american_bjerksund_stensland) to say which approximation it publishes",
                              column="group")
    if exercise == "american":
        raise CaseFormatError(f"case {case.id}: group '{case.group}' with exercise 'american'", column="exercise")
    if case.group == "delta_convention":
        raise CaseFormatError(f"case {case.id}: group 'delta_convention' needs 'delta_type'", column="delta_type")
    return None


def _option_case(case: OptionCase) -> CaseResult:
    computed = _option_figures(case, _method(case))
    rule = Tolerance("abs", case.tolerance_abs)
    return CaseResult(case.id, computed, dict(case.expected), tolerance=rule)


def _delta_case(case: DeltaCase) -> CaseResult:
    unknown = [k for k in case.expected if k != "delta"]
    if unknown:
        raise CaseFormatError(f"case {case.id}: unknown expected figure '{unknown[0]}' (a delta-convention "
                              "case publishes 'delta')", column="expected")
    if "delta" not in case.expected:
        raise CaseFormatError(f"case {case.id}: expected needs 'delta'", column="expected")
    kind = parse_delta_type(case.delta_type)
    opt = case.option_type.lower()
    market = (case.spot, case.domestic_discount, case.foreign_discount, case.std_dev)
    delta = float(fx_delta(opt, case.spot, case.strike, *market[1:], kind))
    strike = float(strike_from_delta(opt, case.expected["delta"], *market, kind))
    tol = case.tolerance_abs
    rule = {"delta": Tolerance("abs", tol.delta_from_strike if tol else DELTA_TOL),
            "strike": Tolerance("abs", tol.strike_from_delta if tol else STRIKE_TOL)}
    return CaseResult(case.id, {"delta": delta, "strike": strike},
                      {"delta": case.expected["delta"], "strike": case.strike}, tolerance=rule)


def run_case(raw: Any) -> CaseResult:
    """Run one pricing case; a malformed case or one that cannot be priced becomes a CaseResult with ``error``."""
    cid = raw.get("id", "?") if isinstance(raw, dict) else "?"
    expected = raw.get("expected", {}) if isinstance(raw, dict) else {}

    def compute() -> CaseResult:
        case = validate_case(raw, cid)
        if isinstance(case, DeltaCase):
            return _delta_case(case)
        return _option_case(case)

    return run_guarded(cid, expected if isinstance(expected, dict) else {}, compute)


def run(path: Path) -> SuiteResult:
    """Run every pricing case of a case file, or of every pricing case file in a folder.

    Parameters
    ----------
    path : Path
        A case file or a folder.

    Returns
    -------
    SuiteResult
        Per case the computed figures in the shape of ``expected`` (delta-convention cases: delta and strike).
    """
    path = Path(path)
    cases = [run_case(case) for _f, doc in _files(path) for case in doc]
    return SuiteResult("pricing", cases, source=str(path),
                       tolerance=f"each case's tolerance_abs (delta conventions: {DELTA_TOL:g} on delta, "
                                 f"{STRIKE_TOL:g} on strike unless the case says otherwise)")
