"""Argument types of the sub-commands: finite numbers in a range, positive counts.

Used as ``type=`` of ``argparse`` options, so a bad value exits 2 with ``argument --NAME: ...`` naming the
option, the value and the allowed range.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def number(lo: float = -math.inf, hi: float = math.inf, *, lo_open: bool = False,
           hi_open: bool = False) -> Callable[[str], float]:
    """A ``type=`` converter: a finite float in [lo, hi] (``lo_open`` / ``hi_open``: the bound excluded)."""
    left, right = "(" if lo_open else "[", ")" if hi_open else "]"
    allowed = f"{left}{lo:g}, {hi:g}{right}"

    def convert(text: str) -> float:
        try:
            x = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r} (allowed {allowed})") from None
        ok = math.isfinite(x) and (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)
        if not ok:
            raise argparse.ArgumentTypeError(f"{text} is out of range (allowed {allowed})")
        return x

    return convert


def date(text: str) -> str:
    """A ``type=`` converter: an ISO date within the range pandas represents (returned as given)."""
    import pandas as pd

    try:
        ts = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} ({exc})") from None
    if pd.isna(ts) or not pd.Timestamp("1900-01-01") <= ts.tz_localize(None) <= pd.Timestamp("2262-04-11"):
        raise argparse.ArgumentTypeError(f"{text} is out of range (allowed 1900-01-01 .. 2262-04-11)")
    return text


def count(minimum: int = 1) -> Callable[[str], int]:
    """A ``type=`` converter: an integer >= ``minimum``."""

    def convert(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r} (allowed >= {minimum})") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"{text} is out of range (allowed >= {minimum})")
        return n

    return convert
