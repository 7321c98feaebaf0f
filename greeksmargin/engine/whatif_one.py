"""One trade, scalar: the fast path of :meth:`AccountState.with_trades` for a single trade mapping.

:meth:`greeksmargin.engine.incremental.AccountState.with_trades` with one trade given as a mapping (the what-if
of an order ticket) comes here first. The general path (:mod:`greeksmargin.engine.incremental`) builds
position arrays for the trades, revalues them through the engine's array functions (``scan_units``,
``revaluation_pieces``, ``contingency_pieces``, the isolated step), adds them to copies of the units they
touch and re-evaluates every unit; each of those calls costs tens of microseconds of numpy set-up for one
position. This module computes the same pieces for the one position with scalar arithmetic (the same
operations in the same order as those functions, so the same figures; tests/test_whatif_one.py holds
the two paths and :func:`~greeksmargin.engine.margin.compute_margin` equal):

* the scan P&L vector and the P&L at the revaluation Greeks' shocks: one call of the compiled
  :func:`greeksmargin.risk._scan_kernel.one_position` (numba backend; the scan bitwise that of the
  engine's kernel), or one vectorised Black-76 call over every scenario and shock (numpy backend, the
  operations of :func:`greeksmargin.risk.scenarios.scenario_pnl`);
* the contingency pieces (short option minimum, roll, contract floor, long-premium cap, delta-one
  standard), the position's isolated requirement (``cap_at_isolated``) and the touched unit's figures as
  scalars; per-underlying constants (grid, shocks, term rules) and the requirement and exposure direction
  of every *untouched* unit are computed once per state and kept until :meth:`AccountState.add_trades`;
* the aggregation across underlyings (sum, or the signed correlation of
  :func:`greeksmargin.methodologies.house.combine.aggregate_correlation`, of which one account's total
  is computed without its Euler allocation).

The trade is validated as on the general path (:func:`check_record`: a bad field raises
:class:`~greeksmargin.errors.InputError` naming it). Every other case returns None and the general path
answers: several trades, an American exercise style, a trade on an underlying the account does not hold,
a trade that changes the account's margin currency, an account or trade outside the model's domain,
TIMS-style offsets, an empty account.
"""

from __future__ import annotations

import ast
import bisect
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.positions import COLUMNS, MAX_MULTIPLIER, MAX_PRICE, MAX_QUANTITY
from greeksmargin.book.tables import DATE_MAX, DATE_MIN, DATE_RANGE
from greeksmargin.engine.house_pieces import REVAL_MIN_VOL, delta_shocks, gamma_shocks, vega_shocks
from greeksmargin.engine.models import RuleSet
from greeksmargin.errors import InputError, MarketDataError
from greeksmargin.methodologies.house import contingency as cont
from greeksmargin.methodologies.house.combine import Expression, correlation_matrix
from greeksmargin.risk.kernels import resolve_backend
from greeksmargin.risk.scenarios import VolShockRule, sensitivities
from greeksmargin.units import DAYS_PER_YEAR, SECONDS_PER_YEAR

__all__ = ["KIND_CODES", "STD", "check_record", "look_up", "one_trade", "sensitivities_unused"]

KIND_CODES = {"option": 0, "future": 1, "perpetual": 2, "spot": 3}
_KIND_NAMES = ("option", "future", "perpetual", "spot")
#: instruments whose market look-ups an :class:`AccountState` keeps (cleared when full)
LOOKUP_CACHE_SIZE = 4096
#: the standard (exchange isolated) figures
STD = ("option_standard_im", "option_standard_mm", "delta_one_im", "delta_one_mm")


# ------------------------------------------------------------------------------------------ the trade
#: keys a trade mapping may hold: the positions schema (a quantity in another unit goes the frame path)
_FIELDS = frozenset(COLUMNS)

def check_record(r: Mapping[str, Any], i: int, vt: pd.Timestamp) -> dict[str, Any]:
    """Validate one trade given as a mapping (same rules as :func:`greeksmargin.book.positions.load_positions`)."""

    def err(msg: str, col: str) -> InputError:
        return InputError(msg, file="<trades>", row=i, column=col)

    def number(col: str, default: float = math.nan) -> float:
        v = r.get(col, default)
        try:
            return default if v is None else float(v)
        except (TypeError, ValueError):
            raise err(f"must be a number (got {v!r})", col) from None

    unknown = [k for k in r if k not in _FIELDS]
    if unknown:  # a key the positions schema does not define: refused, never ignored
        raise err(f"unknown field '{unknown[0]}' (known: {', '.join(COLUMNS)})", str(unknown[0]))
    out: dict[str, Any] = {}
    for c in ("account", "instrument", "underlying"):
        v = r.get(c)
        if v is None or str(v).strip() == "":
            raise err("empty value", c)
        out[c] = str(v).strip()
    kind = str(r.get("kind", "")).strip().lower()
    if kind not in KIND_CODES:
        raise err(f"unknown kind '{r.get('kind')}' (expected one of {', '.join(KIND_CODES)})", "kind")
    out["kind"] = kind
    ot = r.get("option_type")
    if kind == "option":
        key = str(ot).strip().lower() if ot is not None else ""
        if key in ("call", "c"):
            out["is_call"] = True
        elif key in ("put", "p"):
            out["is_call"] = False
        else:
            raise err(f"unknown option_type '{ot}' (expected call or put)", "option_type")
        k = number("strike")
        if not 0 < k <= MAX_PRICE:
            raise err(f"strike must be positive and at most {MAX_PRICE:.0e} (got {k!r})", "strike")
        out["strike"] = k
    else:
        out["is_call"] = False
        out["strike"] = math.nan
    exp = r.get("expiry")
    if kind in ("option", "future"):
        if exp is None or (isinstance(exp, float) and math.isnan(exp)) or str(exp).strip() == "":
            raise err(f"an {kind} needs an expiry", "expiry")
        try:
            ts = pd.Timestamp(exp)
        except (TypeError, ValueError, OverflowError):
            raise err(f"not a date-time, or outside 1677-09-22 .. 2262-04-11: {exp!r}", "expiry") from None
        if ts is pd.NaT:
            raise err(f"not a date-time: {exp!r}", "expiry")
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        if not DATE_MIN <= ts <= DATE_MAX:  # the loader's range (pandas' nanosecond range)
            raise err(f"expiry {exp!r} out of range ({DATE_RANGE})", "expiry")
        if ts <= vt and kind == "future":
            raise err(f"{kind} expired: expiry {ts.isoformat()} is not after the valuation time {vt.isoformat()}",
                      "expiry")
        # an option at or past its expiry: T = 0, intrinsic value (as greeks.market_arrays)
        out["T"] = max((ts - vt).total_seconds() / SECONDS_PER_YEAR, 0.0)
    else:
        out["T"] = math.nan
    q = number("quantity")
    if not math.isfinite(q):
        raise err("quantity must be finite", "quantity")
    if abs(q) > MAX_QUANTITY:
        raise err(f"quantity out of range (got {q:g}; allowed |quantity| <= {MAX_QUANTITY:.0e})", "quantity")
    mult = number("multiplier", 1.0)
    mult = 1.0 if math.isnan(mult) else mult
    if not (0 < mult <= MAX_MULTIPLIER):
        raise err(f"multiplier must be positive and at most {MAX_MULTIPLIER:.0e} (got {mult!r})", "multiplier")
    settle = str(r.get("settlement") or "linear").strip().lower()
    if settle not in ("linear", "inverse"):
        raise err(f"unknown settlement '{r.get('settlement')}' (expected linear or inverse)", "settlement")
    out.update(quantity=q, multiplier=mult, inverse=settle == "inverse")
    return out


def look_up(market: Any, u: str, kc: int, t: float, strike: float, instrument: str, is_call: bool
             ) -> tuple[float, float, float, float, float, float]:
    """Market inputs and unit price of one trade: (spot, forward, rate, perpetual ratio, vol, price)."""
    from greeksmargin.pricing import black76

    t0 = np.array([t if math.isfinite(t) else 0.0])
    s = market.spot(u)
    f = float(market.forward(u, t0)[0])
    rate = float(market.rate(u, t0)[0])
    perp_ratio = market.perpetual_mark(u) / s if kc == 2 else 1.0
    vol = math.nan
    if kc == 0:
        vol = float(market.vol(u, np.array([t]), np.array([strike]), instrument=[instrument])[0])
        price = float(black76(np.array([is_call]), np.array([f]), np.array([strike]), np.array([t]),
                              np.array([vol]), np.array([rate])).price[0])
    elif kc == 1:
        price = f
    elif kc == 2:
        price = s * perp_ratio
    else:
        price = s
    return s, f, rate, perp_ratio, vol, price


def sensitivities_unused(rs: RuleSet) -> bool:
    """True when no figure reads the finite-difference delta, gamma or vega of the positions.

    The delta, gamma and vega charges by revaluation read the P&L at the shocks (``delta_up`` ... ,
    ``vega_up``), never the Greeks (``house_pieces.price_charges``, ``sens.vega_charge_revaluation``, the
    isolated figures likewise); with a scan, the correlation aggregation's direction comes from the summed
    P&L vector (``exposure_direction(pnl=...)``), not from the net delta.
    """
    need = set(rs.figures)
    return "scan" in need and all(rs.components[c].get("method") == "revaluation"
                                  for c in ("delta", "gamma", "vega") if c in need)


# ------------------------------------------------------------------------------------ scalar helpers
def _mx(a: Any, b: Any) -> Any:
    """``np.maximum`` of two scalars (a NaN on either side is the result)."""
    return a if (a >= b or a != a) else b


def _mn(a: Any, b: Any) -> Any:
    """``np.minimum`` of two scalars (a NaN on either side is the result)."""
    return a if (a <= b or a != a) else b


def _mul(a: Any, b: Any) -> Any:
    """A product of the combination expressions: ``0 x inf = 0`` (an absent cap), as ``combine.evaluate``."""
    return 0.0 if (a == 0 or b == 0) else a * b


def _loss2(up: Any, down: Any) -> Any:
    """``sens.vega_loss`` of scalars: ``max(-up, -down, 0)``."""
    return _mx(_mx(-up, -down), 0.0)


def _compile(expr: Expression) -> Callable[[Mapping[str, Any]], Any]:
    """The expression as a function of scalar figures: :func:`~greeksmargin.methodologies.house.combine.evaluate`."""

    def build(node: ast.AST) -> Callable[[Mapping[str, Any]], Any]:
        if isinstance(node, ast.Expression):
            return build(node.body)
        if isinstance(node, ast.Name):
            key = node.id
            return lambda F: F[key]
        if isinstance(node, ast.Constant):
            v = float(node.value)  # type: ignore[arg-type]  # the parser admits numbers only
            return lambda F: v
        if isinstance(node, ast.BinOp):
            a, b = build(node.left), build(node.right)
            if isinstance(node.op, ast.Add):
                return lambda F: a(F) + b(F)
            if isinstance(node.op, ast.Sub):
                return lambda F: a(F) - b(F)
            return lambda F: _mul(a(F), b(F))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            a = build(node.operand)
            return lambda F: -a(F)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            f = _mx if node.func.id == "max" else _mn
            args = [build(x) for x in node.args]

            def call(F: Mapping[str, Any]) -> Any:
                out = args[0](F)
                for g in args[1:]:
                    out = f(out, g(F))
                return out

            return call
        raise ValueError(f"cannot evaluate {ast.dump(node)}")  # pragma: no cover (parse rejects it)

    return build(expr.tree)


def _term_mult(rule: VolShockRule, t: float) -> float:
    """:meth:`VolShockRule.multiplier` of one time to expiry (years; NaN gives 1)."""
    dte = t * DAYS_PER_YEAR if math.isfinite(t) else rule.pivot_days
    p = rule.short_power if dte < rule.pivot_days else rule.long_power
    return float((rule.pivot_days / max(dte, rule.floor_days)) ** p)


def _scan_loss(pnl: NDArray[np.float64], w: NDArray[np.float64], gain: float) -> Any:
    """:func:`~greeksmargin.risk.reduce.scan_loss` of one P&L vector."""
    q = (pnl if gain == 1.0 else np.where(pnl > 0, pnl * gain, pnl)) * w
    return _mx(0.0, -q.min()) if q.size else 0.0


# ------------------------------------------------------------------------ what the model needs, once
class _Consts:
    """Per-underlying constants of the model (grid, shocks, term rules): no trade in them."""

    def __init__(self, rs: RuleSet, plan: _Plan, u: str) -> None:
        need = plan.need
        g = rs.grid_for(u) if plan.scan else None
        if g is not None:
            self.moves = np.ascontiguousarray(g.spot_move, dtype=np.float64)
            self.dirs = np.ascontiguousarray(g.vol_dir, dtype=np.int64)
            self.weights = np.ascontiguousarray(g.weights, dtype=np.float64)
            self.rule = g.vol_rule
        else:
            self.moves, self.dirs, self.weights = np.zeros(0), np.zeros(0, np.int64), np.zeros(0)
            self.rule = VolShockRule()
        self.n_s = self.moves.size
        r = self.rule
        self.rel, self.up, self.down = r.kind == "relative", float(r.up), float(r.down)
        self.min_up, self.min_vol = float(r.min_vol_up), float(r.min_vol)
        # numpy path: vol of each scenario as an index into (vol, vol up, vol down, revaluation vols...)
        self.side = (np.flatnonzero(self.moves < 0), np.flatnonzero(self.moves > 0), np.flatnonzero(self.moves == 0))
        keys: list[str] = []
        moves: list[float] = []
        vcode: list[int] = []
        if "delta" in need:
            c = rs.components["delta"]
            self.d_up = float(delta_shocks(c, [u], "up")[0])
            self.d_down = float(delta_shocks(c, [u], "down")[0])
            if plan.rv_delta:
                keys += ["delta_up", "delta_down"]
                moves += [self.d_up, -self.d_down]
                vcode += [0, 0]
        if "gamma" in need:
            self.g_h = float(gamma_shocks(rs.components["gamma"], [u])[0])
            if plan.rv_gamma:
                keys += ["gamma_up", "gamma_down"]
                moves += [self.g_h, -self.g_h]
                vcode += [0, 0]
        if "vega" in need:
            c = rs.components["vega"]
            self.vg_up = float(vega_shocks(c, [u], "up")[0])
            self.vg_dn = float(vega_shocks(c, [u], "down")[0])
            self.v_rel = c["kind"] == "relative"
            self.v_rule = VolShockRule(kind=c["kind"], short_power=c["short_power"], long_power=c["long_power"],
                                       pivot_days=c["pivot_days"], floor_days=c["floor_days"])
            self.bucket_days = [float(x) for x in c["bucket_days"]]
            self.lam = float(c["cross_bucket_netting"])
            if plan.rv_vega:
                keys += ["vega_up", "vega_down"]
                moves += [0.0, 0.0]
                vcode += [1, 2]
        self.rkeys = keys
        self.rmoves = np.array(moves, dtype=np.float64)
        self.rvcode = vcode
        self.all_moves = np.concatenate([self.moves, self.rmoves, [0.0]])  # the last point: the price now
        self.vidx = np.concatenate([np.where(self.dirs > 0, 1, np.where(self.dirs < 0, 2, 0)),
                                    3 + np.arange(len(keys)), [0]]).astype(np.intp)


class _Plan:
    """The model's figures and methods, compiled expressions and per-underlying constants."""

    def __init__(self, rs: RuleSet) -> None:
        need = set(rs.figures)
        self.rs, self.need = rs, need
        self.scan = "scan" in need
        self.gain = float(rs.components["scan"]["gain_offset"]) if self.scan else 1.0

        def reval(c: str) -> bool:
            return c in need and rs.components[c]["method"] == "revaluation"

        self.rv_delta, self.rv_gamma, self.rv_vega = reval("delta"), reval("gamma"), reval("vega")
        self.need_sens = bool(need & {"delta", "gamma", "vega"}) and not sensitivities_unused(rs)
        self.im = _compile(rs.im)
        self.mm = _compile(rs.mm) if rs.mm is not None else None
        self.mm_factor = rs.mm_factor
        self.cap = rs.cap_at_isolated
        self.corr = rs.aggregate["method"] == "correlation"
        self.std = [f for f in STD if f in need]
        self.consts: dict[str, _Consts] = {}

    def of(self, u: str) -> _Consts:
        c = self.consts.get(u)
        if c is None:
            c = self.consts[u] = _Consts(self.rs, self, u)
        return c


class _Sums:
    """The sums of a touched unit after the trade (the attributes of ``incremental._Unit`` that are read)."""

    __slots__ = ("cap_other", "cap_value", "delta", "delta_down", "delta_up", "floor", "gamma", "gamma_down",
                 "gamma_up", "iso_im", "iso_mm", "pnl", "roll", "som", "std", "vega_b", "vega_down_b", "vega_up_b")
    cap_other: Any
    cap_value: Any
    delta: Any
    delta_down: Any
    delta_up: Any
    floor: Any
    gamma: Any
    gamma_down: Any
    gamma_up: Any
    iso_im: Any
    iso_mm: Any
    pnl: Any
    roll: Any
    som: Any
    std: Any
    vega_b: Any
    vega_down_b: Any
    vega_up_b: Any


# ------------------------------------------------------------------------------------ unit figures
def _unit_figures(plan: _Plan, c: _Consts, un: Any) -> dict[str, Any]:
    """Figures of one unit from its sums (``AccountState._unit_figures`` of one unit)."""
    need = plan.need
    F: dict[str, Any] = {}
    if plan.scan:
        F["scan"] = _scan_loss(un.pnl, c.weights, plan.gain)
    if "delta" in need:
        d = un.delta
        F["delta"] = (_loss2(un.delta_up, un.delta_down) if plan.rv_delta
                      else _mx(d, 0.0) * c.d_down + _mx(-d, 0.0) * c.d_up)
    if "gamma" in need:
        h = c.g_h
        F["gamma"] = (_mx(-(h * un.gamma_up + h * un.gamma_down) / (h + h), 0.0) if plan.rv_gamma
                      else 0.5 * _mx(-un.gamma, 0.0) * h * h)
    if "vega" in need:
        lam = c.lam
        if plan.rv_vega:
            bu, bd = un.vega_up_b, un.vega_down_b
            within = np.maximum(np.maximum(-bu, -bd), 0.0).sum()
            F["vega"] = (1.0 - lam) * within + lam * _loss2(bu.sum(), bd.sum())
        else:
            b, up, dn = un.vega_b, c.vg_up, c.vg_dn
            within = (np.maximum(b, 0.0) * dn + np.maximum(-b, 0.0) * up).sum()
            bs = b.sum()
            F["vega"] = (1.0 - lam) * within + lam * (_mx(bs, 0.0) * dn + _mx(-bs, 0.0) * up)
    if "short_option_minimum" in need:
        F["short_option_minimum"] = _mx(un.som, 0.0)
    if "roll" in need:
        v = np.fromiter(un.roll.values(), dtype=float, count=len(un.roll)) if un.roll else np.zeros(1)
        gross = np.abs(v).sum()
        F["roll"] = gross if plan.rs.components["roll"]["scope"] == "gross" else _mx(gross - abs(v.sum()), 0.0)
    if "contract_floor" in need:
        F["contract_floor"] = un.floor
    if "long_premium_cap" in need:
        F["long_premium_cap"] = math.inf if un.cap_other > 0 else un.cap_value
    for f in plan.std:
        F[f] = un.std.get(f, 0.0)
    return F


def _requirement(plan: _Plan, F: Mapping[str, Any], iso_im: Any = None, iso_mm: Any = None) -> tuple[Any, Any]:
    """IM and MM of a unit (or a position alone, without ``iso_*``) from its figures, as ``unit_requirements``."""
    im = _mx(plan.im(F), 0.0)
    if plan.cap and iso_im is not None:
        im = _mn(im, iso_im)
    if plan.mm is None:
        return im, plan.mm_factor * im
    mm = _mx(plan.mm(F), 0.0)
    if plan.cap and iso_mm is not None:
        mm = _mn(mm, iso_mm)
    return im, mm


def _direction(plan: _Plan, c: _Consts, un: Any) -> Any:
    """Direction of the unit's exposure (``exposure_direction`` then ``direction_from_losses``), a scalar."""
    if plan.scan:
        loss = -un.pnl * c.weights
        ld, lu, lf = (loss[i].max(initial=0.0) for i in c.side)
    elif "delta" in plan.need:
        if plan.rv_delta:
            ld, lu, lf = -un.delta_down, -un.delta_up, None
        else:
            d = un.delta
            ld, lu, lf = _mx(d, 0.0) * c.d_down, _mx(-d, 0.0) * c.d_up, None
    else:
        return 0.0
    ld, lu = _mx(ld, 0.0), _mx(lu, 0.0)
    top = _mx(ld, lu)
    if lf is not None:
        top = _mx(top, lf)
    return _mn(_mx((ld - lu) / top if top > 0 else 0.0, -1.0), 1.0)


class _Cache:
    """What the fast path keeps of one state between what-ifs (dropped by ``add_trades``)."""

    def __init__(self, st: Any, plan: _Plan) -> None:
        self.model, self.market, self.currency, self.acc_fx = st.model, st.market, st.currency, st._acc_fx
        self.plan = plan
        self.names = sorted(st.units)
        self.pos = {u: i for i, u in enumerate(self.names)}
        self.im: list[Any] = []
        self.mm: list[Any] = []
        self.dirs: list[Any] = []
        for u in self.names:
            c, un = plan.of(u), st.units[u]
            im, mm = _requirement(plan, _unit_figures(plan, c, un), un.iso_im, un.iso_mm)
            self.im.append(im)
            self.mm.append(mm)
            self.dirs.append(_direction(plan, c, un) if plan.corr else 0.0)
        agg = plan.rs.aggregate
        self.C = (correlation_matrix(self.names, agg["default_correlation"], agg["correlations"]) if plan.corr
                  else None)


    def valid(self, st: Any) -> bool:
        """Whether the state still has the model, market and currency these figures were computed with."""
        return (st.model is self.model and st.market is self.market and st.currency == self.currency
                and st._acc_fx == self.acc_fx)


def _aggregate(x: list[Any], d: list[Any], C: NDArray[np.float64]) -> float:
    """One account's total of :func:`~greeksmargin.methodologies.house.combine.aggregate_correlation`."""
    if len(x) == 1 and math.isfinite(x[0]):
        return float(x[0])  # one unit: the total is the unit (v' C v + 2|v|' C n + n' C n = x^2, floor = cap = x)
    xa = np.array(x, dtype=float)
    da = np.clip(np.array(d, dtype=float), -1.0, 1.0)
    V = da * xa
    N = (1.0 - np.abs(da)) * xa
    A = np.abs(V)
    cv, cn = V @ C, N @ C
    q = np.maximum(V @ cv + 2.0 * (A @ cn) + N @ cn, 0.0)
    return float(np.minimum(np.maximum(np.sqrt(q), xa.max()), xa.sum()))


# ------------------------------------------------------------------------------------------ one trade
def one_trade(st: Any, rec: Mapping[str, Any]) -> tuple[float, float] | None:
    """``(im, mm)`` of the account of ``st`` with the trade ``rec`` added, or None (the general path answers).

    Parameters
    ----------
    st : AccountState
        The account's state (:class:`greeksmargin.engine.incremental.AccountState`); only its caches
        (market look-ups, this path's constants and untouched units) and ``last_currency`` change.
    rec : mapping
        One trade (positions schema: ``account``, ``instrument``, ``underlying``, ``kind``, ``quantity``,
        ``option_type`` / ``strike`` / ``expiry`` as the kind needs, optional ``multiplier``, ``settlement``).

    Returns
    -------
    (im, mm) : tuple of float, or None
        Initial and maintenance margin in the account's margin currency, equal to the general path's
        (tests: 1e-12 relative) and to ``compute_margin`` (1e-9); None for the cases the module
        docstring lists.

    Raises
    ------
    InputError
        A bad field of the trade (named in ``column``), or a trade of another account.
    MarketDataError
        The trade's underlying is not in the market snapshot.
    """
    m = st.model
    if m is None or st.not_computed or not st.units:
        return None
    if str(rec.get("exercise") or "european").strip().lower() != "european":
        return None  # American: the validated frame path
    rs: RuleSet = m.params
    if rs.aggregate["method"] not in ("sum", "correlation"):
        return None
    market = st.market
    r = check_record(rec, 0, market.valuation_time)
    u = r["underlying"]
    if u not in market:
        raise MarketDataError(f"underlying '{u}' is not in the market snapshot", file="<trades>")
    if r["account"] != st.account:
        raise InputError(f"trade for account '{r['account']}' given to the state of account '{st.account}'",
                         file="<trades>", column="account")
    un = st.units.get(u)
    if un is None:
        return None  # a new underlying: a new unit (the general path)
    inv = r["inverse"]
    dom = m.domain
    if not dom.is_any and (("*" not in dom.underlyings and u not in dom.underlyings) or r["kind"] not in dom.kinds
                           or ("inverse" if inv else "linear") not in dom.settlement):
        return None  # outside the model's domain: not computed (the general path says why)
    # market look-ups (kept per instrument, as the general path)
    if st._lookups_market is not market:
        st._lookups, st._lookups_market = {}, market
    cache = st._lookups
    kc = KIND_CODES[r["kind"]]
    t, k, call = r["T"], r["strike"], r["is_call"]
    key = (u, kc, t if math.isfinite(t) else None, k if kc == 0 else None, str(r["instrument"]), call)
    hit = cache.get(key)
    if hit is None:
        hit = look_up(market, u, kc, t, k, r["instrument"], call)
        if len(cache) >= LOOKUP_CACHE_SIZE:
            cache.clear()
        cache[key] = hit
    s, f, rate, perp, vol, price = (float(x) for x in hit)
    q, mult = r["quantity"], r["multiplier"]
    size = q * mult
    value_usd = price * size if kc in (0, 3) else 0.0
    if inv:
        value_ccy = price / f * size if kc == 0 else (value_usd / s if kc == 3 else 0.0)
        ccy = market.currency(u)
        mc = ccy if ccy != "USD" else u
    else:
        value_ccy, mc = value_usd, "USD"
    ccys = st._ccys if mc in st._ccys else st._ccys | {mc}
    st.last_currency = next(iter(ccys)) if len(ccys) == 1 else "USD"
    if st.last_currency != st.currency:
        return None  # the account's margin currency changes: a full recompute (the general path)
    cc = st._one_cache
    if cc is None or not cc.valid(st):
        cc = st._one_cache = _Cache(st, _Plan(rs))
    plan = cc.plan
    c = plan.of(u)
    need = plan.need
    factor = market.fx_to_usd(mc) / st._acc_fx
    ride = bool(inv and mc != st.currency)
    is_opt = kc == 0
    vol0 = 0.0 if math.isnan(vol) else vol

    # ---- revaluation: scan P&L (n_scenarios,) and P&L at the revaluation Greeks' shocks
    rvols = [vol0] * len(c.rkeys)
    if plan.rv_vega:
        mv = _term_mult(c.v_rule, t)
        su, sd = c.vg_up * mv, c.vg_dn * mv
        vu, vd = (vol0 * (1.0 + su), vol0 * (1.0 - sd)) if c.v_rel else (vol0 + su, vol0 - sd)
        vd = max(vd, min(vol0, REVAL_MIN_VOL))
        rvols = [vol0 if code == 0 else (vu if code == 1 else vd) for code in c.rvcode]
    ms = _term_mult(c.rule, t)
    n_s = c.n_s
    if resolve_backend(st.backend) == "numba":
        from greeksmargin.risk._scan_kernel import one_position

        scan, rev = np.empty(n_s), np.empty(len(c.rkeys))
        one_position(kc, call, 1.0 if math.isnan(k) else k, 0.0 if math.isnan(t) else t, f, s, perp, vol0, rate,
                     size, inv, ride, factor, ms, c.moves, c.dirs, c.rel, c.up, c.down, c.min_up, c.min_vol,
                     c.rmoves, np.array(rvols, dtype=np.float64), scan, rev)
    else:
        pl = _numpy_pnl(c, kc, call, k, t, f, s, perp, vol, rate, size, inv, ride, factor, ms, rvols)
        scan, rev = pl[:n_s], pl[n_s:]
    rv = dict(zip(c.rkeys, rev.tolist()))
    if not is_opt:
        for kk in ("vega_up", "vega_down"):
            if kk in rv:
                rv[kk] = 0.0  # no vol risk by definition (revaluation_pieces)
    dlt = gam = veg = 0.0
    if plan.need_sens:  # finite-difference Greeks with the numpy kernel (as the general path on both backends)
        sub = {"kind_code": np.array([kc], np.int8), "is_call": np.array([call]), "strike": np.array([k]),
               "T": np.array([t]), "forward": np.array([f]), "spot": np.array([s]), "vol": np.array([vol]),
               "rate": np.array([rate]), "size": np.array([size]), "inverse": np.array([inv]),
               "perp_ratio": np.array([perp]), "fx_moves": np.array([ride])}
        d_, g_, v_ = sensitivities(sub)
        dlt, gam, veg = float(d_[0] * factor), float(g_[0] * factor), float(np.nan_to_num(v_)[0] * factor)

    # ---- per-position pieces (house_pieces.contingency_pieces and the vega exposure of _pieces)
    kind = r["kind"]
    unit_price = 1.0 if inv else s
    d1_price = 1.0 if inv else price
    comps = rs.components
    if "vega" in need:
        mv = _term_mult(c.v_rule, t)
        expo = veg * (mv * (vol0 if c.v_rel else 1.0)) if is_opt else 0.0
        bucket = bisect.bisect_left(c.bucket_days, t * DAYS_PER_YEAR if math.isfinite(t) else 0.0)
    som = roll = floor = 0.0
    if "short_option_minimum" in need:
        som = -comps["short_option_minimum"]["rate"] * size * unit_price * factor if is_opt else 0.0
    if "roll" in need:
        cr = comps["roll"]
        tt = 0.0 if math.isnan(t) else t
        move = _mx(cr["min_annual_move"], cr["annual_move"] * tt)
        roll = size * d1_price * move * factor if kind in cr["kinds"] else 0.0
        roll_key = int(round(tt * 365 * 24 * 3600))
    if "contract_floor" in need:
        cf = comps["contract_floor"]
        amt = cf["per_contract"] * (abs(q) * mult) if kind in cf["kinds"] else 0.0
        floor = amt * (market.fx_to_usd(cf["currency"]) / st._acc_fx)
    long_opt = is_opt and size > 0
    cap_value, cap_other = (value_ccy * factor, 0.0) if long_opt else (0.0, 1.0)
    std: dict[str, Any] = {}
    if "option_standard_im" in need:
        co = comps["option_standard"]
        mark = value_ccy / size if size != 0 else 0.0
        im_s, mm_s = cont.option_standard_margin(
            np.array([is_opt]), np.array([call]), np.array([size]), np.array([s]), np.array([k]), np.array([mark]),
            np.array([unit_price]), im_base=co["im_base"], im_min=co["im_min"], mm_base=co["mm_base"],
            long_premium=co["long_premium"])
        std["option_standard_im"], std["option_standard_mm"] = float(im_s[0] * factor), float(mm_s[0] * factor)
    if "delta_one_im" in need:
        c1 = comps["delta_one"]
        base = abs(size) * d1_price
        applies = kind in c1["kinds"]
        std["delta_one_im"] = (c1["im_rate"] * base if applies else 0.0) * factor
        std["delta_one_mm"] = (c1["mm_rate"] * base if applies else 0.0) * factor

    # ---- the position alone (cap_at_isolated): _position_figures + unit_requirements
    iso_im = iso_mm = 0.0
    if plan.cap:
        PF: dict[str, Any] = {}
        if plan.scan:
            PF["scan"] = _scan_loss(scan, c.weights, plan.gain)
        if "delta" in need:
            PF["delta"] = (_loss2(rv["delta_up"], rv["delta_down"]) if plan.rv_delta
                           else _mx(dlt, 0.0) * c.d_down + _mx(-dlt, 0.0) * c.d_up)
        if "gamma" in need:
            h = c.g_h
            PF["gamma"] = (_mx(-(h * rv["gamma_up"] + h * rv["gamma_down"]) / (h + h), 0.0) if plan.rv_gamma
                           else 0.5 * _mx(-gam, 0.0) * h * h)
        if "vega" in need:
            PF["vega"] = (_loss2(rv["vega_up"], rv["vega_down"]) if plan.rv_vega
                          else _mx(expo, 0.0) * c.vg_dn + _mx(-expo, 0.0) * c.vg_up)
        if "short_option_minimum" in need:
            PF["short_option_minimum"] = _mx(som, 0.0)
        if "roll" in need:
            PF["roll"] = abs(roll) if comps["roll"]["scope"] == "gross" else _mx(abs(roll) - abs(roll), 0.0)
        if "contract_floor" in need:
            PF["contract_floor"] = floor
        if "long_premium_cap" in need:
            PF["long_premium_cap"] = math.inf if cap_other > 0 else cap_value
        PF.update(std)
        iso_im, iso_mm = _requirement(plan, PF)

    # ---- the touched unit after the trade (incremental.AccountState._add on a copy)
    w = _Sums()
    w.pnl = un.pnl + scan if plan.scan else un.pnl
    w.delta, w.gamma = un.delta + dlt, un.gamma + gam
    w.delta_up, w.delta_down = (un.delta_up + rv["delta_up"], un.delta_down + rv["delta_down"]) if plan.rv_delta \
        else (un.delta_up, un.delta_down)
    w.gamma_up, w.gamma_down = (un.gamma_up + rv["gamma_up"], un.gamma_down + rv["gamma_down"]) if plan.rv_gamma \
        else (un.gamma_up, un.gamma_down)
    w.vega_b, w.vega_up_b, w.vega_down_b = un.vega_b, un.vega_up_b, un.vega_down_b
    if "vega" in need:
        w.vega_b = un.vega_b.copy()
        w.vega_b[bucket] += expo
        if plan.rv_vega:
            w.vega_up_b, w.vega_down_b = un.vega_up_b.copy(), un.vega_down_b.copy()
            w.vega_up_b[bucket] += rv["vega_up"]
            w.vega_down_b[bucket] += rv["vega_down"]
    w.som = un.som + som
    w.roll = un.roll
    if "roll" in need:
        w.roll = dict(un.roll)
        w.roll[roll_key] = w.roll.get(roll_key, 0.0) + roll
    w.floor = un.floor + floor
    w.cap_value, w.cap_other = un.cap_value + cap_value, un.cap_other + cap_other
    w.std = un.std
    if std:
        w.std = dict(un.std)
        for kk, v in std.items():
            w.std[kk] = w.std.get(kk, 0.0) + v
    w.iso_im, w.iso_mm = un.iso_im + iso_im, un.iso_mm + iso_mm
    im_u, mm_u = _requirement(plan, _unit_figures(plan, c, w), w.iso_im, w.iso_mm)

    # ---- across underlyings (AccountState._evaluate)
    i = cc.pos[u]
    ims, mms = list(cc.im), list(cc.mm)
    ims[i], mms[i] = im_u, mm_u
    if plan.corr:
        dirs = cc.dirs
        if len(ims) > 1 or not math.isfinite(im_u):
            dirs = list(dirs)
            dirs[i] = _direction(plan, c, w)
        im = _aggregate(ims, dirs, cc.C)
        mm = _aggregate(mms, dirs, cc.C) if plan.mm is not None else 0.0
    else:
        im, mm = float(np.sum(ims)), float(np.sum(mms))
    if plan.mm is None:
        assert plan.mm_factor is not None
        mm = plan.mm_factor * im
    return im, mm


def _numpy_pnl(c: _Consts, kc: int, call: bool, k: float, t: float, f: float, s: float, perp: float, vol: float,
               rate: float, size: float, inv: bool, ride: bool, factor: float, ms: float, rvols: list[float]
               ) -> NDArray[np.float64]:
    """Scan and revaluation P&L of one position with numpy (:func:`~greeksmargin.risk.scenarios.scenario_pnl`).

    One Black-76 call over every scenario, every revaluation shock and the price now (the last point);
    the scenario vols as :meth:`~greeksmargin.risk.scenarios.VolShockRule.shocked`. Shape
    ``(n_scenarios + n_shocks,)``, times ``factor``.
    """
    M = c.all_moves
    if kc == 0:
        from greeksmargin.pricing import black76_price

        up = c.up * ms
        vu = vol * (1.0 + up) if c.rel else vol + up
        vu = max(max(vu, c.min_up), c.min_vol)
        dn = -c.down * ms
        vd = vol * (1.0 + dn) if c.rel else vol + dn
        vd = max(vd, c.min_vol)
        V = np.array([vol, vu, vd, *rvols])[c.vidx]
        F1 = f * (1.0 + M)
        new = black76_price(call, F1, k, np.full(M.size, t), V, rate)
        base = new[-1]
        new, F1 = new[:-1], F1[:-1]
        if inv:
            pl = (new - base) * size / f if ride else (new / F1 - base / f) * size
        else:
            pl = (new - base) * size
    else:
        m = M[:-1]
        if inv:
            pl = size * m if ride else (0.0 if kc == 3 else size) * (m / (1.0 + m))
        else:
            pl = size * (s * perp if kc == 2 else (s if kc == 3 else f)) * m
    return pl * factor
