"""Derive (Lyra v2) standard margin manager (SRM): per-market isolated and max-loss-bounded margin.

Follows the exchange's ``StandardManager`` (derivexyz/v2-core @ 7736900, ``src/risk-managers/
StandardManager.sol`` and ``SRMPortfolioViewer.sol``). The account's margin, in the exchange's sign
convention (*margin = collateral value - requirement*; negative = shortfall), is::

    margin = cash + sum over markets (option margin + perp margin + base margin + perp unsettled cash
                                      + oracle contingencies (IM) + USDC depeg add-on (IM))
    mtm    = cash + sum over markets (option MtM + perp unsettled cash + base value / stable price)

Per market (ETH, BTC, ...), with spot ``S`` (index), the market's parameters and ``IM`` / ``MM``:

- **options**, per expiry: the larger (less negative) of the sum of the *isolated* margins of its options and
  its *max-loss* margin. Isolated: a long option has none; a short call (amount ``a < 0``) has
  ``MtM + a S m`` with ``m = max(minSpotReq, maxSpotReq - OTM)`` (IM; ``OTM = max(K - S, 0) / S``) or
  ``mmCallSpotReq`` (MM); a short put has MM ``= MtM + min(a S mmPutSpotReq, MMPutMtMReq MtM)`` and IM
  ``= min(MtM + a S m, mmOffsetScale x MM)`` (``OTM = max(S - K, 0) / S``). Max loss: the worst settlement
  payoff (capped at 0) over the settlement prices 0 and every strike of the expiry, plus
  ``unpaired{IM,MM}Scale x F x netCalls`` when the expiry is net short calls. The option MtM is Black-76 on
  the expiry's forward ``F`` with no discounting (``T = seconds / (365 x 86400)``).
- **perpetual**: ``-|size| x perp price x {imPerpReq, mmPerpReq}``, plus its unsettled P&L and funding
  (cash the perp would settle now).
- **base asset** (wETH, wBTC held as collateral): ``+ size x S x marginFactor`` (x ``initialMarginMultiplier``
  for IM); its MtM is ``size x S / stable price``.
- **oracle contingencies** (IM only): when a confidence is below its threshold, ``(1 - conf) x OCFactor x S x``
  the exposed amount: ``|perp|`` (conf = min(perp, spot)), the expiry's short options (conf = min(spot,
  forward, vol)), the base notional / S (conf = spot).
- **USDC depeg** (IM only): when the stable price is below ``threshold``,
  ``-(threshold - stable) x depegFactor x S x (|perp| + short options)``.

Arithmetic is the contract's 18-decimal fixed point (products and quotients truncated toward zero, as
Solidity's ``multiplyDecimal`` / ``divideDecimal``), so a confidence of ``0.4 - 1e-18`` is below a threshold
of 0.4 and the integer part of a margin is the contract's; only the option mark (Black-76) is computed in
floating point and rounded to 18 decimals. Numbers may be given as float, int, ``Decimal`` or ``Fraction``
(exact); a float is read as its shortest decimal representation.

Bounds of the parameters are the contract's setter checks (see :func:`check_params`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from greeksmargin.errors import InputError
from greeksmargin.pricing import black76_price
from greeksmargin.units import SECONDS_PER_YEAR

__all__ = [
    "BaseMarginParams",
    "DepegParams",
    "OptionMarginParams",
    "OracleContingencyParams",
    "PerpMarginParams",
    "SRMExpiry",
    "SRMExpiryResult",
    "SRMMarket",
    "SRMMarketParams",
    "SRMMarketResult",
    "SRMOption",
    "SRMParams",
    "SRMPortfolio",
    "SRMResult",
    "bounded_margin",
    "check_params",
    "derive_srm_margin",
    "params_from_dict",
    "to_wad",
]

UNIT = 10**18
Number = float | int | Fraction | Decimal


# ------------------------------------------------------------------------------------------ fixed point
def to_wad(x: Number, what: str = "value") -> int:
    """``x`` as an 18-decimal fixed-point integer (truncated toward zero), as the contract stores it.

    Parameters
    ----------
    x : float, int, Decimal or Fraction
        The number (a float is read as its shortest decimal representation, e.g. 0.1 -> 0.1 exactly).
    what : str
        Name used in the error message.

    Raises
    ------
    InputError
        Not a finite number.
    """
    if isinstance(x, bool) or not isinstance(x, (int, float, Fraction, Decimal)):
        raise InputError(f"{what}: expected a number, got {x!r}")
    if isinstance(x, float):
        if not math.isfinite(x):
            raise InputError(f"{what}: expected a finite number, got {x!r}")
        f = Fraction(repr(x))
    elif isinstance(x, Decimal):
        if not x.is_finite():
            raise InputError(f"{what}: expected a finite number, got {x!r}")
        f = Fraction(x)
    else:
        f = Fraction(x)
    return _trunc(f * UNIT)


def _trunc(f: Fraction) -> int:
    """Integer part of ``f`` toward zero."""
    return int(f)  # int(Fraction) truncates toward zero


def _mul(a: int, b: int) -> int:
    """``multiplyDecimal``: ``a x b / 1e18`` truncated toward zero."""
    p = a * b
    return p // UNIT if p >= 0 else -((-p) // UNIT)


def _div(a: int, b: int) -> int:
    """``divideDecimal``: ``a x 1e18 / b`` truncated toward zero."""
    if b == 0:
        raise InputError("division by a zero price")
    p = a * UNIT
    q = abs(p) // abs(b)
    return q if (p >= 0) == (b > 0) else -q


def _f(w: int) -> float:
    return w / UNIT


# ------------------------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class OptionMarginParams:
    """``OptionMarginParams`` of a market (fractions of spot; scales >= 1)."""

    max_spot_req: Number
    min_spot_req: Number
    mm_call_spot_req: Number
    mm_put_spot_req: Number
    mm_put_mtm_req: Number
    unpaired_im_scale: Number
    unpaired_mm_scale: Number
    mm_offset_scale: Number


@dataclass(frozen=True)
class PerpMarginParams:
    """``PerpMarginRequirements``: maintenance and initial margin as fractions of the perp notional."""

    mm_perp_req: Number
    im_perp_req: Number


@dataclass(frozen=True)
class OracleContingencyParams:
    """``OracleContingencyParams``: confidence thresholds (0 = off) and the contingency factor."""

    perp_threshold: Number
    option_threshold: Number
    base_threshold: Number
    oc_factor: Number


@dataclass(frozen=True)
class BaseMarginParams:
    """``BaseMarginParams``: the share of a base asset's value counted as margin, and its IM multiplier."""

    margin_factor: Number
    im_scale: Number


@dataclass(frozen=True)
class DepegParams:
    """``DepegParams``: stable-price threshold and the IM factor applied below it."""

    threshold: Number
    depeg_factor: Number


@dataclass(frozen=True)
class SRMMarketParams:
    """The four parameter groups of one market."""

    option: OptionMarginParams
    perp: PerpMarginParams
    oracle: OracleContingencyParams
    base: BaseMarginParams


@dataclass(frozen=True)
class SRMParams:
    """A full standard-manager parameter set.

    Attributes
    ----------
    default : SRMMarketParams
        Parameters of every market not in ``markets``.
    depeg : DepegParams
        Global depeg parameters.
    markets : mapping of str -> SRMMarketParams
        Per-market overrides (market names compared case-insensitively).
    """

    default: SRMMarketParams
    depeg: DepegParams
    markets: Mapping[str, SRMMarketParams] = field(default_factory=dict)

    def for_market(self, name: str) -> SRMMarketParams:
        """The parameters of market ``name``."""
        low = {k.lower(): v for k, v in self.markets.items()}
        return low.get(name.lower(), self.default)


#: the contract's setter checks: (group, field) -> (low, high, low inclusive, source); high always inclusive
#: (StandardManager.sol @ 7736900: setOptionMarginParams, setPerpMarginRequirements, setBaseAssetMarginFactor,
#: setOracleContingencyParams, setDepegParameters; all parameters are unsigned, hence >= 0)
BOUNDS: dict[tuple[str, str], tuple[float, float, bool]] = {
    ("option", "max_spot_req"): (0.0, 1.2, True),
    ("option", "min_spot_req"): (0.0, 1.2, True),
    ("option", "mm_call_spot_req"): (0.0, 1.0, True),
    ("option", "mm_put_spot_req"): (0.0, 1.0, True),
    ("option", "mm_put_mtm_req"): (0.0, 1.0, True),
    ("option", "unpaired_im_scale"): (1.0, 3.0, True),
    ("option", "unpaired_mm_scale"): (1.0, 3.0, True),
    ("option", "mm_offset_scale"): (1.0, 3.0, True),
    ("perp", "mm_perp_req"): (0.0, 1.0, False),  # 0 < mm <= im < 1
    ("perp", "im_perp_req"): (0.0, 1.0, False),
    ("oracle", "perp_threshold"): (0.0, 1.0, True),
    ("oracle", "option_threshold"): (0.0, 1.0, True),
    ("oracle", "base_threshold"): (0.0, 1.0, True),
    ("oracle", "oc_factor"): (0.0, 1.0, True),
    ("base", "margin_factor"): (0.0, 1.0, True),
    ("base", "im_scale"): (0.0, 1.0, True),
    ("depeg", "threshold"): (0.0, 1.0, True),
    ("depeg", "depeg_factor"): (0.0, 3.0, True),
}


def check_params(params: SRMParams) -> None:
    """Refuse a parameter set the contract's setters would revert on (the bounds of :data:`BOUNDS`).

    Raises
    ------
    InputError
        The message names the market, the group, the parameter, its value and the contract's range.
    """
    def one(group: str, name: str, value: Number, where: str) -> None:
        lo, hi, lo_incl = BOUNDS[(group, name)]
        v = Fraction(to_wad(value, f"{where}.{name}"), UNIT)
        if v > Fraction(repr(hi)) or (v < Fraction(repr(lo)) if lo_incl else v <= Fraction(repr(lo))):
            rng = f"{'[' if lo_incl else '('}{lo:g}, {hi:g}]"
            raise InputError(f"{where}.{name} = {float(v):g} is outside the contract's range {rng} "
                             "(StandardManager setter check)", column=f"{where}.{name}")

    markets = {"default": params.default, **dict(params.markets)}
    for mname, mp in markets.items():
        for group, obj in (("option", mp.option), ("perp", mp.perp), ("oracle", mp.oracle), ("base", mp.base)):
            for k, v in vars(obj).items():
                one(group, k, v, f"{mname}.{group}")
        if to_wad(mp.perp.mm_perp_req) > to_wad(mp.perp.im_perp_req):
            raise InputError(f"{mname}.perp: mm_perp_req > im_perp_req (the contract requires mm <= im)",
                             column=f"{mname}.perp.mm_perp_req")
    for k, v in vars(params.depeg).items():
        one("depeg", k, v, "depeg")


# -------------------------------------------------------------------------------------------- portfolio
@dataclass(frozen=True)
class SRMOption:
    """One option line: strike (USD), call flag, signed amount (negative = short) and the vol at its strike."""

    strike: Number
    is_call: bool
    amount: Number
    vol: Number


@dataclass(frozen=True)
class SRMExpiry:
    """The options of one expiry and its feeds: seconds to expiry, forward and the confidences."""

    seconds_to_expiry: Number
    forward: Number
    options: tuple[SRMOption, ...]
    forward_confidence: Number = 1
    vol_confidence: Number = 1


@dataclass(frozen=True)
class SRMMarket:
    """One market's holdings and feeds.

    Attributes
    ----------
    name : str
        Market name (e.g. ``"ETH"``); selects its parameters.
    spot, spot_confidence : number
        Index price (USD) and its confidence in [0, 1].
    expiries : tuple of SRMExpiry
    perp_position : number
        Signed perp size (coin); ``perp_price`` / ``perp_confidence`` its price feed (needed when non-zero).
    perp_unsettled_cash : number
        Unrealised P&L plus unsettled funding of the perp (USD), the cash it would settle now.
    base_position : number
        Base asset held (coin, >= 0).
    """

    name: str
    spot: Number
    spot_confidence: Number = 1
    expiries: tuple[SRMExpiry, ...] = ()
    perp_position: Number = 0
    perp_price: Number | None = None
    perp_confidence: Number = 1
    perp_unsettled_cash: Number = 0
    base_position: Number = 0


@dataclass(frozen=True)
class SRMPortfolio:
    """An account: cash (USD, may be negative), the stable (USDC) price and its markets."""

    cash: Number
    markets: tuple[SRMMarket, ...]
    stable_price: Number = 1


@dataclass(frozen=True)
class SRMExpiryResult:
    """Figures of one expiry of a market (USD, exchange sign), in the order of ``SRMMarket.expiries``.

    ``isolated_*``: sum of the isolated margins; ``bounded_*``: the max-loss margin (with the unpaired-call
    term); ``margin_*``: the larger of the two; ``oracle_im``: the expiry's oracle contingency.
    """

    seconds_to_expiry: float
    isolated_im: float
    isolated_mm: float
    bounded_im: float
    bounded_mm: float
    margin_im: float
    margin_mm: float
    mtm: float
    oracle_im: float


@dataclass(frozen=True)
class SRMMarketResult:
    """Figures of one market (USD, exchange sign: negative = requirement), IM and MM.

    ``option_*``: the option margin (sum over expiries of max(isolated, max-loss)), ``isolated_*`` and
    ``bounded_*`` its two candidates summed over expiries; ``perp_*`` the perp requirement; ``base_*`` the
    base-asset margin (without contingency); ``oracle_im`` the oracle contingencies; ``depeg_im`` the depeg
    add-on; ``unsettled_pnl`` / ``unsettled_funding`` when given apart (else all P&L); ``margin_*`` the total.
    """

    name: str
    option_im: float
    option_mm: float
    isolated_im: float
    isolated_mm: float
    bounded_im: float
    bounded_mm: float
    option_mtm: float
    perp_im: float
    perp_mm: float
    base_im: float
    base_mm: float
    base_mtm: float
    oracle_im: float
    depeg_im: float
    perp_unsettled_cash: float
    margin_im: float
    margin_mm: float
    mtm: float
    expiries: tuple[SRMExpiryResult, ...] = ()


@dataclass(frozen=True)
class SRMResult:
    """Result of :func:`derive_srm_margin`: account figures (USD, exchange sign) and per-market detail.

    ``im_wad`` / ``mm_wad`` / ``mtm_wad`` are the exact 18-decimal integers (``im = im_wad / 1e18``);
    ``trunc_im`` / ``trunc_mm`` their integer part toward zero (the exchange's test assertions).
    """

    im: float
    mm: float
    mtm: float
    cash: float
    markets: tuple[SRMMarketResult, ...]
    im_wad: int
    mm_wad: int
    mtm_wad: int

    @property
    def trunc_im(self) -> int:
        """IM in whole USD truncated toward zero (Solidity ``im / 1e18``)."""
        return _trunc(Fraction(self.im_wad, UNIT))

    @property
    def trunc_mm(self) -> int:
        """MM in whole USD truncated toward zero."""
        return _trunc(Fraction(self.mm_wad, UNIT))


# -------------------------------------------------------------------------------------------- the rule
def _mark(amount: int, forward: int, strike: int, seconds: int, vol: int, is_call: bool) -> int:
    """Black-76 value of ``amount`` options, undiscounted (the contract's ``_getMarkToMarket``)."""
    t = max(seconds, 0) / UNIT / SECONDS_PER_YEAR
    price = float(black76_price(bool(is_call), _f(forward), _f(strike), t, _f(vol)))
    if not math.isfinite(price):
        raise InputError(f"option K={_f(strike):g}: Black-76 price is not finite")
    return _mul(to_wad(price), amount)


def _settlement_value(strike: int, balance: int, price: int, is_call: bool) -> int:
    diff = price - strike
    if is_call and diff > 0:
        return _mul(diff, balance)
    if not is_call and diff < 0:
        return -_mul(diff, balance)
    return 0


def _max_loss(options: Sequence[tuple[int, bool, int, int]], price: int) -> int:
    return min(sum(_settlement_value(k, a, price, c) for k, c, a, _v in options), 0)


def _unpaired(po: dict[str, int], fwd: int, net_calls: int, initial: bool) -> int:
    """``unpaired{IM,MM}Scale x F x netCalls`` when the expiry is net short calls, else 0."""
    if net_calls >= 0:
        return 0
    return _mul(_mul(po["unpaired_im_scale"] if initial else po["unpaired_mm_scale"], fwd), net_calls)


def bounded_margin(options: Sequence[SRMOption], forward: Number, params: OptionMarginParams,
                   initial: bool, *, cap_at_zero: bool = True) -> float:
    """Max-loss margin of one expiry's options (USD, <= 0): worst settlement payoff plus the unpaired-call term.

    Parameters
    ----------
    options : sequence of SRMOption
        The expiry's options (vols unused).
    forward : number
        The expiry's forward (USD), for the unpaired-call term.
    params : OptionMarginParams
    initial : bool
        IM (``unpairedIMScale``) or MM (``unpairedMMScale``).
    cap_at_zero : bool, default True
        The contract caps each scenario's payoff at 0 (``_calcMaxLoss``); False keeps a positive worst payoff
        (e.g. a long box), as Derive's case generator reports its ``Bounded`` figure.
    """
    opts = [(to_wad(o.strike), bool(o.is_call), to_wad(o.amount), 0) for o in options]
    if cap_at_zero:
        ml = min([_max_loss(opts, 0)] + [_max_loss(opts, k) for k, _c, _a, _v in opts])
    else:
        ml = min(sum(_settlement_value(k, a, px, c) for k, c, a, _v in opts)
                 for px in [0] + [k for k, _c, _a, _v in opts])
    net_calls = sum(a for _k, c, a, _v in opts if c)
    return _f(ml + _unpaired(_wads(params, "option"), to_wad(forward, "forward"), net_calls, initial))


def _im_multiplier(p: dict[str, int], otm: int, spot: int) -> int:
    mult = p["min_spot_req"]
    if p["max_spot_req"] > otm and p["max_spot_req"] - otm > p["min_spot_req"]:
        mult = p["max_spot_req"] - otm
    return _mul(mult, spot)


def _isolated(p: dict[str, int], mtm: int, strike: int, amount: int, is_call: bool, spot: int,
              initial: bool) -> int:
    if amount > 0:
        return 0
    if is_call:
        if not initial:
            return mtm + _mul(_mul(p["mm_call_spot_req"], spot), amount)
        otm = _div(strike - spot, spot) if strike > spot else 0
        return _mul(_im_multiplier(p, otm, spot), amount) + mtm
    mm = min(_mul(_mul(p["mm_put_spot_req"], spot), amount), _mul(p["mm_put_mtm_req"], mtm)) + mtm
    if not initial:
        return mm
    otm = _div(spot - strike, spot) if spot > strike else 0
    return min(_mul(_im_multiplier(p, otm, spot), amount) + mtm, _mul(mm, p["mm_offset_scale"]))


def _wads(obj: Any, where: str) -> dict[str, int]:
    return {k: to_wad(v, f"{where}.{k}") for k, v in vars(obj).items()}


def _conf(x: Number, what: str) -> int:
    w = to_wad(x, what)
    if w < 0 or w > UNIT:
        raise InputError(f"{what}: a confidence must lie in [0, 1], got {x!r}")
    return w


def _market(m: SRMMarket, mp: SRMMarketParams, stable: int, depeg_mult: dict[bool, int],
            ) -> tuple[SRMMarketResult, dict[bool, int], int]:
    where = f"market {m.name}"
    spot = to_wad(m.spot, f"{where}.spot")
    if spot <= 0:
        raise InputError(f"{where}: spot must be > 0, got {m.spot!r}")
    spot_conf = _conf(m.spot_confidence, f"{where}.spot_confidence")
    po, pp, oc, pb = (_wads(mp.option, "option"), _wads(mp.perp, "perp"), _wads(mp.oracle, "oracle"),
                      _wads(mp.base, "base"))
    out: dict[str, dict[bool, int]] = {k: {True: 0, False: 0} for k in
                                       ("option", "isolated", "bounded", "perp", "base", "oracle", "depeg")}
    option_mtm = 0
    short_total = 0
    per_expiry: list[SRMExpiryResult] = []
    # ---- options, per expiry
    for j, e in enumerate(m.expiries):
        ew = f"{where}.expiries[{j}]"
        fwd = to_wad(e.forward, f"{ew}.forward")
        if fwd <= 0:
            raise InputError(f"{ew}: no forward price (the contract reverts: SRM_NoForwardPrice)")
        seconds = to_wad(e.seconds_to_expiry, f"{ew}.seconds_to_expiry")
        local_conf = min(spot_conf, _conf(e.forward_confidence, f"{ew}.forward_confidence"),
                         _conf(e.vol_confidence, f"{ew}.vol_confidence"))
        opts = []
        for i, o in enumerate(e.options):
            ow = f"{ew}.options[{i}]"
            k = to_wad(o.strike, f"{ow}.strike")
            if k < 0:
                raise InputError(f"{ow}: strike must be >= 0")
            vol = to_wad(o.vol, f"{ow}.vol")
            if vol < 0:
                raise InputError(f"{ow}: vol must be >= 0")
            opts.append((k, bool(o.is_call), to_wad(o.amount, f"{ow}.amount"), vol))
        net_calls = sum(a for _k, c, a, _v in opts if c)
        shorts = sum(-a for _k, _c, a, _v in opts if a < 0)
        short_total += shorts
        iso = {True: 0, False: 0}
        expiry_mtm = 0
        max_loss = _max_loss(opts, 0)
        for k, c, a, v in opts:
            mtm = _mark(a, fwd, k, seconds, v, c)
            expiry_mtm += mtm
            for initial in (True, False):
                iso[initial] += _isolated(po, mtm, k, a, c, spot, initial)
            max_loss = min(_max_loss(opts, k), max_loss)
        option_mtm += expiry_mtm
        bounded = {}
        for initial in (True, False):
            bounded[initial] = max_loss + _unpaired(po, fwd, net_calls, initial)
            out["isolated"][initial] += iso[initial]
            out["bounded"][initial] += bounded[initial]
            out["option"][initial] += max(iso[initial], bounded[initial])
        oracle = 0
        if oc["option_threshold"] != 0 and local_conf < oc["option_threshold"]:
            oracle = -_mul(_mul(_mul(UNIT - local_conf, oc["oc_factor"]), spot), shorts)
            out["oracle"][True] += oracle
        per_expiry.append(SRMExpiryResult(
            _f(seconds), _f(iso[True]), _f(iso[False]), _f(bounded[True]), _f(bounded[False]),
            _f(max(iso[True], bounded[True])), _f(max(iso[False], bounded[False])), _f(expiry_mtm), _f(oracle)))
    # ---- perp
    perp_pos = to_wad(m.perp_position, f"{where}.perp_position")
    unsettled = to_wad(m.perp_unsettled_cash, f"{where}.perp_unsettled_cash") if perp_pos != 0 else 0
    if perp_pos != 0:
        if m.perp_price is None:
            raise InputError(f"{where}: a perp position needs perp_price")
        perp_price = to_wad(m.perp_price, f"{where}.perp_price")
        perp_conf = _conf(m.perp_confidence, f"{where}.perp_confidence")
        notional = _mul(abs(perp_pos), perp_price)
        out["perp"][True] = -_mul(notional, pp["im_perp_req"])
        out["perp"][False] = -_mul(notional, pp["mm_perp_req"])
        min_conf = min(perp_conf, spot_conf)
        if oc["perp_threshold"] != 0 and min_conf < oc["perp_threshold"]:
            out["oracle"][True] -= _mul(_mul(_mul(UNIT - min_conf, oc["oc_factor"]), spot), abs(perp_pos))
    # ---- depeg (IM only): |perp| + short options
    penalty_pos = abs(perp_pos) + short_total
    if depeg_mult[True] != 0:
        out["depeg"][True] = -_mul(_mul(penalty_pos, depeg_mult[True]), spot)
    # ---- base asset
    base_pos = to_wad(m.base_position, f"{where}.base_position")
    if base_pos < 0:
        raise InputError(f"{where}: base_position must be >= 0 (a base asset balance cannot be negative)")
    base_mtm = 0
    if base_pos != 0:
        notional = _mul(base_pos, spot)
        base_mm = _mul(notional, pb["margin_factor"])
        base_mtm = _div(notional, stable)
        base_im = _mul(base_mm, pb["im_scale"])
        out["base"][False], out["base"][True] = base_mm, base_im
        if base_im != 0 and oc["base_threshold"] != 0 and spot_conf < oc["base_threshold"]:
            out["oracle"][True] -= _mul(_mul(UNIT - spot_conf, oc["oc_factor"]), notional)
    total = {i: (out["option"][i] + out["perp"][i] + out["base"][i] + out["oracle"][i] + out["depeg"][i]
                 + unsettled) for i in (True, False)}
    mtm = option_mtm + unsettled + base_mtm
    res = SRMMarketResult(
        m.name, _f(out["option"][True]), _f(out["option"][False]), _f(out["isolated"][True]),
        _f(out["isolated"][False]), _f(out["bounded"][True]), _f(out["bounded"][False]), _f(option_mtm),
        _f(out["perp"][True]), _f(out["perp"][False]), _f(out["base"][True]), _f(out["base"][False]),
        _f(base_mtm), _f(out["oracle"][True]), _f(out["depeg"][True]), _f(unsettled), _f(total[True]),
        _f(total[False]), _f(mtm), tuple(per_expiry))
    return res, total, mtm


def derive_srm_margin(portfolio: SRMPortfolio, params: SRMParams) -> SRMResult:
    """Initial and maintenance margin of an account under Derive's standard manager.

    Parameters
    ----------
    portfolio : SRMPortfolio
        Cash, stable price and the markets (options per expiry, perp, base asset, feeds).
    params : SRMParams
        The manager's parameters (checked against the contract's setter bounds, :func:`check_params`).

    Returns
    -------
    SRMResult
        ``im``, ``mm``, ``mtm`` in USD, exchange sign (margin = collateral - requirement, negative = shortfall).

    Raises
    ------
    InputError
        A parameter outside the contract's range, a missing forward or perp price, a confidence outside
        [0, 1], a negative base balance; the message names the market and the field.
    """
    check_params(params)
    names = [m.name.lower() for m in portfolio.markets]
    if len(set(names)) != len(names):
        raise InputError(f"a market appears twice: {', '.join(m.name for m in portfolio.markets)}")
    cash = to_wad(portfolio.cash, "cash")
    stable = to_wad(portfolio.stable_price, "stable_price")
    if stable <= 0:
        raise InputError(f"stable_price must be > 0, got {portfolio.stable_price!r}")
    thr = to_wad(params.depeg.threshold, "depeg.threshold")
    fac = to_wad(params.depeg.depeg_factor, "depeg.depeg_factor")
    depeg_mult = {True: _mul(thr - stable, fac) if stable < thr else 0, False: 0}
    results = []
    im, mm, mtm = cash, cash, cash
    for m in portfolio.markets:
        res, total, m_mtm = _market(m, params.for_market(m.name), stable, depeg_mult)
        results.append(res)
        im += total[True]
        mm += total[False]
        mtm += m_mtm
    return SRMResult(_f(im), _f(mm), _f(mtm), _f(cash), tuple(results), im, mm, mtm)


# ------------------------------------------------------------------------------ parameters from a mapping
#: the exchange's names of each group (config-test.sol / IStandardManager structs) -> dataclass field
GROUP_KEYS: dict[str, tuple[type, dict[str, str]]] = {
    "option": (OptionMarginParams, {
        "maxSpotReq": "max_spot_req", "minSpotReq": "min_spot_req", "mmCallSpotReq": "mm_call_spot_req",
        "mmPutSpotReq": "mm_put_spot_req", "MMPutMtMReq": "mm_put_mtm_req",
        "unpairedIMScale": "unpaired_im_scale", "unpairedMMScale": "unpaired_mm_scale",
        "mmOffsetScale": "mm_offset_scale"}),
    "perp_margin": (PerpMarginParams, {"mmPerpReq": "mm_perp_req", "imPerpReq": "im_perp_req"}),
    "oracle_contingency": (OracleContingencyParams, {
        "perpThreshold": "perp_threshold", "optionThreshold": "option_threshold",
        "baseThreshold": "base_threshold", "OCFactor": "oc_factor"}),
    "base_asset_margin_factor": (BaseMarginParams, {"marginFactor": "margin_factor",
                                                    "initialMarginMultiplier": "im_scale"}),
    "depeg": (DepegParams, {"threshold": "threshold", "depegFactor": "depeg_factor"}),
}
MARKET_GROUPS = ("option", "perp_margin", "oracle_contingency", "base_asset_margin_factor")


def _group(raw: Any, group: str, where: str) -> Any:
    cls, names = GROUP_KEYS[group]
    if not isinstance(raw, Mapping):
        raise InputError(f"{where}: expected an object, got {type(raw).__name__}", column=where)
    unknown = [k for k in raw if k not in names]
    if unknown:
        raise InputError(f"{where}: unknown key '{unknown[0]}' (known: {', '.join(names)})",
                         column=f"{where}.{unknown[0]}")
    missing = [k for k in names if k not in raw]
    if missing:
        raise InputError(f"{where}: missing key '{missing[0]}'", column=f"{where}.{missing[0]}")
    vals = {}
    for k, attr in names.items():
        v = raw[k]
        if isinstance(v, bool) or not isinstance(v, (int, float, Fraction, Decimal)):
            raise InputError(f"{where}.{k}: expected a number, got {v!r}", column=f"{where}.{k}")
        vals[attr] = v
    return cls(**vals)


def params_from_dict(raw: Any, path: str = "parameters") -> SRMParams:
    """SRMParams from the case layout (the exchange's names), also the tables of ``models/derive-srm.toml``.

    Parameters
    ----------
    raw : Mapping
        Groups ``option`` {maxSpotReq, minSpotReq, mmCallSpotReq, mmPutSpotReq, MMPutMtMReq, unpairedIMScale,
        unpairedMMScale, mmOffsetScale}, ``perp_margin`` {mmPerpReq, imPerpReq}, ``oracle_contingency``
        {perpThreshold, optionThreshold, baseThreshold, OCFactor}, ``base_asset_margin_factor`` {marginFactor,
        initialMarginMultiplier}, ``depeg`` {threshold, depegFactor}; optional ``markets`` {NAME: {any of the
        four market groups}} overriding the defaults for one market.

    Raises
    ------
    InputError
        An unknown or missing group or key, a non-number, a value outside the contract's setter bounds; the
        message names the dotted key.
    """
    if not isinstance(raw, Mapping):
        raise InputError(f"{path}: expected an object, got {type(raw).__name__}", column=path)
    known = (*MARKET_GROUPS, "depeg", "markets")
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise InputError(f"{path}: unknown key '{unknown[0]}' (known: {', '.join(known)})",
                         column=f"{path}.{unknown[0]}")
    missing = [k for k in (*MARKET_GROUPS, "depeg") if k not in raw]
    if missing:
        raise InputError(f"{path}: missing key '{missing[0]}'", column=f"{path}.{missing[0]}")
    groups = {g: _group(raw[g], g, f"{path}.{g}") for g in MARKET_GROUPS}
    default = SRMMarketParams(groups["option"], groups["perp_margin"], groups["oracle_contingency"],
                              groups["base_asset_margin_factor"])
    markets: dict[str, SRMMarketParams] = {}
    mraw = raw.get("markets", {})
    if not isinstance(mraw, Mapping):
        raise InputError(f"{path}.markets: expected an object of market tables", column=f"{path}.markets")
    for name, over in mraw.items():
        where = f"{path}.markets.{name}"
        if not isinstance(over, Mapping):
            raise InputError(f"{where}: expected an object", column=where)
        bad = [k for k in over if k not in MARKET_GROUPS]
        if bad:
            raise InputError(f"{where}: unknown key '{bad[0]}' (known: {', '.join(MARKET_GROUPS)})",
                             column=f"{where}.{bad[0]}")
        g = {k: _group(over[k], k, f"{where}.{k}") if k in over else groups[k] for k in MARKET_GROUPS}
        markets[str(name)] = SRMMarketParams(g["option"], g["perp_margin"], g["oracle_contingency"],
                                             g["base_asset_margin_factor"])
    params = SRMParams(default, _group(raw["depeg"], "depeg", f"{path}.depeg"), markets)
    check_params(params)
    return params
