"""Scenario grids (spot moves x vol shocks, tail points at fractional weight) and full revaluation.

A :class:`ScenarioGrid` is a list of scenarios, each a relative spot move ``m`` (the forward of every
expiry and the perpetual mark move by the same factor ``1 + m``), a vol direction (+1 up, 0 unchanged,
-1 down) and a weight. The size of the vol shock of an option depends on its expiry through a
:class:`VolShockRule`::

    mult(T) = (pivot_days / max(DTE, floor_days)) ** p,   p = short_power if DTE < pivot_days else long_power
    relative:  sigma_up = sigma (1 + up mult),  sigma_down = sigma (1 - down mult)
    absolute:  sigma_up = sigma + up mult,      sigma_down = sigma - down mult
    sigma_up >= min_vol_up,  every shocked vol >= min_vol

(Deribit's portfolio-margin documentation; ``DTE = 365 T``). Tail moves are scenarios whose P&L is counted at a
fractional weight (constant, or ``weight x range / |move|`` as Deribit's extended table).

:func:`revalue` turns the position arrays of :func:`greeksmargin.risk.greeks.market_arrays` into the P&L
matrix of shape ``(n_scenarios, n_positions)``, each column in the position's **margin currency**:

* options: Black-76 on the shocked forward ``F (1 + m)``, shocked vol, same ``T`` and rate, minus the
  unshocked value from the same kernel (so the P&L is exactly 0 at ``m = 0`` and unchanged vol);
* American options (position array ``american``, :mod:`greeksmargin.risk.exercise`): the same with the
  American value (Barone-Adesi-Whaley on the spot ``F (1 + m) S/F`` and the carry of the forward) in place
  of Black-76, the base value from the same function; books without an American option never call it;
* futures (linear): ``size F m``; perpetuals: the same on the perpetual mark; spot: ``size S m``;
* coin-settled (inverse) positions, in the coin: options ``V_usd' / F' - V_usd / F``; futures and
  perpetuals ``size (1 - 1 / (1 + m))`` (Deribit's inverse-option conventions); spot coin held in its own coin: 0.
* coin-settled positions of an account margined in another currency (USD) (position array
  ``fx_moves`` True): the coin's price moves with the scenario's spot, so the account-currency P&L is the
  change of the position's coin value *at the scenario's coin price*, ``fx (V_c' (1 + m) - V_c)`` with
  ``V_c`` the coin value now and ``fx`` today's coin price. The column returned is that P&L over
  today's ``fx`` (callers multiply every column by today's conversion factor, as for the other
  positions): options ``(V_usd' - V_usd) / F`` (at zero basis the identical USD-settled option's P&L
  over ``F``), futures, perpetuals and spot coin ``size m``. Without ``fx_moves`` (or False) the coin
  P&L above.

Everything is numpy broadcasting over ``(n_scenarios, n_positions)``, computed in chunks of positions
to bound memory; there is no Python loop per position or per scenario.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from greeksmargin.risk.exercise import american_forward_price, american_mask
from greeksmargin.units import DAYS_PER_YEAR

__all__ = [
    "SHARED_MAX_RATIO",
    "VOL_STATES",
    "ScenarioGrid",
    "VolShockRule",
    "contract_codes",
    "expired_option_greeks",
    "fx_moves_of",
    "grid_pnl",
    "revalue",
    "scenario_pnl",
    "sensitivities",
]

#: vol state names and their direction codes
VOL_STATES = {"up": 1, "none": 0, "down": -1}

#: default number of positions revalued at once (bounds memory to ~ n_scenarios x CHUNK x 8 bytes x a few)
CHUNK = 50_000

Arrays = Mapping[str, NDArray[Any]]


@dataclass(frozen=True)
class VolShockRule:
    """Term-dependent implied-vol shock.

    Parameters
    ----------
    kind : {"relative", "absolute"}
        Relative: ``sigma (1 +- size mult)``; absolute: ``sigma +- size mult`` (decimal vol).
    up, down : float
        Shock sizes at the pivot (``mult = 1``): fractions of the vol (relative) or decimal vol (absolute).
    short_power, long_power : float
        Exponent ``p`` of ``mult(T) = (pivot_days / max(DTE, floor_days)) ** p`` below / from the pivot.
        Both 0 gives a flat shock.
    pivot_days : float
        Pivot of the term rule (30 days).
    floor_days : float
        Floor of DTE in the term rule (avoids an infinite shock at expiry).
    min_vol_up : float
        Floor of the shocked-up vol (Deribit ``min_volatility_for_shock_up``).
    min_vol : float
        Floor of every shocked vol (keeps a shocked-down vol positive).
    """

    kind: Literal["relative", "absolute"] = "relative"
    up: float = 0.0
    down: float = 0.0
    short_power: float = 0.0
    long_power: float = 0.0
    pivot_days: float = 30.0
    floor_days: float = 1.0
    min_vol_up: float = 0.0
    min_vol: float = 0.0

    def multiplier(self, time_to_expiry: ArrayLike) -> NDArray[np.float64]:
        """Term multiplier ``mult(T)`` (dimensionless); shape of ``time_to_expiry`` (years; NaN gives 1)."""
        t = np.asarray(time_to_expiry, dtype=float)
        dte = np.where(np.isfinite(t), t * DAYS_PER_YEAR, self.pivot_days)
        p = np.where(dte < self.pivot_days, self.short_power, self.long_power)
        return (self.pivot_days / np.maximum(dte, self.floor_days)) ** p

    def shocked(self, vol: ArrayLike, time_to_expiry: ArrayLike, direction: ArrayLike) -> NDArray[np.float64]:
        """Shocked vols.

        Parameters
        ----------
        vol : array_like of shape (n,)
            Implied vols (decimal).
        time_to_expiry : array_like of shape (n,)
            Years.
        direction : array_like of shape (n_scenarios,)
            +1 up, 0 unchanged, -1 down.

        Returns
        -------
        ndarray of shape (n_scenarios, n)
            The vol of each position in each scenario (unchanged vols are returned as given).
        """
        v = np.asarray(vol, dtype=float)[None, :]
        d = np.asarray(direction)[:, None]
        mult = self.multiplier(time_to_expiry)[None, :]
        size = np.where(d > 0, self.up, np.where(d < 0, -self.down, 0.0)) * mult
        out = v * (1.0 + size) if self.kind == "relative" else v + size
        out = np.where(d > 0, np.maximum(out, self.min_vol_up), out)
        out = np.where(d != 0, np.maximum(out, self.min_vol), out)
        return out


@dataclass(frozen=True)
class ScenarioGrid:
    """A list of scenarios: relative spot moves, vol directions and weights.

    Parameters
    ----------
    spot_move : ndarray of shape (n_scenarios,)
        Relative moves ``m`` of spot and every forward (``-0.15`` is a 15% fall).
    vol_dir : ndarray of shape (n_scenarios,)
        +1 vol up, 0 unchanged, -1 down (sizes from ``vol_rule``).
    weights : ndarray of shape (n_scenarios,)
        Weight of each scenario's P&L in the scan (1 for the core grid, a fraction for tails).
    vol_rule : VolShockRule
        The vol shock.
    labels : tuple of str
        One label per scenario, e.g. ``"-16% vol up"``.
    is_tail : ndarray of shape (n_scenarios,)
        True for tail (extended) scenarios.
    """

    spot_move: NDArray[np.float64]
    vol_dir: NDArray[np.int8]
    weights: NDArray[np.float64]
    vol_rule: VolShockRule = field(default_factory=VolShockRule)
    labels: tuple[str, ...] = ()
    is_tail: NDArray[np.bool_] | None = None

    def __post_init__(self) -> None:
        m = np.asarray(self.spot_move, dtype=float)
        d = np.asarray(self.vol_dir, dtype=np.int8)
        w = np.asarray(self.weights, dtype=float)
        if not (m.ndim == d.ndim == w.ndim == 1 and m.size == d.size == w.size):
            raise ValueError("spot_move, vol_dir and weights must be 1-d arrays of the same length")
        if np.any(m <= -1.0):
            raise ValueError("spot moves must be > -1 (a price cannot fall by 100% or more)")
        object.__setattr__(self, "spot_move", m)
        object.__setattr__(self, "vol_dir", d)
        object.__setattr__(self, "weights", w)
        if not self.labels:
            object.__setattr__(self, "labels", tuple(_label(x, y) for x, y in zip(m, d)))
        if self.is_tail is None:
            object.__setattr__(self, "is_tail", np.zeros(m.size, dtype=bool))

    @property
    def n_scenarios(self) -> int:
        """Number of scenarios."""
        return int(self.spot_move.size)

    @classmethod
    def build(
        cls,
        *,
        range_down: float,
        range_up: float | None = None,
        points_down: int = 4,
        points_up: int | None = None,
        include_zero: bool = True,
        vol_states: Sequence[str] = ("up", "none", "down"),
        tail_moves: Sequence[float] = (),
        tail_vol_states: Sequence[str] = ("up",),
        tail_weight: float = 1.0,
        tail_weight_rule: Literal["constant", "range_over_move"] = "constant",
        vol_rule: VolShockRule | None = None,
    ) -> ScenarioGrid:
        """Build an equidistant spot grid x vol states, plus tail moves.

        Parameters
        ----------
        range_down, range_up : float
            Largest fall and rise (relative, positive numbers); ``range_up`` defaults to ``range_down``.
        points_down, points_up : int
            Equidistant points on each side (4 and 4 with zero: Deribit's 9 points).
        include_zero : bool
            Whether the unchanged spot is a point (TIMS' 10 points have none).
        vol_states : sequence of {"up", "none", "down"}
            Vol states at each spot point, in this order within a point.
        tail_moves : sequence of float
            Extra relative moves (e.g. ``-0.66, 0.5``) counted at a fractional weight.
        tail_vol_states : sequence of str
            Vol states of the tail moves.
        tail_weight : float
            Weight of the tail scenarios (``constant``) or the factor of ``range / |move|``
            (``range_over_move``; range is ``range_down`` for falls and ``range_up`` for rises).
        tail_weight_rule : {"constant", "range_over_move"}
            How the tail weight is formed.
        vol_rule : VolShockRule, optional
            Vol shock (default: no shock).

        Returns
        -------
        ScenarioGrid
            Ordered by spot move ascending, vol states in the given order within a move; tails last.
        """
        range_up = range_down if range_up is None else range_up
        points_up = points_down if points_up is None else points_up
        moves = [-range_down * i / points_down for i in range(points_down, 0, -1)] if points_down else []
        if include_zero:
            moves.append(0.0)
        moves += [range_up * i / points_up for i in range(1, points_up + 1)] if points_up else []
        dirs = [VOL_STATES[s] for s in vol_states]
        m = np.repeat(np.array(moves, dtype=float), len(dirs))
        d = np.tile(np.array(dirs, dtype=np.int8), len(moves))
        w = np.ones(m.size)
        tails = np.array(sorted(tail_moves), dtype=float)
        tdirs = [VOL_STATES[s] for s in tail_vol_states]
        tm = np.repeat(tails, len(tdirs))
        td = np.tile(np.array(tdirs, dtype=np.int8), tails.size)
        if tail_weight_rule == "range_over_move":
            ref = np.where(tm < 0, range_down, range_up)
            tw = tail_weight * ref / np.abs(tm)
        else:
            tw = np.full(tm.size, float(tail_weight))
        return cls(
            spot_move=np.concatenate([m, tm]),
            vol_dir=np.concatenate([d, td]).astype(np.int8),
            weights=np.concatenate([w, tw]),
            vol_rule=vol_rule or VolShockRule(),
            is_tail=np.concatenate([np.zeros(m.size, bool), np.ones(tm.size, bool)]),
        )

    def to_frame(self) -> pd.DataFrame:
        """The grid as a table (scenario, label, spot_move, vol_dir, weight, is_tail)."""
        return pd.DataFrame(
            {
                "scenario": np.arange(self.n_scenarios),
                "label": list(self.labels),
                "spot_move": self.spot_move,
                "vol_dir": self.vol_dir,
                "weight": self.weights,
                "is_tail": self.is_tail,
            }
        )


def _label(m: float, d: int) -> str:
    vol = {1: "vol up", 0: "vol unchanged", -1: "vol down"}[int(d)]
    return f"{m * 100:+.4g}% {vol}"


def _take(a: Arrays, sl: slice | NDArray[Any]) -> dict[str, NDArray[Any]]:
    return {k: a[k][sl] for k in _FIELDS + OPTIONAL_FIELDS if k in a}


_FIELDS = ("kind_code", "is_call", "strike", "T", "forward", "spot", "vol", "rate", "size", "inverse", "perp_ratio")
#: optional position arrays read by :func:`scenario_pnl` when present
OPTIONAL_FIELDS = ("fx_moves", "american")


def fx_moves_of(arrays: Arrays) -> NDArray[np.bool_]:
    """The ``fx_moves`` flags of ``arrays`` (False for every position when absent); shape (n,)."""
    n = np.asarray(arrays["size"]).shape[0]
    v = arrays.get("fx_moves") if hasattr(arrays, "get") else None
    return np.zeros(n, dtype=bool) if v is None else np.asarray(v, dtype=bool)


def scenario_pnl(
    arrays: Arrays,
    spot_move: ArrayLike,
    vols: ArrayLike | None,
    *,
    contracts: Contracts | None = None,
) -> NDArray[np.float64]:
    """P&L of positions under given spot moves and vols, in each position's margin currency (one block).

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays (keys of :func:`greeksmargin.risk.greeks.market_arrays`: ``kind_code``, ``is_call``,
        ``strike``, ``T``, ``forward``, ``spot``, ``vol``, ``rate``, ``size``, ``inverse``, ``perp_ratio``;
        optional ``fx_moves``: coin-settled positions of an account margined in another currency; optional
        ``american``: options valued as American, module docstring).
    spot_move : array_like of shape (n_scenarios,) or (n_scenarios, n)
        Relative moves of spot and forwards (one per scenario, or one per scenario and position).
    vols : array_like of shape (n_scenarios, n) or None
        Option vols in each scenario (ignored for non-options); None keeps the current vols.
    contracts : (codes, first), optional
        Identical option contracts of ``arrays`` (:func:`contract_codes`): each is priced once and its
        P&L per unit of size taken for every position holding it (the same figures to the last bit, see
        :func:`contract_codes`). The columns of ``spot_move`` and ``vols`` must then be the same for the
        positions of one contract (functions of the contract's inputs and underlying).

    Returns
    -------
    ndarray of shape (n_scenarios, n)
        USD P&L for linear positions, coin P&L for inverse positions, and for inverse positions with
        ``fx_moves`` the account-currency P&L over today's coin price (module docstring).
    """
    m = np.asarray(spot_move, dtype=float)
    m = m[:, None] if m.ndim == 1 else m
    n = np.asarray(arrays["size"]).shape[0]
    if contracts is not None and n:
        return _pnl_by_contract(arrays, m, vols, contracts)
    if vols is not None and m.shape[1] == 1 and n:
        distinct = _distinct_scenarios(m[:, 0], np.asarray(vols, dtype=float))
        if distinct is not None:  # a scenario equal to an earlier one (e.g. a vol fall of 0) priced once
            first, inverse = distinct
            return scenario_pnl(arrays, m[first], np.asarray(vols, dtype=float)[first])[inverse]
    out = np.zeros((m.shape[0], n))
    if n == 0:
        return out
    kc = np.asarray(arrays["kind_code"])
    size = np.asarray(arrays["size"], dtype=float)
    inv = np.asarray(arrays["inverse"], dtype=bool)
    ride = inv & fx_moves_of(arrays)
    opt = kc == 0
    from greeksmargin.pricing import black76_price

    if opt.any():
        all_opt = bool(opt.all())
        idx: slice | NDArray[Any] = slice(None) if all_opt else np.flatnonzero(opt)
        f0 = np.asarray(arrays["forward"], dtype=float)[idx]
        k = np.asarray(arrays["strike"], dtype=float)[idx]
        t = np.asarray(arrays["T"], dtype=float)[idx]
        r = np.asarray(arrays["rate"], dtype=float)[idx]
        c = np.asarray(arrays["is_call"], dtype=bool)[idx]
        v0 = np.asarray(arrays["vol"], dtype=float)[idx]
        v1 = v0[None, :] if vols is None else np.asarray(vols, dtype=float)[:, idx]
        sz = size[idx]
        base = black76_price(c, f0, k, t, v0, r)
        mo = m if m.shape[1] == 1 else m[:, idx]
        f1 = f0[None, :] * (1.0 + mo)
        shape = (m.shape[0], f0.shape[0])
        # the price kernel works in place on the shape of T: give it the full (n_scenarios, n) shape
        new = black76_price(c, f1, k, np.broadcast_to(t, shape), np.broadcast_to(v1, shape), r)
        am = american_mask(arrays, idx)
        if am is not None:  # American options: their own value, now and in each scenario (module docstring)
            ratio = (f0 / np.asarray(arrays["spot"], dtype=float)[idx])[am]
            base[am] = american_forward_price(c[am], f0[am], k[am], t[am], v0[am], r[am], ratio)
            new[:, am] = american_forward_price(c[am], f1[:, am], k[am], t[am], np.broadcast_to(v1, shape)[:, am],
                                                r[am], ratio)
        iv = inv[idx]
        if iv.any():
            # coin numeraire: value in coin at the new forward minus value in coin now
            coin = (new / f1 - (base / f0)[None, :]) * sz
            usd = (new - base[None, :]) * sz
            block = np.where(iv[None, :], np.where(ride[idx][None, :], usd / f0[None, :], coin), usd)
        else:
            new -= base[None, :]
            new *= sz
            block = new
        if all_opt:
            return block
        out[:, idx] = block
    d1 = ~opt
    if d1.any():
        idx = np.flatnonzero(d1)
        ref = np.where(kc[idx] == 2, arrays["spot"][idx] * arrays["perp_ratio"][idx], arrays["forward"][idx])
        ref = np.where(kc[idx] == 3, arrays["spot"][idx], ref)
        md = m if m.shape[1] == 1 else m[:, idx]
        lin = size[idx] * ref * md
        coin = np.where(kc[idx] == 3, 0.0, size[idx]) * (md / (1.0 + md))
        coin = np.where(ride[idx][None, :], size[idx] * md, coin)
        out[:, idx] = np.where(inv[idx][None, :], coin, lin)
    return out


def _distinct_scenarios(move: NDArray[np.float64], vols: NDArray[np.float64]) -> tuple[
        NDArray[np.intp], NDArray[np.intp]] | None:
    """Scenarios of ``move`` (n_s,) and ``vols`` (n_s, n) that repeat an earlier one (bitwise), or None if none.

    Returns the first scenario of each distinct one and the distinct scenario of every scenario: their P&L
    is computed once and taken for each (elementwise pricing: the same figures).
    """
    if vols.ndim != 2 or vols.shape[0] < 2:
        return None
    n_s = move.shape[0]
    inverse = np.arange(n_s, dtype=np.intp)
    first: list[int] = []
    # equal scenarios have equal sums (bit for bit): whole rows are compared only when the sums agree
    with np.errstate(invalid="ignore", over="ignore"):
        sums = vols.sum(axis=1)  # NaN (e.g. the vol of a future): whole rows compared
    for s in range(n_s):
        for j, f in enumerate(first):
            if (move[f] == move[s] and (sums[f] == sums[s] or np.isnan(sums[f]) and np.isnan(sums[s]))
                    and np.array_equal(vols[f], vols[s], equal_nan=True)):
                inverse[s] = j
                break
        else:
            inverse[s] = len(first)
            first.append(s)
    if len(first) == n_s:
        return None
    return np.asarray(first, dtype=np.intp), inverse


#: contracts are priced once (:func:`contract_codes`) when there are at most this many per position
SHARED_MAX_RATIO = 0.5

#: ``(codes, first)`` of :func:`contract_codes`
Contracts = tuple[NDArray[np.intp], NDArray[np.intp]]

#: the position inputs that fix an option's price in every scenario (with the underlying, see contract_codes)
_CONTRACT_FIELDS = ("is_call", "strike", "T", "forward", "vol", "rate", "inverse")


def contract_codes(arrays: Arrays, group: ArrayLike | None = None) -> Contracts:
    """Group the options of ``arrays`` that are the same contract at the same market inputs.

    Two options share a code when every input of their price is bitwise equal (``is_call``, ``strike``,
    ``T``, ``forward``, ``vol``, ``rate``, ``inverse``, ``fx_moves`` and ``group``, e.g. the underlying
    code); non-options each get a code of their own. A book of many accounts holding a few hundred listed
    options is then priced per contract, not per position: :func:`scenario_pnl` with ``contracts=``
    prices each contract once (size 1) and multiplies by each position's size, the same operations in the
    same order as pricing each position, hence the same figures to the last bit. Codes come from a
    64-bit hash of the inputs, verified exactly (a hash collision only splits a contract).

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays (:func:`greeksmargin.risk.greeks.market_arrays`; optional ``fx_moves``).
    group : array_like of int, shape (n,), optional
        A further key (positions of different groups never share a code).

    Returns
    -------
    codes : ndarray of intp, shape (n,)
        Contract of each position, ``0 .. n_contracts - 1``.
    first : ndarray of intp, shape (n_contracts,)
        A position of each contract (its first).
    """
    n = np.asarray(arrays["size"]).shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    cols = [np.ascontiguousarray(arrays[k], dtype=np.float64).view(np.uint64) for k in _CONTRACT_FIELDS]
    cols.append(fx_moves_of(arrays).astype(np.uint64))
    if group is not None:
        cols.append(np.asarray(group).astype(np.int64).view(np.uint64))
    other = np.asarray(arrays["kind_code"]) != 0
    if other.any():  # non-options: a code of their own (their P&L is not priced per contract)
        cols.append(np.where(other, np.arange(1, n + 1, dtype=np.uint64), np.uint64(0)))
    h = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:  # boost-style hash combine, uint64 arithmetic wraps
            h ^= c + np.uint64(0x9E3779B97F4A7C15) + (h << np.uint64(6)) + (h >> np.uint64(2))
    codes, _ = pd.factorize(h.view(np.int64))
    codes = codes.astype(np.intp)
    first = np.full(int(codes.max()) + 1, n, dtype=np.intp)
    np.minimum.at(first, codes, np.arange(n, dtype=np.intp))
    rep = first[codes]
    same = np.ones(n, dtype=bool)
    for c in cols:
        same &= c == c[rep]
    if not same.all():  # a hash collision: the positions unlike their representative become contracts alone
        bad = np.flatnonzero(~same)
        codes[bad] = first.size + np.arange(bad.size)
        first = np.concatenate([first, bad])
    return codes, first


def grid_pnl(arrays: Arrays, grid: ScenarioGrid, *, contracts: Contracts | None = None) -> NDArray[np.float64]:
    """P&L of positions under every scenario of ``grid`` (one block; :func:`revalue` without chunks).

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays.
    grid : ScenarioGrid
        The scenarios.
    contracts : (codes, first), optional
        Identical option contracts (:func:`contract_codes`): the shocked vols and the prices of each
        contract computed once (the same figures).

    Returns
    -------
    ndarray of shape (n_scenarios, n)
        As :func:`scenario_pnl`.
    """
    if contracts is None or np.asarray(arrays["size"]).shape[0] == 0:
        vols = grid_vols(grid, arrays["vol"], arrays["T"])
        return scenario_pnl(arrays, grid.spot_move, vols)
    first = contracts[1]
    rep_vols = grid_vols(grid, np.asarray(arrays["vol"])[first], np.asarray(arrays["T"])[first])
    m = np.asarray(grid.spot_move, dtype=float)[:, None]
    return _pnl_by_contract(arrays, m, None, contracts, rep_vols=rep_vols)


def grid_vols(grid: ScenarioGrid, vol: ArrayLike, time_to_expiry: ArrayLike) -> NDArray[np.float64]:
    """``grid.vol_rule.shocked(vol, T, grid.vol_dir)``, each vol direction computed once (the same figures).

    Returns
    -------
    ndarray of shape (n_scenarios, n)
    """
    directions, inverse = np.unique(np.asarray(grid.vol_dir), return_inverse=True)
    return grid.vol_rule.shocked(vol, time_to_expiry, directions)[inverse.ravel()]


def _pnl_by_contract(arrays: Arrays, m: NDArray[np.float64], vols: ArrayLike | None,
                     contracts: Contracts, rep_vols: NDArray[np.float64] | None = None) -> NDArray[np.float64]:
    """:func:`scenario_pnl` with each option contract priced once (``m`` of shape (n_s, 1) or (n_s, n)).

    ``rep_vols`` (n_s, n_contracts): the vols of each contract, instead of ``vols`` per position.
    """
    codes, first = contracts
    n = np.asarray(arrays["size"]).shape[0]
    kc = np.asarray(arrays["kind_code"])
    size = np.asarray(arrays["size"], dtype=float)
    opt = kc == 0
    # the coin-settled options of a USD account (fx_moves) multiply by the size before dividing by F:
    # priced per position to keep the order of operations (and the figures) of scenario_pnl
    shared = opt & ~(np.asarray(arrays["inverse"], dtype=bool) & fx_moves_of(arrays))
    if rep_vols is not None:
        if not shared.any():
            return scenario_pnl(arrays, m, rep_vols[:, codes])
        v = None
    elif not shared.any():
        return scenario_pnl(arrays, m, vols)
    else:
        v = None if vols is None else np.asarray(vols, dtype=float)
    used = np.arange(first.size) if shared.all() else np.flatnonzero(
        np.bincount(codes[shared], minlength=first.size) > 0)
    rep = first[used]
    u = _take(arrays, rep)
    u["size"] = np.ones(rep.size)
    uv = rep_vols[:, used] if rep_vols is not None else (None if v is None else v[:, rep])
    table = scenario_pnl(u, m if m.shape[1] == 1 else m[:, rep], uv)
    if shared.all():
        out = table[:, codes]
        out *= size[None, :]
        return out
    slot = np.zeros(first.size, dtype=np.intp)
    slot[used] = np.arange(used.size)
    out = np.empty((m.shape[0], n))
    idx = np.flatnonzero(shared)
    out[:, idx] = table[:, slot[codes[idx]]] * size[idx][None, :]
    rest = np.flatnonzero(~shared)
    rv = rep_vols[:, codes[rest]] if rep_vols is not None else (None if v is None else v[:, rest])
    out[:, rest] = scenario_pnl(_take(arrays, rest), m if m.shape[1] == 1 else m[:, rest], rv)
    return out


def revalue(arrays: Arrays, grid: ScenarioGrid, *, chunk: int = CHUNK) -> NDArray[np.float64]:
    """Full revaluation of every position under every scenario of ``grid``.

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n_positions,)
        Position arrays from :func:`greeksmargin.risk.greeks.market_arrays`.
    grid : ScenarioGrid
        The scenarios (weights are *not* applied here).
    chunk : int
        Positions revalued at once (memory bound).

    Returns
    -------
    ndarray of shape (n_scenarios, n_positions)
        P&L of each position in each scenario, in the position's margin currency (USD for linear, the
        coin for inverse positions).
    """
    n = np.asarray(arrays["size"]).shape[0]
    out = np.empty((grid.n_scenarios, n))
    for start in range(0, n, max(1, chunk)):
        sl = slice(start, min(n, start + chunk))
        a = _take(arrays, sl)
        vols = grid.vol_rule.shocked(a["vol"], a["T"], grid.vol_dir)
        out[:, sl] = scenario_pnl(a, grid.spot_move, vols)
    return out


def sensitivities(
    arrays: Arrays, *, h_spot: float = 1e-4, h_vol: float = 1e-4, contracts: Contracts | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Delta, gamma and vega of each position in its margin currency, by central differences.

    The same revaluation kernel as :func:`revalue` is used, so coin-settled positions get their
    coin-numeraire (premium-adjusted) Greeks.

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays.
    h_spot, h_vol : float
        Relative spot step and absolute vol step.
    contracts : (codes, first), optional
        Identical option contracts (:func:`contract_codes`): each priced once (same figures).

    Returns
    -------
    delta : ndarray of shape (n,)
        Value change per 1.00 relative move (``delta_cash`` for linear positions).
    gamma : ndarray of shape (n,)
        Second derivative w.r.t. the relative move (``gamma S^2 size``; ``1e4 x gamma_cash_1pct``).
    vega : ndarray of shape (n,)
        Value change per 1.00 of vol (``100 x vega_1volpt`` for linear positions).
    """
    vol = np.asarray(arrays["vol"], dtype=float)
    vv = np.stack([vol, vol, vol + h_vol, np.maximum(vol - h_vol, 0.0)])
    p = scenario_pnl(arrays, np.array([-h_spot, h_spot, 0.0, 0.0]), vv, contracts=contracts)
    delta = (p[1] - p[0]) / (2 * h_spot)
    gamma = (p[1] + p[0]) / (h_spot * h_spot)
    vega = (p[2] - p[3]) / (2 * h_vol)
    exp, d_e, g_e, v_e = expired_option_greeks(arrays)
    if exp.any():
        delta[exp], gamma[exp], vega[exp] = d_e, g_e, v_e
    return delta, gamma, vega


def expired_option_greeks(
    arrays: Arrays,
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Delta, gamma and vega of the options at their expiry (``T <= 0``), as :func:`sensitivities` defines them.

    An option at (or past) its expiry is worth its intrinsic value ``max(w (F - K), 0)`` (``w`` +1 call,
    -1 put), the price kernels' limit: no time value, so vega 0 and the delta is the step of the pricing
    kernels (1 in the money, 0 out of it, 0.5 exactly at the money), never the finite difference across
    the kink (whose gamma would be ``~F / h``). Per 1.00 relative move: linear ``w F size step`` and
    gamma 0; coin-settled (coin value ``w (1 - K / F)`` in the money) ``w K / F size step`` and gamma
    ``-2 w K / F size step``; coin-settled with ``fx_moves`` (:func:`scenario_pnl`) ``w size step``,
    gamma 0.

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n,)
        Position arrays.

    Returns
    -------
    mask : ndarray of bool, shape (n,)
        The options with ``T <= 0``.
    delta, gamma, vega : ndarray of shape (n_expired,)
        Their Greeks (position currency, as :func:`sensitivities`).
    """
    t = np.asarray(arrays["T"], dtype=float)
    mask = (np.asarray(arrays["kind_code"]) == 0) & (np.nan_to_num(t, nan=1.0) <= 0.0)
    if not mask.any():
        z = np.zeros(0)
        return mask, z, z.copy(), z.copy()
    f = np.asarray(arrays["forward"], dtype=float)[mask]
    k = np.asarray(arrays["strike"], dtype=float)[mask]
    size = np.asarray(arrays["size"], dtype=float)[mask]
    w = np.where(np.asarray(arrays["is_call"], dtype=bool)[mask], 1.0, -1.0)
    inv = np.asarray(arrays["inverse"], dtype=bool)[mask]
    ride = inv & fx_moves_of(arrays)[mask]
    x = w * (f - k)
    step = np.where(x > 0, 1.0, np.where(x == 0, 0.5, 0.0))
    coin = inv & ~ride
    delta = np.select([ride, coin], [w * size * step, w * k / f * size * step], default=w * f * size * step)
    gamma = np.where(coin, -2.0 * w * k / f * size * step, 0.0)
    return mask, delta, gamma, np.zeros(delta.shape)
