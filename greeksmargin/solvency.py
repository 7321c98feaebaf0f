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
* **Status** (first that applies): ``bankrupt`` (equity <= 0), ``below_mm`` (equity < MM and not at the
  boundary), ``below_im`` (equity_im < IM), ``healthy``.
* **Boundary rule**: ``at_mm`` is True when ``|equity - MM| <= AT_MM_RTOL x max(|equity|, |MM|)``
  (1e-9 relative). An account at the boundary meets MM: it is not ``below_mm`` and is not liquidated
  (exchanges liquidate when equity < MM, i.e. margin ratio > 100%).

Moved markets
-------------
A *move* is a relative spot move per underlying (``{"BTC": -0.2}``): spot, listed forwards and the
perpetual mark scale by ``1 + m``; collateral linked to the underlying moves too
(:mod:`greeksmargin.collateral`); implied vols react by the model's own vol-shock rule
(:class:`VolReaction`): ``sigma' = sigma + min(|m| / R, 1) x (sigma_up(sigma, T) - sigma)`` with ``R`` the
largest core move of the model's scenario grid for the underlying and ``sigma_up`` the model's
term-dependent "vol up" scenario, sticky strike (the vol of each held instrument is moved; the surface
slices too). Vol rises for moves in either direction: conservative for option sellers, who are the
accounts that get liquidated. MM is recomputed at the moved market by the margin model (full
revaluation), never from Greeks.

Distance to liquidation
-----------------------
For each account and each underlying alone (and all underlyings together, ``"ALL"``), the smallest
adverse relative move at which ``equity(m) = MM(m)``. A grid of moves (both directions, up to
``max_move`` = 90%) brackets the first sign change of ``equity - MM``; :func:`scipy.optimize.brentq` on
full revaluation of the account alone then finds the root (``method = "brentq"``). The nearer of the
two directions is reported with its price level; no crossing within +-90% gives NaN and the reason
``"no such move within +-90%"``, an account already below MM gives 0 and ``"already below MM"``. For very
large books (more than ``exact_limit`` accounts) the root is linearly interpolated inside the grid
bracket (``method = "grid"``); the method is reported per row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.optimize import brentq

from .collateral import asset_underlying, collateral_exposure
from .errors import ComputationError, InputError
from .market import MarketSnapshot, UnderlyingMarket

__all__ = [
    "AT_MM_RTOL",
    "MOVE_GRID",
    "STATUSES",
    "Book",
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
AT_MM_RTOL = 1e-9
STATUSES = ("healthy", "below_im", "below_mm", "bankrupt")
#: grid of absolute relative moves that brackets the distance to liquidation (each direction)
MOVE_GRID = np.array(
    [0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3,
     0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
)
#: coarser grid used when the root is interpolated (books of more than ``exact_limit`` accounts)
COARSE_GRID = np.array([0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.9])
NO_MOVE_REASON = "no such move within +-90%"

#: a margin function: (positions, market) -> DataFrame indexed by account with im, mm (float), currency
MarginFn = Callable[[pd.DataFrame, MarketSnapshot], pd.DataFrame]


# ------------------------------------------------------------------------------------- margin adapter
def margin_function(model: Any, *, isolated: bool = False) -> MarginFn:
    """Wrap the margin engine as a :data:`MarginFn`.

    Parameters
    ----------
    model : str, Path or Model
        Passed to :func:`greeksmargin.margin.compute_margin`.
    isolated : bool
        False: the account is margined as one pool (cross margin). True: every position is margined
        alone by the same model and the account's IM / MM are the sums (isolated margin).

    Returns
    -------
    MarginFn
        ``f(positions, market) -> DataFrame`` indexed by account with ``im``, ``mm`` and ``currency``.
    """
    from .margin import compute_margin
    from .models import load_model

    loaded = load_model(model) if isinstance(model, str) or hasattr(model, "__fspath__") else model

    def cross(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
        if len(positions) == 0:
            return pd.DataFrame({"im": [], "mm": [], "currency": []}, index=pd.Index([], name="account"))
        acc = compute_margin(positions, market, loaded).accounts
        acc = acc.set_index("account") if "account" in acc.columns else acc
        cur = acc["currency"] if "currency" in acc.columns else pd.Series("USD", index=acc.index)
        return pd.DataFrame({"im": acc["im"].astype(float), "mm": acc["mm"].astype(float), "currency": cur})

    def attribution(positions: pd.DataFrame, market: MarketSnapshot) -> pd.Series:
        """Contribution of each position (label) to its account's IM, in the account's margin currency."""
        res = compute_margin(positions, market, loaded)
        att = res.attribution()
        return pd.Series(att["contribution"].to_numpy(dtype=float), index=att["position"].to_numpy())

    cross.attribution = attribution  # type: ignore[attr-defined]
    if not isolated:
        return cross

    def iso(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
        if len(positions) == 0:
            return cross(positions, market)
        per = per_position_margin(cross, positions, market)
        per["account"] = positions["account"].to_numpy()
        per = _to_common_ccy(per, market)
        g = per.groupby("account", sort=False)[["im", "mm"]].sum()
        g["currency"] = "USD"
        return g

    return iso


def per_position_margin(margin_fn: MarginFn, positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
    """IM and MM of every position margined alone (isolated); DataFrame indexed like ``positions``."""
    labels = [f"{a}\x1f{i}" for i, a in enumerate(positions["account"].astype(str))]
    solo = positions.copy()
    solo["account"] = labels
    res = margin_fn(solo, market).reindex(labels)
    out = pd.DataFrame(
        {
            "im": res["im"].fillna(0.0).to_numpy(dtype=float),
            "mm": res["mm"].fillna(0.0).to_numpy(dtype=float),
            "currency": res["currency"].fillna("USD").to_numpy(dtype=object),
        },
        index=positions.index,
    )
    return out


def _to_common_ccy(per: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
    fx = per["currency"].map({c: market.fx_to_usd(c) for c in pd.unique(per["currency"])}).to_numpy(dtype=float)
    per = per.copy()
    per["im"] = per["im"].to_numpy(dtype=float) * fx
    per["mm"] = per["mm"].to_numpy(dtype=float) * fx
    per["currency"] = "USD"
    return per


def simple_scan_margin(
    price_range: float = 0.15, n_moves: int = 7, vol_up: float = 0.3, mm_factor: float = 0.8
) -> MarginFn:
    """A plain reference margin function: worst full-revaluation loss on a small spot x vol grid.

    ``IM = max(0, -min_s sum_i PnL_i(s))`` over ``n_moves`` relative moves in ``[-R, R]`` (every
    underlying moving together) times vol unchanged / up by ``vol_up`` (relative), in USD;
    ``MM = mm_factor x IM``. It is not a house model: it makes the solvency machinery testable apart
    from the margin engine (the properties tested hold for any margin function).

    Returns
    -------
    MarginFn
    """
    from .greeks import market_arrays
    from .pricing import black76_price

    grid = np.linspace(-price_range, price_range, n_moves)

    def fn(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
        if len(positions) == 0:
            return pd.DataFrame({"im": [], "mm": [], "currency": []}, index=pd.Index([], name="account"))
        a = market_arrays(positions, market)
        kc, size, F = a["kind_code"], a["size"], a["forward"]
        o = kc == 0
        v0 = np.zeros(len(size))
        v0[o] = black76_price(a["is_call"][o], F[o], a["strike"][o], a["T"][o], a["vol"][o], a["rate"][o])
        acct, names = pd.factorize(positions["account"].astype(str), sort=False)
        worst = np.zeros(len(names))
        for m in grid:
            for vu in (0.0, vol_up):
                pnl = np.where(kc == 0, 0.0, (F * m) * size)
                pnl[kc == 2] = (a["spot"] * a["perp_ratio"] * m * size)[kc == 2]
                pnl[kc == 3] = (a["spot"] * m * size)[kc == 3]
                if o.any():
                    v1 = black76_price(
                        a["is_call"][o], F[o] * (1 + m), a["strike"][o], a["T"][o], a["vol"][o] * (1 + vu), a["rate"][o]
                    )
                    pnl[o] = (v1 - v0[o]) * size[o]
                tot = np.bincount(acct, weights=pnl, minlength=len(names))
                worst = np.minimum(worst, tot)
        im = np.maximum(-worst, 0.0)
        return pd.DataFrame(
            {"im": im, "mm": mm_factor * im, "currency": "USD"}, index=pd.Index(list(names), name="account")
        )

    return fn


# ---------------------------------------------------------------------------------------- vol reaction
def _default_rule() -> Any:
    from .scenarios import VolShockRule

    # Deribit-style term rule (METHODS.md section 3); used only when the model gives none
    return VolShockRule(kind="relative", up=0.3, down=0.3, short_power=0.3, long_power=0.13, min_vol=0.01)


@dataclass(frozen=True)
class VolReaction:
    """How implied vol reacts to a spot move, by the margin model's own vol-shock rule.

    For a relative move ``m`` of an underlying whose model price range is ``R``::

        sigma' = sigma + min(|m| / R, 1) x (sigma_up(sigma, T) - sigma)

    with ``sigma_up`` the model's shocked-up vol (:class:`~greeksmargin.scenarios.VolShockRule`, term
    dependent): at a move of the full range the vol is the model's "vol up" scenario, in between it is
    interpolated linearly, beyond it stays there. Vol rises for moves in either direction.

    Parameters
    ----------
    rules : mapping of str -> VolShockRule
        Per underlying (key ``"*"``: every other underlying).
    price_range : mapping of str -> float
        ``R`` per underlying (key ``"*"``: default); the house default 0.15 when absent.
    """

    rules: Mapping[str, Any] = field(default_factory=dict)
    price_range: Mapping[str, float] = field(default_factory=dict)

    def _rule(self, u: str) -> Any:
        r = self.rules.get(u, self.rules.get("*"))
        return r if r is not None else _default_rule()

    def _range(self, u: str) -> float:
        return float(self.price_range.get(u, self.price_range.get("*", 0.15)))

    def vols(self, underlying: str, move: float, vol: Any, t_years: Any) -> NDArray[np.float64]:
        """Vols after a relative move ``move`` of ``underlying``; shape of ``vol``.

        Parameters
        ----------
        underlying : str
            The underlying that moved.
        move : float
            Relative move.
        vol : array_like of shape (n,)
            Today's vols (decimal).
        t_years : array_like of shape (n,)
            Expiries in years.
        """
        v = np.atleast_1d(np.asarray(vol, dtype=float))
        if move == 0.0 or v.size == 0:
            return v.copy()
        t = np.broadcast_to(np.asarray(t_years, dtype=float), v.shape)
        frac = min(abs(float(move)) / self._range(underlying), 1.0)
        up = self._rule(underlying).shocked(v.ravel(), t.ravel(), np.array([1]))[0].reshape(v.shape)
        return np.minimum(v + frac * (up - v), 4.99)

    @classmethod
    def from_model(cls, model: Any, underlyings: Sequence[str] = ()) -> VolReaction:
        """The vol-shock rule and price ranges of a margin model (house defaults where it has none).

        For a component model (:class:`~greeksmargin.models.RuleSet`): per underlying, the vol rule of
        its scenario grid (``grid_for(u).vol_rule``) and ``R`` = the largest core (non-tail) move of that
        grid. Otherwise every :class:`~greeksmargin.scenarios.VolShockRule` found in the model and
        numeric fields named ``price_range`` / ``range`` / ``price_shock`` are used.

        Parameters
        ----------
        model : str, Path, Model or None
            The model (None: house defaults).
        underlyings : sequence of str
            Underlyings to read per-underlying grids for.
        """
        if model is None:
            return cls()
        try:
            from .models import load_model

            m = load_model(model) if isinstance(model, str) or hasattr(model, "__fspath__") else model
        except Exception:  # noqa: BLE001 - any failure: house defaults
            return cls()
        from .scenarios import VolShockRule

        rules: dict[str, Any] = {}
        ranges: dict[str, float] = {}
        params = getattr(m, "params", None)
        if params is not None and hasattr(params, "grid_for"):
            for u in (*underlyings, None):
                g = params.grid if u is None else params.grid_for(u)
                if g is None:
                    continue
                key = "*" if u is None else u
                rules[key] = g.vol_rule
                core = np.abs(g.spot_move[~np.asarray(g.is_tail, dtype=bool)])
                if core.size and core.max() > 0:
                    ranges[key] = float(core.max())
            if rules:
                return cls(rules=rules, price_range=ranges)
        _walk(m, (), rules, ranges, VolShockRule, 0)
        return cls(rules=rules, price_range=ranges)


_RANGE_NAMES = {"price_range", "range", "price_shock", "spot_range", "price_move"}


def _walk(obj: Any, path: tuple[str, ...], rules: dict[str, Any], ranges: dict[str, float], rule_cls: Any,
          depth: int) -> None:
    if depth > 6 or obj is None or isinstance(obj, (str, bytes, np.ndarray, pd.DataFrame)):
        return
    under = next((p for p in reversed(path) if p.isupper() and p.isalpha()), "*")
    if isinstance(obj, rule_cls):
        rules.setdefault(under, obj)
        return
    if isinstance(obj, Mapping):
        items = list(obj.items())
    elif hasattr(obj, "__dataclass_fields__"):
        items = [(k, getattr(obj, k, None)) for k in obj.__dataclass_fields__]
    elif isinstance(obj, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(obj)]
    else:
        return
    for k, v in items:
        k = str(k)
        if k in _RANGE_NAMES and isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1:
            ranges.setdefault(under, float(v))
        elif k in _RANGE_NAMES and isinstance(v, Mapping):
            for uu, x in v.items():
                if isinstance(x, (int, float)) and 0 < x < 1:
                    ranges.setdefault(str(uu), float(x))
        else:
            _walk(v, (*path, k), rules, ranges, rule_cls, depth + 1)


# ------------------------------------------------------------------------------------------ the book
def account_currency(positions: pd.DataFrame, market: MarketSnapshot) -> pd.Series:
    """Margin currency per account: the coin if every position is inverse on one coin, else ``USD``."""
    if len(positions) == 0:
        return pd.Series(dtype=object)
    inv = positions["settlement"].to_numpy(dtype=object) == "inverse"
    und = positions["underlying"].to_numpy(dtype=object)
    ccy_of = {u: market.currency(u) for u in pd.unique(und)}
    coin = np.where(inv, [ccy_of[u] for u in und], "USD")
    df = pd.DataFrame({"account": positions["account"].to_numpy(dtype=object), "c": coin})
    g = df.groupby("account", sort=False)["c"].agg(["first", "nunique"])
    return pd.Series(np.where(g["nunique"] == 1, g["first"], "USD"), index=g.index, dtype=object)


class Book:
    """Positions, collateral and market of a set of accounts, revaluable at moved markets.

    Parameters
    ----------
    positions : DataFrame
        Positions (schema of :mod:`greeksmargin.positions`).
    market : MarketSnapshot
        Today's market.
    collateral : DataFrame, optional
        Collateral (from :func:`~greeksmargin.collateral.load_collateral`); accounts without rows have
        none.
    margin_fn : MarginFn
        Margin of the accounts at a market.
    vol_reaction : VolReaction, optional
        Vol reaction to moves (default :class:`VolReaction` ()).
    accounts : sequence of str, optional
        Accounts to cover (default: those of the positions, then those only in the collateral).
    currencies : mapping of str -> str, optional
        Margin currency of some accounts (default :func:`account_currency`).
    """

    def __init__(
        self,
        positions: pd.DataFrame,
        market: MarketSnapshot,
        collateral: pd.DataFrame | None,
        margin_fn: MarginFn,
        *,
        vol_reaction: VolReaction | None = None,
        accounts: Sequence[str] | None = None,
        currencies: Mapping[str, str] | None = None,
    ) -> None:
        from .greeks import market_arrays
        from .positions import load_positions

        self.market = market
        self.margin_fn = margin_fn
        self.vol_reaction = vol_reaction or VolReaction()
        pos = positions if _is_normalised(positions) else load_positions(
            positions, valuation_time=market.valuation_time
        )
        self.positions = pos
        coll = collateral if collateral is not None else _empty_collateral()
        if accounts is None:
            accts = list(pd.unique(pos["account"].astype(str)))
            seen = set(accts)
            accts += [a for a in pd.unique(coll["account"]) if a not in seen]
        else:
            accts = list(accounts)
        self.accounts: list[str] = accts
        self.collateral = coll[coll["account"].isin(accts)]
        ccy = account_currency(pos, market).reindex(accts).fillna("USD")
        if currencies:
            ccy = pd.Series([currencies.get(a, c) for a, c in zip(accts, ccy)], index=ccy.index, dtype=object)
        self.currency: NDArray[Any] = ccy.to_numpy(dtype=object)
        self.unders: list[str] = list(market.underlyings)
        self.acct_code = pd.Index(accts).get_indexer(pos["account"].astype(str))
        if (self.acct_code < 0).any():
            bad = pos.index[int(np.argmax(self.acct_code < 0))]
            raise InputError("account of the position is not in the accounts asked for", row=bad, column="account")
        self.a = market_arrays(pos, market) if len(pos) else None
        if self.a is not None:
            names = list(self.a["underlyings"])
            self.u_code = np.array([self.unders.index(u) for u in names], dtype=int)[self.a["underlying_code"]]
            self.T = self.a["T"]
            self.inverse = self.a["inverse"]
            base_perp = self.a["spot"] * self.a["perp_ratio"]
            self.base_delta_one = np.where(self.a["kind_code"] == 1, self.a["forward"], base_perp)
        mc = dict(zip(accts, self.currency))
        self.coll_fixed = {}
        self.coll_linked = {}
        for h in ("mm", "im", "none"):
            f, lk = collateral_exposure(self.collateral, market, accts, margin_currency=mc, haircut=h)
            self.coll_fixed[h], self.coll_linked[h] = f, lk
        self._fx_base = {c: market.fx_to_usd(c) for c in set(self.currency)}
        self._fx_link = {c: asset_underlying(c, market) for c in set(self.currency)}
        if self.a is not None:
            pos_ccy = np.where(self.inverse, [market.currency(self.unders[j]) for j in self.u_code], "USD")
            self.pos_ccy: NDArray[Any] = pos_ccy.astype(object)
            self._fx_base.update({c: market.fx_to_usd(c) for c in set(pos_ccy)})
            self._fx_link.update({c: asset_underlying(c, market) for c in set(pos_ccy)})

    # ------------------------------------------------------------------ moves
    def move_vector(self, moves: Mapping[str, float] | None) -> NDArray[np.float64]:
        """Relative move per underlying of ``market.underlyings``; shape (n_underlyings,)."""
        moves = moves or {}
        for u in moves:
            if u not in self.unders:
                raise InputError(f"underlying '{u}' is not in the market snapshot", column="underlying")
        return np.array([float(moves.get(u, 0.0)) for u in self.unders], dtype=float)

    def fx_at(self, ccy: str, mv: NDArray[np.float64]) -> float:
        """USD price of ``ccy`` at moves ``mv``."""
        link = self._fx_link.get(ccy)
        base = self._fx_base.get(ccy)
        if base is None:
            base = self.market.fx_to_usd(ccy)
            link = asset_underlying(ccy, self.market)
        return base * (1.0 + mv[self.unders.index(link)]) if link is not None else base

    def vols_at(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """Implied vol of every position at moves ``mv`` (NaN for non-options); shape (n_positions,)."""
        if self.a is None:
            return np.zeros(0)
        out = self.a["vol"].copy()
        opt = self.a["kind_code"] == 0
        for j, u in enumerate(self.unders):
            if mv[j] != 0.0:
                m = (self.u_code == j) & opt
                if m.any():
                    out[m] = self.vol_reaction.vols(u, float(mv[j]), out[m], self.T[m])
        return out

    def shifted_market(self, mv: NDArray[np.float64]) -> MarketSnapshot:
        """The market at moves ``mv`` (see :func:`shift_market`), the book's instruments sticky strike."""
        if not np.any(mv):
            return self.market
        inst_vols: dict[str, dict[str, float]] = {}
        if self.a is not None:
            vn = self.vols_at(mv)
            opt = self.a["kind_code"] == 0
            names = self.positions["instrument"].to_numpy(dtype=object)
            for j, u in enumerate(self.unders):
                m = opt & (self.u_code == j)
                if m.any() and mv[j] != 0.0:
                    inst_vols[u] = dict(zip(names[m], vn[m]))
        return shift_market(
            self.market, dict(zip(self.unders, mv)), vol_reaction=self.vol_reaction, instrument_vols=inst_vols
        )

    # ------------------------------------------------------------------ values
    def position_values(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """Value of every position in its account's margin currency at moves ``mv``; shape (n_positions,).

        Options and spot: value; futures and perpetuals: P&L from today's price (see module docstring).
        """
        from .pricing import black76_price

        n = len(self.positions)
        if self.a is None:
            return np.zeros(0)
        a = self.a
        g = 1.0 + mv[self.u_code]
        kc = a["kind_code"]
        S = a["spot"] * g
        F = a["forward"] * g
        size = a["size"]
        native = np.zeros(n)
        o = kc == 0
        if o.any():
            vol = self.vols_at(mv)[o]
            px = black76_price(a["is_call"][o], F[o], a["strike"][o], a["T"][o], vol, a["rate"][o])
            native[o] = np.where(self.inverse[o], px / F[o], px) * size[o]
        sp = kc == 3
        native[sp] = np.where(self.inverse[sp], 1.0, S[sp]) * size[sp]
        d1 = (kc == 1) | (kc == 2)
        if d1.any():
            p0 = self.base_delta_one[d1]
            p1 = p0 * g[d1]
            native[d1] = np.where(self.inverse[d1], size[d1] * (1.0 - p0 / p1), (p1 - p0) * size[d1])
        # convert native currency -> account currency
        fx_cache: dict[str, float] = {}

        def fx(c: str) -> float:
            if c not in fx_cache:
                fx_cache[c] = self.fx_at(c, mv)
            return fx_cache[c]

        acct_ccy = self.currency[self.acct_code]
        same = self.pos_ccy == acct_ccy
        if not same.all():
            pairs = pd.MultiIndex.from_arrays([self.pos_ccy[~same], acct_ccy[~same]])
            uniq, inv = np.unique(pairs.codes[0].astype(np.int64) * 10_000 + pairs.codes[1], return_inverse=True)
            conv_u = np.array(
                [fx(pairs.levels[0][c // 10_000]) / fx(pairs.levels[1][c % 10_000]) for c in uniq], dtype=float
            )
            native[~same] *= conv_u[inv]
        return native

    def collateral_values(self, mv: NDArray[np.float64], haircut: str = "mm") -> NDArray[np.float64]:
        """Collateral of each account in its margin currency at moves ``mv``; shape (n_accounts,)."""
        usd = self.coll_fixed[haircut] + self.coll_linked[haircut] @ (1.0 + mv)
        return usd / self.account_fx(mv)

    def account_fx(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """USD price of each account's margin currency at moves ``mv``; shape (n_accounts,)."""
        uniq, inv = np.unique(self.currency.astype(str), return_inverse=True)
        return np.array([self.fx_at(c, mv) for c in uniq], dtype=float)[inv]

    def state(
        self, mv: NDArray[np.float64] | Mapping[str, float] | None = None, *, margin: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Equity, IM and MM of every account at moves ``mv`` (full revaluation; MM recomputed).

        Returns
        -------
        DataFrame of shape (n_accounts, 12)
            Index ``account``; columns ``currency``, ``fx`` (USD per unit of it), ``collateral``,
            ``collateral_im``, ``collateral_mm``, ``mtm``, ``equity``, ``equity_im``, ``im``, ``mm``,
            ``n_positions``, ``error`` (see the module docstring).
        """
        if mv is None or isinstance(mv, Mapping):
            mv = self.move_vector(mv)  # type: ignore[arg-type]
        mv = np.asarray(mv, dtype=float)
        n_a = len(self.accounts)
        vals = self.position_values(mv)
        mtm = np.bincount(self.acct_code, weights=vals, minlength=n_a) if len(vals) else np.zeros(n_a)
        npos = np.bincount(self.acct_code, minlength=n_a) if len(vals) else np.zeros(n_a, dtype=int)
        fx = self.account_fx(mv)
        if margin is None:
            margin = self.margin_at(mv)
        mg = margin.reindex(self.accounts)
        m_ccy = mg["currency"].astype(object).fillna("").astype(str).to_numpy()
        uniq, inv = np.unique(m_ccy, return_inverse=True)
        m_fx = np.array([self.fx_at(c, mv) if c else np.nan for c in uniq], dtype=float)[inv]
        conv = np.where(np.isfinite(m_fx), m_fx / fx, 1.0)
        im = np.nan_to_num(mg["im"].to_numpy(dtype=float)) * conv
        mm = np.nan_to_num(mg["mm"].to_numpy(dtype=float)) * conv
        err = mg["error"].fillna("").to_numpy(dtype=object) if "error" in mg.columns else np.full(n_a, "", object)
        c_none = self.collateral_values(mv, "none")
        c_mm = self.collateral_values(mv, "mm")
        c_im = self.collateral_values(mv, "im")
        out = pd.DataFrame(
            {
                "currency": self.currency,
                "fx": fx,
                "collateral": c_none,
                "collateral_im": c_im,
                "collateral_mm": c_mm,
                "mtm": mtm,
                "equity": c_mm + mtm,
                "equity_im": c_im + mtm,
                "im": im,
                "mm": mm,
                "n_positions": npos,
                "error": err,
            },
            index=pd.Index(self.accounts, name="account"),
        )
        return out

    def margin_at(self, mv: NDArray[np.float64]) -> pd.DataFrame:
        """The margin function at the market moved by ``mv`` (accounts without positions absent)."""
        return self.margin_fn(self.positions, self.shifted_market(mv))

    def subset(self, accounts: Sequence[str]) -> Book:
        """The same book restricted to ``accounts`` (positions, collateral, same margin and vol rules)."""
        keep = set(accounts)
        return Book(
            self.positions[self.positions["account"].isin(keep)],
            self.market,
            self.collateral[self.collateral["account"].isin(keep)],
            self.margin_fn,
            vol_reaction=self.vol_reaction,
            accounts=list(accounts),
            currencies=dict(zip(self.accounts, self.currency)),
        )


def _is_normalised(positions: pd.DataFrame) -> bool:
    from .positions import COLUMNS

    return (
        list(positions.columns[: len(COLUMNS)]) == list(COLUMNS)
        and isinstance(positions["expiry"].dtype, pd.DatetimeTZDtype)
        and positions["quantity"].dtype == float
        and positions["multiplier"].dtype == float
        and positions["strike"].dtype == float
    )


def _empty_collateral() -> pd.DataFrame:
    return pd.DataFrame(
        {"account": pd.Series([], dtype=object), "asset": pd.Series([], dtype=object),
         "amount": pd.Series([], dtype=float), "price": pd.Series([], dtype=float),
         "im_haircut": pd.Series([], dtype=float), "mm_haircut": pd.Series([], dtype=float)}
    )


def shift_market(
    market: MarketSnapshot,
    moves: Mapping[str, float],
    *,
    vol_reaction: VolReaction | None = None,
    instrument_vols: Mapping[str, Mapping[str, float]] | None = None,
) -> MarketSnapshot:
    """A copy of ``market`` with relative spot moves and the vol reaction applied.

    Parameters
    ----------
    market : MarketSnapshot
        Today's market.
    moves : mapping of str -> float
        Relative move per underlying (missing: 0). Spot, listed forwards and perpetual mark scale by
        ``1 + m``; an explicit ``fx_to_usd`` entry of the underlying's coin scales too.
    vol_reaction : VolReaction, optional
        Scales each surface slice by the reaction factor at the slice's expiry (default: no reaction).
    instrument_vols : mapping of str -> mapping of str -> float, optional
        Per underlying, vols of named instruments at the moved market (they win over the surface:
        sticky strike for the book's instruments); the underlying's other listed instrument vols are
        moved by the reaction at a 30-day expiry.

    Returns
    -------
    MarketSnapshot
    """
    new: dict[str, UnderlyingMarket] = {}
    fx = dict(market.fx)
    for name in market.underlyings:
        um = market[name]
        m = float(moves.get(name, 0.0))
        if m == 0.0:
            new[name] = um
            continue
        if not m > -1.0:
            raise ComputationError(f"relative move {m} of '{name}' would make its price non-positive")
        f = 1.0 + m
        surf = um.surface
        if surf is not None and vol_reaction is not None:
            t_sl = market.years(list(surf.expiries))
            surf = replace(
                surf, vols=tuple(vol_reaction.vols(name, m, v, np.full(len(v), t)) for v, t in zip(surf.vols, t_sl))
            )
        iv = dict(um.instrument_vols)
        if iv and vol_reaction is not None:
            keys = list(iv)
            nv = vol_reaction.vols(name, m, np.array([iv[k] for k in keys]), np.full(len(keys), 30 / 365))
            iv = dict(zip(keys, (float(x) for x in nv)))
        if instrument_vols and name in instrument_vols:
            iv.update({k: float(min(v, 4.99)) for k, v in instrument_vols[name].items()})
        new[name] = replace(
            um,
            spot=um.spot * f,
            forwards={e: v * f for e, v in um.forwards.items()},
            perpetual_mark=None if um.perpetual_mark is None else um.perpetual_mark * f,
            instrument_vols=iv,
            surface=surf,
        )
        for key in list(fx):
            if asset_underlying(key, market) == name:
                fx[key] = fx[key] * f
    return MarketSnapshot(market.valuation_time, new, fx, source=market.source)


# ----------------------------------------------------------------------------------------- solvency
@dataclass
class SolvencyResult:
    """Solvency of every account (see the module docstring for the definitions).

    Attributes
    ----------
    accounts : DataFrame
        One row per account: ``account``, ``currency``, ``collateral``, ``collateral_mm``, ``mtm``,
        ``equity``, ``equity_im``, ``im``, ``mm``, ``available_funds``, ``excess``, ``margin_ratio``,
        ``status``, ``at_mm``, ``equity_usd``, ``mm_usd``, ``im_usd``, ``n_positions``, ``error``.
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
    """Add available funds, excess, margin ratio, status, at_mm and USD columns to a :meth:`Book.state`."""
    out = st.copy()
    status, at_mm = classify(out["equity"], out["equity_im"], out["im"], out["mm"])
    out["available_funds"] = out["equity_im"] - out["im"]
    out["excess"] = out["equity"] - out["mm"]
    e = out["equity"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["margin_ratio"] = np.where(e > 0, out["mm"].to_numpy(dtype=float) / e, np.inf)
    out["status"] = status
    out["at_mm"] = at_mm
    for k in ("equity", "im", "mm"):
        out[f"{k}_usd"] = out[k] * out["fx"]
    cols = ["currency", "collateral", "collateral_mm", "mtm", "equity", "equity_im", "im", "mm",
            "available_funds", "excess", "margin_ratio", "status", "at_mm", "equity_usd", "im_usd", "mm_usd",
            "n_positions", "error"]
    return out[cols].reset_index()


def assess_solvency(
    positions: pd.DataFrame,
    market: MarketSnapshot,
    collateral: pd.DataFrame | None,
    model: Any = "greeks-default",
    *,
    margin_fn: MarginFn | None = None,
    moves: Mapping[str, float] | None = None,
    distance: bool = False,
    vol_reaction: VolReaction | None = None,
    **distance_kw: Any,
) -> SolvencyResult:
    """Equity, IM, MM, margin ratio and status of every account; optionally the distance to liquidation.

    Parameters
    ----------
    positions : DataFrame
        Positions (schema of :mod:`greeksmargin.positions`).
    market : MarketSnapshot
        Today's market.
    collateral : DataFrame or None
        Collateral table (:func:`~greeksmargin.collateral.load_collateral`).
    model : str, Path or Model
        Margin model (ignored when ``margin_fn`` is given).
    margin_fn : MarginFn, optional
        Margin function (default: :func:`margin_function` (model)).
    moves : mapping of str -> float, optional
        Evaluate at a moved market (relative spot moves per underlying).
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
    fn = margin_fn or margin_function(model)
    vr = vol_reaction or VolReaction.from_model(model if margin_fn is None else None, market.underlyings)
    book = Book(positions, market, collateral, fn, vol_reaction=vr)
    st = finish_state(book.state(dict(moves or {})))
    dist = distance_to_liquidation(book, **distance_kw) if distance else None
    return SolvencyResult(accounts=st, distance=dist, moves=dict(moves or {}))


# -------------------------------------------------------------------------------- distance to liquidation
def _gap(st: pd.DataFrame) -> NDArray[np.float64]:
    """Equity minus MM per account."""
    e = st["equity"].to_numpy(dtype=float)
    m = st["mm"].to_numpy(dtype=float)
    return e - m


def distance_to_liquidation(
    book: Book,
    *,
    underlyings: Sequence[str] | None = None,
    include_all: bool = True,
    max_move: float = 0.9,
    grid: NDArray[np.float64] | None = None,
    exact_limit: int = 100,
    xtol: float = 1e-12,
) -> pd.DataFrame:
    """Smallest adverse move of each underlying (and of all together) that brings equity to MM.

    Parameters
    ----------
    book : Book
        The accounts (see :class:`Book`).
    underlyings : sequence of str, optional
        Underlyings moved alone (default: every underlying some account holds).
    include_all : bool
        Also move all underlyings together (row ``underlying = "ALL"``).
    max_move : float
        Largest relative move searched in each direction (0.9 = +-90%).
    grid : ndarray, optional
        Increasing absolute moves bracketing the root (default :data:`MOVE_GRID` up to ``max_move``;
        :data:`COARSE_GRID` when interpolating).
    exact_limit : int
        Root by :func:`scipy.optimize.brentq` on full revaluation when the book has at most this many
        accounts, else linear interpolation inside the grid bracket.
    xtol : float
        Absolute tolerance of the root in relative move.

    Returns
    -------
    DataFrame
        One row per (account, underlying): ``account``, ``underlying`` (name or ``"ALL"``), ``move``
        (signed relative move of the nearer direction, NaN if none), ``direction`` (``"down"``/``"up"``),
        ``price`` (level of the underlying at the move; NaN for ``"ALL"``), ``move_down``, ``move_up``
        (signed, NaN if none), ``equity_at_move``, ``mm_at_move``, ``method``, ``reason``.
    """
    exact = len(book.accounts) <= exact_limit
    if grid is None:
        base_grid = MOVE_GRID if exact else COARSE_GRID
        grid = base_grid[base_grid <= max_move + 1e-12]
        if grid[-1] < max_move:
            grid = np.append(grid, max_move)
    grid = np.asarray(grid, dtype=float)
    held = list(pd.unique(book.positions["underlying"])) if len(book.positions) else []
    targets: list[str] = [u for u in (underlyings or [u for u in book.unders if u in held])]
    if include_all and held:
        targets.append("ALL")
    base = book.state()
    gap0 = _gap(base)
    below = liquidatable(base["equity"], base["mm"])
    rows: list[dict[str, Any]] = []
    pos_acct = book.positions["account"].astype(str)
    for tgt in targets:
        if tgt == "ALL":
            holders = set(pos_acct)
        else:
            holders = set(pos_acct[book.positions["underlying"] == tgt])
        idx = [i for i, a in enumerate(book.accounts) if a in holders]
        sub = book.subset([book.accounts[i] for i in idx]) if len(idx) < len(book.accounts) else book
        res: dict[str, dict[str, Any]] = {}
        for sign, dname in ((-1.0, "down"), (1.0, "up")):
            gaps = np.empty((len(grid), len(idx)))
            for k, g in enumerate(grid):
                mv = _target_moves(book, tgt, sign * g)
                gaps[k] = _gap(sub.state(mv))
            for col, i in enumerate(idx):
                acct = book.accounts[i]
                r = res.setdefault(acct, {})
                if below[i]:
                    r[dname] = (0.0, "already below MM", "none")
                    continue
                cross = np.flatnonzero(gaps[:, col] <= 0)
                if cross.size == 0:
                    r[dname] = (np.nan, NO_MOVE_REASON, "grid")
                    continue
                k = int(cross[0])
                lo = 0.0 if k == 0 else grid[k - 1]
                g_lo = gap0[i] if k == 0 else gaps[k - 1, col]
                hi, g_hi = grid[k], gaps[k, col]
                if exact:
                    one = book.subset([acct])

                    def f(x: float, one: Book = one, s: float = sign, tgt: str = tgt) -> float:
                        return float(_gap(one.state(_target_moves(one, tgt, s * x)))[0])

                    if g_hi == 0.0:
                        root = hi
                    elif not g_lo > 0.0:  # at the MM boundary today (within 1e-9): distance 0
                        root = lo
                    else:
                        root = brentq(f, lo, hi, xtol=xtol, rtol=4 * np.finfo(float).eps, maxiter=200)
                    r[dname] = (sign * root, "", "brentq")
                else:
                    w = g_lo / (g_lo - g_hi) if g_lo != g_hi else 1.0
                    r[dname] = (sign * (lo + w * (hi - lo)), "", "grid")
        for i in idx:
            acct = book.accounts[i]
            d_dn, reason_dn, meth_dn = res[acct]["down"]
            d_up, reason_up, meth_up = res[acct]["up"]
            cands = [(abs(d), d, "down", meth_dn) for d in [d_dn] if np.isfinite(d)]
            cands += [(abs(d), d, "up", meth_up) for d in [d_up] if np.isfinite(d)]
            if below[i]:
                move, direction, method, reason = 0.0, "", "none", "already below MM"
            elif cands:
                _, move, direction, method = min(cands)
                reason = ""
            else:
                move, direction, method, reason = np.nan, "", "grid", NO_MOVE_REASON
            price = np.nan
            if tgt != "ALL" and np.isfinite(move):
                price = book.market.spot(tgt) * (1.0 + move)
            eq_at = mm_at = np.nan
            if np.isfinite(move) and exact:
                one = book.subset([acct])
                st = one.state(_target_moves(one, tgt, move))
                eq_at, mm_at = float(st["equity"].iloc[0]), float(st["mm"].iloc[0])
            rows.append(
                {"account": acct, "underlying": tgt, "move": move, "direction": direction, "price": price,
                 "move_down": d_dn, "move_up": d_up, "equity_at_move": eq_at, "mm_at_move": mm_at,
                 "method": method, "reason": reason}
            )
    cols = ["account", "underlying", "move", "direction", "price", "move_down", "move_up", "equity_at_move",
            "mm_at_move", "method", "reason"]
    return pd.DataFrame(rows, columns=cols)


def _target_moves(book: Book, target: str, move: float) -> NDArray[np.float64]:
    if target == "ALL":
        return np.full(len(book.unders), float(move))
    mv = np.zeros(len(book.unders))
    mv[book.unders.index(target)] = float(move)
    return mv


def equity_path(
    book: Book, account: str, underlying: str = "ALL", moves: Sequence[float] | None = None
) -> pd.DataFrame:
    """Equity, IM and MM of one account along a range of moves (for the report's equity-path figure).

    Parameters
    ----------
    book : Book
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

