"""American approximations: BAW and Bjerksund-Stensland (2002) throughput and accuracy against a lattice.

Measured in one run, medians of ``--repeat`` (random equity-style options: S/K in [0.8, 1.25], T in
[0.02, 2] y, vol in [0.1, 0.8], r and q in [0, 0.08], half calls):

1. :func:`greeksmargin.pricing.bsm_price` (European BSM) on ``--n`` options: the baseline;
2. :func:`greeksmargin.pricing.american_price` ``method="baw"`` on the same options;
3. the same with ``method="bs2002"`` (and ``"bs1993"``);
4. :func:`greeksmargin.pricing.lattice_price` (Leisen-Reimer, ``--steps``) on the first ``--lattice-n``
   options, the reference: max / 99th percentile of |approximation - lattice| over those options.

Run: ``.venv/bin/python benchmarks/bench_american.py [--n 100000] [--lattice-n 1000] [--steps 501]``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import machine, median, times

from greeksmargin.pricing import american_price, bsm_price, lattice_price


def draw(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    k = rng.uniform(50.0, 150.0, n)
    s = k * np.exp(rng.uniform(np.log(0.8), np.log(1.25), n))
    t = rng.uniform(0.02, 2.0, n)
    vol = rng.uniform(0.1, 0.8, n)
    r = rng.uniform(0.0, 0.08, n)
    q = rng.uniform(0.0, 0.08, n)
    call = rng.random(n) < 0.5
    return call, s, k, t, vol, r, q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--lattice-n", type=int, default=1_000)
    ap.add_argument("--steps", type=int, default=501)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print(machine())
    data = draw(args.n)
    print(f"{args.n:,} options; lattice: {args.lattice_n:,} options x {args.steps} steps (Leisen-Reimer); "
          f"median of {args.repeat}")
    rows = []
    t_eu = median(times(lambda: bsm_price(*data), args.repeat))
    rows.append(("European BSM (bsm_price)", t_eu))
    for method in ("baw", "bs2002", "bs1993"):
        t_am = median(times(lambda m=method: american_price(*data, method=m), args.repeat))
        rows.append((f"American {method}", t_am))
    sub = tuple(a[: args.lattice_n] for a in data)
    ref = None

    def run_lattice() -> None:
        nonlocal ref
        ref = lattice_price(*sub, n_steps=args.steps)

    t_lat = median(times(run_lattice, max(1, min(args.repeat, 2))))
    rows.append((f"lattice LR {args.steps} steps (on {args.lattice_n:,})", t_lat))
    for name, sec in rows:
        n = args.lattice_n if name.startswith("lattice") else args.n
        print(f"  {name:<40s} {sec * 1e3:10.1f} ms  {n / sec / 1e6:8.3f} M options/s  "
              f"({sec / t_eu:6.1f} x BSM time per {n:,})" if not name.startswith("lattice") else
              f"  {name:<40s} {sec * 1e3:10.1f} ms  {n / sec / 1e3:8.3f} k options/s")
    k = sub[2]
    for method in ("baw", "bs2002", "bs1993"):
        err = american_price(*sub, method=method) - ref
        rel = np.abs(err) / k
        print(f"  accuracy {method:<7s} vs lattice: max |err| {np.abs(err).max():.4f} ({rel.max() * 100:.3f}% K), "
              f"p99 {np.percentile(np.abs(err), 99):.4f}, mean err {err.mean():+.5f}")


if __name__ == "__main__":
    main()
