"""Liquidation cascades over a population of accounts sharing one market.

Model
-----
Round 1 applies an initial relative price shock (one underlying or all). In every round:

1. every surviving *unit* (an account under cross margin, a position under isolated margin) is
   revalued at the current market (full revaluation, vol reacting by the model's rule, MM recomputed
   by the margin function on the surviving positions: :class:`~greeksmargin.solvency.assess.BookValuer`);
2. the units with equity < MM (outside the 1e-9 boundary) or equity <= 0 are liquidated. In the
   cascade a liquidated unit is closed out in full (a conservative simplification of the step-by-step
   engine of :mod:`greeksmargin.solvency.liquidation`, which the cascade would otherwise run per account): its
   positions trade at the round's prices, paying ``slippage x`` the underlying notional; what its equity
   cannot pay is the **shortfall** (loss beyond collateral: what an insurance fund covers);
3. closing a position unwinds its delta: the signed USD flow into underlying ``u`` is
   ``flow_u = -sum delta_cash`` of the closed positions (closing a long delta sells);
4. the flow moves the price of ``u`` by the relative impact ``I(x)`` of ``x = flow_u / L_u`` with ``L_u``
   the **liquidity**: the USD notional whose sale moves the price by 100% at the linear rate (a market
   depth: ``L = 2e9`` means a 20 M USD sale moves the price 1%). ``linear``: ``I(x) = x``; ``sqrt``: the
   square-root law beyond a linear region, ``I(x) = sign(x) (sqrt(1 + 2|x|) - 1)``: ``x`` to first order
   for small flows, ``sqrt(2|x|)`` for large ones (each further dollar moves the price less), and never
   above the linear impact. Whatever the model, **the impact of a round is bounded by the liquidity
   named**: ``|I| <= |flow_u| / L_u``, and it is clipped to [-0.95, +1.0] per round (a price stays
   positive). Moves compound: ``1 + m <- (1 + m)(1 + I)``. An underlying no liquidation trades (flow 0)
   never moves after the initial shock; :meth:`CascadeResult.moves` shows, per underlying, the initial
   shock, the liquidation flows, the impact they caused and the bound ``prod(1 + |flow_r| / L)``.

Why a BTC-only shock can move ETH: under isolated margin each leg of a hedged book is its own unit, so
the short ETH call of a covered call or the short perpetual hedging an ETH straddle is liquidated alone
and buys ETH; that flow, not the shock, moves ETH. Before this bound, ``sqrt`` was ``sign(x) sqrt(|x|)``:
a flow of 1% of ``L`` moved the price 10%, so on the generated 10,000-account population a BTC-only -25%
shock ended with ETH +134% and SPX +100% (a feedback of short liquidations, each buying more); with the
bounded law the same run moves ETH by about 1% (``tests/test_cascade_impact.py``).

The cascade stops when a round liquidates nobody, when the impact of a round is zero (with zero impact
the cascade is exactly one round: ``impact="none"`` or infinite liquidity), or at ``max_rounds``
(reported as ``hit_cap``). An account with a position the market cannot price is left out (reported
in ``errors``; its units carry the error and are never liquidated); the others run.

Cross versus isolated margin
----------------------------
*Cross*: a unit is an account; one collateral pool backs all its positions; MM is the model's account
requirement. *Isolated*: a unit is one position margined alone by the same model (the account's
``isolated`` figure of :func:`~greeksmargin.engine.margin.compute_margin`); the account's collateral is
allocated to its positions pro rata to their isolated IM today (equally when they have none), asset by
asset, and a position's losses can use only its own allocation. The same population, shock and market
run under both; :func:`compare_cross_isolated` tabulates the difference.

Vectorisation: per round one revaluation of all positions (numpy arrays) and one call of the margin
function on the surviving positions; per-unit sums are :func:`numpy.bincount`; there is no Python loop
over accounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.book.book import Book as ValidatedBook
from greeksmargin.book.market import MarketSnapshot
from greeksmargin.errors import InputError
from greeksmargin.solvency.assess import liquidatable
from greeksmargin.solvency.book import BookValuer, VolReaction, book_inputs
from greeksmargin.solvency.margin_fn import MarginFn, call_margin_fn, margin_function, per_position_margin

__all__ = [
    "DEFAULT_LIQUIDITY",
    "IMPACT_MODELS",
    "CascadeResult",
    "compare_cross_isolated",
    "isolate",
    "price_impact",
    "run_cascade",
]

#: illustrative liquidity per underlying (USD notional that would move the price by 100%), used when none is
#: given; an underlying held by the book and absent here is an error naming it (no silent fallback)
DEFAULT_LIQUIDITY: dict[str, float] = {"BTC": 2e9, "ETH": 1e9, "SPX": 2e10}
IMPACT_MODELS = ("linear", "sqrt", "none")
MIN_IMPACT = -0.95
MAX_IMPACT = 1.0


def price_impact(flow: Any, liquidity: Any, model: str = "linear") -> np.ndarray:
    """Relative price impact of a signed USD flow.

    Parameters
    ----------
    flow : array_like of shape (n_underlyings,)
        Signed USD notional traded (+ buying).
    liquidity : array_like of shape (n_underlyings,)
        USD notional that moves the price by 100% (inf: no impact).
    model : {"linear", "sqrt", "none"}
        ``I(x) = x``, ``sign(x) (sqrt(1 + 2|x|) - 1)`` (square-root law beyond a linear region) with
        ``x = flow / liquidity``, or no impact. Both satisfy ``|I(x)| <= |x|``.

    Returns
    -------
    ndarray of shape (n_underlyings,)
        Relative moves, clipped to [-0.95, +1.0] per round (a price stays positive).
    """
    if model not in IMPACT_MODELS:
        raise InputError(f"impact model must be one of {IMPACT_MODELS} (got {model!r})", column="impact")
    f = np.asarray(flow, dtype=float)
    liq = np.asarray(liquidity, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(np.isinf(liq), 0.0, f / liq)
    x = np.nan_to_num(x)
    if model == "none":
        return np.zeros_like(x)
    out = x if model == "linear" else np.sign(x) * (np.sqrt(1.0 + 2.0 * np.abs(x)) - 1.0)
    return np.clip(out, MIN_IMPACT, MAX_IMPACT)


@dataclass
class CascadeResult:
    """Outcome of a cascade.

    Attributes
    ----------
    mode : str
        ``"cross"`` or ``"isolated"``.
    rounds : DataFrame
        One row per round: ``round``, ``n_liquidated``, ``n_bankrupt``, ``notional_usd`` (gross
        underlying notional closed), ``cost_usd`` (slippage), ``shortfall_usd`` and, per underlying
        ``U``, ``flow_U`` (signed USD delta flow), ``impact_U`` (relative), ``move_U`` (cumulative move
        after the round's impact) and ``price_U``.
    units : DataFrame
        One row per unit: ``unit``, ``account``, ``round`` liquidated (0: survived), ``equity_usd`` and
        ``mm_usd`` when liquidated, ``shortfall_usd``, ``error`` (the account could not be computed).
    hit_cap : bool
        The cascade was stopped by ``max_rounds``.
    final_moves : dict
        Cumulative relative move per underlying at the end.
    errors : DataFrame
        Accounts left out because a position cannot be priced on the market: ``account``, ``error``
        (their units have the error and never liquidate; the others run).
    liquidity : dict
        USD liquidity used per underlying held (given, or :data:`DEFAULT_LIQUIDITY`; ``inf``: no impact).
    not_computed : DataFrame
        Units the margin model does not cover (a position outside its domain): ``unit``, ``account``,
        ``reason``; their MM is unknown, so they are never liquidated and never counted as survivors.
    """

    mode: str
    rounds: pd.DataFrame
    units: pd.DataFrame
    hit_cap: bool
    final_moves: dict[str, float] = field(default_factory=dict)
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["account", "error"]))
    liquidity: dict[str, float] = field(default_factory=dict)
    not_computed: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["unit", "account", "reason"]))

    @property
    def n_rounds(self) -> int:
        """Number of rounds run."""
        return len(self.rounds)

    @property
    def total_shortfall_usd(self) -> float:
        """Sum of the losses beyond collateral (USD)."""
        return float(self.units["shortfall_usd"].sum())

    def moves(self) -> pd.DataFrame:
        """Per underlying: what moved its price, and by how much at most.

        Returns
        -------
        DataFrame
            One row per underlying held: ``underlying``, ``initial_shock`` (relative), ``flow_usd`` (net
            signed liquidation flow over all rounds, + buying), ``gross_flow_usd`` (sum of the rounds'
            absolute flows), ``liquidity_usd``, ``impact`` (relative move caused by the flows:
            ``(1 + final) / (1 + shock) - 1``), ``bound`` (``prod(1 + |flow_r| / L) - 1``, the largest
            impact the stated liquidity allows), ``final_move``.
        """
        rows = []
        r = self.rounds
        for u, liq in self.liquidity.items():
            flows = r[f"flow_{u}"].to_numpy(dtype=float) if f"flow_{u}" in r else np.zeros(0)
            imps = r[f"impact_{u}"].to_numpy(dtype=float) if f"impact_{u}" in r else np.zeros(0)
            final = self.final_moves.get(u, 0.0)
            impact = float(np.prod(1.0 + imps) - 1.0) if len(imps) else 0.0
            shock = (1.0 + final) / (1.0 + impact) - 1.0
            bound = float(np.prod(1.0 + np.abs(flows) / liq) - 1.0) if np.isfinite(liq) and len(flows) else 0.0
            rows.append({"underlying": u, "initial_shock": shock, "flow_usd": float(flows.sum()),
                         "gross_flow_usd": float(np.abs(flows).sum()), "liquidity_usd": liq, "impact": impact,
                         "bound": bound, "final_move": final})
        return pd.DataFrame(rows, columns=["underlying", "initial_shock", "flow_usd", "gross_flow_usd",
                                           "liquidity_usd", "impact", "bound", "final_move"])

    def summary(self) -> dict[str, Any]:
        """Scalar figures of the cascade."""
        liq = self.units["round"] > 0
        return {
            "mode": self.mode,
            "rounds": self.n_rounds,
            "hit_cap": self.hit_cap,
            "units": len(self.units),
            "units_liquidated": int(liq.sum()),
            "accounts_affected": int(self.units.loc[liq, "account"].nunique()),
            "notional_usd": float(self.rounds["notional_usd"].sum()) if len(self.rounds) else 0.0,
            "cost_usd": float(self.rounds["cost_usd"].sum()) if len(self.rounds) else 0.0,
            "shortfall_usd": self.total_shortfall_usd,
            "accounts_error": len(self.errors),
            "units_not_computed": len(self.not_computed),
            **{f"liquidity_{u}": v for u, v in self.liquidity.items()},
            **{f"final_move_{u}": v for u, v in self.final_moves.items()},
        }


def isolate(
    positions: pd.DataFrame, collateral: pd.DataFrame | None, margin_fn: MarginFn, market: MarketSnapshot
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split accounts into isolated units: one per position, with its share of the account's collateral.

    Parameters
    ----------
    positions : DataFrame
        Validated positions.
    collateral : DataFrame or None
        Collateral table.
    margin_fn : MarginFn
        The (cross) margin function; a single-position account gives the isolated requirement.
    market : MarketSnapshot
        Today's market (the allocation key: isolated IM in USD today).

    Returns
    -------
    (positions, collateral)
        ``account`` renamed ``"<account>#<position label>"``; the collateral split pro rata to isolated
        IM (equally within an account whose positions have no IM). Accounts with collateral and no
        positions keep their collateral as one unit.
    """
    from greeksmargin.solvency.book import _empty_collateral
    from greeksmargin.solvency.margin_fn import _to_common_ccy

    per = _to_common_ccy(per_position_margin(margin_fn, positions, market), market)
    units = positions["account"].astype(str) + "#" + positions.index.astype(str)
    im = per["im"].to_numpy(dtype=float)
    acct = positions["account"].astype(str).to_numpy()
    tot = pd.Series(im).groupby(acct).transform("sum").to_numpy()
    cnt = pd.Series(np.ones(len(im))).groupby(acct).transform("sum").to_numpy()
    share = np.where(tot > 0, im / np.where(tot > 0, tot, 1.0), 1.0 / cnt)
    upos = positions.copy()
    upos["account"] = units.to_numpy()
    if collateral is None or len(collateral) == 0:
        return upos, _empty_collateral()
    alloc = pd.DataFrame({"account": acct, "unit": units.to_numpy(), "share": share})
    merged = collateral.reset_index(drop=True).merge(alloc, on="account", how="left")
    alone = merged["unit"].isna()
    merged.loc[alone, "unit"] = merged.loc[alone, "account"]
    merged.loc[alone, "share"] = 1.0
    merged["amount"] = merged["amount"] * merged["share"]
    ucol = merged.drop(columns=["account", "share"]).rename(columns={"unit": "account"})
    cols = ["account", "asset", "amount", "price", "im_haircut", "mm_haircut"]
    return upos, ucol[cols]


def _position_deltas(book: BookValuer, mv: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """USD cash delta (per 1.00 relative move) of the positions in ``mask`` at moves ``mv``."""
    from greeksmargin.pricing import american_greeks, black76
    from greeksmargin.risk.exercise import AMERICAN_METHOD, AMERICAN_MIN_VOL, american_mask, carry_dividend_yield

    a = book.a
    assert a is not None
    out = np.zeros(int(mask.sum()))
    g = 1.0 + mv[book.u_code[mask]]
    kc = a["kind_code"][mask]
    size = a["size"][mask]
    S = a["spot"][mask] * g
    F = a["forward"][mask] * g
    o = kc == 0
    if o.any():
        vol = book.vols_at(mv)[mask][o]
        gr = black76(a["is_call"][mask][o], F[o], a["strike"][mask][o], a["T"][mask][o], vol, a["rate"][mask][o])
        out[o] = gr.delta * F[o] * size[o]  # dV/dS x S = delta_F x F/S x S
        am = american_mask(a, mask)
        if am is not None and am[o].any():  # American options: their own delta (greeksmargin.risk.exercise)
            sel = np.flatnonzero(o)[am[o]]
            ratio = a["forward_ratio"][mask][sel]
            t, r = a["T"][mask][sel], a["rate"][mask][sel]
            ga = american_greeks(a["is_call"][mask][sel], F[sel] / ratio, a["strike"][mask][sel], t,
                                 np.maximum(vol[am[o]], AMERICAN_MIN_VOL), r, carry_dividend_yield(ratio, t, r),
                                 method=AMERICAN_METHOD)
            out[sel] = ga.delta * F[sel] / ratio * size[sel]
    out[kc == 1] = (F * size)[kc == 1]
    out[kc == 2] = (S * a["perp_ratio"][mask] * size)[kc == 2]
    out[kc == 3] = (S * size)[kc == 3]
    return out


def run_cascade(
    positions: Any,
    market: MarketSnapshot | None = None,
    collateral: pd.DataFrame | None = None,
    model: Any = "greeks-default",
    *,
    shock: float | Mapping[str, float] = -0.25,
    underlying: str | None = None,
    impact: str = "linear",
    liquidity: float | Mapping[str, float] | None = None,
    slippage: float = 0.0,
    max_rounds: int = 100,
    mode: str = "cross",
    margin_fn: MarginFn | None = None,
    vol_reaction: VolReaction | None = None,
) -> CascadeResult:
    """Run a liquidation cascade (model in the module docstring).

    Parameters
    ----------
    positions : BookValuer or DataFrame
        Positions of the population: a validated Book (:func:`greeksmargin.load_book`; with its market and
        collateral) or a positions table (validated here once).
    market : MarketSnapshot, optional
        Today's market (None with a Book).
    collateral : DataFrame or None
        Collateral of the population (``account, asset, amount`` suffice: a missing price comes from the
        market; default: the Book's).
    model : str, Path or Model
        Margin model (ignored when ``margin_fn`` is given).
    shock : float or mapping of str -> float
        Initial relative move: of ``underlying`` (or of every underlying when ``underlying`` is None), or
        a mapping per underlying.
    underlying : str, optional
        The underlying shocked (default: all).
    impact : {"linear", "sqrt", "none"}
        Impact model (``"none"``: prices move only by the initial shock).
    liquidity : float or mapping of str -> float, optional
        USD liquidity per underlying, > 0 (a float: the same for all; ``inf``: no impact; default
        :data:`DEFAULT_LIQUIDITY`). A mapping must name every underlying the book holds (or ``"*"``): a
        missing one is an :class:`~greeksmargin.errors.InputError` naming it, never a silent default.
    slippage : float
        Cost of closing as a fraction of underlying notional.
    max_rounds : int
        Cap on the number of rounds.
    mode : {"cross", "isolated"}
        Margin mode (see the module docstring).
    margin_fn : MarginFn, optional
        Cross margin function (default :func:`~greeksmargin.solvency.assess.margin_function` (model)).
    vol_reaction : VolReaction, optional
        Vol reaction (default: the model's).

    Returns
    -------
    CascadeResult
    """
    if mode not in ("cross", "isolated"):
        raise InputError(f"mode must be 'cross' or 'isolated' (got {mode!r})", column="mode")
    if max_rounds < 1:
        raise InputError("max_rounds must be >= 1", column="max_rounds")
    positions, market, collateral = book_inputs(positions, market, collateral)
    fn = margin_fn or margin_function(model)
    vr = vol_reaction or VolReaction.from_model(model if margin_fn is None else None, market.underlyings)
    base = BookValuer(positions, market, collateral, fn, vol_reaction=vr)
    if mode == "isolated":
        upos, ucol = isolate(base.positions, base.collateral, fn, market)
        # the base book's validated positions, one account per position: trusted, not validated again
        book = BookValuer(ValidatedBook._unchecked(upos, market), market, ucol, fn, vol_reaction=vr)
        owner = np.array([u.rsplit("#", 1)[0] if "#" in u else u for u in book.accounts], dtype=object)
    else:
        book = base
        owner = np.array(book.accounts, dtype=object)
    unders = book.unders
    if isinstance(shock, Mapping):
        mv = book.move_vector(shock)
    elif underlying is not None:
        mv = book.move_vector({underlying: float(shock)})
    else:
        mv = np.full(len(unders), float(shock))
    held = set(pd.unique(book.positions["underlying"].astype(str))) if len(book.positions) else set()
    liq = _liquidity_vector(unders, liquidity, held)
    n_u = len(book.accounts)
    alive = np.ones(n_u, dtype=bool)
    liq_round = np.zeros(n_u, dtype=int)
    eq_at = np.full(n_u, np.nan)
    mm_at = np.full(n_u, np.nan)
    short = np.zeros(n_u)
    rows: list[dict[str, Any]] = []
    has_pos = len(book.positions) > 0
    hit_cap = False
    nc_reason: dict[str, str] = {}
    r = 0
    while True:
        r += 1
        pos_alive = alive[book.acct_code] if has_pos else np.zeros(0, dtype=bool)
        mkt = book.shifted_market(mv)
        margin = call_margin_fn(book.margin_fn, book.positions[pos_alive], mkt) if pos_alive.any() else None
        if margin is None:
            margin = pd.DataFrame({"im": [], "mm": [], "currency": []})
        st = book.state(mv, margin=margin)
        if r == 1:  # units the margin model does not cover: MM unknown, never liquidated, reported
            nc_reason = {str(u): str(x) for u, x in st["not_computed"].items() if x}
        e_usd = st["equity"].to_numpy(dtype=float) * st["fx"].to_numpy(dtype=float)
        m_usd = st["mm"].to_numpy(dtype=float) * st["fx"].to_numpy(dtype=float)
        hit = alive & liquidatable(e_usd, m_usd)
        row: dict[str, Any] = {
            "round": r, "n_liquidated": int(hit.sum()), "n_bankrupt": int((hit & (e_usd <= 0)).sum())
        }
        flow = np.zeros(len(unders))
        notional_u = np.zeros(n_u)
        if hit.any() and has_pos:
            pm = hit[book.acct_code]
            if pm.any():
                a = book.a
                assert a is not None  # has_pos: the book holds position arrays
                dcash = _position_deltas(book, mv, pm)
                # numpy's stubs type bincount as intp even with float weights (it returns float64 then)
                flow = -np.bincount(book.u_code[pm], weights=dcash, minlength=len(unders))  # type: ignore[assignment]
                g = 1.0 + mv[book.u_code[pm]]
                notl = np.abs(a["size"][pm]) * a["spot"][pm] * g
                notional_u = np.bincount(book.acct_code[pm], weights=notl, minlength=n_u)  # type: ignore[assignment]
        cost_u = slippage * notional_u
        liq_round[hit] = r
        eq_at[hit] = e_usd[hit]
        mm_at[hit] = m_usd[hit]
        short[hit] = np.maximum(0.0, -(e_usd[hit] - cost_u[hit]))
        alive &= ~hit
        imp = price_impact(flow, liq, impact) if hit.any() else np.zeros(len(unders))
        mv = (1.0 + mv) * (1.0 + imp) - 1.0
        row.update({"notional_usd": float(notional_u.sum()), "cost_usd": float(cost_u.sum()),
                    "shortfall_usd": float(short[hit].sum())})
        for j, u in enumerate(unders):
            row[f"flow_{u}"] = float(flow[j])
            row[f"impact_{u}"] = float(imp[j])
            row[f"move_{u}"] = float(mv[j])
            row[f"price_{u}"] = market.spot(u) * (1.0 + mv[j])
        rows.append(row)
        if not hit.any() or not np.any(imp != 0.0):
            break
        if r >= max_rounds:
            hit_cap = True
            break
    units = pd.DataFrame(
        {"unit": book.accounts, "account": owner, "round": liq_round, "equity_usd": eq_at, "mm_usd": mm_at,
         "shortfall_usd": short,
         "error": [base.errors.get(str(o), nc_reason.get(str(u), "")) for u, o in zip(book.accounts, owner)]}
    )
    errors = pd.DataFrame({"account": list(base.errors), "error": list(base.errors.values())})
    nc_units = list(nc_reason)
    not_computed = pd.DataFrame({"unit": nc_units,
                                 "account": [owner[book.accounts.index(u)] for u in nc_units],
                                 "reason": [nc_reason[u] for u in nc_units]}, columns=["unit", "account", "reason"])
    return CascadeResult(
        mode=mode, rounds=pd.DataFrame(rows), units=units, hit_cap=hit_cap,
        final_moves={u: float(mv[j]) for j, u in enumerate(unders)}, errors=errors,
        liquidity={u: float(liq[j]) for j, u in enumerate(unders) if u in held}, not_computed=not_computed,
    )


def _liquidity_vector(
    unders: list[str], liquidity: float | Mapping[str, float] | None, held: set[str] | None = None
) -> np.ndarray:
    """Liquidity per underlying of ``unders``: a number for all, or a mapping that names every held underlying.

    A mapping (or the default table) without an underlying the book holds is an :class:`InputError`
    naming it (``"*"`` in a mapping is an explicit value for every other underlying). Underlyings nobody
    holds never trade: ``inf``.
    """
    held = set(unders) if held is None else held
    if liquidity is None:
        liquidity, given = DEFAULT_LIQUIDITY, "the default liquidity table"
    else:
        given = "--liquidity / liquidity="
    if isinstance(liquidity, Mapping):
        missing = [u for u in unders if u in held and u not in liquidity and "*" not in liquidity]
        if missing:
            raise InputError(
                f"no liquidity for underlying(s) {', '.join(missing)} held by the book ({given} covers "
                f"{', '.join(sorted(str(k) for k in liquidity)) or 'none'}): give e.g. "
                f"{','.join(f'{u}=1e9' for u in missing)}, or one number for every underlying",
                column="liquidity")
        vals = [float(liquidity.get(u, liquidity.get("*", np.inf))) if u in held else np.inf for u in unders]
    else:
        vals = [float(liquidity)] * len(unders)
    out = np.array(vals, dtype=float)
    if np.any(~(out > 0)):
        raise InputError("liquidity must be > 0 (inf: no impact)", column="liquidity")
    return out


def compare_cross_isolated(
    positions: pd.DataFrame, market: MarketSnapshot, collateral: pd.DataFrame | None, model: Any = "greeks-default",
    **kw: Any,
) -> tuple[CascadeResult, CascadeResult, pd.DataFrame]:
    """Run the same cascade under cross and isolated margin.

    Parameters
    ----------
    positions, market, collateral, model
        As :func:`run_cascade`.
    **kw
        Passed to :func:`run_cascade` (shock, underlying, impact, liquidity, slippage, margin_fn, ...).

    Returns
    -------
    (cross, isolated, comparison)
        The two results and a two-row table of their :meth:`CascadeResult.summary`.
    """
    cross = run_cascade(positions, market, collateral, model, mode="cross", **kw)
    iso = run_cascade(positions, market, collateral, model, mode="isolated", **kw)
    comp = pd.DataFrame([cross.summary(), iso.summary()])
    return cross, iso, comp
