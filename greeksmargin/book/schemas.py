"""Schemas of the input files (pydantic v2): model files, market snapshots, validation case files.

One validation layer for every structured input: each file is checked against a schema here before the
module that owns it builds its objects (``models``, ``market``, ``validation``). Every key is typed and
ranged; unknown keys are rejected with the nearest valid name; numbers must be finite (``nan``, ``inf``,
``1e400`` are refused); correlations lie in [-1, 1] and correlation matrices are positive semi-definite;
dates lie in the range pandas can represent (1677-09-22 .. 2262-04-11). Pydantic's errors become the
project's error types (:class:`~greeksmargin.errors.ModelError`, :class:`~greeksmargin.errors.InputError`
and subclasses) whose message names the file, the key path, the value and the allowed range.

Adding a model-file schema for a new methodology
------------------------------------------------
Write a ``BaseModel`` subclass of :class:`ModelFile` (``meta`` and ``domain`` come with it) declaring the
methodology's tables, then register it::

    MODEL_SCHEMAS["my-methodology"] = MyModelFile

:func:`check_model_file` validates every file of that methodology against it; a methodology without a
schema is refused (``ModelError``: no schema) so that no model file is loaded unchecked.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from greeksmargin.errors import GreeksMarginError, InputError, ModelError
from greeksmargin.units import MAX_DECIMAL_VOL  # noqa: E402  (a vol above it is a percentage)

__all__ = [
    "MarketFile",
    "Strict",
    "check_market",
    "check_psd",
    "validate",
    "nearest",
    "to_error",
]

#: the dates pandas represents at nanosecond resolution (the engine's timestamps)
DATE_MIN = pd.Timestamp.min.tz_localize("UTC")
DATE_MAX = pd.Timestamp.max.tz_localize("UTC")
#: the largest magnitude of a price, notional or amount the engine accepts (finite-safe: squares stay finite)
MAX_MAGNITUDE = 1e15


class Strict(BaseModel):
    """Base of every schema: unknown keys refused, no type coercion, finite numbers only."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


# ------------------------------------------------------------------------------------------- types
def _finite(v: float) -> float:
    if not math.isfinite(v):
        raise ValueError("must be a finite number")
    return v


def _date(v: Any) -> Any:
    """A date-time within the pandas range (str, date or datetime); returns the input unchanged."""
    if isinstance(v, bool) or not isinstance(v, (str, date, datetime)):
        raise ValueError(f"must be an ISO date-time string (got {type(v).__name__})")
    try:
        ts = pd.Timestamp(v)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValueError(f"not a date-time ({exc})") from None
    if pd.isna(ts):
        raise ValueError("not a date-time")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    if not DATE_MIN <= ts <= DATE_MAX:
        raise ValueError(f"date out of range (allowed {DATE_MIN.date()} .. {DATE_MAX.date()})")
    return v


def _vol(v: float) -> float:
    if not v > 0:
        raise ValueError(f"vol must be positive (allowed (0, {MAX_DECIMAL_VOL}])")
    if v > MAX_DECIMAL_VOL:
        raise ValueError(f"vol {v!r} > {MAX_DECIMAL_VOL}: give vols as decimals (0.55), not percent (55)")
    return v


def _price(what: str) -> Any:
    def check(v: float) -> float:
        if not 0 < v <= MAX_MAGNITUDE:
            raise ValueError(f"{what} must be a positive number (allowed (0, {MAX_MAGNITUDE:.0e}])")
        return v

    return AfterValidator(check)


def _psd_matrix(m: list[list[float]]) -> list[list[float]]:
    check_psd(np.asarray(m, dtype=float))
    return m


Finite = Annotated[float, AfterValidator(_finite)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]  # a share, rate or shock in decimals, [0, 1]
Corr = Annotated[float, Field(ge=-1.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0, le=MAX_MAGNITUDE)]
NonNeg = Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
Power = Annotated[float, Field(ge=0.0, le=2.0)]  # exponent of a term-structure power law
Days = Annotated[float, Field(gt=0.0, le=36500.0)]
VolShock = Annotated[float, Field(ge=0.0, le=5.0)]  # a vol move in decimals (5 = 500 vol points)
Rate = Annotated[float, Field(ge=-0.25, le=1.0)]  # continuously compounded decimal rate (5 % = 0.05)
Vol = Annotated[float, AfterValidator(_vol)]  # decimal implied vol (0.55 = 55 %), (0, 5]
DateLike = Annotated[Any, AfterValidator(_date)]
DateKey = Annotated[str, AfterValidator(_date)]
Currency = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9]{1,9}$")]
CorrMatrix = Annotated[list[list[Corr]], AfterValidator(_psd_matrix)]


def check_psd(m: np.ndarray, tol: float = 1e-9) -> None:
    """Raise ValueError unless ``m`` is a square, symmetric, unit-diagonal, positive semi-definite matrix.

    Parameters
    ----------
    m : ndarray of shape (n, n)
        Correlation matrix.
    tol : float
        Tolerance on symmetry and on the smallest eigenvalue.
    """
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"correlation matrix must be square (got shape {m.shape})")
    if not np.allclose(m, m.T, atol=1e-12):
        i, j = np.argwhere(~np.isclose(m, m.T, atol=1e-12))[0]
        raise ValueError(f"correlation matrix not symmetric: [{i}][{j}] = {m[i, j]} but [{j}][{i}] = {m[j, i]}")
    if not np.allclose(np.diag(m), 1.0):
        raise ValueError("correlation matrix must have 1 on the diagonal")
    w = float(np.linalg.eigvalsh(m).min())
    if w < -tol:
        raise ValueError(f"correlation matrix is not positive semi-definite (PSD): smallest eigenvalue {w:.4g} < 0")


# ------------------------------------------------------------------------------------ error conversion
def _loc(loc: tuple[Any, ...], branches: frozenset[str] = frozenset()) -> str:
    s = ""
    for k in loc:
        if isinstance(k, int):
            s += f"[{k}]"
        elif str(k).startswith(("function-", "list[", "dict[", "union[", "tagged-union", "constrained-")) or k in (
                "str", "float", "int", "bool", "list", "dict", "date", "datetime", "[key]", "any") or k in branches:
            continue  # pydantic's name of a union / validator branch, not a key of the file
        else:
            s += f".{k}" if s else str(k)
    return s


def _field_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Every key name declared by ``model`` and the schemas nested in it."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names = set(model.model_fields)
    for f in model.model_fields.values():
        for t in _nested_models(f.annotation):
            names |= _field_names(t, seen)
    return names


def _nested_models(t: Any) -> list[type[BaseModel]]:
    out: list[type[BaseModel]] = []
    if isinstance(t, type) and issubclass(t, BaseModel):
        return [t]
    for a in getattr(t, "__args__", ()) or ():
        out += _nested_models(a)
    return out


def nearest(word: str, choices: Any) -> str | None:
    """The valid name closest to ``word`` (``None`` when nothing is close)."""
    m = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return m[0] if m else None


def _model_names(model: type[BaseModel], seen: set[type] | None = None) -> set[str]:
    """Class names of ``model`` and the schemas nested in it (pydantic's names of union branches)."""
    seen = seen if seen is not None else set()
    if model in seen:
        return set()
    seen.add(model)
    names = {model.__name__}
    for f in model.model_fields.values():
        for t in _nested_models(f.annotation):
            names |= _model_names(t, seen)
    return names


def _describe(err: Mapping[str, Any], known: set[str], branches: frozenset[str] = frozenset(),
              components: tuple[str, ...] = ()) -> tuple[str, str]:
    loc = tuple(err["loc"])
    key = _loc(loc, branches)
    typ = err["type"]
    inp = err.get("input")
    if typ == "extra_forbidden":
        name = str(loc[-1])
        if len(loc) >= 2 and loc[-2] == "components":
            known_c = sorted(components)
            return key, f"unknown component '{name}' (known components: {', '.join(known_c)})"
        sug = nearest(name, known - {name})
        hint = f" (did you mean '{sug}'?)" if sug else ""
        return key, f"unknown key '{name}'{hint}"
    if typ == "missing":
        name = next((str(k) for k in reversed(loc) if not isinstance(k, int)), key)
        return key, f"missing parameter (a required key; missing key '{name}')"
    msg = str(err["msg"]).replace("Value error, ", "")
    if typ.endswith(("_type", "_parsing")) or typ in ("model_type", "dict_type", "list_type"):
        msg = f"wrong type: {msg}"
    shown = repr(inp)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return key, f"{msg} (got {shown})"


def to_error(exc: ValidationError, model: type[BaseModel], *, file: str | None, kind: str = "model",
             prefix: str = "") -> GreeksMarginError:
    """Convert a pydantic ``ValidationError`` into a ModelError / InputError naming file, key, value, range.

    Parameters
    ----------
    exc : ValidationError
        Pydantic's error (all problems are listed; the first three are named in the message).
    model : type of BaseModel
        The schema (its key names feed the "did you mean" suggestion of unknown keys).
    file : str or None
        The file at fault.
    kind : {"model", "market", "case", "input"}
        Which error type to build.
    prefix : str
        Key path prepended to the error locations (e.g. ``"cases[3]"``).
    """
    from greeksmargin.errors import CaseFormatError, MarketDataError

    known = _field_names(model)
    branches = frozenset(_model_names(model))
    errs = sorted(exc.errors(), key=lambda e: (e["type"] != "extra_forbidden", e["type"] == "missing"))
    described: dict[str, list[str]] = {}
    comp_field = model.model_fields.get("components")
    comp_type = comp_field.annotation if comp_field is not None else None
    components = tuple(getattr(comp_type, "model_fields", {}))
    for e in errs:
        k, m = _describe(e, known, branches, components)
        described.setdefault(k, []).append(m)
    # a union reports one error per branch at the same key: keep the value errors over "wrong type"
    flat = [(k, next((m for m in ms if not m.startswith("wrong type")), ms[0])) for k, ms in described.items()]
    parts = []
    keys = []
    for key, msg in flat[:3]:
        key = f"{prefix}{'' if key.startswith('[') else '.'}{key}" if prefix and key else (prefix or key)
        keys.append(key)
        parts.append(f"key '{key}': {msg}" if key else msg)
    more = f" (and {len(flat) - 3} more problems)" if len(flat) > 3 else ""
    if kind == "model":  # ModelError names the first key itself
        first = parts[0].split(": ", 1)[1] if keys[0] else parts[0]
        return ModelError("; ".join([first, *parts[1:]]) + more, file=file, key=keys[0] or None)
    text = "; ".join(parts) + more
    cls = {"market": MarketDataError, "case": CaseFormatError}.get(kind, InputError)
    return cls(text, file=file)


def validate(model: type[BaseModel], data: Any, *, file: str | None, kind: str, prefix: str = "") -> Any:
    """Validate ``data`` against ``model``; raise the project's error type on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise to_error(exc, model, file=file, kind=kind, prefix=prefix) from None


# ------------------------------------------------------------------------------------- market snapshot
class RateCurve(Strict):
    expiries: Annotated[list[DateLike], Field(min_length=1)]
    rates: Annotated[list[Rate], Field(min_length=1)]


class SurfaceSlice(Strict):
    expiry: DateLike
    points: list[Finite]
    vols: list[Vol]


#: allowed surface points per axis (strike in USD, log-moneyness ln K/F)
SURFACE_POINT_RANGES = {"strike": (0.0, MAX_MAGNITUDE), "log_moneyness": (-10.0, 10.0)}


class Surface(Strict):
    axis: Literal["log_moneyness", "strike"] = "log_moneyness"  # greeksmargin.book.market.SURFACE_AXES
    expiries: list[DateLike] | None = None
    points: list[Finite] | None = None
    vols: list[list[Vol]] | None = None
    slices: list[SurfaceSlice] | None = None

    @model_validator(mode="after")
    def _axis_range(self) -> Surface:
        lo, hi = SURFACE_POINT_RANGES[self.axis]
        groups = [("points", self.points or [])] + [(f"slices[{i}].points", s.points)
                                                    for i, s in enumerate(self.slices or [])]
        for where, pts in groups:
            for j, x in enumerate(pts):
                if not lo <= x <= hi:
                    raise ValueError(f"{where}[{j}] = {x!r} is out of range for axis '{self.axis}' "
                                     f"(allowed [{lo:g}, {hi:g}])")
        return self


class UnderlyingMarketFile(Strict):
    spot: Annotated[float, _price("spot")]
    currency: Currency = "USD"
    rate: Rate | RateCurve = 0.0
    dividend_yield: Rate = 0.0
    forwards: dict[DateKey, Annotated[float, _price("forward")]] = {}
    perpetual_mark: Annotated[float, _price("perpetual_mark")] | None = None
    vols: dict[str, Vol] = {}
    surface: Surface | None = None


class MarketFile(Strict):
    """A market snapshot file (JSON / TOML); see greeksmargin.book.market."""

    valuation_time: DateLike
    underlyings: Annotated[dict[str, UnderlyingMarketFile], Field(min_length=1)]
    fx_to_usd: dict[Currency, Annotated[float, _price("FX rate")]] = {}
    source: str = ""
    description: str = ""


def check_market(d: Mapping[str, Any], file: str) -> None:
    """Validate a parsed market snapshot against :class:`MarketFile`.

    Raises
    ------
    MarketDataError
        The message names the file, the key path, the value and the allowed range.
    """
    validate(MarketFile, d, file=file, kind="market")


