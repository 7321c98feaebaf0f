"""Fused scenario revaluation + scan aggregation (numba), with the plain numpy path beside it.

The margin engine's hot loop (:func:`greeksmargin.engine.margin.compute_margin`, step 3) revalues every position
under every scenario of its grid, sums the P&L per risk unit (account x underlying), takes the worst
weighted loss of each unit and of each position alone (isolated margin), and finite-difference delta /
gamma / vega. The numpy path builds an ``(n_scenarios, chunk)`` P&L block per chunk of positions
(:func:`greeksmargin.risk.scenarios.scenario_pnl`, :func:`~greeksmargin.risk.reduce.scan_loss`). The numba path
(:func:`scan_units` with ``backend="numba"``) is the engine's compiled kernel,
:func:`greeksmargin.risk._scan_kernel.fused_scan`: a loop over units that accumulates each unit's P&L per
scenario, never a scenario x position matrix, threaded for large batches and serial for small ones (a
threaded launch costs milliseconds; the incremental what-if revalues one trade in microseconds).

Semantics are exactly those of :func:`~greeksmargin.risk.scenarios.revalue` and
:mod:`greeksmargin.methodologies.house.scan` (module docstrings there): option P&L is Black-76 on ``F (1 + m)`` at the
shocked vol (:class:`~greeksmargin.risk.scenarios.VolShockRule`) minus Black-76 now, in the coin for inverse
positions (``V'/F' - V/F``); futures / perpetuals ``size ref m`` (coin: ``size m / (1 + m)``); the scan
``max(0, -min_s w_s q_s)`` with gains scaled by ``gain_offset``. The compiled kernel hoists
``log(F/K)``, ``sqrt(T)``, ``exp(-rT)`` and the three shocked vols out of the scenario loop; results agree
with the numpy path to rounding (tests: 1e-9 relative on the scan figures; the finite-difference gamma,
``(p+ + p-) / h^2``, to 1e-6, a last-bit difference of the two Black-76 implementations amplified).

American options (position array ``american``, :mod:`greeksmargin.risk.exercise`) have no compiled kernel:
a batch holding one is revalued on the numpy path whatever the backend (the American value is a vectorised
Newton solve per option and vol, which the numpy path already batches).

Backends: ``"numpy"``, ``"numba"`` or ``"auto"`` (numba when importable). ``GREEKSMARGIN_BACKEND=numpy``
in the environment forces the numpy path everywhere ``"auto"`` is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from greeksmargin.risk.exercise import american_mask
from greeksmargin.risk.reduce import group_sum, scan_loss
from greeksmargin.risk.scenarios import (
    CHUNK,
    ScenarioGrid,
    expired_option_greeks,
    fx_moves_of,
    scenario_pnl,
    sensitivities,
)

__all__ = ["FusedScan", "numba_available", "resolve_backend", "scan_units"]

Backend = Literal["auto", "numpy", "numba"]
Arrays = Mapping[str, NDArray[Any]]

try:  # pragma: no cover - exercised through numba_available()
    import numba  # noqa: F401

    _HAS_NUMBA = True
except ImportError:  # pragma: no cover
    _HAS_NUMBA = False


def numba_available() -> bool:
    """Whether the compiled kernels can be used (numba importable)."""
    return _HAS_NUMBA


def resolve_backend(backend: Backend = "auto") -> Literal["numpy", "numba"]:
    """``"auto"`` -> ``"numba"`` when available (and ``GREEKSMARGIN_BACKEND`` is not ``numpy``), else ``"numpy"``."""
    if backend == "auto":
        if os.environ.get("GREEKSMARGIN_BACKEND", "").lower() == "numpy" or not _HAS_NUMBA:
            return "numpy"
        return "numba"
    if backend == "numba" and not _HAS_NUMBA:
        raise ValueError("backend 'numba' requested but numba is not installed")
    if backend not in ("numpy", "numba"):
        raise ValueError(f"backend: expected 'auto', 'numpy' or 'numba', got {backend!r}")
    return backend


@dataclass(frozen=True)
class FusedScan:
    """Output of :func:`scan_units` (every amount in the account's margin currency, i.e. times ``factor``).

    Attributes
    ----------
    unit_pnl : ndarray of shape (n_scenarios, n_units)
        Summed P&L of each unit in each scenario (unweighted).
    unit_scan : ndarray of shape (n_units,)
        ``max(0, -min_s w_s q_s)`` of each unit.
    unit_worst : ndarray of shape (n_units,)
        Index of the worst scenario of each unit (first one on ties, as ``np.argmin``).
    pos_scan : ndarray of shape (n_positions,)
        The scan of each position alone (isolated margin).
    pos_worst : ndarray of shape (n_positions,)
        ``-w_s p_is`` of each position at its unit's worst scenario (attribution).
    delta, gamma, vega : ndarray of shape (n_positions,)
        Finite-difference sensitivities (:func:`greeksmargin.risk.scenarios.sensitivities`; vega NaN -> 0), or
        zeros when not requested.
    """

    unit_pnl: NDArray[np.float64]
    unit_scan: NDArray[np.float64]
    unit_worst: NDArray[np.intp]
    pos_scan: NDArray[np.float64]
    pos_worst: NDArray[np.float64]
    delta: NDArray[np.float64]
    gamma: NDArray[np.float64]
    vega: NDArray[np.float64]


_FIELDS = ("kind_code", "is_call", "strike", "T", "forward", "spot", "vol", "rate", "size", "inverse", "perp_ratio")


def scan_units(
    arrays: Arrays,
    factor: NDArray[np.float64],
    starts: NDArray[np.intp],
    grid: ScenarioGrid | None,
    gain_offset: float = 1.0,
    *,
    scan: bool = True,
    sens: bool = True,
    backend: Backend = "auto",
    chunk: int = CHUNK,
    h_spot: float = 1e-4,
    h_vol: float = 1e-4,
) -> FusedScan:
    """Revalue positions sorted by unit under ``grid`` and reduce to unit / position scan figures.

    Parameters
    ----------
    arrays : mapping of str -> ndarray of shape (n_positions,)
        Position arrays (keys of :func:`greeksmargin.risk.greeks.market_arrays`), sorted by unit.
    factor : ndarray of shape (n_positions,)
        Position currency -> account margin currency conversion (1 when equal).
    starts : ndarray of shape (n_units,)
        First position of each unit (increasing, first 0, every unit non-empty).
    grid : ScenarioGrid or None
        The scenarios (one grid for all these units); None only with ``scan=False``.
    gain_offset : float
        Factor applied to gains in the scan (:func:`greeksmargin.methodologies.house.scan.scan_loss`).
    scan, sens : bool
        Compute the scan figures / the finite-difference sensitivities.
    backend : {"auto", "numpy", "numba"}
        Implementation (equal results; see the module docstring).
    chunk : int
        numpy path: positions revalued at once (memory ``~ n_scenarios x chunk x 8`` bytes per temporary).
    h_spot, h_vol : float
        Finite-difference steps (relative spot, absolute vol).

    Returns
    -------
    FusedScan
    """
    be = resolve_backend(backend)
    a = {k: np.asarray(arrays[k]) for k in _FIELDS}
    a["fx_moves"] = fx_moves_of(arrays)  # coin-settled positions of a USD-margined account (scenarios module)
    am = american_mask(arrays)
    if am is not None:  # American options: numpy path only (module docstring)
        a["american"], be = am, "numpy"
    n = a["size"].shape[0]
    starts = np.asarray(starts, dtype=np.intp)
    n_units = starts.size
    if scan and grid is None:
        raise ValueError("scan=True needs a scenario grid")
    n_s = grid.n_scenarios if (grid is not None and scan) else 0
    factor = np.asarray(factor, dtype=np.float64)
    if be == "numba" and n:
        return _scan_numba(a, factor, starts, grid, gain_offset, scan, sens, h_spot, h_vol, n_s)
    return _scan_numpy(a, factor, starts, grid, gain_offset, scan, sens, chunk, h_spot, h_vol, n, n_units, n_s)


# ------------------------------------------------------------------------------------------ numpy path
def _scan_numpy(
    a: dict[str, NDArray[Any]], factor: NDArray[np.float64], starts: NDArray[np.intp], grid: ScenarioGrid | None,
    gain: float, scan: bool, sens: bool, chunk: int, h_spot: float, h_vol: float, n: int, n_units: int, n_s: int,
) -> FusedScan:
    """Reference: the margin engine's chunk loop (scenario_pnl -> group_sum -> scan_loss)."""
    unit_pnl = np.zeros((n_s, n_units))
    unit_scan = np.zeros(n_units)
    unit_worst = np.zeros(n_units, dtype=np.intp)
    pos_scan = np.zeros(n)
    pos_worst = np.zeros(n)
    dlt, gam, veg = np.zeros(n), np.zeros(n), np.zeros(n)
    unit = np.zeros(n, dtype=np.intp)
    if n_units:
        unit[starts[1:]] = 1
        unit = np.cumsum(unit)
    u0 = 0
    while u0 < n_units:
        p0 = int(starts[u0])
        u1 = max(int(np.searchsorted(starts, p0 + chunk, side="right")), u0 + 1)
        p1 = int(starts[u1]) if u1 < n_units else n
        sl = slice(p0, p1)
        b = {k: v[sl] for k, v in a.items()}
        f = factor[sl]
        if scan:
            assert grid is not None
            vols = grid.vol_rule.shocked(b["vol"], b["T"], grid.vol_dir)
            pnl = scenario_pnl(b, grid.spot_move, vols)
            pnl *= f[None, :]
            up = group_sum(pnl, starts[u0:u1] - p0)
            unit_pnl[:, u0:u1] = up
            us, uw = scan_loss(up, grid.weights, gain)
            unit_scan[u0:u1] = us
            unit_worst[u0:u1] = uw
            ps, _ = scan_loss(pnl, grid.weights, gain)
            pos_scan[sl] = ps
            loc = unit[sl] - u0
            pos_worst[sl] = -pnl[uw[loc], np.arange(p1 - p0)] * grid.weights[uw[loc]]
            del pnl
        if sens:
            d, gm, v = sensitivities(b, h_spot=h_spot, h_vol=h_vol)
            dlt[sl], gam[sl], veg[sl] = d * f, gm * f, np.nan_to_num(v) * f
        u0 = u1
    return FusedScan(unit_pnl, unit_scan, unit_worst, pos_scan, pos_worst, dlt, gam, veg)


# ------------------------------------------------------------------------------------------ numba path
def _scan_numba(
    a: dict[str, NDArray[Any]], factor: NDArray[np.float64], starts: NDArray[np.intp], grid: ScenarioGrid | None,
    gain: float, scan: bool, sens: bool, h_spot: float, h_vol: float, n_s: int,
) -> FusedScan:
    """The engine's compiled kernel (:func:`greeksmargin.risk._scan_kernel.fused_scan`), serial for small calls."""
    from greeksmargin.risk._scan_kernel import fused_scan

    g = grid if (grid is not None and scan) else ScenarioGrid(np.zeros(1), np.zeros(1, np.int8), np.ones(1))
    r = fused_scan(a, factor, starts, g, gain, want_scan=scan, want_sens=sens, h_spot=h_spot, h_vol=h_vol)
    if sens:  # options at their expiry: the step delta, no gamma / vega (as scenarios.sensitivities)
        exp, d_e, g_e, v_e = expired_option_greeks(a)
        if exp.any():
            f = factor[exp]
            r["delta"][exp], r["gamma"][exp], r["vega"][exp] = d_e * f, g_e * f, v_e * f
    return FusedScan(r["unit_pnl"][:n_s], r["unit_scan"], r["unit_worst"], r["pos_scan"], r["pos_worst"],
                     r["delta"], r["gamma"], r["vega"])
