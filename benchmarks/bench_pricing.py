"""Throughput of the pricing kernels: price + delta + gamma + vega + theta on random Black-76 options.

Run: ``.venv/bin/python benchmarks/bench_pricing.py [--n 1000000] [--repeats 5] [--vollib-n 20000]``.

Measured in one run, medians of ``--repeats``:
* numpy: :func:`greeksmargin.pricing.black76` (validation + all eight Greeks), in chunks of ``--chunk``;
* numba: the same with ``backend="numba"`` (compiled loop, ``prange``; compile time excluded);
* vollib: a scalar Python loop over ``vollib.black`` price, delta, gamma, vega, theta on a subsample
  (``--vollib-n``), extrapolated per option;
* the price-only hot-path kernels ``black76_price`` (numpy and numba) for reference.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import vollib.black.greeks.analytical as vb
from vollib.black import black as vb_price

from greeksmargin.pricing import black76, black76_price
from greeksmargin.pricing._numba import black76_price_numba


def draw(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    f = rng.uniform(50.0, 150.0, n)
    k = f * np.exp(rng.uniform(-0.5, 0.5, n))
    t = rng.uniform(0.01, 2.0, n)
    vol = rng.uniform(0.1, 1.0, n)
    r = rng.uniform(0.0, 0.05, n)
    call = rng.random(n) < 0.5
    return call, f, k, t, vol, r


def greeks_chunked(backend: str, chunk: int, call, f, k, t, vol, r) -> np.ndarray:
    """Price, delta, gamma, vega, theta into one (5, n) array, computed chunk by chunk."""
    n = f.shape[0]
    out = np.empty((5, n))
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        g = black76(call[a:b], f[a:b], k[a:b], t[a:b], vol[a:b], r[a:b], backend=backend)
        out[0, a:b], out[1, a:b], out[2, a:b], out[3, a:b], out[4, a:b] = g.price, g.delta, g.gamma, g.vega, g.theta
    return out


def vollib_loop(call, f, k, t, vol, r) -> np.ndarray:
    out = np.empty((5, f.shape[0]))
    for i in range(f.shape[0]):
        args = ("c" if call[i] else "p", f[i], k[i], t[i], r[i], vol[i])
        out[:, i] = (vb_price(*args), vb.delta(*args), vb.gamma(*args), vb.vega(*args), vb.theta(*args))
    return out


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--vollib-n", type=int, default=20_000)
    ap.add_argument("--chunk", type=int, default=131_072)
    args = ap.parse_args()

    data = draw(args.n)
    sub = tuple(a[: args.vollib_n] for a in data)
    # warm up (numba compile / cache load) and cross-check the three paths on the subsample
    ref = vollib_loop(*(a[:200] for a in sub))
    for backend in ("numpy", "numba"):
        got = greeks_chunked(backend, args.chunk, *(a[:200] for a in sub))
        got[3] /= 100.0  # vollib: vega per vol point, theta per day
        got[4] /= 365.0
        assert np.allclose(got, ref, rtol=0, atol=1e-9), backend
    black76_price_numba(*(a[:10] for a in data))

    results = {}
    results["vollib scalar loop"] = args.vollib_n / timed(lambda: vollib_loop(*sub), max(1, args.repeats // 2))
    results["numpy black76 Greeks"] = args.n / timed(lambda: greeks_chunked("numpy", args.chunk, *data), args.repeats)
    results["numba black76 Greeks"] = args.n / timed(lambda: greeks_chunked("numba", args.chunk, *data), args.repeats)
    results["numpy black76_price"] = args.n / timed(lambda: black76_price(*data), args.repeats)
    results["numba black76_price"] = args.n / timed(lambda: black76_price_numba(*data), args.repeats)

    base = results["vollib scalar loop"]
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numpy {np.__version__}")
    print(f"# n = {args.n:,} options (vollib on {args.vollib_n:,}), median of {args.repeats} repeats")
    print(f"{'path':<24}{'options/s':>16}{'x vollib':>12}")
    for name, rate in results.items():
        print(f"{name:<24}{rate:>16,.0f}{rate / base:>12,.1f}")


if __name__ == "__main__":
    main()
