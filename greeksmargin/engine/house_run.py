"""One run of the house rule set over a prepared book: arrays, scenario revaluation, components, aggregation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.engine.house_pieces import (
    NUMBA_MIN_EVALUATIONS,
    RULE_OF,
    _factorize_sorted,
    _position_figures,
    _position_values,
    _unit_figures,
    _weighted_bincount,
    contingency_pieces,
    delta_shocks,
    exposure_direction,
    gamma_shocks,
    revaluation_pieces,
    unit_requirements,
    vega_shocks,
)
from greeksmargin.engine.models import Model, RuleSet
from greeksmargin.engine.result import MarginResult
from greeksmargin.engine.whatif_one import sensitivities_unused
from greeksmargin.methodologies.house import sensitivity as sens
from greeksmargin.methodologies.house.combine import (
    aggregate_correlation,
    correlation_matrix,
    evaluate,
)
from greeksmargin.methodologies.house.scan import group_sum, offset_scan, scan_loss
from greeksmargin.methodologies.house.tidy import component_rows
from greeksmargin.risk.scenarios import (
    CHUNK,
    SHARED_MAX_RATIO,
    ScenarioGrid,
    VolShockRule,
    contract_codes,
    grid_pnl,
    sensitivities,
)

if TYPE_CHECKING:
    pass




def _numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover
        return False
    return True


def _underlying_codes(pos: pd.DataFrame, arr: Mapping[str, Any]) -> tuple[NDArray[np.intp], pd.Index]:
    """Sorted codes of the positions' underlyings (:func:`_factorize_sorted`), from the market arrays' codes."""
    if "underlying_code" not in arr or "underlyings" not in arr:
        return _factorize_sorted(pos["underlying"].to_numpy(dtype=object))
    codes = np.asarray(arr["underlying_code"], dtype=np.intp)
    names = np.asarray(arr["underlyings"], dtype=object)
    present = np.flatnonzero(np.bincount(codes, minlength=names.size) > 0) if codes.size else np.zeros(0, np.intp)
    srt = sorted(present, key=lambda i: names[i])
    rank = np.full(names.size, -1, dtype=np.intp)
    rank[np.asarray(srt, dtype=np.intp)] = np.arange(len(srt))
    return rank[codes], pd.Index(names[np.asarray(srt, dtype=np.intp)] if srt else [], dtype=object)


def _run(
    pos: pd.DataFrame,
    market: Any,
    model: Model,
    *,
    chunk: int = CHUNK,
    backend: str = "auto",
    arrays: Mapping[str, Any] | None = None,
    tables: bool = True,
    account_codes: tuple[NDArray[np.intp], pd.Index] | None = None,
    underlying_codes: tuple[NDArray[np.intp], pd.Index] | None = None,
    layout_only: bool = False,
) -> MarginResult:
    """Core computation on validated positions (every account computable).

    ``tables=False``: the accounts' ``im``, ``mm``, ``isolated_im`` and ``currency`` only (the same figures),
    no tidy tables, per-underlying rows, worst scenarios or internals (repeated evaluations: the
    solvency root finder). ``account_codes`` / ``underlying_codes``: the sorted factorisation of
    ``pos["account"]`` / ``pos["underlying"]`` (codes, shape (n,); sorted names), when the caller has it
    already (the same as computed here). ``layout_only``: no figures, only the internals that lay the book
    out (sorted order, arrays, codes, units, grids, currencies and factors; engine.shared_moves).
    """
    from greeksmargin.risk.greeks import market_arrays

    rs: RuleSet = model.params
    need = set(rs.figures)
    n = len(pos)
    arr = market_arrays(pos, market) if arrays is None else arrays
    und_names_all = arr["underlyings"]

    acc_code0, account_names = (_factorize_sorted(pos["account"].to_numpy(dtype=object)) if account_codes is None
                                else account_codes)
    # the market arrays' own underlying codes (no second pass over the strings); arrays given by the
    # caller: read from the positions, as before
    und_code0, underlying_names = (_underlying_codes(pos, arr) if arrays is None
                                   else underlying_codes if underlying_codes is not None
                                   else _factorize_sorted(pos["underlying"].to_numpy(dtype=object)))
    # grid of each underlying
    grids: list[ScenarioGrid] = []
    grid_of_und = np.zeros(len(underlying_names), dtype=np.intp)
    if rs.grid is not None:
        for ui, u in enumerate(underlying_names):
            g = rs.grid_for(str(u))
            assert g is not None
            for gi, h in enumerate(grids):
                if h is g:
                    grid_of_und[ui] = gi
                    break
            else:
                grids.append(g)
                grid_of_und[ui] = len(grids) - 1
    grid_id0 = grid_of_und[und_code0]
    # (grid, account, underlying) order, ties in row order: a stable sort of one combined key (np.lexsort's
    # permutation; timsort is linear on a book already sorted by account)
    key = (grid_id0.astype(np.int64) * max(len(account_names), 1) + acc_code0) * max(len(underlying_names), 1)
    order = np.argsort(key + und_code0, kind="stable")
    acc_code = acc_code0[order]
    und_code = und_code0[order]
    grid_id = grid_id0[order]
    del und_names_all
    A: dict[str, NDArray[Any]] = {
        k: np.asarray(arr[k])[order]
        for k in ("kind_code", "is_call", "strike", "T", "forward", "spot", "vol", "rate", "size", "inverse",
                  "perp_ratio")
    }
    if "american" in arr and np.any(arr["american"]):  # American options: numpy revaluation (risk.exercise)
        A["american"] = np.asarray(arr["american"], dtype=bool)[order]
    pr = _position_values(pos, arr, market, order)
    labels = pos.index.to_numpy()[order]

    # ---- units and currencies
    n_und = len(underlying_names)
    ukey = acc_code.astype(np.int64) * max(n_und, 1) + und_code
    if n:
        brk = np.r_[True, (ukey[1:] != ukey[:-1]) | (grid_id[1:] != grid_id[:-1])]
    else:
        brk = np.zeros(0, dtype=bool)
    starts = np.flatnonzero(brk)
    n_units = starts.size
    unit = np.cumsum(brk) - 1
    unit_acc = acc_code[starts]
    unit_und = und_code[starts]
    unit_grid = grid_id[starts]

    ccy_code, ccy_names = pr["margin_currency_code"], pr["margin_currency_names"]
    n_acc = len(account_names)
    cmin = np.full(n_acc, np.iinfo(np.intp).max)
    cmax = np.full(n_acc, -1)
    np.minimum.at(cmin, acc_code, ccy_code)
    np.maximum.at(cmax, acc_code, ccy_code)
    single = cmin == cmax
    acc_ccy = np.where(single, np.asarray(ccy_names, dtype=object)[np.clip(cmin, 0, max(len(ccy_names) - 1, 0))]
                       if len(ccy_names) else "USD", "USD").astype(object)
    fx = {c: market.fx_to_usd(c) for c in ccy_names}
    fx_acc = {c: (fx[c] if c in fx else market.fx_to_usd(c)) for c in set(acc_ccy)}
    pos_fx = np.array([fx[c] for c in ccy_names], dtype=float)[ccy_code] if n else np.zeros(0)
    acc_fx = np.array([fx_acc[c] for c in acc_ccy], dtype=float)
    factor = pos_fx / acc_fx[acc_code] if n else np.zeros(0)  # position currency -> account currency
    # a coin-settled position of an account margined in another currency: its coin's price moves with each
    # scenario's spot (scenarios.scenario_pnl), so its P&L is the account-currency P&L at the scenario's spot
    usd_code = list(ccy_names).index("USD") if "USD" in list(ccy_names) else -1
    acc_ccy_code = np.where(single, cmin, usd_code)  # the code of acc_ccy (-1: USD, held by no position)
    A["fx_moves"] = (A["inverse"].astype(bool) & (ccy_code != acc_ccy_code[acc_code]) if n
                     else np.zeros(0, dtype=bool))

    if layout_only:
        empty = pd.DataFrame()
        return MarginResult(empty, empty, empty, empty, model, {
            "order": order, "und_code": und_code, "grid_id": grid_id, "grids": grids, "arrays": A,
            "factor": factor, "account_names": pd.Index(account_names), "underlying_names": underlying_names,
            "acc_ccy": acc_ccy, "unit_of": unit, "unit_acc": unit_acc, "unit_und": unit_und, "unit_grid": unit_grid,
        })
    # identical option contracts (same inputs, same underlying): priced once in every revaluation below
    contracts: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None
    if arrays is not None and n > 4096:
        # inputs given per position (e.g. each account at its own moved market): look at a sample first
        probe: NDArray[np.intp] | None = np.linspace(0, n - 1, 4096).astype(np.intp)
        if contract_codes({k: v[probe] for k, v in A.items()}, und_code[probe])[1].size > SHARED_MAX_RATIO * 4096:
            probe = None
    if arrays is None or n <= 4096 or probe is not None:
        contracts = contract_codes(A, und_code)
        if contracts[1].size > SHARED_MAX_RATIO * max(n, 1):
            contracts = None  # few positions share a contract (e.g. each account at its own moved market)
    kc = A["kind_code"]
    is_opt = kc == 0
    inv = A["inverse"].astype(bool)
    size = A["size"].astype(float)
    unit_price = np.where(inv, 1.0, A["spot"])  # one unit of underlying in the position's currency
    d1_price = np.where(inv, 1.0, pr["price"].astype(float))  # delta-one: future / mark / spot price
    kinds = np.array(["option", "future", "perpetual", "spot"], dtype=object)[np.clip(kc, 0, 3)] if n else np.zeros(0)

    P: dict[str, NDArray[np.float64]] = {}
    # ---- scenario P&L, chunked along unit boundaries of one grid
    has_scan = "scan" in need
    n_s = grids[0].n_scenarios if grids else 0
    unit_pnl = np.zeros((n_s, n_units))
    pos_scan = np.zeros(n)
    pos_worst = np.zeros(n)
    unit_scan = np.zeros(n_units)
    unit_worst = np.zeros(n_units, dtype=np.intp)
    need_sens = bool(need & {"delta", "gamma", "vega"})
    dlt = np.zeros(n)
    gam = np.zeros(n)
    veg = np.zeros(n)
    gain = rs.components["scan"]["gain_offset"] if has_scan else 1.0
    # auto: the compiled kernel pays off (and is worth its one-off compilation) on large books only
    big = n * max(n_s, 1) >= NUMBA_MIN_EVALUATIONS
    use_numba = (backend == "numba" or (backend == "auto" and big and _numba_available())) and "american" not in A
    if (has_scan or need_sens) and use_numba:
        from greeksmargin.risk._scan_kernel import fused_scan

        u0 = 0
        while u0 < n_units:
            gcur = unit_grid[u0]
            same = np.flatnonzero(unit_grid[u0:] != gcur)
            u1 = u0 + int(same[0]) if same.size else n_units
            p0, p1 = starts[u0], (starts[u1] if u1 < n_units else n)
            sl = slice(p0, p1)
            g = grids[gcur] if grids else ScenarioGrid(np.zeros(1), np.zeros(1, np.int8), np.ones(1))
            a = {k: v[sl] for k, v in A.items()}
            if has_scan:
                # contracts of this grid's positions (the whole book's codes when one grid covers it)
                cs = (contracts if contracts is None or (p0 == 0 and p1 == n)
                      else contract_codes(a, und_code[sl]))
                ko = fused_scan(a, factor[sl], starts[u0:u1] - p0, g, gain, want_scan=True, want_sens=False,
                                contracts=cs)
                unit_pnl[:, u0:u1] = ko["unit_pnl"]
                unit_scan[u0:u1] = ko["unit_scan"]
                unit_worst[u0:u1] = ko["unit_worst"]
                pos_scan[sl] = ko["pos_scan"]
                pos_worst[sl] = ko["pos_worst"]
            u0 = u1
    elif has_scan or need_sens:
        u0 = 0
        while u0 < n_units:
            gcur = unit_grid[u0]
            # last unit of this chunk: same grid, positions within the chunk size (at least one unit)
            p0 = starts[u0]
            u1 = int(np.searchsorted(starts, p0 + chunk, side="right"))
            u1 = max(u1, u0 + 1)
            same = np.flatnonzero(unit_grid[u0:u1] != gcur)
            if same.size:
                u1 = u0 + int(same[0])
            p1 = starts[u1] if u1 < n_units else n
            sl = slice(p0, p1)
            a = {k: v[sl] for k, v in A.items()}
            f = factor[sl]
            if has_scan:
                g = grids[gcur]
                pnl = grid_pnl(a, g, contracts=None if contracts is None else contract_codes(a, und_code[sl]))
                pnl *= f[None, :]
                loc_starts = starts[u0:u1] - p0
                up = group_sum(pnl, loc_starts)
                unit_pnl[:, u0:u1] = up
                us, uw = scan_loss(up, g.weights, gain)
                unit_scan[u0:u1] = us
                unit_worst[u0:u1] = uw
                ps, _ = scan_loss(pnl, g.weights, gain)
                pos_scan[sl] = ps
                loc_unit = unit[sl] - u0
                pos_worst[sl] = -pnl[uw[loc_unit], np.arange(p1 - p0)] * g.weights[uw[loc_unit]]
                del pnl
            u0 = u1
    if need_sens and not (not tables and sensitivities_unused(rs)):  # figures only: Greeks no rule reads skipped
        # finite differences with the numpy kernel on both backends: the compiled erfc and scipy's
        # ndtr differ by an ulp, which a 1e-8 divisor would turn into ~1e-9 noise between backends;
        # each option contract priced once (elementwise, the same figures as position by position)
        d, gm, v = sensitivities(A, contracts=contracts)
        dlt, gam, veg = d * factor, gm * factor, np.nan_to_num(v) * factor
    P.update(revaluation_pieces(rs, A, np.asarray(underlying_names, dtype=object), factor,
                                contracts=contracts, underlying_code=und_code))
    P["unit_scan"] = unit_scan
    P["pos_scan"] = pos_scan
    P["delta"] = dlt
    P["gamma"] = gam
    shock: dict[str, NDArray[np.float64]] = {}
    unit_shock: dict[str, NDArray[np.float64]] = {}
    und_str = [str(u) for u in underlying_names]
    if "delta" in need:
        for side in ("down", "up"):
            per_side = delta_shocks(rs.components["delta"], und_str, side)
            shock[f"delta_{side}"] = per_side[und_code]
            unit_shock[f"delta_{side}"] = per_side[unit_und]
    if "gamma" in need:
        per_und = gamma_shocks(rs.components["gamma"], und_str)
        shock["gamma"] = per_und[und_code]
        unit_shock["gamma"] = per_und[unit_und]
    bucket = None
    n_buckets = 1
    if "vega" in need:
        c = rs.components["vega"]
        rule = VolShockRule(
            kind=c["kind"], up=c["shock"], short_power=c["short_power"], long_power=c["long_power"],
            pivot_days=c["pivot_days"], floor_days=c["floor_days"],
        )
        mult = rule.multiplier(A["T"])
        base = mult * (np.nan_to_num(A["vol"]) if c["kind"] == "relative" else 1.0)
        # signed vega per unit of vol shock; the shock of the losing direction is applied per unit / position
        P["vega_base"] = np.where(is_opt, veg * base, 0.0)
        for side in ("up", "down"):
            per_side = vega_shocks(c, und_str, side)
            shock[f"vega_{side}"] = per_side[und_code]
            unit_shock[f"vega_{side}"] = per_side[unit_und]
        bucket = sens.expiry_bucket(A["T"], c["bucket_days"])
        n_buckets = len(c["bucket_days"]) + 1
    P.update(contingency_pieces(
        rs, A, kinds=kinds, size=size, unit_price=unit_price, d1_price=d1_price,
        value_ccy=pr["value_ccy"].astype(float), quantity=pr["quantity"].astype(float),
        multiplier=pr["multiplier"].astype(float), factor=factor,
        currency_to_account=lambda ccy: market.fx_to_usd(ccy) / acc_fx[acc_code],
    ))
    expiry_code = None
    n_expiry = 1
    if "roll" in need:
        exp_names, expiry_code = np.unique(np.asarray(P["expiry_key"], dtype=np.int64), return_inverse=True)
        expiry_code = expiry_code.astype(np.intp).ravel()
        n_expiry = max(len(exp_names), 1)

    # ---- unit figures, requirements
    UF = _unit_figures(rs, need, P, unit, starts, n_units, unit_shock, bucket, n_buckets, expiry_code, n_expiry)
    # ---- isolated: every position alone
    PF = _position_figures(rs, need, P, shock)
    pos_im, pos_mm = unit_requirements(rs, PF, n)
    isolated = np.bincount(acc_code, weights=pos_im, minlength=n_acc)
    unit_im, unit_mm = unit_requirements(
        rs, UF, n_units, isolated_im=group_sum(pos_im, starts), isolated_mm=group_sum(pos_mm, starts)
    )

    # ---- aggregation across underlyings
    method = rs.aggregate["method"]
    direction: NDArray[np.float64] | None = None
    C = None
    if method == "sum" or n_units == 0:
        im_acc = _weighted_bincount(unit_acc, unit_im, n_acc)
        mm_acc = _weighted_bincount(unit_acc, unit_mm, n_acc)
        share = unit_im.copy()
    elif method == "correlation":
        C = correlation_matrix([str(u) for u in underlying_names], rs.aggregate["default_correlation"],
                               rs.aggregate["correlations"])
        if has_scan:
            direction = exposure_direction(
                rs, pnl=unit_pnl, spot_move=np.stack([g.spot_move for g in grids], axis=1)[:, unit_grid],
                weights=np.stack([g.weights for g in grids], axis=1)[:, unit_grid],
            )
        else:
            direction = exposure_direction(
                rs, net={k: group_sum(P[k], starts) for k in ("delta", "delta_up", "delta_down") if k in P},
                shock=unit_shock,
            )
        im_acc, share = aggregate_correlation(unit_im, unit_acc, unit_und, n_acc, C, direction)
        if rs.mm is not None:
            mm_acc, _ = aggregate_correlation(unit_mm, unit_acc, unit_und, n_acc, C, direction)
    else:  # offsets (TIMS)
        groups = np.array([rs.group_of(str(u)) for u in underlying_names], dtype=object)
        pct_of = {g: float(rs.aggregate["offsets"].get(g, 0.0)) for g in set(groups)}
        unit_group = groups[unit_und]
        pct = np.array([pct_of[g] for g in unit_group], dtype=float)
        gkey = np.where(
            pct > 0,
            pd.factorize(pd.Series(list(zip(unit_acc, unit_group))))[0],
            -1 - np.arange(n_units),
        )
        cg, _ = pd.factorize(pd.Series(gkey))
        cg = cg.astype(np.intp)
        n_cg = int(cg.max()) + 1 if cg.size else 0
        w = np.stack([g.weights for g in grids], axis=1)[:, unit_grid] if n_units else np.zeros((n_s, 0))
        g_scan, _ = offset_scan(unit_pnl, w, cg, pct, n_cg)
        cg_acc = np.zeros(n_cg, dtype=np.intp)
        cg_acc[cg] = unit_acc
        AF = {k: _weighted_bincount(unit_acc, np.where(np.isinf(v), 0.0, v), n_acc) for k, v in UF.items()}
        for k, v in UF.items():
            if np.isinf(v).any():
                AF[k] = np.where(np.bincount(unit_acc, weights=np.isinf(v).astype(float), minlength=n_acc) > 0,
                                 np.inf, AF[k])
        AF["scan"] = _weighted_bincount(cg_acc, g_scan, n_acc)
        im_acc = np.maximum(evaluate(rs.im, AF) * np.ones(n_acc), 0.0)
        if rs.mm is not None:
            mm_acc = np.maximum(evaluate(rs.mm, AF) * np.ones(n_acc), 0.0)
        tot_u = np.bincount(unit_acc, weights=unit_im, minlength=n_acc)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(tot_u[unit_acc] > 0, unit_im / tot_u[unit_acc] * im_acc[unit_acc], 0.0)
    if rs.mm is None:  # MM = mm_factor x IM (the model has exactly one of mm and mm_factor)
        assert rs.mm_factor is not None
        mm_acc = rs.mm_factor * im_acc

    # ---- tables
    acc_names_arr = np.asarray(account_names, dtype=object)
    if not tables:
        accounts = pd.DataFrame({"account": acc_names_arr, "im": im_acc, "mm": mm_acc, "isolated_im": isolated,
                                 "currency": acc_ccy})
        empty = pd.DataFrame()
        return MarginResult(accounts, empty, empty, empty, model, {})
    und_names_arr = np.asarray(underlying_names, dtype=object)
    figs = list(UF)
    labels_grid = [np.asarray(g.labels, dtype=object) for g in grids]
    if has_scan and n_units:
        unit_worst_label = np.array([labels_grid[g][s] for g, s in zip(unit_grid, unit_worst)], dtype=object)
        unit_worst_label[unit_scan <= 0] = ""  # no loss in any scenario: no worst scenario to name
    else:
        unit_worst_label = np.full(n_units, "", dtype=object)
    by_und = pd.DataFrame({"account": acc_names_arr[unit_acc], "underlying": und_names_arr[unit_und],
                           "currency": acc_ccy[unit_acc]})
    for k in figs:
        by_und[k] = np.where(np.isinf(UF[k]), np.nan, UF[k]) if k == "long_premium_cap" else UF[k]
    by_und["im"] = unit_im
    by_und["mm"] = unit_mm
    by_und["worst_scenario"] = unit_worst_label

    acc_fig = {k: np.bincount(unit_acc, weights=np.where(np.isinf(v), 0.0, v), minlength=n_acc) for k, v in UF.items()}
    if "long_premium_cap" in acc_fig:
        anyinf = np.bincount(unit_acc, weights=np.isinf(UF["long_premium_cap"]).astype(float), minlength=n_acc) > 0
        acc_fig["long_premium_cap"] = np.where(anyinf, np.nan, acc_fig["long_premium_cap"])
    # worst scenario of the account: that of its unit with the largest scan
    acc_worst = np.full(n_acc, "", dtype=object)
    if has_scan and n_units:
        o = np.lexsort((-unit_scan, unit_acc))
        first = o[np.r_[0, np.flatnonzero(np.diff(unit_acc[o])) + 1]]
        acc_worst[unit_acc[first]] = [
            f"{und_names_arr[unit_und[i]]}: {unit_worst_label[i]}" if unit_worst_label[i] else "" for i in first
        ]
    saving = isolated - im_acc
    saving = np.where(np.abs(saving) <= 1e-12 * np.maximum(np.abs(isolated), 1e-300), 0.0, saving)
    with np.errstate(invalid="ignore", divide="ignore"):
        saving_pct = np.where(isolated > 0, 100.0 * saving / np.where(isolated > 0, isolated, 1.0), 0.0)
    accounts = pd.DataFrame(
        {
            "account": acc_names_arr,
            "im": im_acc,
            "mm": mm_acc,
            "isolated_im": isolated,
            "saving": saving,
            "saving_pct": saving_pct,
            "currency": acc_ccy,
        }
    )
    for k in figs:
        accounts[k] = acc_fig[k]
    accounts["worst_scenario"] = acc_worst
    accounts["error"] = None

    # tidy rows: unit figures, unit requirements, account totals
    components = pd.concat(
        [
            component_rows(acc_names_arr[unit_acc], und_names_arr[unit_und], acc_ccy[unit_acc], UF, RULE_OF),
            component_rows(acc_names_arr[unit_acc], und_names_arr[unit_und], acc_ccy[unit_acc],
                           {"unit_im": unit_im, "unit_mm": unit_mm}, "combination"),
            component_rows(acc_names_arr, "ALL", acc_ccy, {"im": im_acc, "mm": mm_acc, "isolated_im": isolated},
                           "aggregation"),
        ],
        ignore_index=True,
    )

    if has_scan and n_units:
        wv = np.array([grids[g].weights[s] for g, s in zip(unit_grid, unit_worst)])
        worst = pd.DataFrame({
            "account": acc_names_arr[unit_acc],
            "underlying": und_names_arr[unit_und],
            "scenario": unit_worst,
            "label": unit_worst_label,
            "spot_move": [grids[g].spot_move[s] for g, s in zip(unit_grid, unit_worst)],
            "vol_dir": [int(grids[g].vol_dir[s]) for g, s in zip(unit_grid, unit_worst)],
            "weight": wv,
            "pnl": unit_pnl[unit_worst, np.arange(n_units)],
            "scan": unit_scan,
            "currency": acc_ccy[unit_acc],
        })
    else:
        worst = pd.DataFrame(columns=["account", "underlying", "scenario", "label", "spot_move", "vol_dir",
                                      "weight", "pnl", "scan", "currency"])


    internals = {
        "n": n,
        "order": order,
        "labels": labels,
        "acc_code": acc_code,
        "und_code": und_code,
        "grid_id": grid_id,
        "grids": grids,
        "arrays": A,
        "factor": factor,
        "account_names": pd.Index(account_names),
        "underlying_names": und_names_arr,
        "acc_ccy": acc_ccy,
        "unit_of": unit,
        "unit_im": unit_im,
        "unit_share": share,
        "unit_scan": unit_scan,
        "unit_pnl": unit_pnl,
        "pos_worst_pnl": pos_worst,
        "pos_iso_im": pos_im,
        "account_im": im_acc,
        "has_scan": has_scan,
        "unit_acc": unit_acc,
        "unit_und": unit_und,
        "unit_grid": unit_grid,
        # the correlation matrix and unit directions the aggregation used (explain() prints these)
        "corr": C,
        "unit_direction": np.zeros(n_units) if direction is None else direction,
    }
    internals["positions"] = pos
    internals["market"] = market
    return MarginResult(accounts, components, by_und, worst, model, internals)


