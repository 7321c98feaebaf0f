"""What-if under every model: the margin of the accounts a set of trades touches, before and after them.

One entry, :func:`margin_change`, for every shipped model that prices a positions book (as Lean's
``GetReservedBuyingPowerImpact``: only the impacted groups are recomputed, and the answer is the current
requirement, the contemplated one and the change):

* **house family** (the component methodologies run natively by the engine: ``greeks-stress``,
  ``deribit-standard``, ``tims-pm``): one :class:`~greeksmargin.engine.incremental.AccountState` per touched
  account; the trades are revalued alone and added to the account's running sums (the incremental path;
  the state falls back to a full recompute of the account where the sums do not determine the margin, e.g.
  TIMS offsets or a change of margin currency);
* **every other model** (SIMM, SPAN, Deribit PM, Derive PM2 / SRM, Cboe strategy): the touched accounts alone,
  before and after, through the engine's single entry :func:`greeksmargin.engine.dispatch.run_model`.

An account the model cannot price (a position outside the model's domain, before or after the trades) has
NaN figures, status ``not_computed`` and the model's reason; an account the market cannot price has
status ``error`` and the message. Never 0.

**Currencies**: ``im_before`` / ``mm_before`` are in the account's margin currency before the trades
(``currency_before``), ``im_after`` / ``mm_after`` in its currency after them (``currency``); the
``*_change`` columns are in ``currency``, the before figures converted at the market's spot FX (a trade
can change the margin currency, e.g. a linear trade in an all-inverse coin account).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from greeksmargin.engine.margin import _as_book, _check_args
from greeksmargin.engine.models import Model, load_model
from greeksmargin.errors import ArgumentTypeError, MarketDataError

__all__ = ["CHANGE_COLUMNS", "HOUSE_METHODOLOGIES", "incremental_capable", "margin_change"]

#: methodologies the engine runs natively from the component rule set (the incremental what-if path)
HOUSE_METHODOLOGIES = ("greeks-stress", "deribit-standard", "tims-pm")

#: columns of :func:`margin_change`, in order
CHANGE_COLUMNS = ["account", "currency", "im_before", "im_after", "mm_before", "mm_after", "im_change",
                  "mm_change", "status", "reason", "currency_before"]

_FIG = ["im_before", "im_after", "mm_before", "mm_after", "im_change", "mm_change"]


def incremental_capable(model: Model) -> bool:
    """True for a model of the house family (a component rule set the incremental state evaluates)."""
    from greeksmargin.engine.models import RuleSet

    return bool(model.runnable and isinstance(model.params, RuleSet))


def margin_change(
    positions: Any,
    market: Any,
    model: str | Any,
    trades: Any,
    *,
    backend: Literal["auto", "numpy", "numba"] = "auto",
) -> pd.DataFrame:
    """Margin before and after adding ``trades``, for the accounts the trades touch only, under any model.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Current positions.
    market : str, Path, dict or MarketSnapshot
        Market snapshot.
    model : str, Path or Model
        Any shipped model that prices a positions book (``gm.list_models()``), or a model file.
    trades : str, Path or DataFrame
        New positions (same schema), appended to the accounts' positions: a negative quantity on a held
        instrument reduces or closes it.
    backend : {"auto", "numpy", "numba"}
        Revaluation kernel of the house family (ignored by the other methodologies).

    Returns
    -------
    DataFrame
        :data:`CHANGE_COLUMNS`: ``account, currency, im_before, im_after, mm_before, mm_after, im_change,
        mm_change, status, reason, currency_before``, one row per touched account in the order the trades
        name them (an account absent before starts from 0). ``status``: ``computed``, ``not_computed`` (a
        position outside the model's domain, before or after; NaN figures and the reason) or ``error``
        (the market cannot price a position; NaN figures and the message).

    Raises
    ------
    ModelError
        A model that cannot run on a positions book.
    InputError
        Bad positions or trades (file, row and column named).
    """
    _check_args(positions, market, model)
    if not isinstance(trades, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("trades", "a trades DataFrame or file path (str or Path)", trades)
    m = load_model(model)
    from greeksmargin.engine.adapter_dispatch import DISPATCH

    if not m.runnable and m.methodology not in DISPATCH:
        from greeksmargin.engine.margin import _check_model

        _check_model(m)  # raises the ModelError naming the methodology
    _book = _as_book(positions, market)
    pos, mk = _book.positions, _book.market
    from greeksmargin.book.positions import load_positions

    tr = load_positions(trades, valuation_time=mk.valuation_time)
    touched = [str(a) for a in pd.unique(tr["account"])]
    before_pos = pos[pos["account"].astype(str).isin(touched)]
    after_pos = pd.concat([before_pos, tr], ignore_index=True)  # both validated already
    outside = m.domain.not_computed(after_pos, m.name) if not m.domain.is_any else {}
    out = pd.DataFrame({"account": touched})
    for c in _FIG:
        out[c] = np.nan
    out["currency"] = ""
    out["currency_before"] = ""
    out["status"] = "computed"
    out["reason"] = None
    if incremental_capable(m):
        _house(out, before_pos, tr, mk, m, outside, backend)
    else:
        _recompute(out, before_pos, after_pos, mk, m, outside)
    _finish(out, mk)
    return out[CHANGE_COLUMNS]


def _house(out: pd.DataFrame, before_pos: pd.DataFrame, tr: pd.DataFrame, mk: Any, m: Model,
           outside: dict[str, str], backend: Any) -> None:
    """The incremental path: one account state per touched account, the trades added to its sums."""
    from greeksmargin.book.positions import account_currency
    from greeksmargin.engine.incremental import AccountState

    by_acc = {str(a): g for a, g in before_pos.groupby("account", sort=False)}
    tr_by = {str(a): g for a, g in tr.groupby("account", sort=False)}
    for i, acc in enumerate(out["account"]):
        if acc in outside:
            _set_status(out, i, "not_computed", outside[acc])
            ccy = account_currency(pd.concat([by_acc.get(acc, tr.iloc[:0]), tr_by[acc]]), mk)
            out.loc[i, ["currency", "currency_before"]] = str(ccy.iloc[0]) if len(ccy) else "USD"
            continue
        try:
            held = by_acc.get(acc, tr.iloc[:0])
            st = AccountState.from_positions(held, mk, m, account=acc, backend=backend) if len(held) else None
            if st is None:
                st = AccountState.from_positions(tr_by[acc].iloc[:0], mk, m, account=acc, backend=backend)
                im0, mm0, ccy0 = 0.0, 0.0, ""
            else:
                im0, mm0 = st.margin()
                ccy0 = st.currency
            im1, mm1 = st.with_trades(tr_by[acc].to_dict("records"))  # validated rows: the mapping fast path
        except MarketDataError as exc:
            _set_status(out, i, "error", str(exc))
            continue
        out.loc[i, ["im_before", "mm_before", "im_after", "mm_after"]] = [im0, mm0, im1, mm1]
        out.loc[i, "currency"] = st.last_currency
        out.loc[i, "currency_before"] = ccy0 or st.last_currency


def _recompute(out: pd.DataFrame, before_pos: pd.DataFrame, after_pos: pd.DataFrame, mk: Any, m: Model,
               outside: dict[str, str]) -> None:
    """Every other model: the touched accounts alone, before and after, through the engine's entry."""
    from greeksmargin.engine.dispatch import run_model

    after = _accounts(run_model(after_pos, mk, m))
    before = _accounts(run_model(before_pos, mk, m)) if len(before_pos) else None
    for i, acc in enumerate(out["account"]):
        ra = after.loc[acc] if acc in after.index else None
        rb = before.loc[acc] if before is not None and acc in before.index else None
        ccy1 = str(ra["currency"]) if ra is not None and ra["currency"] else "USD"
        out.loc[i, "currency"] = ccy1
        out.loc[i, "currency_before"] = (str(rb["currency"]) if rb is not None and rb["currency"] else ccy1)
        reason = outside.get(acc)
        for r in (ra, rb):
            if reason is None and r is not None and str(r.get("status", "")) == "not_computed":
                reason = str(r.get("reason") or "not computed by the model")
        if reason is not None:
            _set_status(out, i, "not_computed", reason)
            continue
        err = next((str(r["error"]) for r in (ra, rb) if r is not None and _is_error(r.get("error"))), None)
        if err is not None or ra is None:
            _set_status(out, i, "error", err or "the model returned no row for the account")
            continue
        out.loc[i, ["im_after", "mm_after"]] = [float(ra["im"]), float(ra["mm"])]
        out.loc[i, ["im_before", "mm_before"]] = ([float(rb["im"]), float(rb["mm"])] if rb is not None
                                                  else [0.0, 0.0])


def _accounts(res: Any) -> pd.DataFrame:
    acc = res.accounts.copy()
    acc["account"] = acc["account"].astype(str)
    if "currency" not in acc.columns:
        acc["currency"] = ""
    acc["currency"] = acc["currency"].fillna("").astype(str)
    return acc.set_index("account")


def _is_error(e: Any) -> bool:
    return isinstance(e, str) and e.strip() != "" and e != "nan"


def _set_status(out: pd.DataFrame, i: int, status: str, reason: str) -> None:
    out.loc[i, _FIG] = np.nan
    out.loc[i, "status"] = status
    out.loc[i, "reason"] = reason


def _finish(out: pd.DataFrame, mk: Any) -> None:
    """The changes, in the after currency (the before figures converted at spot FX)."""
    conv = np.ones(len(out))
    for i, (c0, c1) in enumerate(zip(out["currency_before"], out["currency"])):
        if c0 and c1 and c0 != c1:
            conv[i] = mk.fx_to_usd(c0) / mk.fx_to_usd(c1)
    out["im_change"] = out["im_after"].to_numpy(dtype=float) - out["im_before"].to_numpy(dtype=float) * conv
    out["mm_change"] = out["mm_after"].to_numpy(dtype=float) - out["mm_before"].to_numpy(dtype=float) * conv
