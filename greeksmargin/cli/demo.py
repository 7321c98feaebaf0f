"""``greeksmargin demo``: the bundled example book, step by step.

The demo is a list of steps (:data:`STEPS`); each step is a function ``step(ctx) -> str`` that reads
and extends the context dict (``ctx["book"]``, ``ctx["priced"]``, ...) and returns the text it prints.
Later parts (margin, solvency) append their own step to :data:`STEPS`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from greeksmargin.cli.greeks import format_table
from greeksmargin.datasets import load_example_book
from greeksmargin.risk.aggregation import aggregate_greeks
from greeksmargin.risk.greeks import price_positions

Step = Callable[[dict[str, Any]], str]


def step_load(ctx: dict[str, Any]) -> str:
    """Load the bundled example book."""
    book = load_example_book()
    ctx["book"] = book
    pos = book.positions
    return (
        f"1. Example book: {len(pos)} positions in {pos['account'].nunique()} accounts, "
        f"underlyings {', '.join(book.market.underlyings)}, "
        f"valuation time {book.market.valuation_time:%Y-%m-%d %H:%M} UTC\n"
    )


def step_greeks(ctx: dict[str, Any]) -> str:
    """Price the book and print the net cash Greeks per account and underlying."""
    book = ctx["book"]
    priced = price_positions(book.positions, book.market)
    ctx["priced"] = priced
    agg = aggregate_greeks(priced, by=("account", "underlying"))
    ctx["greeks"] = agg
    return "2. Net cash Greeks per account and underlying (USD; coin deltas in coin)\n\n" + format_table(agg)


#: the demo's steps, run in order; other parts append theirs (e.g. the margin step)
STEPS: list[Step] = [step_load, step_greeks]

# the margin part's step (greeksmargin/cli/margin.py): margin of the bundled book under the house model
from greeksmargin.cli.margin import step_margin  # noqa: E402

STEPS.append(step_margin)


def run_steps(steps: list[Step] | None = None) -> dict[str, Any]:
    """Run the steps, print their text, and return the context."""
    ctx: dict[str, Any] = {}
    for step in steps if steps is not None else STEPS:
        print(step(ctx))
    return ctx


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``demo`` sub-command."""
    p = sub.add_parser("demo", help="run the bundled example book", description=__doc__.splitlines()[0])
    p.set_defaults(func=lambda args: (run_steps(), 0)[1])
