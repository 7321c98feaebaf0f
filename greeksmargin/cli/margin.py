"""``greeksmargin margin | whatif | maxsize | models``: margin, what-if of trades, pre-trade size, shipped models.

Thin layer: parse arguments, call :func:`greeksmargin.engine.margin.compute_margin` /
:func:`~greeksmargin.engine.whatif.margin_change` / :func:`~greeksmargin.engine.models.list_models`, write the output.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from greeksmargin import io
from greeksmargin.cli._output import emit, format_table, records, render
from greeksmargin.errors import InputError


def run_margin(args: argparse.Namespace) -> int:
    """Run ``greeksmargin margin``."""
    from greeksmargin.engine.margin import accounts_table, compute_margin

    if args.positions.is_dir():  # a Parquet dataset partitioned by account: batch, on Dask unless told otherwise
        from greeksmargin.engine.batch import margin_dataset

        sched = None if args.scheduler == "none" else (args.scheduler or "local")
        table = margin_dataset(args.positions, args.market, args.model, scheduler=sched)
        first = ["account", "currency", "im", "mm", "isolated_im", "saving", "saving_pct"]
        table = table[first + [c for c in table.columns if c not in first]]
        if args.format == "html":
            raise InputError("--format html is not available for a dataset folder (use table, csv or json)")
        if args.format == "parquet":
            _write_parquet(table, args.out)
            return _failed_accounts(table, "margin")
        emit(render(table, args.format) if args.format != "json" else
             json.dumps({"accounts": records(table)}, indent=1) + "\n", args.out)
        return _failed_accounts(table, "margin")  # a batch always goes on: exit 3 when any account failed
    if args.scheduler:
        raise InputError("--scheduler applies to a Parquet dataset folder of positions only")
    res = compute_margin(args.positions, args.market, args.model, collateral=args.collateral,
                         errors="collect" if args.keep_going else "raise")
    if args.explain:
        emit(res.explain(args.explain), args.out)
        return 0
    table = accounts_table(res)
    if args.format == "parquet":  # the accounts table, typed (numbers stay numbers)
        _write_parquet(table, args.out)
        return _failed_accounts(res.accounts, "margin")
    if args.format == "table":
        text = f"Margin under model {res.model.name} ({res.model.methodology}); amounts in each account's currency\n\n"
        text += format_table(table)
        summ = res.summary()
        text += "\nTotals per currency (cross vs isolated)\n\n" + format_table(summ)
    elif args.format == "csv":
        text = table.to_csv(index=False)
    elif args.format == "json":
        text = json.dumps(
            {
                "model": {"name": res.model.name, "methodology": res.model.methodology, "file": res.model.file},
                "accounts": records(table),
                "components": records(res.components),
                "by_underlying": records(res.by_underlying),
            },
            indent=1,
        ) + "\n"
    else:
        from greeksmargin.reports.margin import margin_report

        text = margin_report(res)
        if args.out is None:
            args.out = Path("margin_report.html")
    emit(text, args.out)
    return _failed_accounts(res.accounts, "margin")


def _write_parquet(table: Any, out: Path | None) -> None:
    if out is None:
        raise InputError("--format parquet needs --out FILE.parquet (binary output is not printed)")
    io.write_table(table, out)


def _failed_accounts(acc: Any, command: str) -> int:
    """List the accounts that failed on stderr; exit code 3 when there are any (``--keep-going``), else 0.

    Failed: an error (a bad row, a position the market cannot price) or a figure that broke the
    post-condition (:mod:`greeksmargin.engine.postcondition`). An account outside the model's domain is
    not a failure (``not_computed`` by the model's own rule, in the table with its reason).
    """
    err = acc["error"].fillna("").astype(str) if "error" in acc.columns else None
    failed_mask = (err != "") if err is not None else None
    if "reason" in acc.columns:
        post = acc["reason"].fillna("").astype(str).str.startswith("post-condition")
        failed_mask = post if failed_mask is None else (failed_mask | post)
    if failed_mask is None or not failed_mask.any():
        return 0
    failed = acc[failed_mask]
    why = failed["error"].fillna(failed["reason"]) if "error" in failed.columns else failed["reason"]
    print(f"greeksmargin {command}: {len(failed)} account(s) not computed:", file=sys.stderr)
    for a, e in zip(failed["account"], why):
        print(f"  {a}: {e}", file=sys.stderr)
    return 3


def run_whatif(args: argparse.Namespace) -> int:
    """Run ``greeksmargin whatif``."""
    from greeksmargin.engine.whatif import margin_change

    df = margin_change(args.positions, args.market, args.model, args.trades)
    text = render(df, args.format)
    if args.format == "table":
        text = "Margin before and after the trades (touched accounts only)\n\n" + text
    emit(text, args.out)
    return 0


def run_maxsize(args: argparse.Namespace) -> int:
    """Run ``greeksmargin maxsize``."""
    from greeksmargin.solvency.sizing import max_size

    orders: Any = args.orders
    if orders is not None and orders.suffix.lower() == ".json":  # Deribit open orders (get_open_orders_by_currency)
        from greeksmargin.book.market import load_market
        from greeksmargin.io import read_json
        from greeksmargin.solvency.sizing import deribit_orders

        orders = deribit_orders(read_json(orders), args.account, load_market(args.market), file=str(args.orders))
    ans = max_size(args.positions, args.market, args.collateral, account=args.account, instrument=args.instrument,
                   side=args.side, model=args.model, min_size=args.min_size, orders=orders,
                   max_multiples=args.max_multiples)
    table = ans.to_frame()
    if args.format == "table":
        lines = [f"Largest {args.side} of {args.instrument} for account {args.account} under model {ans.model} "
                 f"(IM within equity = collateral after IM haircuts + mark-to-market; minimum size {ans.min_size:g})",
                 ""]
        for _, r in table.iterrows():
            label = "positions only" if r["orders"] == "none" else "with open orders (worse side)"
            lines.append(f"{label}: {r['quantity']:g} ({r['status']})")
            lines.append(f"  {r['reason']}")
        text = "\n".join(lines) + "\n"
    else:
        text = render(table, args.format)
    emit(text, args.out)
    return 0


def run_models(args: argparse.Namespace) -> int:
    """Run ``greeksmargin models``."""
    from greeksmargin.engine.models import list_models

    df = list_models()
    if args.format == "json":
        text = json.dumps(records(df), indent=1) + "\n"
    else:
        text = format_table(df[["name", "methodology", "status", "runnable", "description"]])
    emit(text, None)
    return 0


def step_margin(ctx: dict[str, Any]) -> str:
    """Demo step: margin of the bundled book under the house model."""
    from greeksmargin.datasets import load_example_book
    from greeksmargin.engine.margin import compute_margin

    book = ctx.get("book") or load_example_book()
    res = compute_margin(book.positions, book.market, "greeks-default")
    ctx["margin"] = res
    cols = ["account", "currency", "im", "mm", "isolated_im", "saving", "saving_pct", "scan", "delta", "gamma",
            "vega", "short_option_minimum", "roll"]
    return (
        "3. Margin under the house model greeks-default (shocks calibrated on BTC and S&P 500 history); "
        "amounts in each account's margin currency, cross-margin vs isolated\n\n"
        + format_table(res.accounts[[c for c in cols if c in res.accounts.columns]])
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``margin``, ``whatif`` and ``models`` sub-commands."""
    p = sub.add_parser("margin", help="initial and maintenance margin of a positions book",
                       description="Per-account IM, MM, components and the cross-versus-isolated saving.")
    p.add_argument("positions", type=Path,
                   help="positions table (.csv or .parquet), or a Parquet dataset folder partitioned by account")
    p.add_argument("market", type=Path, help="market snapshot (.json or .toml)")
    p.add_argument("--model", default="greeks-default", help="shipped model name or a model .toml file")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dataset folder only: Dask scheduler address (default: a local cluster on 127.0.0.1; "
                   "'none': in this process)")
    p.add_argument("--collateral", type=Path, help="collateral table (.csv or .parquet)")
    p.add_argument("--format", choices=("table", "csv", "json", "html", "parquet"), default="table")
    p.add_argument("--out", type=Path, help="write to this file (html default: margin_report.html)")
    p.add_argument("--explain", metavar="ACCOUNT", help="explain one account line by line")
    p.add_argument("--keep-going", action="store_true",
                   help="compute the good accounts, list the accounts that cannot be computed (a bad row, a "
                   "position the market cannot price) with their error, and exit 3 when there are any")
    p.set_defaults(func=run_margin)

    w = sub.add_parser("whatif", help="margin change of adding trades (touched accounts only)")
    w.add_argument("positions", type=Path)
    w.add_argument("market", type=Path)
    w.add_argument("--model", default="greeks-default")
    w.add_argument("--trades", type=Path, required=True, help="trades table (positions schema)")
    w.add_argument("--format", choices=("table", "csv", "json"), default="table")
    w.add_argument("--out", type=Path)
    w.set_defaults(func=run_whatif)

    z = sub.add_parser("maxsize", help="largest trade of one instrument that keeps IM within equity",
                       description="Pre-trade sizing: the largest multiple of the minimum size of INSTRUMENT that "
                       "ACCOUNT can buy or sell with its IM (what-if under --model) within its equity (collateral "
                       "after IM haircuts + mark-to-market; the trade done at its mark). IM need not be monotone in "
                       "size: scan 1, 4, 16, ... minimum sizes to the first size that breaks, then bisect to an "
                       "adjacent pair (the answer holds, one more minimum size breaks it), checked.")
    z.add_argument("positions", type=Path)
    z.add_argument("market", type=Path)
    z.add_argument("--collateral", type=Path, required=True, help="collateral table (.csv or .parquet)")
    z.add_argument("--account", required=True)
    z.add_argument("--instrument", required=True,
                   help="an instrument of the positions table (any account) or a Deribit instrument name")
    z.add_argument("--side", choices=("buy", "sell"), required=True)
    z.add_argument("--model", default="greeks-default")
    z.add_argument("--min-size", type=float, default=None,
                   help="minimum size in the positions' quantity unit (default by kind: option 0.1, future and "
                   "perpetual 0.001, spot 0.0001; 1 for contracts with a multiplier above 1)")
    z.add_argument("--orders", type=Path, help="open orders: a positions-format table with a 'side' column "
                   "(buy|sell) and positive quantities, or a Deribit get_open_orders_by_currency .json; margined "
                   "as Deribit does (each side as if filled, the worse counts), shown beside positions only")
    z.add_argument("--max-multiples", type=int, default=2**20,
                   help="cap of the search in minimum sizes (default 2^20): beyond it the answer is 'no limit'")
    z.add_argument("--format", choices=("table", "csv", "json"), default="table")
    z.add_argument("--out", type=Path)
    z.set_defaults(func=run_maxsize)

    m = sub.add_parser("models", help="list the shipped margin models")
    m.add_argument("--format", choices=("table", "json"), default="table")
    m.set_defaults(func=run_models)
