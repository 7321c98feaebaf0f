"""Fused revaluation + scan kernel (greeksmargin.risk.kernels): numba == numpy == compute_margin."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greeksmargin.datasets import load_example_book
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.models import load_model
from greeksmargin.pricing import black76_greeks5
from greeksmargin.risk import kernels
from greeksmargin.risk.scenarios import ScenarioGrid, VolShockRule
from greeksmargin.solvency.population import generate_population

needs_numba = pytest.mark.skipif(not kernels.numba_available(), reason="numba not installed")

FIELDS = ("unit_pnl", "unit_scan", "pos_scan", "pos_worst", "delta", "vega")


def _scale(x: np.ndarray) -> float:
    return max(float(np.abs(x).max()) if x.size else 0.0, 1e-300)


def _assert_close(r0: kernels.FusedScan, r1: kernels.FusedScan, rtol: float = 1e-9) -> None:
    assert np.array_equal(r0.unit_worst, r1.unit_worst) or np.allclose(
        r0.unit_scan, r1.unit_scan, rtol=rtol, atol=rtol * _scale(r0.unit_scan))
    for f in FIELDS:
        a, b = getattr(r0, f), getattr(r1, f)
        assert a.shape == b.shape, f
        np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * _scale(a), err_msg=f)
    # finite-difference gamma: (p+ + p-) / h^2 amplifies last-bit differences of the two price kernels
    np.testing.assert_allclose(r1.gamma, r0.gamma, rtol=1e-6, atol=1e-6 * _scale(r0.gamma))


def _engine_inputs(result):
    """Sorted arrays, factors, unit starts and grids of a MarginResult (as compute_margin built them)."""
    it = result._internals
    unit = it["unit_of"]
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    return it, starts


@pytest.fixture(scope="module")
def population():
    pos, _ = generate_population(60, seed=7)
    return pos, load_example_book().market


@pytest.mark.parametrize("backend", ["numpy", pytest.param("numba", marks=needs_numba)])
def test_kernel_reproduces_compute_margin_scan(population, backend):
    pos, mk = population
    res = compute_margin(pos, mk, "greeks-default")
    it, starts = _engine_inputs(res)
    gain = load_model("greeks-default").params.components["scan"]["gain_offset"]
    grid_id = it["grid_id"]
    unit_grid = grid_id[starts]
    checked = 0
    for g in np.unique(unit_grid):
        us = np.flatnonzero(unit_grid == g)
        p0 = starts[us[0]]
        p1 = starts[us[-1] + 1] if us[-1] + 1 < starts.size else it["n"]
        a = {k: v[p0:p1] for k, v in it["arrays"].items()}
        r = kernels.scan_units(a, it["factor"][p0:p1], starts[us] - p0, it["grids"][g], gain, backend=backend)
        np.testing.assert_allclose(r.unit_scan, it["unit_scan"][us], rtol=1e-9, atol=1e-9 * _scale(it["unit_scan"]))
        np.testing.assert_allclose(r.unit_pnl, it["unit_pnl"][:, us], rtol=1e-9,
                                   atol=1e-9 * _scale(it["unit_pnl"]))
        np.testing.assert_allclose(r.pos_worst, it["pos_worst_pnl"][p0:p1], rtol=1e-9,
                                   atol=1e-9 * _scale(it["pos_worst_pnl"]))
        checked += us.size
    assert checked == starts.size > 60


@needs_numba
def test_numba_equals_numpy_on_example_book():
    ex = load_example_book()
    res = compute_margin(ex.positions, ex.market, "greeks-default")
    it, starts = _engine_inputs(res)
    grid = it["grids"][0]
    sel = it["grid_id"] == 0
    n0 = int(sel.sum())
    a = {k: v[:n0] for k, v in it["arrays"].items()}
    st0 = starts[starts < n0]
    r0 = kernels.scan_units(a, it["factor"][:n0], st0, grid, 1.0, backend="numpy")
    r1 = kernels.scan_units(a, it["factor"][:n0], st0, grid, 1.0, backend="numba")
    _assert_close(r0, r1)
    assert np.any(r0.unit_scan > 0)


@needs_numba
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 40),
    gain=st.sampled_from([0.0, 0.5, 1.0]),
    kind=st.sampled_from(["relative", "absolute"]),
)
def test_numba_equals_numpy_random_books(seed, n, gain, kind):
    rng = np.random.default_rng(seed)
    kc = rng.integers(0, 4, n).astype(np.int8)
    spot = rng.uniform(50, 150, n)
    fwd = np.where(kc == 0, spot * rng.uniform(0.95, 1.1, n), np.where(kc == 1, spot * 1.02, spot))
    a = {
        "kind_code": kc,
        "is_call": (rng.random(n) < 0.5) & (kc == 0),
        "strike": np.where(kc == 0, fwd * np.exp(rng.uniform(-0.4, 0.4, n)), np.nan),
        "T": np.where(kc <= 1, rng.uniform(0.001, 2.0, n), np.nan),
        "forward": fwd,
        "spot": spot,
        "vol": np.where(kc == 0, rng.uniform(0.05, 1.5, n), np.nan),
        "rate": rng.uniform(0.0, 0.05, n),
        "size": rng.normal(0, 10, n),
        "inverse": rng.random(n) < 0.4,
        "perp_ratio": np.where(kc == 2, rng.uniform(0.99, 1.01, n), 1.0),
    }
    starts = np.flatnonzero(np.r_[True, rng.random(n - 1) < 0.3])
    grid = ScenarioGrid.build(
        range_down=0.15, points_down=4, tail_moves=(-0.5, 0.5), tail_weight=0.3,
        vol_rule=VolShockRule(kind=kind, up=0.4 if kind == "relative" else 0.1, down=0.3 if kind == "relative"
                              else 0.05, short_power=0.3, long_power=0.13, min_vol_up=0.2, min_vol=0.01),
    )
    factor = rng.uniform(0.5, 2.0, n)
    r0 = kernels.scan_units(a, factor, starts, grid, gain, backend="numpy", chunk=7)
    r1 = kernels.scan_units(a, factor, starts, grid, gain, backend="numba")
    assert r1.unit_pnl.shape == (grid.n_scenarios, starts.size)
    _assert_close(r0, r1)
    # scan semantics: loss = max(0, -min_s w_s q_s) on the unit P&L
    q = np.where(r0.unit_pnl > 0, gain * r0.unit_pnl, r0.unit_pnl) * grid.weights[:, None]
    np.testing.assert_allclose(r1.unit_scan, np.maximum(0.0, -q.min(axis=0)), rtol=1e-9, atol=1e-9 * _scale(q))


def test_numpy_path_chunking_does_not_change_results(population):
    pos, mk = population
    res = compute_margin(pos, mk, "greeks-default")
    it, starts = _engine_inputs(res)
    n0 = int((it["grid_id"] == 0).sum())
    a = {k: v[:n0] for k, v in it["arrays"].items()}
    st0 = starts[starts < n0]
    big = kernels.scan_units(a, it["factor"][:n0], st0, it["grids"][0], backend="numpy", chunk=10**9)
    small = kernels.scan_units(a, it["factor"][:n0], st0, it["grids"][0], backend="numpy", chunk=5)
    _assert_close(big, small, rtol=1e-12)


def test_backend_resolution(monkeypatch):
    monkeypatch.setenv("GREEKSMARGIN_BACKEND", "numpy")
    assert kernels.resolve_backend("auto") == "numpy"
    monkeypatch.delenv("GREEKSMARGIN_BACKEND")
    assert kernels.resolve_backend("auto") == ("numba" if kernels.numba_available() else "numpy")
    with pytest.raises(ValueError, match="backend"):
        kernels.resolve_backend("fortran")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grid"):
        kernels.scan_units({k: np.zeros(1) for k in kernels._FIELDS}, np.ones(1), np.zeros(1, np.intp), None)


@needs_numba
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 300))
def test_greeks5_numba_equals_numpy(seed, n):
    rng = np.random.default_rng(seed)
    f = rng.uniform(50.0, 150.0, n)
    k = f * np.exp(rng.uniform(-1.0, 1.0, n))
    t = rng.uniform(1e-4, 3.0, n)
    vol = rng.uniform(0.01, 2.0, n)
    r = rng.uniform(0.0, 0.08, n)
    call = rng.random(n) < 0.5
    ref = black76_greeks5(call, f, k, t, vol, r, backend="numpy")
    got = black76_greeks5(call, f, k, t, vol, r, backend="numba")
    assert got.shape == (5, n)
    for j in range(5):
        np.testing.assert_allclose(got[j], ref[j], rtol=1e-10, atol=1e-11 * _scale(ref[j]))
    # put-call parity on the price row, and delta bounds
    par = black76_greeks5(~call, f, k, t, vol, r, backend="numba")
    c_minus_p = np.where(call, got[0] - par[0], par[0] - got[0])
    np.testing.assert_allclose(c_minus_p, np.exp(-r * t) * (f - k), rtol=1e-9, atol=1e-9 * f.max())
    assert np.all(np.abs(got[1]) <= 1.0 + 1e-12) and np.all(got[2] >= 0) and np.all(got[3] >= 0)
