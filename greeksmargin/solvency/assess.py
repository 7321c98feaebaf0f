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
account sees its own moved market (:meth:`Book.gap`; the margin engine runs once on per-position moved
inputs, :func:`margin_function`), until ``|equity - MM| <= 1e-9 x max(|equity|, |MM|)``
(``method = "root"``). The nearer of the two directions is reported with its price level; no crossing
within +-90% gives NaN and the reason ``"no such move within +-90%"``, an account already below MM
gives 0 and ``"already below MM"``.

Failures
--------
An account with a position the market cannot price (underlying absent, option without vol, expired
contract) gets a row with its ``error`` and no figures (status ``"error"``); the other accounts are
computed (:class:`Book`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.collateral import asset_underlying, collateral_exposure
from greeksmargin.book.market import MarketSnapshot, UnderlyingMarket
from greeksmargin.errors import ComputationError, InputError, expect_type

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
#: status of an account the margin model does not cover (outside its domain): IM / MM null, never healthy
NOT_COMPUTED = "not_computed"
#: grid of absolute relative moves that brackets the distance to liquidation (each direction)
MOVE_GRID = np.array(
    [0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.065, 0.08, 0.1, 0.125, 0.15, 0.175, 0.2, 0.25, 0.3,
     0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
)
#: a coarser bracketing grid (fewer shared evaluations; may miss a crossing that recrosses between points)
COARSE_GRID = np.array([0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.6, 0.9])
NO_MOVE_REASON = "no such move within +-90%"
#: reason of a row whose bracket shrank to machine precision with |equity - MM| still above 1e-6 relative
BRACKET_REASON = "crossing bracketed to machine precision, |equity - MM| > 1e-6 relative (MM jumps or both ~0)"

#: a margin function: (positions, market) -> DataFrame indexed by account with im, mm (float), currency
MarginFn = Callable[[pd.DataFrame, MarketSnapshot], pd.DataFrame]


# ------------------------------------------------------------------------------------- margin adapter
def margin_function(model: Any, *, isolated: bool = False) -> MarginFn:
    """Wrap the margin engine as a :data:`MarginFn`.

    Parameters
    ----------
    model : str, Path or Model
        Passed to :func:`greeksmargin.engine.margin.compute_margin`.
    isolated : bool
        False: the account is margined as one pool (cross margin). True: every position is margined
        alone by the same model and the account's IM / MM are the sums (isolated margin).

    Returns
    -------
    MarginFn
        ``f(positions, market) -> DataFrame`` indexed by account with ``im``, ``mm`` and ``currency``.
    """
    from greeksmargin.engine.margin import compute_margin
    from greeksmargin.engine.models import load_model

    loaded = load_model(model) if isinstance(model, str) or hasattr(model, "__fspath__") else model

    def cross(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
        if len(positions) == 0:
            return pd.DataFrame({"im": [], "mm": [], "currency": []}, index=pd.Index([], name="account"))
        acc = compute_margin(positions, market, loaded).accounts
        acc = acc.set_index("account") if "account" in acc.columns else acc
        return _margin_table(acc)

    def attribution(positions: pd.DataFrame, market: MarketSnapshot) -> pd.Series:
        """Contribution of each position (label) to its account's IM, in the account's margin currency."""
        res = compute_margin(positions, market, loaded)
        att = res.attribution()
        return pd.Series(att["contribution"].to_numpy(dtype=float), index=att["position"].to_numpy())

    cross.attribution = attribution  # type: ignore[attr-defined]
    runnable = bool(getattr(loaded, "runnable", False))
    if runnable:
        cross.batched = lambda book, mv, sel: _batched_margin(loaded, book, mv, sel, isolated=False)  # type: ignore[attr-defined]
    if not isolated:
        return cross

    def iso(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
        if len(positions) == 0:
            return cross(positions, market)
        per = per_position_margin(cross, positions, market)
        per["account"] = positions["account"].to_numpy()
        per = _to_common_ccy(per, market)
        return _sum_isolated(per, per)

    if runnable:
        iso.batched = lambda book, mv, sel: _batched_margin(loaded, book, mv, sel, isolated=True)  # type: ignore[attr-defined]
    return iso


def _batched_margin(
    model: Any, book: Book, mv: NDArray[np.float64], sel: NDArray[np.bool_] | None, *, isolated: bool
) -> pd.DataFrame:
    """Margin of every account at its own moved market (row of ``mv``), in one engine call.

    Each position gets the inputs of its account's moved market: spot and forward scaled by ``1 + m``
    of its underlying, vol by the vol reaction (:meth:`Book.vols_at`); the engine runs on today's
    snapshot otherwise. Its only other use of the market is the FX of coin amounts (a coin-settled
    position in a USD-margined account; a contract floor in another currency than the account's):
    every figure of a position is proportional to its size (its floor to its multiplier), so the size
    (multiplier) is scaled by the ratio of the moved to today's conversion rate. Tested equal to
    :func:`~greeksmargin.engine.margin.compute_margin` on the moved snapshot, account by account.
    """
    from greeksmargin.engine.margin import compute_margin

    assert book.a is not None
    M = book.as_matrix(mv)
    a = book.a
    pm = book.position_moves(M)
    g = 1.0 + pm
    arrays = dict(a)
    arrays["spot"] = a["spot"] * g
    arrays["forward"] = a["forward"] * g
    arrays["vol"] = book._vols_for(pm)
    rows = book.acct_code
    r_pos = book._ratio(book._pos_link, rows, M)  # moved / today's USD price of each position's currency
    if isolated:
        r_acc = r_pos  # each position is its own account, margined in its own currency
    else:
        eng = book.engine_currency[rows]
        r_acc = book._ratio(book._links(eng), rows, M)
    arrays["size"] = a["size"] * (r_pos / r_acc)
    pos = book.positions
    floor = _floor_currency(model)
    if floor is not None:
        r_fl = book._ratio(book._links(np.full(len(pos), floor, dtype=object)), rows, M)
        scale = r_fl / r_acc
        if np.any(scale != 1.0):
            pos = pos.copy()
            pos["multiplier"] = pos["multiplier"].to_numpy(dtype=float) * scale
    if sel is not None:
        pos = pos[sel]
    if isolated:
        labels = [f"{x}\x1f{i}" for i, x in enumerate(pos["account"].astype(str))]
        pos = pos.copy()
        pos["account"] = labels
    idx = book.positions.index.get_indexer(pos.index)
    if (idx < 0).any():
        raise ComputationError("batched margin: positions not in the book")
    moved = {k: (v if k == "underlyings" else np.asarray(v)[idx]) for k, v in arrays.items()}
    acc = compute_margin(pos, book.market, model, arrays=moved).accounts
    acc = acc.set_index("account")
    if not isolated:
        return _margin_table(acc)
    res = acc.reindex(labels)
    keep = np.ones(len(book.positions), dtype=bool) if sel is None else sel
    fx_now = book._pos_fx0[keep] * r_pos[keep]  # USD per unit of each position's own currency, moved
    same = res["currency"].fillna("").to_numpy(dtype=object) == book.pos_ccy[keep]
    if not same.all():  # the engine margined a solo position in another currency: convert through it
        other = res["currency"].fillna("USD").to_numpy(dtype=object)
        idx = np.flatnonzero(~same)
        fx_now[idx] = [book.ccy_fx(np.full(len(book.accounts), c, dtype=object), M)[book.acct_code[keep][i]]
                       for c, i in zip(other[idx], idx)]
    nc = _not_computed_rows(res)
    per = pd.DataFrame({"im": np.where(nc, np.nan, res["im"].fillna(0.0).to_numpy(dtype=float) * fx_now),
                        "mm": np.where(nc, np.nan, res["mm"].fillna(0.0).to_numpy(dtype=float) * fx_now),
                        "account": pos["account"].str.split("\x1f").str[0].to_numpy() if len(pos) else []})
    return _sum_isolated(per, res)


def _margin_table(acc: pd.DataFrame) -> pd.DataFrame:
    """``im, mm, currency, status, reason`` of an engine accounts table indexed by account.

    An account outside the model's domain keeps NaN figures with ``status = "not_computed"`` and its
    reason (never 0).
    """
    cur = acc["currency"] if "currency" in acc.columns else pd.Series("USD", index=acc.index)
    out = pd.DataFrame({"im": acc["im"].astype(float), "mm": acc["mm"].astype(float), "currency": cur})
    out["status"] = acc["status"] if "status" in acc.columns else "computed"
    out["reason"] = acc["reason"] if "reason" in acc.columns else None
    return out


def _not_computed_rows(margin: pd.DataFrame) -> NDArray[np.bool_]:
    """True for rows of a margin table whose account is outside the model's domain."""
    if "status" not in margin.columns:
        return np.zeros(len(margin), dtype=bool)
    return (margin["status"].astype(str) == "not_computed").to_numpy()


def _sum_isolated(per: pd.DataFrame, solo: pd.DataFrame) -> pd.DataFrame:
    """Sum per-position isolated figures by account (USD); a position outside the domain makes its account NaN."""
    nc = _not_computed_rows(solo)
    g = per.groupby("account", sort=False)[["im", "mm"]]
    out = g.sum()
    bad = pd.Series(nc, index=per.index).groupby(per["account"].to_numpy(), sort=False).any()
    out.loc[bad.reindex(out.index).fillna(False).to_numpy(dtype=bool), ["im", "mm"]] = np.nan
    out["currency"] = "USD"
    out["status"] = np.where(bad.reindex(out.index).fillna(False).to_numpy(dtype=bool), "not_computed", "computed")
    reasons = solo["reason"] if "reason" in solo.columns else pd.Series(None, index=solo.index)
    first = pd.Series(np.where(nc, reasons.astype(object).to_numpy(), None), index=per.index).groupby(
        per["account"].to_numpy(), sort=False).first()
    out["reason"] = first.reindex(out.index).to_numpy()
    return out


def _floor_currency(model: Any) -> str | None:
    """Currency of the model's per-contract floor (None: the model has none)."""
    params = getattr(model, "params", None)
    comps = getattr(params, "components", None)
    if isinstance(comps, Mapping) and "contract_floor" in comps:
        return str(comps["contract_floor"].get("currency", "USD"))
    return None


def per_position_margin(margin_fn: MarginFn, positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
    """IM and MM of every position margined alone (isolated); DataFrame indexed like ``positions``.

    Columns ``im``, ``mm``, ``currency``, ``status``, ``reason``: a position outside the model's domain has
    NaN figures and ``status = "not_computed"`` (never 0).
    """
    labels = [f"{a}\x1f{i}" for i, a in enumerate(positions["account"].astype(str))]
    solo = positions.copy()
    solo["account"] = labels
    res = margin_fn(solo, market).reindex(labels)
    nc = _not_computed_rows(res)
    out = pd.DataFrame(
        {
            "im": np.where(nc, np.nan, res["im"].fillna(0.0).to_numpy(dtype=float)),
            "mm": np.where(nc, np.nan, res["mm"].fillna(0.0).to_numpy(dtype=float)),
            "currency": res["currency"].fillna("USD").to_numpy(dtype=object),
            "status": np.where(nc, "not_computed", "computed"),
            "reason": res["reason"].to_numpy(dtype=object) if "reason" in res.columns else None,
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
    from greeksmargin.pricing import black76_price
    from greeksmargin.risk.greeks import market_arrays

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
    from greeksmargin.risk.scenarios import VolShockRule

    # Deribit-style term rule (METHODS.md section 3); used only when the model gives none
    return VolShockRule(kind="relative", up=0.3, down=0.3, short_power=0.3, long_power=0.13, min_vol=0.01)


@dataclass(frozen=True)
class VolReaction:
    """How implied vol reacts to a spot move, by the margin model's own vol-shock rule.

    For a relative move ``m`` of an underlying whose model price range is ``R``::

        sigma' = sigma + min(|m| / R, 1) x (sigma_up(sigma, T) - sigma)

    with ``sigma_up`` the model's shocked-up vol (:class:`~greeksmargin.risk.scenarios.VolShockRule`, term
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

        For a component model (:class:`~greeksmargin.engine.models.RuleSet`): per underlying, the vol rule of
        its scenario grid (``grid_for(u).vol_rule``) and ``R`` = the largest core (non-tail) move of that
        grid. Otherwise every :class:`~greeksmargin.risk.scenarios.VolShockRule` found in the model and
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
            from greeksmargin.engine.models import load_model

            m = load_model(model) if isinstance(model, str) or hasattr(model, "__fspath__") else model
        except Exception:  # noqa: BLE001 - any failure: house defaults
            return cls()
        from greeksmargin.risk.scenarios import VolShockRule

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

    Moves are either one relative move per underlying shared by every account (shape
    ``(n_underlyings,)``) or one row per account (shape ``(n_accounts, n_underlyings)``: each account
    sees its own moved market; used by the batched root finder of :func:`distance_to_liquidation`).

    An account with a position the market cannot price (underlying absent, option without vol, expired
    contract) is kept with its error (``errors``) and no figures; its positions are set aside
    (``bad_positions``) and the other accounts are computed.

    Parameters
    ----------
    positions : DataFrame
        Positions (schema of :mod:`greeksmargin.book.positions`).
    market : MarketSnapshot
        Today's market.
    collateral : DataFrame, optional
        Collateral (from :func:`~greeksmargin.book.collateral.load_collateral`); accounts without rows have
        none.
    margin_fn : MarginFn
        Margin of the accounts at a market.
    vol_reaction : VolReaction, optional
        Vol reaction to moves (default :class:`VolReaction` ()).
    accounts : sequence of str, optional
        Accounts to cover (default: those of the positions, then those only in the collateral).
    currencies : mapping of str -> str, optional
        Margin currency of some accounts (default :func:`account_currency`).
    errors : mapping of str -> str, optional
        Accounts already known not computable, with the reason (kept by :meth:`subset`).
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
        errors: Mapping[str, str] | None = None,
    ) -> None:
        from greeksmargin.book.positions import load_positions

        self.market = market
        self.margin_fn = margin_fn
        self.vol_reaction = vol_reaction or VolReaction()
        pos = positions if _is_normalised(positions) else load_positions(
            positions, valuation_time=market.valuation_time
        )
        coll = collateral if collateral is not None else _empty_collateral()
        if accounts is None:
            accts = list(pd.unique(pos["account"].astype(str)))
            seen = set(accts)
            accts += [a for a in pd.unique(coll["account"]) if a not in seen]
        else:
            accts = list(accounts)
        self.accounts: list[str] = accts
        self.errors: dict[str, str] = {a: m for a, m in (errors or {}).items() if a in set(accts)}
        self.a, bad = _checked_arrays(pos, market) if len(pos) else (None, {})
        self.errors.update(bad)
        is_bad = pos["account"].astype(str).isin(list(self.errors)).to_numpy()
        self.bad_positions = pos[is_bad]
        if is_bad.any():
            pos = pos[~is_bad]
            self.a = _checked_arrays(pos, market)[0] if len(pos) else None
        self.positions = pos
        self.collateral = coll[coll["account"].isin(accts)]
        ccy = account_currency(pos, market).reindex(accts).fillna("USD")
        if currencies:
            ccy = pd.Series([currencies.get(a, c) for a, c in zip(accts, ccy)], index=ccy.index, dtype=object)
        self.currency: NDArray[Any] = ccy.to_numpy(dtype=object)
        #: margin currency of each account by the margin engine's rule (for the batched margin)
        self.engine_currency: NDArray[Any] = (
            account_currency(pos, market).reindex(accts).fillna("USD").to_numpy(dtype=object)
        )
        self.unders: list[str] = list(market.underlyings)
        self.acct_code = pd.Index(accts).get_indexer(pos["account"].astype(str))
        if (self.acct_code < 0).any():
            bad_row = pos.index[int(np.argmax(self.acct_code < 0))]
            raise InputError("account of the position is not in the accounts asked for", row=bad_row,
                             column="account")
        self.error: NDArray[Any] = np.array([self.errors.get(a, "") for a in accts], dtype=object)
        if self.a is not None:
            names = list(self.a["underlyings"])
            self.u_code = np.array([self.unders.index(u) for u in names], dtype=int)[self.a["underlying_code"]]
            self.T = self.a["T"]
            self.inverse = self.a["inverse"]
            base_perp = self.a["spot"] * self.a["perp_ratio"]
            self.base_delta_one = np.where(self.a["kind_code"] == 1, self.a["forward"], base_perp)
            self._prepare_vols()
        mc = dict(zip(accts, self.currency))
        self.coll_fixed = {}
        self.coll_linked = {}
        for h in ("mm", "im", "none"):
            f, lk = collateral_exposure(self.collateral, market, accts, margin_currency=mc, haircut=h)
            self.coll_fixed[h], self.coll_linked[h] = f, lk
        self._fx_base = {c: market.fx_to_usd(c) for c in set(self.currency) | set(self.engine_currency)}
        self._fx_link = {c: asset_underlying(c, market) for c in self._fx_base}
        if self.a is not None:
            pos_ccy = np.where(self.inverse, [market.currency(self.unders[j]) for j in self.u_code], "USD")
            self.pos_ccy: NDArray[Any] = pos_ccy.astype(object)
            self._fx_base.update({c: market.fx_to_usd(c) for c in set(pos_ccy)})
            self._fx_link.update({c: asset_underlying(c, market) for c in set(pos_ccy)})
            self._pos_link = self._links(self.pos_ccy)
            self._pos_fx0 = np.array([self._fx_base[c] for c in self.pos_ccy], dtype=float)
        self._acc_link = self._links(self.currency)
        self._acc_fx0 = np.array([self._fx_base[c] for c in self.currency], dtype=float)

    # ------------------------------------------------------------------ helpers
    def _links(self, ccys: NDArray[Any]) -> NDArray[np.intp]:
        """Index in ``unders`` of the underlying that moves each currency (-1: none)."""
        out = np.full(len(ccys), -1, dtype=np.intp)
        for c in set(ccys):
            link = self._fx_link.get(c)
            if link is None and c not in self._fx_link:
                link = asset_underlying(c, self.market)
                self._fx_link[c] = link
            if link is not None and link in self.unders:
                out[ccys == c] = self.unders.index(link)
        return out

    def _prepare_vols(self) -> None:
        """Per option position: the model's "vol up" and the price range ``R`` (see :class:`VolReaction`)."""
        a = self.a
        assert a is not None
        opt = a["kind_code"] == 0
        self._vol_up = np.full(len(opt), np.nan)
        self._vol_range = np.full(len(opt), np.inf)
        for j, u in enumerate(self.unders):
            m = opt & (self.u_code == j)
            if m.any():
                v = np.asarray(a["vol"][m], dtype=float)
                self._vol_up[m] = self.vol_reaction._rule(u).shocked(v, self.T[m], np.array([1]))[0]
                self._vol_range[m] = self.vol_reaction._range(u)

    def as_matrix(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """Moves as one row per account; shape (n_accounts, n_underlyings) (a read-only view if 1-D)."""
        mv = np.asarray(mv, dtype=float)
        if mv.ndim == 1:
            return np.broadcast_to(mv, (len(self.accounts), len(self.unders)))
        if mv.shape != (len(self.accounts), len(self.unders)):
            raise InputError(f"moves of shape {mv.shape}: expected ({len(self.accounts)}, {len(self.unders)})")
        return mv

    def position_moves(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """Relative move of each position's underlying; shape (n_positions,)."""
        mv = np.asarray(mv, dtype=float)
        if self.a is None:
            return np.zeros(0)
        return mv[self.u_code] if mv.ndim == 1 else mv[self.acct_code, self.u_code]

    def _ratio(self, link: NDArray[np.intp], rows: NDArray[np.intp], M: NDArray[np.float64]) -> NDArray[np.float64]:
        """Price of a currency at the moves over today's, per item (account ``rows`` of ``M``)."""
        safe = np.maximum(link, 0)
        return np.where(link >= 0, 1.0 + M[rows, safe], 1.0)

    # ------------------------------------------------------------------ moves
    def move_vector(self, moves: Mapping[str, float] | None) -> NDArray[np.float64]:
        """Relative move per underlying of ``market.underlyings``; shape (n_underlyings,)."""
        moves = moves or {}
        for u in moves:
            if u not in self.unders:
                raise InputError(f"underlying '{u}' is not in the market snapshot", column="underlying")
        return np.array([float(moves.get(u, 0.0)) for u in self.unders], dtype=float)

    def fx_at(self, ccy: str, mv: NDArray[np.float64]) -> float:
        """USD price of ``ccy`` at (shared) moves ``mv``."""
        link = self._fx_link.get(ccy)
        base = self._fx_base.get(ccy)
        if base is None:
            base = self.market.fx_to_usd(ccy)
            link = asset_underlying(ccy, self.market)
        return base * (1.0 + mv[self.unders.index(link)]) if link is not None else base

    def ccy_fx(self, ccys: NDArray[Any], mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """USD price of one currency per account (``ccys``, shape (n_accounts,)) at moves ``mv``."""
        M = self.as_matrix(mv)
        ccys = np.asarray(ccys, dtype=object)
        out = np.full(len(ccys), np.nan)
        rows = np.arange(len(ccys))
        for c in set(ccys):
            if not c:
                continue
            if c not in self._fx_base:
                self._fx_base[c] = self.market.fx_to_usd(c)
            m = ccys == c
            out[m] = self._fx_base[c] * self._ratio(self._links(np.array([c], dtype=object)).repeat(m.sum()),
                                                     rows[m], M)
        return out

    def vols_at(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """Implied vol of every position at moves ``mv`` (NaN for non-options); shape (n_positions,)."""
        if self.a is None:
            return np.zeros(0)
        return self._vols_for(self.position_moves(mv))

    def _vols_for(self, pm: NDArray[np.float64]) -> NDArray[np.float64]:
        """Vols at per-position moves ``pm`` (:meth:`VolReaction.vols` element by element)."""
        assert self.a is not None
        out = np.array(self.a["vol"], dtype=float, copy=True)
        m = (self.a["kind_code"] == 0) & (pm != 0.0)
        if m.any():
            v = out[m]
            frac = np.minimum(np.abs(pm[m]) / self._vol_range[m], 1.0)
            out[m] = np.minimum(v + frac * (self._vol_up[m] - v), 4.99)
        return out

    def shifted_market(self, mv: NDArray[np.float64]) -> MarketSnapshot:
        """The market at (shared) moves ``mv`` (see :func:`shift_market`), the book's instruments sticky strike."""
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
        ``mv``: shape (n_underlyings,) or (n_accounts, n_underlyings).
        """
        from greeksmargin.pricing import black76_price

        n = len(self.positions)
        if self.a is None:
            return np.zeros(0)
        a = self.a
        pm = self.position_moves(mv)
        g = 1.0 + pm
        kc = a["kind_code"]
        S = a["spot"] * g
        F = a["forward"] * g
        size = a["size"]
        native = np.zeros(n)
        o = kc == 0
        if o.any():
            vol = self._vols_for(pm)[o]
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
        acct_ccy = self.currency[self.acct_code]
        same = self.pos_ccy == acct_ccy
        if not same.all():
            M = self.as_matrix(mv)
            d = ~same
            rows = self.acct_code[d]
            fx_pos = self._pos_fx0[d] * self._ratio(self._pos_link[d], rows, M)
            fx_acc = self._acc_fx0[rows] * self._ratio(self._acc_link[rows], rows, M)
            native[d] *= fx_pos / fx_acc
        return native

    def collateral_values(self, mv: NDArray[np.float64], haircut: str = "mm") -> NDArray[np.float64]:
        """Collateral of each account in its margin currency at moves ``mv``; shape (n_accounts,)."""
        mv = np.asarray(mv, dtype=float)
        if mv.ndim == 1:
            usd = self.coll_fixed[haircut] + self.coll_linked[haircut] @ (1.0 + mv)
        else:
            usd = self.coll_fixed[haircut] + np.einsum("ij,ij->i", self.coll_linked[haircut], 1.0 + mv)
        return usd / self.account_fx(mv)

    def account_fx(self, mv: NDArray[np.float64]) -> NDArray[np.float64]:
        """USD price of each account's margin currency at moves ``mv``; shape (n_accounts,)."""
        M = self.as_matrix(mv)
        return self._acc_fx0 * self._ratio(self._acc_link, np.arange(len(self.accounts)), M)

    def state(
        self, mv: NDArray[np.float64] | Mapping[str, float] | None = None, *, margin: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Equity, IM and MM of every account at moves ``mv`` (full revaluation; MM recomputed).

        ``mv``: a mapping per underlying, shape (n_underlyings,), or (n_accounts, n_underlyings).
        Accounts that cannot be computed have NaN figures and their ``error``.

        Returns
        -------
        DataFrame of shape (n_accounts, 13)
            Index ``account``; columns ``currency``, ``fx`` (USD per unit of it), ``collateral``,
            ``collateral_im``, ``collateral_mm``, ``mtm``, ``equity``, ``equity_im``, ``im``, ``mm``,
            ``n_positions``, ``error``, ``not_computed`` (the reason when the margin model does not cover the
            account: IM / MM NaN; ``""`` otherwise) (see the module docstring).
        """
        if mv is None or isinstance(mv, Mapping):
            mv = self.move_vector(mv)
        mv = np.asarray(mv, dtype=float)
        n_a = len(self.accounts)
        vals = self.position_values(mv)
        mtm = np.bincount(self.acct_code, weights=vals, minlength=n_a) if len(vals) else np.zeros(n_a)
        npos = np.bincount(self.acct_code, minlength=n_a) if len(vals) else np.zeros(n_a, dtype=int)
        fx = self.account_fx(mv)
        if margin is None:
            margin = self.margin_at(mv)
        im, mm, m_err, nc = self._margin_in_account_ccy(margin, mv, fx)
        err = np.where(self.error != "", self.error, m_err).astype(object)
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
                "not_computed": np.where(err != "", "", nc).astype(object),
            },
            index=pd.Index(self.accounts, name="account"),
        )
        bad = err != ""
        if bad.any():
            num = ["collateral", "collateral_im", "collateral_mm", "mtm", "equity", "equity_im", "im", "mm"]
            out.loc[bad, num] = np.nan
            if len(self.bad_positions):
                nb = self.bad_positions["account"].astype(str).value_counts()
                out.loc[bad, "n_positions"] = [int(nb.get(a, 0)) for a in out.index[bad]]
        return out

    def _margin_in_account_ccy(
        self, margin: pd.DataFrame, mv: NDArray[np.float64], fx: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[Any], NDArray[Any]]:
        """IM, MM (account currency), error and not-computed reason (``""``: computed) per account."""
        mg = margin.reindex(self.accounts)
        m_ccy = mg["currency"].astype(object).fillna("").astype(str).to_numpy(dtype=object)
        m_fx = self.ccy_fx(m_ccy, mv)
        conv = np.where(np.isfinite(m_fx), m_fx / fx, 1.0)
        # an account absent from the margin table holds no positions (requirement 0); one present with NaN
        # figures is not computed (outside the model's domain): NaN, never 0
        present = pd.Index(self.accounts).isin(margin.index)
        im = np.where(present, mg["im"].to_numpy(dtype=float), 0.0) * conv
        mm = np.where(present, mg["mm"].to_numpy(dtype=float), 0.0) * conv
        if "error" in mg.columns:
            err = mg["error"].fillna("").astype(str).to_numpy(dtype=object)
            err = np.where(err == "nan", "", err)
        else:
            err = np.full(len(self.accounts), "", dtype=object)
        reasons = (mg["reason"].astype(object).fillna("not computed").to_numpy(dtype=object)
                   if "reason" in mg.columns else np.full(len(self.accounts), "not computed", dtype=object))
        nc = np.where(_not_computed_rows(mg) & present, reasons, "").astype(object)
        return im, mm, err, nc

    def gap(self, mv: NDArray[np.float64], rows: NDArray[np.intp]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Equity and MM (account currency) of the accounts ``rows`` at moves ``mv``; MM recomputed for them only.

        Parameters
        ----------
        mv : ndarray of shape (n_underlyings,) or (n_accounts, n_underlyings)
            Moves (rows of accounts not in ``rows`` are ignored).
        rows : ndarray of int, shape (k,)
            Indices into ``accounts``.

        Returns
        -------
        (equity, mm) : ndarrays of shape (k,)
        """
        rows = np.asarray(rows, dtype=np.intp)
        mv = np.asarray(mv, dtype=float)
        n_a = len(self.accounts)
        vals = self.position_values(mv)
        mtm = np.bincount(self.acct_code, weights=vals, minlength=n_a) if len(vals) else np.zeros(n_a)
        fx = self.account_fx(mv)
        margin = self.margin_at(mv, rows=rows)
        _, mm, _, _ = self._margin_in_account_ccy(margin, mv, fx)
        equity = self.collateral_values(mv, "mm") + mtm
        return equity[rows], mm[rows]

    def margin_at(self, mv: NDArray[np.float64], rows: NDArray[np.intp] | None = None) -> pd.DataFrame:
        """The margin function at moves ``mv`` (accounts without positions absent).

        Shared moves (1-D, or every row equal): one call of the margin function on the market moved by
        :meth:`shifted_market`. One row per account: the margin function's ``batched`` evaluation when it
        has one (:func:`margin_function`: the margin engine on per-position moved inputs, in one call),
        else one call per distinct row of moves.

        Parameters
        ----------
        mv : ndarray of shape (n_underlyings,) or (n_accounts, n_underlyings)
            Moves.
        rows : ndarray of int, optional
            Only these accounts (indices into ``accounts``).
        """
        mv = np.asarray(mv, dtype=float)
        sel = None if rows is None else np.isin(self.acct_code, np.asarray(rows))
        pos = self.positions if sel is None else self.positions[sel]
        if len(pos) == 0:
            return pd.DataFrame({"im": [], "mm": [], "currency": []}, index=pd.Index([], name="account"))
        if mv.ndim == 2:
            used = np.unique(self.acct_code if sel is None else self.acct_code[sel])
            sub = mv[used]
            if (sub == sub[0]).all():
                mv = sub[0].copy()
        if mv.ndim == 1:
            return self.margin_fn(pos, self.shifted_market(mv))
        batched = getattr(self.margin_fn, "batched", None)
        if batched is not None and self.positions.index.is_unique:
            return batched(self, mv, sel)
        # one call per distinct row of moves (exact, for margin functions without a batched form)
        codes = self.acct_code if sel is None else self.acct_code[sel]
        uniq, inv = np.unique(mv[codes], axis=0, return_inverse=True)
        parts = [self.margin_fn(pos[inv.ravel() == k], self.shifted_market(row)) for k, row in enumerate(uniq)]
        return pd.concat(parts)

    def subset(self, accounts: Sequence[str]) -> Book:
        """The same book restricted to ``accounts`` (positions, collateral, same margin and vol rules)."""
        keep = set(accounts)
        pos = pd.concat([self.positions, self.bad_positions]) if len(self.bad_positions) else self.positions
        return Book(
            pos[pos["account"].isin(keep)],
            self.market,
            self.collateral[self.collateral["account"].isin(keep)],
            self.margin_fn,
            vol_reaction=self.vol_reaction,
            accounts=list(accounts),
            currencies=dict(zip(self.accounts, self.currency)),
            errors=self.errors,
        )


def _checked_arrays(pos: pd.DataFrame, market: MarketSnapshot) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """Market arrays of the positions, and the accounts the market cannot price (account -> reason).

    With every position priceable: ``(arrays, {})``. Otherwise the arrays are None and the failing
    accounts are found underlying by underlying (a failure names its row: that account is set aside and
    the rest retried; past 50 failures in one underlying, account by account).
    """
    from greeksmargin.errors import GreeksMarginError
    from greeksmargin.risk.greeks import market_arrays

    try:
        return market_arrays(pos, market), {}
    except GreeksMarginError:
        pass
    bad: dict[str, str] = {}
    for u in pd.unique(pos["underlying"]):
        part = pos[pos["underlying"] == u]
        ok = False
        for _ in range(50):
            if len(part) == 0:
                ok = True
                break
            try:
                market_arrays(part, market)
                ok = True
                break
            except GreeksMarginError as exc:
                row = getattr(exc, "row", None)
                if row is None or row not in part.index or not part.index.is_unique:
                    break
                a = str(part.at[row, "account"])
                bad.setdefault(a, str(exc))
                part = part[part["account"].astype(str) != a]
        if not ok:
            try:
                market_arrays(part, market)
            except GreeksMarginError:
                for a, sub in part.groupby(part["account"].astype(str), sort=False):
                    try:
                        market_arrays(sub, market)
                    except GreeksMarginError as exc:
                        bad.setdefault(str(a), str(exc))
    if not bad:  # the failure is not attributable to accounts: let it surface
        market_arrays(pos, market)
    return None, bad


def _is_normalised(positions: pd.DataFrame) -> bool:
    from greeksmargin.book.positions import COLUMNS

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
    """Add available funds, excess, margin ratio, status, at_mm and USD columns to a :meth:`Book.state`."""
    out = st.copy()
    status, at_mm = classify(out["equity"], out["equity_im"], out["im"], out["mm"])
    failed = out["error"].fillna("").astype(str).to_numpy() != ""
    nc_reason = (out["not_computed"].fillna("").astype(str).to_numpy() if "not_computed" in out.columns
                 else np.full(len(out), "", dtype=object))
    bankrupt = out["equity"].to_numpy(dtype=float) <= 0  # needs no margin figure
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
    positions: pd.DataFrame,
    market: MarketSnapshot,
    collateral: pd.DataFrame | None,
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
    positions : DataFrame
        Positions (schema of :mod:`greeksmargin.book.positions`).
    market : MarketSnapshot
        Today's market.
    collateral : DataFrame or None
        Collateral table (:func:`~greeksmargin.book.collateral.load_collateral`). None is an error unless
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
    expect_type(positions, "positions", pd.DataFrame, "a positions DataFrame (greeksmargin.load_positions)")
    expect_type(market, "market", MarketSnapshot, "a MarketSnapshot (greeksmargin.load_market)")
    if collateral is not None:
        expect_type(collateral, "collateral", pd.DataFrame, "a collateral DataFrame (load_collateral) or None")
    if collateral is None and not no_collateral:
        raise InputError("no collateral given: pass the accounts' collateral table, or no_collateral=True to "
                         "assess with equity = mark-to-market only", column="collateral")
    fn = margin_fn or margin_function(model)
    vr = vol_reaction or VolReaction.from_model(model if margin_fn is None else None, market.underlyings)
    book = Book(positions, market, collateral, fn, vol_reaction=vr)
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
    book: Book,
    *,
    underlyings: Sequence[str] | None = None,
    include_all: bool = True,
    max_move: float = 0.9,
    grid: NDArray[np.float64] | None = None,
    rtol: float = 1e-9,
    xtol: float = 4 * np.finfo(float).eps,
    max_iter: int = 100,
    base_moves: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Smallest adverse move of each underlying (and of all together) that brings equity to MM.

    For every target (an underlying alone, or ``"ALL"``) and direction: the shared moves of ``grid``
    bracket each account's first sign change of ``equity - MM``; then a lock-step Illinois (regula falsi)
    root finder runs on every account at once, each at its own trial move: one batched full revaluation
    per iteration (:meth:`Book.gap`, margin recomputed by the engine at each account's moved market)
    until ``|equity - MM| <= rtol x max(|equity|, |MM|)``.

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
    """
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
    if len(book.positions):
        st0 = book.state(base)
        nc_reason = {str(a): str(r) for a, r in st0["not_computed"].items() if r}
    for tgt in targets:
        holders = set(pos_acct) if tgt == "ALL" else set(pos_acct[book.positions["underlying"] == tgt])
        names = [a for a in book.accounts if a in holders]
        if not names:
            continue
        sub = book.subset(names) if len(names) < len(book.accounts) else book
        cols = np.arange(len(sub.unders)) if tgt == "ALL" else np.array([sub.unders.index(tgt)])
        res = {s: _solve_direction(sub, cols, s, grid, rtol, xtol, max_iter, base) for s in (-1.0, 1.0)}
        e0, m0 = res[-1.0]["base"]
        below = liquidatable(e0, m0)
        spot = book.market.spot(tgt) * (1.0 + base[book.unders.index(tgt)]) if tgt != "ALL" else np.nan
        for i, acct in enumerate(sub.accounts):
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


def _solve_direction(
    book: Book, cols: NDArray[np.intp], sign: float, grid: NDArray[np.float64], rtol: float, xtol: float,
    max_iter: int, base: NDArray[np.float64] | None = None,
) -> dict[str, Any]:
    """Root of ``equity - MM`` along ``sign x`` (x in [0, grid[-1]]) for every account of ``book``.

    ``base``: moves (shape (n_underlyings,)) the search starts from (default: today's market); the move
    ``x`` compounds on it. Returns a dict with ``root`` (signed move, NaN: no crossing; 0 at the
    boundary or below MM), ``equity``, ``mm`` at the root, ``method`` per account and ``base`` (equity,
    MM at the base moves).
    """
    n = len(book.accounts)
    n_u = len(book.unders)
    b0 = np.zeros(n_u) if base is None else np.asarray(base, dtype=float)
    every = np.arange(n)
    e0, m0 = book.gap(b0, every)
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

    for x in grid:
        idx = np.flatnonzero(searching)
        if idx.size == 0:
            break
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

