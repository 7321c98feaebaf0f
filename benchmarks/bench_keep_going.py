"""Benchmark: ``margin --keep-going`` cost, a clean book against the same book with 1% bad rows.

The book: ``--accounts`` accounts of ``--positions`` BTC options (``bench_margin.make_book``), written as a
CSV file and margined from the file with ``errors="collect"`` (the ``margin --keep-going`` path: read,
validate, set the bad accounts aside, compute the rest). The bad book has 1% of its rows broken, spread
over as many accounts, five faults in turn: NaN quantity, inf quantity, unknown kind, negative strike,
unparseable expiry. Both runs in the same process; medians of ``--repeat`` runs each and the ratio.

Issue 16 measured 10x (9.5 min against 7 s on 100,000 accounts) and an abort past 1,000 bad accounts;
the target is a ratio of at most 1.5 with no cap.

Run: ``.venv/bin/python benchmarks/bench_keep_going.py [--accounts 20000] [--positions 5] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import machine, median, times
from bench_margin import make_book, make_market

from greeksmargin.engine.margin import compute_margin


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=20000)
    ap.add_argument("--positions", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bad", type=float, default=0.01, help="fraction of bad rows")
    args = ap.parse_args()
    market = make_market()
    clean = make_book(args.accounts, args.positions)
    bad = clean.copy()
    n = len(bad)
    rows = np.random.default_rng(3).choice(n, int(round(args.bad * n)), replace=False)
    bad["quantity"] = bad["quantity"].astype(object)
    bad["strike"] = bad["strike"].astype(object)
    for j, r in enumerate(rows):
        k = j % 5
        if k == 0:
            bad.loc[r, "quantity"] = "nan"
        elif k == 1:
            bad.loc[r, "quantity"] = "inf"
        elif k == 2:
            bad.loc[r, "kind"] = "optoin"
        elif k == 3:
            bad.loc[r, "strike"] = -5.0
        else:
            bad.loc[r, "expiry"] = "2026-13-45"
    n_bad_acc = bad.loc[rows, "account"].nunique()
    with tempfile.TemporaryDirectory() as tmp:
        pc, pb = Path(tmp) / "clean.csv", Path(tmp) / "bad.csv"
        clean.to_csv(pc, index=False)
        bad.to_csv(pb, index=False)
        res = compute_margin(pb, market, "greeks-default", errors="collect")  # warm-up and check
        st = res.accounts["status"].value_counts()
        assert int(st.get("error", 0)) == n_bad_acc, st
        assert int(st.get("computed", 0)) == args.accounts - n_bad_acc, st
        t_clean = times(lambda: compute_margin(pc, market, "greeks-default", errors="collect"), args.repeat)
        t_bad = times(lambda: compute_margin(pb, market, "greeks-default", errors="collect"), args.repeat)
    print(machine())
    print(f"book: {args.accounts} accounts x {args.positions} positions = {n} rows; bad rows {len(rows)} "
          f"({100 * len(rows) / n:.2f}%) in {n_bad_acc} accounts (all set aside with their reason)")
    print(f"clean  median {median(t_clean):8.3f} s  (runs: {', '.join(f'{t:.3f}' for t in t_clean)})")
    print(f"1% bad median {median(t_bad):8.3f} s  (runs: {', '.join(f'{t:.3f}' for t in t_bad)})")
    print(f"ratio bad / clean: {median(t_bad) / median(t_clean):.3f}  (target <= 1.5)")


if __name__ == "__main__":
    main()
