"""Compiled (numba) scan kernel: revaluation, unit sums, worst scenario and FD Greeks in one pass.

The twin of the numpy path of :func:`greeksmargin.engine.margin.compute_margin` (``backend="numpy"``:
:func:`greeksmargin.risk.scenarios.scenario_pnl` on chunks, ``np.add.reduceat``,
:func:`~greeksmargin.risk.reduce.scan_loss`,
:func:`~greeksmargin.risk.scenarios.sensitivities`); ``tests/test_margin.py`` holds the two equal. It never
materialises the ``(n_scenarios, n_positions)`` matrix: a loop over risk units accumulates each
unit's P&L per scenario, the isolated scan of each position, the unit's worst scenario and each
position's P&L in it, and the finite-difference delta / gamma / vega.

The one compiled scan of the package: :func:`greeksmargin.risk.kernels.scan_units` (the incremental what-if's
kernel) calls it too. It is compiled twice from the same source: threaded over units for batches of at
least :data:`PARALLEL_THRESHOLD` position x scenario evaluations, serial below (a threaded launch costs
milliseconds; one what-if trade is a few microseconds of work). :func:`one_position` is the same scan for one
position, with its P&L at the revaluation Greeks' shocks, for the what-if of one trade
(:mod:`greeksmargin.engine.whatif_one`), without the kernel's array set-up.
"""

from __future__ import annotations

import math
import types
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from greeksmargin.risk.scenarios import SHARED_MAX_RATIO, fx_moves_of

if TYPE_CHECKING:
    from greeksmargin.risk.scenarios import ScenarioGrid

__all__ = ["PARALLEL_THRESHOLD", "SHARED_MAX_RATIO", "fused_scan", "one_position"]

#: below this many position x scenario evaluations the serial compilation of the kernel is used
PARALLEL_THRESHOLD = 20_000

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


@njit(cache=True, inline="always", error_model="numpy")
def _b76(call: bool, f: float, k: float, t: float, vol: float, r: float) -> float:
    w = 1.0 if call else -1.0
    ti = t if t > 0.0 else 0.0
    s = vol * math.sqrt(ti) if vol > 0.0 else 0.0
    if s > 0.0:
        d1 = math.log(f / k) / s + 0.5 * s
        d2 = d1 - s
        p = w * (f * 0.5 * math.erfc(-w * d1 * _INV_SQRT2) - k * 0.5 * math.erfc(-w * d2 * _INV_SQRT2))
    else:
        p = max(w * (f - k), 0.0)
    return p * math.exp(-r * ti)


@njit(cache=True, inline="always", error_model="numpy")
def _pnl(kind: int, call: bool, k: float, t: float, f: float, s: float, perp: float, r: float, size: float,
         inv: bool, ride: bool, base: float, m: float, vol: float) -> float:
    if kind == 0:
        f1 = f * (1.0 + m)
        new = _b76(call, f1, k, t, vol, r)
        if inv:
            if ride:  # coin price moves with the scenario (scenarios.scenario_pnl, fx_moves)
                return (new - base) / f * size
            return (new / f1 - base / f) * size
        return (new - base) * size
    if inv:
        if ride:
            return size * m
        if kind == 3:
            return 0.0
        return size * (m / (1.0 + m))
    if kind == 2:
        ref = s * perp
    elif kind == 3:
        ref = s
    else:
        ref = f
    return size * ref * m


@njit(cache=True, inline="always", error_model="numpy")
def _shock(v: float, d: int, mult: float, relative: bool, up: float, down: float, min_up: float,
           min_vol: float) -> float:
    if d == 0:
        return v
    size = up * mult if d > 0 else -down * mult
    out = v * (1.0 + size) if relative else v + size
    if d > 0 and out < min_up:
        out = min_up
    if out < min_vol:
        out = min_vol
    return out


@njit(cache=True, inline="always", error_model="numpy")
def _b76_fast(w: float, f1: float, k: float, lfk: float, sig: float, disc: float) -> float:
    """Black-76 with precomputed ``lfk = ln(F1/K)``, ``sig = vol sqrt(T)``, ``disc = exp(-rT)``."""
    if sig > 0.0:
        d1 = lfk / sig + 0.5 * sig
        d2 = d1 - sig
        p = w * (f1 * 0.5 * math.erfc(-w * d1 * _INV_SQRT2) - k * 0.5 * math.erfc(-w * d2 * _INV_SQRT2))
    else:
        p = max(w * (f1 - k), 0.0)
    return p * disc


@njit(cache=True, inline="always", error_model="numpy")
def _option_setup(call: bool, k: float, t: float, f: float, vol: float, r: float, mult: float, relative: bool,
                  up: float, down: float, min_up: float, min_vol: float) -> tuple[float, float, float, float, float,
                                                                                   float, float]:
    """What every scan scenario of one option shares.

    ``(w, ln(F/K), exp(-rT), sigma sqrt(T)`` unchanged, up and down, ``Black-76 now)``: one set of operations for
    the position kernel, the contract tables and the one-trade what-if (their figures bitwise equal).
    """
    w = 1.0 if call else -1.0
    ti = t if t > 0.0 else 0.0
    sq = math.sqrt(ti)
    disc = math.exp(-r * ti)
    lfk = math.log(f / k)
    v0 = vol if vol > 0.0 else 0.0
    sig0 = v0 * sq
    vu = _shock(vol, 1, mult, relative, up, down, min_up, min_vol)
    vd = _shock(vol, -1, mult, relative, up, down, min_up, min_vol)
    sig_u = (vu if vu > 0.0 else 0.0) * sq
    sig_d = (vd if vd > 0.0 else 0.0) * sq
    return w, lfk, disc, sig0, sig_u, sig_d, _b76_fast(w, f, k, lfk, sig0, disc)


@njit(cache=True, inline="always", error_model="numpy")
def _option_scenario(w: float, f: float, k: float, lfk: float, disc: float, sig0: float, sig_u: float,
                     sig_d: float, base: float, inv: bool, ride: bool, move: float, log1p_move: float,
                     d: int) -> float:
    """P&L of one unit of size of an option in one scan scenario (spot ``move``, vol direction ``d``).

    Before size x factor; coin-settled in coin (riding the scenario's coin price: at today's coin price).
    """
    sig = sig_u if d > 0 else (sig_d if d < 0 else sig0)
    f1 = f * (1.0 + move)
    new = _b76_fast(w, f1, k, lfk + log1p_move, sig, disc)
    if inv and ride:
        return (new - base) / f
    if inv:
        return new / f1 - base / f
    return new - base


def _kernel_py(kind, call, k, t, f, s, perp, vol, r, size, inv, ride, factor, mult,  # noqa: ANN001
            moves, dirs, weights, relative, up, down, min_up, min_vol, gain,
            starts, want_scan, want_sens, h_spot, h_vol,
            unit_pnl, pos_scan, pos_worst, unit_scan, unit_worst, dlt, gam, veg):
    n_units = starts.shape[0] - 1
    n_s = moves.shape[0]
    lm = np.empty(n_s)
    for j in range(n_s):
        lm[j] = math.log1p(moves[j])
    for u in prange(n_units):
        a = starts[u]
        b = starts[u + 1]
        acc = np.zeros(n_s)
        pj = np.empty(n_s)
        for i in range(a, b):
            fi = factor[i]
            ki = kind[i]
            if ki == 0:
                w, lfk, disc, sig0, sig_u, sig_d, base = _option_setup(call[i], k[i], t[i], f[i], vol[i], r[i],
                                                                       mult[i], relative, up, down, min_up, min_vol)
                for j in range(n_s):
                    pj[j] = _option_scenario(w, f[i], k[i], lfk, disc, sig0, sig_u, sig_d, base, inv[i], ride[i],
                                             moves[j], lm[j], dirs[j]) * size[i] * fi
            else:
                base = 0.0
                for j in range(n_s):
                    pj[j] = _pnl(ki, False, 1.0, 0.0, f[i], s[i], perp[i], 0.0, size[i], inv[i], ride[i], 0.0,
                                 moves[j], 0.0) * fi
            if want_scan:
                worst = 0.0
                for j in range(n_s):
                    p = pj[j]
                    acc[j] += p
                    q = (p * gain if p > 0.0 else p) * weights[j]
                    if q < worst:
                        worst = q
                pos_scan[i] = -worst
            if want_sens:
                pm = _pnl(ki, call[i], k[i], t[i], f[i], s[i], perp[i], r[i], size[i], inv[i], ride[i], base,
                          -h_spot, vol[i])
                pp = _pnl(ki, call[i], k[i], t[i], f[i], s[i], perp[i], r[i], size[i], inv[i], ride[i], base,
                          h_spot, vol[i])
                dlt[i] = (pp - pm) / (2.0 * h_spot) * fi
                gam[i] = (pp + pm) / (h_spot * h_spot) * fi
                if ki == 0:
                    pu = _pnl(0, call[i], k[i], t[i], f[i], s[i], perp[i], r[i], size[i], inv[i], ride[i], base, 0.0,
                              vol[i] + h_vol)
                    pdn = _pnl(0, call[i], k[i], t[i], f[i], s[i], perp[i], r[i], size[i], inv[i], ride[i], base, 0.0,
                               max(vol[i] - h_vol, 0.0))
                    veg[i] = (pu - pdn) / (2.0 * h_vol) * fi
                else:
                    veg[i] = 0.0
        if want_scan:
            best = 0
            bq = 0.0
            for j in range(n_s):
                unit_pnl[j, u] = acc[j]
                q = (acc[j] * gain if acc[j] > 0.0 else acc[j]) * weights[j]
                if j == 0 or q < bq:
                    bq = q
                    best = j
            unit_worst[u] = best
            unit_scan[u] = -bq if bq < 0.0 else 0.0
            m = moves[best]
            for i in range(a, b):
                base = _b76(call[i], f[i], k[i], t[i], vol[i], r[i]) if kind[i] == 0 else 0.0
                vj = _shock(vol[i], dirs[best], mult[i], relative, up, down, min_up, min_vol)
                p = _pnl(kind[i], call[i], k[i], t[i], f[i], s[i], perp[i], r[i], size[i], inv[i], ride[i], base, m, vj)
                pos_worst[i] = -p * factor[i] * weights[best]


def _tables_py(call, k, t, f, vol, r, inv, ride, mult, moves, dirs, relative, up, down, min_up,  # noqa: ANN001
               min_vol, tab, tab_w):
    # per option contract and scenario, the P&L of one unit of size at factor 1, by the very operations of
    # _kernel_py (tab: the scan's; tab_w: the worst-scenario pass's), so that tab x size x factor is
    # bitwise the P&L _kernel_py computes position by position
    n_c = k.shape[0]
    n_s = moves.shape[0]
    lm = np.empty(n_s)
    for j in range(n_s):
        lm[j] = math.log1p(moves[j])
    for c in prange(n_c):
        w, lfk, disc, sig0, sig_u, sig_d, base = _option_setup(call[c], k[c], t[c], f[c], vol[c], r[c], mult[c],
                                                               relative, up, down, min_up, min_vol)
        base_w = _b76(call[c], f[c], k[c], t[c], vol[c], r[c])
        for j in range(n_s):
            d = dirs[j]
            tab[c, j] = _option_scenario(w, f[c], k[c], lfk, disc, sig0, sig_u, sig_d, base, inv[c], ride[c],
                                         moves[j], lm[j], d)
            vj = _shock(vol[c], d, mult[c], relative, up, down, min_up, min_vol)
            tab_w[c, j] = _pnl(0, call[c], k[c], t[c], f[c], 0.0, 1.0, r[c], 1.0, inv[c], ride[c], base_w,
                               moves[j], vj)


def _gather_py(kind, code, f, s, perp, size, inv, ride, factor, tab, tab_w,  # noqa: ANN001
               moves, weights, gain, starts, unit_pnl, pos_scan, pos_worst, unit_scan, unit_worst):
    # _kernel_py's scan (want_scan, no sensitivities) with each option's P&L read from its contract's row
    n_units = starts.shape[0] - 1
    n_s = moves.shape[0]
    for u in prange(n_units):
        a = starts[u]
        b = starts[u + 1]
        acc = np.zeros(n_s)
        pj = np.empty(n_s)
        for i in range(a, b):
            fi = factor[i]
            ki = kind[i]
            if ki == 0:
                ci = code[i]
                for j in range(n_s):
                    pj[j] = tab[ci, j] * size[i] * fi
            else:
                for j in range(n_s):
                    pj[j] = _pnl(ki, False, 1.0, 0.0, f[i], s[i], perp[i], 0.0, size[i], inv[i], ride[i], 0.0,
                                 moves[j], 0.0) * fi
            worst = 0.0
            for j in range(n_s):
                p = pj[j]
                acc[j] += p
                q = (p * gain if p > 0.0 else p) * weights[j]
                if q < worst:
                    worst = q
            pos_scan[i] = -worst
        best = 0
        bq = 0.0
        for j in range(n_s):
            unit_pnl[j, u] = acc[j]
            q = (acc[j] * gain if acc[j] > 0.0 else acc[j]) * weights[j]
            if j == 0 or q < bq:
                bq = q
                best = j
        unit_worst[u] = best
        unit_scan[u] = -bq if bq < 0.0 else 0.0
        m = moves[best]
        for i in range(a, b):
            if kind[i] == 0:
                p = tab_w[code[i], best] * size[i]
            else:
                p = _pnl(kind[i], False, 1.0, 0.0, f[i], s[i], perp[i], 0.0, size[i], inv[i], ride[i], 0.0, m, 0.0)
            pos_worst[i] = -p * factor[i] * weights[best]


@njit(cache=True, error_model="numpy")
def one_position(kind, call, k, t, f, s, perp, vol, r, size, inv, ride, factor, mult,  # noqa: ANN001, ANN201
                 moves, dirs, relative, up, down, min_up, min_vol, rmoves, rvols, scan_out, rev_out):
    """One position (one what-if trade): its scan P&L and its P&L at given (move, vol) points, compiled.

    ``scan_out[j]`` (shape (n_scenarios,)) is the P&L of the position in scenario ``j`` by the very
    operations of :func:`_kernel_py` (inputs prepared as :func:`fused_scan` does: strike NaN -> 1, T NaN
    -> 0, vol NaN -> 0; ``mult`` the grid's term multiplier of the position), so it equals the unit P&L
    that kernel gives for this position alone, bitwise. ``rev_out[j]`` (shape (n_points,)) is the P&L at the
    relative move ``rmoves[j]`` with the option's vol ``rvols[j]``, by the formulas of
    :func:`greeksmargin.risk.scenarios.scenario_pnl` (Black-76 at ``F (1 + m)`` minus Black-76 now; coin
    and coin-riding conversions; delta-one ``size ref m``), times ``factor``: the revaluation Greeks'
    pieces (:func:`greeksmargin.engine.house_pieces.revaluation_pieces`).
    """
    n_s = moves.shape[0]
    n_r = rmoves.shape[0]
    if kind == 0:
        w, lfk, disc, sig0, sig_u, sig_d, base = _option_setup(call, k, t, f, vol, r, mult, relative, up, down,
                                                               min_up, min_vol)
        for j in range(n_s):
            scan_out[j] = _option_scenario(w, f, k, lfk, disc, sig0, sig_u, sig_d, base, inv, ride, moves[j],
                                           math.log1p(moves[j]), dirs[j]) * size * factor
        b0 = _b76(call, f, k, t, vol, r)
        for j in range(n_r):
            f1 = f * (1.0 + rmoves[j])
            new = _b76(call, f1, k, t, rvols[j], r)
            if inv and ride:
                p = (new - b0) * size / f
            elif inv:
                p = (new / f1 - b0 / f) * size
            else:
                p = (new - b0) * size
            rev_out[j] = p * factor
    else:
        for j in range(n_s):
            scan_out[j] = _pnl(kind, False, 1.0, 0.0, f, s, perp, 0.0, size, inv, ride, 0.0, moves[j], 0.0) * factor
        for j in range(n_r):
            rev_out[j] = _pnl(kind, False, 1.0, 0.0, f, s, perp, 0.0, size, inv, ride, 0.0, rmoves[j], 0.0) * factor


def _renamed(fn: Any, name: str) -> Any:
    """A copy of ``fn`` under another name (its own on-disk numba cache).

    numba keys the cache by the function's qualified name, not by the compile flags: two compilations of
    one function object load each other's machine code (the threaded one ran serially).
    """
    g = types.FunctionType(fn.__code__, fn.__globals__, name, fn.__defaults__, fn.__closure__)
    g.__qualname__ = name
    return g


#: the same kernel threaded over units (``prange``) and serial (``prange`` runs as ``range``)
_kernel_parallel = njit(cache=True, parallel=True, error_model="numpy")(_renamed(_kernel_py, "_kernel_parallel"))
_kernel_serial = njit(cache=True, error_model="numpy")(_renamed(_kernel_py, "_kernel_serial"))
#: the contract tables and the scan reading them (one option contract held by many positions priced once)
_tables = njit(cache=True, parallel=True, error_model="numpy")(_renamed(_tables_py, "_tables"))
_gather = njit(cache=True, parallel=True, error_model="numpy")(_renamed(_gather_py, "_gather"))


def fused_scan(
    arrays: dict[str, NDArray],
    factor: NDArray[np.float64],
    starts: NDArray[np.intp],
    grid: ScenarioGrid,
    gain_offset: float,
    *,
    want_scan: bool = True,
    want_sens: bool = True,
    h_spot: float = 1e-4,
    h_vol: float = 1e-4,
    contracts: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None,
) -> dict[str, NDArray]:
    """Scan and FD Greeks of positions sorted by unit (all of one scenario grid), compiled.

    Parameters
    ----------
    arrays : dict of str -> ndarray of shape (n,)
        Position arrays (``kind_code``, ``is_call``, ``strike``, ``T``, ``forward``, ``spot``, ``perp_ratio``,
        ``vol``, ``rate``, ``size``, ``inverse``; optional ``fx_moves``, as
        :func:`greeksmargin.risk.scenarios.scenario_pnl`).
    factor : ndarray of shape (n,)
        Position currency -> account currency.
    starts : ndarray of shape (n_units,)
        First position of each unit (increasing, from 0).
    grid : ScenarioGrid
        The scenarios.
    gain_offset : float
        Factor on gains in the scan.
    want_scan, want_sens : bool
        Compute the scan outputs / the FD Greeks.
    h_spot, h_vol : float
        Finite-difference steps (as :func:`greeksmargin.risk.scenarios.sensitivities`).
    contracts : (codes, first), optional
        Identical option contracts of ``arrays`` (:func:`greeksmargin.risk.scenarios.contract_codes`). With
        ``want_sens=False`` and at most :data:`SHARED_MAX_RATIO` contracts per option position, each
        contract is revalued once (a table contract x scenario) and the scan reads its row: the same
        figures to the last bit.

    Returns
    -------
    dict
        ``unit_pnl`` (n_scenarios, n_units), ``pos_scan`` (n,), ``pos_worst`` (n,) weighted loss of each
        position in its unit's worst scenario, ``unit_scan`` (n_units,), ``unit_worst`` (n_units,), and
        ``delta``, ``gamma``, ``vega`` (n,) in the account currency.
    """
    n = factor.shape[0]
    n_units = starts.shape[0]
    rule = grid.vol_rule
    moves = np.ascontiguousarray(grid.spot_move, dtype=np.float64)
    out = {
        "unit_pnl": np.zeros((moves.size, n_units)),
        "pos_scan": np.zeros(n),
        "pos_worst": np.zeros(n),
        "unit_scan": np.zeros(n_units),
        "unit_worst": np.zeros(n_units, dtype=np.intp),
        "delta": np.zeros(n),
        "gamma": np.zeros(n),
        "vega": np.zeros(n),
    }
    if n == 0:
        return out
    st = np.append(np.asarray(starts, dtype=np.int64), n)
    vol = np.nan_to_num(np.asarray(arrays["vol"], dtype=np.float64), nan=0.0)
    mult = rule.multiplier(arrays["T"]).astype(np.float64)
    c = np.ascontiguousarray
    if contracts is not None and want_scan and not want_sens:
        codes, first = contracts
        kind = c(arrays["kind_code"], dtype=np.int64)
        opt = kind == 0
        used = np.flatnonzero(np.bincount(codes[opt], minlength=first.size) > 0)
        if used.size <= SHARED_MAX_RATIO * max(int(opt.sum()), 1):
            rep = first[used]
            slot = np.full(first.size, -1, dtype=np.int64)
            slot[used] = np.arange(used.size)
            tab = np.empty((used.size, moves.size))
            tab_w = np.empty((used.size, moves.size))
            ride = c(fx_moves_of(arrays), dtype=np.bool_)
            inv = c(arrays["inverse"], dtype=np.bool_)
            _tables(
                c(np.asarray(arrays["is_call"])[rep], dtype=np.bool_),
                c(np.nan_to_num(np.asarray(arrays["strike"])[rep], nan=1.0), dtype=np.float64),
                c(np.nan_to_num(np.asarray(arrays["T"])[rep], nan=0.0), dtype=np.float64),
                c(np.asarray(arrays["forward"])[rep], dtype=np.float64), vol[rep],
                c(np.asarray(arrays["rate"])[rep], dtype=np.float64), inv[rep], ride[rep], mult[rep],
                moves, c(grid.vol_dir, dtype=np.int64), rule.kind == "relative", float(rule.up), float(rule.down),
                float(rule.min_vol_up), float(rule.min_vol), tab, tab_w,
            )
            _gather(
                kind, c(slot[codes]), c(arrays["forward"], dtype=np.float64), c(arrays["spot"], dtype=np.float64),
                c(arrays["perp_ratio"], dtype=np.float64), c(arrays["size"], dtype=np.float64), inv, ride,
                c(factor, dtype=np.float64), tab, tab_w, moves, c(grid.weights, dtype=np.float64),
                float(gain_offset), st, out["unit_pnl"], out["pos_scan"], out["pos_worst"], out["unit_scan"],
                out["unit_worst"],
            )
            return out
    kernel = _kernel_parallel if n * max(moves.size, 4) >= PARALLEL_THRESHOLD else _kernel_serial
    kernel(
        c(arrays["kind_code"], dtype=np.int64), c(arrays["is_call"], dtype=np.bool_),
        c(np.nan_to_num(arrays["strike"], nan=1.0), dtype=np.float64), c(np.nan_to_num(arrays["T"], nan=0.0)),
        c(arrays["forward"], dtype=np.float64), c(arrays["spot"], dtype=np.float64),
        c(arrays["perp_ratio"], dtype=np.float64), vol, c(arrays["rate"], dtype=np.float64),
        c(arrays["size"], dtype=np.float64), c(arrays["inverse"], dtype=np.bool_),
        c(fx_moves_of(arrays), dtype=np.bool_), c(factor, dtype=np.float64), mult,
        moves, c(grid.vol_dir, dtype=np.int64), c(grid.weights, dtype=np.float64),
        rule.kind == "relative", float(rule.up), float(rule.down), float(rule.min_vol_up), float(rule.min_vol),
        float(gain_offset), st, want_scan, want_sens, float(h_spot), float(h_vol),
        out["unit_pnl"], out["pos_scan"], out["pos_worst"], out["unit_scan"], out["unit_worst"],
        out["delta"], out["gamma"], out["vega"],
    )
    return out
