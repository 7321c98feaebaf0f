"""Benchmark: full margin (scan + sensitivity charges) of N accounts x M option positions.

Compares, in the same run, the vectorised ``compute_margin`` on the whole book with a naive loop that
calls it account by account (timed on a subsample of accounts and extrapolated). Prints medians and the
ratio. Usage::

    .venv/bin/python benchmarks/bench_margin.py [--accounts 10000] [--positions 50] [--repeat 3] [--naive 100]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import pandas as pd

import greeksmargin as gm
from greeksmargin.book.market import load_market
from greeksmargin.book.positions import load_positions
from greeksmargin.risk.greeks import market_arrays

VAL = "2026-11-20T08:00:00Z"
EXPIRIES = ["2026-12-04T08:00:00Z", "2026-12-25T08:00:00Z", "2027-01-29T08:00:00Z", "2027-03-26T08:00:00Z",
            "2027-06-25T08:00:00Z", "2027-09-24T08:00:00Z"]


def make_market() -> gm.MarketSnapshot:
    surf = {"axis": "log_moneyness", "expiries": EXPIRIES, "points": [-0.6, -0.2, 0.0, 0.2, 0.6],
            "vols": [[0.75, 0.58, 0.52, 0.50, 0.56]] * len(EXPIRIES)}
    return load_market({
        "valuation_time": VAL,
        "underlyings": {"BTC": {"spot": 95000.0, "currency": "BTC", "rate": 0.0, "surface": surf}},
    })


def make_book(n_accounts: int, n_positions: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_accounts * n_positions
    strikes = np.round(95000 * np.exp(rng.normal(0, 0.25, n)), -3)
    exp = np.array(EXPIRIES, dtype=object)[rng.integers(0, len(EXPIRIES), n)]
    ot = np.where(rng.random(n) < 0.5, "call", "put")
    df = pd.DataFrame({
        "account": np.repeat([f"ACC{i:05d}" for i in range(n_accounts)], n_positions),
        "instrument": [f"BTC-{e[:10]}-{k:.0f}-{o[0].upper()}" for e, k, o in zip(exp, strikes, ot)],
        "underlying": "BTC",
        "kind": "option",
        "option_type": ot,
        "strike": strikes,
        "expiry": exp,
        "quantity": np.round(rng.normal(0, 5, n), 1) + 0.1,
        "multiplier": 1.0,
        "settlement": "linear",
        "premium_currency": "USD",
    })
    return df


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--accounts", type=int, default=10_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive", type=int, default=100, help="accounts timed in the naive loop (extrapolated)")
    ap.add_argument("--model", default="greeks-default")
    args = ap.parse_args()

    market = make_market()
    raw = make_book(args.accounts, args.positions)
    t0 = time.perf_counter()
    book = load_positions(raw, valuation_time=market.valuation_time)
    t_load = time.perf_counter() - t0
    model = gm.load_model(args.model)
    n_s = model.params.grid.n_scenarios
    n = len(book)
    cpu = platform.processor() or platform.machine()
    if os.path.exists("/proc/cpuinfo"):
        names = [ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    print(f"machine: {cpu}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    print(f"book: {args.accounts:,} accounts x {args.positions} options = {n:,} positions; "
          f"model {model.name}: {n_s} scenarios + delta/gamma/vega charges + contingencies")
    print(f"load_positions (validation, once): {t_load:.3f} s")

    result = gm.compute_margin(book, market, model)  # warm-up (numba caches, imports)
    t_full = median_time(lambda: gm.compute_margin(book, market, model), args.repeat)
    t_arrays = median_time(lambda: market_arrays(book, market), args.repeat)
    print(f"vectorised compute_margin, whole book: median {t_full:.3f} s over {args.repeat} runs "
          f"(of which market lookups {t_arrays:.3f} s; backend auto = compiled fused kernel)")
    t_np = median_time(lambda: gm.compute_margin(book, market, model, backend="numpy"), max(1, args.repeat // 2))
    print(f"same with the numpy reference backend (chunked broadcasting): median {t_np:.3f} s")

    accounts = list(pd.unique(book["account"]))[: args.naive]
    subs = [book[book["account"] == a] for a in accounts]

    def naive() -> None:
        for sub in subs:
            gm.compute_margin(sub, market, model)

    t_naive_sub = median_time(naive, max(1, min(args.repeat, 3)))
    t_naive = t_naive_sub / len(subs) * args.accounts
    print(f"naive per-account loop: {t_naive_sub:.3f} s for {len(subs)} accounts -> "
          f"{t_naive:.1f} s extrapolated to {args.accounts:,}")
    print(f"ratio naive / vectorised: {t_naive / t_full:.1f}x")
    # the same numbers, whole book vs loop, must agree
    check = pd.concat([gm.compute_margin(s, market, model).accounts for s in subs[:5]])
    ref = result.accounts.set_index("account").loc[check["account"], "im"].to_numpy()
    assert np.allclose(check["im"].to_numpy(), ref, rtol=1e-12), "loop and whole book disagree"
    print(f"total IM {result.accounts['im'].sum():,.0f} USD; cross saves "
          f"{100 * (1 - result.accounts['im'].sum() / result.accounts['isolated_im'].sum()):.1f}% vs isolated")


if __name__ == "__main__":
    main()
