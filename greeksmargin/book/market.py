"""Market snapshot: spots, forwards per expiry, rates, implied vols (per instrument or surface), FX to USD.

A :class:`MarketSnapshot` holds, at one valuation time (UTC), one :class:`UnderlyingMarket` per
underlying and the FX rates of collateral assets to USD. Every lookup is vectorised over arrays of
expiries (``T`` in years ACT/365 from the valuation time) and strikes.

Conventions (documented once, here)
-----------------------------------
* **Rates** are continuously compounded decimals, either flat (``rate``) or a curve of
  ``(expiry, rate)`` nodes interpolated linearly in ``T`` with flat extrapolation.
* **Forwards**. Without listed forwards, ``F(T) = S exp((r(T) - q) T)`` with ``q`` the dividend /
  carry yield. With listed forwards (coin underlyings: the exchange's ``underlying_price`` per expiry)
  ``ln F`` is interpolated linearly in ``T`` between the nodes, the spot being the node ``T = 0``
  (i.e. piecewise-constant carry); beyond the last listed expiry the carry of the last node,
  ``ln(F_last / S) / T_last``, is kept.
* **Implied vols**. A vol given for an instrument name wins. Otherwise the surface: smile slices at
  listed expiries, each a list of points (log-moneyness ``ln(K / F(T_i))``, or strike when
  ``axis = "strike"``) and vols. Within a slice vols are linear in the point with flat extrapolation.
  Across expiries the *total variance* ``w = sigma^2 T`` at a fixed point is linear in ``T``; before the
  first and after the last slice the vol of that slice at the same point is kept (flat vol).
* **FX to USD**: ``USD`` is 1; an explicit ``fx_to_usd`` entry wins; a coin that is an underlying (or the
  settlement currency of one) is worth its spot.
* **Checks**: spot <= 0, vol <= 0, vol > 5 (a percentage given as a decimal), forward <= 0 raise
  :class:`~greeksmargin.errors.MarketDataError` naming the file and the key path.

File format (JSON or TOML), every key but ``valuation_time`` and ``underlyings.<U>.spot`` optional::

    {"valuation_time": "2026-11-20T08:00:00Z",
     "fx_to_usd": {"USDC": 1.0},
     "underlyings": {
       "BTC": {"spot": 95000.0, "currency": "BTC", "rate": 0.0, "dividend_yield": 0.0,
               "forwards": {"2026-12-25T08:00:00Z": 95600.0},
               "perpetual_mark": 95030.0,
               "vols": {"BTC-25DEC26-100000-C": 0.52},
               "surface": {"axis": "log_moneyness",
                           "expiries": ["2026-12-25T08:00:00Z", "2027-03-26T08:00:00Z"],
                           "points": [-0.2, 0.0, 0.2],
                           "vols": [[0.60, 0.52, 0.55], [0.58, 0.53, 0.55]]}},
       "SPX": {"spot": 6000.0, "rate": {"expiries": ["2027-11-19T21:00:00Z"], "rates": [0.04]},
               "dividend_yield": 0.013, "surface": {...}}}}

``surface`` may instead hold ``"slices": [{"expiry": ..., "points": [...], "vols": [...]}, ...]`` when
the slices do not share their points.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from greeksmargin import io
from greeksmargin.errors import ArgumentTypeError, MarketDataError
from greeksmargin.units import MAX_DECIMAL_VOL, SECONDS_PER_YEAR

__all__ = [
    "MarketSnapshot",
    "UnderlyingMarket",
    "VolSurface",
    "from_deribit_chain",
    "load_market",
    "to_utc",
    "years_from",
]

SURFACE_AXES = ("log_moneyness", "strike")


# ----------------------------------------------------------------------------------------------- time
def to_utc(value: Any) -> pd.Timestamp:
    """Parse a date-time (ISO string, datetime, Timestamp, ms since epoch as int) as a UTC Timestamp.

    A naive value is taken as UTC; an aware one is converted.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return pd.Timestamp(int(value), unit="ms", tz="UTC")
    ts = pd.Timestamp(value)
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"not a date-time: {value!r}")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def years_from(valuation_time: pd.Timestamp, expiries: Any) -> NDArray[np.float64]:
    """Years (ACT/365) from ``valuation_time`` to each expiry; NaN where the expiry is NaT.

    Parameters
    ----------
    valuation_time : pandas.Timestamp
        UTC valuation time.
    expiries : array-like of Timestamp, shape (n,)
        UTC expiries (NaT allowed).

    Returns
    -------
    ndarray of shape (n,)
        Time to expiry in years.
    """
    if isinstance(expiries, (pd.Series, pd.Index)) and isinstance(expiries.dtype, pd.DatetimeTZDtype):
        idx = pd.DatetimeIndex(expiries)
    else:
        idx = pd.DatetimeIndex(pd.to_datetime(pd.Series(list(expiries), dtype=object), utc=True))
    idx = idx.tz_convert("UTC")
    try:
        secs = np.asarray((idx - valuation_time).total_seconds(), dtype=float)
    except OverflowError:  # spans over 292 years (e.g. 1677 to 2026): int64 ns overflow, so in float seconds
        ns = idx.asi8.astype(float)
        secs = np.where(idx.isna(), np.nan, (ns - float(pd.Timestamp(valuation_time).value)) / 1e9)
    return secs / SECONDS_PER_YEAR


@functools.lru_cache(maxsize=512)
def _slice_years(valuation_time: pd.Timestamp, expiries: tuple[pd.Timestamp, ...]) -> NDArray[np.float64]:
    """:func:`years_from` of a surface's slice expiries, memoised (a one-trade what-if looks up one vol)."""
    out = years_from(valuation_time, expiries)
    out.flags.writeable = False
    return out


def _iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S") + "Z" if ts.microsecond == 0 else ts.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------- surface
@dataclass(frozen=True)
class VolSurface:
    """Implied vol surface: smile slices at listed expiries.

    Parameters
    ----------
    expiries : tuple of pandas.Timestamp, length n_slices
        Expiry of each slice (UTC), strictly increasing.
    points : tuple of ndarray
        Per slice, increasing points: log-moneyness ``ln(K/F)`` or strikes (see ``axis``).
    vols : tuple of ndarray
        Per slice, decimal vols at the points.
    axis : {"log_moneyness", "strike"}
        What the points are.

    Notes
    -----
    Interpolation: linear in the point within a slice (flat beyond the end points); linear in total
    variance ``sigma^2 T`` across expiries at a fixed point; flat vol before the first and after the
    last slice.
    """

    expiries: tuple[pd.Timestamp, ...]
    points: tuple[NDArray[np.float64], ...]
    vols: tuple[NDArray[np.float64], ...]
    axis: str = "log_moneyness"

    def to_dict(self) -> dict[str, Any]:
        """Serialise as ``{"axis", "slices": [{"expiry", "points", "vols"}]}``."""
        return {
            "axis": self.axis,
            "slices": [
                {"expiry": _iso(e), "points": [float(x) for x in p], "vols": [float(v) for v in s]}
                for e, p, s in zip(self.expiries, self.points, self.vols)
            ],
        }

    def slice_vols(self, x: NDArray[np.float64], i: int) -> NDArray[np.float64]:
        """Vols of slice ``i`` at points ``x`` (linear, flat extrapolation); shape of ``x``."""
        return np.interp(x, self.points[i], self.vols[i])

    def lookup(
        self, t_years: NDArray[np.float64], x_at_slice: NDArray[np.float64], slice_t: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Interpolate the surface.

        Parameters
        ----------
        t_years : ndarray of shape (n,)
            Query expiries in years.
        x_at_slice : ndarray of shape (n_slices, n)
            The query point expressed on each slice's axis (log-moneyness against that slice's query
            forward, or the strike).
        slice_t : ndarray of shape (n_slices,)
            Slice expiries in years from the valuation time.

        Returns
        -------
        ndarray of shape (n,)
            Decimal vols.
        """
        n_s = len(self.expiries)
        sv = np.vstack([self.slice_vols(x_at_slice[i], i) for i in range(n_s)])  # (n_slices, n)
        t = np.asarray(t_years, dtype=float)
        if n_s == 1:
            return sv[0].copy()
        j = np.clip(np.searchsorted(slice_t, t, side="right"), 1, n_s - 1)  # slice_t[j-1] <= t < slice_t[j]
        cols = np.arange(t.size)
        t0, t1 = slice_t[j - 1], slice_t[j]
        v0, v1 = sv[j - 1, cols], sv[j, cols]
        w0, w1 = v0 * v0 * t0, v1 * v1 * t1
        with np.errstate(divide="ignore", invalid="ignore"):
            a = (t - t0) / (t1 - t0)
            w = w0 + a * (w1 - w0)
            out = np.sqrt(np.maximum(w, 0.0) / t)
        out = np.where(t <= slice_t[0], sv[0, cols], out)
        out = np.where(t >= slice_t[-1], sv[-1, cols], out)
        return out


# ------------------------------------------------------------------------------------------- underlying
@dataclass(frozen=True)
class UnderlyingMarket:
    """Market data of one underlying.

    Parameters
    ----------
    spot : float
        Spot / index price in USD (> 0).
    currency : str
        Settlement currency of its inverse (coin-settled) contracts, e.g. ``"BTC"``; ``"USD"`` for a
        USD-settled underlying.
    rate : float
        Flat continuously compounded rate (used when ``rate_curve`` is None).
    rate_curve : tuple of (expiry, rate) pairs, optional
        Rate per expiry, linear in T, flat extrapolation.
    dividend_yield : float
        Continuous dividend / carry yield ``q`` (ignored when ``forwards`` are listed).
    forwards : dict of Timestamp -> float
        Listed forwards per expiry (USD).
    perpetual_mark : float, optional
        Mark price of the perpetual (defaults to spot).
    instrument_vols : dict of str -> float
        Decimal implied vol per instrument name.
    surface : VolSurface, optional
        Implied vol surface.
    """

    spot: float
    currency: str = "USD"
    rate: float = 0.0
    rate_curve: tuple[tuple[pd.Timestamp, float], ...] | None = None
    dividend_yield: float = 0.0
    forwards: Mapping[pd.Timestamp, float] = field(default_factory=dict)
    perpetual_mark: float | None = None
    instrument_vols: Mapping[str, float] = field(default_factory=dict)
    surface: VolSurface | None = None

    @property
    def has_vol(self) -> bool:
        """True when an implied vol can be looked up (a surface or per-instrument vols)."""
        return self.surface is not None or len(self.instrument_vols) > 0


# --------------------------------------------------------------------------------------------- snapshot
class MarketSnapshot:
    """Market data at one valuation time: one :class:`UnderlyingMarket` per underlying and FX to USD.

    Parameters
    ----------
    valuation_time : str, datetime or Timestamp
        The valuation time (UTC; a naive value is taken as UTC).
    underlyings : mapping of str -> UnderlyingMarket
        Market data per underlying name (e.g. ``"BTC"``, ``"SPX"``).
    fx_to_usd : mapping of str -> float, optional
        USD price of one unit of a currency / collateral asset (``USD`` is 1).
    source : str, optional
        Where the snapshot comes from (a file name), used in error messages.

    Examples
    --------
    >>> from greeksmargin.book.market import MarketSnapshot, UnderlyingMarket
    >>> m = MarketSnapshot("2026-11-20T08:00Z", {"SPX": UnderlyingMarket(spot=6000.0, rate=0.04)})
    >>> float(m.forward("SPX", [1.0])[0]) > 6000
    True
    """

    def __init__(
        self,
        valuation_time: Any,
        underlyings: Mapping[str, UnderlyingMarket],
        fx_to_usd: Mapping[str, float] | None = None,
        *,
        source: str = "<MarketSnapshot>",
    ) -> None:
        self.valuation_time: pd.Timestamp = to_utc(valuation_time)
        self.source = source
        self._u: dict[str, UnderlyingMarket] = dict(underlyings)
        self.fx: dict[str, float] = {str(k): float(v) for k, v in (fx_to_usd or {}).items()}
        self._check()

    # ---------------------------------------------------------------- checks
    def _err(self, msg: str, key: str) -> MarketDataError:
        return MarketDataError(f"key '{key}': {msg}", file=self.source)

    def _check(self) -> None:
        for name, um in self._u.items():
            base = f"underlyings.{name}"
            if not (np.isfinite(um.spot) and um.spot > 0):
                raise self._err(f"spot must be a positive number (got {um.spot!r})", f"{base}.spot")
            for e, f in um.forwards.items():
                if not (np.isfinite(f) and f > 0):
                    raise self._err(f"forward must be positive (got {f!r})", f"{base}.forwards.{_iso(e)}")
            if um.perpetual_mark is not None and not um.perpetual_mark > 0:
                raise self._err(f"must be positive (got {um.perpetual_mark!r})", f"{base}.perpetual_mark")
            for inst, v in um.instrument_vols.items():
                _check_vol(v, f"{base}.vols.{inst}", self._err)
            if um.surface is not None:
                s = um.surface
                if s.axis not in SURFACE_AXES:
                    raise self._err(f"axis must be one of {SURFACE_AXES} (got {s.axis!r})", f"{base}.surface.axis")
                for i, (p, sv) in enumerate(zip(s.points, s.vols)):
                    if len(p) == 0 or len(p) != len(sv):
                        raise self._err("points and vols must be non-empty and of equal length",
                                        f"{base}.surface.slices[{i}]")
                    if np.any(np.diff(p) <= 0):
                        raise self._err("points must be strictly increasing", f"{base}.surface.slices[{i}].points")
                    for j, x in enumerate(sv):
                        _check_vol(float(x), f"{base}.surface.vols[{i}][{j}]", self._err)
                if any(b <= a for a, b in zip(s.expiries, s.expiries[1:])):
                    raise self._err("expiries must be strictly increasing", f"{base}.surface.expiries")
        for k, v in self.fx.items():
            if not (np.isfinite(v) and v > 0):
                raise self._err(f"FX rate must be positive (got {v!r})", f"fx_to_usd.{k}")

    # ---------------------------------------------------------------- access
    @property
    def underlyings(self) -> list[str]:
        """Names of the underlyings, in insertion order."""
        return list(self._u)

    def __contains__(self, name: object) -> bool:
        return name in self._u

    def __getitem__(self, name: str) -> UnderlyingMarket:
        return self._get(name)

    def __repr__(self) -> str:
        return f"MarketSnapshot({_iso(self.valuation_time)}, underlyings={self.underlyings})"

    def _get(self, u: str) -> UnderlyingMarket:
        try:
            return self._u[u]
        except KeyError:
            raise MarketDataError(f"underlying '{u}' is not in the market snapshot", file=self.source) from None

    def spot(self, u: str) -> float:
        """Spot / index price of ``u`` in USD."""
        return float(self._get(u).spot)

    def currency(self, u: str) -> str:
        """Settlement currency of ``u``'s inverse contracts (``"USD"`` for a USD-settled underlying)."""
        return self._get(u).currency

    def perpetual_mark(self, u: str) -> float:
        """Mark price of ``u``'s perpetual (spot when not given)."""
        um = self._get(u)
        return float(um.perpetual_mark if um.perpetual_mark is not None else um.spot)

    def has_vol(self, u: str) -> bool:
        """True when ``u`` is in the snapshot with a surface or per-instrument vols."""
        return u in self._u and self._u[u].has_vol

    def has_forwards(self, u: str) -> bool:
        """True when ``u``'s forwards are listed (not derived from rate and dividend yield)."""
        return len(self._get(u).forwards) > 0

    def years(self, expiries: Any) -> NDArray[np.float64]:
        """Years from the valuation time to each expiry (NaN for NaT); shape (n,)."""
        return years_from(self.valuation_time, expiries)

    def rate(self, u: str, t_years: ArrayLike) -> NDArray[np.float64]:
        """Continuously compounded rate of ``u`` for expiries ``t_years``; shape of ``t_years``."""
        um = self._get(u)
        t = np.asarray(t_years, dtype=float)
        if not um.rate_curve:
            return np.full(t.shape, float(um.rate))
        nodes_t = self.years([e for e, _ in um.rate_curve])
        nodes_r = np.array([r for _, r in um.rate_curve], dtype=float)
        order = np.argsort(nodes_t)
        return np.interp(np.nan_to_num(t, nan=0.0), nodes_t[order], nodes_r[order])

    def forward(self, u: str, t_years: ArrayLike) -> NDArray[np.float64]:
        """Forward of ``u`` for expiries ``t_years`` (USD); shape of ``t_years``; spot where T is NaN or <= 0.

        Listed forwards: ``ln F`` linear in T between nodes (spot at T=0), last carry kept beyond.
        Otherwise ``S exp((r(T) - q) T)``.
        """
        um = self._get(u)
        t = np.asarray(t_years, dtype=float)
        tt = np.where(np.isfinite(t), np.maximum(t, 0.0), 0.0)
        if um.forwards:
            items = sorted(um.forwards.items())
            nt = self.years([e for e, _ in items])
            nf = np.log(np.array([f for _, f in items], dtype=float))
            keep = nt > 0
            nt, nf = nt[keep], nf[keep]
            if nt.size == 0:
                return np.full(t.shape, float(um.spot))
            xs = np.concatenate([[0.0], nt])
            ys = np.concatenate([[math.log(um.spot)], nf])
            lf = np.interp(tt, xs, ys)
            carry_last = (ys[-1] - ys[0]) / xs[-1]
            lf = np.where(tt > xs[-1], ys[0] + carry_last * tt, lf)
            return np.where(tt > 0, np.exp(lf), float(um.spot))  # exactly spot at T = 0 (exp(log S) may not be)
        r = self.rate(u, tt)
        return um.spot * np.exp((r - um.dividend_yield) * tt)

    def vol(
        self,
        u: str,
        t_years: ArrayLike,
        strike: ArrayLike,
        instrument: Iterable[str] | None = None,
    ) -> NDArray[np.float64]:
        """Implied vol (decimal) of ``u`` at expiries ``t_years`` and strikes; shape (n,).

        A vol listed for the instrument name wins; otherwise the surface (see the module docstring).
        Raises :class:`MarketDataError` where neither gives a vol.
        """
        um = self._get(u)
        t = np.atleast_1d(np.asarray(t_years, dtype=float))
        k = np.broadcast_to(np.asarray(strike, dtype=float), t.shape)
        out = np.full(t.shape, np.nan)
        if instrument is not None and um.instrument_vols:
            names = pd.Series(list(instrument), dtype=object)
            out = np.array(names.map(dict(um.instrument_vols)).to_numpy(dtype=float), dtype=float, copy=True)
        missing = np.isnan(out)
        if missing.any():
            if um.surface is None:
                raise MarketDataError(f"no implied vol for underlying '{u}' (no surface, instrument not listed)",
                                      file=self.source)
            out[missing] = self._surface_vol(u, um, t[missing], k[missing])
        return out

    def _surface_vol(
        self, u: str, um: UnderlyingMarket, t: NDArray[np.float64], k: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        s = um.surface
        assert s is not None
        slice_t = _slice_years(self.valuation_time, tuple(s.expiries))
        if s.axis == "strike":
            x = np.broadcast_to(k, (len(slice_t), k.size))
        else:
            # log-moneyness against the forward of the query expiry (fixed-moneyness interpolation)
            x_q = np.log(k / self.forward(u, t))
            x = np.broadcast_to(x_q, (len(slice_t), k.size))
        return s.lookup(np.maximum(t, 1e-12), np.asarray(x), slice_t)

    def fx_to_usd(self, ccy: str) -> float:
        """USD value of one unit of ``ccy`` (explicit FX wins; ``USD`` 1; a coin underlying: its spot)."""
        if ccy in self.fx:
            return self.fx[ccy]
        if ccy == "USD":
            return 1.0
        if ccy in self._u:
            return float(self._u[ccy].spot)
        for um in self._u.values():
            if um.currency == ccy:
                return float(um.spot)
        raise MarketDataError(f"no FX rate to USD for currency '{ccy}'", file=self.source)

    # ---------------------------------------------------------------- transforms
    def bumped(self, u: str | None = None, *, spot_rel: float = 0.0, vol_abs: float = 0.0) -> MarketSnapshot:
        """A copy with spot (and listed forwards, perp mark) scaled by ``1 + spot_rel`` and vols shifted.

        Parameters
        ----------
        u : str, optional
            Only this underlying (default: all).
        spot_rel : float
            Relative spot move (0.01 = +1%).
        vol_abs : float
            Absolute vol shift (0.01 = +1 vol point) of surface and per-instrument vols.

        Notes
        -----
        A log-moneyness surface moves with the forward (sticky moneyness); a strike-axis surface and
        per-instrument vols stay where they are (sticky strike).
        """
        new = {}
        for name, um in self._u.items():
            if u is not None and name != u:
                new[name] = um
                continue
            f = 1.0 + spot_rel
            surf = um.surface
            if surf is not None and vol_abs:
                surf = replace(surf, vols=tuple(v + vol_abs for v in surf.vols))
            new[name] = replace(
                um,
                spot=um.spot * f,
                forwards={e: v * f for e, v in um.forwards.items()},
                perpetual_mark=None if um.perpetual_mark is None else um.perpetual_mark * f,
                instrument_vols={k: v + vol_abs for k, v in um.instrument_vols.items()},
                surface=surf,
            )
        return MarketSnapshot(self.valuation_time, new, self.fx, source=self.source)

    # ---------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Serialise to the file format (``load_market(m.to_dict())`` gives an equal snapshot)."""
        unders: dict[str, Any] = {}
        for name, um in self._u.items():
            d: dict[str, Any] = {"spot": float(um.spot), "currency": um.currency}
            if um.rate_curve:
                d["rate"] = {"expiries": [_iso(e) for e, _ in um.rate_curve],
                             "rates": [float(r) for _, r in um.rate_curve]}
            else:
                d["rate"] = float(um.rate)
            d["dividend_yield"] = float(um.dividend_yield)
            if um.forwards:
                d["forwards"] = {_iso(e): float(f) for e, f in sorted(um.forwards.items())}
            if um.perpetual_mark is not None:
                d["perpetual_mark"] = float(um.perpetual_mark)
            if um.instrument_vols:
                d["vols"] = {k: float(v) for k, v in um.instrument_vols.items()}
            if um.surface is not None:
                d["surface"] = um.surface.to_dict()
            unders[name] = d
        return {"valuation_time": _iso(self.valuation_time), "fx_to_usd": dict(self.fx), "underlyings": unders}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MarketSnapshot):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]


def _check_vol(v: Any, key: str, err: Any) -> None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise err(f"vol must be a number (got {v!r})", key) from None
    if not np.isfinite(x) or x <= 0:
        raise err(f"vol must be positive (got {x!r})", key)
    if x > MAX_DECIMAL_VOL:
        raise err(f"vol {x!r} > {MAX_DECIMAL_VOL}: give vols as decimals (0.55), not percent (55)", key)


# ----------------------------------------------------------------------------------------------- loading
def load_market(source: str | Path | Mapping[str, Any] | MarketSnapshot) -> MarketSnapshot:
    """Load a :class:`MarketSnapshot` from a JSON / TOML file or a dict (format in the module docstring).

    Parameters
    ----------
    source : str, Path, dict or MarketSnapshot
        File path (``.json`` or ``.toml``), an already parsed dict, or a snapshot (returned as is).

    Returns
    -------
    MarketSnapshot

    Raises
    ------
    MarketDataError
        A missing or bad value; the message names the file and the key path.
    """
    if isinstance(source, MarketSnapshot):
        return source
    if isinstance(source, Mapping):
        return _from_dict(source, "<dict>")
    if not isinstance(source, (str, Path)):
        raise ArgumentTypeError("source", "a market file path (str or Path), a dict or a MarketSnapshot", source)
    p = Path(source)
    if p.suffix.lower() not in (".json", ".toml"):
        raise MarketDataError(f"unsupported market file format '{p.suffix}' (use .json or .toml)", file=str(p))
    data = io.read_toml(p) if p.suffix.lower() == ".toml" else io.read_json(p)
    if not isinstance(data, Mapping):
        raise MarketDataError("the market file must hold an object at the top level", file=str(p))
    return _from_dict(data, str(p))


def _from_dict(d: Mapping[str, Any], src: str) -> MarketSnapshot:
    from greeksmargin.book.schemas import check_market

    check_market(d, src)  # every key typed and ranged (greeksmargin.book.schemas.MarketFile)
    def err(msg: str, key: str) -> MarketDataError:
        return MarketDataError(f"key '{key}': {msg}", file=src)

    def num(x: Any, key: str) -> float:
        if isinstance(x, bool):
            raise err(f"must be a number (got {x!r})", key)
        try:
            return float(x)
        except (TypeError, ValueError):
            raise err(f"must be a number (got {x!r})", key) from None

    def when(x: Any, key: str) -> pd.Timestamp:
        try:
            return to_utc(x)
        except (ValueError, TypeError):
            raise err(f"not a date-time (got {x!r})", key) from None

    known_top = {"valuation_time", "fx_to_usd", "underlyings", "source", "description"}
    for k in d:
        if k not in known_top:
            raise err(f"unknown key (known: {sorted(known_top)})", str(k))
    if "valuation_time" not in d:
        raise err("missing", "valuation_time")
    vt = when(d["valuation_time"], "valuation_time")
    unders_in = d.get("underlyings")
    if not isinstance(unders_in, Mapping) or not unders_in:
        raise err("missing or empty (a table of underlyings)", "underlyings")
    known_u = {"spot", "currency", "rate", "dividend_yield", "forwards", "perpetual_mark", "vols", "surface"}
    unders: dict[str, UnderlyingMarket] = {}
    for name, ud in unders_in.items():
        base = f"underlyings.{name}"
        if not isinstance(ud, Mapping):
            raise err("must be a table", base)
        for k in ud:
            if k not in known_u:
                raise err(f"unknown key (known: {sorted(known_u)})", f"{base}.{k}")
        if "spot" not in ud:
            raise err("missing", f"{base}.spot")
        spot = num(ud["spot"], f"{base}.spot")
        rate_in = ud.get("rate", 0.0)
        rate, curve = 0.0, None
        if isinstance(rate_in, Mapping):
            ex, rs = rate_in.get("expiries"), rate_in.get("rates")
            if not isinstance(ex, list) or not isinstance(rs, list) or len(ex) != len(rs) or not ex:
                raise err("needs equal-length non-empty lists 'expiries' and 'rates'", f"{base}.rate")
            curve = tuple(
                (when(e, f"{base}.rate.expiries[{i}]"), num(r, f"{base}.rate.rates[{i}]"))
                for i, (e, r) in enumerate(zip(ex, rs))
            )
        else:
            rate = num(rate_in, f"{base}.rate")
        fwd_in = ud.get("forwards", {}) or {}
        if not isinstance(fwd_in, Mapping):
            raise err("must be a table expiry -> forward", f"{base}.forwards")
        forwards = {when(e, f"{base}.forwards.{e}"): num(f, f"{base}.forwards.{e}") for e, f in fwd_in.items()}
        vols_in = ud.get("vols", {}) or {}
        if not isinstance(vols_in, Mapping):
            raise err("must be a table instrument -> vol", f"{base}.vols")
        inst_vols = {str(k): num(v, f"{base}.vols.{k}") for k, v in vols_in.items()}
        surface = None
        if ud.get("surface") is not None:
            surface = _surface_from_dict(ud["surface"], f"{base}.surface", err, num, when)
        pm = ud.get("perpetual_mark")
        unders[str(name)] = UnderlyingMarket(
            spot=spot,
            currency=str(ud.get("currency", "USD")),
            rate=rate,
            rate_curve=curve,
            dividend_yield=num(ud.get("dividend_yield", 0.0), f"{base}.dividend_yield"),
            forwards=forwards,
            perpetual_mark=None if pm is None else num(pm, f"{base}.perpetual_mark"),
            instrument_vols=inst_vols,
            surface=surface,
        )
    fx_in = d.get("fx_to_usd", {}) or {}
    if not isinstance(fx_in, Mapping):
        raise err("must be a table currency -> USD price", "fx_to_usd")
    fx = {str(k): num(v, f"fx_to_usd.{k}") for k, v in fx_in.items()}
    return MarketSnapshot(vt, unders, fx, source=src)


def _surface_from_dict(sd: Any, base: str, err: Any, num: Any, when: Any) -> VolSurface:
    if not isinstance(sd, Mapping):
        raise err("must be a table", base)
    axis = str(sd.get("axis", "log_moneyness"))
    if axis not in SURFACE_AXES:
        raise err(f"must be one of {SURFACE_AXES} (got {axis!r})", f"{base}.axis")
    rows: list[tuple[pd.Timestamp, NDArray[np.float64], NDArray[np.float64]]] = []
    if "slices" in sd:
        for i, sl in enumerate(sd["slices"]):
            key = f"{base}.slices[{i}]"
            if not isinstance(sl, Mapping) or not {"expiry", "points", "vols"} <= set(sl):
                raise err("each slice needs 'expiry', 'points' and 'vols'", key)
            pts = np.array([num(x, f"{key}.points[{j}]") for j, x in enumerate(sl["points"])], dtype=float)
            vs = [sl["vols"][j] for j in range(len(sl["vols"]))]
            for j, v in enumerate(vs):
                _check_vol(v, f"{key}.vols[{j}]", err)
            rows.append((when(sl["expiry"], f"{key}.expiry"), pts, np.array(vs, dtype=float)))
    else:
        for k in ("expiries", "points", "vols"):
            if k not in sd:
                raise err("missing (a surface needs 'expiries', 'points' and 'vols', or 'slices')", f"{base}.{k}")
        pts = np.array([num(x, f"{base}.points[{j}]") for j, x in enumerate(sd["points"])], dtype=float)
        vols = sd["vols"]
        if len(vols) != len(sd["expiries"]):
            raise err("one row of vols per expiry expected", f"{base}.vols")
        for i, (e, row) in enumerate(zip(sd["expiries"], vols)):
            if len(row) != len(pts):
                raise err(f"row has {len(row)} vols for {len(pts)} points", f"{base}.vols[{i}]")
            for j, v in enumerate(row):
                _check_vol(v, f"{base}.vols[{i}][{j}]", err)
            rows.append((when(e, f"{base}.expiries[{i}]"), pts, np.array(row, dtype=float)))
    if not rows:
        raise err("has no slices", base)
    rows.sort(key=lambda r: r[0])
    return VolSurface(
        expiries=tuple(r[0] for r in rows),
        points=tuple(r[1] for r in rows),
        vols=tuple(r[2] for r in rows),
        axis=axis,
    )


# --------------------------------------------------------------------------------------- Deribit chains
CHAIN_COLUMNS = (
    "instrument_name",
    "option_type",
    "strike",
    "expiration_timestamp",
    "timestamp",
    "underlying_price",
    "index_price",
    "interest_rate",
    "mark_iv",
)


def from_deribit_chain(
    source: str | Path | pd.DataFrame, *, underlying: str | None = None
) -> tuple[MarketSnapshot, pd.DataFrame]:
    """Build a snapshot and an instruments table from a Deribit option chain (coin-settled options).

    Parameters
    ----------
    source : str, Path or DataFrame
        A chain table (format of ``validation/cases/deribit_chain/``): one row per option with
        instrument_name, option_type, strike, expiration_timestamp and timestamp (ms, UTC),
        underlying_price (forward of the expiry), index_price, interest_rate, mark_iv (percent).
    underlying : str, optional
        Underlying name; default the prefix of the instrument names (``"BTC"``).

    Returns
    -------
    (MarketSnapshot, DataFrame)
        The snapshot: valuation time = median row timestamp, spot = median index price, forwards per
        expiry = median underlying_price of the expiry, flat rate = median interest_rate, per-instrument
        vols = mark_iv / 100, and a log-moneyness surface (one slice per expiry, the mean vol per
        strike of calls and puts). The instruments: positions-schema rows (account ``"chain"``,
        quantity 1, multiplier 1, settlement ``inverse``), index = instrument_name.
    """
    src = "<DataFrame>" if isinstance(source, pd.DataFrame) else str(source)
    df = source.copy() if isinstance(source, pd.DataFrame) else io.read_table(source)
    for c in CHAIN_COLUMNS:
        if c not in df.columns:
            raise MarketDataError("missing column of a Deribit chain", file=src, column=c)
    name = underlying or str(df["instrument_name"].iloc[0]).split("-")[0]
    vt = pd.Timestamp(int(df["timestamp"].median()), unit="ms", tz="UTC")
    expiry = pd.to_datetime(df["expiration_timestamp"].astype("int64"), unit="ms", utc=True)
    df = df.assign(_expiry=expiry, _vol=df["mark_iv"].astype(float) / 100.0)
    forwards = {pd.Timestamp(e): float(g["underlying_price"].median()) for e, g in df.groupby("_expiry")}
    spot = float(df["index_price"].median())
    rate = float(df["interest_rate"].median())
    slices_e, slices_p, slices_v = [], [], []
    for e, g in df.groupby("_expiry"):
        if pd.Timestamp(e) <= vt:
            continue
        by_k = g.groupby("strike")["_vol"].mean().sort_index()
        f = forwards[pd.Timestamp(e)]
        slices_e.append(pd.Timestamp(e))
        slices_p.append(np.log(by_k.index.to_numpy(dtype=float) / f))
        slices_v.append(by_k.to_numpy(dtype=float))
    surface = (
        VolSurface(tuple(slices_e), tuple(slices_p), tuple(slices_v), axis="log_moneyness") if slices_e else None
    )
    um = UnderlyingMarket(
        spot=spot,
        currency=name,
        rate=rate,
        forwards=forwards,
        instrument_vols=dict(zip(df["instrument_name"].astype(str), df["_vol"].astype(float))),
        surface=surface,
    )
    market = MarketSnapshot(vt, {name: um}, source=src)
    inst = pd.DataFrame(
        {
            "account": "chain",
            "instrument": df["instrument_name"].astype(str).to_numpy(),
            "underlying": name,
            "kind": "option",
            "option_type": df["option_type"].astype(str).str.lower().to_numpy(),
            "strike": df["strike"].astype(float).to_numpy(),
            "expiry": expiry.to_numpy(),
            "quantity": 1.0,
            "multiplier": 1.0,
            "settlement": "inverse",
            "premium_currency": name,
        },
        index=pd.Index(df["instrument_name"].astype(str).to_numpy(), name="instrument_name"),
    )
    inst["expiry"] = pd.to_datetime(inst["expiry"], utc=True)
    return market, inst
