"""Market inputs of every position as arrays (looked up once), and the market faults of a positions table.

:func:`position_arrays` is the one place the book's market lookups happen (the margin kernels, the Greeks
and the solvency book read its arrays); :func:`market_faults` finds, in one vectorised pass, every row the
market cannot price. Both work on positions already normalised by
:func:`~greeksmargin.book.positions.check_positions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.book.market import MarketSnapshot
from greeksmargin.errors import InputError, MarketDataError
from greeksmargin.pricing import early_exercise_regime

__all__ = ["KIND_CODES", "market_faults", "position_arrays"]

#: integer code of each kind in :func:`position_arrays` (``kind_code``)
KIND_CODES = {"option": 0, "future": 1, "perpetual": 2, "spot": 3}

#: a fault sink: ``fail(mask, column, rule, message_of_row, error_class)`` (see ``positions._Sink``)
Fail = Callable[..., None]


def market_faults(pos: pd.DataFrame, market: MarketSnapshot, fail: Fail) -> None:
    """Report every position the market cannot price, through ``fail`` (raising or recording).

    Rules, in this order (a row gets the first that applies): the underlying is absent from the
    snapshot (column ``underlying``); an option on an underlying without any implied vol (column
    ``underlying``); an option whose underlying has no surface and whose instrument is not among its
    per-instrument vols (column ``instrument``); a future at or past the valuation time (column
    ``expiry``). ``fail`` receives boolean masks of shape (n_positions,) and ``message(i)`` callables of
    the row position ``i``.
    """
    und = pos["underlying"].to_numpy(dtype=object)
    kind = pos["kind"].to_numpy(dtype=object)
    known = set(market.underlyings)
    names = ", ".join(sorted(known))
    fail(~np.isin(und, list(known)), "underlying", "in_market",
         lambda i: f"underlying '{und[i]}' is not in the market snapshot (known: {names})", MarketDataError)
    is_opt = kind == "option"
    no_vol = [u for u in known if not market.has_vol(u)]
    fail(is_opt & np.isin(und, no_vol), "underlying", "has_vol",
         lambda i: f"option on '{und[i]}' but the market has no implied vol for it (no surface, no instrument "
                   "vols)", MarketDataError)
    inst = pos["instrument"].to_numpy(dtype=object)
    for u in known:
        um = market[u]
        if um.surface is not None or not um.has_vol:
            continue
        m = is_opt & (und == u) & ~np.isin(inst, list(um.instrument_vols))
        fail(m, "instrument", "has_vol",
             lambda i, u=u: f"no implied vol for instrument '{inst[i]}' of underlying '{u}' (not listed in the "
                            "market's vols and no surface)", MarketDataError)
    T = market.years(pos["expiry"])
    vt = market.valuation_time
    fail((kind == "future") & ~(T > 0), "expiry", "expired",
         lambda i: f"future expired: expiry {pos['expiry'].iloc[i]} is not after the valuation time {vt}",
         InputError)


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


def position_arrays(pos: pd.DataFrame, market: MarketSnapshot, *, covered: bool = False,
                    codes: Mapping[str, Any] | None = None) -> dict[str, NDArray[Any]]:
    """Look up, once, every market input of every position (see :func:`greeksmargin.risk.greeks.market_arrays`).

    ``pos`` must be normalised and covered by ``market`` (no :func:`market_faults`); the keys and units
    are those documented on :func:`~greeksmargin.risk.greeks.market_arrays`. Raises the first market
    fault (naming its row) if there is one, unless ``covered`` says :func:`market_faults` already ran on
    these very rows at this market (a Book built by ``load_book``). ``codes``: the validation pass's codes of
    these very rows (:func:`greeksmargin.book.positions.check_positions`), read instead of comparing the
    strings again (the same arrays).
    """

    def fail(mask: Any, column: str, rule: str, message: Any, cls: type[InputError] = InputError) -> None:
        m = np.asarray(mask, dtype=bool)
        if m.any():
            i = int(np.argmax(m))
            raise cls(message(i), file=str(pos.attrs.get("source", "<DataFrame>")), row=pos.index[i], column=column)

    if not covered:
        market_faults(pos, market, fail)
    n = len(pos)
    if codes is not None:
        kind_code = np.asarray(codes["kind_code"], dtype=np.int8)
    else:
        kind = pos["kind"].to_numpy(dtype=object)
        kc, kinds_seen = pd.factorize(kind)  # one hash pass over the strings instead of a comparison per kind
        kind_code = np.append(np.array([KIND_CODES.get(k, -1) for k in kinds_seen], dtype=np.int8), -1)[kc]
    is_opt = kind_code == 0
    T = market.years(pos["expiry"])
    # an option at or past its expiry: T = 0, valued at intrinsic (zero time value), never an error
    T = np.where(is_opt, np.maximum(T, 0.0), T)
    strike = pos["strike"].to_numpy(dtype=float)
    if codes is not None:
        u_codes, names = np.asarray(codes["underlying_code"]), list(codes["underlyings"])
    else:
        u_codes, names = pd.factorize(pos["underlying"], sort=False)
    spot = np.empty(n)
    forward = np.empty(n)
    rate = np.empty(n)
    vol = np.full(n, np.nan)
    perp_ratio = np.ones(n)
    fwd_from_rate = np.zeros(n, dtype=bool)
    instruments = pos["instrument"].to_numpy(dtype=object)
    for j, u in enumerate(names):
        m = u_codes == j
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
            if market[u].instrument_vols:
                vol[mo] = market.vol(u, T[mo], strike[mo], instrument=instruments[mo])
            else:  # a surface only: the vol of each distinct (expiry, strike), spread to the positions
                tc, _ = _distinct(T[mo])
                kc2, _ = _distinct(strike[mo])
                pc, first = _distinct(tc.astype(np.int64) * (int(kc2.max()) + 1) + kc2)
                vol[np.flatnonzero(mo)] = market.vol(u, T[mo][first], strike[mo][first])[pc]
    with np.errstate(divide="ignore", invalid="ignore"):
        carry = np.where(np.isfinite(T) & (T > 0), np.log(forward / spot) / T, 0.0)
    ot = pos["option_type"].to_numpy(dtype=object)
    if codes is not None:
        american = np.asarray(codes["american"], dtype=bool)
        is_call, inverse = np.asarray(codes["is_call"], dtype=bool), np.asarray(codes["inverse"], dtype=bool)
    else:
        american = is_opt & pos["exercise"].isin(("american",)).to_numpy() if "exercise" in pos.columns \
            else np.zeros(n, dtype=bool)
        is_call, inverse = is_opt & (ot == "call"), (pos["settlement"] == "inverse").to_numpy()
    if american.any():
        _check_american_regime(pos, american, ot, T, forward / spot, rate)
    return {
        "kind_code": kind_code,
        "is_call": is_call,
        "strike": strike,
        "T": T,
        "spot": spot,
        "forward": forward,
        "forward_ratio": forward / spot,
        "carry": carry,
        "vol": vol,
        "rate": rate,
        "size": pos["quantity"].to_numpy(dtype=float) * pos["multiplier"].to_numpy(dtype=float),
        "inverse": inverse,
        "forward_from_rate": fwd_from_rate,
        "perp_ratio": perp_ratio,
        "underlying_code": np.asarray(u_codes).astype(np.int64),
        "american": american,
        "underlyings": np.asarray(names, dtype=object),
    }


def _check_american_regime(pos: pd.DataFrame, american: NDArray[np.bool_], option_type: NDArray[Any],
                           T: NDArray[np.float64], ratio: NDArray[np.float64], rate: NDArray[np.float64]) -> None:
    """Refuse American options in the two-boundary negative-rate regime (:mod:`greeksmargin.pricing.american`)."""
    live = np.flatnonzero(american & (T > 0))
    if live.size == 0:
        return
    # the carry dividend yield q = r - ln(F/S)/T (greeksmargin.risk.exercise.carry_dividend_yield)
    q = rate[live] - np.log(ratio[live]) / T[live]
    regime = early_exercise_regime(option_type[live] == "call", rate[live], q)
    bad = regime == "double"
    if bad.any():
        i = int(live[int(np.argmax(bad))])
        j = int(np.argmax(bad))
        raise MarketDataError(
            f"American {option_type[i]} with rate {float(rate[i])!r} and carry dividend yield {float(q[j])!r} "
            "(q = r - ln(F/S)/T): a regime (put: r <= 0 and q < r; call: q <= 0 and r < q) with possibly two "
            "exercise boundaries, outside the American approximation (value it as european, or with "
            "greeksmargin.pricing.lattice_price)",
            file=str(pos.attrs.get("source", "<DataFrame>")), row=pos.index[i], column="exercise")
