"""``compute_margin``: positions x market x model -> initial and maintenance margin, explained.

Pipeline (every step vectorised over positions; no Python loop per account):

1. look up the book's market arrays once (:func:`~greeksmargin.risk.greeks.market_arrays`) and value each
   position (Greeks of :func:`~greeksmargin.risk.greeks.price_positions` only on demand, ``net_greeks``);
2. sort positions by (scenario grid, account, underlying): a *risk unit* is one account x one underlying,
   its positions are contiguous;
3. per position, in the account's margin currency: the P&L under every scenario (chunks of positions,
   :func:`~greeksmargin.risk.scenarios.scenario_pnl`; each option contract held by several positions at
   the same inputs priced once, :func:`~greeksmargin.risk.scenarios.contract_codes`, the same figures),
   finite-difference delta / gamma / vega, the P&L at the gamma price shocks and with the vega vol
   shocks when those charges use ``method = "revaluation"`` (:func:`revaluation_pieces`), and the
   per-position pieces of the contingencies;
4. per unit (``np.add.reduceat`` / ``np.bincount``): scan, sensitivity charges, contingencies; the unit
   requirement is the model's combination expression;
5. per account: aggregation across underlyings (sum, correlation, TIMS offsets); MM from ``mm_factor``
   or its own expression;
6. isolated requirement: the same figures with every position its own unit and account (no extra
   revaluation: the per-position P&L is reduced on its own).

**Margin currency of an account**: the settlement currency shared by all its positions (the coin for an
all-inverse account), else USD, coin amounts converted at the current spot (``market.fx_to_usd``); in a
scenario the P&L of a coin-settled position of a USD-margined account is its USD P&L at the scenario's
coin price (position array ``fx_moves``, :mod:`greeksmargin.risk.scenarios`), in the scan, the Greeks
charges, the isolated figures and every consumer of the engine (what-if, solvency, distance to
liquidation, cascade, attribution).

**Aggregation across underlyings** with ``method = "correlation"`` is signed: each unit's requirement
carries the direction of its exposure (:func:`exposure_direction`; the formula is in
:mod:`greeksmargin.methodologies.house.combine`).

**Attribution** (:meth:`MarginResult.attribution`): the account requirement is first split across its
units (sum: each unit's requirement; correlation: Euler shares ``x_u (C x)_u / sqrt(x' C x)``, all to the
largest unit when the floor binds; TIMS offsets: proportional to the unit requirements); inside a unit
the part explained by the scan, ``min(scan, requirement)``, goes to positions by their (weighted) P&L in
the unit's worst scenario (Euler allocation of a worst-case loss), the rest proportionally to each
position's isolated requirement. The rounding residual goes to the largest contribution, so the
contributions sum to ``im`` exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from greeksmargin.book.book import Book, load_book
from greeksmargin.book.collateral import load_collateral, value_collateral
from greeksmargin.book.market import MarketSnapshot, load_market
from greeksmargin.book.positions import account_currency
from greeksmargin.engine.adapter_dispatch import DISPATCH, AdapterMarginResult, margin_by_methodology
from greeksmargin.engine.house_pieces import (
    REVAL_MIN_VOL,
    contingency_pieces,
    delta_shocks,
    exposure_direction,
    gamma_shocks,
    price_charges,
    revaluation_pieces,
    unit_requirements,
    vega_shocks,
)
from greeksmargin.engine.house_run import _run, _underlying_codes
from greeksmargin.engine.models import Model, load_model
from greeksmargin.engine.postcondition import enforce
from greeksmargin.engine.result import MarginResult, accounts_table
from greeksmargin.errors import ArgumentTypeError, InputError, ModelError
from greeksmargin.risk.scenarios import CHUNK

__all__ = [
    "REVAL_MIN_VOL",
    "MarginResult",
    "accounts_table",
    "compute_margin",
    "contingency_pieces",
    "delta_shocks",
    "exposure_direction",
    "gamma_shocks",
    "margin_requirements",
    "price_charges",
    "revaluation_pieces",
    "unit_requirements",
    "vega_shocks",
]

def _check_model(model: str | Any) -> Model:
    m = load_model(model)
    if not m.runnable:
        raise ModelError(
            f"model '{m.name}' uses methodology '{m.methodology}', which compute_margin cannot run on a positions "
            f"book (use its own module in greeksmargin.methodologies.house); runnable methodologies: greeks-stress, "
            f"deribit-standard, tims-pm",
            file=m.file,
            key="meta.methodology",
        )
    return m


def _as_book(positions: Any, market: Any, *, errors: str = "raise") -> Book:
    """The Book of the inputs: a Book as is (trusted), raw positions validated once into one.

    ``market`` may be None with a Book; given with a Book, it must be the Book's market.
    """
    if isinstance(positions, Book):
        if market is not None and market is not positions.market:
            mk = market if isinstance(market, MarketSnapshot) else load_market(market)
            if mk != positions.market:
                raise InputError("the market given is not the Book's market (use book.with_market(moves), or "
                                 "load_book at this market)", column="market")
        return positions
    if market is None:
        raise InputError("argument 'market' is required with raw positions (or pass a Book from load_book)")
    return load_book(positions, market, errors="collect" if errors == "collect" else "raise")


def compute_margin(
    positions: Any,
    market: Any = None,
    model: str | Any = "greeks-default",
    collateral: Any = None,
    *,
    errors: Literal["raise", "collect"] = "raise",
    chunk: int = CHUNK,
    backend: Literal["auto", "numpy", "numba"] = "auto",
    arrays: Mapping[str, Any] | None = None,
) -> MarginResult:
    """Initial and maintenance margin of every account of a positions book.

    Parameters
    ----------
    positions : Book, str, Path or DataFrame
        A :class:`~greeksmargin.book.book.Book` (:func:`~greeksmargin.book.book.load_book`: trusted, its
        arrays used as they are, its :attr:`~greeksmargin.book.book.Book.bad_accounts` listed with status
        ``error``), or a positions table, validated here once.
    market : str, Path, dict or MarketSnapshot, optional
        Market snapshot (required with raw positions; with a Book, None or the Book's market).
    model : str, Path or Model
        A shipped model's name (``"greeks-default"``, ``"deribit-sm"``, ``"tims-pm"``), a TOML file, or a
        loaded model of a component methodology.
    collateral : str, Path or DataFrame, optional
        Collateral table (:func:`greeksmargin.book.collateral.load_collateral`; default: the Book's, if any):
        adds ``collateral_im``, ``collateral_mm`` (after haircuts, margin currency), ``excess_im``,
        ``excess_mm`` to ``accounts``.
    errors : {"raise", "collect"}
        ``"collect"``: an account that cannot be computed (e.g. an option whose underlying has no vol) gets
        a row with ``error`` set and NaN figures; the others are computed.
    chunk : int
        Positions revalued at once by the numpy backend (memory: about ``n_scenarios x chunk x 8`` bytes
        per array).
    backend : {"auto", "numpy", "numba"}
        ``"numpy"``: chunked broadcasting (the reference); ``"numba"``: the compiled fused kernel of
        :mod:`greeksmargin.risk._scan_kernel` (no scenario x position matrix); ``"auto"``: numba when
        installed and the book has at least :data:`NUMBA_MIN_EVALUATIONS` position x scenario evaluations.
        Both give the same figures (tested to 1e-12 relative; the finite-difference Greeks use the numpy
        kernel on both backends).

    arrays : mapping of str to ndarray, optional
        The book's market inputs as :func:`greeksmargin.risk.greeks.market_arrays` returns them, one entry per
        row of ``positions`` in order, to be used instead of looking them up in ``market`` (e.g. inputs
        moved per position, so that every account is margined at its own moved market in one call; the
        market then serves only FX). Engine methodologies only, with ``errors="raise"``.

    Returns
    -------
    MarginResult
        Amounts in each account's margin currency (see the module docstring). Models whose methodology
        is not scenario-based on the engine's components (SIMM, SPAN, Deribit PM, Derive PM2) run
        through :mod:`greeksmargin.engine.adapters` and return its ``AdapterMarginResult`` (``.accounts``,
        ``.components``, ``.explain()``, ``.summary()``; no P&L matrix or attribution).

    Raises
    ------
    ModelError
        Bad model file, or a methodology that does not run on a positions book.
    InputError, MarketDataError
        Bad positions, or (``errors="raise"``) a position the market cannot price.
    """
    _check_args(positions, market, model, collateral)
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise InputError(f"argument 'chunk' must be a positive int (got {chunk!r})")
    if errors not in ("raise", "collect"):
        raise InputError(f"argument 'errors' must be 'raise' or 'collect', got {errors!r}")
    loaded = load_model(model)
    book = _as_book(positions, market, errors=errors)
    mk = book.market
    if collateral is None and book.collateral is not None:
        collateral = book.collateral
    if not loaded.runnable and loaded.methodology in DISPATCH:
        # SIMM, SPAN, Deribit PM, Derive PM2: through their book adapters
        adapted = margin_by_methodology(book, None, loaded)
        if collateral is not None:
            _add_collateral(adapted, collateral, mk)
        return adapted  # type: ignore[return-value]
    m = _check_model(loaded)
    bad: dict[str, str] = dict(book.bad_accounts)
    pos = book.positions
    if backend not in ("auto", "numpy", "numba"):
        raise InputError(f"backend must be 'auto', 'numpy' or 'numba', got {backend!r}")
    if arrays is not None:
        if errors != "raise":
            raise InputError("arrays= needs errors='raise' (rows must align with the positions given)")
        if len(np.asarray(arrays["spot"])) != len(pos):
            raise InputError(f"arrays= has {len(np.asarray(arrays['spot']))} rows for {len(pos)} positions")
    own_arrays = arrays is None
    if arrays is None:
        arrays = book.arrays
    # accounts holding a position outside the model's domain: not computed (NaN figures + reason), never 0
    pos_all = pos
    outside = m.domain.not_computed(pos, m.name)
    if outside:
        keep = ~pos["account"].astype(str).isin(list(outside)).to_numpy()
        pos = pos[keep]
        arrays = {k: (v if k == "underlyings" else np.asarray(v)[keep]) for k, v in arrays.items()}
    # the Book's own arrays over all its rows: its account codes (computed once per Book) and the arrays'
    # underlying codes, the same sorted factorisations _run would compute from the strings
    mine = own_arrays and not outside
    res = _run(pos, mk, m, chunk=chunk, backend=backend, arrays=arrays,
               account_codes=book.account_codes if mine else None,
               underlying_codes=_underlying_codes(pos, arrays) if mine else None)
    res.accounts["status"] = "computed"
    res.accounts["reason"] = None
    extras = [pd.DataFrame({"account": list(bad), "error": list(bad.values()), "status": "error",
                            "reason": list(bad.values())})] if bad else []
    if outside:
        extras.append(pd.DataFrame({"account": list(outside), "error": None, "status": "not_computed",
                                    "reason": list(outside.values())}))
    if extras:
        extra = pd.concat(extras, ignore_index=True)
        for c in res.accounts.columns:
            if c not in extra:
                extra[c] = np.nan if c not in ("currency", "worst_scenario") else ""
        if outside:
            ccy = _currency_of_accounts(pos_all, mk)
            extra.loc[extra["status"] == "not_computed", "currency"] = [
                ccy.get(a, "USD") for a in extra.loc[extra["status"] == "not_computed", "account"]]
        res.accounts = pd.concat([res.accounts, extra[res.accounts.columns]], ignore_index=True)
        res.accounts = res.accounts.sort_values("account", kind="stable").reset_index(drop=True)
    enforce(res.accounts)
    if collateral is not None:
        _add_collateral(res, collateral, mk)
    return res


def margin_requirements(
    positions: pd.DataFrame,
    market: Any,
    model: Any,
    *,
    arrays: Mapping[str, Any] | None = None,
    backend: Literal["auto", "numpy", "numba"] = "auto",
    account_codes: tuple[Any, pd.Index] | None = None,
    underlying_codes: tuple[Any, pd.Index] | None = None,
) -> pd.DataFrame:
    """IM and MM of every account, nothing else: the engine's figures for repeated evaluations.

    The same figures as :func:`compute_margin` (its ``accounts`` columns ``im``, ``mm``, ``currency``,
    ``status``, ``reason``) without the tidy tables, per-underlying rows, worst scenarios and internals,
    and without validating the positions again: the solvency root finder asks for IM / MM at each step.

    Parameters
    ----------
    positions : DataFrame
        Positions already normalised by :func:`greeksmargin.book.positions.load_positions` (not checked).
    market : MarketSnapshot
        Market snapshot.
    model : Model
        A loaded model of an engine methodology (``runnable``).
    arrays : mapping of str to ndarray, optional
        As in :func:`compute_margin` (market inputs per row of ``positions``, e.g. moved per account).
    backend : {"auto", "numpy", "numba"}
        As in :func:`compute_margin`.
    account_codes, underlying_codes : (ndarray of int, Index), optional
        The sorted factorisation of ``positions["account"]`` / ``positions["underlying"]`` (code per row,
        shape (n,); sorted names), when the caller keeps it across calls (not checked; with ``arrays``).

    Returns
    -------
    DataFrame
        Indexed by ``account``: ``im``, ``mm``, ``currency`` (the account's margin currency), ``status``
        (``computed``; ``not_computed``: a position outside the model's domain, NaN figures) and ``reason``.
    """
    m = _check_model(model)
    pos = positions
    outside = m.domain.not_computed(pos, m.name)
    if outside:
        keep = ~pos["account"].astype(str).isin(list(outside)).to_numpy()
        if arrays is not None:
            arrays = {k: (v if k == "underlyings" else np.asarray(v)[keep]) for k, v in arrays.items()}
        pos = pos[keep]
        account_codes = underlying_codes = None
    acc = _run(pos, market, m, backend=backend, arrays=arrays, tables=False, account_codes=account_codes,
               underlying_codes=underlying_codes).accounts
    out = pd.DataFrame({"im": acc["im"].to_numpy(dtype=float), "mm": acc["mm"].to_numpy(dtype=float),
                        "currency": acc["currency"].to_numpy(dtype=object), "status": "computed", "reason": None},
                       index=pd.Index(acc["account"].to_numpy(dtype=object), name="account"))
    if outside:
        ccy = _currency_of_accounts(positions, market)
        names = list(outside)
        extra = pd.DataFrame({"im": np.nan, "mm": np.nan, "currency": [ccy.get(a, "USD") for a in names],
                              "status": "not_computed", "reason": [outside[a] for a in names]},
                             index=pd.Index(names, name="account"))
        out = pd.concat([out, extra]).sort_index(kind="stable")
    return out


def _currency_of_accounts(positions_all: pd.DataFrame, market: Any) -> dict[str, str]:
    """Margin currency of each account by the engine's rule (the coin of an all-inverse one-coin account, else USD)."""
    return {str(k): str(v) for k, v in account_currency(positions_all, market).items()}


def _check_args(positions: Any, market: Any, model: Any, collateral: Any = None) -> None:
    """Argument types of the public entry points (ArgumentTypeError naming the argument)."""
    if not isinstance(positions, (Book, pd.DataFrame, str, Path)):
        raise ArgumentTypeError("positions", "a Book (load_book), a positions DataFrame or file path (str or Path)",
                                positions)
    if not (market is None and isinstance(positions, Book)) and not isinstance(
            market, (MarketSnapshot, Mapping, str, Path)):
        raise ArgumentTypeError("market", "a MarketSnapshot, a market dict or a market file path", market)
    if not isinstance(model, (Model, str, Path)):
        raise ArgumentTypeError("model", "a model name, a model file path or a Model", model)
    if collateral is not None and not isinstance(collateral, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("collateral", "a collateral DataFrame or file path, or None", collateral)


def _add_collateral(res: MarginResult | AdapterMarginResult, collateral: Any, market: Any) -> None:
    coll = load_collateral(collateral)
    acc = res.accounts
    ccy = dict(zip(acc["account"], acc["currency"].replace("", "USD")))
    vals = value_collateral(coll, market, margin_currency=ccy, accounts=list(acc["account"]))
    acc["collateral_im"] = vals["im_value"].reindex(acc["account"]).to_numpy()
    acc["collateral_mm"] = vals["mm_value"].reindex(acc["account"]).to_numpy()
    acc["excess_im"] = acc["collateral_im"] - acc["im"]
    acc["excess_mm"] = acc["collateral_mm"] - acc["mm"]
