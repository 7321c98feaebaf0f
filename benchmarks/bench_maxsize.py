"""Benchmark: pre-trade sizing (:func:`greeksmargin.max_size`) on a 200-position account, house model.

The account: ``--positions`` BTC options (the generator of ``bench_margin``), collateral in BTC at three
levels (room for a large trade, a medium one, little); the trade: one held option, buy and sell. Reported:
p50 / p99 of the whole call (validated positions given; the account's incremental state, the equity and the
search), the number of what-if evaluations, and the split of one call's time. Target: < 100 ms.

Run: ``.venv/bin/python benchmarks/bench_maxsize.py [--positions 200] [--repeat 20]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from _common import machine, times
from bench_margin import make_book, make_market

import greeksmargin as gm
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.margin import _as_book


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    market = make_market()
    raw = make_book(1, args.positions, seed=3)
    book = _as_book(raw, market).positions
    acc = str(book["account"].iloc[0])
    inst = str(book["instrument"].iloc[0])
    print(machine())
    print(f"account: {args.positions} BTC option positions, model greeks-default, instrument {inst}; "
          f"{args.repeat} repeats")
    print(f"{'collateral BTC':>15}{'side':>6}{'status':>11}{'multiples':>11}{'evals':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for amount in (500.0, 20.0, 5.0):
        coll = pd.DataFrame({"account": [acc], "asset": ["BTC"], "amount": [amount]})
        for side in ("sell", "buy"):
            ans = gm.max_size(book, market, coll, account=acc, instrument=inst, side=side)
            ts = np.array(times(lambda c=coll, s=side: gm.max_size(book, market, c, account=acc, instrument=inst,
                                                                   side=s), args.repeat)) * 1e3
            print(f"{amount:>15g}{side:>6}{ans.status:>11}{ans.multiples:>11}{ans.evaluations:>7}"
                  f"{np.median(ts):>9.1f}{np.percentile(ts, 99):>9.1f}")
    coll = pd.DataFrame({"account": [acc], "asset": ["BTC"], "amount": [20.0]})
    ts = np.array(times(lambda: gm.max_size(raw, market, coll, account=acc, instrument=inst, side="sell"),
                        max(5, args.repeat // 2))) * 1e3
    print(f"raw (unvalidated) positions DataFrame, 20 BTC, sell: p50 {np.median(ts):.1f} ms")
    # split of one call
    t0 = time.perf_counter()
    st = AccountState.from_positions(book, market, account=acc)
    t1 = time.perf_counter()
    trade = {**book.iloc[0].to_dict(), "quantity": -0.1}
    trade["expiry"] = trade["expiry"].isoformat()
    f = st.sized_trade(trade)
    f(1.0)
    ev = np.array(times(lambda: f(7.0), 200)) * 1e3
    print(f"split: AccountState.from_positions {1e3 * (t1 - t0):.1f} ms; one sized what-if p50 "
          f"{np.median(ev):.2f} ms, p99 {np.percentile(ev, 99):.2f} ms")


if __name__ == "__main__":
    main()
