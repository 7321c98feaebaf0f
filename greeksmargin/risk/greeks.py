"""Per-position prices and Greeks: positions x market snapshot -> one row per position.

Every option is priced with Black-76 on the forward of its expiry, discounted at ``exp(-r T)``; for a
forward ``F = S exp((r - q) T)`` this equals Black-Scholes-Merton on spot. Forward Greeks are turned
into **spot** Greeks with ``dF/dS = F/S`` (the forward moves with spot at a fixed carry)::

    delta = delta_F F/S      gamma = gamma_F (F/S)^2      vanna = vanna_F F/S      vega, volga unchanged
    theta = theta_F - b F delta_F      (b = ln(F/S)/T = r - q: time passing at a fixed spot moves F)
    rho   = rho_F + T F delta_F        (F = S exp((r - q) T) moves with the rate)

when the forward is derived from rate and dividend yield (then the Greeks equal BSM's on spot). When
the market lists forwards (coin underlyings), the listed forward of an expiry is a quote held fixed as
time passes and rates move: theta = theta_F and rho = rho_F = -T V (Deribit's convention).

The Greeks are sticky-strike partials: the option's vol is held fixed as spot moves (on a skewed
surface the smile's own move under a spot shock is a scenario matter, see ``MarketSnapshot.bumped``).

Futures: price = forward, delta = F/S, theta = -b F (0 for a listed forward), no premium (value 0).
Perpetuals: price = the perpetual mark (spot if none), delta = mark / S (1 without a mark; the mark
moves with spot), no premium. Spot: price = spot, delta 1.

Units: raw Greeks per unit of underlying, w.r.t. SPOT, in USD, textbook partials (vega per 1.00 vol,
theta per year, rho per 1.00 rate). Cash Greeks of the position (``size = quantity x multiplier``) via
:mod:`greeksmargin.units`: ``delta_cash`` (USD per 1.00 relative move), ``delta_1pct``,
``gamma_cash_1pct``, ``vega_1volpt``, ``theta_1d``.

Coin-settled (``settlement = inverse``) positions: value in the coin ``value_ccy = price / F x size`` for
options (Deribit's ``C_usd(F) / F``; the market rate is used when not 0), ``value_usd / S`` for spot, 0
for futures and perpetuals; ``coin_delta`` is the premium-adjusted (coin-numeraire) delta x size,
``F d(V_coin)/dF``: ``(delta_F - price/F) x size`` for options (``N(d1) - V`` at r = 0), ``size`` for
futures and perpetuals, 0 for spot coin. ``margin_currency`` is the coin (e.g. ``"BTC"``), else ``"USD"``.

An option at or past its expiry (expiry <= valuation time) gets ``T = 0``: its intrinsic value, the
pricing kernels' step delta (1 in the money, 0 out of it, 0.5 exactly at the money), gamma, vega and
theta 0; it is never an error (an expired future is).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin import units
from greeksmargin.book.market import MarketSnapshot
from greeksmargin.book.positions import COLUMNS, KINDS, load_positions, validate_against_market
from greeksmargin.errors import ArgumentTypeError, InputError, MarketDataError, expect_type

__all__ = ["KIND_CODES", "PRICED_COLUMNS", "market_arrays", "price_positions"]

#: integer code of each kind in :func:`market_arrays` (``kind_code``)
KIND_CODES = {"option": 0, "future": 1, "perpetual": 2, "spot": 3}

PRICED_COLUMNS = (
    "account",
    "instrument",
    "underlying",
    "kind",
    "option_type",
    "is_call",
    "strike",
    "expiry",
    "quantity",
    "multiplier",
    "settlement",
    "size",
    "time_to_expiry",
    "spot",
    "forward",
    "vol",
    "rate",
    "price",
    "value_usd",
    "margin_currency",
    "value_ccy",
    "delta",
    "gamma",
    "vega",
    "theta",
    "rho",
    "vanna",
    "volga",
    "delta_cash",
    "delta_1pct",
    "gamma_cash_1pct",
    "vega_1volpt",
    "theta_1d",
    "coin_delta",
)


def _normalised(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
    ok = (
        list(positions.columns[: len(COLUMNS)]) == list(COLUMNS)
        and isinstance(positions["expiry"].dtype, pd.DatetimeTZDtype)
        and positions["kind"].isin(KINDS).all()
        and positions["strike"].dtype == float
        and positions["quantity"].dtype == float
        and positions["multiplier"].dtype == float
    )
    return positions if ok else load_positions(positions, valuation_time=market.valuation_time)


def _distinct(x: NDArray[Any]) -> tuple[NDArray[np.intp], NDArray[Any]]:
    """Codes of the bitwise-distinct values of a 1-d float or int array.

    Returns the codes, shape (n,), and for floats the distinct values, for ints the first position of each.
    """
    a = np.ascontiguousarray(x)
    codes, _ = pd.factorize(a.view(np.int64) if a.dtype == np.float64 else a)
    codes = codes.astype(np.intp)
    first = np.full(int(codes.max()) + 1 if codes.size else 0, codes.size, dtype=np.intp)
    np.minimum.at(first, codes, np.arange(codes.size, dtype=np.intp))
    return codes, (a[first] if a.dtype == np.float64 else first)


def market_arrays(positions: pd.DataFrame, market: MarketSnapshot) -> dict[str, NDArray[Any]]:
    """Look up, once, every market input of every position (for pricing and scenario revaluation).

    The margin engine revalues the book under thousands of scenarios; this does the lookups (underlying,
    forward of each expiry, vol of each option, rate) once so that a scenario only rescales arrays:
    under a relative spot move ``m`` the forward becomes ``forward * (1 + m)`` (``forward_ratio`` stays)
    and a vol shock adds to ``vol``.

    Parameters
    ----------
    positions : DataFrame of shape (n,)
        Positions (from :func:`~greeksmargin.book.positions.load_positions`; normalised here if not).
    market : MarketSnapshot
        The snapshot; it must cover every underlying (options need vols).

    Returns
    -------
    dict of str -> ndarray of shape (n,)
        ``kind_code`` int8 (:data:`KIND_CODES`), ``is_call`` bool (False for non-options), ``strike``
        (NaN for non-options), ``T`` years (NaN for perpetual / spot), ``spot``, ``forward`` (spot for
        perpetual / spot), ``forward_ratio`` F/S, ``carry`` b = ln(F/S)/T (0 where T is NaN), ``vol``
        (NaN for non-options), ``rate`` (at T, at 0 for perpetual / spot), ``size`` = quantity x
        multiplier, ``inverse`` bool, ``forward_from_rate`` bool (F derived from rate and dividend
        yield), ``perp_ratio`` perpetual mark / spot (1 for other kinds), ``underlying_code`` int
        (index into ``underlyings``), and ``underlyings`` (object array of the distinct names, shape
        (n_underlyings,)).

    Raises
    ------
    MarketDataError
        Underlying absent from the market, or option without vol (names the row and the column
        ``underlying``, or ``instrument`` when only per-instrument vols are given and this one is missing).
    InputError
        Future expired at the valuation time (names row and column ``expiry``). An option at or past
        its expiry gets ``T = 0``: intrinsic value, no time value.
    """
    pos = _normalised(positions, market)
    validate_against_market(pos, market)
    n = len(pos)
    kind = pos["kind"].to_numpy(dtype=object)
    kc, kinds_seen = pd.factorize(kind)  # one hash pass over the strings instead of a comparison per kind
    kind_code = np.append(np.array([KIND_CODES.get(k, -1) for k in kinds_seen], dtype=np.int8), -1)[kc]
    is_opt = kind_code == 0
    T = market.years(pos["expiry"])
    bad = (kind_code == 1) & ~(T > 0)
    # an option at or past its expiry: T = 0, valued at intrinsic (zero time value), never an error
    T = np.where(is_opt, np.maximum(T, 0.0), T)
    if bad.any():
        r = pos.index[int(np.argmax(bad))]
        raise InputError(
            f"{kind[int(np.argmax(bad))]} expired: expiry {pos['expiry'].loc[r]} is not after the valuation time "
            f"{market.valuation_time}",
            file="<DataFrame>",
            row=r,
            column="expiry",
        )
    strike = pos["strike"].to_numpy(dtype=float)
    codes, names = pd.factorize(pos["underlying"], sort=False)
    spot = np.empty(n)
    forward = np.empty(n)
    rate = np.empty(n)
    vol = np.full(n, np.nan)
    perp_ratio = np.ones(n)
    fwd_from_rate = np.zeros(n, dtype=bool)
    instruments = pos["instrument"].to_numpy(dtype=object)
    for j, u in enumerate(names):
        m = codes == j
        s = market.spot(u)
        spot[m] = s
        t_u = T[m]
        t0 = np.where(np.isfinite(t_u), t_u, 0.0)
        # forward and rate of each distinct expiry (bitwise-equal T), spread to the positions
        tc, tq = _distinct(t0)
        forward[m] = market.forward(u, tq)[tc]
        rate[m] = market.rate(u, tq)[tc]
        fwd_from_rate[m] = not market.has_forwards(u)
        perp_ratio[m & (kind_code == 2)] = market.perpetual_mark(u) / s
        mo = m & is_opt
        if mo.any():
            um = market[u]
            if um.surface is None:
                unlisted = mo & ~pd.Series(instruments).isin(set(um.instrument_vols)).to_numpy()
                if unlisted.any():
                    i = int(np.argmax(unlisted))
                    raise MarketDataError(
                        f"no implied vol for instrument '{instruments[i]}' of underlying '{u}' "
                        "(not listed in the market's vols and no surface)",
                        file="<DataFrame>",
                        row=pos.index[i],
                        column="instrument",
                    )
            if um.instrument_vols:
                vol[mo] = market.vol(u, T[mo], strike[mo], instrument=instruments[mo])
            else:  # a surface only: the vol of each distinct (expiry, strike), spread to the positions
                tc, _ = _distinct(T[mo])
                kc, _ = _distinct(strike[mo])
                pc, first = _distinct(tc.astype(np.int64) * (int(kc.max()) + 1) + kc)
                vol[np.flatnonzero(mo)] = market.vol(u, T[mo][first], strike[mo][first])[pc]
    with np.errstate(divide="ignore", invalid="ignore"):
        carry = np.where(np.isfinite(T) & (T > 0), np.log(forward / spot) / T, 0.0)
    ot = pos["option_type"].to_numpy(dtype=object)
    return {
        "kind_code": kind_code,
        "is_call": is_opt & (ot == "call"),
        "strike": strike,
        "T": T,
        "spot": spot,
        "forward": forward,
        "forward_ratio": forward / spot,
        "carry": carry,
        "vol": vol,
        "rate": rate,
        "size": pos["quantity"].to_numpy(dtype=float) * pos["multiplier"].to_numpy(dtype=float),
        "inverse": (pos["settlement"] == "inverse").to_numpy(),
        "forward_from_rate": fwd_from_rate,
        "perp_ratio": perp_ratio,
        "underlying_code": codes.astype(np.int64),
        "underlyings": np.asarray(names, dtype=object),
    }


def price_positions(positions: pd.DataFrame, market: MarketSnapshot) -> pd.DataFrame:
    """Price every position and compute its raw and cash Greeks.

    Parameters
    ----------
    positions : DataFrame of shape (n,)
        Positions (schema of :mod:`greeksmargin.book.positions`).
    market : MarketSnapshot
        Market snapshot covering every underlying.

    Returns
    -------
    DataFrame of shape (n, 34)
        Same index as ``positions``; columns :data:`PRICED_COLUMNS` (units in the module docstring).
        ``price`` is USD per unit of underlying (option: discounted Black-76; future: forward; perpetual:
        mark; spot: spot); ``value_usd`` = price x size for options and spot, 0 for futures and
        perpetuals; ``coin_delta`` NaN for linear positions.

    Raises
    ------
    MarketDataError
        The market lacks an underlying or a vol.
    InputError
        Bad positions (see :func:`~greeksmargin.book.positions.load_positions`).
    """
    from greeksmargin.book.market import MarketSnapshot
    from greeksmargin.pricing import black76

    expect_type(market, "market", MarketSnapshot, "a MarketSnapshot (greeksmargin.load_market)")
    if not isinstance(positions, (pd.DataFrame, str, Path)):
        raise ArgumentTypeError("positions", "a positions DataFrame or file path", positions)
    pos = _normalised(positions, market)
    a = market_arrays(pos, market)
    n = len(pos)
    kc, S, F, T, size = a["kind_code"], a["spot"], a["forward"], a["T"], a["size"]
    ratio = a["forward_ratio"]
    is_opt, is_fut, is_perp, is_spot = kc == 0, kc == 1, kc == 2, kc == 3
    price = np.zeros(n)
    delta = np.zeros(n)
    gamma = np.zeros(n)
    vega = np.zeros(n)
    theta = np.zeros(n)
    rho = np.zeros(n)
    vanna = np.zeros(n)
    volga = np.zeros(n)
    delta_f = np.zeros(n)
    if is_opt.any():
        o = is_opt
        g = black76(a["is_call"][o], F[o], a["strike"][o], T[o], a["vol"][o], a["rate"][o])
        r_o = ratio[o]
        price[o] = g.price
        delta_f[o] = g.delta
        delta[o] = g.delta * r_o
        gamma[o] = g.gamma * r_o * r_o
        vega[o] = g.vega
        vanna[o] = g.vanna * r_o
        volga[o] = g.volga
        theta[o] = g.theta - np.where(a["forward_from_rate"][o], a["carry"][o] * F[o] * g.delta, 0.0)
        rho[o] = g.rho + np.where(a["forward_from_rate"][o], T[o] * F[o] * g.delta, 0.0)
        # at / past expiry (T = 0): intrinsic value, step delta, no time decay (the kernels' gamma, vega are 0)
        theta[o] = np.where(T[o] > 0, theta[o], 0.0)
    if is_fut.any():
        f = is_fut
        price[f] = F[f]
        delta[f] = ratio[f]
        delta_f[f] = 1.0
        theta[f] = np.where(a["forward_from_rate"][f], -a["carry"][f] * F[f], 0.0)
        rho[f] = np.where(a["forward_from_rate"][f], T[f] * F[f], 0.0)
    price[is_perp] = S[is_perp] * a["perp_ratio"][is_perp]
    price[is_spot] = S[is_spot]
    delta[is_perp] = a["perp_ratio"][is_perp]  # the mark moves with spot: 1 when no mark is given
    delta[is_spot] = 1.0
    delta_f[is_perp | is_spot] = 1.0

    premium = is_opt | is_spot
    value_usd = np.where(premium, price * size, 0.0)
    inverse = a["inverse"]
    und = pos["underlying"].to_numpy(dtype=object)
    ccy_of = {u: (market.currency(u) if market.currency(u) != "USD" else u) for u in a["underlyings"]}
    margin_ccy = np.where(inverse, pd.Series(und).map(ccy_of).to_numpy(dtype=object), "USD").astype(object)
    with np.errstate(divide="ignore", invalid="ignore"):
        value_inv = np.select([is_opt, is_spot], [price / F * size, value_usd / S], default=0.0)
        coin_d = np.select([is_opt, is_fut | is_perp], [(delta_f - price / F) * size, size], default=0.0)
    value_ccy = np.where(inverse, value_inv, value_usd)
    coin_delta = np.where(inverse, coin_d, np.nan)

    out = pd.DataFrame(
        {
            "account": pos["account"],
            "instrument": pos["instrument"],
            "underlying": pos["underlying"],
            "kind": pos["kind"],
            "option_type": pos["option_type"],
            "is_call": a["is_call"],
            "strike": pos["strike"],
            "expiry": pos["expiry"],
            "quantity": pos["quantity"],
            "multiplier": pos["multiplier"],
            "settlement": pos["settlement"],
            "size": size,
            "time_to_expiry": np.where(is_perp | is_spot, np.nan, T),
            "spot": S,
            "forward": F,
            "vol": a["vol"],
            "rate": a["rate"],
            "price": price,
            "value_usd": value_usd,
            "margin_currency": margin_ccy,
            "value_ccy": value_ccy,
            "delta": delta,
            "gamma": gamma,
            "vega": vega,
            "theta": theta,
            "rho": rho,
            "vanna": vanna,
            "volga": volga,
            "delta_cash": units.delta_cash(delta, S, size),
            "delta_1pct": units.delta_1pct(delta, S, size),
            "gamma_cash_1pct": units.gamma_cash_1pct(gamma, S, size),
            "vega_1volpt": units.vega_1volpt(vega, size),
            "theta_1d": units.theta_1d(theta, size),
            "coin_delta": coin_delta,
        },
        index=pos.index,
    )
    return out
