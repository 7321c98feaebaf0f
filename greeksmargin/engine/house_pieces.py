"""The house rule set's pieces on sorted position arrays: price, sensitivity, contingency and revaluation charges."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.engine.models import RuleSet
from greeksmargin.methodologies.house import contingency as cont
from greeksmargin.methodologies.house import sensitivity as sens
from greeksmargin.methodologies.house.combine import (
    direction_from_losses,
    evaluate,
    side_losses,
)
from greeksmargin.methodologies.house.scan import group_sum
from greeksmargin.risk.exercise import american_forward_price, american_mask
from greeksmargin.risk.scenarios import Contracts, VolShockRule, scenario_pnl

if TYPE_CHECKING:
    pass



#: rule family of each figure (the ``rule`` column of the tidy rows)
RULE_OF = {
    "scan": "scan",
    "delta": "sensitivity",
    "gamma": "sensitivity",
    "vega": "sensitivity",
    "short_option_minimum": "contingency",
    "roll": "contingency",
    "contract_floor": "floor",
    "long_premium_cap": "cap",
    "option_standard_im": "standard",
    "option_standard_mm": "standard",
    "delta_one_im": "standard",
    "delta_one_mm": "standard",
}

#: ``backend="auto"`` uses the compiled kernel from this many position x scenario evaluations on
NUMBA_MIN_EVALUATIONS = 2_000_000

_GREEK_COLUMNS = ["delta_cash", "delta_1pct", "gamma_cash_1pct", "vega_1volpt", "theta_1d", "coin_delta", "value_usd"]



# ======================================================================================= computation
def _weighted_bincount(x: NDArray[np.intp], weights: NDArray[np.float64], minlength: int) -> NDArray[np.float64]:
    """``np.bincount`` with weights: float64 sums (numpy's stub types every bincount as intp)."""
    return cast(NDArray[np.float64], np.bincount(x, weights=weights, minlength=minlength))


def _factorize_sorted(values: Any) -> tuple[NDArray[np.intp], pd.Index]:
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True)
    return codes.astype(np.intp), pd.Index(uniques)


#: per-position pieces of the delta and gamma charges (the revaluation ones only with method = "revaluation")
_PRICE_PIECES = ("delta", "gamma", "delta_up", "delta_down", "gamma_up", "gamma_down")


def price_charges(
    rs: RuleSet, need: set[str], net: Mapping[str, NDArray[np.float64]], shock: Mapping[str, NDArray[np.float64]]
) -> dict[str, NDArray[np.float64]]:
    """Delta and gamma figures of units (their summed pieces) or of positions alone, by each charge's method.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    need : set of str
        Figures the model uses.
    net : mapping of str -> ndarray of shape (n,)
        Net ``delta`` / ``gamma`` (Taylor) or the P&L ``delta_up`` / ``delta_down`` / ``gamma_up`` /
        ``gamma_down`` at the shocks (revaluation, :func:`revaluation_pieces`), margin currency.
    shock : mapping of str -> ndarray of shape (n,)
        ``delta_down`` / ``delta_up`` (Taylor delta) and ``gamma`` price shocks of each unit / position.

    Returns
    -------
    dict of str -> ndarray of shape (n,)
    """
    out: dict[str, NDArray[np.float64]] = {}
    if "delta" in need:
        if rs.components["delta"]["method"] == "revaluation":
            out["delta"] = sens.delta_charge_revaluation(net["delta_up"], net["delta_down"])
        else:
            out["delta"] = sens.delta_charge(net["delta"], shock["delta_down"], shock["delta_up"])
    if "gamma" in need:
        h = shock["gamma"]
        if rs.components["gamma"]["method"] == "revaluation":
            out["gamma"] = sens.gamma_charge_revaluation(net["gamma_up"], net["gamma_down"], h, h)
        else:
            out["gamma"] = sens.gamma_charge(net["gamma"], h)
    return out


def _unit_figures(
    rs: RuleSet,
    need: set[str],
    P: dict[str, NDArray[np.float64]],
    unit: NDArray[np.intp],
    starts: NDArray[np.intp],
    n_units: int,
    unit_und_shock: dict[str, NDArray[np.float64]],
    bucket: NDArray[np.intp] | None,
    n_buckets: int,
    expiry_code: NDArray[np.intp] | None,
    n_expiry: int,
) -> dict[str, NDArray[np.float64]]:
    """Per-unit figures from per-position pieces (``unit`` codes with contiguous ``starts``)."""
    out: dict[str, NDArray[np.float64]] = {}
    if "scan" in need:
        out["scan"] = P["unit_scan"]
    if need & {"delta", "gamma"}:
        net = {k: group_sum(P[k], starts) for k in _PRICE_PIECES if k in P}
        out.update(price_charges(rs, need, net, unit_und_shock))
    if "vega" in need:
        assert bucket is not None
        lam = rs.components["vega"]["cross_bucket_netting"]
        if rs.components["vega"]["method"] == "revaluation":
            out["vega"] = sens.vega_charge_revaluation(
                P["vega_up"], P["vega_down"], unit, bucket, n_units, n_buckets, lam
            )
        else:
            out["vega"] = sens.vega_charge(
                P["vega_base"], unit, bucket, n_units, n_buckets, lam,
                shock_up=unit_und_shock["vega_up"], shock_down=unit_und_shock["vega_down"],
            )
    if "short_option_minimum" in need:
        out["short_option_minimum"] = np.maximum(group_sum(P["som"], starts), 0.0)
    if "roll" in need:
        assert expiry_code is not None
        key = unit * n_expiry + expiry_code
        b = np.bincount(key, weights=P["roll"], minlength=n_units * n_expiry).reshape(n_units, n_expiry)
        out["roll"] = cont.roll_unit_charge(b, rs.components["roll"]["scope"])
    if "contract_floor" in need:
        out["contract_floor"] = group_sum(P["contract_floor"], starts)
    if "long_premium_cap" in need:
        val = group_sum(P["cap_value"], starts)
        other = group_sum(P["cap_other"], starts)
        out["long_premium_cap"] = np.where(other > 0, np.inf, val)
    for f in ("option_standard_im", "option_standard_mm", "delta_one_im", "delta_one_mm"):
        if f in need:
            out[f] = group_sum(P[f], starts)
    return out


def _position_figures(
    rs: RuleSet, need: set[str], P: dict[str, NDArray[np.float64]], shock: dict[str, NDArray[np.float64]]
) -> dict[str, NDArray[np.float64]]:
    """The same figures with every position alone (isolated margin)."""
    out: dict[str, NDArray[np.float64]] = {}
    if "scan" in need:
        out["scan"] = P["pos_scan"]
    out.update(price_charges(rs, need, P, shock))
    if "vega" in need:
        if rs.components["vega"]["method"] == "revaluation":
            out["vega"] = sens.vega_loss(P["vega_up"], P["vega_down"])
        else:
            e = P["vega_base"]
            out["vega"] = np.maximum(e, 0.0) * shock["vega_down"] + np.maximum(-e, 0.0) * shock["vega_up"]
    if "short_option_minimum" in need:
        out["short_option_minimum"] = np.maximum(P["som"], 0.0)
    if "roll" in need:
        out["roll"] = cont.roll_unit_charge(P["roll"][:, None], rs.components["roll"]["scope"])
    if "contract_floor" in need:
        out["contract_floor"] = P["contract_floor"]
    if "long_premium_cap" in need:
        out["long_premium_cap"] = np.where(P["cap_other"] > 0, np.inf, P["cap_value"])
    for f in ("option_standard_im", "option_standard_mm", "delta_one_im", "delta_one_mm"):
        if f in need:
            out[f] = P[f]
    return out


def unit_requirements(
    rs: RuleSet,
    figures: dict[str, NDArray[np.float64]],
    n: int,
    *,
    isolated_im: NDArray[np.float64] | None = None,
    isolated_mm: NDArray[np.float64] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """IM and MM of each unit from its figures: the model's expressions, floored at 0, then capped.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    figures : dict of str -> ndarray of shape (n,)
        Figures of each unit (names of ``rs.figures``).
    n : int
        Number of units.
    isolated_im, isolated_mm : ndarray of shape (n,), optional
        Sum of the isolated requirements of each unit's positions; with ``rs.cap_at_isolated`` the unit
        requirement is capped at it (a unit never needs more than its positions margined alone).

    Returns
    -------
    im, mm : ndarray of shape (n,)
        ``mm = mm_factor x im`` when the model has a factor, else its own expression (capped likewise).
    """
    im = np.maximum(evaluate(rs.im, figures) * np.ones(n), 0.0)
    mm = np.maximum(evaluate(rs.mm, figures) * np.ones(n), 0.0) if rs.mm is not None else None
    if rs.cap_at_isolated and isolated_im is not None:
        im = np.minimum(im, isolated_im)
        if mm is not None and isolated_mm is not None:
            mm = np.minimum(mm, isolated_mm)
    if mm is None:
        mm = rs.mm_factor * im
    return im, mm


def exposure_direction(
    rs: RuleSet,
    *,
    pnl: NDArray[np.float64] | None = None,
    spot_move: NDArray[np.float64] | None = None,
    weights: NDArray[np.float64] | None = None,
    net: Mapping[str, NDArray[np.float64]] | None = None,
    shock: Mapping[str, NDArray[np.float64]] | None = None,
) -> NDArray[np.float64] | None:
    """Direction of each unit's exposure for the signed correlation aggregation (in ``[-1, 1]``).

    From the scan when the model has one: the worst loss on the falling and on the rising side of the
    unit's grid and with the spot unchanged (:func:`greeksmargin.methodologies.house.combine.side_losses`); else from
    the delta charge: the loss at its fall / rise (revaluation: ``-delta_down``, ``-delta_up``; Taylor:
    ``max(+-delta, 0) x shock``); else None (every unit non-directional: the unsigned aggregation).
    :func:`greeksmargin.methodologies.house.combine.direction_from_losses` turns the losses into the direction.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    pnl : ndarray of shape (n_scenarios, n_units), optional
        Unit P&L per scenario (with a scan).
    spot_move, weights : ndarray of shape (n_scenarios, n_units), optional
        Spot move and weight of each scenario of each unit's grid.
    net : mapping, optional
        Unit sums ``delta`` (Taylor) or ``delta_up`` / ``delta_down`` (revaluation), margin currency.
    shock : mapping, optional
        ``delta_down`` / ``delta_up`` price shocks per unit (Taylor delta).

    Returns
    -------
    ndarray of shape (n_units,) or None
    """
    need = set(rs.figures)
    if "scan" in need and pnl is not None and spot_move is not None and weights is not None:
        return direction_from_losses(*side_losses(pnl, spot_move, weights))
    if "delta" in need and net is not None:
        if rs.components["delta"]["method"] == "revaluation" and "delta_up" in net:
            return direction_from_losses(-net["delta_down"], -net["delta_up"])
        if "delta" in net and shock is not None:
            d = net["delta"]
            return direction_from_losses(np.maximum(d, 0.0) * shock["delta_down"],
                                         np.maximum(-d, 0.0) * shock["delta_up"])
    return None


def _position_values(
    pos: pd.DataFrame, arr: Mapping[str, Any], market: Any, order: NDArray[np.intp]
) -> dict[str, NDArray[Any]]:
    """Price, value in the margin currency and margin currency of each position (sorted by ``order``).

    The same definitions as :func:`greeksmargin.risk.greeks.price_positions` (module docstring there) without
    the Greeks: option price Black-76 discounted (American options: their American value); future: forward;
    perpetual: mark; spot: spot;
    ``value_ccy`` = price x size (options, spot), / F for coin-settled options, 0 for futures / perpetuals.
    """
    from greeksmargin.pricing import black76_price

    kc = np.asarray(arr["kind_code"])[order]
    F = np.asarray(arr["forward"], dtype=float)[order]
    S = np.asarray(arr["spot"], dtype=float)[order]
    size = np.asarray(arr["size"], dtype=float)[order]
    inv = np.asarray(arr["inverse"], dtype=bool)[order]
    opt = kc == 0
    price = np.select([kc == 1, kc == 2], [F, S * np.asarray(arr["perp_ratio"], dtype=float)[order]], default=S)
    if opt.any():
        o = np.flatnonzero(opt)
        price[o] = black76_price(np.asarray(arr["is_call"])[order][o], F[o], np.asarray(arr["strike"])[order][o],
                                 np.asarray(arr["T"])[order][o], np.asarray(arr["vol"])[order][o],
                                 np.asarray(arr["rate"])[order][o])
        am = american_mask(arr)
        if am is not None and am[order][o].any():  # American options (greeksmargin.risk.exercise)
            o_am = o[am[order][o]]
            F_am, S_am = F[o_am], S[o_am]
            price[o_am] = american_forward_price(
                np.asarray(arr["is_call"])[order][o_am], F_am, np.asarray(arr["strike"])[order][o_am],
                np.asarray(arr["T"])[order][o_am], np.asarray(arr["vol"])[order][o_am],
                np.asarray(arr["rate"])[order][o_am], F_am / S_am)
    value_usd = np.where(opt | (kc == 3), price * size, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        value_inv = np.select([opt, kc == 3], [price / F * size, value_usd / S], default=0.0)
    names = arr["underlyings"]
    ccy_of = [market.currency(u) if market.currency(u) != "USD" else u for u in names]
    und = np.asarray(arr["underlying_code"])[order]
    # margin currency of each position as a code into the sorted currencies present (no per-position strings)
    cands = sorted(set(ccy_of) | {"USD"})
    cand_of_und = np.array([cands.index(c) for c in ccy_of], dtype=np.intp)
    raw = np.where(inv, cand_of_und[und] if len(names) else 0, cands.index("USD"))
    present = np.flatnonzero(np.bincount(raw, minlength=len(cands)) > 0) if raw.size else np.zeros(0, np.intp)
    remap = np.full(len(cands), -1, dtype=np.intp)
    remap[present] = np.arange(present.size)
    return {
        "price": price,
        "value_ccy": np.where(inv, value_inv, value_usd),
        "margin_currency_code": remap[raw],
        "margin_currency_names": pd.Index([cands[i] for i in present], dtype=object),
        "quantity": pos["quantity"].to_numpy(dtype=float)[order],
        "multiplier": pos["multiplier"].to_numpy(dtype=float)[order],
    }


def delta_shocks(params: dict[str, Any], underlyings: Sequence[str], side: str) -> NDArray[np.float64]:
    """Price shock of the delta charge per underlying in one direction (``side`` "down" or "up").

    ``price_shock_<side>_by_underlying[u]``, else ``price_shock_<side>``, else the symmetric
    ``price_shock_by_underlying[u]`` / ``price_shock`` of the ``[components.delta]`` table; shape (n,).
    """
    by_side = params.get(f"price_shock_{side}_by_underlying") or {}
    sym_by = params.get("price_shock_by_underlying") or {}
    side_default = params.get(f"price_shock_{side}")
    out = []
    for u in underlyings:
        if u in by_side:
            out.append(float(by_side[u]))
        elif side_default is not None and u not in sym_by:
            out.append(float(side_default))
        else:
            out.append(float(sym_by.get(u, params["price_shock"])))
    return np.asarray(out, dtype=float)


def gamma_shocks(params: dict[str, Any], underlyings: Sequence[str]) -> NDArray[np.float64]:
    """Price shock of the gamma charge per underlying: ``price_shock_by_underlying[u]``, else ``price_shock``."""
    by = params.get("price_shock_by_underlying") or {}
    return np.asarray([float(by.get(u, params["price_shock"])) for u in underlyings], dtype=float)


def vega_shocks(params: dict[str, Any], underlyings: Sequence[str], side: str) -> NDArray[np.float64]:
    """Vol shock of the vega charge per underlying in one direction (``side`` "up" or "down").

    Up (charged on net short vega): ``shock_by_underlying[u]``, else ``shock``. Down (charged on net long
    vega): ``shock_down_by_underlying[u]``, else ``shock_down``, else the up shock (symmetric); shape (n,).
    """
    up_by = params.get("shock_by_underlying") or {}
    up = np.asarray([float(up_by.get(u, params["shock"])) for u in underlyings], dtype=float)
    if side == "up":
        return up
    down_by = params.get("shock_down_by_underlying") or {}
    d0 = params.get("shock_down")
    return np.asarray(
        [float(down_by[u]) if u in down_by else (float(d0) if d0 is not None and u not in up_by else up[i])
         for i, u in enumerate(underlyings)],
        dtype=float,
    )


def contingency_pieces(
    rs: RuleSet,
    arrays: Mapping[str, Any],
    *,
    kinds: NDArray[Any],
    size: NDArray[np.float64],
    unit_price: NDArray[np.float64],
    d1_price: NDArray[np.float64],
    value_ccy: NDArray[np.float64],
    quantity: NDArray[np.float64],
    multiplier: NDArray[np.float64],
    factor: NDArray[np.float64],
    currency_to_account: Callable[[str], Any],
) -> dict[str, NDArray[Any]]:
    """Per-position pieces of the contingency and standard figures, in the account's margin currency.

    The engine (:func:`compute_margin`) and the incremental what-if (:mod:`greeksmargin.engine.incremental`)
    both build them here. Keys, present for the figures the model uses: ``som`` (short option minimum,
    ``-rate x size x unit price`` per option, summed and floored at 0 per unit), ``roll`` and
    ``expiry_key`` (roll amount ``size x price x max(min_annual_move, annual_move T)`` and the expiry in
    seconds it nets in), ``contract_floor``, ``cap_value`` / ``cap_other`` (long-premium cap),
    ``option_standard_im`` / ``_mm``, ``delta_one_im`` / ``_mm``.

    Parameters
    ----------
    rs : RuleSet
        The model's rules.
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays (``kind_code``, ``is_call``, ``T``, ``spot``, ``strike``).
    kinds : ndarray of object, shape (n,)
        Kind names.
    size, unit_price, d1_price, value_ccy, quantity, multiplier, factor : ndarray of shape (n,)
        Quantity x multiplier; one unit of underlying in the position's currency (1 for coin-settled);
        the delta-one price (1 for coin-settled); the position's value in its currency; quantity;
        multiplier; position currency -> account margin currency.
    currency_to_account : callable
        ``ccy -> factor`` (scalar or shape (n,)) converting an amount in ``ccy`` to each position's
        account margin currency (the contract floor's currency).

    Returns
    -------
    dict of str -> ndarray of shape (n,)
    """
    need = set(rs.figures)
    is_opt = np.asarray(arrays["kind_code"]) == 0
    P: dict[str, NDArray[Any]] = {}
    if "short_option_minimum" in need:
        rate = rs.components["short_option_minimum"]["rate"]
        P["som"] = np.where(is_opt, -rate * size * unit_price * factor, 0.0)
    if "roll" in need:
        c = rs.components["roll"]
        applies = np.isin(kinds, c["kinds"])
        t = np.nan_to_num(np.asarray(arrays["T"], dtype=float), nan=0.0)
        move = np.maximum(c["min_annual_move"], c["annual_move"] * t)
        P["roll"] = np.where(applies, size * d1_price * move * factor, 0.0)
        P["expiry_key"] = np.round(t * 365 * 24 * 3600).astype(np.int64)
    if "contract_floor" in need:
        c = rs.components["contract_floor"]
        applies = np.isin(kinds, c["kinds"])
        amt = cont.contract_floor(applies, quantity, multiplier, c["per_contract"])
        P["contract_floor"] = amt * currency_to_account(c["currency"])
    if "long_premium_cap" in need:
        P["cap_value"], P["cap_other"] = cont.long_premium_cap(value_ccy * factor, is_opt & (size > 0))
    if "option_standard_im" in need:
        c = rs.components["option_standard"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mark = np.where(size != 0, value_ccy / np.where(size != 0, size, 1.0), 0.0)
        im_s, mm_s = cont.option_standard_margin(
            is_opt, arrays["is_call"], size, arrays["spot"], arrays["strike"], mark, unit_price,
            im_base=c["im_base"], im_min=c["im_min"], mm_base=c["mm_base"], long_premium=c["long_premium"],
        )
        P["option_standard_im"], P["option_standard_mm"] = im_s * factor, mm_s * factor
    if "delta_one_im" in need:
        c = rs.components["delta_one"]
        applies = np.isin(kinds, c["kinds"])
        im_d, mm_d = cont.delta_one_margin(applies, size, d1_price, c["im_rate"], c["mm_rate"])
        P["delta_one_im"], P["delta_one_mm"] = im_d * factor, mm_d * factor
    return P


#: floor of a shocked-down vol in the revaluation vega charge (a term-scaled fall may exceed 100%)
REVAL_MIN_VOL = 1e-4


def revaluation_pieces(
    rs: RuleSet, arrays: Mapping[str, Any], underlying: Sequence[str] | NDArray[Any], factor: NDArray[np.float64],
    *, contracts: Contracts | None = None, underlying_code: NDArray[np.intp] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Per-position P&L of the revaluation Greeks charges, in the account's margin currency.

    ``delta_up`` / ``delta_down``: P&L at ``+h_up`` / ``-h_down`` (vol unchanged), the delta component's
    shocks of the position's underlying (:func:`delta_shocks`); ``gamma_up`` / ``gamma_down``: P&L at
    ``+h`` / ``-h`` (vol unchanged), ``h`` the gamma price shock; ``vega_up`` / ``vega_down``: P&L with
    the option's vol shocked up / down by the vega component's term-dependent shock of its underlying (up:
    ``shock``, down: the down shock as :func:`vega_shocks`; relative ``sigma (1 +- s mult(T))`` or absolute
    ``sigma +- s mult(T)``, a shocked-down vol floored at :data:`REVAL_MIN_VOL`), spot unchanged; 0 for
    non-options. Empty when no component uses ``method = "revaluation"``. Additive over positions (the
    unit sums are sums). ``contracts`` (:func:`greeksmargin.risk.scenarios.contract_codes`, keyed by the
    underlying too): each option contract revalued once, the same figures. ``underlying``: the underlying
    of each position, shape (n,), or with ``underlying_code`` (shape (n,)) the names that it indexes.
    """
    need = set(rs.figures)
    want = {k: k in need and rs.components[k]["method"] == "revaluation" for k in ("delta", "gamma", "vega")}
    if not any(want.values()):
        return {}
    und = np.asarray(underlying, dtype=object)
    if underlying_code is None:
        n = und.size
        names, inv_code = np.unique(und.astype(str), return_inverse=True)
    else:
        inv_code = np.asarray(underlying_code, dtype=np.intp)
        n, names = inv_code.size, und
    names_l = [str(u) for u in names]
    vol = np.nan_to_num(np.asarray(arrays["vol"], dtype=float))
    # rows of (relative spot move, vol) per position, revalued in one call of the scan's kernel
    moves: list[NDArray[np.float64]] = []
    vols: list[NDArray[np.float64]] = []
    rows: dict[str, int] = {}

    def row(key: str, move: NDArray[np.float64], v: NDArray[np.float64]) -> None:
        move = np.broadcast_to(move, (n,))
        for i, (m_i, v_i) in enumerate(zip(moves, vols)):  # e.g. the delta and gamma rise share one shock
            if np.array_equal(m_i, move) and np.array_equal(v_i, v):
                rows[key] = i
                return
        rows[key] = len(moves)
        moves.append(move)
        vols.append(v)

    if want["delta"]:
        c = rs.components["delta"]
        row("delta_up", delta_shocks(c, names_l, "up")[inv_code], vol)
        row("delta_down", -delta_shocks(c, names_l, "down")[inv_code], vol)
    if want["gamma"]:
        c = rs.components["gamma"]
        h = gamma_shocks(c, names_l)[inv_code]
        row("gamma_up", h, vol)
        row("gamma_down", -h, vol)
    if want["vega"]:
        c = rs.components["vega"]
        rule = VolShockRule(kind=c["kind"], short_power=c["short_power"], long_power=c["long_power"],
                            pivot_days=c["pivot_days"], floor_days=c["floor_days"])
        mult = rule.multiplier(np.asarray(arrays["T"], dtype=float))
        su = vega_shocks(c, names_l, "up")[inv_code] * mult
        sd = vega_shocks(c, names_l, "down")[inv_code] * mult
        if c["kind"] == "relative":
            vu, vd = vol * (1.0 + su), vol * (1.0 - sd)
        else:
            vu, vd = vol + su, vol - sd
        vd = np.maximum(vd, np.minimum(vol, REVAL_MIN_VOL))
        row("vega_up", np.zeros(n), vu)
        row("vega_down", np.zeros(n), vd)
    p = scenario_pnl(arrays, np.stack(moves), np.stack(vols), contracts=contracts)
    p *= np.asarray(factor, dtype=float)[None, :]
    is_opt = np.asarray(arrays["kind_code"]) == 0
    # non-options carry no vol risk: their rows of the vol shocks are 0 by definition, not by revaluation
    return {k: (np.where(is_opt, p[i], 0.0) if k.startswith("vega") else p[i]) for k, i in rows.items()}


