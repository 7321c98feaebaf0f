"""Helpers shared by the benchmark scripts (machine description, timing)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sibling benchmark modules (bench_margin)


def machine() -> str:
    """One line: cores, CPU model, Python / numpy / numba versions, BLAS core type."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import numba

        nb = numba.__version__
    except ImportError:  # pragma: no cover
        nb = "absent"
    return (f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, "
            f"Python {platform.python_version()}, numpy {np.__version__}, numba {nb}, "
            f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '-')}")


def times(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall-clock seconds of ``repeat`` calls."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)
