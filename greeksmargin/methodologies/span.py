"""CME SPAN: aggregation of published risk arrays, and generation of risk arrays with the full requirement.

A risk array holds, per long contract, the value change in 16 scenarios (CME order, ``SCENARIOS``):

====  ===================  ==========
 #    price move (x PSR)    vol move
====  ===================  ==========
 1     0                    up (+VSR)
 2     0                    down
 3     +1/3                 up
 4     +1/3                 down
 5     -1/3                 up
 6     -1/3                 down
 7     +2/3                 up
 8     +2/3                 down
 9     -2/3                 up
 10    -2/3                 down
 11    +1                   up
 12    +1                   down
 13    -1                   up
 14    -1                   down
 15    +X (extreme)         none, counted at 35%
 16    -X (extreme)         none, counted at 35%
====  ===================  ==========

Scan risk = ``max(0, max_j sum_i Q_i loss_ij)`` (CME SPAN). The requirement of a combined commodity is
``max(scan + intra-commodity spread charge + delivery charge - inter-commodity credit, short option minimum)
- net option value``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.errors import InputError, ModelError

Convention = Literal["profit_positive", "loss_positive"]

#: (price move as a fraction of the price scan range, vol move as a fraction of the vol scan range) of the
#: 14 regular scenarios; scenarios 15-16 move the price by +-X PSR with no vol move (X a parameter).
SCENARIOS: tuple[tuple[float, float], ...] = (
    (0.0, +1.0),
    (0.0, -1.0),
    (1 / 3, +1.0),
    (1 / 3, -1.0),
    (-1 / 3, +1.0),
    (-1 / 3, -1.0),
    (2 / 3, +1.0),
    (2 / 3, -1.0),
    (-2 / 3, +1.0),
    (-2 / 3, -1.0),
    (1.0, +1.0),
    (1.0, -1.0),
    (-1.0, +1.0),
    (-1.0, -1.0),
)
N_SCENARIOS = 16
EXTREME = (14, 15)  # 0-based indices of the extreme scenarios


# --------------------------------------------------------------------------------------------------- aggregation
@dataclass
class ScanRiskResult:
    """Scan risk of a portfolio of risk arrays.

    Attributes
    ----------
    scan_risk : float
        ``max(0, max_j loss_j)`` in the currency of the arrays.
    scenario_losses : ndarray of shape (16,)
        Portfolio loss per scenario (positive = loss), extreme scenarios weighted.
    worst_scenario : int
        1-based CME number of the scenario that sets the scan risk.
    """

    scan_risk: float
    scenario_losses: NDArray[np.float64]
    worst_scenario: int


def _positions_dict(positions: Mapping[str, float] | Iterable[Any] | pd.DataFrame) -> dict[str, float]:
    if isinstance(positions, pd.DataFrame):
        if not {"contract", "quantity"} <= set(positions.columns):
            raise InputError("positions need columns 'contract' and 'quantity'", file="<DataFrame>",
                             column="contract" if "contract" not in positions.columns else "quantity")
        items = list(zip(positions["contract"], positions["quantity"]))
    elif isinstance(positions, Mapping):
        items = list(positions.items())
    else:
        items = []
        for i, p in enumerate(positions):
            if isinstance(p, Mapping):
                if "contract" not in p or "quantity" not in p:
                    raise InputError("a position needs 'contract' and 'quantity'", row=i,
                                     column="contract" if "contract" not in p else "quantity")
                items.append((p["contract"], p["quantity"]))
            else:
                contract, qty = p
                items.append((contract, qty))
    out: dict[str, float] = {}
    for contract, qty in items:
        out[str(contract)] = out.get(str(contract), 0.0) + float(qty)
    return out


def scenario_losses(
    risk_arrays: Mapping[str, Sequence[float] | NDArray[np.float64]],
    positions: Mapping[str, float] | Iterable[Any] | pd.DataFrame,
    convention: Convention = "profit_positive",
    extreme_weights_applied: bool = True,
    extreme_weight: float = 0.35,
) -> NDArray[np.float64]:
    """Portfolio loss per scenario, ``sum_i Q_i loss_ij``.

    Parameters
    ----------
    risk_arrays : mapping contract -> sequence or ndarray of 16 floats
        Value change per long contract in each scenario, in ``convention``.
    positions : mapping contract -> signed quantity, list of (contract, quantity) or of dicts, or DataFrame
        Positions (a contract listed twice counts twice).
    convention : {"profit_positive", "loss_positive"}
        Sign of the arrays: profit positive (McMillan) or loss positive (CME files).
    extreme_weights_applied : bool, default True
        Whether scenarios 15-16 are already weighted; if not they are multiplied by ``extreme_weight``.
    extreme_weight : float, default 0.35
        Fraction of the extreme-move value counted.

    Returns
    -------
    ndarray of shape (16,)
        Portfolio loss per scenario (positive = loss).
    """
    if convention not in ("profit_positive", "loss_positive"):
        raise InputError(f"convention must be 'profit_positive' or 'loss_positive', got '{convention}'")
    qty = _positions_dict(positions)
    # exact decimal arithmetic: published arrays and quantities are decimal numbers, and the suite checks the
    # scan risk for equality; the sums are done on fractions of their shortest decimal representation
    total = [Fraction(0)] * N_SCENARIOS
    w = _exact(extreme_weight)
    for contract, q in qty.items():
        if contract not in risk_arrays:
            raise InputError(f"no risk array for contract '{contract}'", column="contract")
        arr = np.asarray(risk_arrays[contract], dtype=float)
        if arr.shape != (N_SCENARIOS,):
            raise InputError(f"risk array of '{contract}' has {arr.size} values, expected 16", column="risk_arrays")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"risk array of '{contract}' has a non-finite value", column="risk_arrays")
        sign = -1 if convention == "profit_positive" else 1
        fq = _exact(q)
        for j in range(N_SCENARIOS):
            loss = sign * _exact(arr[j])
            if not extreme_weights_applied and j in EXTREME:
                loss *= w
            total[j] += fq * loss
    return np.array([float(x) for x in total])


def _exact(x: float) -> Fraction:
    return Fraction(repr(float(x)))


def scan_risk(
    risk_arrays: Mapping[str, Sequence[float] | NDArray[np.float64]],
    positions: Mapping[str, float] | Iterable[Any] | pd.DataFrame,
    convention: Convention = "profit_positive",
    extreme_weights_applied: bool = True,
    extreme_weight: float = 0.35,
) -> float:
    """SPAN scan risk: ``max(0, max_j sum_i Q_i loss_ij)``.

    Parameters are those of :func:`scenario_losses`.

    Returns
    -------
    float
        Scan risk, in the currency of the arrays (>= 0).
    """
    return scan_risk_detail(risk_arrays, positions, convention, extreme_weights_applied, extreme_weight).scan_risk


def scan_risk_detail(
    risk_arrays: Mapping[str, Sequence[float] | NDArray[np.float64]],
    positions: Mapping[str, float] | Iterable[Any] | pd.DataFrame,
    convention: Convention = "profit_positive",
    extreme_weights_applied: bool = True,
    extreme_weight: float = 0.35,
) -> ScanRiskResult:
    """Scan risk with the per-scenario losses and the worst scenario (see :func:`scenario_losses`)."""
    losses = scenario_losses(risk_arrays, positions, convention, extreme_weights_applied, extreme_weight)
    j = int(np.argmax(losses))
    return ScanRiskResult(float(max(0.0, losses[j])), losses, j + 1)


# --------------------------------------------------------------------------------------------------- generation
def scenario_grid(psr: float, vsr: float, extreme_multiple: float = 3.0) -> tuple[NDArray, NDArray, NDArray]:
    """Price and vol moves of the 16 scenarios.

    Parameters
    ----------
    psr : float
        Price scan range, in price units of the underlying (futures points).
    vsr : float
        Volatility scan range, decimal vol (0.05 = 5 vol points).
    extreme_multiple : float, default 3.0
        X: the extreme moves are +-X PSR.

    Returns
    -------
    (price_moves, vol_moves, extreme_mask) : three ndarrays of shape (16,)
    """
    frac = np.array([s[0] for s in SCENARIOS] + [extreme_multiple, -extreme_multiple])
    vol = np.array([s[1] for s in SCENARIOS] + [0.0, 0.0]) * vsr
    mask = np.zeros(N_SCENARIOS, dtype=bool)
    mask[list(EXTREME)] = True
    return frac * psr, vol, mask


def generate_risk_array(
    kind: str,
    price: float,
    psr: float,
    vsr: float = 0.0,
    *,
    strike: float = np.nan,
    time_to_expiry: float = 0.0,
    vol: float = 0.0,
    rate: float = 0.0,
    multiplier: float = 1.0,
    extreme_multiple: float = 3.0,
    extreme_weight: float = 0.35,
    convention: Convention = "loss_positive",
) -> NDArray[np.float64]:
    """Risk array of one long contract by full revaluation (Black-76 for options on futures).

    Parameters
    ----------
    kind : {"future", "call", "put"}
        Contract type.
    price : float
        Current futures price (the option's underlying forward), price units.
    psr : float
        Price scan range in price units.
    vsr : float, default 0.0
        Volatility scan range (decimal); options only.
    strike, time_to_expiry, vol, rate : float
        Option strike, years to expiry, implied vol (decimal), discount rate; options only.
    multiplier : float, default 1.0
        Contract multiplier (currency per price unit).
    extreme_multiple : float, default 3.0
        X of the extreme scenarios.
    extreme_weight : float, default 0.35
        Weight applied to scenarios 15-16 (the array is returned weighted).
    convention : {"loss_positive", "profit_positive"}, default "loss_positive"
        Sign of the returned array.

    Returns
    -------
    ndarray of shape (16,)
        Value change per long contract in currency, extreme scenarios weighted.
    """
    dp, dv, extreme = scenario_grid(psr, vsr, extreme_multiple)
    kind_l = kind.lower()
    if kind_l == "future":
        pnl = dp * multiplier
    elif kind_l in ("call", "put"):
        is_call = kind_l == "call"
        v0 = float(_black76(is_call, price, strike, time_to_expiry, vol, rate)[0])
        f_new = np.maximum(price + dp, 1e-12)
        v_new = _black76(is_call, f_new, strike, time_to_expiry, np.maximum(vol + dv, 0.0), rate)
        pnl = (v_new - v0) * multiplier
    else:
        raise InputError(f"kind must be 'future', 'call' or 'put', got '{kind}'", column="kind")
    pnl = np.where(extreme, pnl * extreme_weight, pnl)
    return (-pnl if convention == "loss_positive" else pnl) + 0.0  # + 0.0: no negative zeros


def _black76(is_call: bool, forward: Any, strike: Any, t: Any, vol: Any, rate: Any) -> NDArray[np.float64]:
    """Black-76 prices with every input broadcast to a 1-d array (the kernel wants arrays)."""
    from greeksmargin.pricing import black76_price

    f, k, tt, v, r = (np.atleast_1d(np.asarray(x, dtype=float)) for x in (forward, strike, t, vol, rate))
    f, k, tt, v, r = np.broadcast_arrays(f, k, tt, v, r)
    return np.asarray(black76_price(np.full(f.shape, is_call), f.copy(), k.copy(), tt.copy(), v.copy(), r.copy()),
                      dtype=float)


@dataclass
class SpanParams:
    """SPAN parameters of one combined commodity.

    Attributes
    ----------
    psr : float
        Price scan range, price units.
    vsr : float
        Volatility scan range, decimal.
    extreme_multiple : float
        X of scenarios 15-16.
    extreme_weight : float
        Weight of scenarios 15-16 (0.35).
    short_option_minimum : float
        Currency per short option contract.
    spread_rate : float
        Intra-commodity charge per spread (one long and one short composite delta in different months).
    spread_rates : dict
        Optional rate per month pair ``"M1/M2"`` overriding ``spread_rate``.
    delivery_charge : float
        Charge per contract of the spot month (0 by default).
    inter_commodity_credit : float
        Credit granted by inter-commodity spreads (given; 0 by default).
    """

    psr: float
    vsr: float = 0.0
    extreme_multiple: float = 3.0
    extreme_weight: float = 0.35
    short_option_minimum: float = 0.0
    spread_rate: float = 0.0
    spread_rates: dict[str, float] = field(default_factory=dict)
    delivery_charge: float = 0.0
    inter_commodity_credit: float = 0.0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SpanParams:
        """Build from a dict of the same field names (e.g. a ``[products.X]`` table of models/span.toml)."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise InputError(f"unknown SPAN parameter(s) {sorted(unknown)}")
        if "psr" not in d:
            raise InputError("missing SPAN parameter 'psr'", column="psr")
        floats = {k: float(v) for k, v in d.items() if k != "spread_rates"}
        return cls(**floats, spread_rates=dict(d.get("spread_rates", {})))


@dataclass
class SpanResult:
    """SPAN requirement of one combined commodity (currency of the contracts).

    Attributes
    ----------
    requirement : float
        ``max(scan + spread + delivery - credit, SOM) - NOV``; negative when long option value exceeds the risk.
    scan_risk, spread_charge, delivery_charge, inter_commodity_credit, short_option_minimum, net_option_value : float
        Components.
    scenario_losses : ndarray of shape (16,)
        Portfolio loss per scenario.
    risk_arrays : dict
        Generated loss-positive array per contract.
    composite_delta : dict
        Net composite delta per month (futures equivalents).
    """

    requirement: float
    scan_risk: float
    spread_charge: float
    delivery_charge: float
    inter_commodity_credit: float
    short_option_minimum: float
    net_option_value: float
    scenario_losses: NDArray[np.float64]
    risk_arrays: dict[str, NDArray[np.float64]]
    composite_delta: dict[str, float]


#: keys of a ``[products.X]`` table that describe the product and are not SPAN parameters
PRODUCT_INFO_KEYS = ("description", "illustrative")


def product_params(doc: Mapping[str, Any], product: str, spot: float | None = None,
                   file: str | None = None) -> SpanParams:
    """Parameters of ``product`` from a span model document: ``[defaults]`` then ``[products.<product>]``.

    Parameters
    ----------
    doc : mapping
        The span model (tables ``defaults`` and ``products``).
    product : str
        Name of the product table.
    spot : float, optional
        Price of the underlying (price units): needed when the table gives ``psr_fraction`` (the price scan
        range as a fraction of the price, PSR = ``psr_fraction x spot``) instead of ``psr``.
    file : str, optional
        Named in errors.

    Returns
    -------
    SpanParams

    Raises
    ------
    ModelError
        Unknown product or parameter, or ``psr_fraction`` without ``spot`` (the message names the key).
    """
    products = doc.get("products", {})
    key = f"products.{product}"
    if product not in products:
        raise ModelError(f"unknown product (known: {', '.join(products)})", file=file, key=key)
    merged = {k: v for k, v in {**doc.get("defaults", {}), **products[product]}.items()
              if k not in PRODUCT_INFO_KEYS}
    if "psr_fraction" in merged:
        if spot is None:
            raise ModelError("psr_fraction needs the price of the underlying", file=file, key=f"{key}.psr_fraction")
        merged["psr"] = float(merged.pop("psr_fraction")) * spot
    try:
        return SpanParams.from_dict(merged)
    except InputError as exc:
        raise ModelError(exc.reason, file=file, key=key) from exc


def spread_charge(month_deltas: Mapping[str, float], rate: float, rates: Mapping[str, float] | None = None) -> float:
    """Intra-commodity spread charge: opposite net deltas of different months paired in month order.

    Months are taken in the given order; each month's delta is paired with the opposite-signed deltas of the
    following months, nearest first, and every spread formed (one unit long, one unit short) is charged ``rate``
    (or ``rates["M1/M2"]`` for that pair).

    Parameters
    ----------
    month_deltas : mapping month -> net composite delta (futures equivalents), in priority order
    rate : float
        Charge per spread.
    rates : mapping, optional
        Charge per ``"M1/M2"`` pair.

    Returns
    -------
    float
        Total charge (>= 0).
    """
    months = list(month_deltas)
    left = {m: float(month_deltas[m]) for m in months}
    total = 0.0
    for i, a in enumerate(months):
        for b in months[i + 1 :]:
            if left[a] == 0.0:
                break
            if left[a] * left[b] < 0.0:
                n = min(abs(left[a]), abs(left[b]))
                r = (rates or {}).get(f"{a}/{b}", (rates or {}).get(f"{b}/{a}", rate))
                total += n * r
                left[a] -= np.sign(left[a]) * n
                left[b] -= np.sign(left[b]) * n
    return total


def span_requirement(contracts: pd.DataFrame, positions: Mapping[str, float] | Iterable[Any] | pd.DataFrame,
                     params: SpanParams | Mapping[str, Any]) -> SpanResult:
    """SPAN requirement of a combined commodity from contract definitions (generated risk arrays).

    Parameters
    ----------
    contracts : pandas.DataFrame
        One row per contract: ``contract``, ``kind`` (future/call/put), ``month`` (spread tier; futures month of
        the option's underlying), ``price`` (futures price of that month, price units), and for options
        ``strike``, ``time_to_expiry`` (years), ``vol`` (decimal), optional ``rate``; optional ``multiplier``
        (default 1).
    positions : mapping contract -> signed quantity, or list / DataFrame (see :func:`scenario_losses`)
    params : SpanParams or mapping

    Returns
    -------
    SpanResult
    """
    p = params if isinstance(params, SpanParams) else SpanParams.from_dict(params)
    qty = _positions_dict(positions)
    defs = contracts.set_index("contract")
    arrays: dict[str, NDArray[np.float64]] = {}
    deltas: dict[str, float] = {}
    som_count = 0.0
    nov = 0.0
    delivery = 0.0
    for contract, q in qty.items():
        if contract not in defs.index:
            raise InputError(f"no definition for contract '{contract}'", column="contract")
        row = defs.loc[contract]
        kind = str(row["kind"]).lower()
        mult = float(row.get("multiplier", 1.0)) if not pd.isna(row.get("multiplier", 1.0)) else 1.0
        rate = float(row.get("rate", 0.0)) if not pd.isna(row.get("rate", 0.0)) else 0.0
        price = float(row["price"])
        arrays[contract] = generate_risk_array(
            kind, price, p.psr, p.vsr, strike=float(row.get("strike", np.nan)),
            time_to_expiry=float(row.get("time_to_expiry", 0.0)), vol=float(row.get("vol", 0.0)), rate=rate,
            multiplier=mult, extreme_multiple=p.extreme_multiple, extreme_weight=p.extreme_weight)
        month = str(row.get("month", ""))
        if kind == "future":
            d = 1.0
        else:
            from greeksmargin.pricing import black76

            g = black76(kind, price, float(row["strike"]), float(row["time_to_expiry"]), float(row["vol"]), rate)
            d = float(np.asarray(g.delta))
            value = float(np.asarray(g.price)) * mult
            nov += q * value
            som_count += max(-q, 0.0)
        deltas[month] = deltas.get(month, 0.0) + q * d
        if bool(row.get("spot_month", False)):
            delivery += abs(q) * p.delivery_charge
    losses = scenario_losses(arrays, qty, convention="loss_positive", extreme_weights_applied=True)
    scan = float(max(0.0, losses.max()))
    months = sorted(deltas)
    spread = spread_charge({m: deltas[m] for m in months}, p.spread_rate, p.spread_rates)
    som = som_count * p.short_option_minimum
    req = max(scan + spread + delivery - p.inter_commodity_credit, som) - nov
    return SpanResult(req, scan, spread, delivery, p.inter_commodity_credit, som, nov, losses, arrays, deltas)


def risk_arrays_from_table(table: pd.DataFrame) -> dict[str, NDArray[np.float64]]:
    """Risk arrays from a table with a ``contract`` column and columns ``s1``..``s16`` (or 16 value columns)."""
    cols = [f"s{i}" for i in range(1, 17)]
    if not set(cols) <= set(table.columns):
        cols = [c for c in table.columns if c != "contract"]
    if len(cols) != N_SCENARIOS or "contract" not in table.columns:
        raise InputError("risk array table needs 'contract' and 16 scenario columns", column="contract")
    return {str(c): np.asarray(v, dtype=float) for c, v in zip(table["contract"], table[cols].to_numpy())}

