"""``greeksmargin compare | sidebyside``: a model against the exchange's margin, and every model on one book.

Thin layer over :mod:`greeksmargin.engine.compare` (and :mod:`~greeksmargin.engine.dispatch` to run any shipped
model on a positions book). The exchange-margin file format is documented in :mod:`greeksmargin.engine.compare`; a
sample for the bundled book is ``greeksmargin/datasets/data/example_exchange_margin.csv``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from greeksmargin import io
from greeksmargin.cli._args import count, number
from greeksmargin.cli._output import emit, format_table, records, significant


def run_compare(args: argparse.Namespace) -> int:
    """Run ``greeksmargin compare``."""
    from greeksmargin.book.book import load_book_market_collect
    from greeksmargin.book.market import load_market
    from greeksmargin.engine.compare import compare_with_exchange, normalize_exchange_margin
    from greeksmargin.engine.dispatch import run_model
    from greeksmargin.errors import MarketDataError

    market = load_market(args.market)
    exch = normalize_exchange_margin(io.read_table(args.exchange_margin), source=str(args.exchange_margin))
    # validated once: a bad row exits 2; an account the market cannot price gets an error row
    book = load_book_market_collect(args.positions, market)
    res = run_model(book, None, args.model)
    fx = {}
    for c in set(exch["currency"]) | set(res.accounts["currency"].dropna()):
        if isinstance(c, str) and c:
            try:
                fx[c] = market.fx_to_usd(c)
            except MarketDataError:
                pass  # no rate: compare_with_exchange reports a "currency mismatch"
    table = compare_with_exchange(res, exch, threshold=args.threshold, n_drivers=args.drivers, fx_to_usd=fx)
    name = res.model.name
    source = str(args.exchange_margin)
    if _is_bundled_sample(args.exchange_margin):
        source += (" - ILLUSTRATIVE: the bundled sample, made from this library's own models and moved by hand; "
                   "no exchange produced these figures (example_exchange_margin.md)")
        if args.format == "table":
            print(f"note: {source}")
    if args.format == "table":
        cols = ["account", "currency", "model_im", "exchange_im", "im_ratio", "model_mm", "exchange_mm", "mm_ratio",
                "outlier", "status"]
        text = (f"Model {name} against the exchange ({args.exchange_margin}); ratio = model / exchange; outlier "
                f"when |ln ratio| > {args.threshold:.3g}\n\n" + format_table(table[cols]))
        drv = table[table["drivers"] != ""][["account", "drivers"]]
        if len(drv):
            text += "\nLargest components per account\n\n" + format_table(drv)
    elif args.format == "csv":
        text = table.to_csv(index=False)
    elif args.format == "json":
        text = json.dumps({"model": name, "exchange_margin": source, "threshold": args.threshold,
                           "accounts": records(table)}, indent=1) + "\n"
    else:
        from greeksmargin.reports.compare import compare_report

        text = compare_report(table, model_name=name, threshold=args.threshold, source=source)
        if args.out is None:
            args.out = Path("compare_report.html")
    emit(text, args.out)
    return 0


def _is_bundled_sample(path: Path) -> bool:
    """The exchange-margin file is the bundled illustrative sample (not real exchange data)."""
    from greeksmargin.datasets import DATA_DIR

    sample = DATA_DIR / "example_exchange_margin.csv"
    try:
        return Path(path).resolve() == sample.resolve()
    except OSError:
        return False


def run_sidebyside(args: argparse.Namespace) -> int:
    """Run ``greeksmargin sidebyside``."""
    from greeksmargin.engine.compare import side_by_side, side_by_side_display
    from greeksmargin.engine.models import load_model

    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else None
    for m in models or []:
        load_model(m)  # an unknown model name or a bad model file: a usage error (exit 2), not a column of n/a
    im, saving = side_by_side(args.positions, args.market, models, currency=args.currency)
    errors = im.attrs.get("errors", {})
    nc = im.attrs.get("not_computed", {})
    status = im.attrs.get("model_status", {})
    illustrative = [m for m, st in status.items() if st == "illustrative"]
    flag = ("Illustrative parameters (not from a published exchange source), marked *: " + ", ".join(illustrative)
            + "\n\n") if illustrative else ""
    if args.format == "table":
        unit = "USD" if args.currency == "USD" else "each account's margin currency"
        shown = side_by_side_display(im)
        for c in shown.columns[2:]:
            shown[c] = [("n/a" if v.startswith("n/a") else v) if isinstance(v, str)
                        else ("" if pd.isna(v) else significant(c, float(v))) for v in shown[c]]
        text = f"Initial margin per account under each model ({unit}; n/a: reason below)\n\n" + flag
        text += format_table(shown)
        common = saving.attrs.get("common_accounts", [])
        text += ("\nCross-margin saving per model (USD; saving = isolated - cross). Each model's own totals run over "
                 "the accounts it priced (column accounts), so they do not compare across models; "
                 + (f"im_common / isolated_im_common are over the {len(common)} account(s) every model priced: "
                    f"{', '.join(common)}" if common else "no account is priced by every model, so there is no "
                    "like-for-like total (pass --models to choose comparable models)") + "\n\n")
        text += format_table(saving)
        errs = [(m, a, msg) for m, d in errors.items() for a, msg in d.items()]
        if errs:
            na = pd.DataFrame(errs, columns=["model", "account", "reason"])
            text += "\nNot computed (n/a)\n\n" + format_table(na)
    elif args.format == "csv":
        long = im.melt(id_vars=["account", "currency"], var_name="model", value_name="im")
        long["model_status"] = long["model"].map(status)
        long["reason"] = [errors.get(m, {}).get(a) for m, a in zip(long["model"], long["account"])]
        text = long.to_csv(index=False)
    elif args.format == "json":
        text = json.dumps({"im": records(im), "saving": records(saving), "errors": errors, "not_computed": nc,
                           "model_status": status}, indent=1) + "\n"
    else:
        from greeksmargin.reports.compare import side_by_side_report

        text = side_by_side_report(im, saving)
        if args.out is None:
            args.out = Path("sidebyside_report.html")
    emit(text, args.out)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` and ``sidebyside`` sub-commands."""
    p = sub.add_parser("compare", help="compare a model's margin with the exchange's, per account",
                       description="Ratios model / exchange per account, outliers and the components behind them.")
    p.add_argument("positions", type=Path, help="positions table (.csv or .parquet)")
    p.add_argument("market", type=Path, help="market snapshot (.json or .toml)")
    p.add_argument("--model", default="greeks-default", help="shipped model name or a model .toml file")
    p.add_argument("--exchange-margin", type=Path, required=True,
                   help="CSV/Parquet: account, exchange_im, exchange_mm, currency")
    p.add_argument("--threshold", type=number(0.0, 100.0, lo_open=True), default=0.22314355131420976,
                   help="outlier when |ln(model/exchange)| exceeds this (default ln 1.25)")
    p.add_argument("--drivers", type=count(0), default=3, help="largest components listed per account")
    p.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    p.add_argument("--out", type=Path, help="write to this file (html default: compare_report.html)")
    p.set_defaults(func=run_compare)

    s = sub.add_parser("sidebyside", help="the same book under several margin models",
                       description="IM per account per model, and each model's cross-vs-isolated saving.")
    s.add_argument("positions", type=Path)
    s.add_argument("market", type=Path)
    s.add_argument("--models", help="comma-separated model names (default: every shipped model runnable on a book)")
    s.add_argument("--currency", choices=("USD", "account"), default="USD",
                   help="USD (default) or each account's margin currency")
    s.add_argument("--format", choices=("table", "csv", "json", "html"), default="table")
    s.add_argument("--out", type=Path, help="write to this file (html default: sidebyside_report.html)")
    s.set_defaults(func=run_sidebyside)
