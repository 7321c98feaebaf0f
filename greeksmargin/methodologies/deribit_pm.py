"""Deribit portfolio margin (segregated, one settlement coin): the risk matrix of Deribit's documentation.

All figures are in coin (BTC, ETH). A position of size ``Q`` coin in an inverse perpetual or future gains
``Q (1 - 1/(1+m))`` coin when its price moves by the relative amount ``m`` (the move applies to the index and,
proportionally, to every mark; the coin P&L does not depend on the level). Coin-settled options (size in
contracts of one coin) are revalued with Black-76 on the shocked forward and shocked vol, value in coin
``C_usd / F``.

Grid: ``2 buckets_count + 1`` price moves from ``-price_range`` to ``+price_range`` (ascending), each with the
vol up / unchanged / down (27 scenarios). Extended table: large moves (``extended_moves``), vol up only, each
position's P&L counted at ``price_range / |move| * extended_table_factor``; delta-one positions take the P&L of
the edge of the standard grid on the same side (``delta_one_extended = "edge"``). Aggregation: positive
entries (gains) are multiplied by ``pnl_offset`` (capped at ``max_offsetable_pnl`` when that is > 0); an
extended loss not above ``extended_dampener`` USD vanishes (``extended_dampener_mode = "threshold"``; or
``"subtract"``).

``worst_case = max(0, -min(entries))``; ``roll_shock = sum_i |Q_i| max(min_annualised_move,
annualised_move_risk T_i)`` over perpetuals (T = 0) and futures (``roll_shock_rule = "max_term"``; ``"min"``
uses ``min_annualised_move`` alone: both match the published case); ``delta_shock`` = 0 while the net USD delta
is below ``delta_total_liq_shock_threshold``, above it ``max_delta_shock |delta_coin| min(1, excess /
threshold)`` (UNSURE: Deribit does not publish the rule). ``risk_matrix_margin = worst_case + roll_shock +
delta_shock + correlation_contingency``; ``MM = mm_factor * risk_matrix_margin``; IM = risk_matrix_margin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from greeksmargin.errors import InputError, ModelError
from greeksmargin.units import MS_PER_YEAR

VOL_STATES = ("up", "same", "down")
DEFAULT_EXTENDED_MOVES = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
DELTA_ONE = ("perpetual", "future")


@dataclass(frozen=True)
class DeribitPMParams:
    """Parameters of the Deribit risk matrix for one currency (exchange names; see module docstring).

    Attributes
    ----------
    price_range : float
        R, largest relative price move of the standard grid (0.16 BTC).
    buckets_count : int
        Steps per side (4: 9 price moves).
    volatility_range_up, volatility_range_down : float
        Relative vol shocks at 30 days.
    short_term_vega_power, long_term_vega_power : float
        Powers of (30 / DTE) below / from 30 days.
    min_volatility_for_shock_up : float
        Floor of the shocked-up vol (decimal).
    max_delta_shock : float
        Largest delta shock, fraction of the net delta.
    delta_total_liq_shock_threshold : float
        USD net delta under which no delta shock applies.
    extended_table_factor : float
        Multiplier of the fraction R/|move| in the extended table.
    annualised_move_risk, min_annualised_move : float
        Roll-shock rates.
    extended_dampener : float
        USD loss of an extended entry not counted (threshold) or deducted (subtract).
    pnl_offset : float
        Fraction of gains that offsets losses (0 BTC).
    mm_factor : float
        MM / risk-matrix margin (0.8).
    max_offsetable_pnl : float
        Cap (coin) on the offset gain of one entry; 0 = no cap (choice: Deribit's BTC value is 0 with pnl_offset 0).
    extended_moves : tuple of float
        Relative moves of the extended table.
    dte_floor_days : float
        Floor of the days to expiry in the vol-shock power law (UNSURE).
    min_volatility_for_shock_down : float
        Floor of the shocked-down vol (decimal; 0 by default).
    correlation_contingency : float
        Coin amount added (0 for one currency).
    roll_shock_rule : {"max_term", "min"}
        See module docstring.
    extended_dampener_mode : {"threshold", "subtract"}
        See module docstring.
    delta_one_extended : {"edge", "full"}
        Delta-one P&L in the extended table: the edge of the standard grid, or the P&L at the extended move.
    """

    price_range: float = 0.16
    buckets_count: int = 4
    volatility_range_up: float = 0.5
    volatility_range_down: float = 0.25
    short_term_vega_power: float = 0.3
    long_term_vega_power: float = 0.13
    min_volatility_for_shock_up: float = 0.5
    max_delta_shock: float = 0.1
    delta_total_liq_shock_threshold: float = 20_000_000.0
    extended_table_factor: float = 1.0
    annualised_move_risk: float = 0.075
    min_annualised_move: float = 0.01
    extended_dampener: float = 100_000.0
    pnl_offset: float = 0.0
    mm_factor: float = 0.8
    max_offsetable_pnl: float = 0.0
    extended_moves: tuple[float, ...] = DEFAULT_EXTENDED_MOVES
    dte_floor_days: float = 1.0
    min_volatility_for_shock_down: float = 0.0
    correlation_contingency: float = 0.0
    roll_shock_rule: str = "max_term"
    extended_dampener_mode: str = "threshold"
    delta_one_extended: str = "edge"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, file: str | None = None, strict: bool = False) -> DeribitPMParams:
        """Build from a dict of exchange parameter names.

        Parameters
        ----------
        d : mapping
            Parameter names as in the exchange API (unknown names are ignored unless ``strict``).
        file : str, optional
            File name for error messages.
        strict : bool, default False
            Reject unknown names (model files) instead of ignoring them (exchange responses carry extra keys).
        """
        names = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in d.items():
            if key not in names:
                if strict:
                    raise ModelError("unknown parameter", file=file, key=key)
                continue
            default = names[key].default
            try:
                if key == "extended_moves":
                    kwargs[key] = tuple(float(x) for x in value)
                elif isinstance(default, str):
                    kwargs[key] = str(value)
                elif isinstance(default, int) and not isinstance(default, bool):
                    kwargs[key] = int(value)
                else:
                    kwargs[key] = float(value)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"bad value {value!r}", file=file, key=key) from exc
        p = cls(**kwargs)
        if p.roll_shock_rule not in ("max_term", "min"):
            raise ModelError("expected 'max_term' or 'min'", file=file, key="roll_shock_rule")
        if p.extended_dampener_mode not in ("threshold", "subtract"):
            raise ModelError("expected 'threshold' or 'subtract'", file=file, key="extended_dampener_mode")
        if p.delta_one_extended not in ("edge", "full"):
            raise ModelError("expected 'edge' or 'full'", file=file, key="delta_one_extended")
        if p.buckets_count < 1 or p.price_range <= 0:
            raise ModelError("price_range must be > 0 and buckets_count >= 1", file=file, key="price_range")
        return p

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists for tuples)."""
        d = asdict(self)
        d["extended_moves"] = list(self.extended_moves)
        return d


@dataclass
class DeribitPMResult:
    """Risk matrix of one currency's portfolio (coin).

    Attributes
    ----------
    price_moves : ndarray of shape (2 n + 1,)
        Relative moves of the standard grid, ascending.
    position_pnl : dict[str, ndarray of shape (2 n + 1, 3)]
        Coin P&L per instrument, per price move and vol state (up, same, down).
    position_extended : dict[str, ndarray of shape (n_ext,)]
        Coin P&L per instrument in the extended table, fraction applied.
    standard : ndarray of shape (2 n + 1, 3)
        Aggregated entries after the gain offset.
    extended : ndarray of shape (n_ext,)
        Aggregated extended entries after offset and dampener.
    worst_case, roll_shock, delta_shock, correlation_contingency, risk_matrix_margin, maintenance_margin,
    initial_margin : float
        Components and requirements (coin).
    delta_coin : float
        Net coin P&L per unit relative move.
    """

    price_moves: NDArray[np.float64]
    position_pnl: dict[str, NDArray[np.float64]]
    position_extended: dict[str, NDArray[np.float64]]
    standard: NDArray[np.float64]
    extended: NDArray[np.float64]
    worst_case: float
    roll_shock: float
    delta_shock: float
    correlation_contingency: float
    risk_matrix_margin: float
    maintenance_margin: float
    initial_margin: float
    delta_coin: float
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def aggregated_pnl_coin(self) -> NDArray[np.float64]:
        """Aggregated entry per price move: the worst over the vol states, shape (2 n + 1,)."""
        return self.standard.min(axis=1)

    def summary(self) -> dict[str, Any]:
        """Figures in the shape of the published case's ``expected`` block."""
        return {
            "price_moves": self.price_moves.tolist(),
            "position_pnl_coin": {k: v[:, 1].tolist() for k, v in self.position_pnl.items()},
            "aggregated_pnl_coin": self.aggregated_pnl_coin.tolist(),
            "worst_case": self.worst_case,
            "roll_shock": self.roll_shock,
            "delta_shock": self.delta_shock,
            "risk_matrix_margin": self.risk_matrix_margin,
            "maintenance_margin": self.maintenance_margin,
        }


# --------------------------------------------------------------------------------------------------- inputs
def _positions_frame(positions: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(positions) if not isinstance(positions, pd.DataFrame) else positions).copy()
    if df.empty:
        return pd.DataFrame(columns=["instrument", "kind", "size", "mark_price", "expiry_ms"])
    for col in ("instrument", "kind", "size"):
        if col not in df.columns:
            raise InputError("missing position field", file="<positions>", column=col)
    df["kind"] = df["kind"].astype(str).str.lower()
    bad = ~df["kind"].isin([*DELTA_ONE, "option"])
    if bad.any():
        row = df.index[bad][0]
        raise InputError(f"kind must be perpetual, future or option, got '{df.loc[row, 'kind']}'",
                         file="<positions>", row=row, column="kind")
    df["size"] = pd.to_numeric(df["size"], errors="coerce")
    if df["size"].isna().any():
        raise InputError("size is not a number", file="<positions>", row=df.index[df["size"].isna()][0],
                         column="size")
    need_expiry = df["kind"] == "option"
    if need_expiry.any() and ("expiry_ms" not in df.columns or df.loc[need_expiry, "expiry_ms"].isna().any()):
        raise InputError("options need expiry_ms", file="<positions>", column="expiry_ms")
    return df


def vol_shock_multiplier(dte_days: NDArray[np.float64], p: DeribitPMParams) -> NDArray[np.float64]:
    """``(30 / max(DTE, floor))^power``, power short-term below 30 days, long-term from 30 days."""
    dte = np.asarray(dte_days, dtype=float)
    power = np.where(dte < 30.0, p.short_term_vega_power, p.long_term_vega_power)
    return (30.0 / np.maximum(dte, p.dte_floor_days)) ** power


def _option_pnl(row: Mapping[str, Any], moves: NDArray[np.float64], vols: list[float], t: float,
                index_price: float) -> NDArray[np.float64]:
    """Coin P&L per contract of a coin-settled option, shape (len(moves), len(vols))."""
    from greeksmargin.pricing import black76_price

    forward = float(row.get("underlying_price", np.nan))
    if not np.isfinite(forward):
        forward = index_price
    strike = float(row["strike"])
    is_call = str(row.get("option_type", "call")).lower() in ("call", "c")
    vol = float(row["vol"]) if "vol" in row and pd.notna(row.get("vol")) else float(row["mark_iv"]) / 100.0

    def coin_value(f: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
        f, s = np.broadcast_arrays(np.atleast_1d(f).astype(float), np.atleast_1d(s).astype(float))
        shape = f.shape
        price = black76_price(np.full(f.size, is_call), f.ravel().copy(), np.full(f.size, strike),
                              np.full(f.size, t), s.ravel().copy(), np.zeros(f.size))
        return np.asarray(price, dtype=float).reshape(shape) / f

    v0 = float(coin_value(np.array([forward]), np.array([vol]))[0])
    f_new = forward * (1.0 + np.asarray(moves, dtype=float))[:, None]
    return coin_value(f_new, np.asarray(vols, dtype=float)[None, :]) - v0


def deribit_pm_margin(
    positions: pd.DataFrame | Iterable[Mapping[str, Any]],
    index_price: float,
    params: DeribitPMParams | Mapping[str, Any],
    timestamp_ms: float | None = None,
) -> DeribitPMResult:
    """Deribit portfolio-margin risk matrix of one currency.

    Parameters
    ----------
    positions : DataFrame or iterable of dict
        Fields: ``instrument``, ``kind`` (perpetual, future, option), ``size`` (coin for perpetuals/futures,
        contracts of one coin for options; signed), ``mark_price``, ``expiry_ms`` (futures, options); options also
        ``strike``, ``option_type``, ``vol`` (decimal) or ``mark_iv`` (percent), ``underlying_price`` (forward).
    index_price : float
        Index price, USD per coin (dampener and delta threshold are in USD).
    params : DeribitPMParams or mapping
        Exchange parameters.
    timestamp_ms : float, optional
        Valuation time, ms since epoch: needed for options; for futures it sets T of the roll shock (without it
        T = 0, i.e. the roll shock rate is ``min_annualised_move``).

    Returns
    -------
    DeribitPMResult
    """
    p = params if isinstance(params, DeribitPMParams) else DeribitPMParams.from_dict(params)
    df = _positions_frame(positions)
    n = p.buckets_count
    moves = np.array([i * p.price_range / n for i in range(-n, n + 1)])
    ext = np.asarray(p.extended_moves, dtype=float)
    frac = p.price_range / np.abs(ext) * p.extended_table_factor
    std_total = np.zeros((moves.size, 3))
    ext_total = np.zeros(ext.size)
    pos_pnl: dict[str, NDArray[np.float64]] = {}
    pos_ext: dict[str, NDArray[np.float64]] = {}
    roll = 0.0
    delta_coin = 0.0
    h = 1e-4
    for idx, row in df.iterrows():
        q = float(row["size"])
        kind = row["kind"]
        name = str(row["instrument"])
        t = 0.0
        if kind in ("option", "future") and timestamp_ms is None:
            raise InputError(f"timestamp_ms is needed to value {kind}s (time to expiry): {name}",
                             column="timestamp_ms")
        expiry = row.get("expiry_ms", np.nan)
        if kind in ("future", "option") and timestamp_ms is not None and pd.notna(expiry):
            t = max((float(expiry) - float(timestamp_ms)) / MS_PER_YEAR, 0.0)
        if kind in DELTA_ONE:
            std = np.repeat((q * (1.0 - 1.0 / (1.0 + moves)))[:, None], 3, axis=1)
            if p.delta_one_extended == "edge":
                edge = np.where(ext < 0, -p.price_range, p.price_range)
            else:
                edge = ext
            ext_pnl = q * (1.0 - 1.0 / (1.0 + edge)) * frac
            delta_coin += q
            rate = max(p.min_annualised_move, p.annualised_move_risk * t) if p.roll_shock_rule == "max_term" \
                else p.min_annualised_move
            roll += abs(q) * rate
        else:
            vol = float(row["vol"]) if "vol" in row and pd.notna(row.get("vol")) else float(row["mark_iv"]) / 100.0
            mult = float(vol_shock_multiplier(np.array([t * 365.0]), p)[0])
            up = max(vol * (1.0 + p.volatility_range_up * mult), p.min_volatility_for_shock_up)
            down = max(vol * (1.0 - p.volatility_range_down * mult), p.min_volatility_for_shock_down)
            std = q * _option_pnl(row, moves, [up, vol, down], t, index_price)
            ext_pnl = q * _option_pnl(row, ext, [up], t, index_price)[:, 0] * frac
            d = _option_pnl(row, np.array([-h, h]), [vol], t, index_price)[:, 0]
            delta_coin += q * float(d[1] - d[0]) / (2 * h)
        if not np.all(np.isfinite(std)):
            raise InputError("non-finite scenario P&L", file="<positions>", row=idx)
        pos_pnl[name] = pos_pnl.get(name, 0.0) + std
        pos_ext[name] = pos_ext.get(name, 0.0) + ext_pnl
        std_total += std
        ext_total += ext_pnl

    def offset(x: NDArray[np.float64]) -> NDArray[np.float64]:
        gains = np.maximum(x, 0.0) * p.pnl_offset
        if p.max_offsetable_pnl > 0:
            gains = np.minimum(gains, p.max_offsetable_pnl)
        return np.where(x > 0, gains, x)

    standard = offset(std_total)
    extended = offset(ext_total)
    loss_usd = -np.minimum(extended, 0.0) * index_price
    if p.extended_dampener_mode == "threshold":
        extended = np.where((extended < 0) & (loss_usd <= p.extended_dampener), 0.0, extended)
    else:
        extended = np.where(extended < 0, -np.maximum(loss_usd - p.extended_dampener, 0.0) / index_price, extended)
    worst = max(0.0, -float(min(standard.min(), extended.min() if extended.size else 0.0)))
    delta_usd = abs(delta_coin) * index_price
    thr = p.delta_total_liq_shock_threshold
    delta_shock = 0.0
    if delta_usd > thr:
        delta_shock = p.max_delta_shock * abs(delta_coin) * min(1.0, (delta_usd - thr) / thr)
    rmm = worst + roll + delta_shock + p.correlation_contingency
    return DeribitPMResult(
        price_moves=moves, position_pnl=pos_pnl, position_extended=pos_ext, standard=standard, extended=extended,
        worst_case=worst, roll_shock=roll, delta_shock=delta_shock,
        correlation_contingency=p.correlation_contingency, risk_matrix_margin=rmm,
        maintenance_margin=p.mm_factor * rmm, initial_margin=rmm, delta_coin=delta_coin,
    )


def currency_params(doc: Mapping[str, Any], currency: str, file: str | None = None) -> DeribitPMParams:
    """Parameters of ``currency`` (``"BTC"``, ``"ETH"``) from a deribit-pm model document (table ``[btc]``, ...).

    The file reader is ``greeksmargin.engine.params_files.load_deribit_pm_params``; this module reads no file.

    Parameters
    ----------
    doc : mapping
        The model document: one table per settlement coin, lower-case.
    currency : str
        The coin.
    file : str, optional
        Named in errors.

    Returns
    -------
    DeribitPMParams

    Raises
    ------
    ModelError
        No table for the coin, or an unknown / invalid parameter (names the key).
    """
    key = currency.lower()
    if key not in doc:
        raise ModelError(f"no parameter set for currency '{currency}'", file=file, key=key)
    return DeribitPMParams.from_dict(doc[key], file=file, strict=True)
