"""Solvency: equity against maintenance margin, margin ratio, status and distance to liquidation.

Definitions (per account, in its margin currency)
-------------------------------------------------
* **Margin currency**: the coin when every position of the account is coin-settled (``inverse``) on
  the same coin (``BTC``, ``ETH``), else ``USD`` (an account without positions: ``USD``).
* **Mark-to-market of the positions** ``mtm``: options and spot at their value (Black-76 price x size;
  coin-settled options in the coin, Deribit's ``C_usd(F) / F``). Futures and perpetuals carry no
  premium: their unrealised P&L up to the valuation time is assumed already settled into the collateral
  (exchanges settle variation margin), so they count 0 today and only their P&L from today's price
  ``(F' - F) x size`` (linear) or ``size x (1 - F / F')`` coin (inverse) counts in a moved market.
* **Equity** ``equity = collateral after MM haircuts + mtm`` (compared with MM) and
  ``equity_im = collateral after IM haircuts + mtm`` (compared with IM); without haircuts (USD, USDC, the
  account's own coin) both equal ``collateral + mtm``.
* **Available funds** ``= equity_im - IM``; **excess** ``= equity - MM``; **margin ratio**
  ``= MM / equity`` (``inf`` when equity <= 0; 1.0 means at MM).
* **Status** (first that applies): ``error`` (a position the market cannot price), ``bankrupt``
  (equity <= 0: no margin figure needed), ``not_computed`` (the margin model does not cover a position
  of the account, e.g. SPX under ``deribit-pm``: IM, MM, margin ratio and available funds are null with
  the ``reason``; such an account is never called healthy), ``below_mm`` (equity < MM and not at the
  boundary), ``below_im`` (equity_im < IM), ``healthy``.
* **Boundary rule**: ``at_mm`` is True when ``|equity - MM| <= AT_MM_RTOL x max(|equity|, |MM|)``
  (1e-9 relative). An account at the boundary meets MM: it is not ``below_mm`` and is not liquidated
  (exchanges liquidate when equity < MM, i.e. margin ratio > 100%).

Moved markets
-------------
A *move* is a relative spot move per underlying (``{"BTC": -0.2}``): spot, listed forwards and the
perpetual mark scale by ``1 + m``; collateral linked to the underlying moves too
(:mod:`greeksmargin.book.collateral`); implied vols react by the model's own vol-shock rule
(:class:`VolReaction`): ``sigma' = sigma + min(|m| / R, 1) x (sigma_up(sigma, T) - sigma)`` with ``R`` the
largest core move of the model's scenario grid for the underlying and ``sigma_up`` the model's
term-dependent "vol up" scenario, sticky strike (the vol of each held instrument is moved; the surface
slices too). Vol rises for moves in either direction: conservative for option sellers, who are the
accounts that get liquidated. MM is recomputed at the moved market by the margin model (full
revaluation), never from Greeks.

Distance to liquidation
-----------------------
For each account and each underlying alone (and all underlyings together, ``"ALL"``), the smallest
adverse relative move at which ``equity(m) = MM(m)``, by root finding on full revaluation. Shared
moves of a grid (:data:`MOVE_GRID`, both directions, up to ``max_move`` = 90%) bracket each account's first sign
change of ``equity - MM``; then a lock-step Illinois (modified regula falsi) iteration runs on every
account at once, each at its own trial move: one batched evaluation per iteration, in which each
account sees its own moved market (:meth:`BookValuer.gap`; the margin engine runs once on per-position moved
inputs, :func:`margin_function`), until ``|equity - MM| <= 1e-9 x max(|equity|, |MM|)``
(``method = "root"``). The nearer of the two directions is reported with its price level; no crossing
within +-90% gives NaN and the reason ``"no such move within +-90%"``, an account already below MM
gives 0 and ``"already below MM"``.

Failures
--------
An account with a position the market cannot price (underlying absent, option without vol, expired
contract) gets a row with its ``error`` and no figures (status ``"error"``); the other accounts are
computed (:class:`BookValuer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.book import Book as ValidatedBook
from greeksmargin.book.market import MarketSnapshot
from greeksmargin.book.positions import account_currency
from greeksmargin.errors import InputError
from greeksmargin.solvency.book import BookValuer, VolReaction, book_inputs, shift_market
from greeksmargin.solvency.margin_fn import (
    AT_MM_RTOL,
    BRACKET_REASON,
    MOVE_GRID,
    NO_MOVE_REASON,
    NOT_COMPUTED,
    STATUSES,
    MarginFn,
    margin_function,
    simple_scan_margin,
)
from greeksmargin.solvency.shared_grid import BATCH as SHARED_BATCH
from greeksmargin.solvency.shared_grid import shared_gap

__all__ = [
    "AT_MM_RTOL",
    "MOVE_GRID",
    "STATUSES",
    "BookValuer",
    "MarginFn",
    "SolvencyResult",
    "VolReaction",
    "account_currency",
    "assess_solvency",
    "distance_to_liquidation",
    "margin_function",
    "shift_market",
    "simple_scan_margin",
]

#: relative tolerance of the "at MM" boundary

# ----------------------------------------------------------------------------------------- solvency
@dataclass
class SolvencyResult:
    """Solvency of every account (see the module docstring for the definitions).

    Attributes
    ----------
    accounts : DataFrame
        One row per account: ``account``, ``currency``, ``collateral``, ``collateral_mm``, ``mtm``,
        ``equity``, ``equity_im``, ``im``, ``mm``, ``available_funds``, ``excess``, ``margin_ratio``,
        ``status``, ``at_mm``, ``equity_usd``, ``mm_usd``, ``im_usd``, ``n_positions``, ``error`` (an
        account the market cannot price: status ``"error"``, the reason, NaN figures).
    distance : DataFrame or None
        Distance to liquidation (see :func:`distance_to_liquidation`), when computed.
    moves : dict
        The market moves the figures are at (empty: today's market).
    """

    accounts: pd.DataFrame
    distance: pd.DataFrame | None = None
    moves: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Counts per status and totals in USD."""
        a = self.accounts
        return {
            "accounts": len(a),
            **{f"n_{s}": int((a["status"] == s).sum()) for s in STATUSES},
            "n_error": int((a["status"] == "error").sum()),
            "n_not_computed": int((a["status"] == NOT_COMPUTED).sum()),
            "n_at_mm": int(a["at_mm"].sum()),
            "equity_usd": float(a["equity_usd"].sum()),
            "im_usd": float(a["im_usd"].sum()),
            "mm_usd": float(a["mm_usd"].sum()),
        }


def classify(equity: Any, equity_im: Any, im: Any, mm: Any) -> tuple[NDArray[Any], NDArray[np.bool_]]:
    """Status and boundary flag per account (rules in the module docstring).

    Parameters
    ----------
    equity, equity_im, im, mm : array_like of shape (n,)
        Equity (MM haircuts), equity (IM haircuts), IM, MM in one currency.

    Returns
    -------
    status : ndarray of str, shape (n,)
    at_mm : ndarray of bool, shape (n,)
    """
    e = np.asarray(equity, dtype=float)
    ei = np.asarray(equity_im, dtype=float)
    im_ = np.asarray(im, dtype=float)
    mm_ = np.asarray(mm, dtype=float)
    at_mm = np.abs(e - mm_) <= AT_MM_RTOL * np.maximum(np.abs(e), np.abs(mm_))
    status = np.full(e.shape, "healthy", dtype=object)
    status = np.where(ei < im_, "below_im", status)
    status = np.where((e < mm_) & ~at_mm, "below_mm", status)
    status = np.where(e <= 0, "bankrupt", status)
    return status, at_mm


def liquidatable(equity: Any, mm: Any) -> NDArray[np.bool_]:
    """True where an account must be liquidated: equity <= 0, or equity < MM outside the boundary."""
    e = np.asarray(equity, dtype=float)
    m = np.asarray(mm, dtype=float)
    at_mm = np.abs(e - m) <= AT_MM_RTOL * np.maximum(np.abs(e), np.abs(m))
    return (e <= 0) | ((e < m) & ~at_mm)


def finish_state(st: pd.DataFrame) -> pd.DataFrame:
    """Add available funds, excess, margin ratio, status, at_mm and USD columns to a :meth:`BookValuer.state`."""
    out = st.copy()
    status, at_mm = classify(out["equity"], out["equity_im"], out["im"], out["mm"])
    failed = out["error"].fillna("").astype(str).to_numpy() != ""
    nc_reason = (out["not_computed"].fillna("").astype(str).to_numpy() if "not_computed" in out.columns
                 else np.full(len(out), "", dtype=object))
    bankrupt = out["equity"].to_numpy(dtype=float) <= 0  # needs no margin figure
    # the engine's post-condition, for any margin function: a computed account has finite IM and MM with
    # 0 <= MM <= IM (greeksmargin.engine.postcondition); otherwise it is not computed, never healthy
    im_ = out["im"].to_numpy(dtype=float)
    mm_ = out["mm"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        broken = ~failed & (nc_reason == "") & ~(np.isfinite(im_) & np.isfinite(mm_) & (mm_ >= 0)
                                                 & (mm_ <= im_ + 1e-12 * np.maximum(1.0, np.abs(im_))))
    if broken.any():
        nc_reason = nc_reason.astype(object)
        nc_reason[broken] = [f"post-condition: IM {a!r} / MM {b!r} (needs finite 0 <= MM <= IM)"
                             for a, b in zip(im_[broken], mm_[broken])]
    nc = ~failed & (nc_reason != "")
    status = np.where(failed, "error", np.where(nc & ~bankrupt, "not_computed", status))
    at_mm = at_mm & ~failed & ~nc
    out["reason"] = np.where(failed, out["error"].fillna("").astype(str).to_numpy(), nc_reason)
    out["available_funds"] = out["equity_im"] - out["im"]
    out["excess"] = out["equity"] - out["mm"]
    e = out["equity"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["margin_ratio"] = np.where(failed | nc, np.nan,
                                       np.where(e > 0, out["mm"].to_numpy(dtype=float) / e, np.inf))
    out["status"] = status
    out["at_mm"] = at_mm
    for k in ("equity", "im", "mm"):
        out[f"{k}_usd"] = out[k] * out["fx"]
    cols = ["currency", "collateral", "collateral_mm", "mtm", "equity", "equity_im", "im", "mm",
            "available_funds", "excess", "margin_ratio", "status", "at_mm", "equity_usd", "im_usd", "mm_usd",
            "n_positions", "error", "reason"]
    return out[cols].reset_index()


def assess_solvency(
    positions: Any,
    market: MarketSnapshot | None = None,
    collateral: pd.DataFrame | None = None,
    model: Any = "greeks-default",
    *,
    margin_fn: MarginFn | None = None,
    moves: Mapping[str, float] | None = None,
    distance: bool = False,
    vol_reaction: VolReaction | None = None,
    no_collateral: bool = False,
    **distance_kw: Any,
) -> SolvencyResult:
    """Equity, IM, MM, margin ratio and status of every account; optionally the distance to liquidation.

    Parameters
    ----------
    positions : BookValuer or DataFrame
        A validated Book (:func:`greeksmargin.load_book`; trusted, with its market and collateral), or
        positions (schema of :mod:`greeksmargin.book.positions`; validated here once).
    market : MarketSnapshot, optional
        Today's market (None with a Book).
    collateral : DataFrame or None
        Collateral table (:func:`~greeksmargin.book.collateral.load_collateral`: ``account, asset, amount``
        suffice, a missing price comes from the market; default: the Book's). None is an error unless
        ``no_collateral=True`` (equity would silently be the mark-to-market alone).
    model : str, Path or Model
        Margin model (ignored when ``margin_fn`` is given).
    margin_fn : MarginFn, optional
        Margin function (default: :func:`margin_function` (model)).
    no_collateral : bool, default False
        Assess without collateral on purpose: equity = mark-to-market of the positions only.
    moves : mapping of str -> float, optional
        Evaluate at a moved market (relative spot moves per underlying): the accounts table and the
        distance to liquidation (measured from the moved market) are both at it.
    distance : bool
        Also compute :func:`distance_to_liquidation`.
    vol_reaction : VolReaction, optional
        Vol reaction (default: the model's, :meth:`VolReaction.from_model`).
    **distance_kw
        Passed to :func:`distance_to_liquidation`.

    Returns
    -------
    SolvencyResult
    """
    positions, market, collateral = book_inputs(positions, market, collateral)
    if collateral is None and not no_collateral:
        raise InputError("no collateral given: pass the accounts' collateral table, or no_collateral=True to "
                         "assess with equity = mark-to-market only", column="collateral")
    fn = margin_fn or margin_function(model)
    vr = vol_reaction or VolReaction.from_model(model if margin_fn is None else None, market.underlyings)
    book = BookValuer(positions, market, collateral, fn, vol_reaction=vr)
    st = finish_state(book.state(dict(moves or {})))
    dist = None
    if distance:
        distance_kw.setdefault("base_moves", dict(moves or {}))
        dist = distance_to_liquidation(book, **distance_kw)
    return SolvencyResult(accounts=st, distance=dist, moves=dict(moves or {}))


# -------------------------------------------------------------------------------- distance to liquidation
def _gap(st: pd.DataFrame) -> NDArray[np.float64]:
    """Equity minus MM per account."""
    e = st["equity"].to_numpy(dtype=float)
    m = st["mm"].to_numpy(dtype=float)
    return e - m


def distance_to_liquidation(
    book: BookValuer,
    *,
    underlyings: Sequence[str] | None = None,
    include_all: bool = True,
    max_move: float = 0.9,
    grid: NDArray[np.float64] | None = None,
    rtol: float = 1e-9,
    xtol: float = 4 * np.finfo(float).eps,
    max_iter: int = 100,
    base_moves: Mapping[str, float] | None = None,
    model: Any = "greeks-default",
) -> pd.DataFrame:
    """Smallest adverse move of each underlying (and of all together) that brings equity to MM.

    For every target (an underlying alone, or ``"ALL"``) and direction: the shared moves of ``grid``
    bracket each account's first sign change of ``equity - MM``; then a lock-step Illinois (regula falsi)
    root finder runs on every account at once, each at its own trial move: one batched full revaluation
    per iteration (:meth:`BookValuer.gap`, margin recomputed by the engine at each account's moved market)
    until ``|equity - MM| <= rtol x max(|equity|, |MM|)``.

    Parameters
    ----------
    book : BookValuer or greeksmargin.Book
        The accounts (see :class:`BookValuer`), or a validated Book (:func:`greeksmargin.load_book`, trusted;
        margined by ``model`` with its collateral, none if it has none).
    underlyings : sequence of str, optional
        Underlyings moved alone (default: every underlying some account holds).
    include_all : bool
        Also move all underlyings together (row ``underlying = "ALL"``).
    max_move : float
        Largest relative move searched in each direction (0.9 = +-90%).
    grid : ndarray, optional
        Increasing absolute moves bracketing the root (default :data:`MOVE_GRID` up to ``max_move``).
    rtol : float
        Convergence: ``|equity - MM|`` relative to ``max(|equity|, |MM|)``.
    xtol : float
        A bracket narrower than this (relative move, times ``max(1, |move|)``) stops the search; the row
        is ``method = "root"`` when the gap then meets ``1e-6`` relative, else ``"bracket"``.
    max_iter : int
        Cap on the iterations of the root finder.
    base_moves : mapping of str -> float, optional
        Measure from a moved market (relative moves per underlying from today, as ``assess_solvency``'s
        ``moves``): the distance is the further relative move from there, compounded
        (``1 + total = (1 + base)(1 + move)``), and ``price`` is the level at the total move.

    Returns
    -------
    DataFrame
        One row per (account, underlying): ``account``, ``underlying`` (name or ``"ALL"``), ``move``
        (signed relative move of the nearer direction, NaN if none), ``direction`` (``"down"``/``"up"``),
        ``price`` (level of the underlying at the move; NaN for ``"ALL"``), ``move_down``, ``move_up``
        (signed, NaN if none), ``equity_at_move``, ``mm_at_move`` (account currency), ``method``
        (``"root"``; ``"bracket"`` the crossing is bracketed to machine precision but the gap stays above
        1e-6 relative; ``"grid"`` no crossing; ``"none"`` already below MM; ``"error"``;
        ``"not_computed"`` the margin model does not cover the account, the reason says why), ``reason``,
        ``error`` (why the account could not be computed; its figures are NaN).
    model : str, Path or Model
        Margin model when ``book`` is a validated Book (ignored otherwise).
    """
    if isinstance(book, ValidatedBook):
        book = BookValuer(book, book.market, book.collateral, margin_function(model),
                    vol_reaction=VolReaction.from_model(model, book.market.underlyings))
    if grid is None:
        grid = MOVE_GRID[MOVE_GRID <= max_move + 1e-12]
        if grid.size == 0 or grid[-1] < max_move:
            grid = np.append(grid, max_move)
    grid = np.asarray(grid, dtype=float)
    held = list(pd.unique(book.positions["underlying"])) if len(book.positions) else []
    targets: list[str] = [u for u in (underlyings or [u for u in book.unders if u in held])]
    if include_all and held:
        targets.append("ALL")
    rows: list[dict[str, Any]] = []
    pos_acct = book.positions["account"].astype(str)
    base = book.move_vector(base_moves)
    # accounts the margin model does not cover: no distance, the reason instead (never "no such move")
    nc_reason: dict[str, str] = {}
    gap0: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None  # equity, MM of every account at base
    at_shared = shared_gap(book) if len(book.positions) and not book.errors else None
    if at_shared is not None:  # the base is a shared move; the evaluator covers every account (none outside)
        e0, m0 = at_shared(base)
        size0 = np.maximum(np.abs(e0), np.abs(m0))
        near0 = np.flatnonzero((np.abs(e0 - m0) <= 1e-12 * size0)
                               | (np.abs(np.abs(e0 - m0) - AT_MM_RTOL * size0) <= 1e-12 * size0))
        if near0.size:  # at (or at the edge of) the boundary: the engine decides, as without the evaluator
            e0[near0], m0[near0] = book.gap(base, near0)
        gap0 = (e0, m0)
    elif len(book.positions):
        st0 = book.state(base)
        nc_reason = {str(a): str(r) for a, r in st0["not_computed"].items() if r}
        if not (st0["error"].astype(str).to_numpy() != "").any():  # (state blanks an account with an error)
            gap0 = (st0["equity"].to_numpy(dtype=float), st0["mm"].to_numpy(dtype=float))
    # accounts whose equity and margin move with one underlying only: their "ALL" search is the one of
    # that underlying alone (the same evaluations, per account independent), taken from it, not repeated
    single = _single_underlying(book)
    solved: dict[str, tuple[list[str], dict[float, dict[str, Any]]]] = {}
    for tgt in targets:
        # the distinct names only (hashed by pandas, not 60k string objects iterated)
        holders = set(pd.unique(pos_acct if tgt == "ALL" else pos_acct[book.positions["underlying"] == tgt]))
        names = [a for a in book.accounts if a in holders]
        if not names:
            continue
        copied = {a: single[a] for a in names if tgt == "ALL" and single.get(a) in solved}
        rest = [a for a in names if a not in copied]
        res_parts = []
        if rest:
            sub = book.subset(rest) if len(rest) < len(book.accounts) else book
            cols = np.arange(len(sub.unders)) if tgt == "ALL" else np.array([sub.unders.index(tgt)])
            # equity and MM at the base moves: the same for both directions, evaluated once (the whole
            # book's are those of its state at the base)
            at0 = gap0 if sub is book and gap0 is not None else sub.gap(base, np.arange(len(sub.accounts)))
            res_parts.append((sub.accounts, {s: _solve_direction(sub, cols, s, grid, rtol, xtol, max_iter, base,
                                                                 at0)
                                             for s in (-1.0, 1.0)}))
        for u in dict.fromkeys(copied.values()):
            res_parts.append(solved[u])
        res = _merge_solutions(names, res_parts)
        solved[tgt] = (names, res)
        e0, m0 = res[-1.0]["base"]
        below = liquidatable(e0, m0)
        spot = book.market.spot(tgt) * (1.0 + base[book.unders.index(tgt)]) if tgt != "ALL" else np.nan
        for i, acct in enumerate(names):
            d_dn, d_up = res[-1.0]["root"][i], res[1.0]["root"][i]
            if acct in nc_reason:
                rows.append({"account": acct, "underlying": tgt, "move": np.nan, "direction": "", "price": np.nan,
                             "move_down": np.nan, "move_up": np.nan, "equity_at_move": np.nan,
                             "mm_at_move": np.nan, "method": "not_computed", "reason": nc_reason[acct],
                             "error": ""})
                continue
            if below[i]:
                move, direction, method, reason, eq_at, mm_at = 0.0, "", "none", "already below MM", e0[i], m0[i]
                d_dn = d_up = 0.0
            else:
                cands = [(abs(d), d, name, s) for d, name, s in ((d_dn, "down", -1.0), (d_up, "up", 1.0))
                         if np.isfinite(d)]
                if cands:
                    _, move, direction, s = min(cands)
                    method = res[s]["method"][i]
                    reason = "" if method == "root" else BRACKET_REASON
                    eq_at, mm_at = res[s]["equity"][i], res[s]["mm"][i]
                else:
                    move, direction, method, reason, eq_at, mm_at = np.nan, "", "grid", NO_MOVE_REASON, np.nan, np.nan
            rows.append(
                {"account": acct, "underlying": tgt, "move": move, "direction": direction,
                 "price": spot * (1.0 + move) if np.isfinite(move) else np.nan,
                 "move_down": d_dn, "move_up": d_up, "equity_at_move": eq_at, "mm_at_move": mm_at,
                 "method": method, "reason": reason, "error": ""}
            )
    # accounts the market cannot price: one row per target they hold, with the error and no numbers
    if book.errors and len(book.bad_positions):
        bp = book.bad_positions
        for acct, msg in book.errors.items():
            held_bad = list(pd.unique(bp.loc[bp["account"].astype(str) == acct, "underlying"]))
            tg = [u for u in held_bad if underlyings is None or u in underlyings] + (["ALL"] if include_all else [])
            for tgt in tg:
                rows.append({"account": acct, "underlying": tgt, "move": np.nan, "direction": "", "price": np.nan,
                             "move_down": np.nan, "move_up": np.nan, "equity_at_move": np.nan,
                             "mm_at_move": np.nan, "method": "error", "reason": "not computed", "error": msg})
    cols_out = ["account", "underlying", "move", "direction", "price", "move_down", "move_up", "equity_at_move",
                "mm_at_move", "method", "reason", "error"]
    return pd.DataFrame(rows, columns=cols_out)


def _single_underlying(book: BookValuer) -> dict[str, str]:
    """Accounts whose equity and margin depend on one underlying's move only, with that underlying.

    Only for the engine's margin functions (:func:`margin_function`: an account's figures depend on its
    own positions); an account qualifies when its positions, their settlement coins, its margin currency,
    its collateral and the model's contract-floor currency link to no other underlying.
    """
    fn = book.margin_fn
    if book.a is None or not hasattr(fn, "floor_currency"):
        return {}
    n_a, n_u = len(book.accounts), len(book.unders)
    dep = np.zeros((n_a, n_u), dtype=bool)
    dep[book.acct_code, book.u_code] = True
    for link, rows in ((book._pos_link, book.acct_code), (book._acc_link, np.arange(n_a)),
                       (book._links(book.engine_currency), np.arange(n_a))):
        ok = link >= 0
        dep[rows[ok], link[ok]] = True
    if fn.floor_currency is not None:
        fl = book._links(np.array([fn.floor_currency], dtype=object))[0]
        if fl >= 0:
            dep[:, fl] = True
    for lk in book.coll_linked.values():
        dep |= np.asarray(lk) != 0
    one = dep.sum(axis=1) == 1
    return {a: book.unders[int(np.argmax(dep[i]))] for i, a in enumerate(book.accounts) if one[i]}


def _merge_solutions(
    names: list[str], parts: list[tuple[list[str], dict[float, dict[str, Any]]]]
) -> dict[float, dict[str, Any]]:
    """The per-direction solutions of ``names``, gathered from solutions over other account lists."""
    if len(parts) == 1 and list(parts[0][0]) == names:
        return parts[0][1]
    out: dict[float, dict[str, Any]] = {}
    for s in (-1.0, 1.0):
        cols: dict[str, list[Any]] = {k: [] for k in ("root", "equity", "mm", "method", "e0", "m0")}
        where: dict[str, tuple[int, int]] = {}
        for p, (accts, _) in enumerate(parts):
            for i, a in enumerate(accts):
                where.setdefault(a, (p, i))
        for a in names:
            p, i = where[a]
            r = parts[p][1][s]
            for k in ("root", "equity", "mm", "method"):
                cols[k].append(r[k][i])
            cols["e0"].append(r["base"][0][i])
            cols["m0"].append(r["base"][1][i])
        out[s] = {"root": np.array(cols["root"], dtype=float), "equity": np.array(cols["equity"], dtype=float),
                  "mm": np.array(cols["mm"], dtype=float), "method": np.array(cols["method"], dtype=object),
                  "base": (np.array(cols["e0"], dtype=float), np.array(cols["m0"], dtype=float))}
    return out


def _solve_direction(
    book: BookValuer, cols: NDArray[np.intp], sign: float, grid: NDArray[np.float64], rtol: float, xtol: float,
    max_iter: int, base: NDArray[np.float64] | None = None,
    at_base: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> dict[str, Any]:
    """Root of ``equity - MM`` along ``sign x`` (x in [0, grid[-1]]) for every account of ``book``.

    ``base``: moves (shape (n_underlyings,)) the search starts from (default: today's market); the move
    ``x`` compounds on it. Returns a dict with ``root`` (signed move, NaN: no crossing; 0 at the
    boundary or below MM), ``equity``, ``mm`` at the root, ``method`` per account and ``base`` (equity,
    MM at the base moves; ``at_base``: those figures when the caller has them, shape (n,) each).
    """
    n = len(book.accounts)
    n_u = len(book.unders)
    b0 = np.zeros(n_u) if base is None else np.asarray(base, dtype=float)
    every = np.arange(n)
    e0, m0 = book.gap(b0, every) if at_base is None else at_base
    f0 = e0 - m0
    root = np.full(n, np.nan)
    eq = np.full(n, np.nan)
    mmv = np.full(n, np.nan)
    method = np.full(n, "", dtype=object)
    ok = np.isfinite(f0)
    below = ok & liquidatable(e0, m0)
    boundary = ok & ~below & ~(f0 > 0)  # at MM within the 1e-9 boundary: distance 0
    for m in (below, boundary):
        root[m], eq[m], mmv[m], method[m] = 0.0, e0[m], m0[m], "root"
    searching = ok & (f0 > 0)
    lo = np.zeros(n)
    flo = f0.copy()
    hi = np.full(n, np.nan)
    fhi = np.full(n, np.nan)
    ehi = np.full(n, np.nan)
    mhi = np.full(n, np.nan)

    def moves(x: NDArray[np.float64], idx: NDArray[np.intp] | None = None) -> NDArray[np.float64]:
        if idx is None:  # shared move
            mv = b0.copy()
            mv[cols] = (1.0 + b0[cols]) * (1.0 + sign * float(x)) - 1.0
            return mv
        M = np.tile(b0, (n, 1))
        M[np.ix_(idx, cols)] = (1.0 + b0[cols])[None, :] * (1.0 + sign * np.asarray(x)[:, None]) - 1.0
        return M

    # every account at the grid's shared moves: per contract when covered (solvency.shared_grid), same figures
    at_shared = shared_gap(book)
    batch: dict[int, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    for j, x in enumerate(grid):
        idx = np.flatnonzero(searching)
        if idx.size == 0:
            break
        if at_shared is not None:
            if j not in batch:  # the next few grid moves at once
                xs = grid[j:j + SHARED_BATCH]
                e_k, mm_k = at_shared(np.stack([moves(v) for v in xs]))
                batch.update({j + i: (e_k[i], mm_k[i]) for i in range(len(xs))})
            e_all, mm_all = batch.pop(j)
            e, mm = e_all[idx], mm_all[idx]
            # where the sums' order (~1e-15) could tip a decision (crossed, or converged at rtol), the
            # engine decides: those accounts (rare) are evaluated by gap as without the evaluator
            size = np.maximum(np.abs(e), np.abs(mm))
            gap_now = np.abs(e - mm)
            near = (gap_now <= 1e-12 * size) | (np.abs(gap_now - rtol * size) <= 1e-12 * size)
            if near.any():
                e[near], mm[near] = book.gap(moves(x), idx[near])
        else:
            e, mm = book.gap(moves(x), idx)
        f = e - mm
        crossed = ~(f > 0)
        c, s = idx[crossed], idx[~crossed]
        hi[c], fhi[c], ehi[c], mhi[c] = x, f[crossed], e[crossed], mm[crossed]
        lo[s], flo[s] = x, f[~crossed]
        searching[c] = False
    found = np.isfinite(hi)
    exact = found & (np.abs(fhi) <= rtol * np.maximum(np.abs(ehi), np.abs(mhi)))
    root[exact], eq[exact], mmv[exact], method[exact] = sign * hi[exact], ehi[exact], mhi[exact], "root"
    # lock-step Illinois on every bracket [lo, hi] with f(lo) > 0 >= f(hi)
    active = found & ~exact
    a, fa, b, fb = lo.copy(), flo.copy(), hi.copy(), fhi.copy()
    side = np.zeros(n, dtype=np.int8)
    best_x, best_f, best_e, best_m = hi.copy(), fhi.copy(), ehi.copy(), mhi.copy()
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        A, FA, B, FB = a[idx], fa[idx], b[idx], fb[idx]
        with np.errstate(divide="ignore", invalid="ignore"):
            x = (A * FB - B * FA) / (FB - FA)
        bad = ~((x > A) & (x < B))
        x[bad] = 0.5 * (A[bad] + B[bad])
        e, mm = book.gap(moves(x, idx), idx)
        f = e - mm
        better = np.abs(f) < np.abs(best_f[idx])
        bi = idx[better]
        best_x[bi], best_f[bi], best_e[bi], best_m[bi] = x[better], f[better], e[better], mm[better]
        conv = np.abs(f) <= rtol * np.maximum(np.abs(e), np.abs(mm))
        ci = idx[conv]
        root[ci], eq[ci], mmv[ci], method[ci] = sign * x[conv], e[conv], mm[conv], "root"
        pos_side = f > 0  # replaces a (the side above MM)
        ia, ib = idx[pos_side & ~conv], idx[~pos_side & ~conv]
        a[ia], fa[ia] = x[pos_side & ~conv], f[pos_side & ~conv]
        fb[ia] = np.where(side[ia] == 1, 0.5 * fb[ia], fb[ia])
        side[ia] = 1
        b[ib], fb[ib] = x[~pos_side & ~conv], f[~pos_side & ~conv]
        fa[ib] = np.where(side[ib] == -1, 0.5 * fa[ib], fa[ib])
        side[ib] = -1
        narrow = (b - a) <= xtol * np.maximum(1.0, np.abs(b))
        active[ci] = False
        active &= ~narrow
    left = found & (method == "")
    if left.any():  # bracket collapsed (or cap): the best point, "root" if it meets the Done-when 1e-6
        root[left], eq[left], mmv[left] = sign * best_x[left], best_e[left], best_m[left]
        meets = np.abs(best_f[left]) <= 1e-6 * np.maximum(np.abs(best_e[left]), np.abs(best_m[left]))
        method[left] = np.where(meets, "root", "bracket")
    return {"root": root, "equity": eq, "mm": mmv, "method": method, "base": (e0, m0)}


def _target_moves(book: BookValuer, target: str, move: float) -> NDArray[np.float64]:
    if target == "ALL":
        return np.full(len(book.unders), float(move))
    mv = np.zeros(len(book.unders))
    mv[book.unders.index(target)] = float(move)
    return mv


def equity_path(
    book: BookValuer, account: str, underlying: str = "ALL", moves: Sequence[float] | None = None
) -> pd.DataFrame:
    """Equity, IM and MM of one account along a range of moves (for the report's equity-path figure).

    Parameters
    ----------
    book : BookValuer
        The book.
    account : str
        The account.
    underlying : str
        Underlying moved (``"ALL"``: all together).
    moves : sequence of float, optional
        Relative moves (default -0.6 .. +0.6 in 41 steps).

    Returns
    -------
    DataFrame
        Columns ``move``, ``equity``, ``im``, ``mm`` (account currency).
    """
    if account not in book.accounts:
        raise InputError(f"account '{account}' is not in the book", column="account")
    one = book.subset([account])
    mv_list = np.linspace(-0.6, 0.6, 41) if moves is None else np.asarray(moves, dtype=float)
    rows = []
    for m in mv_list:
        st = one.state(_target_moves(one, underlying, float(m)))
        rows.append({"move": float(m), "equity": float(st["equity"].iloc[0]), "im": float(st["im"].iloc[0]),
                     "mm": float(st["mm"].iloc[0])})
    return pd.DataFrame(rows)

