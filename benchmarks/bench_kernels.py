"""Benchmark (b) with the fused kernel: full margin of 10,000 accounts x 50 options (27+ scenarios + Greeks charges).

Timed in the same run on the book of ``bench_margin.py`` (BTC options, model ``greeks-default``: 27 core
scenarios + 4 tails, delta / gamma / vega charges, contingencies, correlation across underlyings):

1. naive loop: ``compute_margin`` account by account (``--naive`` accounts timed, extrapolated): baseline;
2. ``compute_margin(backend="numpy")`` on the whole book (the engine's chunked numpy scan path);
3. ``compute_margin(backend="numba")`` on the whole book (the engine's fused compiled scan);
4. the revaluation + scan + sensitivities stage alone, on the engine's sorted arrays:
   :func:`greeksmargin.risk.kernels.scan_units` with the numpy path and with the compiled kernel (the engine's
   ``rules/_scan_kernel.fused_scan``, the package's one compiled scan).

Results must agree (scan per unit to 1e-9 relative; IM per account to 1e-7, the finite-difference gamma
amplifying the last-bit differences of the two Black-76 implementations). A cProfile breakdown of (3) shows
where the time goes. Run: ``.venv/bin/python benchmarks/bench_kernels.py [--accounts 10000]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io as _io
import pstats

import numpy as np
import pandas as pd
from _common import machine, median, times
from bench_margin import make_book, make_market

from greeksmargin.book.positions import load_positions
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.models import load_model
from greeksmargin.pricing import black76_greeks5
from greeksmargin.risk import kernels


def stage_inputs(result):
    it = result._internals
    unit = it["unit_of"]
    starts = np.flatnonzero(np.r_[True, unit[1:] != unit[:-1]])
    return it, starts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive", type=int, default=100)
    ap.add_argument("--model", default="greeks-default")
    ap.add_argument("--greeks-n", type=int, default=1_000_000, help="options for the (a) lean Greeks kernel row")
    args = ap.parse_args()
    print(machine())
    market = make_market()
    book = load_positions(make_book(args.accounts, args.positions), valuation_time=market.valuation_time)
    model = load_model(args.model)
    n = len(book)
    print(f"book: {args.accounts:,} accounts x {args.positions} options = {n:,} positions; model {model.name}: "
          f"{model.params.grid.n_scenarios} scenarios + delta/gamma/vega + contingencies; median of {args.repeat}")

    res_np = compute_margin(book, market, model, backend="numpy")
    res_nb = compute_margin(book, market, model, backend="numba")  # warm-up: numba cache load
    a, b = res_np.accounts, res_nb.accounts
    assert (a["account"] == b["account"]).all()
    # IM: 1e-7 (finite-difference gamma (p+ + p-)/h^2 amplifies last-bit price differences by 1/h^2 = 1e8)
    np.testing.assert_allclose(b["im"], a["im"], rtol=1e-7)
    np.testing.assert_allclose(res_nb.by_underlying["scan"], res_np.by_underlying["scan"], rtol=1e-9)

    rows = []
    subs = [book[book["account"] == acc] for acc in pd.unique(book["account"])[: args.naive]]
    t_naive = median(times(lambda: [compute_margin(s, market, model) for s in subs], 1))
    rows.append((f"naive per-account loop (extrapolated from {len(subs)})", t_naive / len(subs) * args.accounts))
    rows.append(("compute_margin, numpy scan path",
                 median(times(lambda: compute_margin(book, market, model, backend="numpy"), args.repeat))))
    rows.append(("compute_margin, compiled scan (backend=numba)",
                 median(times(lambda: compute_margin(book, market, model, backend="numba"), args.repeat))))

    it, starts = stage_inputs(res_np)
    gain = model.params.components["scan"]["gain_offset"]
    grid = it["grids"][0]
    assert len(it["grids"]) == 1

    def stage(backend: str):
        return kernels.scan_units(it["arrays"], it["factor"], starts, grid, gain, backend=backend)

    s_np, s_nb = stage("numpy"), stage("numba")
    np.testing.assert_allclose(s_nb.unit_scan, s_np.unit_scan, rtol=1e-9, atol=1e-9 * s_np.unit_scan.max())
    rows.append(("stage: revaluation+scan+sensitivities, numpy", median(times(lambda: stage("numpy"), args.repeat))))
    rows.append(("stage: same, compiled kernel rules/_scan_kernel", median(times(lambda: stage("numba"), args.repeat))))
    t_stage = rows[-1][1]

    base = rows[0][1]
    extra = []
    if args.greeks_n:
        rng = np.random.default_rng(0)
        n5 = args.greeks_n
        f5 = rng.uniform(50.0, 150.0, n5)
        k5 = f5 * np.exp(rng.uniform(-0.5, 0.5, n5))
        args5 = (rng.random(n5) < 0.5, f5, k5, rng.uniform(0.01, 2.0, n5), rng.uniform(0.1, 1.0, n5),
                 rng.uniform(0.0, 0.05, n5))
        buf = np.empty((5, n5))
        ref5 = black76_greeks5(*args5, backend="numpy")
        np.testing.assert_allclose(black76_greeks5(*args5, backend="numba", out=buf), ref5, rtol=1e-9,
                                   atol=1e-9)
        t5np = median(times(lambda: black76_greeks5(*args5, backend="numpy"), args.repeat))
        t5nb = median(times(lambda: black76_greeks5(*args5, backend="numba", out=buf), 5))
        extra = [(f"(a) price+delta+gamma+vega+theta of {n5:,} options, numpy pricing.black76", t5np),
                 ("(a) same, pricing.black76_greeks5 (numba)", t5nb)]
    print(f"{'path':<64}{'median s':>10}{'x naive':>9}")
    for name, t in rows:
        print(f"{name:<64}{t:>10.3f}{base / t:>9.1f}")
    for name, t in extra:
        print(f"{name:<64}{t:>10.3f}   {args.greeks_n / t / 1e6:.1f} M options/s ({extra[0][1] / t:.1f}x numpy)")
    evals = n * (grid.n_scenarios + 4)
    print(f"fused kernel: {evals / t_stage / 1e6:.1f} M position-scenario revaluations/s "
          f"({grid.n_scenarios} scenarios + 4 finite-difference points per position)")

    prof = cProfile.Profile()
    prof.enable()
    compute_margin(book, market, model, backend="numba")
    prof.disable()
    st = pstats.Stats(prof)
    total = sum(v[3] for k, v in st.stats.items() if k[2] == "compute_margin")
    print(f"profile of compute_margin(backend=numba) ({total:.2f} s under cProfile), cumulative s:")
    want = {"load_positions": "positions.py", "price_positions": "greeks.py", "market_arrays": "greeks.py",
            "fused_scan": "_scan_kernel.py", "_run": "margin.py", "_unit_figures": "margin.py",
            "_position_figures": "margin.py", "aggregate_correlation": "combine.py"}
    for (file, _line, fn), v in sorted(st.stats.items(), key=lambda kv: -kv[1][3]):
        if fn in want and file.endswith(want[fn]):
            print(f"  {fn:<24}{v[3]:>8.3f}  ({v[1]} calls)")
    buf = _io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(8)
    print("  top self time:")
    for line in buf.getvalue().splitlines():
        if line.strip() and line.strip()[0].isdigit():
            print("   ", line.strip()[:140])


if __name__ == "__main__":
    main()
