"""Calibrated model files: put calibrated shocks into a house-model template and record the provenance.

The template is a ``greeks-stress`` model (``models/greeks-default.toml``; schema in
:mod:`greeksmargin.engine.models`). :func:`apply_calibration` sets, for a *target* (``"default"``: the model's
own grid and Greeks charges; an underlying or product-group name: its ``[grid.overrides.<target>]`` and
``price_shock_by_underlying`` entries):

====================================  ==========================================================
key                                   calibrated value
====================================  ==========================================================
``grid.range_down``                   ``price_shock_down`` (c-quantile fall over the MPOR)
``grid.range_up``                     ``price_shock_up`` (c-quantile rise)
``grid.vol_shock.up`` / ``.down``     vol-index shocks, relative or absolute as the template's
                                      ``kind`` (at the template's pivot tenor; term rule kept);
                                      with ``joint_vol`` the joint shocks
``components.delta.price_shock``      ``price_shock = max(down, up)`` (symmetric fallback)
``components.delta.price_shock_down`` ``price_shock_down`` / ``_up`` (direction-aware delta charge:
/ ``_up`` (``_by_underlying``)         long net delta x fall, short x rise)
``components.gamma.price_shock``      ``price_shock``
``components.vega.shock``             vol up shock (template's ``kind``; ``shock_by_underlying`` for an
/ ``shock_down``                      override target) and vol down shock for net long vega: the
                                      vol index's marginal c-quantiles, or with ``vega_reference`` the
                                      shocks that make the model cover the reference straddles at c
                                      (:mod:`greeksmargin.calibration.reference`)
====================================  ==========================================================

Vol shocks are only set from a real vol index (``calibrate_vol``): a history whose vols are the
realised-vol proxy (BTC) keeps the template's vol shocks, and the notes say so.

Every shock is multiplied by ``scale`` (1.0; 0.5 gives the "halved shocks" model used to show that the
backtest can fail). ``[meta.calibration.<target>]`` records data set, dates, confidence, MPOR, method,
lambda, the shocks, code version and command line; ``[meta]`` ``source`` and ``effective_date`` are
updated. Not calibrated here and kept from the template (the notes say so): tail moves and weights, the
vol term rule, contingencies (short option minimum, roll), gain offset, cross-bucket netting, MM factor,
correlations.
"""

from __future__ import annotations

import copy
import datetime as _dt
import math
from pathlib import Path
from typing import Any

from greeksmargin import io
from greeksmargin.calibration.shocks import Calibration, ReferenceVega
from greeksmargin.errors import ModelError


def _set(d: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for k in path[:-1]:
        d = d.setdefault(k, {})
    d[path[-1]] = value


def sets_vol_shocks(cal: Calibration, calibrate_vol: bool | None = None) -> bool:
    """Whether a calibration sets the model's vol shocks.

    ``calibrate_vol`` when given; by default only from a vol index (source ``"index"`` or ``"filled"``),
    not from the realised-vol proxy alone.
    """
    return cal.vol.source in ("index", "filled") if calibrate_vol is None else bool(calibrate_vol)


def apply_calibration(
    raw: dict[str, Any],
    cal: Calibration,
    *,
    target: str = "default",
    scale: float = 1.0,
    provenance: dict[str, Any] | None = None,
    calibrate_vol: bool | None = None,
    joint_vol: bool = False,
    vega_reference: ReferenceVega | None = None,
    vega_floor: float = 0.5,
) -> dict[str, Any]:
    """A copy of a ``greeks-stress`` model dict with the calibrated shocks of ``cal`` (module docstring).

    Parameters
    ----------
    raw : dict
        The template model as read from TOML (``Model.raw``).
    cal : Calibration
        Shocks at the model confidence.
    target : str
        ``"default"`` or an underlying / product-group name (override tables).
    scale : float
        Multiplier of every shock (1.0 normally).
    provenance : dict, optional
        Extra ``[meta.calibration.<target>]`` entries (code version, command line, ...).
    calibrate_vol : bool, optional
        Set the vol shocks too. Default: only when they come from a real vol index
        (``cal.vol.source == "index"``); shocks from the realised-vol proxy (smoothed by construction,
        so its 2-day falls are capped near ``1 - lambda``) leave the template's vol shocks in place.
    joint_vol : bool
        Put the joint vol shocks (``cal.vol.up_joint`` / ``down_joint``: the vol move accompanying a
        c-quantile price move, :mod:`greeksmargin.calibration.shocks`) on the scan's vol states instead
        of the marginal c-quantiles; the vega charge keeps the marginal shocks.
    vega_reference : ReferenceVega, optional
        Vega-charge shocks from the reference straddles
        (:func:`greeksmargin.calibration.reference.reference_vega_shocks`, computed on this calibration
        at scale 1) instead of the vol index's marginal quantiles; multiplied by ``scale`` like the others.
    vega_floor : float
        With ``vega_reference``: each reference shock is floored at this fraction of the vol index's
        marginal c-quantile move of the same direction (policy, default 0.5). The straddle identifies the
        vega shock only on the days the other charges leave uncovered; where the scan covers a short
        straddle on more than ``c`` of the days the vol-rise shock comes out 0, and a gamma-free vega book
        (a calendar spread) would pay no vega charge at all.

    Returns
    -------
    dict
        The new model dict (the template is not modified).

    Raises
    ------
    ModelError
        The template is not a ``greeks-stress`` model or lacks the calibrated tables.
    """
    calibrate_vol = sets_vol_shocks(cal, calibrate_vol)
    if calibrate_vol and not (math.isfinite(cal.vol.up) and math.isfinite(cal.vol.down)):
        raise ModelError(
            f"calibration on {cal.dataset} has no vol shocks (no vol index or proxy in the history)",
            key="grid.vol_shock",
        )
    out = copy.deepcopy(raw)
    meta = out.get("meta", {})
    if meta.get("methodology") != "greeks-stress":
        raise ModelError(
            f"calibration needs a greeks-stress template, got methodology {meta.get('methodology')!r}",
            key="meta.methodology",
        )
    grid = out.get("grid")
    comps = out.get("components", {})
    down, up = scale * cal.price_shock_down, scale * cal.price_shock_up
    sym = max(down, up)
    vs_kind = (grid or {}).get("vol_shock", {}).get("kind", "relative")
    vol_up = scale * (cal.vol.up if vs_kind == "relative" else cal.vol.up_abs)
    vol_down = scale * (cal.vol.down if vs_kind == "relative" else cal.vol.down_abs)
    if joint_vol and calibrate_vol:
        joint = cal.vol.up_joint if vs_kind == "relative" else cal.vol.up_joint_abs
        joint_dn = cal.vol.down_joint if vs_kind == "relative" else cal.vol.down_joint_abs
        if not (math.isfinite(joint) and math.isfinite(joint_dn)):
            raise ModelError(f"calibration on {cal.dataset} has no joint vol shock", key="grid.vol_shock.up")
        vol_up, vol_down = scale * joint, scale * joint_dn
    if target == "default":
        if grid is not None:
            grid["range_down"] = round(down, 6)
            grid["range_up"] = round(up, 6)
            if calibrate_vol:
                vs = grid.setdefault("vol_shock", {})
                vs["up"] = round(vol_up, 6)
                vs["down"] = round(min(vol_down, 0.95) if vs_kind == "relative" else vol_down, 6)
        for name in ("delta", "gamma"):
            if name in comps:
                comps[name]["price_shock"] = round(sym, 6)
        if "delta" in comps:
            comps["delta"]["price_shock_down"] = round(down, 6)
            comps["delta"]["price_shock_up"] = round(up, 6)
    else:
        if grid is None:
            raise ModelError("the template has no [grid] to override", key="grid")
        ov = grid.setdefault("overrides", {}).setdefault(target, {})
        ov["range_down"] = round(down, 6)
        ov["range_up"] = round(up, 6)
        if calibrate_vol:
            ov["vol_up"] = round(vol_up, 6)
            ov["vol_down"] = round(min(vol_down, 0.95) if vs_kind == "relative" else vol_down, 6)
        for name in ("delta", "gamma"):
            if name in comps:
                comps[name].setdefault("price_shock_by_underlying", {})[target] = round(sym, 6)
        if "delta" in comps:
            comps["delta"].setdefault("price_shock_down_by_underlying", {})[target] = round(down, 6)
            comps["delta"].setdefault("price_shock_up_by_underlying", {})[target] = round(up, 6)
    if vega_reference is not None and not calibrate_vol:
        raise ModelError(f"reference vega shocks need calibrated vol shocks ({cal.dataset} has none)",
                         key="components.vega.shock")
    floor_binding = (False, False)
    applied = (math.nan, math.nan)
    if "vega" in comps and calibrate_vol:
        vk = comps["vega"].get("kind", "absolute")
        up_raw = cal.vol.up if vk == "relative" else cal.vol.up_abs  # the marginal c-quantile moves
        down_raw = cal.vol.down if vk == "relative" else cal.vol.down_abs
        if vega_reference is not None:
            if vega_reference.kind != vk:
                raise ModelError(f"reference shocks are {vega_reference.kind}, the template's vega kind is {vk}",
                                 key="components.vega.kind")
            floor_binding = (vega_reference.up < vega_floor * up_raw, vega_reference.down < vega_floor * down_raw)
            up_raw = max(vega_reference.up, vega_floor * up_raw)
            down_raw = max(vega_reference.down, vega_floor * down_raw)
        applied = (up_raw, down_raw)
        vshock, vdown = scale * up_raw, scale * down_raw
        if vk == "relative":
            vdown = min(vdown, 0.95)
        if target == "default":
            comps["vega"]["shock"] = round(vshock, 6)
            comps["vega"]["shock_down"] = round(vdown, 6)
        else:
            comps["vega"].setdefault("shock_by_underlying", {})[target] = round(vshock, 6)
            comps["vega"].setdefault("shock_down_by_underlying", {})[target] = round(vdown, 6)
    record: dict[str, Any] = {
        "dataset": cal.dataset,
        "data_source": cal.source,
        "start": cal.start,
        "end": cal.end,
        "confidence": cal.confidence,
        "mpor_days": cal.mpor,
        "method": cal.method,
        "return_kind": cal.return_kind,
        "quantile_method": cal.quantile_method,
        "price_shock_down": cal.price_shock_down,
        "price_shock_up": cal.price_shock_up,
        "vol_shock_up_relative": cal.vol.up,
        "vol_shock_down_relative": cal.vol.down,
        "vol_shock_up_absolute": cal.vol.up_abs,
        "vol_shock_down_absolute": cal.vol.down_abs,
        "vol_shock_source": f"{cal.vol.source} {cal.vol.start}..{cal.vol.end}",
        "vol_shock_up_joint_relative": cal.vol.up_joint,
        "vol_shock_up_joint_absolute": cal.vol.up_joint_abs,
        "vol_shock_down_joint_relative": cal.vol.down_joint,
        "vol_shock_down_joint_absolute": cal.vol.down_joint_abs,
        "scan_vol_states": "joint" if (joint_vol and calibrate_vol) else "marginal",
        "vega_shock_method": "reference" if vega_reference is not None else "index-marginal",
        "scale": scale,
        "vol_shocks_calibrated": bool(calibrate_vol),
    }
    if cal.lam is not None:
        record["lambda"] = cal.lam
        record["sigma_annual_at_end"] = cal.sigma_annual_now
    if cal.stress_from is not None:
        record.update(
            stress_from=cal.stress_from,
            stress_to=cal.stress_to,
            stress_weight=cal.stress_weight,
            floor_binding=cal.floor_binding,
        )
    if vega_reference is not None:
        r = vega_reference
        record.update(
            vega_shock_up=applied[0],
            vega_shock_down=applied[1],
            vega_reference_up=r.up,
            vega_reference_down=r.down,
            vega_reference_portfolios="ATM straddle, long (vol down) and short (vol up)",
            vega_reference_tenor_days=r.tenor_days,
            vega_reference_days=r.n_days,
            vega_reference_window=f"{r.start}..{r.end}",
            vega_reference_covered_up=r.covered_up,
            vega_reference_covered_down=r.covered_down,
            vega_reference_zero_up=r.zero_up,
            vega_reference_zero_down=r.zero_down,
            vega_floor_fraction=vega_floor,
            vega_floor_binding_up=bool(floor_binding[0]),
            vega_floor_binding_down=bool(floor_binding[1]),
        )
    record.update(provenance or {})
    calib = meta.setdefault("calibration", {})
    calib.pop("status", None)  # the template's "placeholder until calibrated"
    calib[target] = record
    meta["effective_date"] = str(_dt.date.today())
    meta["version"] = f"1.0.0-calibrated-{meta['effective_date']}"
    if isinstance(meta.get("description"), str):
        meta["description"] = meta["description"].replace(" (placeholder parameters until calibrated)", "")
    notes = meta.get("notes", [])
    notes = [notes] if isinstance(notes, str) and notes else list(notes or [])
    tag = f"calibration [{target}]:"
    notes = [n for n in notes if "placeholder" not in n.lower() and not n.startswith(tag)]
    if target == "default" and grid is not None:  # the template's description of the default scan is stale now
        pts_down = grid.get("points_down", 4)
        pts_up = grid.get("points_up") or pts_down
        scan_note = (
            f"scan: -{down:.4g}/+{up:.4g} in {pts_down}/{pts_up}"
            f" steps per side{' plus 0' if grid.get('include_zero', True) else ''} x vol "
            f"{'/'.join(grid.get('vol_states', ['up', 'none', 'down']))}; tails {grid.get('tail_moves', [])} with vol "
            f"{'/'.join(grid.get('tail_vol_states', ['up']))} at weight rule {grid.get('tail_weight_rule', 'constant')}"
        )
        notes = [scan_note if n.startswith("scan:") else n for n in notes]
    if not any(n.startswith("not calibrated") for n in notes):
        notes.append(
            "not calibrated (kept from the template, to be set by policy): tail moves and weights, vol term "
            "powers, gain_offset, cross_bucket_netting, short_option_minimum, roll, mm_factor, correlations"
        )
    where = (
        "default grid and Greeks shocks"
        if target == "default"
        else f"grid.overrides.{target} and {target} Greeks shocks"
    )
    notes.append(
        f"{tag} {where} from {cal.dataset} {cal.start}..{cal.end}, {cal.method.upper()}"
        + (f" lambda={cal.lam}" if cal.lam is not None else "")
        + f", c={cal.confidence}, MPOR {cal.mpor} days: price -{down:.4f}/+{up:.4f}"
        + (
            f", scan vol +{vol_up:.4f}/-{vol_down:.4f}{' (joint)' if joint_vol else ''} ({vs_kind}, {cal.vol.source})"
            if calibrate_vol
            else f"; vol shocks kept from the template (no vol index in {cal.dataset}, only a realised-vol proxy)"
        )
        + (
            f"; vega charge from the reference ATM straddles ({vega_reference.tenor_days:g} days) at c: vol "
            f"+{scale * applied[0]:.4f}/-{scale * applied[1]:.4f} (reference +{vega_reference.up:.4f}/"
            f"-{vega_reference.down:.4f}, floored at {vega_floor:g} x the marginal vol quantiles)"
            if vega_reference is not None
            else ""
        )
        + (f", scaled x{scale}" if scale != 1.0 else "")
    )
    meta["notes"] = notes
    meta["source"] = (
        "Structure: README, Models. Shocks: calibrated by greeksmargin.calibration on market history "
        f"(targets: {', '.join(sorted(calib))}); see [meta.calibration] for data, dates, confidence, MPOR, "
        "method, code version and command line"
    )
    return out


def build_model(raw: dict[str, Any], name: str = "<calibrated>") -> Any:
    """A :class:`greeksmargin.engine.models.Model` from a model dict without writing it (validated by the loader)."""
    from greeksmargin.engine.models import Model, parse_domain, parse_rule_set, parse_status

    meta = raw.get("meta")
    if not isinstance(meta, dict) or "name" not in meta or "methodology" not in meta:
        raise ModelError("missing [meta] name / methodology", file=name, key="meta")
    params = parse_rule_set(raw, name)
    return Model(str(meta["name"]), str(meta["methodology"]), dict(meta), params, file=None, runnable=True, raw=raw,
                 domain=parse_domain(raw.get("domain"), name), status=parse_status(meta, name))


def write_model_file(raw: dict[str, Any], path: str | Path, *, header: str = "") -> Path:
    """Write a model dict as TOML (via :func:`greeksmargin.io.write_toml`) and check it loads.

    Raises
    ------
    ModelError
        The written file does not load with :func:`greeksmargin.engine.models.load_model` (the message of the
        loader, naming the key).
    """
    from greeksmargin.engine.models import load_model

    build_model(raw, str(path))
    out = io.write_toml(raw, path, header=header)
    load_model(out)
    return out
