"""Synthetic account populations: positions and collateral of many accounts, reproducible from a seed.

:func:`generate_population` draws ``n_accounts`` accounts on a market snapshot (default: the bundled
example book's market with ``BTC``, ``ETH`` and ``SPX``). Every random draw comes from one
``numpy.random.Generator(PCG64(seed))`` in a fixed order: the same arguments give the same tables.

How an account is drawn
-----------------------
1. **Size**: gross notional in USD, lognormal (median ``notional_median`` = 50,000 USD, log-sd
   ``notional_sigma`` = 1.3) with a Pareto tail: with probability ``whale_share`` (2%) the notional is
   multiplied by a Pareto(``pareto_alpha`` = 1.5) draw (whales). SPX accounts are ten times larger
   (index options trade in 100-multiplier contracts).
2. **Underlyings**: one underlying with weights ``underlying_weights`` (BTC 0.5, ETH 0.3, SPX 0.2 when
   present); 25% of crypto accounts trade a second crypto underlying (cross-underlying netting).
3. **Margin currency**: crypto accounts are coin-margined (inverse, Deribit-style contracts, collateral
   in the coin) with probability ``coin_margined_share`` (0.4), else USD-margined (linear USDC
   contracts); SPX accounts are USD-margined.
4. **Strategy** per underlying (weights ``strategy_weights``): hedged books -- ``covered_call`` (long
   the underlying, short an OTM call), ``call_spread`` / ``put_spread`` (long and short options of one
   expiry), ``delta_hedged_straddle`` (short ATM straddle with its Black-76 delta hedged by the
   perpetual / future), ``protective_put``; naked books -- ``short_put``, ``short_strangle``,
   ``long_call``, ``leveraged_perp`` (long or short perpetual; SPX: a future). Strikes are drawn
   5-25% out of the money on a strike grid, expiries among the market's surface slices (7-180 days).
5. **Leverage**: collateral = gross notional / leverage with leverage lognormal (median
   ``leverage_median`` = 4, log-sd ``leverage_sigma`` = 0.6, clipped to [1, 50]); directional perp
   books are levered twice as much. A covered call's long underlying of a coin-margined account is its
   coin collateral (not a position). USD-margined accounts hold USDC (90%) or USD, and 15% of them
   also hold BTC or ETH as collateral.

Contract conventions: crypto options and futures have multiplier 1 (quantity in coin, rounded to
0.1 BTC / 1 ETH); SPX options and futures multiplier 100 (whole contracts, at least 1).
Instrument names follow Deribit (``BTC-25DEC26-100000-C``, ``BTC-PERPETUAL``, linear
``BTC_USDC-...``) and OCC-like ``SPX 261218 C6200``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from greeksmargin.book.positions import COLUMNS as POSITION_COLUMNS

if TYPE_CHECKING:
    from greeksmargin.book.market import MarketSnapshot

__all__ = ["DEFAULT_STRATEGY_WEIGHTS", "STRATEGIES", "generate_population"]

#: strategies and their default weights (hedged books first)
DEFAULT_STRATEGY_WEIGHTS: dict[str, float] = {
    "covered_call": 0.12,
    "call_spread": 0.08,
    "put_spread": 0.07,
    "delta_hedged_straddle": 0.08,
    "protective_put": 0.05,
    "short_put": 0.16,
    "short_strangle": 0.12,
    "long_call": 0.12,
    "leveraged_perp": 0.20,
}
STRATEGIES = tuple(DEFAULT_STRATEGY_WEIGHTS)
_HEDGED = {"covered_call", "call_spread", "put_spread", "delta_hedged_straddle", "protective_put"}
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _deribit_date(ts: pd.Timestamp) -> str:
    return f"{ts.day}{_MONTHS[ts.month - 1]}{ts.year % 100:02d}"


def _strike_step(spot: float) -> float:
    raw = spot * 0.01
    p = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * p >= raw:
            return float(m * p)
    return float(10 * p)


def _ncdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _expiries(market: MarketSnapshot, u: str) -> list[pd.Timestamp]:
    """Candidate expiries of ``u``: surface slices 5-200 days out, else standard tenors at 08:00 UTC."""
    vt = market.valuation_time
    um = market[u]
    cands: list[pd.Timestamp] = []
    if um.surface is not None:
        cands = [e for e in um.surface.expiries if 5 <= (e - vt).total_seconds() / 86400 <= 200]
    if not cands:
        base = vt.normalize() + pd.Timedelta(hours=8)
        cands = [base + pd.Timedelta(days=d) for d in (7, 30, 91, 182)]
    return cands


def generate_population(
    n_accounts: int,
    seed: int,
    *,
    market: MarketSnapshot | None = None,
    underlying_weights: Mapping[str, float] | None = None,
    strategy_weights: Mapping[str, float] | None = None,
    notional_median: float = 50_000.0,
    notional_sigma: float = 1.3,
    whale_share: float = 0.02,
    pareto_alpha: float = 1.5,
    leverage_median: float = 4.0,
    leverage_sigma: float = 0.6,
    coin_margined_share: float = 0.4,
    second_underlying_share: float = 0.25,
    model: Any = None,
    im_cushion_median: float = 0.5,
    im_cushion_sigma: float = 0.8,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw a synthetic population of accounts (see the module docstring for the recipe).

    Parameters
    ----------
    n_accounts : int
        Number of accounts (>= 1).
    seed : int
        Seed of the random generator: equal arguments give equal tables.
    market : MarketSnapshot, optional
        The market the positions live on (default: the bundled example book's market).
    underlying_weights : mapping, optional
        Probability weight of each underlying (default BTC 0.5, ETH 0.3, SPX 0.2, restricted to the
        underlyings of ``market``; others equal weights).
    strategy_weights : mapping, optional
        Weight of each strategy of :data:`STRATEGIES` (default :data:`DEFAULT_STRATEGY_WEIGHTS`).
    notional_median, notional_sigma : float
        Lognormal gross notional per account (USD median, log standard deviation).
    whale_share, pareto_alpha : float
        Share of accounts whose notional is scaled by a Pareto(alpha) draw.
    leverage_median, leverage_sigma : float
        Lognormal gross leverage (notional / collateral), clipped to [1, 50].
    coin_margined_share : float
        Share of crypto accounts that are coin-margined (inverse contracts, coin collateral).
    second_underlying_share : float
        Share of crypto accounts that also trade a second crypto underlying.
    model : str, Path or Model, optional
        When given, no account opens below its initial margin under this model: an account's collateral
        is scaled up (all its assets alike) until ``equity >= IM x (1 + cushion)`` with ``cushion``
        lognormal (median ``im_cushion_median``, log-sd ``im_cushion_sigma``).
    im_cushion_median, im_cushion_sigma : float
        The cushion above IM (see ``model``).

    Returns
    -------
    positions : DataFrame
        Positions-schema rows (see :mod:`greeksmargin.book.positions`), index 0..n_positions-1. The
        strategy of each account (``"short_put"``, ``"covered_call+long_call"``, ...) is in
        ``positions.attrs["strategies"]`` (a dict account -> name).
    collateral : DataFrame
        Collateral-schema rows (``account, asset, amount``; prices from the market).

    Examples
    --------
    >>> pos, col = generate_population(100, seed=1)  # doctest: +SKIP
    """
    if n_accounts < 1:
        raise ValueError("n_accounts must be >= 1")
    if market is None:
        from greeksmargin.datasets import load_example_book

        market = load_example_book().market
    rng = np.random.default_rng(seed)
    unders = list(market.underlyings)
    default_uw = {"BTC": 0.5, "ETH": 0.3, "SPX": 0.2}
    uw = dict(underlying_weights) if underlying_weights else {u: default_uw.get(u, 0.2) for u in unders}
    uw = {u: w for u, w in uw.items() if u in unders and w > 0}
    if not uw:
        raise ValueError("no underlying of the market has a positive weight")
    u_names = list(uw)
    u_p = np.array(list(uw.values()), dtype=float)
    u_p /= u_p.sum()
    sw = dict(strategy_weights) if strategy_weights else dict(DEFAULT_STRATEGY_WEIGHTS)
    s_names = [s for s in STRATEGIES if sw.get(s, 0) > 0]
    s_p = np.array([sw[s] for s in s_names], dtype=float)
    s_p /= s_p.sum()
    crypto = [u for u in u_names if market.currency(u) != "USD"]

    # account-level draws, vectorised, in a fixed order
    n = int(n_accounts)
    notional = notional_median * np.exp(notional_sigma * rng.standard_normal(n))
    whale = rng.random(n) < whale_share
    notional = np.where(whale, notional * (1.0 + rng.pareto(pareto_alpha, n)), notional)
    leverage = np.clip(leverage_median * np.exp(leverage_sigma * rng.standard_normal(n)), 1.0, 50.0)
    first_u = rng.choice(len(u_names), size=n, p=u_p)
    coin_draw = rng.random(n)
    second_draw = rng.random(n)
    usd_asset_draw = rng.random(n)
    extra_coll_draw = rng.random(n)
    width = len(str(n - 1))

    pos_rows: list[dict[str, Any]] = []
    col_rows: list[dict[str, Any]] = []
    strategies: dict[str, str] = {}
    vt = market.valuation_time
    exp_cache = {u: _expiries(market, u) for u in u_names}
    for i in range(n):
        acct = f"acct{i:0{width}d}"
        u0 = u_names[first_u[i]]
        is_crypto = u0 in crypto
        coin = is_crypto and coin_draw[i] < coin_margined_share
        legs = [u0]
        if is_crypto and len(crypto) > 1 and second_draw[i] < second_underlying_share:
            others = [u for u in crypto if u != u0]
            legs.append(others[int(rng.integers(len(others)))])
        if coin and len(legs) > 1:
            legs = legs[:1]  # a coin-margined account holds one coin's contracts
        scale = 10.0 if u0 == "SPX" else 1.0
        acct_notional = notional[i] * scale
        gross = 0.0
        strat_names = []
        coin_hedge = 0.0
        for u in legs:
            strat = s_names[int(rng.choice(len(s_names), p=s_p))]
            strat_names.append(strat)
            leg_notional = acct_notional / len(legs)
            rows, g, hedge = _strategy_rows(rng, market, u, strat, leg_notional, coin, acct, exp_cache[u], vt)
            pos_rows.extend(rows)
            gross += g
            coin_hedge += hedge
        strategies[acct] = "+".join(strat_names)
        lev = leverage[i] * (2.0 if all(s == "leveraged_perp" for s in strat_names) else 1.0)
        lev = min(lev, 50.0)
        coll_usd = gross / lev
        if coin:
            s = market.spot(legs[0])
            asset = market.currency(legs[0])
            col_rows.append({"account": acct, "asset": asset, "amount": round(coll_usd / s + coin_hedge, 6)})
        else:
            stable = "USDC" if usd_asset_draw[i] < 0.9 else "USD"
            if extra_coll_draw[i] < 0.15 and crypto:
                c = crypto[int(extra_coll_draw[i] * 1e6) % len(crypto)]
                part = 0.5 * coll_usd
                col_rows.append({"account": acct, "asset": stable, "amount": round(coll_usd - part, 2)})
                col_rows.append(
                    {"account": acct, "asset": market.currency(c), "amount": round(part / market.spot(c), 6)}
                )
            else:
                col_rows.append({"account": acct, "asset": stable, "amount": round(coll_usd, 2)})
    positions = pd.DataFrame(pos_rows)
    positions = positions[[c for c in POSITION_COLUMNS if c in positions.columns]].reset_index(drop=True)
    collateral = pd.DataFrame(col_rows, columns=["account", "asset", "amount"])
    cushion = im_cushion_median * np.exp(im_cushion_sigma * rng.standard_normal(n))
    if model is not None:
        collateral = _top_up_to_im(positions, collateral, market, model, cushion)
    positions.attrs["strategies"] = strategies
    collateral.attrs["strategies"] = strategies
    return positions, collateral


def _top_up_to_im(
    positions: pd.DataFrame, collateral: pd.DataFrame, market: MarketSnapshot, model: Any, cushion: np.ndarray
) -> pd.DataFrame:
    """Scale each account's collateral so that equity >= IM x (1 + cushion) at today's market."""
    from greeksmargin.book.collateral import load_collateral, value_collateral
    from greeksmargin.book.positions import load_positions
    from greeksmargin.engine.margin import compute_margin
    from greeksmargin.risk.greeks import price_positions

    pos = load_positions(positions, valuation_time=market.valuation_time)
    acc = compute_margin(pos, market, model).accounts.set_index("account")
    fx = acc["currency"].map(lambda c: market.fx_to_usd(c) if c else 1.0).astype(float)
    im_usd = acc["im"].astype(float).fillna(0.0) * fx
    mtm_usd = price_positions(pos, market).groupby("account")["value_usd"].sum()
    accounts = list(pd.unique(collateral["account"]))
    ccy = acc["currency"].reindex(accounts).fillna("USD").to_dict()
    coll_usd = value_collateral(load_collateral(collateral), market, margin_currency=ccy)["im_value_usd"]
    order = {a: i for i, a in enumerate(sorted(accounts))}
    cush = np.array([cushion[order[a] % len(cushion)] for a in accounts])
    im_a = im_usd.reindex(accounts).fillna(0.0).to_numpy()
    need = im_a * (1.0 + cush) - mtm_usd.reindex(accounts).fillna(0.0).to_numpy()
    have = coll_usd.reindex(accounts).to_numpy()
    factor = pd.Series(np.where((have > 0) & (need > have), need / np.where(have > 0, have, 1.0), 1.0), index=accounts)
    out = collateral.copy()
    f = out["account"].map(factor).to_numpy()
    out["amount"] = np.where(out["asset"].isin(["USD", "USDC"]), np.round(out["amount"] * f, 2),
                             np.round(out["amount"] * f, 6))
    # round up by one cent / 1e-6 coin so rounding never leaves an account just below its target
    out["amount"] = out["amount"] + np.where(f > 1, np.where(out["asset"].isin(["USD", "USDC"]), 0.01, 1e-6), 0.0)
    return out


def _strategy_rows(
    rng: np.random.Generator,
    market: MarketSnapshot,
    u: str,
    strat: str,
    notional: float,
    coin: bool,
    acct: str,
    expiries: list[pd.Timestamp],
    vt: pd.Timestamp,
) -> tuple[list[dict[str, Any]], float, float]:
    """Rows of one strategy; returns (rows, gross notional USD, coin amount of a coin-collateral hedge)."""
    s = market.spot(u)
    is_crypto = market.currency(u) != "USD"
    mult = 1.0 if is_crypto else 100.0
    lot = {"BTC": 0.1, "ETH": 1.0}.get(u, 0.1 if is_crypto else 1.0)
    q = max(lot, round(notional / (s * mult) / lot) * lot)
    settle = "inverse" if coin else "linear"
    prem = market.currency(u) if coin else "USD"
    step = _strike_step(s)
    expiry = expiries[int(rng.integers(len(expiries)))]
    T = (expiry - vt).total_seconds() / (365.0 * 86400)
    rows: list[dict[str, Any]] = []
    hedge_coin = 0.0

    def k_of(otm: float, call: bool) -> float:
        k = s * (1 + otm) if call else s * (1 - otm)
        return float(max(step, round(k / step) * step))

    def opt(call: bool, k: float, qty: float) -> None:
        if is_crypto:
            pre = u if coin else f"{u}_USDC"
            name = f"{pre}-{_deribit_date(expiry)}-{int(k)}-{'C' if call else 'P'}"
        else:
            name = f"{u} {expiry.strftime('%y%m%d')} {'C' if call else 'P'}{int(k)}"
        rows.append(dict(account=acct, instrument=name, underlying=u, kind="option",
                         option_type="call" if call else "put", strike=k, expiry=expiry, quantity=qty,
                         multiplier=mult, settlement=settle, premium_currency=prem))

    def delta_one(qty: float, kind: str | None = None) -> None:
        if kind is None:
            kind = "perpetual" if is_crypto else "future"
        if kind == "perpetual":
            name = f"{u}-PERPETUAL" if coin else f"{u}_USDC-PERPETUAL"
            e = pd.NaT
        elif kind == "spot":
            name, e = f"{u}-SPOT", pd.NaT
        else:
            name = f"{u}-{_deribit_date(expiry)}" if is_crypto else f"{u}-FUT-{expiry.strftime('%y%m%d')}"
            e = expiry
        rows.append(dict(account=acct, instrument=name, underlying=u, kind=kind, option_type=None,
                         strike=np.nan, expiry=e, quantity=qty, multiplier=mult, settlement=settle,
                         premium_currency=prem))

    otm = float(rng.uniform(0.05, 0.25))
    if strat == "covered_call":
        opt(True, k_of(otm, True), -q)
        if coin:
            hedge_coin = q * mult  # the coin collateral is the cover
        else:
            delta_one(q, "spot" if is_crypto else "future")
    elif strat in ("call_spread", "put_spread"):
        call = strat == "call_spread"
        k1 = k_of(0.02 if call else 0.02, call)
        k2 = k_of(0.02 + otm, call)
        if k2 == k1:
            k2 = k1 + step if call else max(step, k1 - step)
        sign = 1.0 if rng.random() < 0.7 else -1.0  # 70% debit spreads, 30% credit spreads
        opt(call, k1, sign * q)
        opt(call, k2, -sign * q)
    elif strat == "delta_hedged_straddle":
        k = float(max(step, round(s / step) * step))
        vol = float(market.vol(u, [T], [k])[0])
        f = float(market.forward(u, [T])[0])
        d1 = (math.log(f / k) + 0.5 * vol * vol * T) / (vol * math.sqrt(T))
        delta = 2 * _ncdf(d1) - 1.0  # straddle delta per unit (forward)
        opt(True, k, -q)
        opt(False, k, -q)
        hedge = round(q * delta / lot) * lot
        if hedge != 0:
            delta_one(hedge)
    elif strat == "protective_put":
        if coin:
            hedge_coin = q * mult
        else:
            delta_one(q, "spot" if is_crypto else "future")
        opt(False, k_of(otm, False), q)
    elif strat == "short_put":
        opt(False, k_of(otm, False), -q)
    elif strat == "short_strangle":
        opt(True, k_of(otm, True), -q)
        opt(False, k_of(otm, False), -q)
    elif strat == "long_call":
        opt(True, k_of(otm * 0.5, True), q)
    elif strat == "leveraged_perp":
        side = 1.0 if rng.random() < 0.6 else -1.0
        delta_one(side * q)
    else:  # pragma: no cover - names come from STRATEGIES
        raise ValueError(f"unknown strategy {strat!r}")
    gross = q * mult * s * (2.0 if strat in ("short_strangle", "delta_hedged_straddle") else 1.0)
    return rows, gross, hedge_coin
