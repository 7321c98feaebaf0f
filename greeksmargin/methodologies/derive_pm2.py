"""Derive (Lyra v2) portfolio margin PM2: the on-chain solvency check, in USD (Derive's v2-core PMRM contracts).

This module reproduces the computation of Derive's ``PMRM_2`` risk manager and its library ``PMRMLib_2``
(derivexyz/v2-core, ``src/risk-managers/``), in floating point instead of 18-decimal fixed point. Results
are account *health*: ``MM`` and ``IM`` are cash + mark-to-market + loss factor x worst scenario loss -
contingencies; the account is healthy while ``MM >= 0`` and may add risk while ``IM >= 0``. Losses are
negative numbers, contingencies are subtracted.

Steps, in the order of the contract:

1. *Arrange*. Options are summed per (expiry, strike, type), as on-chain balances are per sub-id, and grouped
   by expiry. Each expiry takes its forward, rate (floored at 0) and confidences from ``forwards``;
   ``T = max(seconds, 0) / (365 x 86400)``; ``df = exp(-r T)``. The forward is split into a *fixed* and a
   *variable* portion: more than ``settlement_window_seconds`` (30 minutes) before expiry everything is
   variable; inside the window the settlement TWAP already observed is fixed,
   ``fixed = TWAP x (window - s) / window`` and ``variable = F x s / window`` (TWAP = F unless the case
   gives ``settlement_twap``), so at and after expiry the forward is the settlement price and options are
   worth their (undiscounted) intrinsic value. Spot shocks move only the variable portion.
2. *Precomputes*. Expiry MtM ``sum amount x B76(F, K, sigma, T, df)``; basis (forward) contingency
   ``min(V(F_up) - MtM, V(F_down) - MtM, 0) x (ADD + MULT x T)``; vol shock multipliers
   ``m = (30 d / max(s, DTE_FLOOR days))^p`` (``p`` short-term power when ``s <= 30 d``), up ``1 + UP m``,
   down ``max(0, 1 - DOWN m)``; static discounts ``pos = BASE exp(-T (r LONG_MULT + LONG_ADD))`` and
   ``neg = min(1 / df, BASE_NEG / exp(-T (r SHORT_MULT + SHORT_ADD)))``; contingencies (perp notional
   ``|size| x spot``, naked shorts per strike x spot, collateral value x haircut) and the oracle
   contingency ``(1 - c) x CONF_MARGIN x notional`` whenever ``c < CONF_THRESHOLD``.
3. *Scenarios*. Per expiry ``V' = sum amount B76(fixed + variable x s_k, K, sigma', T, df)`` times ``pos``
   when ``V' >= 0`` else ``neg``; expiry P&L ``(V' - MtM) x d_k``. Skew scenarios (``linear``/``abs``)
   reprice at the unshocked forward with ``sigma' = sigma max(0, 1 + clamp(k cap / k*, -cap, cap))`` and
   add ``-|P&L|`` per expiry. Perp ``size (s_k - 1) perp_price d_k``; risk-cancelling collateral
   ``value (s_k - 1) d_k``.
4. *Margin*. ``minSPAN = min(basis contingency, every scenario P&L)``;
   ``MM = MM_LOSS_FACTOR minSPAN - MM contingencies + MtM + cash`` and
   ``IM = (IM_LOSS_FACTOR + max(0, PEG_LOSS_THRESHOLD - stable_price) PEG_LOSS_FACTOR) minSPAN
   - MM contingencies - IM contingencies - oracle contingency + MtM + cash``.

The input structures mirror the published case format (``validation/cases/derive_pm2``): a ``portfolio``
dict and a ``parameters`` dict (:meth:`Portfolio.from_dict`, :meth:`PM2Params.from_dict`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from greeksmargin.errors import InputError
from greeksmargin.methodologies.derive_pm2_params import (
    SKEW_DIRECTIONS as SKEW_DIRECTIONS,
)
from greeksmargin.methodologies.derive_pm2_params import (
    VOL_DIRECTIONS as VOL_DIRECTIONS,
)
from greeksmargin.methodologies.derive_pm2_params import (
    BasisContingencyParams as BasisContingencyParams,
)
from greeksmargin.methodologies.derive_pm2_params import (
    MarginParams,
    OtherContingencyParams,
    PM2Params,
    Scenario,
    SkewShockParams,
    VolShockParams,
    _flag,
    _list,
    _mapping,
    _num,
    _where,
)
from greeksmargin.methodologies.derive_pm2_params import (
    params_from_model as params_from_model,
)
from greeksmargin.pricing import black76_price

SECONDS_PER_YEAR = 365 * 86400
SECONDS_PER_DAY = 86400
THIRTY_DAYS = 30 * SECONDS_PER_DAY
#: the keys of :meth:`PM2Result.summary`, as in the published cases' ``expected``
SUMMARY_KEYS = (
    "im",
    "mm",
    "worst_regular_loss",
    "worst_tail_loss",
    "worst_skew_loss",
    "forward_contingency",
    "option_mtm",
    "portfolio_mtm",
    "mm_option_contingency",
    "im_option_contingency",
    "mm_perp_contingency",
    "im_perp_contingency",
    "mm_collateral_contingency",
    "im_collateral_contingency",
    "oracle_contingency",
)


# ----------------------------------------------------------------------------------------------- portfolio
@dataclass(frozen=True)
class Perp:
    """The perpetual position: size (signed, coin), mark price, feed confidence and unsettled P&L (USD)."""

    size: float = 0.0
    price: float = 0.0
    confidence: float = 1.0
    unrealised_pnl: float = 0.0
    unrealised_funding: float = 0.0


@dataclass(frozen=True)
class Collateral:
    """A collateral holding: amount (units), price (USD), confidence, haircuts and the risk-cancelling flag."""

    name: str
    amount: float
    price: float
    confidence: float
    risk_cancelling: bool
    im_haircut: float
    mm_haircut: float


@dataclass(frozen=True)
class OptionLine:
    """An option holding: expiry (seconds from now, <= 0 when expired), strike, type, signed amount, vol."""

    seconds_to_expiry: float
    strike: float
    is_call: bool
    amount: float
    vol: float


@dataclass(frozen=True)
class ForwardLine:
    """Feeds of one expiry: forward (USD), rate (continuous, per year) and the confidences.

    ``settlement_twap`` is the settlement average already observed inside the settlement window (defaults to
    the forward); ``fixed_portion`` / ``variable_portion`` override the split altogether when both are given.
    """

    seconds_to_expiry: float
    forward: float
    forward_confidence: float = 1.0
    rate: float = 0.0
    rate_confidence: float = 1.0
    vol_confidence: float = 1.0
    settlement_twap: float | None = None
    fixed_portion: float | None = None
    variable_portion: float | None = None


@dataclass(frozen=True)
class Portfolio:
    """A PM2 sub-account: spot feed, cash, stable coin price, one perp, collaterals, options and feeds."""

    spot: float
    spot_confidence: float = 1.0
    cash: float = 0.0
    stable_price: float = 1.0
    stable_confidence: float = 1.0
    perp: Perp = field(default_factory=Perp)
    collaterals: tuple[Collateral, ...] = ()
    options: tuple[OptionLine, ...] = ()
    forwards: tuple[ForwardLine, ...] = ()

    @classmethod
    def from_dict(cls, d: Any, path: str = "portfolio") -> Portfolio:
        """Parse the ``portfolio`` object of a case.

        Raises
        ------
        InputError
            Missing key, wrong type, spot or stable price not > 0, strike not > 0, negative vol, an option
            expiry without its forward line; the message names the dotted key (``portfolio.options[3].vol``).
        """
        m = _mapping(d, path)
        spot = _num(m, "spot", path)
        if spot <= 0:
            raise InputError(f"must be > 0, got {spot}", column=_where(path, "spot"))
        stable = _num(m, "stable_price", path, default=1.0)
        if stable <= 0:
            raise InputError(f"must be > 0, got {stable}", column=_where(path, "stable_price"))
        perp = Perp()
        if m.get("perp") is not None:
            pp = _where(path, "perp")
            pm = _mapping(m["perp"], pp)
            perp = Perp(_num(pm, "size", pp, 0.0), _num(pm, "price", pp, 0.0), _num(pm, "confidence", pp, 1.0),
                        _num(pm, "unrealised_pnl", pp, 0.0), _num(pm, "unrealised_funding", pp, 0.0))
        colls = []
        for i, c in enumerate(_list(m, "collaterals", path)):
            cp = f"{_where(path, 'collaterals')}[{i}]"
            cm = _mapping(c, cp)
            amount = _num(cm, "amount", cp)
            if amount < 0:
                raise InputError(f"must be >= 0, got {amount}", column=_where(cp, "amount"))
            colls.append(Collateral(str(cm.get("name", f"collateral_{i}")), amount, _num(cm, "price", cp),
                                    _num(cm, "confidence", cp, 1.0), _flag(cm, "risk_cancelling", cp, False),
                                    _num(cm, "im_haircut", cp), _num(cm, "mm_haircut", cp)))
        opts = []
        for i, o in enumerate(_list(m, "options", path)):
            op = f"{_where(path, 'options')}[{i}]"
            om = _mapping(o, op)
            strike = _num(om, "strike", op)
            if strike <= 0:
                raise InputError(f"must be > 0, got {strike}", column=_where(op, "strike"))
            vol = _num(om, "vol", op)
            if vol < 0:
                raise InputError(f"must be >= 0, got {vol}", column=_where(op, "vol"))
            opts.append(OptionLine(_num(om, "seconds_to_expiry", op), strike, _flag(om, "is_call", op),
                                   _num(om, "amount", op), vol))
        fwds = []
        for i, f in enumerate(_list(m, "forwards", path)):
            fp = f"{_where(path, 'forwards')}[{i}]"
            fm = _mapping(f, fp)
            fwd = _num(fm, "forward", fp)
            if fwd < 0:
                raise InputError(f"must be >= 0, got {fwd}", column=_where(fp, "forward"))
            opt = {k: (_num(fm, k, fp) if fm.get(k) is not None else None)
                   for k in ("settlement_twap", "fixed_portion", "variable_portion")}
            fwds.append(ForwardLine(_num(fm, "seconds_to_expiry", fp), fwd, _num(fm, "forward_confidence", fp, 1.0),
                                    _num(fm, "rate", fp, 0.0), _num(fm, "rate_confidence", fp, 1.0),
                                    _num(fm, "vol_confidence", fp, 1.0), **opt))
        have = {f.seconds_to_expiry for f in fwds}
        for i, o in enumerate(opts):
            if o.seconds_to_expiry not in have:
                raise InputError(f"no forward line for seconds_to_expiry {o.seconds_to_expiry:g}",
                                 column=f"{_where(path, 'options')}[{i}].seconds_to_expiry")
        return cls(spot, _num(m, "spot_confidence", path, 1.0), _num(m, "cash", path, 0.0), stable,
                   _num(m, "stable_confidence", path, 1.0), perp, tuple(colls), tuple(opts), tuple(fwds))


# ------------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ExpiryFigures:
    """Precomputed figures of one expiry (arrays have shape ``(n_options,)`` of that expiry).

    Attributes
    ----------
    seconds_to_expiry : float
        Seconds to expiry, floored at 0.
    time_to_expiry : float
        Years (ACT/365).
    forward_fixed, forward_variable : float
        The fixed and the variable portion of the forward (USD).
    rate, discount : float
        Rate floored at 0; ``df = exp(-r T)``.
    mtm : float
        Discounted Black-76 value of the expiry's options (USD).
    basis_up_mtm, basis_down_mtm : float
        Values at the forward contingency's forward shocks.
    forward_contingency : float
        This expiry's basis contingency (<= 0, USD).
    vol_shock_up, vol_shock_down : float
        Vol multipliers of the ``up`` / ``down`` scenarios.
    static_discount_pos, static_discount_neg : float
        Static discounts of positive / negative shocked values.
    min_confidence : float
        Lowest confidence of the expiry (forward, rate, vol, spot, perp).
    net_options : float
        Sum of ``|amount|`` (contracts) over the expiry's options.
    naked_shorts : float
        Short contracts not covered at their strike by a long of the other type.
    strike, is_call, amount, vol : ndarray
        The expiry's options (summed per strike and type).
    """

    seconds_to_expiry: float
    time_to_expiry: float
    forward_fixed: float
    forward_variable: float
    rate: float
    discount: float
    mtm: float
    basis_up_mtm: float
    basis_down_mtm: float
    forward_contingency: float
    vol_shock_up: float
    vol_shock_down: float
    static_discount_pos: float
    static_discount_neg: float
    min_confidence: float
    net_options: float
    naked_shorts: float
    strike: NDArray[np.float64]
    is_call: NDArray[np.bool_]
    amount: NDArray[np.float64]
    vol: NDArray[np.float64]

    @property
    def forward(self) -> float:
        """Unshocked forward ``fixed + variable`` (USD)."""
        return self.forward_fixed + self.forward_variable


@dataclass(frozen=True)
class PM2Result:
    """Result of :func:`derive_pm2_margin`. Losses and contingencies are negative, as in Derive's output.

    Attributes
    ----------
    im, mm : float
        Initial and maintenance margin *health* (USD): >= 0 is healthy.
    min_span : float
        ``min(forward_contingency, every scenario P&L)`` before the loss factor.
    worst_scenario : int
        Index of the scenario giving ``min_span``; ``len(scenarios)`` when the forward contingency does.
    scenario_pnl : ndarray of shape (n_scenarios,)
        P&L of each scenario (USD).
    scenario_kind : tuple of str
        ``"regular"``, ``"tail"`` or ``"skew"`` per scenario (labels only).
    worst_regular_loss, worst_tail_loss, worst_skew_loss : float
        Lowest P&L of each kind (0 when the kind is absent).
    forward_contingency : float
        Basis contingency summed over expiries.
    option_mtm, collateral_mtm, perp_mtm, cash, portfolio_mtm : float
        Mark-to-market parts and their total (options + collateral + perp + cash).
    mm_option_contingency, im_option_contingency, mm_perp_contingency, im_perp_contingency,
    mm_collateral_contingency, im_collateral_contingency, oracle_contingency : float
        Contingencies (negative); the ``im_*`` ones are charged on top of the ``mm_*`` ones for IM only, the
        oracle contingency for IM only.
    im_loss_factor : float
        IM loss factor including the peg loss.
    expiries : tuple of ExpiryFigures
        Per expiry precomputes.
    """

    im: float
    mm: float
    min_span: float
    worst_scenario: int
    scenario_pnl: NDArray[np.float64]
    scenario_kind: tuple[str, ...]
    worst_regular_loss: float
    worst_tail_loss: float
    worst_skew_loss: float
    forward_contingency: float
    option_mtm: float
    collateral_mtm: float
    perp_mtm: float
    cash: float
    portfolio_mtm: float
    mm_option_contingency: float
    im_option_contingency: float
    mm_perp_contingency: float
    im_perp_contingency: float
    mm_collateral_contingency: float
    im_collateral_contingency: float
    oracle_contingency: float
    im_loss_factor: float
    expiries: tuple[ExpiryFigures, ...]

    def summary(self) -> dict[str, float]:
        """The figures of a published case's ``expected`` (:data:`SUMMARY_KEYS`), as plain floats."""
        return {k: float(getattr(self, k)) for k in SUMMARY_KEYS}

    def explain(self) -> str:
        """A short text breakdown of IM and MM."""
        lines = [
            f"portfolio MtM {self.portfolio_mtm:,.2f} (options {self.option_mtm:,.2f}, collateral "
            f"{self.collateral_mtm:,.2f}, perp {self.perp_mtm:,.2f}, cash {self.cash:,.2f})",
            f"worst loss {self.min_span:,.2f} (scenario {self.worst_scenario}; regular "
            f"{self.worst_regular_loss:,.2f}, tail {self.worst_tail_loss:,.2f}, skew {self.worst_skew_loss:,.2f}, "
            f"forward contingency {self.forward_contingency:,.2f})",
            f"MM contingencies: options {self.mm_option_contingency:,.2f}, perp {self.mm_perp_contingency:,.2f}, "
            f"collateral {self.mm_collateral_contingency:,.2f}",
            f"IM contingencies: options {self.im_option_contingency:,.2f}, perp {self.im_perp_contingency:,.2f}, "
            f"collateral {self.im_collateral_contingency:,.2f}, oracle {self.oracle_contingency:,.2f}",
            f"MM = {self.mm:,.2f}; IM = {self.im:,.2f} (IM loss factor {self.im_loss_factor:g})",
        ]
        return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- the math
def _confidence_contingency(confidence: float, notional: float, other: OtherContingencyParams) -> float:
    """``(1 - c) x CONF_MARGIN x notional`` when ``c < CONF_THRESHOLD``, else 0 (positive USD)."""
    if confidence < other.conf_threshold:
        return (1.0 - confidence) * other.conf_margin * notional
    return 0.0


def forward_portions(line: ForwardLine, window_seconds: float = 1800.0) -> tuple[float, float]:
    """Fixed and variable portions of an expiry's forward (the settlement feed's split).

    Parameters
    ----------
    line : ForwardLine
        The expiry's feeds.
    window_seconds : float, default 1800
        Length of the settlement TWAP window before expiry.

    Returns
    -------
    (float, float)
        ``(fixed, variable)`` in USD: ``(0, F)`` before the window; inside it
        ``(TWAP (w - s) / w, F s / w)``; ``(TWAP, 0)`` at and after expiry.
    """
    if line.fixed_portion is not None and line.variable_portion is not None:
        return float(line.fixed_portion), float(line.variable_portion)
    s = max(line.seconds_to_expiry, 0.0)
    if s >= window_seconds:
        return 0.0, line.forward
    twap = line.forward if line.settlement_twap is None else line.settlement_twap
    return twap * (window_seconds - s) / window_seconds, line.forward * s / window_seconds


def vol_shock_multipliers(seconds: float, p: VolShockParams) -> tuple[float, float]:
    """Vol multipliers ``(up, down)`` of an expiry ``seconds`` away.

    ``m = (30 d / max(seconds, DTE_FLOOR))^power`` with the short-term power when ``seconds <= 30 d``;
    up ``1 + VOLRANGEUP m``, down ``max(0, 1 - VOLRANGEDOWN m)``.
    """
    floor = p.dte_floor_days * SECONDS_PER_DAY
    denom = max(seconds, floor)
    power = p.short_term_power if seconds <= THIRTY_DAYS else p.long_term_power
    m = (THIRTY_DAYS / denom) ** power if denom > 0 else math.inf
    return 1.0 + p.vol_range_up * m, max(0.0, 1.0 - p.vol_range_down * m)


def static_discounts(time_to_expiry: float, rate: float, discount: float, p: MarginParams) -> tuple[float, float]:
    """Static discounts ``(pos, neg)`` of shocked expiry values.

    ``pos = BASE exp(-T (r LONG_MULT + LONG_ADD))``;
    ``neg = min(1 / df, BASE_NEG / exp(-T (r SHORT_MULT + SHORT_ADD)))``.
    """
    pos = p.base_static_discount * math.exp(-time_to_expiry * (rate * p.long_rate_multscale + p.long_rate_addscale))
    neg = p.base_static_discount_neg / math.exp(
        -time_to_expiry * (rate * p.short_rate_multscale + p.short_rate_addscale))
    return pos, min(1.0 / discount, neg)


def skew_vol_multipliers(strike: NDArray[np.float64], forward: float, time_to_expiry: float, linear: bool,
                         p: SkewShockParams) -> NDArray[np.float64]:
    """Vol multipliers of a skew scenario, shape ``(n_options,)``.

    ``k = ln(K / F)`` (``|k|`` for ``abs``); ``cap = CBASE sqrt(T) + SCALE_CAP``;
    ``k* = max(MIN_K_STAR, sqrt(T) WIDTH (STATIC + sqrt(T) SCALE))``;
    multiplier ``max(0, 1 + clamp(k cap / k*, -cap, cap))`` (``min`` with cap for ``k >= 0``, ``max`` with
    ``-cap`` below, as the contract writes it).
    """
    sq = math.sqrt(max(time_to_expiry, 0.0))
    cap = (p.linear_cbase if linear else p.abs_cbase) * sq + (p.linear_scale_cap if linear else p.abs_scale_cap)
    k_star = max(p.min_k_star, sq * p.min_width_scale * (p.vol_param_static + sq * p.vol_param_scale))
    with np.errstate(divide="ignore"):
        k = np.log(strike / forward) if forward > 0 else np.full_like(strike, np.inf)
    if not linear:
        k = np.abs(k)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        raw = k * cap / k_star if k_star != 0 else np.where(k == 0, 0.0, np.sign(k) * np.inf * cap)
    raw = np.nan_to_num(raw, nan=0.0)
    shift = np.where(k >= 0, np.minimum(cap, raw), np.maximum(-cap, raw))
    return np.maximum(1.0 + shift, 0.0)


def _expiry_value(e: ExpiryFigures, forward: float, vol: NDArray[np.float64]) -> float:
    """``sum amount x B76(forward, K, vol, T, df)`` of one expiry (USD)."""
    if e.amount.size == 0:
        return 0.0
    if e.time_to_expiry <= 0:  # expired: intrinsic value, whatever the (possibly infinite) shocked vol
        vol = np.zeros_like(e.vol)
    px = black76_price(e.is_call, forward, e.strike, e.time_to_expiry, vol)
    return float(np.dot(e.amount, px) * e.discount)


def _aggregate_options(options: Sequence[OptionLine]) -> dict[float, dict[tuple[float, bool], list[float]]]:
    """Options summed per (strike, type) within each expiry (on-chain balances are per sub-id).

    The vol of a (strike, type) is the first line's (a feed gives one vol per strike and expiry).
    """
    out: dict[float, dict[tuple[float, bool], list[float]]] = {}
    for o in options:
        book = out.setdefault(o.seconds_to_expiry, {})
        key = (o.strike, o.is_call)
        if key in book:
            book[key][0] += o.amount
        else:
            book[key] = [o.amount, o.vol]
    return out


def _precompute_expiry(seconds_raw: float, book: dict[tuple[float, bool], list[float]], line: ForwardLine,
                       base_confidence: float, params: PM2Params) -> ExpiryFigures:
    seconds = max(seconds_raw, 0.0)
    t = seconds / SECONDS_PER_YEAR
    rate = max(line.rate, 0.0)
    df = math.exp(-rate * t)
    fixed, variable = forward_portions(line, params.settlement_window_seconds)
    keys = list(book)
    strike = np.array([k[0] for k in keys], dtype=float)
    is_call = np.array([k[1] for k in keys], dtype=bool)
    amount = np.array([book[k][0] for k in keys], dtype=float)
    vol = np.array([book[k][1] for k in keys], dtype=float)
    up, down = vol_shock_multipliers(seconds, params.vol_shock)
    pos, neg = static_discounts(t, rate, df, params.margin)
    if seconds <= 0 and not params.static_discount_at_expiry:
        pos, neg = 1.0, 1.0
    # naked shorts per strike: shorts not covered by a long of the other type at the same strike
    naked = 0.0
    for k in np.unique(strike):
        naked += max(0.0, -float(amount[strike == k].sum()))
    confidence = min(line.forward_confidence, line.rate_confidence, line.vol_confidence if keys else 1.0,
                     base_confidence)
    e = ExpiryFigures(seconds, t, fixed, variable, rate, df, 0.0, 0.0, 0.0, 0.0, up, down, pos, neg, confidence,
                      float(np.abs(amount).sum()), naked, strike, is_call, amount, vol)
    mtm = _expiry_value(e, fixed + variable, vol)
    bc = params.basis_contingency
    v_up = _expiry_value(e, fixed + variable * bc.scenario_spot_up, vol)
    v_dn = _expiry_value(e, fixed + variable * bc.scenario_spot_down, vol)
    basis = min(v_up - mtm, v_dn - mtm, 0.0) * (bc.add_factor + bc.mult_factor * t)
    return replace(e, mtm=mtm, basis_up_mtm=v_up, basis_down_mtm=v_dn, forward_contingency=basis)


def _scenario_expiry_pnl(e: ExpiryFigures, sc: Scenario, params: PM2Params) -> float:
    """P&L of one expiry in one scenario, after static discount and dampening (skew: ``-|P&L|``)."""
    if sc.is_skew:
        mult = skew_vol_multipliers(e.strike, e.forward, e.time_to_expiry, sc.vol == "linear", params.skew_shock)
        shocked = _expiry_value(e, e.forward, e.vol * mult)
    elif sc.vol == "none" and sc.spot_multiplier == 1.0:
        shocked = e.mtm
    else:
        if sc.vol == "up":
            vol = np.maximum(params.vol_shock.min_vol_eval_shocked, e.vol * e.vol_shock_up)
        elif sc.vol == "down":
            vol = e.vol * e.vol_shock_down
        else:
            vol = e.vol
        shocked = _expiry_value(e, e.forward_fixed + e.forward_variable * sc.spot_multiplier, vol)
    shocked *= e.static_discount_pos if shocked >= 0 else e.static_discount_neg
    pnl = (shocked - e.mtm) * sc.dampening
    return -abs(pnl) if sc.is_skew else pnl


def _kind(sc: Scenario, regular_max_move: float) -> str:
    if sc.is_skew:
        return "skew"
    return "tail" if abs(sc.spot_multiplier - 1.0) > regular_max_move + 1e-9 else "regular"


def derive_pm2_margin(portfolio: Portfolio | Mapping[str, Any], params: PM2Params | Mapping[str, Any]) -> PM2Result:
    """Derive PM2 initial and maintenance margin health of one sub-account.

    Parameters
    ----------
    portfolio : Portfolio or Mapping
        The sub-account (or the ``portfolio`` object of a published case).
    params : PM2Params or Mapping
        The parameters (or the ``parameters`` object of a published case).

    Returns
    -------
    PM2Result
        IM, MM (USD health) and every intermediate figure; see the module docstring for the formulas.

    Raises
    ------
    InputError
        Malformed portfolio or parameters.
    """
    pf = portfolio if isinstance(portfolio, Portfolio) else Portfolio.from_dict(portfolio)
    pr = params if isinstance(params, PM2Params) else PM2Params.from_dict(params)
    other = pr.other_contingency

    # confidences: the spot feed's, and the perp feed's when a perp is held (collateral sees the spot's only)
    spot_conf = pf.spot_confidence
    min_conf = min(spot_conf, pf.perp.confidence) if pf.perp.size != 0 else spot_conf

    # collateral
    coll_mtm = mm_coll = im_coll = oracle = 0.0
    coll_values = []
    for c in pf.collaterals:
        value = c.amount * c.price / pf.stable_price
        coll_values.append(value)
        coll_mtm += value
        mm_coll += value * c.mm_haircut
        im_coll += value * c.im_haircut
        oracle += _confidence_contingency(min(c.confidence, spot_conf), value, other)

    # perp
    perp_mtm = pf.perp.unrealised_pnl + pf.perp.unrealised_funding
    perp_notional = abs(pf.perp.size) * pf.spot
    mm_perp = perp_notional * other.mm_perp_percent
    im_perp = perp_notional * other.im_perp_percent
    oracle += _confidence_contingency(min_conf, perp_notional, other)

    # options, per expiry
    lines: dict[float, ForwardLine] = {}
    for f in pf.forwards:
        lines.setdefault(f.seconds_to_expiry, f)
    expiries = []
    for seconds, book in _aggregate_options(pf.options).items():
        line = lines.get(seconds)
        if line is None:
            raise InputError(f"no forward line for seconds_to_expiry {seconds:g}",
                             column="portfolio.forwards")
        expiries.append(_precompute_expiry(seconds, book, line, min_conf, pr))
    option_mtm = sum(e.mtm for e in expiries)
    forward_cont = sum(e.forward_contingency for e in expiries)
    naked = sum(e.naked_shorts for e in expiries)
    mm_opt = naked * pf.spot * other.mm_option_percent
    im_opt = naked * pf.spot * other.im_option_percent
    for e in expiries:
        oracle += _confidence_contingency(e.min_confidence, e.net_options * pf.spot, other)

    # scenarios
    rc_value = sum(v for v, c in zip(coll_values, pf.collaterals, strict=True) if c.risk_cancelling)
    pnl = np.empty(len(pr.scenarios))
    for i, sc in enumerate(pr.scenarios):
        move = sc.spot_multiplier - 1.0
        total = (pf.perp.size * move * pf.perp.price * sc.dampening if pf.perp.size != 0 else 0.0)
        total += sum(_scenario_expiry_pnl(e, sc, pr) for e in expiries)
        total += rc_value * move * sc.dampening
        pnl[i] = total
    kinds = tuple(_kind(sc, pr.regular_max_move) for sc in pr.scenarios)

    def worst(kind: str) -> float:
        vals = [p for p, k in zip(pnl, kinds, strict=True) if k == kind]
        return float(min(vals)) if vals else 0.0

    min_span = forward_cont
    worst_i = len(pr.scenarios)
    for i, p in enumerate(pnl):
        if p < min_span:
            min_span, worst_i = float(p), i

    mm_factor = pr.margin.mm_loss_factor
    im_factor = pr.margin.im_loss_factor
    if pf.stable_price < other.peg_loss_threshold:
        im_factor += (other.peg_loss_threshold - pf.stable_price) * other.peg_loss_factor

    portfolio_mtm = option_mtm + coll_mtm + perp_mtm + pf.cash
    mm_cont = mm_opt + mm_perp + mm_coll
    im_cont = im_opt + im_perp + im_coll + oracle
    mm = min_span * mm_factor - mm_cont + portfolio_mtm
    im = min_span * im_factor - mm_cont - im_cont + portfolio_mtm
    return PM2Result(
        im=im, mm=mm, min_span=min_span, worst_scenario=worst_i, scenario_pnl=pnl, scenario_kind=kinds,
        worst_regular_loss=worst("regular"), worst_tail_loss=worst("tail"), worst_skew_loss=worst("skew"),
        forward_contingency=forward_cont, option_mtm=option_mtm, collateral_mtm=coll_mtm, perp_mtm=perp_mtm,
        cash=pf.cash, portfolio_mtm=portfolio_mtm,
        mm_option_contingency=-mm_opt, im_option_contingency=-im_opt, mm_perp_contingency=-mm_perp,
        im_perp_contingency=-im_perp, mm_collateral_contingency=-mm_coll, im_collateral_contingency=-im_coll,
        oracle_contingency=-oracle, im_loss_factor=im_factor, expiries=tuple(expiries),
    )
