"""``greeksmargin simm CRIF [--version 2.5] [--by portfolio] [--horizon 10d|1d] [--json OUT]``: ISDA SIMM of a CRIF."""

from __future__ import annotations

import argparse
from pathlib import Path

from greeksmargin import io
from greeksmargin.cli import _output
from greeksmargin.engine.params_files import load_simm_params
from greeksmargin.errors import InputError
from greeksmargin.methodologies.simm import simm_by_portfolio, tree_table
from greeksmargin.reports import fmt
from greeksmargin.risk.crif import read_crif

_BY = {"portfolio": "PortfolioID", "trade": "TradeID", "none": None}


def _fx_rate(text: str) -> tuple[str, float]:
    ccy, sep, value = text.partition("=")
    try:
        rate = float(value)
    except ValueError:
        rate = float("nan")
    if not sep or len(ccy.strip()) != 3 or not rate > 0:
        raise argparse.ArgumentTypeError(f"expected CCY=USD_PER_UNIT such as EUR=1.08, got '{text}'")
    return ccy.strip().upper(), rate


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``simm`` sub-command."""
    p = sub.add_parser(
        "simm",
        help="ISDA SIMM of a CRIF file (all risk classes, add-ons), per portfolio",
        description=("Read a CRIF (.csv, .tsv/.txt tab-separated, .parquet; AmountUSD, or Amount + AmountCurrency "
                     "with --fx-rate) and print the SIMM tree in USD: total, product class, risk class, measure."),
    )
    p.add_argument("crif", type=Path, help="CRIF file")
    p.add_argument("--version", default="2.5", help="SIMM version of a shipped model (2.5, 2.6, ...) or a model file")
    p.add_argument("--by", choices=sorted(_BY), default="none", help="one SIMM per portfolio or per trade")
    p.add_argument("--horizon", choices=("10d", "1d"), default="10d", help="margin period of risk (default 10d)")
    p.add_argument("--calculation-currency", default="USD", help="calculation currency (default USD)")
    p.add_argument("--fx-rate", type=_fx_rate, action="append", default=[], metavar="CCY=RATE",
                   help="USD per unit of a currency, for Amount/AmountCurrency rows (repeatable)")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    p.add_argument("--json", type=Path, dest="json_out", help="also write the SIMM trees as JSON to this file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the ``simm`` sub-command."""
    params = load_simm_params(io.shipped_simm_file(args.version))
    crif = read_crif(args.crif, dict(args.fx_rate))
    by = _BY[args.by]
    if by is not None and (crif[by] == "").all():
        raise InputError(f"--by {args.by}: the CRIF has no {by} values", file=str(args.crif), column=by)
    results = simm_by_portfolio(crif, params, args.horizon, args.calculation_currency, by=by)
    table = tree_table(results)
    _output.emit(_output.render(table, args.format, lambda c, v: f"{v:,.0f}" if c == "amount_usd" else fmt.cell(c, v)),
                 None)
    if args.json_out is not None:
        io.write_json({name: res.tree() for name, res in results.items()}, args.json_out)
        print(f"wrote {args.json_out}")
    return 0
