"""The solvency book: positions, market, collateral and arrays for fast re-margining under market moves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.book import Book as ValidatedBook
from greeksmargin.book.book import load_book_market_collect
from greeksmargin.book.collateral import asset_underlying, collateral_exposure, load_collateral
from greeksmargin.book.market import MarketSnapshot, UnderlyingMarket
from greeksmargin.book.positions import account_currency
from greeksmargin.errors import ArgumentTypeError, ComputationError, InputError
from greeksmargin.solvency.margin_fn import (
    MarginFn,
    _not_computed_rows,
    _react,
    call_margin_fn,
)

#: relative tolerance of the "at MM" boundary

# ---------------------------------------------------------------------------------------- vol reaction
def _default_rule() -> Any:
    from greeksmargin.risk.scenarios import VolShockRule

    # Deribit-style term rule (Deribit's portfolio-margin documentation); used only when the model gives none
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
class BookValuer:
    """A validated Book's accounts under a margin function and a vol reaction, revaluable at moved markets.

    Not a second book state: the positions come from one validated
    :class:`~greeksmargin.book.book.Book` (raw positions are validated by
    :func:`~greeksmargin.book.book.load_book` first). What a valuer adds is what depends on the margin
    function, the vol reaction and the collateral: the accounts' margin currencies and FX links, the
    collateral's exposure to each underlying and the per-position vol reaction, computed once and reused
    by every move (solvency, distance to liquidation, liquidation, cascades).

    Moves are either one relative move per underlying shared by every account (shape
    ``(n_underlyings,)``) or one row per account (shape ``(n_accounts, n_underlyings)``: each account
    sees its own moved market; used by the batched root finder of :func:`distance_to_liquidation`).

    An account with a position the market cannot price (underlying absent, option without vol, expired
    contract) is kept with its error (``errors``) and no figures; its positions are set aside
    (``bad_positions``) and the other accounts are computed.

    Parameters
    ----------
    positions : greeksmargin.Book or DataFrame
        A validated Book (:func:`~greeksmargin.book.book.load_book`; trusted), or a positions table
        (validated here once).
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
        self.market = market
        self.margin_fn = margin_fn
        self.vol_reaction = vol_reaction or VolReaction()
        # a validated Book is trusted; raw positions are validated once here (a malformed row raises, an
        # account the market cannot price is set aside with its reason)
        vb = positions if isinstance(positions, ValidatedBook) else load_book_market_collect(positions, market)
        if vb.market is not market and vb.market != market:
            raise InputError("the Book's market is not the market given", column="market")
        pos = vb.positions
        if collateral is None and vb.collateral is not None:
            collateral = vb.collateral
        coll = collateral if collateral is not None else _empty_collateral()
        if accounts is None:
            accts = list(pd.unique(_input_order(vb).astype(str)))
            seen = set(accts)
            accts += [a for a in vb.bad_accounts if a not in seen]
            seen = set(accts)
            accts += [a for a in pd.unique(coll["account"]) if a not in seen]
        else:
            accts = list(accounts)
        self.accounts: list[str] = accts
        keep_acc = set(accts)
        self.errors: dict[str, str] = {a: m for a, m in {**(errors or {}), **vb.bad_accounts}.items() if a in keep_acc}
        is_bad = pos["account"].astype(str).isin(list(self.errors)).to_numpy()
        aside = vb.set_aside if vb.set_aside is not None else pos.iloc[:0]
        self.bad_positions = pd.concat([aside, pos[is_bad]]) if is_bad.any() else aside
        if is_bad.any():
            vb = vb.subset(~is_bad)
            pos = vb.positions
        self.a = vb.arrays if len(pos) else None
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
            #: positions valued in their account's currency (no conversion), and the engine-currency links
            self._same_ccy = self.pos_ccy == self.currency[self.acct_code]
            self._eng_link = self._links(self.engine_currency[self.acct_code])
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

    def _rows_mask(self, rows: NDArray[np.intp]) -> NDArray[np.bool_]:
        """True for the positions of the accounts ``rows`` (indices into ``accounts``); shape (n_positions,)."""
        on = np.zeros(len(self.accounts), dtype=bool)
        on[np.asarray(rows, dtype=np.intp)] = True
        return on[self.acct_code]

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
        return _react(self.a["vol"], self.a["kind_code"], pm, self._vol_up, self._vol_range)

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
    def position_values(self, mv: NDArray[np.float64], idx: NDArray[np.intp] | None = None, *,
                        unit_size: bool = False) -> NDArray[np.float64]:
        """Value of every position in its account's margin currency at moves ``mv``; shape (n_positions,).

        Options and spot: value; futures and perpetuals: P&L from today's price (see module docstring).
        ``mv``: shape (n_underlyings,) or (n_accounts, n_underlyings). ``idx`` (int, shape (k,)): only
        these positions (the same figures, element by element), shape (k,). ``unit_size``: the value of
        one unit of size of each (times the size: the value, to the last bit for same-currency positions).
        """
        from greeksmargin.pricing import black76_price
        from greeksmargin.risk.exercise import american_forward_price, american_mask

        if self.a is None:
            return np.zeros(0)
        if idx is None:
            a = self.a
            acct_code, inverse, vol_up, vol_range = self.acct_code, self.inverse, self._vol_up, self._vol_range
            u_code, base_d1, same = self.u_code, self.base_delta_one, self._same_ccy
            pos_link, pos_fx0 = self._pos_link, self._pos_fx0
        else:
            a = {k: (v if k == "underlyings" else np.asarray(v)[idx]) for k, v in self.a.items()}
            acct_code, inverse, vol_up, vol_range = (self.acct_code[idx], self.inverse[idx], self._vol_up[idx],
                                                     self._vol_range[idx])
            u_code, base_d1, same = self.u_code[idx], self.base_delta_one[idx], self._same_ccy[idx]
            pos_link, pos_fx0 = self._pos_link[idx], self._pos_fx0[idx]
        n = len(acct_code)
        mv = np.asarray(mv, dtype=float)
        pm = mv[u_code] if mv.ndim == 1 else mv[acct_code, u_code]
        g = 1.0 + pm
        kc = a["kind_code"]
        S = a["spot"] * g
        F = a["forward"] * g
        size = np.ones(n) if unit_size else a["size"]
        native = np.zeros(n)
        o = kc == 0
        if o.any():
            vol = _react(a["vol"], kc, pm, vol_up, vol_range)[o]
            px = black76_price(a["is_call"][o], F[o], a["strike"][o], a["T"][o], vol, a["rate"][o])
            am = american_mask(a, o)
            if am is not None:  # American options at the moved spot and vol (greeksmargin.risk.exercise)
                oa = np.flatnonzero(o)[am]
                px[am] = american_forward_price(a["is_call"][oa], F[oa], a["strike"][oa], a["T"][oa], vol[am],
                                                a["rate"][oa], a["forward_ratio"][oa])
            native[o] = np.where(inverse[o], px / F[o], px) * size[o]
        sp = kc == 3
        native[sp] = np.where(inverse[sp], 1.0, S[sp]) * size[sp]
        d1 = (kc == 1) | (kc == 2)
        if d1.any():
            p0 = base_d1[d1]
            p1 = p0 * g[d1]
            native[d1] = np.where(inverse[d1], size[d1] * (1.0 - p0 / p1), (p1 - p0) * size[d1])
        # convert native currency -> account currency
        if not same.all():
            M = self.as_matrix(mv)
            d = ~same
            rows = acct_code[d]
            fx_pos = pos_fx0[d] * self._ratio(pos_link[d], rows, M)
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
        # rows of the margin table by position (one hash lookup); absent accounts masked by ``present``
        at = margin.index.get_indexer(self.accounts) if len(margin) and margin.index.is_unique else None
        mg = margin.reindex(self.accounts) if at is None else margin.iloc[np.maximum(at, 0)]
        m_ccy = mg["currency"].astype(object).fillna("").astype(str).to_numpy(dtype=object)
        # an account absent from the margin table holds no positions (requirement 0); one present with NaN
        # figures is not computed (outside the model's domain): NaN, never 0
        present = pd.Index(self.accounts).isin(margin.index) if at is None else at >= 0
        if at is not None:
            m_ccy = np.where(present, m_ccy, "").astype(object)
        m_fx = self.ccy_fx(m_ccy, mv)
        conv = np.where(np.isfinite(m_fx), m_fx / fx, 1.0)
        im = np.where(present, mg["im"].to_numpy(dtype=float), 0.0) * conv
        mm = np.where(present, mg["mm"].to_numpy(dtype=float), 0.0) * conv
        if "error" in mg.columns:
            err = mg["error"].fillna("").astype(str).to_numpy(dtype=object)
            err = np.where((err == "nan") | ~present, "", err)
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
        # the positions of ``rows`` only (each account's value sums its own positions, in row order)
        sel = self._rows_mask(rows) if self.a is not None else None
        pidx = None if sel is None or sel.all() else np.flatnonzero(sel)
        vals = self.position_values(mv, pidx)
        codes = self.acct_code if pidx is None else self.acct_code[pidx]
        mtm = np.bincount(codes, weights=vals, minlength=n_a) if len(vals) else np.zeros(n_a)
        fx = self.account_fx(mv)
        margin = self.margin_at(mv, rows=rows)
        _, mm, _, _ = self._margin_in_account_ccy(margin, mv, fx)
        equity = self.collateral_values(mv, "mm") + mtm
        return equity[rows], mm[rows]

    def margin_at(self, mv: NDArray[np.float64], rows: NDArray[np.intp] | None = None) -> pd.DataFrame:
        """The margin function at moves ``mv`` (accounts without positions absent).

        The margin function's ``batched`` evaluation when it has one (:func:`margin_function`: the margin
        engine on the book's arrays moved per position, in one call, shared moves too). Otherwise, shared
        moves (1-D, or every row equal): one call of the margin function on the market moved by
        :meth:`shifted_market`; one row per account: one call per distinct row of moves.

        Parameters
        ----------
        mv : ndarray of shape (n_underlyings,) or (n_accounts, n_underlyings)
            Moves.
        rows : ndarray of int, optional
            Only these accounts (indices into ``accounts``).
        """
        mv = np.asarray(mv, dtype=float)
        sel = None if rows is None else self._rows_mask(rows)
        if sel is not None and sel.all():
            sel = None
        if not (self.acct_code.size if sel is None else sel.any()):
            return pd.DataFrame({"im": [], "mm": [], "currency": []}, index=pd.Index([], name="account"))
        if mv.ndim == 2:
            used = np.unique(self.acct_code if sel is None else self.acct_code[sel])
            sub = mv[used]
            if (sub == sub[0]).all():
                mv = sub[0].copy()
        # the margin function's batched form when it has one (:func:`margin_function`): the engine on the
        # book's arrays moved per position, no market re-built and looked up again (shared moves too)
        batched = getattr(self.margin_fn, "batched", None)
        if batched is not None:
            return batched(self, mv, sel)
        pos = self.positions if sel is None else self.positions[sel]
        if mv.ndim == 1:
            return call_margin_fn(self.margin_fn, pos, self.shifted_market(mv))
        # one call per distinct row of moves (exact, for margin functions without a batched form)
        codes = self.acct_code if sel is None else self.acct_code[sel]
        uniq, inv = np.unique(mv[codes], axis=0, return_inverse=True)
        parts = [call_margin_fn(self.margin_fn, pos[inv.ravel() == k], self.shifted_market(row))
                 for k, row in enumerate(uniq)]
        return pd.concat(parts)

    def subset(self, accounts: Sequence[str]) -> BookValuer:
        """The same book restricted to ``accounts`` (positions, collateral, same margin and vol rules)."""
        keep = set(accounts)
        pos = pd.concat([self.positions, self.bad_positions]) if len(self.bad_positions) else self.positions
        return BookValuer(
            ValidatedBook._unchecked(pos[pos["account"].isin(keep)], self.market),
            self.market,
            self.collateral[self.collateral["account"].isin(keep)],
            self.margin_fn,
            vol_reaction=self.vol_reaction,
            accounts=list(accounts),
            currencies=dict(zip(self.accounts, self.currency)),
            errors=self.errors,
        )


def book_inputs(positions: Any, market: Any, collateral: Any) -> tuple[Any, MarketSnapshot, pd.DataFrame | None]:
    """Positions, market and normalised collateral of a public solvency entry point.

    ``positions`` may be a validated Book (its market used when ``market`` is None, its collateral when
    ``collateral`` is None) or a positions table. A collateral table is read by
    :func:`~greeksmargin.book.collateral.load_collateral` (``account, asset, amount`` suffice: a missing
    ``price`` comes from the market), unless it is the Book's own, already normalised.
    """
    if isinstance(positions, ValidatedBook):
        if market is not None and market is not positions.market and market != positions.market:
            raise InputError("the market given is not the Book's market (use book.with_market(moves))",
                             column="market")
        market = positions.market
        if collateral is None:
            return positions, market, positions.collateral
    elif not isinstance(positions, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("positions", "a Book (greeksmargin.load_book) or a positions DataFrame", positions)
    if not isinstance(market, MarketSnapshot):
        raise ArgumentTypeError("market", "a MarketSnapshot (greeksmargin.load_market)", market)
    if collateral is not None:
        if not isinstance(collateral, (pd.DataFrame, str, Path)):
            raise ArgumentTypeError("collateral", "a collateral DataFrame (load_collateral) or None", collateral)
        collateral = load_collateral(collateral)
    return positions, market, collateral


def _input_order(vb: ValidatedBook) -> pd.Series:
    """Account of every row of the book (computable and set aside), in the input's row order."""
    if vb.set_aside is None or not len(vb.set_aside):
        return vb.positions["account"]
    both = pd.concat([vb.positions["account"], vb.set_aside["account"]])
    try:
        return both.sort_index(kind="stable")
    except TypeError:  # labels of mixed types: computable accounts first
        return both


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


