"""Incremental what-if margin: an account's state kept so that adding a trade costs work in the trade only.

Every figure of a component model (:mod:`greeksmargin.engine.models`, methodologies ``greeks-stress`` and
``deribit-standard``) is a non-linear function of *sums over the positions of a risk unit* (one account x
one underlying): the scan of the summed P&L vector, ``|sum delta|``, ``max(-sum gamma, 0)`` (or, with the revaluation
Greeks charges, of the summed P&L at ``+h`` / ``-h``), the vega exposures (or the P&L with the vols
shocked up / down) summed per expiry bucket, ``max(sum som, 0)``, the roll summed per expiry, the floors, caps and
standard charges summed. :class:`AccountState` keeps these sums per underlying (the P&L vector of length
``n_scenarios``, net delta / gamma, the vega bucket vector, ...). Adding trades revalues the trades only
(``n_trades x n_scenarios`` prices), adds them to copies of the sums of the units they touch, and
re-evaluates the combination expression and the aggregation across underlyings: O(trades x scenarios +
units), independent of the number of positions already held.

With ``cap_at_isolated`` (``greeks-default``) each unit also keeps the sum of its positions' isolated IM and
MM (every position margined alone, :func:`_isolated`, as the full engine's isolated step); the unit's
requirement is capped at it before the aggregation, exactly as
:func:`greeksmargin.engine.house_pieces.unit_requirements` does in
:func:`~greeksmargin.engine.margin.compute_margin` (tests/test_whatif_cap.py: a book where the cap binds).

The per-position pieces are those of :func:`greeksmargin.engine.margin.compute_margin` (its step 3: the scan
P&L through :func:`greeksmargin.risk.kernels.scan_units`, the finite-difference Greeks through
:func:`greeksmargin.risk.scenarios.sensitivities` as the engine does on both backends); tests hold
``AccountState.with_trades`` equal to ``compute_margin`` on the account with the trades appended.

One trade given as a mapping takes a scalar path first (:mod:`greeksmargin.engine.whatif_one`: the same
pieces for the one position without array set-up, the untouched units' requirements kept between
what-ifs); it hands the cases it does not cover back to this module.

When a trade changes the account's margin currency (e.g. a linear trade in a coin-margined account) or
the model aggregates with TIMS offsets, :meth:`AccountState.with_trades` falls back to a full
:func:`~greeksmargin.engine.margin.compute_margin` of the account (same result, full cost).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.book import Book
from greeksmargin.engine.models import Model, RuleSet
from greeksmargin.engine.whatif_one import KIND_CODES as _KIND_CODES
from greeksmargin.engine.whatif_one import LOOKUP_CACHE_SIZE as _LOOKUP_CACHE_SIZE
from greeksmargin.engine.whatif_one import STD as _STD
from greeksmargin.engine.whatif_one import check_record as _check_record
from greeksmargin.engine.whatif_one import look_up as _look_up
from greeksmargin.engine.whatif_one import one_trade
from greeksmargin.engine.whatif_one import sensitivities_unused as _sensitivities_unused
from greeksmargin.errors import InputError, MarketDataError
from greeksmargin.methodologies.house import contingency as cont
from greeksmargin.methodologies.house import sensitivity as sens
from greeksmargin.methodologies.house.combine import aggregate_correlation, correlation_matrix, evaluate
from greeksmargin.methodologies.house.scan import scan_loss
from greeksmargin.risk.kernels import Backend, scan_units
from greeksmargin.risk.scenarios import VolShockRule, sensitivities

__all__ = ["AccountState"]

_KINDS = np.array(["option", "future", "perpetual", "spot"], dtype=object)


@dataclass
class _Unit:
    """Sums over the positions of one unit (account x underlying), in the account's margin currency."""

    pnl: NDArray[np.float64]  # (n_scenarios,)
    delta: float = 0.0
    gamma: float = 0.0
    vega_b: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # (n_buckets,)
    # revaluation Greeks charges: P&L at the delta and gamma shocks, and per bucket with the vols shocked
    delta_up: float = 0.0
    delta_down: float = 0.0
    gamma_up: float = 0.0
    gamma_down: float = 0.0
    vega_up_b: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # (n_buckets,)
    vega_down_b: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))  # (n_buckets,)
    som: float = 0.0
    roll: dict[int, float] = field(default_factory=dict)  # expiry (seconds) -> sum
    floor: float = 0.0
    cap_value: float = 0.0
    cap_other: float = 0.0
    std: dict[str, float] = field(default_factory=dict)
    # sums of the positions' isolated requirements (each position alone): the cap of ``cap_at_isolated``
    iso_im: float = 0.0
    iso_mm: float = 0.0

    def copy(self) -> _Unit:
        return replace(self, pnl=self.pnl.copy(), vega_b=self.vega_b.copy(), vega_up_b=self.vega_up_b.copy(),
                       vega_down_b=self.vega_down_b.copy(), roll=dict(self.roll), std=dict(self.std))


def _unique(values: Any) -> list[Any]:
    """Distinct values in order of first appearance (``pd.unique`` without building a Series: a few trades)."""
    return list(dict.fromkeys(values.tolist() if isinstance(values, np.ndarray) else list(values)))


# ------------------------------------------------------------------------------------- position arrays
def _arrays_from_frame(pos: pd.DataFrame, market: Any) -> dict[str, Any]:
    """Market arrays and pricing columns of validated positions (the book's own functions)."""
    from greeksmargin.risk.greeks import market_arrays, price_positions

    book = Book._unchecked(pos, market)  # validated positions: trusted, looked up once
    a = dict(market_arrays(book, market))
    pr = price_positions(book, market)
    a["price"] = pr["price"].to_numpy(dtype=float)
    a["value_ccy"] = pr["value_ccy"].to_numpy(dtype=float)
    a["margin_currency"] = pr["margin_currency"].to_numpy(dtype=object)
    a["quantity"] = pos["quantity"].to_numpy(dtype=float)
    a["multiplier"] = pos["multiplier"].to_numpy(dtype=float)
    a["underlying"] = pos["underlying"].to_numpy(dtype=object)
    a["account"] = pos["account"].to_numpy(dtype=object)
    a["instrument"] = pos["instrument"].to_numpy(dtype=object)
    return a


def _arrays_from_records(records: Sequence[Mapping[str, Any]], market: Any,
                         cache: dict[tuple[Any, ...], tuple[float, ...]] | None = None) -> dict[str, Any]:
    """The same arrays as :func:`_arrays_from_frame` for a few trades, with scalar market look-ups.

    ``cache`` (owned by the caller, one market) keeps each instrument's look-ups (spot, forward, rate,
    perpetual ratio, vol, unit price) by (underlying, kind, T, strike, instrument, call/put): not redone.
    """
    vt = market.valuation_time
    recs = [_check_record(r, i, vt) for i, r in enumerate(records)]
    n = len(recs)
    a: dict[str, Any] = {k: np.zeros(n) for k in ("strike", "T", "spot", "forward", "vol", "rate", "size",
                                                   "perp_ratio", "price", "value_ccy", "quantity", "multiplier")}
    a["kind_code"] = np.zeros(n, dtype=np.int8)
    a["is_call"] = np.zeros(n, dtype=bool)
    a["inverse"] = np.zeros(n, dtype=bool)
    a["margin_currency"] = np.empty(n, dtype=object)
    a["underlying"] = np.empty(n, dtype=object)
    a["account"] = np.empty(n, dtype=object)
    for j, r in enumerate(recs):
        u = r["underlying"]
        if u not in market:
            raise MarketDataError(f"underlying '{u}' is not in the market snapshot", file="<trades>")
        kc = _KIND_CODES[r["kind"]]
        t = r["T"]
        key = (u, kc, t if math.isfinite(t) else None, r["strike"] if kc == 0 else None, str(r["instrument"]),
               r["is_call"])
        hit = cache.get(key) if cache is not None else None
        if hit is None:
            hit = _look_up(market, u, kc, t, r["strike"], r["instrument"], r["is_call"])
            if cache is not None:
                if len(cache) >= _LOOKUP_CACHE_SIZE:
                    cache.clear()
                cache[key] = hit
        s, f, rate, perp_ratio, vol, price = hit
        a["kind_code"][j] = kc
        a["is_call"][j] = r["is_call"]
        a["strike"][j] = r["strike"]
        a["T"][j] = t
        a["spot"][j] = s
        a["forward"][j] = f
        a["rate"][j] = rate
        a["perp_ratio"][j] = perp_ratio
        a["quantity"][j] = r["quantity"]
        a["multiplier"][j] = r["multiplier"]
        size = r["quantity"] * r["multiplier"]
        a["size"][j] = size
        a["inverse"][j] = r["inverse"]
        a["underlying"][j] = u
        a["account"][j] = r["account"]
        a["vol"][j] = vol
        a["price"][j] = price
        value_usd = price * size if kc in (0, 3) else 0.0
        if r["inverse"]:
            a["value_ccy"][j] = price / f * size if kc == 0 else (value_usd / s if kc == 3 else 0.0)
            ccy = market.currency(u)
            a["margin_currency"][j] = ccy if ccy != "USD" else u
        else:
            a["value_ccy"][j] = value_usd
            a["margin_currency"][j] = "USD"
    a["instrument"] = np.array([str(r.get("instrument", f"trade {i}")) for i, r in enumerate(recs)], dtype=object)
    return a


# ------------------------------------------------------------------------------------ per-position pieces
def _pieces(rs: RuleSet, a: Mapping[str, Any], factor: NDArray[np.float64], acc_fx: float, market: Any,
            backend: Backend, *, figures_only: bool = False) -> dict[str, Any]:
    """Per-position pieces of every figure, in the account's margin currency (as compute_margin, step 3).

    ``figures_only``: the finite-difference delta / gamma / vega are zeros when no figure reads them
    (:func:`_sensitivities_unused`): for a what-if whose sums are thrown away.
    """
    need = set(rs.figures)
    n = a["size"].shape[0]
    und = a["underlying"]
    kc = a["kind_code"]
    is_opt = kc == 0
    inv = a["inverse"].astype(bool)
    size = a["size"].astype(float)
    unit_price = np.where(inv, 1.0, a["spot"])
    d1_price = np.where(inv, 1.0, a["price"])
    kinds = _KINDS[np.clip(kc, 0, 3)] if n else np.zeros(0, dtype=object)
    P: dict[str, Any] = {}
    has_scan = "scan" in need
    need_sens = bool(need & {"delta", "gamma", "vega"}) and not (figures_only and _sensitivities_unused(rs))
    gain = rs.components["scan"]["gain_offset"] if has_scan else 1.0
    # scan P&L and sensitivities, one call per underlying (each underlying has its grid)
    P["pnl"] = {}
    dlt, gam, veg = np.zeros(n), np.zeros(n), np.zeros(n)
    for u in _unique(und):
        idx = np.flatnonzero(und == u)
        sub = {k: a[k][idx] for k in ("kind_code", "is_call", "strike", "T", "forward", "spot", "vol", "rate", "size",
                                      "inverse", "perp_ratio", "fx_moves")}
        if "american" in a:  # American options: their own revaluation (greeksmargin.risk.exercise)
            sub["american"] = np.asarray(a["american"], dtype=bool)[idx]
        grid = rs.grid_for(str(u)) if has_scan else None
        if not (has_scan or need_sens):
            continue
        # every position its own unit: the per-position P&L rows are summed by the caller in input order
        starts = np.arange(idx.size, dtype=np.intp)
        if has_scan:
            r = scan_units(sub, factor[idx], starts, grid, gain, scan=True, sens=False, backend=backend)
            P["pnl"][u] = (idx, r.unit_pnl)  # (n_scenarios, n_u)
        if need_sens:
            # finite differences with the numpy kernel, as compute_margin on both of its backends: a last-bit
            # difference of two Black-76 implementations becomes ~1e-9 of the gamma through the 1/h^2 divisor
            f = factor[idx]
            d, gm, v = sensitivities(sub)
            dlt[idx], gam[idx], veg[idx] = d * f, gm * f, np.nan_to_num(v) * f
    P["delta"], P["gamma"] = dlt, gam
    from greeksmargin.engine.margin import revaluation_pieces

    P.update(revaluation_pieces(rs, a, und, factor))
    if "vega" in need:
        c = rs.components["vega"]
        rule = VolShockRule(kind=c["kind"], up=c["shock"], short_power=c["short_power"],
                            long_power=c["long_power"], pivot_days=c["pivot_days"], floor_days=c["floor_days"])
        mult = rule.multiplier(a["T"])
        # signed vega per unit of vol shock; the shock of the losing direction is applied per unit (as margin.py)
        size_shock = mult * (np.nan_to_num(a["vol"]) if c["kind"] == "relative" else 1.0)
        P["vega_exposure"] = np.where(is_opt, veg * size_shock, 0.0)
        P["bucket"] = sens.expiry_bucket(a["T"], c["bucket_days"])
    from greeksmargin.engine.margin import contingency_pieces

    P.update(contingency_pieces(
        rs, a, kinds=kinds, size=size, unit_price=unit_price, d1_price=d1_price, value_ccy=a["value_ccy"],
        quantity=a["quantity"], multiplier=a["multiplier"], factor=factor,
        currency_to_account=lambda ccy: market.fx_to_usd(ccy) / acc_fx,
    ))
    if rs.cap_at_isolated:
        P["iso_im"], P["iso_mm"] = _isolated(rs, P, a, n)
    return P


def _isolated(rs: RuleSet, P: Mapping[str, Any], a: Mapping[str, Any], n: int
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """IM and MM of each position margined alone, as the full engine's isolated step (house_run, step 6).

    The same figures as :func:`greeksmargin.engine.house_pieces._position_figures` on the same per-position
    pieces (the scan of each position's own P&L vector, the charges with the shocks of its underlying),
    combined by :func:`~greeksmargin.engine.house_pieces.unit_requirements` with every position its own unit.
    """
    from greeksmargin.engine.house_pieces import (
        _position_figures,
        delta_shocks,
        gamma_shocks,
        unit_requirements,
        vega_shocks,
    )

    need = set(rs.figures)
    und = [str(u) for u in a["underlying"]]
    PP: dict[str, Any] = dict(P)
    if "scan" in need:
        gain = rs.components["scan"]["gain_offset"]
        pos_scan = np.zeros(n)
        for u, (idx, mat) in P["pnl"].items():
            g = rs.grid_for(str(u))
            assert g is not None
            pos_scan[idx] = scan_loss(mat, g.weights, gain)[0]
        PP["pos_scan"] = pos_scan
    if "vega_exposure" in P:
        PP["vega_base"] = P["vega_exposure"]
    shock: dict[str, NDArray[np.float64]] = {}
    if "delta" in need:
        for side in ("down", "up"):
            shock[f"delta_{side}"] = delta_shocks(rs.components["delta"], und, side)
    if "gamma" in need:
        shock["gamma"] = gamma_shocks(rs.components["gamma"], und)
    if "vega" in need:
        for side in ("up", "down"):
            shock[f"vega_{side}"] = vega_shocks(rs.components["vega"], und, side)
    im, mm = unit_requirements(rs, _position_figures(rs, need, PP, shock), n)
    return np.asarray(im, dtype=float), np.asarray(mm, dtype=float)


# ------------------------------------------------------------------------------------------ the state
class AccountState:
    """Running sums of one account, per underlying, from which its margin is re-evaluated in O(units).

    Build with :meth:`from_positions`; :meth:`with_trades` gives ``(im, mm)`` with trades added (the state is
    not changed); :meth:`add_trades` commits them. Amounts are in the account's margin currency
    (:attr:`currency`), as :func:`greeksmargin.engine.margin.compute_margin`.
    """

    def __init__(self) -> None:  # use from_positions
        #: account name; margin currency of the account as it stands; currency of the last what-if
        self.account: str = ""
        self.currency: str = "USD"
        self.market: Any = None
        self.model: Model | None = None
        self.backend: Backend = "auto"
        self.units: dict[str, _Unit] = {}
        self.positions: pd.DataFrame = pd.DataFrame()
        self.last_currency: str = "USD"
        self._ccys: set[str] = set()
        self._acc_fx = 1.0
        self._n_s = 0
        self._n_b = 1
        #: why the model does not cover the account ("" when it does): then every figure is NaN, never 0
        self.not_computed = ""
        #: value of each held position (options and spot; 0 for futures and perpetuals) in its settlement
        #: currency, and that currency (``value_ccy`` / ``margin_currency`` of
        #: :func:`~greeksmargin.risk.greeks.price_positions`), as built; shape (n_positions,)
        self.values: NDArray[np.float64] = np.zeros(0)
        self.value_currencies: NDArray[Any] = np.zeros(0, dtype=object)
        #: market look-ups of the trades' instruments (:func:`_arrays_from_records`), for ``_lookups_market``
        self._lookups: dict[tuple[Any, ...], tuple[float, ...]] = {}
        self._lookups_market: Any = None
        #: per-underlying constants and untouched units' requirements of the one-trade path (whatif_one)
        self._one_cache: Any = None

    def _outside(self, a: Mapping[str, Any]) -> str:
        """The reason the model's domain excludes positions of ``a`` ("" when every one is inside)."""
        assert self.model is not None
        if self.model.domain.is_any or not len(a["kind_code"]):
            return ""
        kinds = np.array(["option", "future", "perpetual", "spot"], dtype=object)
        n = len(a["kind_code"])
        df = pd.DataFrame({
            "account": [self.account] * n,
            "instrument": a["instrument"] if "instrument" in a else [f"position {i}" for i in range(n)],
            "underlying": a["underlying"],
            "kind": kinds[np.asarray(a["kind_code"], dtype=int)],
            "settlement": np.where(np.asarray(a["inverse"], dtype=bool), "inverse", "linear"),
        })
        return self.model.domain.not_computed(df, self.model.name).get(self.account, "")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_positions(
        cls,
        positions: Any,
        market: Any,
        model: str | Any = "greeks-default",
        *,
        account: str | None = None,
        backend: Backend = "auto",
    ) -> AccountState:
        """State of one account from its positions.

        Parameters
        ----------
        positions : str, Path or DataFrame
            Positions (:func:`greeksmargin.book.positions.load_positions` schema). With several accounts, pass
            ``account``.
        market : str, Path, dict or MarketSnapshot
            Market snapshot.
        model : str, Path or Model
            A component model (``greeks-default``, ``deribit-sm``, ...).
        account : str, optional
            The account (required when ``positions`` holds more than one).
        backend : {"auto", "numpy", "numba"}
            Revaluation kernel (:func:`greeksmargin.risk.kernels.scan_units`).

        Returns
        -------
        AccountState
        """
        from greeksmargin.engine.margin import _as_book, _check_model

        m = _check_model(model)
        book = _as_book(positions, market)  # a Book as is; raw positions validated once
        pos, mk = book.positions, book.market
        accounts = pd.unique(pos["account"])
        if account is None:
            if len(accounts) != 1:
                raise InputError(f"positions hold {len(accounts)} accounts: pass account=", column="account")
            account = str(accounts[0])
        pos = pos[pos["account"] == account]
        st = cls()
        st.account, st.market, st.model, st.backend = str(account), mk, m, backend
        st.positions = pos
        rs: RuleSet = m.params
        st._n_s = rs.grid.n_scenarios if rs.grid is not None else 0
        st._n_b = len(rs.components["vega"]["bucket_days"]) + 1 if "vega" in rs.components else 1
        if len(pos):
            a = _arrays_from_frame(pos, mk)
            st.values, st.value_currencies = np.asarray(a["value_ccy"], dtype=float), a["margin_currency"]
            st.not_computed = st._outside(a)
            st._ccys = set(a["margin_currency"])
            st._set_currency()
            st._add(a)
        return st

    def _set_currency(self) -> None:
        self.currency = next(iter(self._ccys)) if len(self._ccys) == 1 else "USD"
        self._acc_fx = self.market.fx_to_usd(self.currency)

    # ------------------------------------------------------------------ updates
    def _add(self, a: Mapping[str, Any], units: dict[str, _Unit] | None = None,
             figures_only: bool = False) -> dict[str, _Unit]:
        """Add positions (arrays) to ``units`` (default: the state's own), unit by unit in input order.

        ``figures_only``: ``units`` are scratch copies of a what-if; sums no figure reads are left out.
        """
        assert self.model is not None
        rs: RuleSet = self.model.params
        units = self.units if units is None else units
        pos_fx = np.array([self.market.fx_to_usd(c) for c in a["margin_currency"]], dtype=float)
        factor = pos_fx / self._acc_fx
        # coin-settled positions of an account margined in another currency: P&L at the scenario's coin price
        a = dict(a)
        a["fx_moves"] = np.asarray(a["inverse"], dtype=bool) & (
            np.asarray(a["margin_currency"], dtype=object) != self.currency)
        P = _pieces(rs, a, factor, self._acc_fx, self.market, self.backend, figures_only=figures_only)
        und = a["underlying"]
        for u in _unique(und):
            sel = np.flatnonzero(und == u)
            un = units.get(u)
            if un is None:
                un = _Unit(pnl=np.zeros(self._n_s), vega_b=np.zeros(self._n_b), vega_up_b=np.zeros(self._n_b),
                           vega_down_b=np.zeros(self._n_b))
                units[u] = un
            if u in P["pnl"]:
                idx, mat = P["pnl"][u]
                for col in range(mat.shape[1]):  # sequential sum in input order (as np.add.reduceat)
                    un.pnl = un.pnl + mat[:, col]
            for j in sel:
                un.delta += P["delta"][j]
                un.gamma += P["gamma"][j]
                if "vega_exposure" in P:
                    un.vega_b[P["bucket"][j]] += P["vega_exposure"][j]
                if "delta_up" in P:
                    un.delta_up += P["delta_up"][j]
                    un.delta_down += P["delta_down"][j]
                if "gamma_up" in P:
                    un.gamma_up += P["gamma_up"][j]
                    un.gamma_down += P["gamma_down"][j]
                if "vega_up" in P:
                    un.vega_up_b[P["bucket"][j]] += P["vega_up"][j]
                    un.vega_down_b[P["bucket"][j]] += P["vega_down"][j]
                if "som" in P:
                    un.som += P["som"][j]
                if "roll" in P:
                    key = int(P["expiry_key"][j])
                    un.roll[key] = un.roll.get(key, 0.0) + P["roll"][j]
                if "contract_floor" in P:
                    un.floor += P["contract_floor"][j]
                if "cap_value" in P:
                    un.cap_value += P["cap_value"][j]
                    un.cap_other += P["cap_other"][j]
                for f in _STD:
                    if f in P:
                        un.std[f] = un.std.get(f, 0.0) + P[f][j]
                if "iso_im" in P:
                    un.iso_im += P["iso_im"][j]
                    un.iso_mm += P["iso_mm"][j]
        return units

    # ------------------------------------------------------------------ evaluation
    def _unit_figures(self, names: list[str], units: Mapping[str, _Unit]) -> dict[str, NDArray[np.float64]]:
        assert self.model is not None
        rs: RuleSet = self.model.params
        need = set(rs.figures)
        us = [units[u] for u in names]
        out: dict[str, NDArray[np.float64]] = {}
        if "scan" in need:
            gain = rs.components["scan"]["gain_offset"]
            sc = np.zeros(len(names))
            for i, (u, un) in enumerate(zip(names, us)):
                g = rs.grid_for(u)
                assert g is not None
                loss, _ = scan_loss(un.pnl[:, None], g.weights, gain)
                sc[i] = loss[0]
            out["scan"] = sc
        from greeksmargin.engine.house_pieces import (
            _PRICE_PIECES,
            delta_shocks,
            gamma_shocks,
            price_charges,
            vega_shocks,
        )

        if need & {"delta", "gamma"}:
            net = {k: np.array([getattr(un, k) for un in us]) for k in _PRICE_PIECES}
            shock: dict[str, NDArray[np.float64]] = {}
            if "delta" in need:
                c = rs.components["delta"]
                shock["delta_down"], shock["delta_up"] = delta_shocks(c, names, "down"), delta_shocks(c, names, "up")
            if "gamma" in need:
                shock["gamma"] = gamma_shocks(rs.components["gamma"], names)
            out.update(price_charges(rs, need, net, shock))
        if "vega" in need:
            c = rs.components["vega"]
            lam = c["cross_bucket_netting"]
            b = np.array([un.vega_b for un in us]).reshape(len(us), self._n_b)
            n_u = len(us)
            codes = (np.repeat(np.arange(n_u), self._n_b), np.tile(np.arange(self._n_b), n_u))
            if c["method"] == "revaluation":
                bu = np.array([un.vega_up_b for un in us]).reshape(n_u, self._n_b)
                bd = np.array([un.vega_down_b for un in us]).reshape(n_u, self._n_b)
                out["vega"] = sens.vega_charge_revaluation(bu.ravel(), bd.ravel(), *codes, n_u, self._n_b, lam)
            else:
                out["vega"] = sens.vega_charge(
                    b.ravel(), *codes, n_u, self._n_b,
                    lam, shock_up=vega_shocks(c, names, "up"), shock_down=vega_shocks(c, names, "down"),
                )
        if "short_option_minimum" in need:
            out["short_option_minimum"] = np.maximum(np.array([un.som for un in us]), 0.0)
        if "roll" in need:
            scope = rs.components["roll"]["scope"]
            out["roll"] = np.array(
                [float(cont.roll_unit_charge(np.array([list(un.roll.values()) or [0.0]]), scope)[0]) for un in us]
            )
        if "contract_floor" in need:
            out["contract_floor"] = np.array([un.floor for un in us])
        if "long_premium_cap" in need:
            out["long_premium_cap"] = np.array([np.inf if un.cap_other > 0 else un.cap_value for un in us])
        for f in _STD:
            if f in need:
                out[f] = np.array([un.std.get(f, 0.0) for un in us])
        return out

    def _evaluate(self, units: Mapping[str, _Unit]) -> tuple[float, float]:
        assert self.model is not None
        rs: RuleSet = self.model.params
        names = sorted(units)
        if not names:
            return 0.0, 0.0
        UF = self._unit_figures(names, units)
        n_u = len(names)
        unit_im = np.maximum(evaluate(rs.im, UF) * np.ones(n_u), 0.0)
        if rs.cap_at_isolated:  # a unit never needs more than its positions margined alone (as house_run)
            unit_im = np.minimum(unit_im, np.array([units[u].iso_im for u in names]))
        unit_mm = (np.maximum(evaluate(rs.mm, UF) * np.ones(n_u), 0.0) if rs.mm is not None
                   else rs.mm_factor * unit_im)
        if rs.cap_at_isolated and rs.mm is not None:
            unit_mm = np.minimum(unit_mm, np.array([units[u].iso_mm for u in names]))
        method = rs.aggregate["method"]
        acc = np.zeros(n_u, dtype=np.intp)
        if method == "sum":
            im, mm = float(unit_im.sum()), float(unit_mm.sum())
        else:  # correlation (signed, as compute_margin)
            from greeksmargin.engine.margin import delta_shocks, exposure_direction

            C = correlation_matrix(names, rs.aggregate["default_correlation"], rs.aggregate["correlations"])
            und = np.arange(n_u, dtype=np.intp)
            us = [units[u] for u in names]
            if "scan" in rs.figures:
                grids = [rs.grid_for(u) for u in names]
                direction = exposure_direction(
                    rs, pnl=np.array([un.pnl for un in us]).T.reshape(self._n_s, n_u),
                    spot_move=np.stack([g.spot_move for g in grids if g is not None], axis=1),
                    weights=np.stack([g.weights for g in grids if g is not None], axis=1),
                )
            else:
                shock = ({f"delta_{sd}": delta_shocks(rs.components["delta"], names, sd) for sd in ("down", "up")}
                         if "delta" in rs.figures else {})
                direction = exposure_direction(
                    rs, net={k: np.array([getattr(un, k) for un in us]) for k in ("delta", "delta_up", "delta_down")},
                    shock=shock,
                )
            im_a, _ = aggregate_correlation(unit_im, acc, und, 1, C, direction)
            im = float(im_a[0])
            mm = (float(aggregate_correlation(unit_mm, acc, und, 1, C, direction)[0][0]) if rs.mm is not None
                  else 0.0)
        if rs.mm is None:
            assert rs.mm_factor is not None  # parse_rule_set: exactly one of mm and mm_factor
            mm = rs.mm_factor * im
        return im, mm

    def margin(self) -> tuple[float, float]:
        """``(im, mm)`` of the account as it stands (margin currency); NaN when outside the model's domain."""
        if self.not_computed:
            return float("nan"), float("nan")
        if self._fallback_needed(set()):
            return self._full(None)
        return self._evaluate(self.units)

    # ------------------------------------------------------------------ what-if
    def _trade_arrays(self, trades: Any) -> dict[str, Any]:
        if isinstance(trades, Mapping):
            trades = [trades]
        if isinstance(trades, pd.DataFrame):
            from greeksmargin.book.positions import load_positions

            pos = load_positions(trades, valuation_time=self.market.valuation_time)
            a = _arrays_from_frame(pos, self.market)
        elif any(str(r.get("exercise") or "european").strip().lower() != "european" or "quantity_unit" in r
                 for r in trades):
            from greeksmargin.book.positions import load_positions

            # a declared exercise style other than european (American pricing), or a quantity in another unit
            # (converted by the loader): the validated frame path
            pos = load_positions(pd.DataFrame(list(trades)), valuation_time=self.market.valuation_time)
            a = _arrays_from_frame(pos, self.market)
        else:
            if self._lookups_market is not self.market:
                self._lookups, self._lookups_market = {}, self.market
            a = _arrays_from_records(list(trades), self.market, self._lookups)
        bad = [x for x in a["account"] if x != self.account]
        if bad:
            raise InputError(f"trade for account '{bad[0]}' given to the state of account '{self.account}'",
                             file="<trades>", column="account")
        return a

    def _fallback_needed(self, new_ccys: set[str]) -> bool:
        assert self.model is not None
        rs: RuleSet = self.model.params
        if rs.aggregate["method"] not in ("sum", "correlation"):
            return True
        ccys = self._ccys | new_ccys
        cur = next(iter(ccys)) if len(ccys) == 1 else "USD"
        return bool(self.units) and cur != self.currency

    def _full(self, a: Mapping[str, Any] | None, trades: Any = None) -> tuple[float, float]:
        from greeksmargin.engine.margin import compute_margin

        pos = self.positions
        if trades is not None:
            tr = trades if isinstance(trades, pd.DataFrame) else pd.DataFrame(
                [trades] if isinstance(trades, Mapping) else list(trades))
            pos = pd.concat([pos, tr], ignore_index=True)
        if not len(pos):
            return 0.0, 0.0
        row = compute_margin(pos, self.market, self.model).accounts.iloc[0]
        return float(row["im"]), float(row["mm"])

    def with_trades(self, trades: Any) -> tuple[float, float]:
        """Margin of the account with ``trades`` added (the state is unchanged).

        Parameters
        ----------
        trades : DataFrame, mapping or sequence of mappings
            New positions of this account (positions schema). Mappings take a fast path (scalar market
            look-ups, no pandas); a DataFrame is validated by :func:`~greeksmargin.book.positions.load_positions`.

        Returns
        -------
        im, mm : float
            Initial and maintenance margin after the trades, in the account's margin currency after them
            (left in :attr:`last_currency`).
        """
        one = trades if isinstance(trades, Mapping) else (
            trades[0] if isinstance(trades, (list, tuple)) and len(trades) == 1 and isinstance(trades[0], Mapping)
            else None)
        if one is not None and "quantity_unit" in one:  # converted by the loader: the frame path
            one = None
        if one is not None:  # one trade: the scalar path (greeksmargin.engine.whatif_one), None when it defers
            got = one_trade(self, one)
            if got is not None:
                return got
        return self._with_arrays(self._trade_arrays(trades), trades)

    def sized_trade(self, trade: Mapping[str, Any]) -> Callable[[float], tuple[float, float]]:
        """``k -> (im, mm)`` of the account with ``trade`` scaled to ``k`` times its quantity (state unchanged).

        The trade's market look-ups are done once; each call scales its size (``quantity``, ``size`` and
        ``value_ccy`` are linear in the quantity) and revalues it alone: for a size search
        (:func:`greeksmargin.solvency.sizing.max_size`). Same figures as :meth:`with_trades` with the quantity
        multiplied by ``k``.
        """
        a1 = self._trade_arrays(trade)

        def at(k: float) -> tuple[float, float]:
            a = dict(a1)
            for key in ("quantity", "size", "value_ccy"):
                a[key] = np.asarray(a1[key], dtype=float) * k
            return self._with_arrays(a, dict(trade, quantity=float(trade["quantity"]) * k))

        return at

    def _with_arrays(self, a: Mapping[str, Any], trades: Any) -> tuple[float, float]:
        ccys = self._ccys | set(a["margin_currency"])
        self.last_currency = next(iter(ccys)) if len(ccys) == 1 else "USD"
        if self.not_computed or self._outside(a):  # outside the model's domain: not computed, never 0
            return float("nan"), float("nan")
        if self._fallback_needed(set(a["margin_currency"])):
            return self._full(a, trades)
        if not self.units:
            self._ccys = set(a["margin_currency"])
            self._set_currency()
            touched = {}
        else:
            touched = {u: self.units[u].copy() for u in _unique(a["underlying"]) if u in self.units}
        self._add(a, touched, figures_only=True)
        merged = dict(self.units)
        merged.update(touched)
        return self._evaluate(merged)

    def add_trades(self, trades: Any) -> tuple[float, float]:
        """Add ``trades`` to the state (and to :attr:`positions`); returns the new ``(im, mm)``."""
        a = self._trade_arrays(trades)
        self._one_cache = None  # the units change: what the one-trade path keeps of them is dropped
        self.not_computed = self.not_computed or self._outside(a)
        tr = trades if isinstance(trades, pd.DataFrame) else pd.DataFrame(
            [trades] if isinstance(trades, Mapping) else list(trades))
        if self._fallback_needed(set(a["margin_currency"])):
            self.positions = pd.concat([self.positions, tr], ignore_index=True)
            self._ccys |= set(a["margin_currency"])
            self._set_currency()
            self.units = {}
            from greeksmargin.book.positions import load_positions

            pos = load_positions(self.positions, valuation_time=self.market.valuation_time)
            self._add(_arrays_from_frame(pos, self.market))
            return self.margin()
        if not self.units:
            self._ccys = set(a["margin_currency"])
            self._set_currency()
        self._add(a)
        self.positions = pd.concat([self.positions, tr], ignore_index=True)
        return self._evaluate(self.units)
