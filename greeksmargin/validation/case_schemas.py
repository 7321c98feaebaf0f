"""Schemas of the published validation case files: every key typed; bounds from the publishers' own rules."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from greeksmargin.book.schemas import (
    MAX_MAGNITUDE,
    Currency,
    Finite,
    Fraction,
    NonNeg,
    Positive,
    Strict,
    Vol,
    validate,
)
from greeksmargin.engine.model_schemas import (
    DeribitPMCurrency,
    PM2Basis,
    PM2CaseScenario,
    PM2Labels,
    PM2Margin,
    PM2Other,
    PM2Settlement,
    PM2Skew,
    PM2VolShock,
)

__all__ = ["CASE_SCHEMAS", "SIMM_ADDON_KEYS", "check_case_file", "simm_addon_key"]


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
