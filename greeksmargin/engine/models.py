"""Model (rule set) files: strict loading of ``models/*.toml`` and the list of shipped models.

A model file has a ``[meta]`` table (name, methodology, version, description, source, effective_date,
notes) and the parameters of its methodology. :func:`load_model` dispatches on the methodology through a
registry (methodology name -> parser). The *component* methodologies (``greeks-stress``,
``deribit-standard``, ``tims-pm``) are parsed here into a :class:`RuleSet` that
:func:`greeksmargin.engine.margin.compute_margin` runs on a positions book; the exchange methodologies with their
own modules (``simm``, ``span``, ``deribit_pm``, ``derive_pm2``) are listed and loaded (their own parser
when it exists) but are not runnable through ``compute_margin``.

Shipped models live in the repository's ``models/`` folder (``GREEKSMARGIN_MODELS`` overrides it).

Schema of a component model (every key is checked: unknown key, wrong type, missing parameter, unknown
component -> :class:`~greeksmargin.errors.ModelError` naming the key and the file)::

    [meta]        name, methodology, version, description, source, effective_date (str); notes (str or list)
    [groups]      default (str, optional); members = {UNDERLYING = "group", ...}     product groups (TIMS)
    [grid]        range_down (float), range_up, points_down (int), points_up, include_zero (bool),
                  vol_states (list of "up"|"none"|"down"), tail_moves (list of float), tail_vol_states,
                  tail_weight (float), tail_weight_rule ("constant"|"range_over_move")
    [grid.vol_shock]  kind ("relative"|"absolute"), up, down, short_power, long_power, pivot_days,
                      floor_days, min_vol_up, min_vol
    [grid.overrides.<UNDERLYING or group>]  range_down, range_up, tail_weight, vol_up, vol_down
    [components.<name>]  one table per component used (see COMPONENT_SPECS)
    [combine]     im = "<expression>"; mm = "<expression>" or mm_factor = <float>;
                  cap_at_isolated (bool, default false): a unit never needs more than its positions alone
    [aggregate]   method ("sum"|"correlation"|"offsets"); default_correlation (float);
                  correlations = {"BTC/ETH" = 0.8, ...}; offsets = {group = pct, ...}
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.errors import ArgumentTypeError, InputError, ModelError, expect_path
from greeksmargin.methodologies import BOOK_ADAPTED
from greeksmargin.methodologies.house.combine import Expression, parse_expression
from greeksmargin.risk.scenarios import VOL_STATES, ScenarioGrid, VolShockRule

__all__ = [
    "COMPONENT_SPECS",
    "Domain",
    "Model",
    "RuleSet",
    "list_models",
    "load_model",
    "models_dir",
    "register_methodology",
]

# --------------------------------------------------------------------------------------------- schema
# a spec maps key -> (type, required, default); type is float, int, bool, str, "list[float]", "list[str]", "table"
Spec = Mapping[str, tuple[Any, bool, Any]]

META_SPEC: Spec = {
    "name": (str, True, None),
    "methodology": (str, True, None),
    "version": (str, True, None),
    "description": (str, True, None),
    "source": (str, True, None),
    "effective_date": (str, True, None),
    "notes": ("str_or_list", False, ""),
    "calibration": ("table", False, {}),
    "status": (str, False, None),
}

GRID_SPEC: Spec = {
    "range_down": (float, True, None),
    "range_up": (float, False, None),
    "points_down": (int, False, 4),
    "points_up": (int, False, None),
    "include_zero": (bool, False, True),
    "vol_states": ("list[str]", False, ["up", "none", "down"]),
    "tail_moves": ("list[float]", False, []),
    "tail_vol_states": ("list[str]", False, ["up"]),
    "tail_weight": (float, False, 1.0),
    "tail_weight_rule": (str, False, "constant"),
    "vol_shock": ("table", False, {}),
    "overrides": ("table", False, {}),
}

VOL_SPEC: Spec = {
    "kind": (str, False, "relative"),
    "up": (float, False, 0.0),
    "down": (float, False, 0.0),
    "short_power": (float, False, 0.0),
    "long_power": (float, False, 0.0),
    "pivot_days": (float, False, 30.0),
    "floor_days": (float, False, 1.0),
    "min_vol_up": (float, False, 0.0),
    "min_vol": (float, False, 0.0),
}

OVERRIDE_SPEC: Spec = {
    "range_down": (float, False, None),
    "range_up": (float, False, None),
    "tail_weight": (float, False, None),
    "vol_up": (float, False, None),
    "vol_down": (float, False, None),
}

KINDS = ("option", "future", "perpetual", "spot")
SETTLEMENTS = ("linear", "inverse")
#: ``[meta] status``: "published" (parameters from a published exchange / standard-body source) or "illustrative"
MODEL_STATUSES = ("published", "illustrative")


#: component name -> (parameter spec, names of the figures it provides to the combination expressions)
COMPONENT_SPECS: dict[str, tuple[Spec, tuple[str, ...]]] = {
    "scan": ({"gain_offset": (float, True, None)}, ("scan",)),
    "delta": (
        {
            "price_shock": (float, True, None),
            "price_shock_by_underlying": ("table[float]", False, {}),
            # direction-aware delta charge (long net delta x fall, short x rise); absent: price_shock
            "price_shock_down": (float, False, None),
            "price_shock_up": (float, False, None),
            "price_shock_down_by_underlying": ("table[float]", False, {}),
            "price_shock_up_by_underlying": ("table[float]", False, {}),
            # "taylor": net delta x shock; "revaluation": the loss of the losing direction revalued
            "method": (str, False, "taylor"),
        },
        ("delta",),
    ),
    "gamma": (
        {
            "price_shock": (float, True, None),
            "price_shock_by_underlying": ("table[float]", False, {}),
            # "taylor": 0.5 |net short gamma| shock^2; "revaluation": the short-convexity loss revalued
            "method": (str, False, "taylor"),
        },
        ("gamma",),
    ),
    "vega": (
        {
            "shock": (float, True, None),
            # per underlying (up = charged on net short vega); down shock for net long vega (absent: up)
            "shock_by_underlying": ("table[float]", False, {}),
            "shock_down": (float, False, None),
            "shock_down_by_underlying": ("table[float]", False, {}),
            "kind": (str, False, "absolute"),
            "short_power": (float, False, 0.0),
            "long_power": (float, False, 0.0),
            "pivot_days": (float, False, 30.0),
            "floor_days": (float, False, 1.0),
            "bucket_days": ("list[float]", True, None),
            "cross_bucket_netting": (float, True, None),
            # "taylor": net vega x vol shock; "revaluation": the P&L of each bucket's vols shocked up / down
            "method": (str, False, "taylor"),
        },
        ("vega",),
    ),
    "short_option_minimum": ({"rate": (float, True, None)}, ("short_option_minimum",)),
    "contract_floor": (
        {
            "per_contract": (float, True, None),
            "currency": (str, False, "USD"),
            "kinds": ("list[str]", False, ["option"]),
        },
        ("contract_floor",),
    ),
    "roll": (
        {
            "min_annual_move": (float, True, None),
            "annual_move": (float, False, 0.0),
            "kinds": ("list[str]", False, ["future", "perpetual"]),
            # "gross": every expiry's net exposure; "calendar": only the part offsetting across expiries
            "scope": (str, False, "gross"),
        },
        ("roll",),
    ),
    "long_premium_cap": ({}, ("long_premium_cap",)),
    "option_standard": (
        {
            "im_base": (float, True, None),
            "im_min": (float, True, None),
            "mm_base": (float, True, None),
            "long_premium": (bool, False, True),
        },
        ("option_standard_im", "option_standard_mm"),
    ),
    "delta_one": (
        {
            "im_rate": (float, True, None),
            "mm_rate": (float, True, None),
            "kinds": ("list[str]", False, ["future", "perpetual"]),
        },
        ("delta_one_im", "delta_one_mm"),
    ),
}

COMBINE_SPEC: Spec = {
    "im": (str, True, None),
    "mm": (str, False, None),
    "mm_factor": (float, False, None),
    "cap_at_isolated": (bool, False, False),
}
AGGREGATE_SPEC: Spec = {
    "method": (str, True, None),
    "default_correlation": (float, False, None),
    "correlations": ("table[float]", False, {}),
    "offsets": ("table[float]", False, {}),
}
GROUPS_SPEC: Spec = {"default": (str, False, "default"), "members": ("table[str]", False, {})}
TOP_SPEC: Spec = {
    "meta": ("table", True, None),
    "groups": ("table", False, {}),
    "grid": ("table", False, None),
    "components": ("table", True, None),
    "combine": ("table", True, None),
    "aggregate": ("table", True, None),
    "domain": ("table", False, None),
}


def _type_ok(kind: Any, v: Any) -> bool:
    if kind is float:
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind is int:
        return isinstance(v, int) and not isinstance(v, bool)
    if kind is bool:
        return isinstance(v, bool)
    if kind is str:
        return isinstance(v, str)
    if kind == "table":
        return isinstance(v, dict)
    if kind == "str_or_list":
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
    if kind == "list[str]":
        return isinstance(v, list) and all(isinstance(x, str) for x in v)
    if kind == "list[float]":
        return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    if kind == "table[float]":
        return isinstance(v, dict) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v.values())
    if kind == "table[str]":
        return isinstance(v, dict) and all(isinstance(x, str) for x in v.values())
    raise AssertionError(kind)  # pragma: no cover


def _type_name(kind: Any) -> str:
    return kind.__name__ if isinstance(kind, type) else str(kind)


def _check(raw: Any, spec: Spec, where: str, file: str) -> dict[str, Any]:
    """Check a table against a spec: unknown keys, missing keys, types; returns it with defaults filled."""
    if not isinstance(raw, dict):
        raise ModelError("must be a table", file=file, key=where or None)
    out: dict[str, Any] = {}
    for key in raw:
        if key not in spec:
            known = ", ".join(sorted(spec)) or "none"
            raise ModelError(f"unknown key (known keys here: {known})", file=file, key=_join(where, key))
    for key, (kind, required, default) in spec.items():
        if key not in raw:
            if required:
                raise ModelError(f"missing parameter ({_type_name(kind)})", file=file, key=_join(where, key))
            out[key] = default
            continue
        v = raw[key]
        if not _type_ok(kind, v):
            raise ModelError(
                f"wrong type: expected {_type_name(kind)}, got {type(v).__name__} {v!r}",
                file=file,
                key=_join(where, key),
            )
        out[key] = float(v) if kind is float else v
    return out


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# ------------------------------------------------------------------------------------------ model types
@dataclass(frozen=True)
class RuleSet:
    """Parameters of a component model (the house model, Deribit standard, TIMS), validated.

    Parameters
    ----------
    grid : ScenarioGrid or None
        Default scenario grid (None when the model has no scan).
    grid_overrides : dict of str -> ScenarioGrid
        Grids of specific underlyings or product groups (same number of scenarios).
    components : dict of str -> dict
        Parameters of each component used, by component name (keys of :data:`COMPONENT_SPECS`).
    im : Expression
        Unit-level IM expression.
    mm : Expression or None
        Unit-level MM expression (when ``mm_factor`` is None).
    mm_factor : float or None
        ``MM = mm_factor x IM``.
    cap_at_isolated : bool
        Cap each unit's requirement at the sum of its positions' isolated requirements.
    aggregate : dict
        ``method``, ``default_correlation``, ``correlations`` {(a, b): rho}, ``offsets`` {group: pct}.
    groups : dict
        ``default`` group name and ``members`` {underlying: group}.
    """

    grid: ScenarioGrid | None
    grid_overrides: dict[str, ScenarioGrid]
    components: dict[str, dict[str, Any]]
    im: Expression
    mm: Expression | None
    mm_factor: float | None
    cap_at_isolated: bool
    aggregate: dict[str, Any]
    groups: dict[str, Any]

    def group_of(self, underlying: str) -> str:
        """Product group of an underlying."""
        return str(self.groups["members"].get(underlying, self.groups["default"]))

    def grid_for(self, underlying: str) -> ScenarioGrid | None:
        """The scenario grid of an underlying (its own override, its group's, or the default)."""
        if underlying in self.grid_overrides:
            return self.grid_overrides[underlying]
        return self.grid_overrides.get(self.group_of(underlying), self.grid)

    @property
    def figures(self) -> tuple[str, ...]:
        """Names of the figures the components provide (the names expressions may use)."""
        return tuple(n for c in self.components for n in COMPONENT_SPECS[c][1])

@dataclass(frozen=True)
class Domain:
    """What a model can margin: underlyings, position kinds and settlement types (``[domain]`` of a model file).

    A model without ``[domain]`` accepts everything (``underlyings = ["*"]``, every kind and settlement).
    An account holding any position outside the domain is *not computed* by the engine: its IM / MM are
    NaN (null in JSON) with a reason naming the positions and the rule, never 0
    (:meth:`not_computed`).

    Parameters
    ----------
    underlyings : tuple of str
        Underlyings the model covers; ``("*",)`` for any.
    kinds : tuple of str
        Position kinds (subset of ``option, future, perpetual, spot``).
    settlement : tuple of str
        ``linear`` (USD/USDC-settled) and / or ``inverse`` (coin-settled).
    """

    underlyings: tuple[str, ...] = ("*",)
    kinds: tuple[str, ...] = KINDS
    settlement: tuple[str, ...] = SETTLEMENTS

    @property
    def is_any(self) -> bool:
        """True when the domain accepts every position."""
        return "*" in self.underlyings and set(self.kinds) >= set(KINDS) and set(self.settlement) >= set(SETTLEMENTS)

    def describe(self) -> str:
        """The rule in words, e.g. ``underlyings BTC, ETH; kinds option, future; settlement inverse``."""
        und = "any" if "*" in self.underlyings else ", ".join(self.underlyings)
        return f"underlyings {und}; kinds {', '.join(self.kinds)}; settlement {', '.join(self.settlement)}"

    def outside(self, positions: pd.DataFrame) -> pd.Series:
        """Why each position is outside the domain (``""`` inside); Series indexed like ``positions``.

        Parameters
        ----------
        positions : DataFrame
            Validated positions (columns ``underlying``, ``kind``, ``settlement``).
        """
        n = len(positions)
        why = pd.Series([""] * n, index=positions.index, dtype=object)
        if n == 0 or self.is_any:
            return why
        parts: list[pd.Series] = []
        for col, allowed in self._restricted():
            vals = positions[col].astype(str)
            bad = ~vals.isin(list(allowed))
            parts.append(pd.Series(np.where(bad, col + " " + vals + " not in [" + ", ".join(allowed) + "]", ""),
                                   index=positions.index))
        for p in parts:
            why = why.where(p == "", np.where(why == "", p, why + ", " + p))
        return why

    def _restricted(self) -> list[tuple[str, tuple[str, ...]]]:
        """The (column, allowed values) pairs the domain restricts (underlying not when it is ``*``)."""
        checks = [("underlying", self.underlyings), ("kind", self.kinds), ("settlement", self.settlement)]
        return [(c, tuple(a)) for c, a in checks if not (c == "underlying" and "*" in a)]

    def _any_outside(self, positions: pd.DataFrame) -> bool:
        """Whether some position is outside the domain, from the distinct values of each column only."""
        for col, allowed in self._restricted():
            seen = {str(v) for v in pd.unique(positions[col])}
            if not seen <= set(allowed):
                return True
        return False

    def not_computed(self, positions: pd.DataFrame, model_name: str = "") -> dict[str, str]:
        """Accounts holding a position outside the domain, with the reason (naming positions and rule).

        Parameters
        ----------
        positions : DataFrame
            Validated positions.
        model_name : str
            Named in the reason.

        Returns
        -------
        dict of str -> str
            ``account -> reason``; empty when every position is inside.
        """
        if len(positions) == 0 or self.is_any or not self._any_outside(positions):
            return {}
        why = self.outside(positions)
        bad = why != ""
        if not bad.any():
            return {}
        out: dict[str, str] = {}
        sub = positions[bad.to_numpy()]
        for acc, grp in sub.groupby(sub["account"].astype(str), sort=True):
            items = [f"{grp.at[i, 'instrument']} ({why.at[i]})" for i in grp.index[:3]]
            more = f" and {len(grp) - 3} more" if len(grp) > 3 else ""
            name = f"model '{model_name}'" if model_name else "the model"
            out[str(acc)] = (f"not computed: {len(grp)} position(s) outside the domain of {name} "
                             f"({self.describe()}): {'; '.join(items)}{more}")
        return out


def parse_domain(raw: Any, file: str) -> Domain:
    """The ``[domain]`` table of a model file (absent: any position); values outside the lists are errors.

    Raises
    ------
    ModelError
        Unknown key, wrong type or a value outside ``KINDS`` / ``SETTLEMENTS``, naming the key and the file.
    """
    if raw is None:
        return Domain()
    spec: Spec = {"underlyings": ("list[str]", False, ["*"]), "kinds": ("list[str]", False, list(KINDS)),
                  "settlement": ("list[str]", False, list(SETTLEMENTS))}
    d = _check(raw, spec, "domain", file)
    for key, allowed in (("kinds", KINDS), ("settlement", SETTLEMENTS)):
        bad = [v for v in d[key] if v not in allowed]
        if bad or not d[key]:
            what = f"unknown value {bad[0]!r}" if bad else "empty list"
            raise ModelError(f"{what} (allowed: {', '.join(allowed)})", file=file, key=f"domain.{key}")
    if not d["underlyings"] or any(not u.strip() for u in d["underlyings"]):
        raise ModelError("underlyings must be non-empty names, or [\"*\"] for any", file=file,
                         key="domain.underlyings")
    return Domain(tuple(d["underlyings"]), tuple(d["kinds"]), tuple(d["settlement"]))


def parse_status(meta: Any, file: str) -> str:
    """``[meta] status`` (absent: ``"illustrative"``); anything but published / illustrative is an error."""
    st = meta.get("status") if isinstance(meta, Mapping) else None
    if st is None:
        return "illustrative"
    if st not in MODEL_STATUSES:
        raise ModelError(f"must be one of {', '.join(MODEL_STATUSES)} (got {st!r})", file=file, key="meta.status")
    return str(st)


@dataclass(frozen=True)
class Model:
    """A loaded model: its ``[meta]``, its methodology and its parameters.

    Parameters
    ----------
    name, methodology : str
        From ``[meta]``.
    meta : dict
        The whole ``[meta]`` table.
    params : RuleSet or object
        A :class:`RuleSet` for component methodologies; the methodology's own parameter object (or the
        raw dict) otherwise.
    file : str or None
        Where it was read from.
    runnable : bool
        True when :func:`greeksmargin.engine.margin.compute_margin` can run it on a positions book.
    domain : Domain
        What it can margin (``[domain]``; default: everything).
    status : {"published", "illustrative"}
        ``[meta] status`` (default ``"illustrative"``).
    """

    name: str
    methodology: str
    meta: dict[str, Any]
    params: Any
    file: str | None = None
    runnable: bool = False
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    domain: Domain = field(default_factory=Domain)
    status: str = "illustrative"

    @property
    def description(self) -> str:
        """One-line description."""
        return str(self.meta.get("description", ""))


@dataclass(frozen=True)
class Methodology:
    """A registered methodology: how to parse its files and whether ``compute_margin`` runs it."""

    name: str
    parser: Callable[[dict[str, Any], str], Any]
    runnable: bool
    description: str = ""


_REGISTRY: dict[str, Methodology] = {}


def register_methodology(
    name: str, parser: Callable[[dict[str, Any], str], Any], *, runnable: bool = False, description: str = ""
) -> None:
    """Register a methodology: ``parser(raw_dict, file) -> params`` raises ModelError on a bad file."""
    _REGISTRY[name] = Methodology(name, parser, runnable, description)


# ----------------------------------------------------------------------------------- component parser
def _build_grid(g: dict[str, Any], file: str, where: str) -> ScenarioGrid:
    vs = _check(g["vol_shock"], VOL_SPEC, f"{where}.vol_shock", file)
    if vs["kind"] not in ("relative", "absolute"):
        raise ModelError("must be 'relative' or 'absolute'", file=file, key=f"{where}.vol_shock.kind")
    for key in ("vol_states", "tail_vol_states"):
        bad = [s for s in g[key] if s not in VOL_STATES]
        if bad:
            raise ModelError(f"unknown vol state {bad[0]!r} (use up, none, down)", file=file, key=f"{where}.{key}")
    if g["tail_weight_rule"] not in ("constant", "range_over_move"):
        raise ModelError("must be 'constant' or 'range_over_move'", file=file, key=f"{where}.tail_weight_rule")
    if g["range_down"] <= 0 or g["range_down"] >= 1 or (g["range_up"] is not None and g["range_up"] <= 0):
        raise ModelError("ranges must be relative moves in (0, 1) for falls, > 0 for rises", file=file,
                         key=f"{where}.range_down")
    if any(m <= -1 for m in g["tail_moves"]):
        raise ModelError("tail moves must be > -1", file=file, key=f"{where}.tail_moves")
    return ScenarioGrid.build(
        range_down=g["range_down"],
        range_up=g["range_up"],
        points_down=g["points_down"],
        points_up=g["points_up"],
        include_zero=g["include_zero"],
        vol_states=g["vol_states"],
        tail_moves=g["tail_moves"],
        tail_vol_states=g["tail_vol_states"],
        tail_weight=g["tail_weight"],
        tail_weight_rule=g["tail_weight_rule"],
        vol_rule=VolShockRule(**vs),
    )


def parse_rule_set(raw: dict[str, Any], file: str) -> RuleSet:
    """Validate a component model (see the module docstring) into a :class:`RuleSet`.

    Raises
    ------
    ModelError
        Unknown key, wrong type, missing parameter, unknown component or a bad expression; the message
        names the key and the file.
    """
    top = _check(raw, TOP_SPEC, "", file)
    groups = _check(top["groups"], GROUPS_SPEC, "groups", file)
    comps_raw = top["components"]
    components: dict[str, dict[str, Any]] = {}
    for name, table in comps_raw.items():
        if name not in COMPONENT_SPECS:
            raise ModelError(
                f"unknown component '{name}' (known components: {', '.join(sorted(COMPONENT_SPECS))})",
                file=file,
                key=f"components.{name}",
            )
        params = _check(table, COMPONENT_SPECS[name][0], f"components.{name}", file)
        for key in ("kinds",):
            if key in params:
                bad = [k for k in params[key] if k not in KINDS]
                if bad:
                    raise ModelError(f"unknown kind {bad[0]!r} (use {', '.join(KINDS)})", file=file,
                                     key=f"components.{name}.{key}")
        if name in ("delta", "gamma", "vega") and params["method"] not in ("taylor", "revaluation"):
            raise ModelError("must be 'taylor' or 'revaluation'", file=file, key=f"components.{name}.method")
        if name == "vega" and params["kind"] not in ("relative", "absolute"):
            raise ModelError("must be 'relative' or 'absolute'", file=file, key="components.vega.kind")
        if name == "roll" and params["scope"] not in ("gross", "calendar"):
            raise ModelError("must be 'gross' or 'calendar'", file=file, key="components.roll.scope")
        if name == "vega" and not 0.0 <= params["cross_bucket_netting"] <= 1.0:
            raise ModelError("must be in [0, 1]", file=file, key="components.vega.cross_bucket_netting")
        if name == "vega" and sorted(params["bucket_days"]) != params["bucket_days"]:
            raise ModelError("must be increasing", file=file, key="components.vega.bucket_days")
        components[name] = params
    grid = None
    overrides: dict[str, ScenarioGrid] = {}
    if top["grid"] is not None:
        g = _check(top["grid"], GRID_SPEC, "grid", file)
        grid = _build_grid(g, file, "grid")
        for target, ov in g["overrides"].items():
            o = _check(ov, OVERRIDE_SPEC, f"grid.overrides.{target}", file)
            g2 = dict(g)
            vs2 = dict(g["vol_shock"])
            for k in ("range_down", "range_up", "tail_weight"):
                if o[k] is not None:
                    g2[k] = o[k]
            if o["vol_up"] is not None:
                vs2["up"] = o["vol_up"]
            if o["vol_down"] is not None:
                vs2["down"] = o["vol_down"]
            g2["vol_shock"] = vs2
            overrides[target] = _build_grid(g2, file, f"grid.overrides.{target}")
    if "scan" in components and grid is None:
        raise ModelError("the scan component needs a [grid] table", file=file, key="grid")
    figures = [n for c in components for n in COMPONENT_SPECS[c][1]]
    comb = _check(top["combine"], COMBINE_SPEC, "combine", file)
    try:
        im = parse_expression(comb["im"], figures)
        mm = parse_expression(comb["mm"], figures) if comb["mm"] is not None else None
    except ValueError as exc:
        key = "combine.im" if comb["im"] in str(exc) else "combine.mm"
        raise ModelError(str(exc), file=file, key=key) from None
    if (mm is None) == (comb["mm_factor"] is None):
        raise ModelError("give exactly one of 'mm' (an expression) and 'mm_factor'", file=file, key="combine")
    agg = _check(top["aggregate"], AGGREGATE_SPEC, "aggregate", file)
    if agg["method"] not in ("sum", "correlation", "offsets"):
        raise ModelError("must be 'sum', 'correlation' or 'offsets'", file=file, key="aggregate.method")
    if agg["method"] == "correlation" and agg["default_correlation"] is None:
        raise ModelError("missing parameter (float) for method 'correlation'", file=file,
                         key="aggregate.default_correlation")
    pairs: dict[tuple[str, str], float] = {}
    for k, v in agg["correlations"].items():
        parts = [p.strip() for p in k.split("/")]
        if len(parts) != 2 or not -1.0 <= v <= 1.0:
            raise ModelError("correlation keys are 'A/B' and values in [-1, 1]", file=file,
                             key=f"aggregate.correlations.{k}")
        pairs[(parts[0], parts[1])] = float(v)
    agg["correlations"] = pairs
    if agg["method"] == "offsets" and "scan" not in components:
        raise ModelError("method 'offsets' needs the scan component", file=file, key="aggregate.method")
    return RuleSet(
        grid=grid,
        grid_overrides=overrides,
        components=components,
        im=im,
        mm=mm,
        mm_factor=comb["mm_factor"],
        cap_at_isolated=comb["cap_at_isolated"],
        aggregate=agg,
        groups=groups,
    )


for _name, _desc in (
    ("greeks-stress", "house Greeks-plus-stress model (README, Models)"),
    ("deribit-standard", "Deribit standard (isolated) margin (Deribit's standard-margin documentation)"),
    ("tims-pm", "OCC TIMS / FINRA 4210(g) customer portfolio margin (FINRA Rule 4210(g) / OCC TIMS)"),
):
    register_methodology(_name, parse_rule_set, runnable=True, description=_desc)

#: methodologies with their own modules: module and the loader to call with the file path (None: raw dict);
#: the loaders are the file readers of :mod:`greeksmargin.engine.params_files` (methodologies read no file)
_EXTERNAL: dict[str, tuple[str, str | None]] = {
    "simm": ("greeksmargin.engine.params_files", "load_simm_params"),
    "span": ("greeksmargin.methodologies.span", None),
    "deribit_pm": ("greeksmargin.methodologies.deribit_pm", None),
    "deribit-pm": ("greeksmargin.methodologies.deribit_pm", None),
    "derive_pm2": ("greeksmargin.engine.params_files", "load_derive_pm2_params"),
    "derive-pm2": ("greeksmargin.engine.params_files", "load_derive_pm2_params"),
    "derive_srm": ("greeksmargin.engine.params_files", "load_derive_srm_params"),
    "derive-srm": ("greeksmargin.engine.params_files", "load_derive_srm_params"),
}


# ------------------------------------------------------------------------------------------- loading
def models_dir() -> Path:
    """Folder of the shipped models: ``$GREEKSMARGIN_MODELS``, ``<repo>/models`` or the installed copy.

    See :func:`greeksmargin.io.shipped_folder`; works from any working folder.
    """
    return io.shipped_folder("models")


def _methodology_of(raw: dict[str, Any]) -> str:
    meta = raw.get("meta", {}) if isinstance(raw.get("meta"), dict) else {}
    return str(meta.get("methodology") or "")


def _resolve(name_or_path: str | Path) -> Path:
    """A model argument to its file: a path; else ``./NAME.toml``, ``./models/NAME.toml``; else a shipped name."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or os.sep in str(name_or_path):
        return p
    local = io.find_model_file(str(name_or_path))
    if local is not None:
        return local
    cand = models_dir() / f"{name_or_path}.toml"
    if not cand.exists():
        names = list(list_models()["name"])
        from greeksmargin.book.schemas import nearest

        sug = nearest(str(name_or_path), names)
        hint = f"did you mean '{sug}'? " if sug else ""
        raise ModelError(f"unknown model '{name_or_path}' ({hint}shipped models: {', '.join(names) or 'none'})",
                         file=str(cand))
    return cand


def load_model(name_or_path: str | Path | Model) -> Model:
    """Load and validate a model.

    Parameters
    ----------
    name_or_path : str, Path or Model
        A shipped model's name (``"greeks-default"``), a path to a TOML file, or a loaded model.

    Returns
    -------
    Model

    Raises
    ------
    ModelError
        Unknown model, malformed file: the message names the key and the file.
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    if not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise ArgumentTypeError("name_or_path", "a model name, a model file path (str or Path) or a Model",
                                name_or_path)
    path = _resolve(name_or_path)
    return _load_path(str(path.resolve()) if path.exists() else str(path), _mtime(path))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@cache
def _load_path(file: str, _mtime: float) -> Model:
    try:
        raw = io.read_toml(file)
    except InputError as exc:
        raise ModelError(exc.reason, file=file) from None
    from greeksmargin.engine.model_schemas import check_model_file

    check_model_file(raw, file)  # every key typed and ranged (greeksmargin.engine.model_schemas.MODEL_SCHEMAS)
    meth = _methodology_of(raw)
    if meth in _REGISTRY:
        m = _REGISTRY[meth]
        meta = _check(raw.get("meta"), META_SPEC, "meta", file) if "meta" in raw else None
        if meta is None:
            raise ModelError("missing table [meta]", file=file, key="meta")
        params = m.parser(raw, file)
        return Model(meta["name"], meth, meta, params, file=file, runnable=m.runnable, raw=raw,
                     domain=parse_domain(raw.get("domain"), file), status=parse_status(meta, file))
    if not meth:
        raise ModelError("missing methodology (key 'methodology' in [meta])", file=file, key="meta.methodology")
    meta = dict(raw.get("meta", {}))
    name = str(meta.get("name") or Path(file).stem)
    ext_params: Any = raw
    module, loader = _EXTERNAL.get(meth, ("", None))
    if loader is not None:
        import importlib

        ext_params = getattr(importlib.import_module(module), loader)(file)
    return Model(name, meth, meta, ext_params, file=file, runnable=False, raw=raw,
                 domain=parse_domain(raw.get("domain"), file), status=parse_status(meta, file))


def list_models(folder: str | Path | None = None) -> pd.DataFrame:
    """The model files of ``folder`` (default :func:`models_dir`).

    Returns
    -------
    DataFrame
        Columns ``name``, ``methodology``, ``description``, ``runnable`` (on a positions book by
        ``compute_margin``: natively, or through a book adapter of :mod:`greeksmargin.engine.adapters`), ``file``,
        ``status`` (``[meta] status``: published / illustrative; absent: illustrative).
    """
    rows = []
    if folder is not None and not Path(expect_path(folder, "folder")).is_dir():
        raise ModelError("not a folder of model files", file=str(folder))
    for p in io.list_files(folder or models_dir(), "*.toml"):
        try:
            raw = io.read_toml(p)
        except InputError:
            rows.append({"name": p.stem, "methodology": "?", "description": "(unreadable TOML)",
                         "runnable": False, "file": str(p), "status": "?"})
            continue
        meta = raw.get("meta", {}) if isinstance(raw.get("meta"), dict) else {}
        meth = _methodology_of(raw)
        desc = str(meta.get("description") or "")
        if not desc:
            src = str(meta.get("source") or "")
            desc = src.split(";")[0][:100]
        reg = _REGISTRY.get(meth)
        rows.append(
            {
                "name": str(meta.get("name") or p.stem),
                "methodology": meth or "?",
                "description": desc,
                "runnable": bool(reg and reg.runnable) or meth in _adapter_methodologies(),
                "file": str(p),
                "status": str(meta.get("status") or "illustrative"),
            }
        )
    return pd.DataFrame(rows, columns=["name", "methodology", "description", "runnable", "file", "status"])


def _adapter_methodologies() -> set[str]:
    """Methodologies that run on a positions book through :mod:`greeksmargin.engine.adapters`."""
    return set(BOOK_ADAPTED)
