"""Schemas of the model files (``models/*.toml``): every key typed and ranged, bounds cited; read by the loader."""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from greeksmargin.book.schemas import (
    MAX_MAGNITUDE,
    Corr,
    CorrMatrix,
    Currency,
    DateLike,
    Days,
    Fraction,
    NonNeg,
    Positive,
    Power,
    Strict,
    VolShock,
    check_psd,
    nearest,
    validate,
)
from greeksmargin.errors import ModelError

__all__ = ["MODEL_SCHEMAS", "ModelFile", "check_model_file"]

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


