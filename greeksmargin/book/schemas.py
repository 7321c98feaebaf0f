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
    "MODEL_SCHEMAS",
    "CASE_SCHEMAS",
    "MarketFile",
    "check_model_file",
    "check_market",
    "check_case_file",
    "check_psd",
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


def _describe(err: Mapping[str, Any], known: set[str], branches: frozenset[str] = frozenset()) -> tuple[str, str]:
    loc = tuple(err["loc"])
    key = _loc(loc, branches)
    typ = err["type"]
    inp = err.get("input")
    if typ == "extra_forbidden":
        name = str(loc[-1])
        if len(loc) >= 2 and loc[-2] == "components":
            known_c = sorted(Components.model_fields)
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
    for e in errs:
        k, m = _describe(e, known, branches)
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


# ---------------------------------------------------------------------------------------- model files
NonEmpty = Annotated[str, Field(min_length=1)]


def _scalar_finite(data: Any) -> Any:
    if isinstance(data, dict):
        for k, v in data.items():
            if not isinstance(v, (str, int, float, bool, date, datetime)):
                raise ValueError(f"{k}: expected a number, a string or a date (got {type(v).__name__})")
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{k}: must be a finite number (got {v})")
    return data


class CalibrationRecord(Strict):
    """One ``[meta.calibration.<target>]`` record written by greeksmargin.calibration (more keys allowed)."""

    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] | None = None
    mpor_days: Annotated[int, Field(ge=1, le=365)] | None = None
    scale: Annotated[float, Field(gt=0.0, le=100.0)] | None = None
    start: DateLike | None = None
    end: DateLike | None = None
    price_shock_down: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    price_shock_up: Annotated[float, Field(ge=0.0, le=10.0)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _scalars(cls, data: Any) -> Any:
        _scalar_finite(data)
        if isinstance(data, dict):
            for k, v in data.items():
                is_num = isinstance(v, (int, float)) and not isinstance(v, bool)
                if ("shock" in k or "reference" in k) and not k.endswith("days") and is_num and not 0.0 <= v <= 10.0:
                    raise ValueError(f"{k}: a calibrated shock must lie in [0, 10] (got {v})")
        return data


class Meta(Strict):
    """``[meta]`` of every model file."""

    name: NonEmpty
    methodology: NonEmpty
    version: NonEmpty
    description: str = ""
    source: NonEmpty
    effective_date: NonEmpty | date
    notes: str | list[str] = ""
    calibration: dict[str, CalibrationRecord] = {}
    checked_against: str | list[str] = ""
    choices: list[str] = []
    status: Literal["published", "illustrative"] = "illustrative"


class Domain(Strict):
    """``[domain]``: what a model can margin (DOMAIN.md); absent: everything."""

    underlyings: list[str] = ["*"]
    kinds: list[Literal["option", "future", "perpetual", "spot"]] = ["option", "future", "perpetual", "spot"]
    settlement: list[Literal["linear", "inverse"]] = ["linear", "inverse"]


class ModelFile(Strict):
    """Base of the model-file schemas: ``[meta]`` and the optional ``[domain]``."""

    meta: Meta
    domain: Domain | None = None

    @model_validator(mode="before")
    @classmethod
    def _near_miss_tables(cls, data: Any) -> Any:
        """Refuse a top-level name close to a declared one: a typo, even where extra tables are allowed.

        (The coin tables of Deribit PM and new SIMM risk classes are extra tables.)
        """
        if isinstance(data, dict):
            declared = set(cls.model_fields)
            for k in data:
                if k not in declared:
                    m = difflib.get_close_matches(str(k), sorted(declared), n=1, cutoff=0.8)
                    if m:
                        raise ValueError(f"unknown table [{k}] (did you mean [{m[0]}]?)")
        return data


# component methodologies (greeks-stress, deribit-standard, tims-pm): models.py COMPONENT_SPECS
VolState = Literal["up", "none", "down"]
Method = Literal["taylor", "revaluation"]
Kind = Literal["option", "future", "perpetual", "spot"]


class VolShockTable(Strict):
    kind: Literal["relative", "absolute"] = "relative"
    up: VolShock = 0.0
    down: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    short_power: Power = 0.0
    long_power: Power = 0.0
    pivot_days: Days = 30.0
    floor_days: Days = 1.0
    min_vol_up: VolShock = 0.0
    min_vol: VolShock = 0.0


class GridOverride(Strict):
    range_down: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    range_up: Annotated[float, Field(gt=0.0, le=3.0)] | None = None
    tail_weight: Fraction | None = None
    vol_up: VolShock | None = None
    vol_down: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class Grid(Strict):
    range_down: Annotated[float, Field(gt=0.0, lt=1.0)]
    range_up: Annotated[float, Field(gt=0.0, le=3.0)] | None = None  # a regular scan range (tails: tail_moves)
    points_down: Annotated[int, Field(ge=1, le=200)] = 4
    points_up: Annotated[int, Field(ge=1, le=200)] | None = None
    include_zero: bool = True
    vol_states: list[VolState] = ["up", "none", "down"]
    tail_moves: list[Annotated[float, Field(gt=-1.0, le=20.0)]] = []
    tail_vol_states: list[VolState] = ["up"]
    tail_weight: Fraction = 1.0
    tail_weight_rule: Literal["constant", "range_over_move"] = "constant"
    vol_shock: VolShockTable = VolShockTable()
    overrides: dict[str, GridOverride] = {}


Shock = Annotated[float, Field(ge=0.0, le=1.0)]  # a relative price fall (or rise) as a decimal
RiseShock = Annotated[float, Field(ge=0.0, le=3.0)]


class ScanC(Strict):
    gain_offset: Fraction


class DeltaC(Strict):
    price_shock: Shock
    price_shock_by_underlying: dict[str, Shock] = {}
    price_shock_down: Shock | None = None
    price_shock_up: RiseShock | None = None
    price_shock_down_by_underlying: dict[str, Shock] = {}
    price_shock_up_by_underlying: dict[str, RiseShock] = {}
    method: Method = "taylor"


class GammaC(Strict):
    price_shock: Shock
    price_shock_by_underlying: dict[str, Shock] = {}
    method: Method = "taylor"


class VegaC(Strict):
    shock: VolShock
    shock_by_underlying: dict[str, VolShock] = {}
    shock_down: VolShock | None = None
    shock_down_by_underlying: dict[str, VolShock] = {}
    kind: Literal["relative", "absolute"] = "absolute"
    short_power: Power = 0.0
    long_power: Power = 0.0
    pivot_days: Days = 30.0
    floor_days: Days = 1.0
    bucket_days: Annotated[list[Days], Field(min_length=1)]
    cross_bucket_netting: Fraction
    method: Method = "taylor"


class ShortOptionMinC(Strict):
    rate: Fraction


class ContractFloorC(Strict):
    per_contract: NonNeg
    currency: Currency = "USD"
    kinds: list[Kind] = ["option"]


class RollC(Strict):
    min_annual_move: Annotated[float, Field(ge=0.0, le=5.0)]
    annual_move: Annotated[float, Field(ge=0.0, le=5.0)] = 0.0
    kinds: list[Kind] = ["future", "perpetual"]
    scope: Literal["gross", "calendar"] = "gross"


class EmptyC(Strict):
    pass


class OptionStandardC(Strict):
    im_base: Fraction
    im_min: Fraction
    mm_base: Fraction
    long_premium: bool = True


class DeltaOneC(Strict):
    im_rate: Fraction
    mm_rate: Fraction
    kinds: list[Kind] = ["future", "perpetual"]


class Components(Strict):
    scan: ScanC | None = None
    delta: DeltaC | None = None
    gamma: GammaC | None = None
    vega: VegaC | None = None
    short_option_minimum: ShortOptionMinC | None = None
    contract_floor: ContractFloorC | None = None
    roll: RollC | None = None
    long_premium_cap: EmptyC | None = None
    option_standard: OptionStandardC | None = None
    delta_one: DeltaOneC | None = None


class Combine(Strict):
    im: str
    mm: str | None = None
    mm_factor: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    cap_at_isolated: bool = False


class Aggregate(Strict):
    method: Literal["sum", "correlation", "offsets"]
    default_correlation: Corr | None = None
    correlations: dict[str, Corr] = {}
    offsets: dict[str, Fraction] = {}

    @model_validator(mode="after")
    def _psd(self) -> Aggregate:
        if not self.correlations:
            return self
        names: list[str] = []
        pairs = {}
        for k, v in self.correlations.items():
            ab = [p.strip() for p in k.split("/")]
            if len(ab) != 2 or not all(ab):
                raise ValueError(f"correlation key {k!r} must be 'A/B'")
            pairs[tuple(ab)] = v
            names += [n for n in ab if n not in names]
        m = np.eye(len(names))
        base = self.default_correlation if self.default_correlation is not None else 0.0
        idx = {n: i for i, n in enumerate(names)}
        for i in range(len(names)):
            for j in range(len(names)):
                if i != j:
                    m[i, j] = base
        for (a, b), v in pairs.items():
            m[idx[a], idx[b]] = m[idx[b], idx[a]] = v
        try:
            check_psd(m)
        except ValueError as exc:
            raise ValueError(f"correlations {dict(self.correlations)} (others default_correlation {base}): "
                             f"{exc}") from None
        return self


class Groups(Strict):
    default: str = "default"
    members: dict[str, str] = {}


class ComponentModelFile(ModelFile):
    """greeks-stress, deribit-standard, tims-pm (rules assembled from components; see models.py)."""

    groups: Groups = Groups()
    grid: Grid | None = None
    components: Components
    combine: Combine
    aggregate: Aggregate


class DeribitPMCurrency(Strict):
    """One settlement coin of Deribit PM (exchange parameter names)."""

    price_range: Annotated[float, Field(gt=0.0, lt=1.0)]
    buckets_count: Annotated[int, Field(ge=1, le=100)] = 4
    volatility_range_up: VolShock = 0.5
    volatility_range_down: Annotated[float, Field(ge=0.0, le=1.0)] = 0.25
    short_term_vega_power: Power = 0.3
    long_term_vega_power: Power = 0.13
    min_volatility_for_shock_up: VolShock = 0.5
    max_delta_shock: Fraction = 0.1
    delta_total_liq_shock_threshold: NonNeg = 20_000_000.0
    extended_table_factor: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    annualised_move_risk: Annotated[float, Field(ge=0.0, le=5.0)] = 0.075
    min_annualised_move: Annotated[float, Field(ge=0.0, le=5.0)] = 0.01
    extended_dampener: NonNeg = 100_000.0
    pnl_offset: Fraction = 0.0
    max_offsetable_pnl: NonNeg = 0.0
    mm_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    extended_moves: list[Annotated[float, Field(gt=-1.0, le=20.0)]] = []
    dte_floor_days: Days = 1.0
    min_volatility_for_shock_down: VolShock = 0.0
    correlation_contingency: Fraction = 0.0
    roll_shock_rule: Literal["max_term", "min"] = "max_term"
    extended_dampener_mode: Literal["threshold", "subtract"] = "threshold"
    delta_one_extended: Literal["edge", "full"] = "edge"


class DeribitPMFile(ModelFile):
    """deribit_pm: one table per settlement coin (lower-case: ``[btc]``, ``[eth]``)."""

    model_config = ConfigDict(extra="allow")

    @model_validator(mode="after")
    def _coins(self) -> DeribitPMFile:
        extra = self.__pydantic_extra__ or {}
        if not extra:
            raise ValueError("no parameter table (expected one per settlement coin, e.g. [btc])")
        for name, table in extra.items():
            if not isinstance(table, dict) or not name.isalnum() or name != name.lower():
                raise ValueError(f"[{name}]: expected a lower-case coin table such as [btc] with the PM parameters")
        return self


class SpanProduct(Strict):
    description: str = ""
    illustrative: bool = False
    psr: Positive | None = None
    psr_fraction: Annotated[float, Field(gt=0.0, lt=1.0)] | None = None
    vsr: Annotated[float, Field(ge=0.0, le=5.0)] | None = None
    extreme_multiple: Annotated[float, Field(gt=0.0, le=10.0)] | None = None
    extreme_weight: Fraction | None = None
    short_option_minimum: NonNeg | None = None
    spread_rate: NonNeg | None = None
    spread_rates: dict[str, NonNeg] = {}
    delivery_charge: NonNeg | None = None
    inter_commodity_credit: NonNeg | None = None
    multiplier: Positive | None = None


class SpanFile(ModelFile):
    defaults: SpanProduct = SpanProduct()
    products: dict[str, SpanProduct]


# Bounds of the PM2 parameter groups: the contract's setter checks (derivexyz/v2-core @ 7736900,
# src/risk-managers/PMRMLib_2.sol: setVolShockParams, setMarginParams, setBasisContingencyParams,
# setOtherContingencyParams, setSkewShockParameters; unsigned fields are >= 0) and PMRM_2.sol setScenarios.
# The exchange's one-parameter sweeps test these maxima and minima on purpose.


class PM2CaseScenario(Strict):
    # setScenarios checks only that linear / abs scenarios have spotShock 1 (unsigned spotShock and dampening):
    # a case file (the exchange's own) is held to that alone
    spot_multiplier: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
    vol: Literal["up", "down", "none", "linear", "abs"]
    dampening: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)] = 1.0


class PM2Scenario(PM2CaseScenario):
    # a model file (written by a user) also gets a unit guard, not a contract bound: a spot multiplier above 10
    # (a 900 % move) is taken for a percentage; the exchange's published sweeps go up to 6
    spot_multiplier: Annotated[float, Field(ge=0.0, le=10.0)]


class PM2Settlement(Strict):
    window_seconds: Annotated[float, Field(ge=0.0, le=86400.0 * 30)]
    static_discount_at_expiry: bool = True


class PM2Labels(Strict):
    regular_max_move: Annotated[float, Field(gt=0.0, le=1.0)]


class PM2VolShock(Strict):
    volrangeup: Annotated[float, Field(ge=0.0, le=10.0)]  # volRangeUp <= 10e18
    volrangedown: Annotated[float, Field(ge=0.0, le=10.0)]  # volRangeDown <= 10e18 (down = max(0, 1 - range m))
    shorttermpower: Annotated[float, Field(le=10.0)]  # int shortTermPower <= 10e18
    longtermpower: Annotated[float, Field(le=10.0)]  # int longTermPower <= 10e18
    dte_floor: Annotated[float, Field(ge=0.0, le=400.0)] = 1.0  # dteFloor <= 400 days (days here)
    min_vol_eval_shocked: Annotated[float, Field(ge=0.0, le=20.0)] = 0.0  # minVolUpShock <= 20e18


class PM2Margin(Strict):
    mm_loss_factor: Annotated[float, Field(ge=0.1, le=10.0)]  # 0.1e18 <= mmFactor <= 10e18
    im_loss_factor: Annotated[float, Field(ge=0.5, le=10.0)]  # 0.5e18 <= imFactor <= 10e18
    short_rate_multscale: Annotated[float, Field(ge=0.0, le=10.0)]
    long_rate_multscale: Annotated[float, Field(ge=0.0, le=10.0)]
    short_rate_addscale: Annotated[float, Field(ge=0.0, le=10.0)]
    long_rate_addscale: Annotated[float, Field(ge=0.0, le=10.0)]
    base_static_discount: Annotated[float, Field(ge=0.0, le=4.0)]  # longBaseStaticDiscount <= 4e18
    base_static_discount_neg: Annotated[float, Field(ge=0.0, le=4.0)]  # shortBaseStaticDiscount <= 4e18


class PM2Basis(Strict):
    scenario_spot_up: Annotated[float, Field(gt=1.0, lt=3.0)]  # 1e18 < scenarioSpotUp < 3e18
    scenario_spot_down: Annotated[float, Field(ge=0.0, lt=1.0)]  # scenarioSpotDown < 1e18
    basis_cont_add_factor: Annotated[float, Field(ge=0.0, le=20.0)]  # basisContAddFactor <= 20e18
    basis_cont_mult_factor: Annotated[float, Field(ge=0.0, le=20.0)]  # basisContMultFactor <= 20e18


class PM2Other(Strict):
    peg_loss_threshold: Annotated[float, Field(ge=0.0, le=100.0)]  # pegLossThreshold <= 100e18
    peg_loss_factor: Annotated[float, Field(ge=0.0, le=10.0)]  # pegLossFactor <= 10e18
    conf_threshold: Fraction  # confThreshold <= 1e18
    conf_margin: Annotated[float, Field(ge=0.0, le=20.0)]  # confMargin <= 20e18
    mm_perp_percent: Annotated[float, Field(ge=0.0, le=3.0)]  # MMPerpPercent <= 3e18
    im_perp_percent: Annotated[float, Field(ge=0.0, le=3.0)]  # IMPerpPercent <= 3e18
    mm_option_percent: Annotated[float, Field(ge=0.0, le=2.0)]  # MMOptionPercent <= 2e18
    im_option_percent: Annotated[float, Field(ge=0.0, le=2.0)]  # IMOptionPercent <= 2e18
    # not contract parameters (Derive's Python reference only, unused on-chain): no publisher bound but >= 0
    im_perp_percent_normal: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
    im_option_percent_normal: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]


class PM2Skew(Strict):
    linear_scale_cap: Annotated[float, Field(ge=0.0, le=10.0)]  # linearBaseCap <= 10e18
    linear_cbase: Annotated[float, Field(ge=-10.0, le=10.0)]  # -10e18 <= linearCBase <= 10e18
    abs_scale_cap: Annotated[float, Field(ge=0.0, le=10.0)]  # absBaseCap <= 10e18
    abs_cbase: Annotated[float, Field(ge=-10.0, le=10.0)]
    min_k_star: Annotated[float, Field(ge=0.0, le=10.0)]  # 0 <= minKStar <= 10e18
    min_width_scale: Annotated[float, Field(ge=0.0, le=10.0)]  # 0 <= widthScale <= 10e18
    vol_param_static: Annotated[float, Field(ge=0.0, le=10.0)]  # 0 <= volParamStatic <= 10e18
    vol_param_scale: Annotated[float, Field(ge=-20.0, le=20.0)]  # -20e18 <= volParamScale <= 20e18


class DerivePM2File(ModelFile):
    scenarios: Annotated[list[PM2Scenario], Field(min_length=1)]
    settlement: PM2Settlement
    labels: PM2Labels
    vol_shock: PM2VolShock
    margin: PM2Margin
    basis_contingency: PM2Basis
    other_contingency: PM2Other
    skew_shock: PM2Skew


# Derive standard manager (derive-srm): the bounds are the contract's setter checks (derivexyz/v2-core @ 7736900,
# src/risk-managers/StandardManager.sol: setOptionMarginParams, setPerpMarginRequirements,
# setBaseAssetMarginFactor, setOracleContingencyParams, setDepegParameters; every parameter is unsigned, >= 0)
class SRMOption(Strict):
    maxSpotReq: Annotated[float, Field(ge=0.0, le=1.2)]
    minSpotReq: Annotated[float, Field(ge=0.0, le=1.2)]
    mmCallSpotReq: Annotated[float, Field(ge=0.0, le=1.0)]
    mmPutSpotReq: Annotated[float, Field(ge=0.0, le=1.0)]
    MMPutMtMReq: Annotated[float, Field(ge=0.0, le=1.0)]
    unpairedIMScale: Annotated[float, Field(ge=1.0, le=3.0)]
    unpairedMMScale: Annotated[float, Field(ge=1.0, le=3.0)]
    mmOffsetScale: Annotated[float, Field(ge=1.0, le=3.0)]


class SRMPerp(Strict):
    mmPerpReq: Annotated[float, Field(gt=0.0, lt=1.0)]  # reverts: mm > im, mm == 0, mm >= 1, im >= 1
    imPerpReq: Annotated[float, Field(gt=0.0, lt=1.0)]

    @model_validator(mode="after")
    def _mm_le_im(self) -> SRMPerp:
        if self.mmPerpReq > self.imPerpReq:
            raise ValueError("mmPerpReq must be <= imPerpReq (StandardManager.setPerpMarginRequirements)")
        return self


class SRMOracle(Strict):
    perpThreshold: Fraction
    optionThreshold: Fraction
    baseThreshold: Fraction
    OCFactor: Fraction


class SRMBase(Strict):
    marginFactor: Fraction
    initialMarginMultiplier: Fraction


class SRMDepeg(Strict):
    threshold: Fraction
    depegFactor: Annotated[float, Field(ge=0.0, le=3.0)]


class SRMMarketOverride(Strict):
    option: SRMOption | None = None
    perp_margin: SRMPerp | None = None
    oracle_contingency: SRMOracle | None = None
    base_asset_margin_factor: SRMBase | None = None


class DeriveSRMFile(ModelFile):
    option: SRMOption
    perp_margin: SRMPerp
    oracle_contingency: SRMOracle
    base_asset_margin_factor: SRMBase
    depeg: SRMDepeg
    markets: dict[str, SRMMarketOverride] = {}


# SIMM: the tables of the equity and FX risk classes are typed; other tables (risk classes added later)
# are checked generically: finite numbers, correlations in [-1, 1], square correlation matrices PSD.
RiskWeight = Annotated[float, Field(ge=0.0, le=1e4)]
Threshold = Annotated[float, Field(gt=0.0, le=MAX_MAGNITUDE)]


Horizon = Literal["10d", "1d"]


class SimmGeneral(Strict):
    horizons: list[Literal["10d", "1d"]]
    delta_confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.99
    curvature_confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.995
    curvature_factor: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    residual_bucket: str = "Residual"
    concentration: dict[Horizon, bool] = {}
    vega_sigma_days: dict[Horizon, Days] = {}
    curvature_scale_days: dict[Horizon, Days] = {}
    tenor_unit_days: dict[Literal["d", "w", "m", "y"], Days | str] = {}


class SimmRiskClassCorr(Strict):
    classes: list[str]
    matrix: CorrMatrix


class SimmEquityDelta(Strict):
    concentration_threshold: list[Threshold]
    risk_weight: dict[Horizon, list[RiskWeight]]


class SimmEquityVega(Strict):
    concentration_threshold: list[Threshold]
    risk_weight: dict[Horizon, list[Annotated[float, Field(ge=0.0, le=10.0)]]]
    historical_volatility_ratio: dict[Horizon, Annotated[float, Field(gt=0.0, le=1.0)]]


class SimmEquity(Strict):
    buckets: list[str]
    intra_bucket_correlation: list[Corr]
    inter_bucket_buckets: list[str]
    inter_bucket_correlation: CorrMatrix
    no_curvature_buckets: list[str] = []
    delta: SimmEquityDelta
    vega: SimmEquityVega


class SimmFXDelta(Strict):
    correlation_regular_calc_ccy: list[list[Corr]]
    correlation_high_vol_calc_ccy: list[list[Corr]]
    concentration_categories: list[list[str]]
    concentration_threshold: list[Threshold]
    risk_weight: dict[Horizon, list[list[RiskWeight]]]


class SimmFXVega(Strict):
    correlation: Corr
    concentration_threshold: list[Threshold]
    risk_weight: dict[Horizon, RiskWeight | list[RiskWeight] | list[list[RiskWeight]]] = {}
    historical_volatility_ratio: dict[Horizon, Annotated[float, Field(gt=0.0, le=1.0)]] = {}


class SimmFX(Strict):
    high_vol_currencies: list[str] = []
    delta: SimmFXDelta
    vega: SimmFXVega


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _mixed(values: list[Any], path: str, keys: list[str]) -> None:
    """A table of numbers holding a non-number (a string, a boolean) is an error naming the entry."""
    if any(_is_number(v) for v in values):
        for k, v in zip(keys, values, strict=True):
            if not _is_number(v) and not isinstance(v, (dict, list)):
                raise ValueError(f"{path}{k}: must be a number like its neighbours (got {v!r})")


def _generic_simm(obj: Any, path: str) -> None:
    """Finite numbers, correlations in [-1, 1] and PSD square correlation matrices in an untyped table."""
    if isinstance(obj, dict):
        if path and path.split(".")[0] not in ("general", "meta", "domain"):  # those are typed, mixed by design
            _mixed(list(obj.values()), f"{path}.", [str(k) for k in obj])
            if set(obj) & {"10d", "1d"}:  # a per-horizon table holds horizons only
                for k in obj:
                    if k not in ("10d", "1d"):
                        sug = nearest(str(k), ["10d", "1d"])
                        hint = f"; did you mean '{sug}'?" if sug else ""
                        raise ValueError(f"{path}.{k}: unknown horizon '{k}' (allowed: 10d, 1d){hint}")
            if path.endswith("vega.risk_weight") or ".vega.risk_weight." in f"{path}.":
                for k, v in obj.items():
                    if _is_number(v) and not 0.0 <= v <= 10.0:
                        raise ValueError(f"{path}.{k}: a vega risk weight lies in [0, 10] (got {v}: a percentage?)")
        for k, v in obj.items():
            _generic_simm(v, f"{path}.{k}" if path else str(k))
        if any("correlation" in str(k) for k in obj):
            for k, v in obj.items():
                if "correlation" in str(k):
                    arr = np.asarray(v, dtype=float) if _is_numeric(v) else None
                    if arr is not None and arr.size and (np.abs(arr) > 1).any():
                        x = arr[np.abs(arr) > 1][0]
                        raise ValueError(f"{path}.{k}: correlations must lie in [-1, 1] (got {x})")
                    if arr is not None and arr.ndim == 2 and arr.shape[0] == arr.shape[1] and np.allclose(
                            np.diag(arr), 1.0):
                        try:
                            check_psd(arr)
                        except ValueError as exc:
                            raise ValueError(f"{path}.{k}: {exc}") from None
    elif isinstance(obj, list):
        _mixed(obj, path, [f"[{i}]" for i in range(len(obj))])
        if obj and all(isinstance(v, list) for v in obj):  # a matrix: every row numbers if one row is
            flat = [x for row in obj for x in row]
            _mixed(flat, path, [f"[{i}][{j}]" for i, row in enumerate(obj) for j in range(len(row))])
        for i, v in enumerate(obj):
            _generic_simm(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{path}: must be a finite number (got {obj})")


def _is_numeric(v: Any) -> bool:
    try:
        arr = np.asarray(v, dtype=float)
    except (ValueError, TypeError):
        return False
    return arr.dtype == float


class SimmFile(ModelFile):
    model_config = ConfigDict(extra="allow")
    general: SimmGeneral
    risk_class_correlation: SimmRiskClassCorr
    equity: SimmEquity | None = None
    fx: SimmFX | None = None

    @model_validator(mode="before")
    @classmethod
    def _untyped(cls, data: Any) -> Any:
        if isinstance(data, dict):
            _generic_simm(data, "")
        return data


class StrategyParameters(Strict):
    multiplier: Annotated[float, Field(gt=0.0, le=1e6)] = 100.0
    shares_per_contract: Annotated[float, Field(gt=0.0, le=1e6)] = 100.0
    rate_equity: Fraction = 0.20
    rate_narrow_index: Fraction = 0.20
    rate_volatility: Fraction = 0.20
    rate_broad_index: Fraction = 0.15
    min_rate_call: Fraction = 0.10
    min_rate_put: Fraction = 0.10
    long_term_days: Days = 270.0
    long_term_rate: Fraction = 0.75
    stock_long_rate: Fraction = 0.50
    stock_short_rate: Annotated[float, Field(ge=0.0, le=10.0)] = 0.50
    round_to: Annotated[float, Field(gt=0.0, le=1.0)] = 0.01
    # FINRA Rule 4210(c) maintenance on stock: rates are fractions of market value in [0, 1] (4210(c): 25% long,
    # 30% short, 100% for short stock below $5; a maintenance rate above 100% of the value is outside the rule);
    # per-share minimums and the low-price threshold are USD amounts (the rule's $2.50 / $5.00), >= 0, within
    # the engine-wide magnitude bound MAX_MAGNITUDE
    stock_maint_long_rate: Fraction = 0.25
    stock_maint_short_rate: Fraction = 0.30
    stock_maint_short_min_per_share: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)] = 5.0
    stock_maint_low_price: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)] = 5.0
    stock_maint_low_price_min_per_share: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)] = 2.5


class StrategyUnderlyings(Strict):
    default_index_type: Literal["equity", "broad", "narrow", "volatility"] = "equity"
    index_type: dict[str, Literal["equity", "broad", "narrow", "volatility"]] = {}
    leverage_factor: dict[str, Annotated[float, Field(ge=1.0, le=10.0)]] = {}


class StrategyFile(ModelFile):
    parameters: StrategyParameters
    underlyings: StrategyUnderlyings = StrategyUnderlyings()


#: methodology -> schema of its model files (add yours here; see the module docstring)
MODEL_SCHEMAS: dict[str, type[ModelFile]] = {
    "cboe-strategy": StrategyFile,
    "greeks-stress": ComponentModelFile,
    "deribit-standard": ComponentModelFile,
    "tims-pm": ComponentModelFile,
    "deribit_pm": DeribitPMFile,
    "deribit-pm": DeribitPMFile,
    "span": SpanFile,
    "derive_pm2": DerivePM2File,
    "derive-pm2": DerivePM2File,
    "derive_srm": DeriveSRMFile,
    "derive-srm": DeriveSRMFile,
    "simm": SimmFile,
}


def check_model_file(raw: Mapping[str, Any], file: str) -> None:
    """Validate a parsed model file against the schema of its methodology.

    Parameters
    ----------
    raw : mapping
        The TOML file as parsed.
    file : str
        Its path (for messages).

    Raises
    ------
    ModelError
        No ``[meta]`` / methodology, a methodology without a schema (the nearest known one suggested), or
        any key of the file out of its schema (unknown key, wrong type, out of range, non-finite,
        correlation outside [-1, 1] or not PSD); the message names the file, the key, the value and the
        allowed range.
    """
    meta = raw.get("meta")
    if not isinstance(meta, Mapping):
        raise ModelError("missing table [meta] (with name, methodology, version, source, effective_date)",
                         file=file, key="meta")
    meth = meta.get("methodology")
    if not isinstance(meth, str) or not meth:
        raise ModelError("missing methodology (key 'methodology' in [meta])", file=file, key="meta.methodology")
    schema = MODEL_SCHEMAS.get(meth)
    if schema is None:
        sug = nearest(meth, MODEL_SCHEMAS)
        hint = f"; did you mean '{sug}'?" if sug else ""
        raise ModelError(f"unknown methodology {meth!r} (known: {', '.join(sorted(MODEL_SCHEMAS))}){hint}",
                         file=file, key="meta.methodology")
    if schema is DeribitPMFile:
        validate(schema, raw, file=file, kind="model")
        for name, table in raw.items():
            if name not in ("meta", "domain"):
                validate(DeribitPMCurrency, table, file=file, kind="model", prefix=name)
        return
    validate(schema, raw, file=file, kind="model")


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


# ---------------------------------------------------------------------------------- validation cases
class DeribitPMCaseParams(DeribitPMCurrency):
    """Parameters of a published Deribit PM response (``private/pme/simulate`` ``model_params``, flattened).

    Every key the API publishes is known: the risk-matrix ones (above) and those that do not enter a
    single-currency risk matrix (below, accepted and reported); any other key is an error naming it.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    # published by the API (model_params.currency.* / general.*), not used by the single-currency risk matrix
    m_inc: NonNeg | None = None
    haircut: Fraction | None = None
    equity_side_impact: Literal["none", "both", "long", "short"] | None = None
    correlation_set: bool | None = None
    vol_scenarios_count: Literal[3] | None = None  # the risk matrix's vol states: up, none, down
    timestamp: Annotated[int, Field(gt=0, lt=9_223_372_036_854)] | None = None  # general.timestamp (ms)

    @model_validator(mode="before")
    @classmethod
    def _finite(cls, data: Any) -> Any:
        return _finite_tree(data)


class DeribitPMCasePosition(Strict):
    instrument: str
    kind: Literal["option", "future", "perpetual"]
    size: Finite
    mark_price: Positive
    expiry_ms: Annotated[int, Field(gt=0, lt=9_223_372_036_854)] | None = None
    strike: Positive | None = None
    option_type: Literal["call", "put"] | None = None
    iv: Vol | None = None


class DeribitPMCase(Strict):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    id: str
    source: str = ""
    currency: str
    # needed to value futures and options (time to expiry); a perpetual-only book has none to value
    timestamp_ms: Annotated[int, Field(gt=0, lt=9_223_372_036_854)] | None = None
    index_price: Positive
    parameters: DeribitPMCaseParams
    positions: list[DeribitPMCasePosition]
    expected: dict[str, Any]
    notes: str | list[str] = ""


def _finite_tree(obj: Any, path: str = "") -> Any:
    """Every number in ``obj`` finite (the ``expected`` blocks are checked this way)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            _finite_tree(v, f"{path}.{k}" if path else str(k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            _finite_tree(v, f"{path}[{i}]")
    elif isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"{path}: must be a finite number (got {obj})")
    return obj


FiniteTree = Annotated[Any, AfterValidator(_finite_tree)]


class SpanCasePosition(Strict):
    contract: str
    quantity: Finite


class SpanCase(Strict):
    id: str
    description: str = ""
    risk_arrays: dict[str, Annotated[list[Finite], Field(min_length=16, max_length=16)]]
    risk_array_convention: Literal["profit_positive", "loss_positive"]
    extreme_weights_applied: bool
    positions: Annotated[list[SpanCasePosition], Field(min_length=1)]
    expected_scan_risk: Finite
    source: str = ""


class Pm2Perp(Strict):
    size: Finite
    price: NonNeg
    confidence: Fraction
    unrealised_pnl: Finite = 0.0
    unrealised_funding: Finite = 0.0


class Pm2Option(Strict):
    strike: Positive
    vol: Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]  # uint in the vol feed: any >= 0 (0 = intrinsic)
    is_call: bool
    seconds_to_expiry: Annotated[float, Field(ge=-1e10, le=1e10)]
    amount: Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]


class Pm2Collateral(Strict):
    name: str = ""
    amount: Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]
    price: NonNeg
    confidence: Fraction | None = None
    confidence_factor: NonNeg | None = None  # the reference's own input (no contract parameter): >= 0
    im_haircut: Fraction | None = None
    mm_haircut: Fraction | None = None
    risk_cancelling: bool | None = None


class Pm2Forward(Strict):
    forward: Positive
    seconds_to_expiry: Annotated[float, Field(ge=-1e10, le=1e10)]
    vol_confidence: Fraction | None = None
    forward_confidence: Fraction | None = None
    rate_confidence: Fraction | None = None
    rate: Finite | None = None  # the rate feed's signed int: no contract bound


class Pm2Portfolio(Strict):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)
    spot: Positive
    spot_confidence: Fraction
    cash: Finite
    stable_price: Positive
    stable_confidence: Fraction
    perp: Pm2Perp
    collaterals: list[Pm2Collateral]
    options: list[Pm2Option]
    forwards: list[Pm2Forward]


class Pm2CaseParams(Strict):
    scenarios: Annotated[list[PM2CaseScenario], Field(min_length=1)]
    settlement: PM2Settlement | None = None
    labels: PM2Labels | None = None
    vol_shock: PM2VolShock
    margin: PM2Margin
    basis_contingency: PM2Basis
    other_contingency: PM2Other
    skew_shock: PM2Skew


class Pm2Case(Strict):
    id: int | str
    name: str = ""
    portfolio: Pm2Portfolio
    parameters: Pm2CaseParams
    expected: dict[str, FiniteTree]
    source: str = ""
    notes: str | list[str] = ""


class SimmSensitivity(Strict):
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)
    product_class: str
    risk_type: str
    qualifier: str
    bucket: str
    label1: str = ""
    label2: str = ""
    amount_usd: Annotated[float, Field(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]


#: spellings of the SIMM case add-on keys (normalised: lower case, without '_'; as simm-lib and CRIF tools
#: write them) -> the canonical key; greeksmargin.validation.simm reads the add-ons through this table
SIMM_ADDON_KEYS: dict[str, str] = {
    "productmultipliers": "product_multipliers", "productclassmultipliers": "product_multipliers",
    "addonnotionalfactors": "addon_notional_factors", "notionalfactors": "addon_notional_factors",
    "addonnotionals": "addon_notionals", "notionals": "addon_notionals",
    "addonfixedamounts": "addon_fixed_amounts", "fixedaddons": "addon_fixed_amounts",
    "fixedamounts": "addon_fixed_amounts",
}


def simm_addon_key(key: Any) -> str | None:
    """The canonical add-on key of a SIMM case key (any spelling of :data:`SIMM_ADDON_KEYS`), else None."""
    return SIMM_ADDON_KEYS.get(str(key).lower().replace("_", ""))


class SimmCase(Strict):
    # every key is known (an unknown one is an error naming it); the add-ons (a list of objects or an object
    # {name: value}, under any spelling of SIMM_ADDON_KEYS) are read by greeksmargin.validation.simm.addon_rows,
    # which names a bad entry itself
    model_config = ConfigDict(extra="allow", strict=True, allow_inf_nan=False, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for k in data:
                if k not in cls.model_fields and simm_addon_key(k) is None:
                    raise ValueError(f"unknown key '{k}' in a SIMM case")
        return data

    id: str
    measure: str = ""
    element: str = ""
    group: str = ""
    required_passes: str | int | list[str] = ""
    risk_classes: list[str] = []
    notes: str | list[str] = ""
    source: str = ""
    description: str = ""
    sensitivities: list[str] = []
    expected: dict[Literal["10d", "1d"], Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]]
    simm_version: str | None = None
    calculation_currency: Currency | None = None
    product_multipliers: list[dict[str, Any]] | dict[str, float] | None = None
    addon_notional_factors: list[dict[str, Any]] | dict[str, float] | None = None
    addon_notionals: list[dict[str, Any]] | dict[str, float] | None = None
    addon_fixed_amounts: list[dict[str, Any] | float] | float | None = None


class SimmCaseFile(Strict):
    calculation_currency: Currency = "USD"
    simm_version: str = "2.5"
    sensitivities: dict[str, SimmSensitivity]
    cases: Annotated[list[SimmCase], Field(min_length=1)]
    source: str | dict[str, Any] = ""
    notes: str | list[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _finite_all(cls, data: Any) -> Any:
        _finite_tree(data)
        return data


#: suite -> (schema, "list" of cases or "object")
CASE_SCHEMAS: dict[str, tuple[type[BaseModel], str]] = {
    "deribit-pm": (DeribitPMCase, "list"),
    "span": (SpanCase, "list"),
    "derive-pm2": (Pm2Case, "list"),
    "simm": (SimmCaseFile, "object"),
}


def check_case_file(suite: str, data: Any, file: str) -> None:
    """Validate a parsed validation case file of ``suite`` (a suite without a schema is not checked here).

    Raises
    ------
    CaseFormatError
        Names the file, the case (list index and id) and the key path, the value and the allowed range.
    """
    from greeksmargin.errors import CaseFormatError

    if suite not in CASE_SCHEMAS:
        return
    schema, shape = CASE_SCHEMAS[suite]
    if shape == "list":
        if not isinstance(data, list) or not data:
            raise CaseFormatError(f"expected a non-empty JSON list of cases (got {type(data).__name__})", file=file)
        for i, case in enumerate(data):
            cid = case.get("id") if isinstance(case, dict) else None
            validate(schema, case, file=file, kind="case", prefix=f"[{i}]" + (f" (case {cid})" if cid else ""))
    else:
        if not isinstance(data, dict):
            raise CaseFormatError(f"expected a JSON object (got {type(data).__name__})", file=file)
        validate(schema, data, file=file, kind="case")
