"""Benchmark: strategy-based (Reg T) margin, exact optimal pairing (MILP, HiGHS) vs the greedy heuristic.

Random books of one underlying (a listed-equity-like chain: strikes at 2.5% steps around the spot, three
expiries, quantities -10..10, premiums from Black-Scholes at 30% vol, some with stock) of ``--legs`` legs each.
Per size: median and 99th percentile latency of the optimal decomposition (both programs: minimum margin, then
minimum cash among the minimum-margin decompositions) and of the greedy one; how often and by how much the
optimum is below the greedy figure. Every optimum is checked to be <= the greedy figure.

Run: ``.venv/bin/python benchmarks/bench_strategy.py [--legs 10 20 30 50] [--books 40]``.
"""

from __future__ import annotations

import argparse
import math
import random
import time

import numpy as np
from _common import machine

from greeksmargin.engine.params_files import load_strategy_params
from greeksmargin.methodologies.strategy import Leg, Underlying, strategy_margin


def _bs(is_call: bool, s: float, k: float, t: float, vol: float = 0.30) -> float:
    if t <= 0:
        return max(0.0, (s - k) if is_call else (k - s))
    d1 = (math.log(s / k) + 0.5 * vol * vol * t) / (vol * math.sqrt(t))
    d2 = d1 - vol * math.sqrt(t)
    n = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    c = s * n(d1) - k * n(d2)
    return c if is_call else c - s + k


def make_book(n_legs: int, rnd: random.Random) -> tuple[Underlying, list[Leg]]:
    """A random book of ``n_legs`` option legs (and, one time in three, a stock leg) on one underlying."""
    s = 100.0
    und = Underlying.of(s, rnd.choice(["equity", "broad"]))
    legs = []
    for _ in range(n_legs):
        is_call = rnd.random() < 0.5
        k = round(s * (1 + 0.025 * rnd.randint(-8, 8)), 2)
        dte = rnd.choice([7, 35, 91])
        prem = round(max(0.05, _bs(is_call, s, k, dte / 365)), 2)
        q = rnd.choice([-1, 1]) * rnd.randint(1, 10)
        legs.append(Leg.option("call" if is_call else "put", k, prem, q, dte))
    if rnd.random() < 1 / 3:
        legs.append(Leg.stock(rnd.choice([-1, 1]) * 100 * rnd.randint(1, 10), s))
    return und, legs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--legs", type=int, nargs="*", default=[10, 20, 30, 50])
    ap.add_argument("--books", type=int, default=40)
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    params = load_strategy_params()
    rnd = random.Random(args.seed)
    und, legs = make_book(5, random.Random(0))
    strategy_margin(legs, und, params)  # warm-up: solver import
    print(machine())
    print(f"{args.books} random books per size; optimal = MILP (HiGHS, zero gap) + cash tie-break program")
    print(f"{'legs':>5}{'optimal med ms':>16}{'p99 ms':>9}{'greedy med ms':>15}{'opt < greedy':>14}"
          f"{'mean saving %':>15}{'max saving %':>14}")
    for n in args.legs:
        t_opt, t_gr, savings = [], [], []
        for _ in range(args.books):
            und, legs = make_book(n, rnd)
            t0 = time.perf_counter()
            opt = strategy_margin(legs, und, params, method="optimal")
            t1 = time.perf_counter()
            gr = strategy_margin(legs, und, params, method="greedy")
            t2 = time.perf_counter()
            t_opt.append(t1 - t0)
            t_gr.append(t2 - t1)
            o, g = float(opt.margin_requirement), float(gr.margin_requirement)
            assert o <= g + 1e-6, (o, g)
            savings.append(100.0 * (g - o) / g if g > 0 else 0.0)
        sv = np.array(savings)
        print(f"{n:>5}{np.median(t_opt) * 1e3:>16.1f}{np.percentile(t_opt, 99) * 1e3:>9.1f}"
              f"{np.median(t_gr) * 1e3:>15.2f}{int((sv > 1e-9).sum()):>9d}/{args.books:<4d}"
              f"{sv.mean():>15.1f}{sv.max():>14.1f}")


if __name__ == "__main__":
    main()
