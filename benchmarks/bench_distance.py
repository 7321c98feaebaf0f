"""Benchmark: distance to liquidation vs plain solvency, 3,000 accounts under the house model.

Timed in the same process, on the options book of ``bench_margin.py`` (``--accounts`` x ``--positions``
BTC options) with USD collateral of each account set to ``--cover`` times a random 1.05-3 x its MM
today (so that every account has a finite distance):

1. ``assess_solvency(positions, market, collateral, "greeks-default")``: equity, IM, MM, status (the
   baseline);
2. ``distance_to_liquidation(book)`` on the book of (1) (``solvency.book.BookValuer`` built outside the timing):
   every underlying alone and all together, both directions, bracketing grid then the lock-step
   Illinois root finder, MM recomputed by the engine at each account's moved market;
3. ``assess_solvency(..., distance=True)`` (1 and 2 together, as the CLI runs them).

Prints medians of ``--repeat`` runs and the ratios (issue 16 target: (2) at most 3x (1)). The machine may
be shared: repeat and read medians.
Run: ``.venv/bin/python benchmarks/bench_distance.py [--accounts 3000] [--positions 20] [--repeat 5]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _common import machine, median, times
from bench_margin import make_book, make_market

from greeksmargin.book.collateral import load_collateral
from greeksmargin.book.positions import load_positions
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.models import load_model
from greeksmargin.solvency.assess import BookValuer, assess_solvency, distance_to_liquidation, margin_function


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=3_000)
    ap.add_argument("--positions", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", default="greeks-default")
    args = ap.parse_args()
    print(machine())
    market = make_market()
    pos = load_positions(make_book(args.accounts, args.positions, seed=11), valuation_time=market.valuation_time)
    model = load_model(args.model)
    mm = compute_margin(pos, market, model).accounts.set_index("account")["mm"]
    rng = np.random.default_rng(3)
    # collateral: 1.05-3 x MM today minus the book's value (equity = collateral + mtm), at least 1 USD
    from greeksmargin.risk.greeks import price_positions

    mtm = price_positions(pos, market).assign(account=pos["account"]).groupby("account")["value_usd"].sum()
    amount = np.maximum(mm.to_numpy() * rng.uniform(1.05, 3.0, mm.size) - mtm.reindex(mm.index).to_numpy(), 1.0)
    coll = load_collateral(pd.DataFrame({"account": mm.index, "asset": "USD", "amount": amount}))
    print(f"book: {args.accounts:,} accounts x {args.positions} options = {len(pos):,} positions, USD collateral "
          f"1.05-3 x MM; model {model.name}; median of {args.repeat}")
    fn = margin_function(model)
    book = BookValuer(pos, market, coll, fn)

    def solv() -> object:
        return assess_solvency(pos, market, coll, model)

    def dist() -> object:
        return distance_to_liquidation(book)

    def both() -> object:
        return assess_solvency(pos, market, coll, model, distance=True)

    d = dist()  # warm-up (numba cache, imports) and a look at the result
    solv()
    t_s: list[float] = []
    t_d: list[float] = []
    t_b: list[float] = []
    for _ in range(args.repeat):  # interleaved: a load spike of the shared machine hits each alike
        t_s += times(solv, 1)
        t_d += times(dist, 1)
        t_b += times(both, 1)
    base = median(t_s)
    print(f"assess_solvency (plain): median {base:.3f} s  (runs {', '.join(f'{x:.3f}' for x in t_s)})")
    print(f"distance_to_liquidation: median {median(t_d):.3f} s  (runs {', '.join(f'{x:.3f}' for x in t_d)})"
          f"  ratio to solvency {median(t_d) / base:.2f}x")
    print(f"assess_solvency(distance=True): median {median(t_b):.3f} s  (runs {', '.join(f'{x:.3f}' for x in t_b)})"
          f"  ratio to solvency {median(t_b) / base:.2f}x")
    rows = d[d["underlying"] == "ALL"]
    print(f"distance rows: {len(d):,}; methods {rows['method'].value_counts().to_dict()}; "
          f"median |move| {rows['move'].abs().median():.4f}")


if __name__ == "__main__":
    main()
