"""Margin functions for solvency: any model as (positions, market) -> per-account IM/MM; per position; simple scan."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.book import Book as ValidatedBook
from greeksmargin.book.book import load_book
from greeksmargin.book.market import MarketSnapshot

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
    from greeksmargin.engine.margin import compute_margin, margin_requirements
    from greeksmargin.engine.models import load_model

    loaded = load_model(model) if isinstance(model, str) or hasattr(model, "__fspath__") else model
    runnable = bool(getattr(loaded, "runnable", False))

    def cross(positions: pd.DataFrame, market: MarketSnapshot, *, trusted: bool = False) -> pd.DataFrame:
        if len(positions) == 0:
            return pd.DataFrame({"im": [], "mm": [], "currency": []}, index=pd.Index([], name="account"))
        if runnable and trusted and isinstance(market, MarketSnapshot):
            # rows of a validated book: IM / MM only; while ``live`` lives, the engine's market look-up finds
            # it (book_of: the same positions object) and uses its arrays instead of validating the rows again
            live = ValidatedBook._unchecked(positions, market)
            out = margin_requirements(live.positions, market, loaded)
            del live
            return out
        acc = compute_margin(_book_of(positions, market, trusted), market, loaded).accounts
        acc = acc.set_index("account") if "account" in acc.columns else acc
        return _margin_table(acc)

    def attribution(positions: pd.DataFrame, market: MarketSnapshot) -> pd.Series:
        """Contribution of each position (label) to its account's IM, in the account's margin currency."""
        res = compute_margin(positions, market, loaded)
        att = res.attribution()
        return pd.Series(att["contribution"].to_numpy(dtype=float), index=att["position"].to_numpy())

    cross.attribution = attribution  # type: ignore[attr-defined]
    cross.trusts = True  # type: ignore[attr-defined]
    # an account's figures depend on its own positions and this currency's FX only (distance_to_liquidation)
    cross.floor_currency = _floor_currency(loaded)  # type: ignore[attr-defined]
    if runnable:
        cross.batched = lambda book, mv, sel: _batched_margin(loaded, book, mv, sel, isolated=False)  # type: ignore[attr-defined]
        # the model of the cross margin: shared moves evaluated per contract (solvency.shared_grid)
        cross.shared_model = loaded  # type: ignore[attr-defined]
    if not isolated:
        return cross

    def iso(positions: pd.DataFrame, market: MarketSnapshot, *, trusted: bool = False) -> pd.DataFrame:
        if len(positions) == 0:
            return cross(positions, market)
        if not trusted:  # validate once here; the per-position calls below then trust the rows
            positions = load_book(positions, market).positions
        per = per_position_margin(cross, positions, market)
        per["account"] = positions["account"].to_numpy()
        per = _to_common_ccy(per, market)
        return _sum_isolated(per, per)

    iso.trusts = True  # type: ignore[attr-defined]
    iso.floor_currency = cross.floor_currency  # type: ignore[attr-defined]
    if runnable:
        iso.batched = lambda book, mv, sel: _batched_margin(loaded, book, mv, sel, isolated=True)  # type: ignore[attr-defined]
    return iso


def _book_of(positions: Any, market: MarketSnapshot, trusted: bool) -> Any:
    """Positions for ``compute_margin``: rows of a validated book wrapped as a Book (trusted), else as given."""
    return ValidatedBook._unchecked(positions, market) if trusted and isinstance(positions, pd.DataFrame) else positions


def call_margin_fn(margin_fn: MarginFn, positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
    """``margin_fn(positions, market)`` on rows of a validated book: trusted by the engine's own functions.

    A margin function of :func:`margin_function` declares ``trusts``: it is told the rows come from a
    validated Book (no second validation inside stress loops); any other margin function gets the rows as is.
    """
    if getattr(margin_fn, "trusts", False):
        return margin_fn(positions, market, trusted=True)  # type: ignore[call-arg]
    return margin_fn(positions, market)


def _batched_margin(
    model: Any, book: Any, mv: NDArray[np.float64], sel: NDArray[np.bool_] | None, *, isolated: bool
) -> pd.DataFrame:
    """Margin of every account at its own moved market (row of ``mv``), in one engine call.

    Each position gets the inputs of its account's moved market: spot and forward scaled by ``1 + m``
    of its underlying, vol by the vol reaction (:meth:`BookValuer.vols_at`); the engine runs on today's
    snapshot otherwise. Its only other use of the market is the FX of coin amounts (a coin-settled
    position in a USD-margined account; a contract floor in another currency than the account's):
    every figure of a position is proportional to its size (its floor to its multiplier), so the size
    (multiplier) is scaled by the ratio of the moved to today's conversion rate. Tested equal to
    :func:`~greeksmargin.engine.margin.compute_margin` on the moved snapshot, account by account.
    """
    from greeksmargin.engine.margin import margin_requirements

    assert book.a is not None
    M = book.as_matrix(mv)
    keep_idx = None if sel is None else np.flatnonzero(sel)

    def take(v: Any) -> Any:
        return v if keep_idx is None else np.asarray(v)[keep_idx]

    a = book.a if keep_idx is None else {k: (v if k == "underlyings" else take(v)) for k, v in book.a.items()}
    rows = take(book.acct_code)
    u_code = take(book.u_code)
    pm = M[rows, u_code]  # each selected position's move (its account's row of ``mv``)
    g = 1.0 + pm
    moved = dict(a)
    moved["spot"] = a["spot"] * g
    moved["forward"] = a["forward"] * g
    moved["vol"] = _react(a["vol"], a["kind_code"], pm, take(book._vol_up), take(book._vol_range))
    r_pos = book._ratio(take(book._pos_link), rows, M)  # moved / today's USD price of each position's currency
    if isolated:
        r_acc = r_pos  # each position is its own account, margined in its own currency
    else:
        r_acc = book._ratio(take(book._eng_link), rows, M)
    moved["size"] = a["size"] * (r_pos / r_acc)
    pos = book.positions if sel is None else book.positions[sel]
    floor = _floor_currency(model)
    if floor is not None:
        r_fl = book._ratio(book._links(np.full(len(pos), floor, dtype=object)), rows, M)
        scale = r_fl / r_acc
        if np.any(scale != 1.0):
            pos = pos.copy()
            pos["multiplier"] = pos["multiplier"].to_numpy(dtype=float) * scale
    if isolated:
        labels = [f"{x}\x1f{i}" for i, x in enumerate(pos["account"].astype(str))]
        pos = pos.copy()
        pos["account"] = labels
    # IM / MM only (no tidy tables); the book's positions are validated once, when it was built
    acc = margin_requirements(pos, book.market, model, arrays=moved,
                              account_codes=None if isolated else _codes_of(book, keep_idx, "account"),
                              underlying_codes=_codes_of(book, keep_idx, "underlying"))
    if not isolated:
        return acc
    res = acc.reindex(labels)
    fx_now = take(book._pos_fx0) * r_pos  # USD per unit of each position's own currency, moved
    same = res["currency"].fillna("").to_numpy(dtype=object) == take(book.pos_ccy)
    if not same.all():  # the engine margined a solo position in another currency: convert through it
        other = res["currency"].fillna("USD").to_numpy(dtype=object)
        idx = np.flatnonzero(~same)
        fx_now[idx] = [book.ccy_fx(np.full(len(book.accounts), c, dtype=object), M)[rows[i]]
                       for c, i in zip(other[idx], idx)]
    nc = _not_computed_rows(res)
    per = pd.DataFrame({"im": np.where(nc, np.nan, res["im"].fillna(0.0).to_numpy(dtype=float) * fx_now),
                        "mm": np.where(nc, np.nan, res["mm"].fillna(0.0).to_numpy(dtype=float) * fx_now),
                        "account": pos["account"].str.split("\x1f").str[0].to_numpy() if len(pos) else []})
    return _sum_isolated(per, res)


def _react(vol: Any, kind_code: Any, pm: NDArray[np.float64], vol_up: NDArray[np.float64],
           vol_range: NDArray[np.float64]) -> NDArray[np.float64]:
    """Vols at per-position moves ``pm`` (:meth:`VolReaction.vols` element by element); shape of ``pm``."""
    out = np.array(vol, dtype=float, copy=True)
    m = (kind_code == 0) & (pm != 0.0)
    if m.any():
        v = out[m]
        frac = np.minimum(np.abs(pm[m]) / vol_range[m], 1.0)
        out[m] = np.minimum(v + frac * (vol_up[m] - v), 4.99)
    return out


def _codes_of(book: Any, keep_idx: NDArray[np.intp] | None, column: str) -> tuple[NDArray[np.intp], pd.Index]:
    """Sorted factorisation of ``column`` of the book's positions ``keep_idx`` (all: None).

    The whole book's is computed once and kept on the book; a selection keeps the values present, in
    the same sorted order: the codes and names :func:`~greeksmargin.engine.house_pieces._factorize_sorted`
    gives on the selected rows.
    """
    from greeksmargin.engine.house_pieces import _factorize_sorted

    key = f"_factorized_{column}"
    full = book.__dict__.get(key)
    if full is None:
        full = _factorize_sorted(book.positions[column].to_numpy(dtype=object))
        book.__dict__[key] = full
    codes, names = full
    if keep_idx is None:
        return codes, names
    sub = codes[keep_idx]
    present = np.bincount(sub, minlength=len(names)) > 0
    remap = np.cumsum(present) - 1
    return remap[sub].astype(np.intp), names[present]


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
    res = call_margin_fn(margin_fn, solo, market).reindex(labels)
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
    from greeksmargin.risk.exercise import american_forward_price, american_mask
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
        am = american_mask(a, o)  # American options: their own value (greeksmargin.risk.exercise)
        oa = np.flatnonzero(o)[am] if am is not None else None

        def value(f: NDArray[np.float64], vol: NDArray[np.float64]) -> NDArray[np.float64]:
            v = black76_price(a["is_call"][o], f, a["strike"][o], a["T"][o], vol, a["rate"][o])
            if oa is not None:
                v[am] = american_forward_price(a["is_call"][oa], f[am], a["strike"][oa], a["T"][oa], vol[am],
                                               a["rate"][oa], a["forward_ratio"][oa])
            return v

        if oa is not None:
            v0[o] = value(F[o], a["vol"][o])
        acct, names = pd.factorize(positions["account"].astype(str), sort=False)
        worst = np.zeros(len(names))
        for m in grid:
            for vu in (0.0, vol_up):
                pnl = np.where(kc == 0, 0.0, (F * m) * size)
                pnl[kc == 2] = (a["spot"] * a["perp_ratio"] * m * size)[kc == 2]
                pnl[kc == 3] = (a["spot"] * m * size)[kc == 3]
                if o.any():
                    v1 = value(F[o] * (1 + m), a["vol"][o] * (1 + vu))
                    pnl[o] = (v1 - v0[o]) * size[o]
                tot = np.bincount(acct, weights=pnl, minlength=len(names))
                worst = np.minimum(worst, tot)
        im = np.maximum(-worst, 0.0)
        return pd.DataFrame(
            {"im": im, "mm": mm_factor * im, "currency": "USD"}, index=pd.Index(list(names), name="account")
        )

    return fn


