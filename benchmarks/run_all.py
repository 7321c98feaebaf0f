"""Run every ``benchmarks/bench_*.py`` script in turn and print its output (``make bench``).

Run: ``.venv/bin/python benchmarks/run_all.py [--only NAME ...] [--quick]``. ``--quick`` passes small sizes
to each script (smoke test, not the published figures). A script that fails is reported and the others
still run; the exit code is 1 if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: small sizes for --quick (a smoke test of every script)
QUICK = {
    "bench_pricing.py": ["--n", "100000", "--repeats", "2", "--vollib-n", "2000"],
    "bench_margin.py": ["--accounts", "200", "--repeat", "1", "--naive", "10"],
    "bench_kernels.py": ["--accounts", "200", "--repeat", "1", "--naive", "10"],
    "bench_whatif.py": ["--repeat", "50"],
    "bench_maxsize.py": ["--repeat", "3"],
    "bench_dask.py": ["--accounts", "2000", "--baseline-files", "1"],
    "bench_strategy.py": ["--legs", "10", "20", "--books", "5"],
    "bench_simm.py": ["--rows", "50000", "--repeat", "1"],
    "bench_engine_vs_numpy.py": ["--accounts", "200", "--repeat", "1"],
    "bench_distance.py": ["--accounts", "100", "--repeat", "1"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", default=None, help="script names (e.g. bench_whatif)")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    scripts = sorted(HERE.glob("bench_*.py"))
    if args.only:
        keep = {s if s.endswith(".py") else s + ".py" for s in args.only}
        scripts = [s for s in scripts if s.name in keep]
    failed = []
    for s in scripts:
        extra = QUICK.get(s.name, []) if args.quick else []
        print(f"\n===== {s.name} {' '.join(extra)}".rstrip(), flush=True)
        t0 = time.perf_counter()
        rc = subprocess.call([sys.executable, str(s), *extra], cwd=HERE.parent)
        print(f"===== {s.name}: exit {rc}, {time.perf_counter() - t0:.1f} s", flush=True)
        if rc:
            failed.append(s.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
