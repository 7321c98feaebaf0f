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

American options (``exercise = american``, :mod:`greeksmargin.risk.exercise`): price and Greeks of
:func:`greeksmargin.pricing.american_greeks` (Barone-Adesi-Whaley) on spot with the carry of the expiry's
forward, ``q = r - ln(F/S)/T``: delta, gamma, vega, theta (``-dV/dT`` at fixed spot and carry) and rho (at
fixed spot and carry) by its central differences, vanna and volga by central differences of the American
price (steps of :data:`greeksmargin.pricing.american.BUMPS`). At or past expiry they are European (intrinsic).
An American option whose rate and carry fall in the two-boundary negative-rate regime is refused by
:func:`market_arrays` (:class:`~greeksmargin.errors.MarketDataError` naming the row, column ``exercise``).

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
from greeksmargin.book.arrays import KIND_CODES
from greeksmargin.book.book import Book, book_of, load_book
from greeksmargin.book.market import MarketSnapshot
from greeksmargin.errors import ArgumentTypeError, InputError, expect_type

__all__ = ["KIND_CODES", "PRICED_COLUMNS", "market_arrays", "price_positions"]


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
    "exercise",
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


def _book(positions: Any, market: MarketSnapshot) -> Book:
    """A Book as is (its market must be ``market``), raw positions validated once into one."""
    if isinstance(positions, Book):
        if positions.market is not market:
            raise InputError("the Book's market is not the market given (use Book.with_market to move it)")
        return positions
    own = book_of(positions, market)  # a Book's own positions table (the object, not a look-alike)
    return own if own is not None else load_book(positions, market)


def market_arrays(positions: Any, market: MarketSnapshot) -> dict[str, NDArray[Any]]:
    """Look up, once, every market input of every position (for pricing and scenario revaluation).

    The margin engine revalues the book under thousands of scenarios; this does the lookups (underlying,
    forward of each expiry, vol of each option, rate) once so that a scenario only rescales arrays:
    under a relative spot move ``m`` the forward becomes ``forward * (1 + m)`` (``forward_ratio`` stays)
    and a vol shock adds to ``vol``.

    Parameters
    ----------
    positions : Book or DataFrame of shape (n,)
        A validated :class:`~greeksmargin.book.book.Book` (its cached arrays are returned), or positions,
        validated here (:func:`~greeksmargin.book.book.load_book`): a DataFrame is always validated, unless
        it is the very positions table of a live Book at this market.
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
        (index into ``underlyings``), ``american`` bool (options declared American), and ``underlyings``
        (object array of the distinct names, shape (n_underlyings,)).

    Raises
    ------
    MarketDataError
        Underlying absent from the market, or option without vol (names the row and the column
        ``underlying``, or ``instrument`` when only per-instrument vols are given and this one is missing).
    InputError
        Future expired at the valuation time (names row and column ``expiry``). An option at or past
        its expiry gets ``T = 0``: intrinsic value, no time value.
    MarketDataError
        An American option whose rate and carry put it in the two-boundary negative-rate regime, which the
        American approximations do not cover (names the row and the column ``exercise``).
    """
    return _book(positions, market).arrays


def price_positions(positions: Any, market: MarketSnapshot | None = None) -> pd.DataFrame:
    """Price every position and compute its raw and cash Greeks.

    Parameters
    ----------
    positions : Book or DataFrame of shape (n,)
        A validated Book (:func:`~greeksmargin.book.book.load_book`; its arrays used), or positions (schema
        of :mod:`greeksmargin.book.positions`), validated here once.
    market : MarketSnapshot, optional
        Market snapshot covering every underlying (None with a Book: the Book's).

    Returns
    -------
    DataFrame of shape (n, 35)
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

    if isinstance(positions, Book) and market is None:
        market = positions.market
    expect_type(market, "market", MarketSnapshot, "a MarketSnapshot (greeksmargin.load_market)")
    if not isinstance(positions, (pd.DataFrame, str, Path, Book)):
        raise ArgumentTypeError("positions", "a Book, a positions DataFrame or file path", positions)
    assert isinstance(market, MarketSnapshot)  # checked by expect_type above
    book = _book(positions, market)
    pos = book.positions
    a = book.arrays
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
        am = a["american"] & (T > 0)
        if am.any():  # American options (module docstring); European books never come here
            ga = _american_position_greeks(a, am)
            price[am], delta[am], gamma[am], vega[am] = ga["price"], ga["delta"], ga["gamma"], ga["vega"]
            theta[am], rho[am], vanna[am], volga[am] = ga["theta"], ga["rho"], ga["vanna"], ga["volga"]
            delta_f[am] = ga["delta"] / ratio[am]  # dV/dF at a fixed carry (coin_delta, inverse only: none here)
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
            "exercise": pos["exercise"],
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


def _american_position_greeks(a: dict[str, NDArray[Any]], am: NDArray[np.bool_]) -> dict[str, NDArray[np.float64]]:
    """Price and spot Greeks of the American options ``am`` (live, T > 0) of the position arrays ``a``.

    :func:`greeksmargin.pricing.american_greeks` for price, delta, gamma, vega, theta, rho; vanna and volga
    by central differences of :func:`greeksmargin.pricing.american_price` with its steps (``h_S = 1e-4 S``,
    ``h_sigma = min(1e-4, sigma / 2)``). Shapes (n_american,).
    """
    from greeksmargin.pricing import american_greeks, american_price
    from greeksmargin.pricing.american import BUMPS
    from greeksmargin.risk.exercise import AMERICAN_METHOD, AMERICAN_MIN_VOL, carry_dividend_yield

    c, k, t, r = a["is_call"][am], a["strike"][am], a["T"][am], a["rate"][am]
    s = a["spot"][am]
    q = carry_dividend_yield(a["forward_ratio"][am], t, r)
    v = np.maximum(a["vol"][am], AMERICAN_MIN_VOL)
    g = american_greeks(c, s, k, t, v, r, q, method=AMERICAN_METHOD)

    def px(s_: NDArray[np.float64], v_: NDArray[np.float64]) -> NDArray[np.float64]:
        return american_price(c, s_, k, t, v_, r, q, method=AMERICAN_METHOD)

    hs = BUMPS["spot_rel"] * s
    hv = np.minimum(BUMPS["vol"], 0.5 * v)
    vanna = (px(s + hs, v + hv) - px(s + hs, v - hv) - px(s - hs, v + hv) + px(s - hs, v - hv)) / (4.0 * hs * hv)
    volga = (px(s, v + hv) - 2.0 * g.price + px(s, v - hv)) / (hv * hv)
    return {"price": g.price, "delta": g.delta, "gamma": g.gamma, "vega": g.vega, "theta": g.theta, "rho": g.rho,
            "vanna": vanna, "volga": volga}
