"""Benchmark (d): 5,000,000 positions through the Dask path on a local cluster: time and peak memory.

The book (``--accounts`` x ``--positions`` BTC options, the book of ``bench_margin.py``) is generated file by
file into a temporary Parquet dataset partitioned by account (``--accounts-per-file`` accounts a file),
then :func:`greeksmargin.engine.batch.margin_dataset` runs it on a local Dask cluster (2 worker processes,
1 thread each, 127.0.0.1). A sampler thread records the resident memory (RSS) of the whole process tree
(this process, the nannies, the workers) every 0.1 s: the peak is reported (target <= 4 GiB).
Baseline in the same run: the in-process path on the first ``--baseline-files`` files, extrapolated, whose
accounts must equal the Dask results exactly.

Run: ``.venv/bin/python benchmarks/bench_dask.py [--accounts 100000] [--positions 50]``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
from _common import machine
from bench_margin import make_book, make_market

from greeksmargin import io
from greeksmargin.engine.batch import margin_dataset, margin_partition


class TreeMemory:
    """Peak RSS of this process and all its descendants, sampled in a thread."""

    def __init__(self, every: float = 0.1) -> None:
        self.every = every
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def sample(self) -> int:
        try:
            import psutil
        except ImportError:  # pragma: no cover: getrusage gives self + waited-for children maxima
            import resource

            return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                    + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) * 1024
        me = psutil.Process()
        total = me.memory_info().rss
        for c in me.children(recursive=True):
            try:
                total += c.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.sample())
            time.sleep(self.every)

    def __enter__(self) -> TreeMemory:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.sample())


def write_book(path: Path, accounts: int, positions: int, per_file: int) -> int:
    n = 0
    for i, a0 in enumerate(range(0, accounts, per_file)):
        k = min(per_file, accounts - a0)
        df = make_book(k, positions, seed=1000 + i)
        df["account"] = [f"F{i:04d}-{x}" for x in df["account"]]
        io.write_table(df, path / f"part-{i:05d}.parquet")
        n += len(df)
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--positions", type=int, default=50)
    ap.add_argument("--accounts-per-file", type=int, default=1_000)
    ap.add_argument("--partition-size", type=int, default=50_000)
    ap.add_argument("--baseline-files", type=int, default=4)
    ap.add_argument("--model", default="greeks-default")
    args = ap.parse_args()
    print(machine())
    market = make_market()
    tmp = Path(tempfile.mkdtemp(prefix="gm-bench-dask-"))
    try:
        t0 = time.perf_counter()
        n = write_book(tmp, args.accounts, args.positions, args.accounts_per_file)
        parts = io.parquet_partitions(tmp)
        print(f"dataset: {n:,} positions, {args.accounts:,} accounts, {len(parts)} Parquet files "
              f"(written in {time.perf_counter() - t0:.1f} s) in {tmp}")

        with TreeMemory() as mem_base:
            t0 = time.perf_counter()
            base = pd.concat([margin_partition(f, k, market, args.model, args.partition_size)
                              for f, k in parts[: args.baseline_files]], ignore_index=True)
            t_base = time.perf_counter() - t0
        t_base_all = t_base / args.baseline_files * len(parts)

        with TreeMemory() as mem:
            t0 = time.perf_counter()
            res = margin_dataset(tmp, market, args.model, scheduler="local", partition_size=args.partition_size)
            t_dask = time.perf_counter() - t0
        assert len(res) == args.accounts, (len(res), args.accounts)
        assert res["error"].isna().all()
        got = res.set_index("account").loc[base["account"]]
        pd.testing.assert_frame_equal(got.reset_index()[base.columns], base.reset_index(drop=True))

        gib = 1024**3
        print(f"{'path':<52}{'time s':>9}{'pos/s':>12}{'peak RSS GiB':>14}")
        print(f"{'in-process, 1 core (baseline, extrapolated)':<52}{t_base_all:>9.1f}{n / t_base_all:>12,.0f}"
              f"{mem_base.peak / gib:>14.2f}")
        print(f"{'Dask LocalCluster 2 workers x 1 thread (whole run)':<52}{t_dask:>9.1f}{n / t_dask:>12,.0f}"
              f"{mem.peak / gib:>14.2f}")
        print(f"speed-up vs in-process: {t_base_all / t_dask:.2f}x; peak memory of the process tree "
              f"{mem.peak / gib:.2f} GiB (target <= 4 GiB); {args.baseline_files} partitions identical to in-process")
        print(f"total IM {res['im'].sum():,.0f} USD over {len(res):,} accounts")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
