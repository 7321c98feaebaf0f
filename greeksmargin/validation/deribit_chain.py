"""Validation suite ``deribit-chain``: the pricing layer against a real Deribit BTC option chain.

One case per instrument (``id`` = ``instrument_name``; prefixed by the file stem when a folder holds
several files). Inputs per Deribit's inverse-option conventions: ``T = (expiration_timestamp - timestamp) / (365 days in
ms)``, ``F = underlying_price``, ``sigma = mark_iv / 100``, r = 0 (Deribit prices inverse options at r = 0;
the ``interest_rate`` column, if present, is recorded in ``detail`` only). Computed with
:func:`greeksmargin.pricing.inverse_option`: ``mark_price`` = coin value, and the exchange's USD Greeks
``delta`` = N(d1) (put N(d1) - 1), ``gamma`` = n(d1)/(F sigma sqrt T), ``vega`` USD per vol point, ``theta``
USD per calendar day.

Pass rule (validation/README.md). An instrument is *checked* when T > 2 days and mark_price >= 0.0005:
every one of its five fields is compared, mark_price relative error <= 3e-3, delta absolute <= 2e-4,
gamma absolute <= 1e-5, vega and theta relative <= 1e-3. The exchange publishes Greeks rounded to 5
decimals, so a vega/theta error within half a unit of that 5th decimal (5e-6) also passes (it only
matters for |vega|, |theta| < 0.005, where rounding alone exceeds 1e-3 relative). The per-field result
is in the case's ``fields`` (:func:`greeksmargin.validation.core.compare_fields`); the case passes only
when all five are within tolerance. Instruments that are *not checked* (too close to expiry or too
cheap: the published figures are then dominated by rounding and by the moment between mark and Greek
stamps) are computed and reported with every field ``ok = null`` and the reason, status
``not_checked``: the summary counts them apart, never as passed. A row stamped after its expiry is valued
at T = 0 (intrinsic) and not checked either. An instrument whose inputs cannot be priced (negative or
missing vol, forward <= 0, unknown option type) gets ``error`` and fails, checked or not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.book.tables import nearest_column
from greeksmargin.errors import CaseFormatError
from greeksmargin.pricing import inverse_option, is_call_array
from greeksmargin.units import DAYS_PER_YEAR, years_between_ms
from greeksmargin.validation.core import CaseResult, SuiteResult, Tolerance, iter_case_files

SUITE = "deribit-chain"
REQUIRED_COLUMNS = (
    "instrument_name",
    "option_type",
    "strike",
    "expiration_timestamp",
    "timestamp",
    "underlying_price",
    "mark_price",
    "mark_iv",
    "delta",
    "gamma",
    "vega",
    "theta",
)
FIELDS = ("mark_price", "delta", "gamma", "vega", "theta")
MIN_DAYS = 2.0
MIN_MARK = 0.0005
#: field -> (kind, tolerance); "rel" fields also pass within ROUNDING absolute
TOLERANCES: dict[str, tuple[str, float]] = {
    "mark_price": ("rel", 3e-3),
    "delta": ("abs", 2e-4),
    "gamma": ("abs", 1e-5),
    "vega": ("rel", 1e-3),
    "theta": ("rel", 1e-3),
}
ROUNDING = {"vega": 5e-6, "theta": 5e-6}
#: the pass rule of every field (README tolerances; vega / theta also within the exchange's rounding)
RULE: dict[str, Tolerance] = {f: Tolerance(k, v, ROUNDING.get(f, 0.0)) for f, (k, v) in TOLERANCES.items()}
NOT_CHECKED = f"not checked (T <= {MIN_DAYS:g} days or mark < {MIN_MARK:g})"
TOLERANCE_TEXT = (
    f"checked when T > {MIN_DAYS:g} days and mark >= {MIN_MARK:g}: mark_price rel <= 3e-3, delta abs <= 2e-4, "
    "gamma abs <= 1e-5, vega and theta rel <= 1e-3 (or abs <= 5e-6, the exchange's 5-decimal rounding)"
)


def _read(file: Path) -> pd.DataFrame:
    table = io.read_table(file)
    for col in REQUIRED_COLUMNS:
        if col not in table.columns:
            near = [str(c) for c in table.columns if nearest_column(str(c), [col])]
            hint = f" (found '{near[0]}': a typo?)" if near else ""
            raise CaseFormatError(f"missing column of the deribit_chain format{hint}", file=str(file), column=col)
    return table


def _numeric(table: pd.DataFrame, col: str, file: Path) -> np.ndarray:
    num = pd.to_numeric(table[col], errors="coerce")
    bad = num.isna() & table[col].notna()
    if bad.any():
        row = table.index[bad.to_numpy()][0]
        raise CaseFormatError(f"not a number: {table[col].loc[row]!r}", file=str(file), row=row, column=col)
    return num.to_numpy(dtype=np.float64)


def _compute(
    kinds: np.ndarray, fwd: np.ndarray, strike: np.ndarray, t: np.ndarray, vol: np.ndarray
) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """Price every row; rows whose inputs fail get NaN and their error message."""
    n = fwd.shape[0]
    out = {name: np.full(n, np.nan) for name in FIELDS}
    errors: list[str | None] = [None] * n
    is_call = np.zeros(n, dtype=bool)
    type_ok = np.ones(n, dtype=bool)
    for i, kind in enumerate(kinds):
        try:
            is_call[i] = bool(is_call_array(str(kind)))
        except ValueError as exc:
            type_ok[i] = False
            errors[i] = str(exc)
    valid = type_ok & (fwd > 0) & np.isfinite(fwd) & (strike >= 0) & np.isfinite(strike)
    valid &= (t >= 0) & np.isfinite(t) & (vol >= 0) & np.isfinite(vol)
    for j in np.flatnonzero(valid & (strike <= 0)):  # the kernel prices K = 0; a listed option never has it
        valid[j] = False
        errors[j] = f"strike must be > 0; got {strike[j]!r}"
    rows = np.flatnonzero(valid)
    if rows.size:
        g = inverse_option(is_call[rows], fwd[rows], strike[rows], t[rows], vol[rows])
        out["mark_price"][rows] = g.price
        out["delta"][rows] = g.deribit_delta
        out["gamma"][rows] = g.deribit_gamma
        out["vega"][rows] = g.deribit_vega
        out["theta"][rows] = g.deribit_theta
    for j in np.flatnonzero(~valid & type_ok & np.array([e is None for e in errors], dtype=bool)):
        try:  # the kernel's own message names the argument at fault
            inverse_option(is_call[j], fwd[j], strike[j], t[j], vol[j])
            errors[j] = "cannot price this row"
        except ValueError as exc:
            errors[j] = str(exc)
    return out, errors


def _within(field: str, computed: float, expected: float) -> tuple[bool, float]:
    kind, tol = TOLERANCES[field]
    abs_err = abs(computed - expected)
    if not (np.isfinite(computed) and np.isfinite(expected)):
        return False, float("nan")
    if kind == "abs":
        return abs_err <= tol, abs_err
    rel = abs_err / abs(expected) if expected != 0 else (0.0 if abs_err == 0 else float("inf"))
    return (rel <= tol) or (abs_err <= ROUNDING.get(field, 0.0)), rel


def run_file(file: Path, prefix: str = "") -> list[CaseResult]:
    """Run every instrument of one deribit_chain CSV file.

    Parameters
    ----------
    file : Path
        A CSV file of the deribit_chain format.
    prefix : str, default ""
        Prepended to each case id (used when a folder holds several files).

    Returns
    -------
    list of CaseResult
        One per row, in file order.
    """
    table = _read(file)
    num = {c: _numeric(table, c, file) for c in REQUIRED_COLUMNS if c not in ("instrument_name", "option_type")}
    rate = _numeric(table, "interest_rate", file) if "interest_rate" in table.columns else np.zeros(len(table))
    t_raw = years_between_ms(num["timestamp"], num["expiration_timestamp"])
    expired = t_raw < 0.0
    t = np.where(expired, 0.0, t_raw)  # stamped after expiry: valued at expiry (intrinsic), not checked
    vol = num["mark_iv"] / 100.0
    computed, errors = _compute(table["option_type"].to_numpy(), num["underlying_price"], num["strike"], t, vol)
    checked = (t * DAYS_PER_YEAR > MIN_DAYS) & (num["mark_price"] >= MIN_MARK)
    cases = []
    for i, name in enumerate(table["instrument_name"].astype(str)):
        comp = {f: float(computed[f][i]) for f in FIELDS}
        exp = {f: float(num[f][i]) for f in FIELDS}
        detail: dict[str, Any] = {
            "file": file.name,
            "checked": bool(checked[i]),
            "T_days": float(t_raw[i] * DAYS_PER_YEAR),
            "forward": float(num["underlying_price"][i]),
            "vol": float(vol[i]),
            "interest_rate": float(rate[i]),
        }
        if errors[i] is not None:
            detail["status"] = "error"
            cases.append(CaseResult(prefix + name, comp, exp, False, error=errors[i], detail=detail, tolerance=RULE))
            continue
        detail["errors"] = {f: _within(f, comp[f], exp[f])[1] for f in FIELDS}  # abs: delta/gamma, else rel
        skip: str | None = None
        if expired[i]:
            skip = "not checked (expired: timestamp after expiration, valued at intrinsic)"
        elif not checked[i]:
            skip = (f"{NOT_CHECKED}: out of the suite's checked range (T = {t_raw[i] * DAYS_PER_YEAR:.3g} days, "
                    f"mark {num['mark_price'][i]:.6g})")
        case = CaseResult(prefix + name, comp, exp, detail=detail, tolerance=RULE, not_checked=skip)
        fails = [f for f, v in (case.fields or {}).items() if v["ok"] is False]
        detail["status"] = skip.split(":")[0] if skip and skip.startswith(NOT_CHECKED) else skip or (
            "checked: " + ("ok" if not fails else "out of tolerance: " + ", ".join(fails)))
        cases.append(case)
    return cases


def run(path: Path) -> SuiteResult:
    """Run the deribit-chain suite on a chain CSV file or on every ``*.csv`` of a folder.

    Parameters
    ----------
    path : Path
        A deribit_chain CSV file, or a folder of them.

    Returns
    -------
    SuiteResult
        One CaseResult per instrument; ``detail`` holds ``checked``, ``status`` and per-field ``errors``.

    Raises
    ------
    CaseFormatError
        If a file lacks a column of the format (the message names file and column) or a folder has no CSV.
    """
    path = Path(path)
    files = iter_case_files(path, "*.csv")
    if not files:
        raise CaseFormatError("no deribit_chain CSV file (*.csv) in folder", file=str(path))
    cases: list[CaseResult] = []
    for file in files:
        cases.extend(run_file(file, prefix=f"{file.stem}:" if len(files) > 1 else ""))
    return SuiteResult(SUITE, cases, source=str(path), tolerance=TOLERANCE_TEXT)
