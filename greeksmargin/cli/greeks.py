"""``greeksmargin greeks POSITIONS MARKET [--by account,underlying] [--format table|csv|json] [--out FILE]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from .. import io
from ..aggregation import aggregate_greeks
from ..greeks import price_positions
from ..market import load_market
from ..positions import load_positions, validate_against_market


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


def format_table(df: pd.DataFrame) -> str:
    """Render a DataFrame as an aligned text table (numbers right-aligned, thousands separators)."""
    cells: list[list[str]] = []
    numeric = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    for _, row in df.iterrows():
        line = []
        for c, is_num in zip(df.columns, numeric):
            v = row[c]
            if is_num:
                line.append("" if pd.isna(v) else f"{v:,.0f}" if c == "n_positions" else f"{v:,.2f}")
            else:
                line.append(str(v))
        cells.append(line)
    widths = [max([len(str(c))] + [len(r[i]) for r in cells]) for i, c in enumerate(df.columns)]

    def fmt(vals: list[str]) -> str:
        return "  ".join(v.rjust(w) if n else v.ljust(w) for v, w, n in zip(vals, widths, numeric)).rstrip()

    lines = [fmt([str(c) for c in df.columns]), fmt(["-" * w for w in widths])]
    lines += [fmt(r) for r in cells]
    return "\n".join(lines) + "\n"


def to_records(df: pd.DataFrame) -> list[dict]:
    """JSON-ready records (NaN -> null)."""
    clean = df.astype(object).where(df.notna(), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in rec.items()}
            for rec in clean.to_dict(orient="records")]


def render(df: pd.DataFrame, fmt: str) -> str:
    """Render aggregated Greeks as ``table``, ``csv`` or ``json`` text."""
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return json.dumps(to_records(df), indent=1) + "\n"
    return format_table(df)


def run(args: argparse.Namespace) -> int:
    """Run the ``greeks`` sub-command."""
    market = load_market(args.market)
    positions = load_positions(args.positions, valuation_time=market.valuation_time)
    validate_against_market(positions, market, file=str(args.positions))
    agg = aggregate_greeks(price_positions(positions, market), by=args.by)
    text = render(agg, args.format)
    if args.out:
        io.write_text(text, args.out)
    else:
        sys.stdout.write(text)
    return 0
