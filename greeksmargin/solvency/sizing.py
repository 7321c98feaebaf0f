"""Pre-trade sizing: the largest quantity of one instrument an account can trade and keep IM within equity.

:func:`max_size` answers "how much of ``instrument`` can ``account`` buy (sell)?" with the engine's what-if:

* **Sizes** are multiples ``k`` of the instrument's minimum size ``q_min`` (``min_size``; default from the
  instrument, :func:`default_min_size`), in the unit of the positions table's ``quantity`` column.
* **The test** at a size: the account's IM with the trade added, in its equity currency, is at most its
  equity. **Equity** is the solvency code's ``equity_im`` (:meth:`greeksmargin.solvency.book.BookValuer.state`:
  collateral after IM haircuts + the positions' mark-to-market, account currency). The trade is assumed
  done at its mark: the premium paid (received) leaves (enters) the collateral and the option's value enters
  (leaves) the mark-to-market, so equity is the same at every size; only the IM moves.
* **Search** (IM need not be monotone in size: a hedge first lowers the requirement, then raises it):
  ``k = 1``; if it breaks, the answer is 0 and says so. Otherwise a scan ``k = 4, 16, 64, ...`` up to
  ``max_multiples`` stops at the first size that breaks; the bracket between the last size that holds and
  that one is shrunk on integer multiples (bisection, accelerated by linear-interpolation guesses whose
  neighbour is probed, :func:`_search`) to an adjacent pair, ``k`` holds and ``k + 1`` breaks; both are
  checked before the answer is returned. Every scanned size below the answer holds; a size
  strictly between two scanned sizes is not guaranteed when IM is not monotone there (a pocket between
  scan points can be missed; the answer is the first boundary the scan brackets). When no scanned size
  breaks up to ``max_multiples``, there is **no limit** up to that cap; the answer says so, and whether the
  trade reduces the requirement at the cap.
* **Open orders** (``orders``): margined as Deribit does for portfolio margin, each side's orders as if
  filled: the positions plus every buy order, and the positions plus every sell order; at each size the
  worse (larger) IM counts. The answer keeps the positions-only figure beside the one with orders.
* **Speed**: the house family (``greeks-default``, ``deribit-sm``, ``tims-pm``) evaluates each size on an
  :class:`~greeksmargin.engine.incremental.AccountState` (the trade revalued alone, O(trade x scenarios));
  other models recompute the account through :func:`greeksmargin.engine.dispatch.run_model` (seconds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from greeksmargin.errors import InputError

__all__ = ["DEFAULT_MIN_SIZE", "MaxSize", "default_min_size", "deribit_orders", "max_size", "orders_sides"]

#: default minimum size by kind, for contracts quoted per coin (multiplier <= 1), in ``quantity`` units.
#: Options: 0.1, Deribit's minimum BTC option order (deribit.com contract specifications; ETH options: 1).
#: Futures, perpetuals, spot: 0.001 and 0.0001 coin are conventions of this tool, not a venue's figure (an
#: inverse Deribit future trades in USD 10 steps, which is not a fixed coin amount): pass ``min_size`` for
#: the venue's exact lot. Listed contracts (multiplier > 1, e.g. SPX options x100, ES x50): 1 contract.
DEFAULT_MIN_SIZE = {"option": 0.1, "future": 0.001, "perpetual": 0.001, "spot": 0.0001}

#: default cap of the search, in multiples of the minimum size
MAX_MULTIPLES = 2**20

_DESC = ["instrument", "underlying", "kind", "option_type", "strike", "expiry", "multiplier", "settlement"]


def default_min_size(kind: str, multiplier: float) -> float:
    """Minimum size of an instrument by kind (:data:`DEFAULT_MIN_SIZE`; 1 contract when ``multiplier > 1``)."""
    if multiplier > 1:
        return 1.0
    if kind not in DEFAULT_MIN_SIZE:
        raise InputError(f"unknown kind '{kind}' (expected one of {', '.join(DEFAULT_MIN_SIZE)})", column="kind")
    return DEFAULT_MIN_SIZE[kind]


@dataclass
class MaxSize:
    """Answer of :func:`max_size`.

    Attributes
    ----------
    quantity : float
        Largest quantity (unsigned, ``multiples x min_size``; 0 when even the minimum breaks).
    multiples : int
        ``quantity / min_size``.
    status : {"limited", "no_limit", "min_breaks", "not_computed"}
        ``limited``: the quantity holds and one more minimum size breaks; ``no_limit``: nothing breaks up to
        the cap ``max_multiples x min_size``; ``min_breaks``: the minimum size already breaks;
        ``not_computed``: the model does not price the account with the trade (``reason``).
    reason : str
        Plain-text explanation with the figures.
    im_current, im_at_max, im_next, equity : float
        IM without the trade, at the answer, at one more minimum size (NaN when not evaluated), and the
        equity (collateral after IM haircuts + mark-to-market), all in ``currency``.
    with_orders : MaxSize or None
        The same with the open orders (worse side) when orders were given.
    """

    account: str
    instrument: str
    side: str
    min_size: float
    quantity: float
    multiples: int
    status: str
    reason: str
    currency: str
    equity: float
    im_current: float
    im_at_max: float
    im_next: float
    evaluations: int
    model: str
    with_orders: MaxSize | None = field(default=None)

    def to_frame(self) -> pd.DataFrame:
        """One row (positions only), or two (positions only, with orders)."""
        rows = [{**{k: v for k, v in asdict(self).items() if k != "with_orders"}, "orders": "none"}]
        if self.with_orders is not None:
            w = self.with_orders
            rows.append({**{k: v for k, v in asdict(w).items() if k != "with_orders"}, "orders": "worse side"})
        cols = ["account", "instrument", "side", "orders", "quantity", "multiples", "min_size", "status", "currency",
                "equity", "im_current", "im_at_max", "im_next", "evaluations", "model", "reason"]
        return pd.DataFrame(rows)[cols]


# ------------------------------------------------------------------------------------------- inputs
def _trade_template(pos: pd.DataFrame, instrument: str, account: str) -> dict[str, Any]:
    """The descriptive columns of ``instrument``: from a held row (any account), else a Deribit name."""
    rows = pos[pos["instrument"].astype(str) == instrument]
    if len(rows):
        r = rows.iloc[0]
        t = {c: r[c] for c in _DESC}
    else:
        from greeksmargin.adapters.deribit import describe_instrument, position_row

        notes: list[str] = []
        try:
            d = describe_instrument(instrument, None, "<instrument>", None, notes)
        except InputError as exc:
            raise InputError(f"instrument '{instrument}' is neither in the positions nor a Deribit instrument "
                             f"name ({exc})", column="instrument") from None
        t = {c: v for c, v in position_row(account, instrument, d, 0.0, 1.0).items() if c in _DESC}
    t["account"] = account
    if t["kind"] in ("option", "future"):
        t["expiry"] = pd.Timestamp(t["expiry"]).isoformat()
    else:
        t["expiry"] = None
    if t["kind"] != "option":
        t["option_type"], t["strike"] = None, math.nan
    return t


def orders_sides(orders: Any, account: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(buys, sells)`` of an account's open orders as trade tables (every order of a side filled).

    Parameters
    ----------
    orders : DataFrame, str, Path or (DataFrame, DataFrame)
        A positions-format table with a ``side`` column (``buy`` | ``sell``) and a positive ``quantity``
        (the unfilled amount, in the positions' unit), or the ``(buys, sells)`` pair of
        :func:`greeksmargin.adapters.orders.open_orders_to_trades` (Deribit open orders).
    account : str
        Rows of other accounts are left out.
    """
    if isinstance(orders, tuple) and len(orders) == 2:
        buys, sells = (pd.DataFrame(x).copy() for x in orders)
    else:
        from greeksmargin.io import read_table

        df = read_table(orders) if isinstance(orders, (str, Path)) else pd.DataFrame(orders).copy()
        file = str(orders) if isinstance(orders, (str, Path)) else "<orders>"
        if "side" not in df.columns:
            raise InputError("orders table needs a 'side' column (buy or sell)", file=file, column="side")
        side = df["side"].astype(str).str.strip().str.lower()
        for i, (s, q) in enumerate(zip(side, pd.to_numeric(df["quantity"], errors="coerce"))):
            if s not in ("buy", "sell"):
                raise InputError(f"side must be 'buy' or 'sell' (got {df['side'].iloc[i]!r})", file=file, row=i,
                                 column="side")
            if not (q > 0 and math.isfinite(q)):
                raise InputError(f"an order's quantity is its positive unfilled amount (got "
                                 f"{df['quantity'].iloc[i]!r})", file=file, row=i, column="quantity")
        df["quantity"] = pd.to_numeric(df["quantity"]) * np.where(side == "buy", 1.0, -1.0)
        df = df.drop(columns="side")
        buys, sells = df[(side == "buy").to_numpy()], df[(side == "sell").to_numpy()]
    def mine(x: pd.DataFrame) -> pd.DataFrame:
        return x[x["account"].astype(str) == account].reset_index(drop=True)

    return mine(buys), mine(sells)


def deribit_orders(doc: Any, account: str, market: Any, *, file: str = "<open orders>"
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(buys, sells)`` of Deribit open orders (``private/get_open_orders_by_currency``) for :func:`max_size`.

    :func:`greeksmargin.adapters.orders.open_orders_to_trades` with instruments described from their names
    and the mark of each inverse future / perpetual from the market snapshot (perpetual: its mark; future:
    the forward at its expiry), which converts the orders' USD amounts to coin.
    """
    from greeksmargin.adapters.deribit import describe_instrument, unwrap
    from greeksmargin.adapters.orders import open_orders_to_trades
    from greeksmargin.book.market import years_from

    marks: dict[str, float] = {}
    res = unwrap(doc, file)
    for i, o in enumerate(res if isinstance(res, list) else []):
        name = o.get("instrument_name") if isinstance(o, dict) else None
        if not isinstance(name, str) or name in marks:
            continue
        d = describe_instrument(name, None, file, i, [])
        if d["kind"] in ("future", "perpetual") and d["settlement"] == "inverse" and d["base"] in market:
            if d["kind"] == "perpetual":
                marks[name] = market.perpetual_mark(d["base"])
            else:
                t = years_from(market.valuation_time, [d["expiry"]])
                marks[name] = float(market.forward(d["base"], t)[0])
    return open_orders_to_trades(doc, {}, account=account, mark_prices=marks, file=file)


# ------------------------------------------------------------------------------------------ evaluation
Evaluate = Callable[[dict[str, Any] | None, int], tuple[float, str]]


def _evaluator(held: pd.DataFrame, mk: Any, m: Any, account: str, backend: Any
               ) -> tuple[Evaluate, tuple[Any, Any] | None]:
    """``(trade, k) -> (IM with k x the trade, its currency)`` on the account's positions ``held``.

    ``trade`` None: the account as it stands. A NaN IM comes with the reason in place of the currency (the
    model does not price the account). Second item: the positions' values and their currencies when the
    evaluator priced them (house family), else None.
    """
    from greeksmargin.engine.whatif import incremental_capable

    if incremental_capable(m):
        from greeksmargin.engine.incremental import AccountState

        st = AccountState.from_positions(held, mk, m, account=account, backend=backend)
        sized: dict[int, Any] = {}

        def house(trade: dict[str, Any] | None, k: int) -> tuple[float, str]:
            if trade is None:
                return (st.margin()[0], st.currency) if len(held) else (0.0, "USD")
            key = id(trade)
            if key not in sized:  # the trade's market look-ups once, then only its size changes
                sized.clear()
                sized[key] = (trade, st.sized_trade(trade))
            im, _ = sized[key][1](float(k))
            return im, (st.last_currency if not math.isnan(im) else st.not_computed or "outside the model's domain")

        return house, (st.values, st.value_currencies)
    from greeksmargin.engine.dispatch import run_model

    def other(trade: dict[str, Any] | None, k: int) -> tuple[float, str]:
        if trade is None and not len(held):
            return 0.0, "USD"
        book = held if trade is None else pd.concat(
            [held, pd.DataFrame([dict(trade, quantity=float(trade["quantity"]) * k)])], ignore_index=True)
        r = run_model(book, mk, m).accounts
        r = r[r["account"].astype(str) == account].iloc[0]
        if str(r.get("status", "computed")) == "not_computed" or (isinstance(r.get("error"), str) and r["error"]):
            return math.nan, str(r.get("reason") or r.get("error"))
        return float(r["im"]), str(r["currency"] or "USD")

    return other, None


def _equity_im(held: pd.DataFrame, coll: pd.DataFrame, mk: Any, account: str,
               values: tuple[Any, Any] | None) -> tuple[float, str]:
    """Equity against IM as :meth:`greeksmargin.solvency.book.BookValuer.state` computes it at today's market.

    ``equity_im = collateral after IM haircuts + mark-to-market``, in the account's margin currency (the coin
    of an all-inverse one-coin account, else USD: :func:`~greeksmargin.book.positions.account_currency`);
    the mark-to-market is the value of options and spot (futures and perpetuals: 0, their P&L from today's
    price). Tests hold it equal to ``BookValuer.state()["equity_im"]``.
    """
    from greeksmargin.book.collateral import value_collateral

    if values is None:
        from greeksmargin.risk.greeks import price_positions

        pr = price_positions(held, mk) if len(held) else None
        values = ((pr["value_ccy"].to_numpy(dtype=float), pr["margin_currency"].to_numpy(dtype=object))
                  if pr is not None else (np.zeros(0), np.zeros(0, dtype=object)))
    val, ccys = values
    uniq = set(ccys)
    ccy = next(iter(uniq)) if len(uniq) == 1 else "USD"
    fx = mk.fx_to_usd(ccy)
    mtm = float(sum(v * mk.fx_to_usd(c) for v, c in zip(val, ccys))) / fx if len(val) else 0.0
    coll_v = value_collateral(coll, mk, margin_currency={account: ccy}, accounts=[account])
    return float(coll_v["im_value"].iloc[0]) + mtm, ccy


#: growth factor of the scan (sizes 1, 4, 16, ... minimum sizes)
SCAN_FACTOR = 4


def _search(gap: Callable[[int], float], max_multiples: int) -> tuple[int, str]:
    """Largest ``k`` with ``gap(k) <= 0`` and ``gap(k + 1) > 0`` (``gap = IM - equity``); see module docstring.

    Scan ``k = 1, 4, 16, ...`` (at most ``max_multiples``) to the first size that breaks; then shrink the
    bracket ``(lo holds, hi breaks)`` on integers: a linear-interpolation (regula falsi) guess with its
    neighbour probed (IM is close to linear in size far from 0, so this ends in a few steps), a bisection
    step whenever a step did not halve the bracket. Ends on an adjacent pair.
    """
    g1 = gap(1)
    if g1 > 0:
        return 0, "min_breaks"
    lo, glo = 1, g1
    hi, ghi = 0, 0.0
    k = SCAN_FACTOR
    while True:
        k = min(k, max_multiples)
        if k <= lo:
            return lo, "no_limit"
        gk = gap(k)
        if gk > 0:
            hi, ghi = k, gk
            break
        lo, glo = k, gk
        if k == max_multiples:
            return lo, "no_limit"
        k *= SCAN_FACTOR
    interpolate = True
    while hi - lo > 1:
        width = hi - lo
        if interpolate and ghi > glo:
            m = lo + int(round(-glo * width / (ghi - glo)))
        else:
            m = (lo + hi) // 2
        m = min(max(m, lo + 1), hi - 1)
        gm = gap(m)
        if gm <= 0:
            lo, glo = m, gm
            if interpolate and hi - lo > 1:  # probe the neighbour: an interpolation lands next to the root
                gn = gap(lo + 1)
                if gn > 0:
                    hi, ghi = lo + 1, gn
                else:
                    lo, glo = lo + 1, gn
        else:
            hi, ghi = m, gm
            if interpolate and hi - lo > 1:
                gn = gap(hi - 1)
                if gn <= 0:
                    lo, glo = hi - 1, gn
                else:
                    hi, ghi = hi - 1, gn
        interpolate = (hi - lo) <= width // 2
    return lo, "limited"


def _answer(evaluate: Evaluate, template: dict[str, Any], sign: float,
            q_min: float, equity: float, eq_ccy: str, mk: Any, max_multiples: int, im_current: float,
            meta: dict[str, Any]) -> MaxSize:
    cache: dict[int, float] = {}
    why: list[str] = []
    trade = dict(template, quantity=sign * q_min)

    def im_at(k: int) -> float:
        if k not in cache:
            im, ccy = evaluate(trade, k)
            if math.isnan(im):
                why.append(ccy)
                raise _NotComputed
            cache[k] = im * (mk.fx_to_usd(ccy) / mk.fx_to_usd(eq_ccy) if ccy != eq_ccy else 1.0)
        return cache[k]

    base = dict(meta, min_size=q_min, currency=eq_ccy, equity=equity, im_current=im_current)
    try:
        k, status = _search(lambda j: im_at(j) - equity, max_multiples)
        if status == "limited":  # verify the pair the bisection ended on
            assert im_at(k) <= equity < im_at(k + 1)
    except _NotComputed:
        return MaxSize(**base, quantity=math.nan, multiples=0, status="not_computed", evaluations=len(cache),
                       reason=f"the model does not price the account with this trade: {why[-1]}",
                       im_at_max=math.nan, im_next=math.nan)
    im_k = im_at(k) if k else math.nan
    im_next = cache.get(k + 1, math.nan) if status != "no_limit" else math.nan
    if status == "limited":
        reason = (f"{k} x {q_min:g} holds (IM {im_k:,.6g} <= equity {equity:,.6g} {eq_ccy}); one more minimum "
                  f"size breaks it (IM {im_next:,.6g})")
    elif status == "min_breaks":
        im1 = cache[1]
        pre = (f"the account is already above its equity without the trade (IM {im_current:,.6g}); "
               if im_current > equity else "")
        reason = f"{pre}even the minimum size {q_min:g} breaks it: IM {im1:,.6g} > equity {equity:,.6g} {eq_ccy}"
    else:
        cap = max_multiples * q_min
        if im_k <= im_current:
            reason = (f"no limit up to the cap {cap:g} ({max_multiples} x {q_min:g}): the trade reduces the "
                      f"requirement (IM {im_current:,.6g} -> {im_k:,.6g} at the cap; equity {equity:,.6g} {eq_ccy})")
        else:
            reason = (f"no limit up to the cap {cap:g} ({max_multiples} x {q_min:g}): IM {im_k:,.6g} at the cap "
                      f"is within equity {equity:,.6g} {eq_ccy}")
    return MaxSize(**base, quantity=float(f"{k * q_min:.12g}"), multiples=k, status=status, reason=reason,
                   evaluations=len(cache), im_at_max=im_k, im_next=im_next)


class _NotComputed(Exception):
    pass


# ----------------------------------------------------------------------------------------------- entry
def max_size(
    positions: Any,
    market: Any,
    collateral: Any,
    *,
    account: str,
    instrument: str,
    side: Literal["buy", "sell"],
    model: str | Any = "greeks-default",
    min_size: float | None = None,
    orders: Any = None,
    max_multiples: int = MAX_MULTIPLES,
    backend: Literal["auto", "numpy", "numba"] = "auto",
) -> MaxSize:
    """Largest quantity of ``instrument`` that ``account`` can buy (sell) and keep its IM within its equity.

    Parameters
    ----------
    positions : str, Path or DataFrame
        Positions (every account; only ``account``'s are margined).
    market : str, Path, dict or MarketSnapshot
        Market snapshot.
    collateral : str, Path or DataFrame
        Collateral table (:func:`~greeksmargin.book.collateral.load_collateral`).
    account, instrument : str
        The account; the instrument (a name in the positions, of any account, or a Deribit instrument name).
    side : {"buy", "sell"}
        Direction of the trade.
    model : str, Path or Model
        Margin model (any shipped model that prices the account).
    min_size : float, optional
        Minimum size, ``quantity`` units (default :func:`default_min_size`).
    orders : DataFrame, str, Path or (DataFrame, DataFrame), optional
        Open orders (:func:`orders_sides`): the answer with orders (worse side) is in ``with_orders``.
    max_multiples : int
        Cap of the search, in minimum sizes (default 2**20).
    backend : {"auto", "numpy", "numba"}
        Revaluation kernel of the house family.

    Returns
    -------
    MaxSize
        See the module docstring for the search and the meaning of each status.
    """
    from greeksmargin.book.collateral import load_collateral
    from greeksmargin.engine.margin import _as_book, _check_args
    from greeksmargin.engine.models import load_model

    _check_args(positions, market, model, collateral)
    if side not in ("buy", "sell"):
        raise InputError(f"side must be 'buy' or 'sell' (got {side!r})", column="side")
    if not isinstance(max_multiples, int) or isinstance(max_multiples, bool) or max_multiples < 1:
        raise InputError(f"max_multiples must be a positive int (got {max_multiples!r})")
    m = load_model(model)
    _book = _as_book(positions, market)
    pos, mk = _book.positions, _book.market
    template = _trade_template(pos, instrument, account)
    q_min = default_min_size(template["kind"], float(template["multiplier"])) if min_size is None else float(min_size)
    if not (q_min > 0 and math.isfinite(q_min)):
        raise InputError(f"min_size must be positive and finite (got {min_size!r})", column="min_size")
    held = pos[pos["account"].astype(str) == account]
    coll = load_collateral(collateral)
    coll = coll[coll["account"].astype(str) == account]
    evaluate, values = _evaluator(held, mk, m, account, backend)
    im0, ccy0 = evaluate(None, 0)
    if math.isnan(im0):
        raise InputError(f"model '{m.name}' does not price account '{account}' as it stands: {ccy0}",
                         column="account")
    equity, eq_ccy = _equity_im(held, coll, mk, account, values)
    im_cur = im0 * (mk.fx_to_usd(ccy0) / mk.fx_to_usd(eq_ccy)) if len(held) else 0.0
    sign = 1.0 if side == "buy" else -1.0
    meta = dict(account=account, instrument=instrument, side=side, model=m.name)
    ans = _answer(evaluate, template, sign, q_min, equity, eq_ccy, mk, max_multiples, im_cur, meta)
    if orders is not None:
        buys, sells = orders_sides(orders, account)
        from greeksmargin.book.positions import load_positions

        sides = []
        for extra in (buys, sells):
            if len(extra):
                both = load_positions(pd.concat([held, extra[[c for c in held.columns if c in extra.columns]]],
                                                ignore_index=True), valuation_time=mk.valuation_time)
                sides.append(_evaluator(both, mk, m, account, backend)[0])
            else:
                sides.append(evaluate)

        def worse(t: dict[str, Any] | None, k: int) -> tuple[float, str]:
            (a, ca), (b, cb) = sides[0](t, k), sides[1](t, k)
            if math.isnan(a) or math.isnan(b):
                return math.nan, ca if math.isnan(a) else cb
            b_in_a = b * mk.fx_to_usd(cb) / mk.fx_to_usd(ca) if cb != ca else b
            return (a, ca) if a >= b_in_a else (b, cb)

        ans.with_orders = _answer(worse, template, sign, q_min, equity, eq_ccy, mk, max_multiples, im_cur, meta)
    return ans
