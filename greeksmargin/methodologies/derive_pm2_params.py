"""Derive PM2 parameters: scenarios, vol shocks, margin factors, contingencies and skew shocks, parsed and checked."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from greeksmargin.errors import InputError, ModelError

VOL_DIRECTIONS = ("up", "down", "none", "linear", "abs")
SKEW_DIRECTIONS = ("linear", "abs")



# ------------------------------------------------------------------------------------------ parsing helpers
def _where(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _lower_keys(d: Mapping[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in d.items()}


def _mapping(obj: Any, path: str) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise InputError(f"expected an object, got {type(obj).__name__}", column=path or None)
    return _lower_keys(obj)


def _num(d: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    """A finite float from ``d[key]``; missing -> ``default`` or an :class:`InputError` naming the key."""
    if key not in d or d[key] is None:
        if default is not None:
            return float(default)
        raise InputError(f"missing key '{key}'", column=_where(path, key))
    v = d[key]
    if isinstance(v, bool):
        return float(v)
    try:
        out = float(v)
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {v!r}", column=_where(path, key)) from None
    if not math.isfinite(out):
        raise InputError(f"expected a finite number, got {v!r}", column=_where(path, key))
    return out


def _flag(d: Mapping[str, Any], key: str, path: str, default: bool | None = None) -> bool:
    if key not in d or d[key] is None:
        if default is not None:
            return default
        raise InputError(f"missing key '{key}'", column=_where(path, key))
    v = d[key]
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in ("true", "false", "1", "0"):
        return v.strip().lower() in ("true", "1")
    raise InputError(f"expected true/false, got {v!r}", column=_where(path, key))


def _list(d: Mapping[str, Any], key: str, path: str) -> list[Any]:
    v = d.get(key, [])
    if v is None:
        return []
    if not isinstance(v, list):
        raise InputError(f"expected a list, got {type(v).__name__}", column=_where(path, key))
    return v


# --------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Scenario:
    """One margin scenario.

    Attributes
    ----------
    spot_multiplier : float
        Spot (and variable forward) multiplier ``s`` (1.18 = +18 %).
    vol : str
        ``"up"``, ``"down"``, ``"none"``, or a skew shock ``"linear"`` / ``"abs"``.
    dampening : float
        Factor on the scenario P&L (tail scenarios are dampened).
    """

    spot_multiplier: float
    vol: str
    dampening: float

    @property
    def is_skew(self) -> bool:
        """True for the skew scenarios (``linear`` or ``abs``)."""
        return self.vol in SKEW_DIRECTIONS

    @classmethod
    def from_dict(cls, d: Any, path: str = "scenarios") -> Scenario:
        """Parse ``{"spot_multiplier", "vol", "dampening"}`` (also the contract names SpotShock, ...)."""
        m = _mapping(d, path)
        if "spot_multiplier" not in m and "spotshock" in m:
            m["spot_multiplier"] = m["spotshock"]
        if "vol" not in m and "volshockdirection" in m:
            m["vol"] = m["volshockdirection"]
        if "dampening" not in m and "dampeningfactor" in m:
            m["dampening"] = m["dampeningfactor"]
        vol = str(m.get("vol", "")).strip().lower()
        if vol not in VOL_DIRECTIONS:
            raise InputError(f"vol must be one of {', '.join(VOL_DIRECTIONS)}, got {m.get('vol')!r}",
                             column=_where(path, "vol"))
        s = _num(m, "spot_multiplier", path)
        if s < 0:
            raise InputError(f"spot_multiplier must be >= 0, got {s}", column=_where(path, "spot_multiplier"))
        return cls(s, vol, _num(m, "dampening", path, default=1.0))


@dataclass(frozen=True)
class VolShockParams:
    """Vol shock of the regular and tail scenarios (contract ``VolShockParameters``).

    Attributes
    ----------
    vol_range_up, vol_range_down : float
        ``VOLRANGEUP`` / ``VOLRANGEDOWN``: relative vol shocks at 30 days.
    short_term_power, long_term_power : float
        Powers of ``30 d / max(s, DTE_FLOOR)`` for expiries within / beyond 30 days.
    dte_floor_days : float
        ``DTE_FLOOR`` in days (the contract stores seconds: days x 86400).
    min_vol_eval_shocked : float
        ``MIN_VOL_EVAL_SHOCKED``: floor of the shocked-up vol (decimal).
    """

    vol_range_up: float
    vol_range_down: float
    short_term_power: float
    long_term_power: float
    dte_floor_days: float
    min_vol_eval_shocked: float

    @classmethod
    def from_dict(cls, d: Any, path: str = "vol_shock") -> VolShockParams:
        """Parse the case's ``vol_shock`` group."""
        m = _mapping(d, path)
        return cls(_num(m, "volrangeup", path), _num(m, "volrangedown", path), _num(m, "shorttermpower", path),
                   _num(m, "longtermpower", path), _num(m, "dte_floor", path),
                   _num(m, "min_vol_eval_shocked", path))


@dataclass(frozen=True)
class MarginParams:
    """Loss factors and static discounts (contract ``MarginParameters``).

    Attributes
    ----------
    mm_loss_factor, im_loss_factor : float
        Factors on the worst scenario loss.
    short_rate_multscale, short_rate_addscale : float
        Rate shock of the static discount of negative expiry values: ``r x MULT + ADD``.
    long_rate_multscale, long_rate_addscale : float
        Same for positive expiry values.
    base_static_discount, base_static_discount_neg : float
        Base discounts of positive / negative expiry values (0.95 / 1.04).
    """

    mm_loss_factor: float
    im_loss_factor: float
    short_rate_multscale: float
    long_rate_multscale: float
    short_rate_addscale: float
    long_rate_addscale: float
    base_static_discount: float
    base_static_discount_neg: float

    @classmethod
    def from_dict(cls, d: Any, path: str = "margin") -> MarginParams:
        """Parse the case's ``margin`` group."""
        m = _mapping(d, path)
        return cls(*(_num(m, k, path) for k in (
            "mm_loss_factor", "im_loss_factor", "short_rate_multscale", "long_rate_multscale",
            "short_rate_addscale", "long_rate_addscale", "base_static_discount", "base_static_discount_neg")))


@dataclass(frozen=True)
class BasisContingencyParams:
    """Forward (basis) contingency (contract ``BasisContingencyParameters``).

    Attributes
    ----------
    scenario_spot_up, scenario_spot_down : float
        Forward multipliers ``FWD_CONT_SHOCK_UP`` / ``FWD_CONT_SHOCK_DOWN``.
    add_factor, mult_factor : float
        The loss is scaled by ``ADD + MULT x T`` (T in years).
    """

    scenario_spot_up: float
    scenario_spot_down: float
    add_factor: float
    mult_factor: float

    @classmethod
    def from_dict(cls, d: Any, path: str = "basis_contingency") -> BasisContingencyParams:
        """Parse the case's ``basis_contingency`` group."""
        m = _mapping(d, path)
        return cls(_num(m, "scenario_spot_up", path), _num(m, "scenario_spot_down", path),
                   _num(m, "basis_cont_add_factor", path), _num(m, "basis_cont_mult_factor", path))


@dataclass(frozen=True)
class OtherContingencyParams:
    """Peg loss, oracle confidence and per-notional contingencies (contract ``OtherContingencyParameters``).

    Attributes
    ----------
    peg_loss_threshold, peg_loss_factor : float
        IM loss factor grows by ``max(0, threshold - stable_price) x factor``.
    conf_threshold, conf_margin : float
        Oracle contingency ``(1 - c) x conf_margin x notional`` when a confidence ``c < conf_threshold``.
    mm_perp_percent, im_perp_percent : float
        Perp contingency, fraction of ``|size| x spot`` (IM adds its own on top of MM's).
    mm_option_percent, im_option_percent : float
        Option contingency, fraction of naked short contracts x spot.
    im_perp_percent_normal, im_option_percent_normal : float
        Reported by Derive's reference as an alternative ("normal") IM contingency; not part of the
        on-chain IM and unused here.
    """

    peg_loss_threshold: float
    peg_loss_factor: float
    conf_threshold: float
    conf_margin: float
    mm_perp_percent: float
    im_perp_percent: float
    mm_option_percent: float
    im_option_percent: float
    im_perp_percent_normal: float = 0.0
    im_option_percent_normal: float = 0.0

    @classmethod
    def from_dict(cls, d: Any, path: str = "other_contingency") -> OtherContingencyParams:
        """Parse the case's ``other_contingency`` group (``*_normal`` optional)."""
        m = _mapping(d, path)
        return cls(
            peg_loss_threshold=_num(m, "peg_loss_threshold", path),
            peg_loss_factor=_num(m, "peg_loss_factor", path),
            conf_threshold=_num(m, "conf_threshold", path),
            conf_margin=_num(m, "conf_margin", path),
            mm_perp_percent=_num(m, "mm_perp_percent", path),
            im_perp_percent=_num(m, "im_perp_percent", path),
            mm_option_percent=_num(m, "mm_option_percent", path),
            im_option_percent=_num(m, "im_option_percent", path),
            im_perp_percent_normal=_num(m, "im_perp_percent_normal", path, default=0.0),
            im_option_percent_normal=_num(m, "im_option_percent_normal", path, default=0.0))


@dataclass(frozen=True)
class SkewShockParams:
    """Skew scenarios (contract ``SkewShockParameters``).

    Attributes
    ----------
    linear_scale_cap, abs_scale_cap : float
        Base cap of the vol multiplier move; cap = ``CBASE x sqrt(T) + SCALE_CAP``.
    linear_cbase, abs_cbase : float
        Slope of the cap in ``sqrt(T)``.
    min_k_star : float
        Floor of ``k*``, the log-moneyness where the multiplier reaches its cap.
    min_width_scale, vol_param_static, vol_param_scale : float
        ``k* = max(MIN_K_STAR, sqrt(T) x WIDTH x (STATIC + sqrt(T) x SCALE))``.
    """

    linear_scale_cap: float
    linear_cbase: float
    abs_scale_cap: float
    abs_cbase: float
    min_k_star: float
    min_width_scale: float
    vol_param_static: float
    vol_param_scale: float

    @classmethod
    def from_dict(cls, d: Any, path: str = "skew_shock") -> SkewShockParams:
        """Parse the case's ``skew_shock`` group."""
        m = _mapping(d, path)
        return cls(*(_num(m, k, path) for k in (
            "linear_scale_cap", "linear_cbase", "abs_scale_cap", "abs_cbase", "min_k_star", "min_width_scale",
            "vol_param_static", "vol_param_scale")))


@dataclass(frozen=True)
class PM2Params:
    """A full PM2 parameter set: scenarios and the five parameter groups of ``PMRMLib_2``.

    Attributes
    ----------
    scenarios : tuple of Scenario
    vol_shock : VolShockParams
    margin : MarginParams
    basis_contingency : BasisContingencyParams
    other_contingency : OtherContingencyParams
    skew_shock : SkewShockParams
    settlement_window_seconds : float
        Settlement TWAP window before expiry (30 minutes on-chain).
    regular_max_move : float
        Only to label scenarios in the report: a non-skew scenario whose ``|s - 1|`` exceeds this is a *tail*
        scenario (the margin itself does not depend on the labels).
    static_discount_at_expiry : bool
        True (the contract): an expired expiry still takes its static discounts (pos = BASE, neg =
        min(1, BASE_NEG)); False: both are 1 at ``T = 0`` as in Derive's Python reference output.
    """

    scenarios: tuple[Scenario, ...]
    vol_shock: VolShockParams
    margin: MarginParams
    basis_contingency: BasisContingencyParams
    other_contingency: OtherContingencyParams
    skew_shock: SkewShockParams
    settlement_window_seconds: float = 1800.0
    regular_max_move: float = 0.18
    static_discount_at_expiry: bool = True

    @classmethod
    def from_dict(cls, d: Any, path: str = "parameters") -> PM2Params:
        """Parse the ``parameters`` object of a case (or the tables of ``models/derive-pm2.toml``).

        Parameters
        ----------
        d : Mapping
            Keys ``scenarios`` (list), ``vol_shock``, ``margin``, ``basis_contingency``,
            ``other_contingency``, ``skew_shock``; optional ``settlement`` {``window_seconds``,
            ``static_discount_at_expiry``} and ``labels`` {``regular_max_move``}.

        Raises
        ------
        InputError
            A missing group or key, a wrong type; the message names the dotted key.
        """
        m = _mapping(d, path)
        raw_scen = m.get("scenarios")
        if not isinstance(raw_scen, list) or not raw_scen:
            raise InputError("expected a non-empty list of scenarios", column=_where(path, "scenarios"))
        scen = tuple(Scenario.from_dict(s, f"{_where(path, 'scenarios')}[{i}]") for i, s in enumerate(raw_scen))

        def group(key: str) -> tuple[Any, str]:
            """The raw ``key`` group and its dotted path; a missing group is an :class:`InputError`."""
            if key not in m:
                raise InputError(f"missing key '{key}'", column=_where(path, key))
            return m[key], _where(path, key)

        vol_shock = VolShockParams.from_dict(*group("vol_shock"))
        margin = MarginParams.from_dict(*group("margin"))
        basis_contingency = BasisContingencyParams.from_dict(*group("basis_contingency"))
        other_contingency = OtherContingencyParams.from_dict(*group("other_contingency"))
        skew_shock = SkewShockParams.from_dict(*group("skew_shock"))
        settle = _mapping(m.get("settlement", {}), _where(path, "settlement"))
        labels = _mapping(m.get("labels", {}), _where(path, "labels"))
        window = _num(settle, "window_seconds", _where(path, "settlement"), default=1800.0)
        if window <= 0:
            raise InputError("must be > 0", column=_where(path, "settlement.window_seconds"))
        return cls(scen, vol_shock=vol_shock, margin=margin, basis_contingency=basis_contingency,
                   other_contingency=other_contingency, skew_shock=skew_shock, settlement_window_seconds=window,
                   regular_max_move=_num(labels, "regular_max_move", _where(path, "labels"), default=0.18),
                   static_discount_at_expiry=_flag(settle, "static_discount_at_expiry",
                                                   _where(path, "settlement"), default=True))


def params_from_model(doc: Mapping[str, Any], file: str | None = None) -> PM2Params:
    """PM2Params from a derive-pm2 model document: every table but ``[meta]`` (see :meth:`PM2Params.from_dict`).

    Raises
    ------
    ModelError
        A malformed table; the message names the key (and ``file`` when given).
    """
    body = {k: v for k, v in doc.items() if k != "meta"}
    try:
        return PM2Params.from_dict(body, path="")
    except InputError as exc:
        raise ModelError(exc.reason, file=file, key=exc.column) from None


