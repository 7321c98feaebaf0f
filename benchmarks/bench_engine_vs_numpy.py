"""Benchmark: the house model on 10,000 accounts x 50 options vs a plain numpy Black-76 revaluation.

Timed in the same process, on the same 500,000 options (the book of ``bench_margin.py``):

1. ``compute_margin(book, market, "greeks-default")`` with the book given as a DataFrame (the raw
   table: validation included), as the normalised DataFrame of ``load_positions`` (validated once) and
   as a Book (``gm.load_book`` once, outside the timing: ``compute_margin(book, None, model)``);
2. the baseline: a plain numpy Black-76 revaluation of the same options (forward, strike, expiry and
   vol looked up once, outside the timing) over a 33-point spot x vol grid, 11 spot moves x 3 vol states
   as the house grid (``V(F (1 + m), sigma') - V(F, sigma)`` times the size), in chunks of 50,000
   options (scipy's ``ndtr``), nothing else: no scan, no Greeks, no charges, no tables.

Prints the medians of ``--repeat`` runs and the ratio engine / numpy (issue 16 targets: at most 1.0x for
the DataFrame path, at most 0.5x for the Book). The machine may be shared: repeat and read medians.
Run: ``.venv/bin/python benchmarks/bench_engine_vs_numpy.py [--accounts 10000] [--repeat 5]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import machine, median, times
from bench_margin import make_book, make_market
from scipy.special import ndtr

import greeksmargin as gm
from greeksmargin.book.positions import load_positions
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.models import load_model
from greeksmargin.risk.greeks import market_arrays

#: the baseline's grid: 11 spot moves x 3 vol states (relative vol shock), as the house grid's shape
SPOT_MOVES = np.linspace(-0.15, 0.15, 11)
VOL_SHOCKS = np.array([0.08, 0.0, -0.08])


def numpy_revaluation(f: np.ndarray, k: np.ndarray, t: np.ndarray, vol: np.ndarray, is_call: np.ndarray,
                      size: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """P&L of every option over the 33-point grid, plain numpy Black-76 (r = 0); shape (33, n)."""
    m = np.repeat(SPOT_MOVES, VOL_SHOCKS.size)[:, None]
    dv = np.tile(VOL_SHOCKS, SPOT_MOVES.size)[:, None]
    n = f.size
    out = np.empty((m.shape[0], n))
    for a in range(0, n, chunk):
        sl = slice(a, min(n, a + chunk))
        w = np.where(is_call[sl], 1.0, -1.0)
        sq = np.sqrt(t[sl])

        def price(f1: np.ndarray, s: np.ndarray, w=w, kk=k[sl]) -> np.ndarray:
            d1 = np.log(f1 / kk) / s + 0.5 * s
            return w * (f1 * ndtr(w * d1) - kk * ndtr(w * (d1 - s)))

        base = price(f[sl], vol[sl] * sq)
        out[:, sl] = (price(f[sl] * (1.0 + m), vol[sl] * (1.0 + dv) * sq) - base) * size[sl]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", default="greeks-default")
    args = ap.parse_args()
    print(machine())
    market = make_market()
    raw = make_book(args.accounts, args.positions)
    book = load_positions(raw, valuation_time=market.valuation_time)
    model = load_model(args.model)
    n = len(book)
    print(f"book: {args.accounts:,} accounts x {args.positions} options = {n:,} positions; model {model.name} "
          f"({model.params.grid.n_scenarios} scenarios + Greeks charges + contingencies); median of {args.repeat}")
    a = market_arrays(book, market)
    f, k, t, vol = (np.asarray(a[x], dtype=float) for x in ("forward", "strike", "T", "vol"))
    c, size = np.asarray(a["is_call"], dtype=bool), np.asarray(a["size"], dtype=float)

    res = compute_margin(raw, market, model)  # warm-up: imports, numba cache load
    bk = gm.load_book(raw, market)  # validated once, outside the timing
    compute_margin(bk, None, model)
    numpy_revaluation(f, k, t, vol, c, size)
    # interleave the four timings, so that a load spike on the shared machine hits each of them alike
    t_raw: list[float] = []
    t_norm: list[float] = []
    t_np: list[float] = []
    t_book: list[float] = []
    for _ in range(args.repeat):
        t_np += times(lambda: numpy_revaluation(f, k, t, vol, c, size), 1)
        t_raw += times(lambda: compute_margin(raw, market, model), 1)
        t_norm += times(lambda: compute_margin(book, market, model), 1)
        t_book += times(lambda: compute_margin(bk, None, model), 1)
    base = median(t_np)
    print(f"plain numpy Black-76, {SPOT_MOVES.size} x {VOL_SHOCKS.size} = {SPOT_MOVES.size * VOL_SHOCKS.size} "
          f"scenarios: median {base:.3f} s  (runs {', '.join(f'{x:.3f}' for x in t_np)})")
    for name, ts in (("compute_margin, raw DataFrame (validation included)", t_raw),
                     ("compute_margin, normalised DataFrame (load_positions once)", t_norm),
                     ("compute_margin, Book (load_book once)", t_book)):
        print(f"{name}: median {median(ts):.3f} s  (runs {', '.join(f'{x:.3f}' for x in ts)})"
              f"  ratio to numpy {median(ts) / base:.2f}x")
    print(f"total IM {res.accounts['im'].sum():,.2f}")


if __name__ == "__main__":
    main()
