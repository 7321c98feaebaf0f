"""Strategy-based (Reg T) margin: Cboe Margin Manual / FINRA Rule 4210(f)(2), with optimal leg pairing.

A book of one underlying (options and stock) is decomposed into the strategies the rules recognise and each
strategy is charged its requirement (model file ``models/cboe-strategy.toml``, rates as parameters):

- long option: the premium paid in full; more than ``long_term_days`` (270, 9 months) to expiry:
  ``long_term_rate`` of it;
- naked short option: proceeds + rate x underlying value x leverage factor - out-of-the-money amount, to a
  minimum of proceeds + 10% x leverage factor of the underlying value (calls) or of the exercise price (puts);
  rate 20% (equity, narrow-based index, volatility) or 15% (broad-based index); per-share amounts rounded to the
  cent, half to even;
- straddle / strangle (a short call with a short put): the greater of the two short requirements plus the
  proceeds of the other side;
- spread pairs: a short option with a long option of the same type expiring at or after it. All pairs of an
  underlying form one spread group charged its maximum potential loss at expiry (intrinsic values evaluated at
  every strike: the group's payoff is flat beyond the outer strikes) plus its long legs' cost, paid in full; the
  short legs' proceeds are applied (cash account and ``deposit_excl_proceeds``: net debit + maximum loss, floored
  at zero): verticals (debit: the long's cost; credit: width x multiplier plus the long's cost), calendars,
  diagonals, butterflies, condors, iron condors, boxes;
- covered call (put): a short call (put) covered by ``shares_per_contract`` long (short) shares: no
  requirement on the option; collars / conversions are a covered call plus a long put, reversals a covered put
  plus a long call;
- stock: long ``stock_long_rate`` of its value (cash account: 100%); short the proceeds plus ``stock_short_rate``
  of its value (Regulation T 150%; no cash-account figure: a short sale is not permitted in a cash account).
  Maintenance (FINRA Rule 4210(c)): long ``stock_maint_long_rate`` (25%) of the value; short the proceeds plus
  ``stock_maint_short_rate`` (30%) of the value, at least ``stock_maint_short_min_per_share`` ($5) a share; below
  ``stock_maint_low_price`` ($5) a share: the proceeds plus the greater of 100% of the value and $2.50 a share.
  Options: maintenance = initial (the Cboe Margin Manual gives one requirement for both).

Proceeds convention (one for the whole account): every requirement figure INCLUDES the proceeds of the short
sales it covers (Cboe Margin Manual: "100% of the option proceeds plus ...", Regulation T: short stock 150% of its
value, the 100% being the proceeds) and the cost of the long options, which are paid in full
(``margin_requirement``). The parts are explicit: ``short_proceeds`` (option premiums received and short-stock
sale value), ``long_premium`` (the long options' cost within the requirement), ``deposit_excl_proceeds`` =
requirement - proceeds (the money the customer brings: "proceeds may be applied to the requirement") and
``margin_excl_long_premium`` = requirement - long premium (the figure brokers that debit option purchases to cash
call "margin"). A spread group's requirement is its maximum loss at expiry plus its long legs' cost; a covered
call / put's short option adds nothing (its proceeds are applied to the stock's requirement).

Two decompositions: :func:`decompose_optimal`, an exact integer program (``scipy.optimize.milp``, HiGHS, zero
gap) over every admissible pairing, which minimises the total margin requirement (then, among equal margins,
the cash requirement); and :func:`decompose_greedy`, the usual broker heuristic (stock covers short calls/puts,
then each short, nearest expiry and lowest strike first, takes the first admissible long, then the remaining
short calls and puts are paired into strangles in order). The greedy decomposition is one feasible point of
the integer program, so the optimal requirement is never above it.

All figures are USD; quantities are contracts (options, signed, + long) or shares (stock, signed).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import numpy as np

from greeksmargin.errors import ComputationError, InputError, ModelError

#: index types (case files spell them ``equity``, ``broad`` / ``broad_index``, ``narrow`` / ``narrow_index``,
#: ``volatility``) -> the rate parameter that applies
INDEX_TYPES: dict[str, str] = {
    "equity": "rate_equity",
    "stock": "rate_equity",
    "etf": "rate_equity",
    "broad": "rate_broad_index",
    "broad_index": "rate_broad_index",
    "broad-based": "rate_broad_index",
    "narrow": "rate_narrow_index",
    "narrow_index": "rate_narrow_index",
    "narrow-based": "rate_narrow_index",
    "volatility": "rate_volatility",
}

_PARAM_KEYS = (
    "multiplier", "shares_per_contract", "rate_equity", "rate_narrow_index", "rate_volatility", "rate_broad_index",
    "min_rate_call", "min_rate_put", "long_term_days", "long_term_rate", "stock_long_rate", "stock_short_rate",
    "round_to", "stock_maint_long_rate", "stock_maint_short_rate", "stock_maint_short_min_per_share",
    "stock_maint_low_price", "stock_maint_low_price_min_per_share",
)

ZERO = Decimal(0)


def dec(x: Any) -> Decimal:
    """Exact decimal of a number as written (``433.35`` -> ``Decimal('433.35')``, not its binary expansion)."""
    if isinstance(x, Decimal):
        return x
    if isinstance(x, (int, np.integer)):
        return Decimal(int(x))
    return Decimal(repr(float(x)))


@dataclass(frozen=True)
class StrategyParams:
    """Rates of the strategy-based rules (see ``models/cboe-strategy.toml`` for each one's source)."""

    multiplier: Decimal = Decimal(100)
    shares_per_contract: Decimal = Decimal(100)
    rate_equity: Decimal = Decimal("0.20")
    rate_narrow_index: Decimal = Decimal("0.20")
    rate_volatility: Decimal = Decimal("0.20")
    rate_broad_index: Decimal = Decimal("0.15")
    min_rate_call: Decimal = Decimal("0.10")
    min_rate_put: Decimal = Decimal("0.10")
    long_term_days: Decimal = Decimal(270)
    long_term_rate: Decimal = Decimal("0.75")
    stock_long_rate: Decimal = Decimal("0.50")
    stock_short_rate: Decimal = Decimal("0.50")
    round_to: Decimal = Decimal("0.01")
    stock_maint_long_rate: Decimal = Decimal("0.25")
    stock_maint_short_rate: Decimal = Decimal("0.30")
    stock_maint_short_min_per_share: Decimal = Decimal(5)
    stock_maint_low_price: Decimal = Decimal(5)
    stock_maint_low_price_min_per_share: Decimal = Decimal("2.5")


def parse_strategy_params(source: Mapping[str, Any] | StrategyParams, file: str = "<dict>") -> StrategyParams:
    """Parameters of a strategy-margin model from its parsed document.

    A shipped model name or a TOML path is read by ``greeksmargin.engine.params_files.load_strategy_params``;
    this module reads no file.

    Parameters
    ----------
    source : mapping or StrategyParams
        The parsed document (its ``[parameters]`` table) or parameters (returned as is).
    file : str, default "<dict>"
        Named in errors.

    Returns
    -------
    StrategyParams

    Raises
    ------
    ModelError
        Missing ``[parameters]``, unknown key, or a non-positive / non-numeric rate (the message names the key
        and the file).
    InputError
        ``source`` is neither a mapping nor StrategyParams (a name or a path: read it with
        ``greeksmargin.engine.params_files.load_strategy_params``).
    """
    if isinstance(source, StrategyParams):
        return source
    if not isinstance(source, Mapping):
        raise InputError(f"strategy parameters must be StrategyParams or a parsed model document, got "
                         f"{type(source).__name__} (read a model name or a file with "
                         f"greeksmargin.engine.params_files.load_strategy_params)", column="params")
    raw = dict(source)
    table = raw.get("parameters")
    if not isinstance(table, Mapping):
        raise ModelError("missing table [parameters]", file=file, key="parameters")
    values: dict[str, Decimal] = {}
    for key, v in table.items():
        if key not in _PARAM_KEYS:
            raise ModelError(f"unknown parameter (known: {', '.join(_PARAM_KEYS)})", file=file,
                             key=f"parameters.{key}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ModelError(f"must be a non-negative number, got {v!r}", file=file, key=f"parameters.{key}")
        values[key] = dec(v)
    for key in ("multiplier", "shares_per_contract", "round_to"):
        if key in values and values[key] <= 0:
            raise ModelError("must be positive", file=file, key=f"parameters.{key}")
    return StrategyParams(**values)


@dataclass(frozen=True)
class Underlying:
    """One underlying: its price (USD per share / index unit), index type and leveraged-ETF factor."""

    price: Decimal
    index_type: str = "equity"
    leverage_factor: Decimal = Decimal(1)

    @staticmethod
    def of(price: Any, index_type: str = "equity", leverage_factor: Any = 1) -> Underlying:
        """Checked underlying from plain numbers (errors name the field)."""
        p, lev = dec(price), dec(leverage_factor)
        if not p.is_finite() or p <= 0:
            raise InputError(f"underlying price must be positive, got {price!r}", column="price")
        if not lev.is_finite() or lev <= 0:
            raise InputError(f"leverage_factor must be positive, got {leverage_factor!r}", column="leverage_factor")
        kind = str(index_type).strip().lower()
        if kind not in INDEX_TYPES:
            raise InputError(f"unknown index_type {index_type!r} (known: {', '.join(INDEX_TYPES)})",
                             column="index_type")
        return Underlying(p, kind, lev)


@dataclass(frozen=True)
class Leg:
    """One position of an underlying.

    ``kind`` is ``"option"`` (then ``option_type`` call|put, ``strike``, ``premium`` per share, ``quantity`` in
    signed contracts, ``days_to_expiry``) or ``"stock"`` (``quantity`` signed shares, ``premium`` = price per
    share).
    """

    kind: str
    quantity: int
    premium: Decimal
    option_type: str | None = None
    strike: Decimal | None = None
    days_to_expiry: Decimal = ZERO

    @property
    def is_call(self) -> bool:
        """Whether the leg is a call option."""
        return self.option_type == "call"

    @staticmethod
    def option(option_type: str, strike: Any, premium: Any, quantity: Any, days_to_expiry: Any = 0) -> Leg:
        """Checked option leg (errors name the field)."""
        ot = str(option_type).strip().lower()
        if ot in ("c", "p"):
            ot = {"c": "call", "p": "put"}[ot]
        if ot not in ("call", "put"):
            raise InputError(f"option_type must be call or put, got {option_type!r}", column="option_type")
        k, prem, dte = dec(strike), dec(premium), dec(days_to_expiry)
        if not k.is_finite() or k <= 0:
            raise InputError(f"strike must be positive, got {strike!r}", column="strike")
        if not prem.is_finite() or prem < 0:
            raise InputError(f"premium must be >= 0, got {premium!r}", column="premium")
        if not dte.is_finite() or dte < 0:
            raise InputError(f"days_to_expiry must be >= 0, got {days_to_expiry!r}", column="days_to_expiry")
        return Leg("option", _int_quantity(quantity), prem, ot, k, dte)

    @staticmethod
    def stock(quantity: Any, price: Any) -> Leg:
        """Checked stock leg: signed shares at ``price`` per share."""
        p = dec(price)
        if not p.is_finite() or p <= 0:
            raise InputError(f"stock price must be positive, got {price!r}", column="price")
        return Leg("stock", _int_quantity(quantity), p)


def _int_quantity(q: Any) -> int:
    try:
        f = float(q)
    except (TypeError, ValueError):
        raise InputError(f"quantity must be a number, got {q!r}", column="quantity") from None
    if not np.isfinite(f) or f != round(f):
        raise InputError(f"quantity must be a whole number of contracts or shares, got {q!r}", column="quantity")
    return int(round(f))


# ============================================================================== per-strategy requirements
def _round(x: Decimal, params: StrategyParams) -> Decimal:
    return x.quantize(params.round_to, rounding=ROUND_HALF_EVEN)


def long_option_requirement(leg: Leg, params: StrategyParams) -> tuple[Decimal, Decimal]:
    """(margin, cash) of one long option contract, USD.

    The premium; more than ``long_term_days`` to expiry: ``long_term_rate`` of it (cash: always the premium).
    """
    cash = leg.premium * params.multiplier
    if leg.days_to_expiry > params.long_term_days:
        return _round(leg.premium * params.long_term_rate, params) * params.multiplier, cash
    return cash, cash


def naked_short_requirement(leg: Leg, und: Underlying, params: StrategyParams) -> tuple[Decimal, Decimal]:
    """(margin, cash) of one naked short option contract, USD (FINRA 4210(f)(2)(D), Cboe Margin Manual).

    Margin: ``max(premium + rate x S x lev - OTM, premium + min_rate x base x lev)`` per share (each rounded to
    the cent), base = S for calls, the strike for puts; times the multiplier. Cash: puts and broad-based index
    calls the exercise price less the premium, other calls the underlying value less the premium.
    """
    assert leg.strike is not None
    rate = getattr(params, INDEX_TYPES[und.index_type])
    s, k, p, lev = und.price, leg.strike, leg.premium, und.leverage_factor
    if leg.is_call:
        otm = max(ZERO, k - s)
        minimum = p + params.min_rate_call * s * lev
        cash = (k - p) if INDEX_TYPES[und.index_type] == "rate_broad_index" else (s - p)
    else:
        otm = max(ZERO, s - k)
        minimum = p + params.min_rate_put * k * lev
        cash = k - p
    base = p + rate * s * lev - otm
    margin = max(_round(base, params), _round(minimum, params))
    return margin * params.multiplier, cash * params.multiplier


def strangle_requirement(call: Leg, put: Leg, und: Underlying, params: StrategyParams) -> tuple[Decimal, Decimal]:
    """(margin, cash) of one short call + one short put (straddle / strangle), USD.

    Margin: the greater short requirement plus the other side's proceeds; cash: both sides' cash requirements.
    """
    mc, cc = naked_short_requirement(call, und, params)
    mp, cp = naked_short_requirement(put, und, params)
    if mc > mp:
        margin = mc + put.premium * params.multiplier
    else:
        margin = mp + call.premium * params.multiplier
    return margin, cc + cp


def intrinsic(leg: Leg, s: Decimal) -> Decimal:
    """Intrinsic value per share of an option leg at underlying price ``s``."""
    assert leg.strike is not None
    return max(ZERO, s - leg.strike) if leg.is_call else max(ZERO, leg.strike - s)


def spread_group_requirement(pairs: Sequence[tuple[Leg, Leg, int]], params: StrategyParams) -> Decimal:
    """Margin (= cash) of a spread group, USD: net debit + maximum potential loss at expiry, floored at 0.

    Parameters
    ----------
    pairs : sequence of (short leg, long leg, units)
        Each unit pairs one short contract with one long contract of the same type expiring at or after it.
    """
    if not pairs:
        return ZERO
    m = params.multiplier
    debit = sum(((lg.premium - sh.premium) * m * n for sh, lg, n in pairs), ZERO)
    strikes = sorted({leg.strike for sh, lg, _ in pairs for leg in (sh, lg) if leg.strike is not None})
    worst = min(sum(((intrinsic(lg, k) - intrinsic(sh, k)) * m * n for sh, lg, n in pairs), ZERO) for k in strikes)
    return max(ZERO, debit + max(ZERO, -worst))


def spread_group_max_loss(pairs: Sequence[tuple[Leg, Leg, int]], params: StrategyParams) -> Decimal:
    """Maximum potential loss at expiry of a spread group, USD (>= 0; the premiums do not enter).

    The group's payoff (intrinsic values; a long expiring later is counted at its intrinsic value) is evaluated
    at every strike; beyond the outer strikes it is flat.
    """
    if not pairs:
        return ZERO
    m = params.multiplier
    strikes = sorted({leg.strike for sh, lg, _ in pairs for leg in (sh, lg) if leg.strike is not None})
    worst = min(sum(((intrinsic(lg, k) - intrinsic(sh, k)) * m * n for sh, lg, n in pairs), ZERO) for k in strikes)
    return max(ZERO, -worst)


def stock_requirement(leg: Leg, params: StrategyParams) -> tuple[Decimal, Decimal | None]:
    """(margin, cash or None) of a stock leg, USD, proceeds included (module docstring).

    Long: ``stock_long_rate`` (cash 100%) of its value; short: the proceeds plus ``stock_short_rate`` of the value
    (Regulation T 150%) and no cash-account figure (None).
    """
    value = leg.premium * abs(leg.quantity)
    if leg.quantity >= 0:
        return value * params.stock_long_rate, value
    return value + value * params.stock_short_rate, None


def stock_maintenance(leg: Leg, params: StrategyParams) -> Decimal:
    """FINRA Rule 4210(c) maintenance requirement of a stock leg, USD, proceeds included.

    Long: ``stock_maint_long_rate`` (25%) of the value. Short: the proceeds plus the greater of
    ``stock_maint_short_rate`` (30%) of the value and ``stock_maint_short_min_per_share`` ($5) a share; at a price
    below ``stock_maint_low_price`` ($5): the proceeds plus the greater of 100% of the value and
    ``stock_maint_low_price_min_per_share`` ($2.50) a share.
    """
    shares = Decimal(abs(leg.quantity))
    value = leg.premium * shares
    if leg.quantity >= 0:
        return value * params.stock_maint_long_rate
    if leg.premium < params.stock_maint_low_price:
        return value + max(value, params.stock_maint_low_price_min_per_share * shares)
    return value + max(value * params.stock_maint_short_rate, params.stock_maint_short_min_per_share * shares)


def pair_admissible(short: Leg, long: Leg) -> bool:
    """Whether a long option covers a short one in a spread: same type, expiring at or after it."""
    return short.option_type == long.option_type and long.days_to_expiry >= short.days_to_expiry


# ================================================================================== decomposition
@dataclass
class Decomposition:
    """Strategies of one underlying's book: integer units per admissible combination (indices into ``legs``)."""

    pairs: dict[tuple[int, int], int] = field(default_factory=dict)  # (short, long) -> units
    strangles: dict[tuple[int, int], int] = field(default_factory=dict)  # (short call, short put) -> units
    covered: dict[int, int] = field(default_factory=dict)  # short option -> contracts covered by stock
    naked: dict[int, int] = field(default_factory=dict)  # short option -> contracts
    longs: dict[int, int] = field(default_factory=dict)  # long option -> contracts


@dataclass
class StrategyLine:
    """One recognised strategy: name, leg indices, units, margin and cash (USD; cash None when not permitted).

    ``margin`` includes the proceeds of the line's short sales (``proceeds``) and the cost of its long options
    (``long_premium``); ``maintenance`` is the maintenance requirement in the same convention (None: = margin).
    """

    strategy: str
    legs: tuple[int, ...]
    units: int
    margin: Decimal
    cash: Decimal | None
    proceeds: Decimal = ZERO
    long_premium: Decimal = ZERO
    maintenance: Decimal | None = None


@dataclass
class StrategyResult:
    """Requirement of one underlying's book under the strategy rules.

    Attributes
    ----------
    margin_requirement : Decimal
        Margin-account (initial) requirement, USD, proceeds of short sales and cost of long options included.
    cash_requirement : Decimal or None
        Cash-account requirement, USD; None (with ``cash_reason``) when a cash account cannot hold the book.
    lines : list of StrategyLine
        The decomposition, one line per strategy.
    method : str
        ``"optimal"`` or ``"greedy"``.
    """

    margin_requirement: Decimal
    cash_requirement: Decimal | None
    lines: list[StrategyLine]
    method: str
    cash_reason: str | None = None

    @property
    def short_proceeds(self) -> Decimal:
        """Proceeds of the short sales (option premiums received, short-stock sale value), USD."""
        return sum((ln.proceeds for ln in self.lines), ZERO)

    @property
    def long_premium(self) -> Decimal:
        """Cost of the long options within the requirement (paid in full; 75% when long-term), USD."""
        return sum((ln.long_premium for ln in self.lines), ZERO)

    @property
    def maintenance_requirement(self) -> Decimal:
        """Maintenance requirement (FINRA 4210(c) on stock; options as initial), USD, proceeds included."""
        return sum((ln.margin if ln.maintenance is None else ln.maintenance for ln in self.lines), ZERO)

    @property
    def deposit_excl_proceeds(self) -> Decimal:
        """Initial requirement less the proceeds of the short sales (what the customer brings), USD."""
        return self.margin_requirement - self.short_proceeds

    @property
    def margin_excl_long_premium(self) -> Decimal:
        """Initial requirement less the cost of the long options (paid in cash), USD."""
        return self.margin_requirement - self.long_premium

    @property
    def maintenance_excl_long_premium(self) -> Decimal:
        """Maintenance requirement less the cost of the long options, USD."""
        return self.maintenance_requirement - self.long_premium

    def spread_proceeds_applied(self) -> Decimal:
        """The requirement with each spread group's short proceeds applied to it (the group's deposit), USD.

        The convention of the public margin-estimator suite (tastyware/margin-estimator): a spread group is
        charged its net debit plus its maximum loss (floored at zero), every other strategy its requirement
        including its proceeds. Differs from :attr:`margin_requirement` by the proceeds of the shorts paired in
        spreads.
        """
        return sum(((ln.cash or ZERO) if ln.strategy.startswith("spread_group") else ln.margin
                    for ln in self.lines), ZERO)


def _option_indices(legs: Sequence[Leg]) -> tuple[list[int], list[int]]:
    shorts = [i for i, lg in enumerate(legs) if lg.kind == "option" and lg.quantity < 0]
    longs = [i for i, lg in enumerate(legs) if lg.kind == "option" and lg.quantity > 0]
    return shorts, longs


def _stock_shares(legs: Sequence[Leg]) -> tuple[int, int]:
    long_sh = sum(lg.quantity for lg in legs if lg.kind == "stock" and lg.quantity > 0)
    short_sh = -sum(lg.quantity for lg in legs if lg.kind == "stock" and lg.quantity < 0)
    return long_sh, short_sh


def _sort_key(leg: Leg) -> tuple[Decimal, Decimal, str]:
    return (leg.days_to_expiry, leg.strike or ZERO, leg.option_type or "")


def decompose_greedy(legs: Sequence[Leg], params: StrategyParams) -> Decomposition:
    """Decomposition by the usual broker heuristic (module docstring).

    Stock covers short calls / puts, then spreads in expiry / strike order, then strangles, the rest naked or long.

    Parameters
    ----------
    legs : sequence of Leg
        One underlying's legs.
    params : StrategyParams

    Returns
    -------
    Decomposition
    """
    shorts, longs = _option_indices(legs)
    shorts.sort(key=lambda i: _sort_key(legs[i]))
    longs.sort(key=lambda i: _sort_key(legs[i]))
    left = {i: abs(legs[i].quantity) for i in shorts}
    avail = {i: legs[i].quantity for i in longs}
    out = Decomposition()
    long_sh, short_sh = _stock_shares(legs)
    spc = int(params.shares_per_contract)
    cover = {"call": long_sh // spc, "put": short_sh // spc}
    for i in shorts:
        ot = str(legs[i].option_type)
        n = min(left[i], cover[ot])
        if n:
            out.covered[i] = n
            left[i] -= n
            cover[ot] -= n
    for i in shorts:
        for j in longs:
            if left[i] <= 0:
                break
            if avail[j] > 0 and pair_admissible(legs[i], legs[j]):
                n = min(left[i], avail[j])
                out.pairs[(i, j)] = out.pairs.get((i, j), 0) + n
                left[i] -= n
                avail[j] -= n
    calls = [i for i in shorts if legs[i].is_call and left[i] > 0]
    puts = [i for i in shorts if not legs[i].is_call and left[i] > 0]
    ci = pi = 0
    while ci < len(calls) and pi < len(puts):
        c, p = calls[ci], puts[pi]
        n = min(left[c], left[p])
        out.strangles[(c, p)] = out.strangles.get((c, p), 0) + n
        left[c] -= n
        left[p] -= n
        ci += left[c] == 0
        pi += left[p] == 0
    out.naked = {i: n for i, n in left.items() if n > 0}
    out.longs = {j: n for j, n in avail.items() if n > 0}
    return out


def _unit_costs(legs: Sequence[Leg], und: Underlying, params: StrategyParams) -> dict[str, Any]:
    shorts, longs = _option_indices(legs)
    naked = {i: naked_short_requirement(legs[i], und, params) for i in shorts}
    long_c = {j: long_option_requirement(legs[j], params) for j in longs}
    return {"shorts": shorts, "longs": longs, "naked": naked, "long": long_c}


def decompose_optimal(
    legs: Sequence[Leg], und: Underlying, params: StrategyParams, *, tie_break_cash: bool = True,
    time_limit: float = 60.0,
) -> Decomposition:
    """Exact minimum-margin decomposition by mixed-integer programming (HiGHS via ``scipy.optimize.milp``).

    Variables (integers >= 0): units of every admissible (short, long) spread pair, of every (short call, short
    put) strangle, stock-covered contracts per short option, naked contracts per short and unpaired contracts per
    long; one continuous loss variable ``t >= -payoff(K)`` at every strike K (``t >= 0``: the group's maximum
    loss), the group's margin ``t`` plus its paired longs' cost, and its cash requirement
    ``g >= max(0, debit + t)``. The objective is the total margin requirement (proceeds included, module
    docstring; exact in the integer units, zero MIP gap); with ``tie_break_cash`` a second program minimises
    the cash requirement among the decompositions of minimum margin.

    Parameters
    ----------
    legs : sequence of Leg
        One underlying's legs.
    und : Underlying
    params : StrategyParams
    tie_break_cash : bool, default True
        Among decompositions of equal margin, take one of least cash requirement.
    time_limit : float, default 60
        Solver time limit, seconds; reaching it without a proven optimum raises.

    Returns
    -------
    Decomposition

    Raises
    ------
    ComputationError
        The solver does not prove an optimum.
    """
    from scipy.optimize import LinearConstraint, milp
    from scipy.sparse import lil_matrix

    uc = _unit_costs(legs, und, params)
    shorts, longs = uc["shorts"], uc["longs"]
    if not shorts:
        return Decomposition(longs={j: legs[j].quantity for j in longs})
    m = float(params.multiplier)
    pairs = [(i, j) for i in shorts for j in longs if pair_admissible(legs[i], legs[j])]
    s_calls = [i for i in shorts if legs[i].is_call]
    s_puts = [i for i in shorts if not legs[i].is_call]
    strs = [(c, p) for c in s_calls for p in s_puts]
    long_sh, short_sh = _stock_shares(legs)
    spc = int(params.shares_per_contract)
    cov_calls = s_calls if long_sh >= spc else []
    cov_puts = s_puts if short_sh >= spc else []
    cov = cov_calls + cov_puts
    strikes = sorted({float(legs[k].strike or 0) for pr in pairs for k in pr})
    # variable layout
    nx, ny, nz, nn, nl = len(pairs), len(strs), len(cov), len(shorts), len(longs)
    ox, oy, oz, on, ol = 0, nx, nx + ny, nx + ny + nz, nx + ny + nz + nn
    ot, og, ogm = ol + nl, ol + nl + 1, ol + nl + 2
    nvar = ogm + 1
    qs = {i: abs(legs[i].quantity) for i in shorts}
    ql = {j: legs[j].quantity for j in longs}
    margin_c = np.zeros(nvar)
    cash_c = np.zeros(nvar)
    ub = np.zeros(nvar)
    for a, (i, j) in enumerate(pairs):
        ub[ox + a] = min(qs[i], ql[j])
        margin_c[ox + a] = float(legs[j].premium) * m  # the paired long is paid in full
    for a, (c, p) in enumerate(strs):
        mg, cs = strangle_requirement(legs[c], legs[p], und, params)
        margin_c[oy + a], cash_c[oy + a] = float(mg), float(cs)
        ub[oy + a] = min(qs[c], qs[p])
    for a, i in enumerate(cov):
        ub[oz + a] = qs[i]
    for a, i in enumerate(shorts):
        mg, cs = uc["naked"][i]
        margin_c[on + a], cash_c[on + a] = float(mg), float(cs)
        ub[on + a] = qs[i]
    for a, j in enumerate(longs):
        mg, cs = uc["long"][j]
        margin_c[ol + a], cash_c[ol + a] = float(mg), float(cs)
        ub[ol + a] = ql[j]
    cash_c[og] = 1.0  # cash: the group's net debit + maximum loss
    margin_c[ogm] = 1.0  # margin: the group's maximum loss (its long legs' cost on the pair variables)
    ub[ot] = ub[og] = ub[ogm] = np.inf
    rows: list[tuple[dict[int, float], float, float]] = []
    for a, i in enumerate(shorts):  # every short contract is paired, in a strangle, covered or naked
        r = {ox + b: 1.0 for b, (si, _) in enumerate(pairs) if si == i}
        r.update({oy + b: 1.0 for b, (c, p) in enumerate(strs) if i in (c, p)})
        r.update({oz + b: 1.0 for b, ci in enumerate(cov) if ci == i})
        r[on + a] = 1.0
        rows.append((r, qs[i], qs[i]))
    for a, j in enumerate(longs):
        r = {ox + b: 1.0 for b, (_, lj) in enumerate(pairs) if lj == j}
        r[ol + a] = 1.0
        rows.append((r, ql[j], ql[j]))
    if cov_calls:
        rows.append(({oz + b: float(spc) for b, i in enumerate(cov) if legs[i].is_call}, 0.0, float(long_sh)))
    if cov_puts:
        rows.append(({oz + b: float(spc) for b, i in enumerate(cov) if not legs[i].is_call}, 0.0, float(short_sh)))
    for k in strikes:  # t + payoff(K) >= 0
        kk = dec(k)
        r = {ot: 1.0}
        for b, (i, j) in enumerate(pairs):
            v = float((intrinsic(legs[j], kk) - intrinsic(legs[i], kk)) * params.multiplier)
            if v:
                r[ox + b] = v
        rows.append((r, 0.0, np.inf))
    # g - t - debit >= 0
    r = {og: 1.0, ot: -1.0}
    for b, (i, j) in enumerate(pairs):
        r[ox + b] = r.get(ox + b, 0.0) - float(legs[j].premium - legs[i].premium) * m
    rows.append((r, 0.0, np.inf))
    rows.append(({ogm: 1.0, ot: -1.0}, 0.0, np.inf))  # g_margin - t >= 0
    a_mat = lil_matrix((len(rows), nvar))
    lo, hi = np.zeros(len(rows)), np.zeros(len(rows))
    for n, (r, lb_, ub_) in enumerate(rows):
        for col, v in r.items():
            a_mat[n, col] = v
        lo[n], hi[n] = lb_, ub_
    a_csr = a_mat.tocsr()
    integrality = np.ones(nvar)
    integrality[ot] = integrality[og] = integrality[ogm] = 0
    from scipy.optimize import Bounds

    bounds = Bounds(np.zeros(nvar), ub)
    opts = {"mip_rel_gap": 0.0, "time_limit": time_limit, "disp": False}
    cons = [LinearConstraint(a_csr, lo, hi)]
    res = milp(margin_c, integrality=integrality, bounds=bounds, constraints=cons, options=opts)
    if res.status != 0 or res.x is None:
        raise ComputationError(f"strategy pairing: the MILP solver found no proven optimum ({res.message})")
    x = res.x
    if tie_break_cash and (ny or nx):
        best = float(res.fun)
        cap = LinearConstraint(margin_c.reshape(1, -1), -np.inf, best + 1e-4 + 1e-12 * abs(best))
        res2 = milp(cash_c, integrality=integrality, bounds=bounds, constraints=[*cons, cap], options=opts)
        if res2.status == 0 and res2.x is not None:
            x = res2.x
    units = np.rint(x).astype(int)
    out = Decomposition()
    for b, pr in enumerate(pairs):
        if units[ox + b]:
            out.pairs[pr] = int(units[ox + b])
    for b, pr in enumerate(strs):
        if units[oy + b]:
            out.strangles[pr] = int(units[oy + b])
    for b, i in enumerate(cov):
        if units[oz + b]:
            out.covered[i] = int(units[oz + b])
    for b, i in enumerate(shorts):
        if units[on + b]:
            out.naked[i] = int(units[on + b])
    for b, j in enumerate(longs):
        if units[ol + b]:
            out.longs[j] = int(units[ol + b])
    return out


def _pair_name(short: Leg, long: Leg) -> str:
    if short.days_to_expiry == long.days_to_expiry:
        return "offset" if short.strike == long.strike else "vertical"
    return "calendar" if short.strike == long.strike else "diagonal"


def price_decomposition(
    legs: Sequence[Leg], und: Underlying, params: StrategyParams, dec_: Decomposition, method: str
) -> StrategyResult:
    """Margin and cash requirement of a decomposition (exact decimals), one line per strategy.

    Parameters
    ----------
    legs : sequence of Leg
    und : Underlying
    params : StrategyParams
    dec_ : Decomposition
    method : str
        Label of the decomposition (``"optimal"`` / ``"greedy"``).

    Returns
    -------
    StrategyResult
    """
    lines: list[StrategyLine] = []
    m = params.multiplier
    for i, n in dec_.naked.items():
        mg, cs = naked_short_requirement(legs[i], und, params)
        lines.append(StrategyLine(f"naked_short_{legs[i].option_type}", (i,), n, mg * n, cs * n,
                                  proceeds=legs[i].premium * m * n))
    for j, n in dec_.longs.items():
        mg, cs = long_option_requirement(legs[j], params)
        lines.append(StrategyLine(f"long_{legs[j].option_type}", (j,), n, mg * n, cs * n, long_premium=mg * n))
    for (c, p), n in dec_.strangles.items():
        mg, cs = strangle_requirement(legs[c], legs[p], und, params)
        name = "straddle" if legs[c].strike == legs[p].strike else "strangle"
        lines.append(StrategyLine(name, (c, p), n, mg * n, cs * n,
                                  proceeds=(legs[c].premium + legs[p].premium) * m * n))
    for i, n in dec_.covered.items():
        lines.append(StrategyLine(f"covered_{legs[i].option_type}", (i,), n, ZERO, ZERO,
                                  proceeds=legs[i].premium * m * n))
    if dec_.pairs:
        group = [(legs[i], legs[j], n) for (i, j), n in dec_.pairs.items()]
        g = spread_group_requirement(group, params)
        paid = sum((lg.premium * m * n for _sh, lg, n in group), ZERO)
        names = sorted({_pair_name(legs[i], legs[j]) for (i, j) in dec_.pairs})
        idx = tuple(sorted({k for pr in dec_.pairs for k in pr}))
        lines.append(StrategyLine("spread_group(" + "+".join(names) + ")", idx, sum(dec_.pairs.values()),
                                  spread_group_max_loss(group, params) + paid, g,
                                  proceeds=sum((sh.premium * m * n for sh, _lg, n in group), ZERO),
                                  long_premium=paid))
    cash_reason = None
    for k, lg in enumerate(legs):
        if lg.kind == "stock" and lg.quantity:
            smg, scs = stock_requirement(lg, params)
            value = lg.premium * abs(lg.quantity)
            lines.append(StrategyLine("long_stock" if lg.quantity > 0 else "short_stock", (k,),
                                      abs(lg.quantity), smg, scs, proceeds=value if lg.quantity < 0 else ZERO,
                                      maintenance=stock_maintenance(lg, params)))
            if scs is None:
                cash_reason = "a short stock position is not permitted in a cash account"
    margin = sum((ln.margin for ln in lines), ZERO)
    cash: Decimal | None = None if cash_reason else sum((ln.cash or ZERO for ln in lines), ZERO)
    return StrategyResult(margin, cash, lines, method, cash_reason)


def check_decomposition(legs: Sequence[Leg], d: Decomposition, params: StrategyParams) -> None:
    """Check a decomposition; raise :class:`ComputationError` if it is not one of ``legs``.

    Every option contract must be used exactly once and stock cover must stay within the shares held.
    """
    used: dict[int, int] = {}
    for (i, j), n in d.pairs.items():
        if not pair_admissible(legs[i], legs[j]):
            raise ComputationError(f"pair ({i}, {j}) is not an admissible spread")
        used[i] = used.get(i, 0) + n
        used[j] = used.get(j, 0) + n
    for (c, p), n in d.strangles.items():
        used[c] = used.get(c, 0) + n
        used[p] = used.get(p, 0) + n
    for dd in (d.covered, d.naked, d.longs):
        for i, n in dd.items():
            used[i] = used.get(i, 0) + n
    for k, lg in enumerate(legs):
        if lg.kind == "option" and used.get(k, 0) != abs(lg.quantity):
            raise ComputationError(f"leg {k}: {used.get(k, 0)} of {abs(lg.quantity)} contracts decomposed")
    long_sh, short_sh = _stock_shares(legs)
    spc = int(params.shares_per_contract)
    cc = sum(n for i, n in d.covered.items() if legs[i].is_call)
    cp = sum(n for i, n in d.covered.items() if not legs[i].is_call)
    if cc * spc > long_sh or cp * spc > short_sh:
        raise ComputationError("covered contracts exceed the shares held")


def strategy_margin(
    legs: Iterable[Leg], underlying: Underlying, params: StrategyParams | None = None, *, method: str = "optimal"
) -> StrategyResult:
    """Strategy-based requirement of one underlying's legs.

    Parameters
    ----------
    legs : iterable of Leg
        Options and stock of one underlying (``Leg.option`` / ``Leg.stock``).
    underlying : Underlying
    params : StrategyParams, optional
        Default: ``StrategyParams()``, whose field defaults are the values of the shipped ``cboe-strategy``
        model (a test checks that they match).
    method : {"optimal", "greedy"}, default "optimal"
        Pairing: the exact integer program or the broker heuristic.

    Returns
    -------
    StrategyResult
        ``margin_requirement`` and ``cash_requirement`` in USD (Decimal), the strategies found.
    """
    p = params or StrategyParams()
    legs = list(legs)
    if method == "optimal":
        d = decompose_optimal(legs, underlying, p)
    elif method == "greedy":
        d = decompose_greedy(legs, p)
    else:
        raise InputError(f"method must be 'optimal' or 'greedy', got {method!r}", column="method")
    check_decomposition(legs, d, p)
    return price_decomposition(legs, underlying, p, d, method)
