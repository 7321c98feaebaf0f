"""Benchmark (c): what-if latency, one trade added to a 200-position account: median and 99th percentile.

Paths timed in the same run (the account and the trade are the same for all):

* full recompute: :func:`greeksmargin.engine.margin.compute_margin` on the account with the trade appended (what
  ``margin_change`` does today), the baseline;
* incremental: :meth:`greeksmargin.engine.incremental.AccountState.with_trades` with the trade as a mapping
  (the one-trade path of :mod:`greeksmargin.engine.whatif_one`: the trade revalued with scalar code and one
  compiled call, the untouched units' figures kept), numba and numpy kernels; the same with a *new
  contract in every call* (another strike each time: its market look-ups, which the state keeps per
  instrument, are done in the call); and with the trade as a one-row DataFrame (validated by
  ``load_positions``, the general path);
* the public what-if :func:`greeksmargin.margin_change` (one trade, one touched account: validation, the
  account's state and the trade), on the same account and on the bundled example book.

Each row reports p50 and p99 of the one-trade latency. Run:
``.venv/bin/python benchmarks/bench_whatif.py [--positions 200] [--repeat 500]``. Targets (issue 16):
incremental mapping path p50 <= 2 ms and p99 <= 1 ms (met). Measured 2026-12-07, six runs on the shared
machine (``machine: 2 cores (2 usable), AMD EPYC, Python 3.11.7, numpy 2.4.6, numba 0.68.1``, load average
2.4-2.9 from the other sessions): mapping, numba p50 0.045-0.046 ms, p99 0.086-0.129 ms; numpy p50
0.079-0.082 ms, p99 0.132-0.161 ms; a new contract every call (numba) p50 0.261-0.282 ms, p99 0.349-0.445 ms
in five runs and 4.49 ms in one (not reproduced in four separate runs of that row: p99 0.36-0.41 ms; the
first call of a state, which builds the path's caches, takes 0.65-4.7 ms); example book MM-CRYPTO p50
0.080-0.085 ms, p99 0.126-0.177 ms; full ``compute_margin`` p50 13.2-15.0 ms. README, Benchmarks, row (c').
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import machine, median, times
from bench_margin import make_book, make_market

import greeksmargin as gm
from greeksmargin.engine.incremental import AccountState
from greeksmargin.engine.margin import compute_margin
from greeksmargin.risk import kernels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--positions", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=500)
    args = ap.parse_args()
    market = make_market()
    book = make_book(1, args.positions + 1, seed=3)
    base, trade_df = book.iloc[: args.positions], book.iloc[args.positions:]
    trade = trade_df.to_dict("records")[0]
    print(machine())
    print(f"account: {args.positions} option positions, model greeks-default; one option trade added; "
          f"{args.repeat} repeats")

    want = compute_margin(book, market).accounts.iloc[0]
    rows = []
    t_full = times(lambda: compute_margin(book, market), max(20, args.repeat // 10))
    rows.append(("full compute_margin (baseline)", t_full))
    backends = ["numba", "numpy"] if kernels.numba_available() else ["numpy"]
    for be in backends:
        state = AccountState.from_positions(base, market, backend=be)
        im, mm = state.with_trades(trade)
        assert abs(im - want["im"]) <= 1e-9 * abs(want["im"]) and abs(mm - want["mm"]) <= 1e-9 * abs(want["mm"])
        rows.append((f"AccountState.with_trades, mapping, {be}", times(lambda s=state: s.with_trades(trade),
                                                                       args.repeat)))
    # a new contract in every call: no instrument's look-ups are kept from an earlier call
    state = AccountState.from_positions(base, market)
    fresh = iter([dict(trade, strike=float(trade["strike"]) + 10.0 * (i + 1),
                       instrument=f"{trade['instrument']}-K{i}") for i in range(args.repeat)])
    rows.append(("with_trades, mapping, new contract each call", times(lambda: state.with_trades(next(fresh)),
                                                                       args.repeat)))
    rows.append(("AccountState.with_trades, DataFrame", times(lambda: state.with_trades(trade_df),
                                                              max(50, args.repeat // 5))))
    rows.append(("margin_change (public what-if), 200 positions", times(
        lambda: gm.margin_change(base, market, "greeks-default", trade_df), max(20, args.repeat // 10))))
    valid = gm.load_positions(base, valuation_time=market.valuation_time)  # validated once (no re-validation)
    rows.append(("margin_change, 200 validated positions", times(
        lambda: gm.margin_change(valid, market, "greeks-default", trade_df), max(20, args.repeat // 10))))
    ex = gm.datasets.load_example_book()
    ex_pos = ex.positions
    ex_trade = ex_pos[ex_pos["account"] == "MM-CRYPTO"].head(1).assign(quantity=-1.0)
    ex_state = AccountState.from_positions(ex_pos, ex.market, account="MM-CRYPTO")
    ex_map = ex_trade.to_dict("records")[0]
    rows.append(("example book MM-CRYPTO: with_trades, mapping", times(lambda: ex_state.with_trades(ex_map),
                                                                       args.repeat)))
    rows.append(("example book: margin_change (public)", times(
        lambda: gm.margin_change(ex_pos, ex.market, "greeks-default", ex_trade), max(20, args.repeat // 10))))
    base_med = median(t_full)
    print(f"{'path':<52}{'p50 ms':>9}{'p99 ms':>10}{'x faster':>10}")
    for name, ts in rows:
        ms = np.array(ts) * 1e3
        print(f"{name:<52}{np.median(ms):>9.3f}{np.percentile(ms, 99):>10.3f}{base_med / median(ts):>10.1f}")
    print(f"check: incremental IM {im:,.2f} == compute_margin IM {want['im']:,.2f} (1e-9 relative)")


if __name__ == "__main__":
    main()
