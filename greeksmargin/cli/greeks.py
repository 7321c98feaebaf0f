"""``greeksmargin greeks POSITIONS MARKET [--by account,underlying] [--format table|csv|json] [--out FILE]``."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from greeksmargin.book.market import load_market
from greeksmargin.book.positions import load_positions, validate_against_market
from greeksmargin.cli import _output
from greeksmargin.risk.aggregation import aggregate_greeks
from greeksmargin.risk.greeks import price_positions


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``greeks`` sub-command."""
    p = sub.add_parser(
        "greeks",
        help="net cash Greeks of a book by account / underlying / expiry bucket",
        description=(
            "Price every position of POSITIONS (CSV/Parquet) on MARKET (JSON/TOML snapshot) and print the net "
            "cash Greeks (USD): delta_cash (per 1.00 relative move), delta_1pct, gamma_cash_1pct, vega_1volpt, "
            "theta_1d, value_usd, and coin_delta_<COIN> for coin-settled positions."
        ),
    )
    p.add_argument("positions", type=Path, help="positions table (.csv or .parquet)")
    p.add_argument("market", type=Path, help="market snapshot (.json or .toml)")
    p.add_argument("--by", default="account,underlying",
                   help="comma-separated grouping columns; may include expiry_bucket (default: account,underlying)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")
    p.set_defaults(func=run)


def _number(column: str, value: float) -> str:
    return f"{value:,.0f}" if column == "n_positions" else f"{value:,.2f}"


def format_table(df: pd.DataFrame) -> str:
    """Render net Greeks as an aligned text table: 2 decimals (``n_positions`` whole), thousands separators."""
    return _output.format_table(df, _number)


def render(df: pd.DataFrame, fmt: str) -> str:
    """Render aggregated Greeks as ``table``, ``csv`` or ``json`` text."""
    return _output.render(df, fmt, _number)


def run(args: argparse.Namespace) -> int:
    """Run the ``greeks`` sub-command."""
    market = load_market(args.market)
    positions = load_positions(args.positions, valuation_time=market.valuation_time)
    validate_against_market(positions, market, file=str(args.positions))
    agg = aggregate_greeks(price_positions(positions, market), by=args.by)
    _output.emit(render(agg, args.format), args.out)
    return 0
