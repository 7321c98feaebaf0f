"""Progress on stderr for the steps that can run over a couple of seconds (``rich``; off when quiet or piped).

Usage::

    with step("margin of 10,000 accounts"):
        res = assess_solvency(...)

In a terminal this shows a spinner, the step and the elapsed time on stderr, and leaves one line
``done in 3.2 s`` per step; when stderr is not a terminal (CI, a pipe, a file) or ``--quiet`` is given it
prints nothing, so standard output and logs stay clean.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

#: set by :func:`greeksmargin.cli.main` from ``--quiet``
QUIET = False


def enabled() -> bool:
    """Progress is shown: not ``--quiet`` and stderr is a terminal."""
    return not QUIET and sys.stderr.isatty()


@contextmanager
def step(description: str) -> Iterator[None]:
    """Show ``description`` with a spinner and the elapsed time on stderr while the block runs."""
    if not enabled():
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    t0 = time.perf_counter()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=True) as progress:
        progress.add_task(description, total=None)
        yield
    console.print(f"[dim]{description}: done in {time.perf_counter() - t0:.1f} s[/dim]")


def note(text: str) -> None:
    """A one-line message on stderr (what was skipped or truncated); silent under ``--quiet``."""
    if not QUIET:
        print(text, file=sys.stderr)
