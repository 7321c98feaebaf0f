"""Liquidation engine: reduce an account below MM step by step, as an exchange does.

Algorithm (one account, at a given market, in the account's margin currency)
---------------------------------------------------------------------------
1. Value the account (:class:`~greeksmargin.solvency.assess.BookValuer`): equity (MM haircuts) and MM.
2. Stop when equity <= 0 (``bankrupt``: the rest goes to the insurance fund; the shortfall is
   ``-equity``), or when the account is no longer liquidatable (equity >= MM, the boundary included:
   ``restored``; ``not_needed`` if it was never below).
3. Otherwise pick the tradable position that contributes most to the requirement: its share of the
   account's IM in the margin engine's attribution (:meth:`~greeksmargin.engine.margin.MarginResult.attribution`,
   Euler allocation of the worst-scenario loss) when the margin function offers it, else its *marginal*
   MM ``MM(book) - MM(book without it)`` (every tradable position in one call of the margin function).
   Close ``step_fraction`` of its original size (default all of it) at its mark, paying
   ``slippage x |size traded| x S`` (a fraction of the underlying notional) converted to the margin
   currency. Positions listed in ``untradable`` cannot trade.
4. When no tradable position is left, hedge the account's net delta per underlying with the
   perpetual (crypto) or a future (an index), paying the same slippage; one hedge per underlying. If
   that does not restore MM the account ends ``stuck`` (equity > 0 but below MM with nothing to trade).

Conservation: closing at mark moves the position's value into cash in the margin currency (no
haircut), so each trade changes equity by exactly ``-cost``. Hence
``equity_before = equity_after + realised_cost`` (tested). Futures and perpetuals at a moved market
carry their P&L since today; closing settles it into cash (same identity).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.book.market import MarketSnapshot
from greeksmargin.errors import InputError, MarketDataError, ModelError
from greeksmargin.solvency.assess import BookValuer, MarginFn, VolReaction, liquidatable, margin_function
from greeksmargin.solvency.book import book_inputs

__all__ = ["LiquidationResult", "liquidate_account"]

TRADE_COLUMNS = (
    "step",
    "action",
    "position",
    "instrument",
    "underlying",
    "kind",
    "quantity",
    "price",
    "notional_usd",
    "value",
    "cost",
    "contribution",
    "equity_after",
    "mm_after",
)


@dataclass
class LiquidationResult:
    """What the liquidation engine did to one account.

    Attributes
    ----------
    account, currency : str
        The account and its margin currency (every amount below is in it).
    status : str
        ``not_needed``, ``restored`` (equity >= MM), ``bankrupt`` (equity <= 0) or ``stuck``.
    equity_before, mm_before, equity_after, mm_after : float
        Equity and MM before the first and after the last trade.
    realised_cost : float
        Sum of the slippage paid.
    shortfall : float
        Loss beyond the collateral, ``max(0, -equity_after)`` (for the insurance fund).
    trades : DataFrame
        One row per trade (:data:`TRADE_COLUMNS`); ``quantity`` signed as traded (buying back a short
        is positive), ``value`` the mark value moved into cash.
    positions_after : DataFrame
        The positions left (hedges included).
    """

    account: str
    currency: str
    status: str
    equity_before: float
    mm_before: float
    equity_after: float
    mm_after: float
    realised_cost: float
    shortfall: float
    trades: pd.DataFrame
    positions_after: pd.DataFrame = field(repr=False)

    def summary(self) -> dict[str, Any]:
        """The scalar figures as a dict."""
        return {
            "account": self.account,
            "currency": self.currency,
            "status": self.status,
            "equity_before": self.equity_before,
            "mm_before": self.mm_before,
            "equity_after": self.equity_after,
            "mm_after": self.mm_after,
            "realised_cost": self.realised_cost,
            "shortfall": self.shortfall,
            "n_trades": len(self.trades),
        }


def liquidate_account(
    positions: Any,
    market: MarketSnapshot | None,
    collateral: pd.DataFrame | None,
    account: str,
    model: Any = "greeks-default",
    *,
    margin_fn: MarginFn | None = None,
    moves: Mapping[str, float] | None = None,
    slippage: float = 0.002,
    step_fraction: float = 1.0,
    untradable: Collection[Any] = (),
    max_steps: int | None = None,
    vol_reaction: VolReaction | None = None,
) -> LiquidationResult:
    """Liquidate one account below MM until MM is restored or the equity is gone.

    Parameters
    ----------
    positions : BookValuer or DataFrame
        Positions (any accounts; only ``account``'s are used): a validated Book
        (:func:`greeksmargin.load_book`, with its market and collateral) or a positions table.
    market : MarketSnapshot or None
        Today's market (None with a Book).
    collateral : DataFrame or None
        Collateral table (``account, asset, amount`` suffice; None with a Book: the Book's).
    account : str
        The account to liquidate.
    model : str, Path or Model
        Margin model (ignored when ``margin_fn`` is given).
    margin_fn : MarginFn, optional
        Margin function (default :func:`~greeksmargin.solvency.assess.margin_function` (model)).
    moves : mapping of str -> float, optional
        Liquidate at a moved market (relative spot moves).
    slippage : float
        Cost of a trade as a fraction of the underlying notional traded (0.002 = 20 bp).
    step_fraction : float
        Fraction of the chosen position's original size closed per step, in (0, 1] (a position takes at
        most ``ceil(1 / step_fraction)`` steps).
    untradable : collection
        Position labels (index of ``positions``) or instrument names that cannot trade.
    max_steps : int, optional
        Safety cap on the number of trades (default: enough to close every position and hedge every
        underlying, ``n_positions x ceil(1 / step_fraction) + n_underlyings``).
    vol_reaction : VolReaction, optional
        Vol reaction to moves (default: the model's).

    Returns
    -------
    LiquidationResult
    """
    if not 0 < step_fraction <= 1:
        raise InputError(f"step_fraction must be in (0, 1] (got {step_fraction})", column="step_fraction")
    if slippage < 0:
        raise InputError(f"slippage must be >= 0 (got {slippage})", column="slippage")
    positions, market, collateral = book_inputs(positions, market, collateral)
    fn = margin_fn or margin_function(model)
    vr = vol_reaction or VolReaction.from_model(model if margin_fn is None else None, market.underlyings)
    full = BookValuer(positions, market, collateral, fn, vol_reaction=vr)
    if account not in full.accounts:
        raise InputError(f"account '{account}' has neither positions nor collateral", column="account")
    if account in full.errors:
        raise MarketDataError(f"account '{account}' cannot be valued: {full.errors[account]}", column="account")
    book = full.subset([account])
    ccy = str(book.currency[0])
    mv = book.move_vector(dict(moves or {}))
    pos = book.positions.copy()
    coll = book.collateral.copy()
    if max_steps is None:
        max_steps = len(pos) * int(np.ceil(1.0 / step_fraction - 1e-9)) + len(book.unders) + 1
    cash_label = "__liquidation_cash__"
    blocked = set(untradable)
    trades: list[dict[str, Any]] = []
    hedged: set[str] = set()

    def current(p: pd.DataFrame, cash: float) -> BookValuer:
        c = coll
        if cash != 0.0:
            row = pd.DataFrame({"account": [account], "asset": [ccy], "amount": [cash], "price": [np.nan],
                                "im_haircut": [0.0], "mm_haircut": [0.0]}, index=[cash_label])
            c = pd.concat([coll, row]) if len(coll) else row
        return BookValuer(p, market, c, fn, vol_reaction=vr, accounts=[account], currencies={account: ccy})

    cash = 0.0
    b = current(pos, cash)
    st = b.state(mv)
    nc = str(st["not_computed"].iloc[0]) if "not_computed" in st.columns else ""
    if nc:  # the model does not cover the account: no MM to restore, so no liquidation can be computed
        raise ModelError(f"account '{account}' cannot be liquidated under this model: {nc}")
    e0, mm0 = float(st["equity"].iloc[0]), float(st["mm"].iloc[0])
    e, mm = e0, mm0
    status = "not_needed"
    step = 0
    while True:
        if e <= 0:
            status = "bankrupt"
            break
        if not liquidatable(e, mm):
            status = "restored" if step > 0 else "not_needed"
            break
        if step >= max_steps:
            status = "stuck"
            break
        step += 1
        tradable = [i for i in pos.index if i not in blocked and pos.at[i, "instrument"] not in blocked
                    and pos.at[i, "quantity"] != 0]
        vals = b.position_values(mv)
        fx_acct = b.fx_at(ccy, mv)
        spots = {u: market.spot(u) * (1.0 + mv[b.unders.index(u)]) for u in b.unders}
        if tradable:
            if hasattr(fn, "attribution"):
                contrib = fn.attribution(pos, b.shifted_market(mv))
                marg = {i: float(contrib.get(i, 0.0)) for i in tradable}
            else:
                marg = _marginal_mm(b, pos, tradable, mv, mm)
            label = max(tradable, key=lambda i: (marg[i], abs(pos.at[i, "quantity"] * pos.at[i, "multiplier"])))
            k = pos.index.get_loc(label)
            q = float(pos.at[label, "quantity"])
            chunk = step_fraction * abs(float(book.positions.at[label, "quantity"]))
            q_close = q if step_fraction >= 1 or abs(q) <= chunk * (1 + 1e-9) else float(np.sign(q)) * chunk
            frac = q_close / q
            value = float(vals[k]) * frac
            s_now = spots[pos.at[label, "underlying"]]
            notional = abs(q_close * float(pos.at[label, "multiplier"])) * s_now
            cost = slippage * notional / fx_acct
            cash += value - cost
            remaining = q - q_close
            if abs(remaining) <= 1e-12 * max(1.0, abs(q)):
                pos = pos.drop(index=label)
            else:
                pos.loc[label, "quantity"] = remaining
                # the remaining part keeps its P&L since today in the valuation (futures); nothing to move
            trade = {"action": "close", "position": label, "instrument": str(pos_instrument(book, label)),
                     "underlying": str(book.positions.at[label, "underlying"]),
                     "kind": str(book.positions.at[label, "kind"]), "quantity": -q_close,
                     "price": _unit_price(book, label, mv), "notional_usd": notional, "value": value, "cost": cost,
                     "contribution": float(marg[label])}
        else:
            hedge = _hedge_trade(b, pos, mv, hedged, market, account, ccy)
            if hedge is None:
                status = "stuck"
                break
            u, row = hedge
            hedged.add(u)
            blocked.add(row.index[0])  # the hedge is kept, not closed by a later step
            notional = abs(float(row["quantity"].iloc[0]) * float(row["multiplier"].iloc[0])) * spots[u]
            cost = slippage * notional / fx_acct
            cash -= cost
            pos = pd.concat([pos, row])
            # a position opened at the moved market is worth 0 there: offset its P&L since today
            opened = current(pos, cash)
            cash -= float(opened.position_values(mv)[opened.positions.index.get_loc(row.index[0])])
            trade = {"action": "hedge", "position": row.index[0], "instrument": str(row["instrument"].iloc[0]),
                     "underlying": u, "kind": str(row["kind"].iloc[0]), "quantity": float(row["quantity"].iloc[0]),
                     "price": spots[u], "notional_usd": notional, "value": 0.0, "cost": cost,
                     "contribution": np.nan}
        b = current(pos, cash)
        st = b.state(mv)
        e, mm = float(st["equity"].iloc[0]), float(st["mm"].iloc[0])
        trade.update({"step": step, "equity_after": e, "mm_after": mm})
        trades.append(trade)
    tdf = pd.DataFrame(trades, columns=list(TRADE_COLUMNS))
    cost_total = float(tdf["cost"].sum()) if len(tdf) else 0.0
    return LiquidationResult(
        account=account, currency=ccy, status=status, equity_before=e0, mm_before=mm0, equity_after=e, mm_after=mm,
        realised_cost=cost_total, shortfall=max(0.0, -e), trades=tdf, positions_after=pos,
    )


def pos_instrument(book: BookValuer, label: Any) -> str:
    """Instrument name of a position of ``book``."""
    return str(book.positions.at[label, "instrument"])


def _unit_price(book: BookValuer, label: Any, mv: np.ndarray) -> float:
    """USD price per unit of underlying of a position at moves ``mv`` (option premium, else the level)."""
    from greeksmargin.pricing import black76_price
    from greeksmargin.risk.exercise import american_forward_price, american_mask

    k = book.positions.index.get_loc(label)
    a = book.a
    assert a is not None
    g = 1.0 + mv[book.u_code[k]]
    if a["kind_code"][k] == 0:
        vol = book.vols_at(mv)[k]
        if american_mask(a, [k]) is not None:  # an American option (greeksmargin.risk.exercise)
            return float(american_forward_price(bool(a["is_call"][k]), a["forward"][k] * g, a["strike"][k], a["T"][k],
                                                vol, a["rate"][k], a["forward_ratio"][k]))
        return float(black76_price(bool(a["is_call"][k]), a["forward"][k] * g, a["strike"][k], a["T"][k], vol,
                                   a["rate"][k]))
    if a["kind_code"][k] == 1:
        return float(a["forward"][k] * g)
    return float(a["spot"][k] * a["perp_ratio"][k] * g)


def _marginal_mm(b: BookValuer, pos: pd.DataFrame, tradable: list[Any], mv: np.ndarray, mm: float) -> dict[Any, float]:
    """``MM(book) - MM(book without position i)`` for every tradable position, in one margin call."""
    acct = str(pos["account"].iloc[0])
    parts = []
    keys = []
    for j, i in enumerate(tradable):
        rest = pos.drop(index=i)
        if len(rest):
            rest = rest.copy()
            rest["account"] = f"{acct}\x1fwithout{j}"
            parts.append(rest)
        keys.append(f"{acct}\x1fwithout{j}")
    market = b.shifted_market(mv)
    if parts:
        big = pd.concat(parts, ignore_index=True)
        res = b.margin_fn(big, market)
    else:
        res = pd.DataFrame({"im": [], "mm": [], "currency": []})
    fx_acct = b.fx_at(str(b.currency[0]), mv)
    out = {}
    for i, key in zip(tradable, keys):
        if key in res.index:
            c = res.at[key, "currency"]
            m_i = float(res.at[key, "mm"]) * b.fx_at(str(c), mv) / fx_acct
        else:
            m_i = 0.0
        out[i] = mm - m_i
    return out


def _hedge_trade(
    b: BookValuer, pos: pd.DataFrame, mv: np.ndarray, hedged: set[str], market: MarketSnapshot, account: str, ccy: str
) -> tuple[str, pd.DataFrame] | None:
    """The delta hedge of the largest unhedged net delta (perpetual, or a future for an index)."""
    from greeksmargin.risk.greeks import price_positions

    if len(pos) == 0:
        return None
    priced = price_positions(pos, b.shifted_market(mv))
    dc = priced.groupby("underlying")["delta_cash"].sum()
    dc = dc[[u for u in dc.index if u not in hedged]]
    if dc.empty or float(dc.abs().max()) <= 0:
        return None
    u = str(dc.abs().idxmax())
    s = market.spot(u) * (1.0 + mv[b.unders.index(u)])
    units = -float(dc[u]) / s
    inverse = ccy != "USD" and market.currency(u) == ccy
    is_index = market.currency(u) == "USD"
    if is_index:
        fut = pos[(pos["underlying"] == u) & (pos["kind"] == "future")]
        if len(fut):
            expiry = fut["expiry"].iloc[0]
            mult = float(fut["multiplier"].iloc[0])
            name = str(fut["instrument"].iloc[0])
        else:
            exps = pos.loc[pos["underlying"] == u, "expiry"].dropna()
            expiry = exps.max() if len(exps) else market.valuation_time + pd.Timedelta(days=90)
            mult, name = 1.0, f"{u}-HEDGE-FUTURE"
        kind = "future"
    else:
        expiry, mult, kind = pd.NaT, 1.0, "perpetual"
        name = f"{u}-PERPETUAL" if inverse else f"{u}_USDC-PERPETUAL"
    label = f"hedge:{u}"
    row = pd.DataFrame(
        {"account": [account], "instrument": [name], "underlying": [u], "kind": [kind], "option_type": [None],
         "strike": [np.nan], "expiry": pd.to_datetime(pd.Series([expiry]), utc=True).to_numpy(),
         "quantity": [units / mult], "multiplier": [mult], "settlement": ["inverse" if inverse else "linear"],
         "premium_currency": [ccy if inverse else "USD"]},
        index=[label],
    )
    row["expiry"] = pd.to_datetime(row["expiry"], utc=True)
    return u, row
