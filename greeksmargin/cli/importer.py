"""``greeksmargin import deribit DIR --out OUTDIR`` and ``greeksmargin import deribit-chain FILE --out market.json``.

Exchange formats in, the product's own files out (:mod:`greeksmargin.adapters`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import io


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` sub-command and its formats."""
    p = sub.add_parser(
        "import",
        help="exchange data in: Deribit API responses, Deribit option chains -> the product's files",
        description="Turn an exchange's data into greeksmargin's input files.",
    )
    fmt = p.add_subparsers(dest="format", metavar="FORMAT")
    fmt.required = True
    d = fmt.add_parser(
        "deribit",
        help="a folder of Deribit API v2 JSON-RPC responses (one account, or one sub-folder per account)",
        description=("Read positions.json, instruments.json, book_summary_<CCY>.json, account_summary_<CCY>.json "
                     "and index.json and write positions.csv, market.json, collateral.csv and exchange_margin.csv "
                     "(into OUTDIR, or OUTDIR/<sub-folder> for a folder of account folders)."),
    )
    d.add_argument("folder", type=Path, help="folder of Deribit API responses")
    d.add_argument("--out", type=Path, required=True, help="output folder")
    d.add_argument("--account", help="account name in the tables (default: the account summary's username)")
    d.set_defaults(func=run_deribit)
    c = fmt.add_parser(
        "deribit-chain",
        help="a Deribit option chain (ticker rows, CSV/Parquet) -> market.json",
        description="Build a market snapshot (forwards, rate, vols, skew surface) from a Deribit option chain.",
    )
    c.add_argument("file", type=Path, help="option chain table")
    c.add_argument("--out", type=Path, required=True, help="market file to write (.json)")
    c.add_argument("--underlying", help="only this coin's options (default: every coin of the chain)")
    c.set_defaults(func=run_chain)


def run_deribit(args: argparse.Namespace) -> int:
    """Run ``import deribit``."""
    from ..adapters import deribit

    if deribit.is_account_folder(args.folder):
        accounts = {"": deribit.read(args.folder, account=args.account)}
    else:
        accounts = deribit.read_all(args.folder)
    for sub, tables in accounts.items():
        out = args.out / sub if sub else args.out
        for path in deribit.write(tables, out):
            print(f"wrote {path}")
        for note in tables["notes"]:
            print(f"note: {note}")
    return 0


def run_chain(args: argparse.Namespace) -> int:
    """Run ``import deribit-chain``."""
    from ..adapters import deribit

    market = deribit.snapshot_from_chain(args.file, underlying=args.underlying)
    d = market.to_dict()
    d["source"] = f"Deribit option chain {args.file.name} (greeksmargin import deribit-chain)"
    print(f"wrote {io.write_json(d, args.out)}")
    return 0
