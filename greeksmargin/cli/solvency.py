"""``greeksmargin solvency | liquidate | cascade | population``: solvency of a book, liquidation, cascades.

Thin layer: parse arguments, call :mod:`greeksmargin.solvency.assess`, :mod:`greeksmargin.solvency.liquidation`,
:mod:`greeksmargin.solvency.cascade`, :mod:`greeksmargin.solvency.population`, write table / CSV / JSON / HTML.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin import io
from greeksmargin.cli import _progress
from greeksmargin.cli._args import count, number
from greeksmargin.cli._output import format_table, records
from greeksmargin.errors import InputError
from greeksmargin.reports import fmt

FORMATS = ("table", "csv", "json", "html")
#: above this many accounts the distance to liquidation is skipped unless asked for (--distance yes)
AUTO_DISTANCE_MAX = 2000


# --------------------------------------------------------------------------------------------- helpers
def _number(column: str, value: float) -> str:
    """The package's number rules (:func:`greeksmargin.reports.fmt.cell`); an infinite ratio prints ``inf``."""
    return fmt.cell(column, value)


def _table(df: pd.DataFrame) -> str:
    return format_table(df, _number)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """:func:`records`, with anything that is not a JSON scalar (timestamps, ...) as its string."""
    return [
        {k: v if isinstance(v, (int, float, str, bool)) or v is None else str(v) for k, v in r.items()}
        for r in records(df)
    ]


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _emit(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        io.write_text(text, out)


def _moves(spec: list[str] | None) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in spec or []:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise InputError(f"--move expects UNDERLYING=RELATIVE_MOVE (got {part!r})", column="--move")
            u, v = part.split("=", 1)
            try:
                out[u.strip()] = float(v)
            except ValueError:
                raise InputError(f"--move value must be a number (got {v!r})", column="--move") from None
            if not (np.isfinite(out[u.strip()]) and -1.0 < out[u.strip()] <= 10.0):
                raise InputError(f"--move {part.strip()}: relative move out of range (allowed (-1, 10])",
                                 column="--move")
    return out


def _liquidity(spec: str | None) -> float | dict[str, float] | None:
    if spec is None:
        return None
    if "=" not in spec:
        try:
            x = float(spec)
        except ValueError:
            raise InputError(
                f"--liquidity must be a number or U=number,... (got {spec!r})", column="--liquidity"
            ) from None
        if not (np.isfinite(x) and x > 0):
            raise InputError(f"--liquidity must be a positive USD notional (got {spec!r})", column="--liquidity")
        return x
    out = {}
    for part in spec.split(","):
        if "=" not in part:
            raise InputError(f"--liquidity expects U=number,... for every underlying (got {part!r})",
                             column="--liquidity")
        u, v = part.split("=", 1)
        try:
            out[u.strip()] = float(v)
        except ValueError:
            raise InputError(f"--liquidity value must be a number (got {v!r})", column="--liquidity") from None
        if not (np.isfinite(out[u.strip()]) and out[u.strip()] > 0):
            raise InputError(f"--liquidity {part.strip()}: must be a positive USD notional", column="--liquidity")
    return out


def _inputs_checked(args: argparse.Namespace) -> None:
    """The --collateral / --no-collateral choice (exactly one)."""
    if args.collateral is None and not args.no_collateral:
        raise InputError(f"{args.command} needs the accounts' collateral: --collateral FILE (equity = collateral + "
                         "mark-to-market); to assess with no collateral at all (equity = mark-to-market only) "
                         "pass --no-collateral", column="--collateral")
    if args.collateral is not None and args.no_collateral:
        raise InputError("give either --collateral FILE or --no-collateral, not both", column="--no-collateral")


def _inputs(args: argparse.Namespace) -> tuple[pd.DataFrame, Any, pd.DataFrame | None]:
    from greeksmargin.book.collateral import load_collateral
    from greeksmargin.book.market import load_market
    from greeksmargin.book.positions import load_positions

    _inputs_checked(args)
    market = load_market(args.market)
    # positions the market cannot price are not fatal: their accounts get an error row (Book)
    positions = load_positions(args.positions, valuation_time=market.valuation_time)
    collateral = load_collateral(args.collateral) if args.collateral else None
    return positions, market, collateral


#: the line every output carries when the user chose --no-collateral
NO_COLLATERAL_NOTE = "no collateral given (--no-collateral): equity = mark-to-market of the positions, collateral 0"


def _common(p: argparse.ArgumentParser, formats: tuple[str, ...] = FORMATS) -> None:
    p.add_argument("positions", type=Path, help="positions table (.csv or .parquet)")
    p.add_argument("market", type=Path, help="market snapshot (.json or .toml)")
    p.add_argument("--model", default="greeks-default", help="margin model: shipped name or TOML file")
    p.add_argument("--collateral", type=Path,
                   help="collateral table (.csv or .parquet); required unless --no-collateral")
    p.add_argument("--no-collateral", action="store_true",
                   help="assess with no collateral: equity = mark-to-market only (stated in the output)")
    p.add_argument("--format", choices=formats, default="table", help="output format")
    p.add_argument("--out", type=Path, help="write to this file instead of standard output")


# ------------------------------------------------------------------------------------------- register
def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``solvency``, ``liquidate``, ``cascade`` and ``population`` sub-commands."""
    p = sub.add_parser("solvency", help="equity vs MM, margin ratio, status, distance to liquidation",
                       description="Equity, IM, MM, margin ratio and status of every account, and the smallest "
                                   "adverse move of each underlying (and of all) that brings equity to MM.")
    _common(p)
    p.add_argument("--distance", choices=("auto", "yes", "no"), default="auto",
                   help=f"distance to liquidation (auto: when at most {AUTO_DISTANCE_MAX} accounts)")
    p.add_argument("--move", action="append", metavar="U=M", help="evaluate at a moved market, e.g. BTC=-0.2")
    p.add_argument("--keep-going", action="store_true",
                   help="set aside the accounts with a bad row (positions and collateral), compute the others, "
                   "list the accounts not computed and exit 3 when there are any")
    p.add_argument("--path-account", action="append", metavar="ACCOUNT",
                   help="HTML: draw this account's equity path (default: the 3 accounts nearest to MM)")
    p.set_defaults(func=run_solvency)

    p = sub.add_parser("liquidate", help="liquidate one account step by step until MM is restored or equity is gone")
    _common(p)
    p.add_argument("--account", required=True, help="the account to liquidate")
    p.add_argument("--slippage", type=number(0.0, 1.0), default=0.002,
                   help="cost of each closing trade as a fraction of underlying notional (default: 0.002, a "
                   "taker's cost on one account; cascade defaults to 0 because its price impact already "
                   "charges the population's trades)")
    p.add_argument("--step-fraction", type=number(0.0, 1.0, lo_open=True), default=1.0,
        help="fraction of a position closed per step")
    p.add_argument("--move", action="append", metavar="U=M", help="liquidate at a moved market, e.g. SPX=-0.1")
    p.add_argument("--untradable", default="", help="comma-separated instruments that cannot trade")
    p.set_defaults(func=run_liquidate)

    p = sub.add_parser("cascade", help="liquidation cascade over a population, cross vs isolated margin")
    _common(p)
    p.add_argument("--shock", type=number(-1.0, 10.0, lo_open=True), required=True,
        help="initial relative move, e.g. -0.25")
    p.add_argument("--underlying", help="shock only this underlying (default: all)")
    p.add_argument("--impact", choices=("linear", "sqrt", "none"), default="linear",
                   help="price impact model: linear I = flow/L; sqrt I = sign(flow)(sqrt(1 + 2|flow|/L) - 1), the "
                   "square-root law beyond a linear region, never above linear; none")
    p.add_argument("--liquidity",
                   help="market depth per underlying: the USD notional whose sale moves the price 100%% at the "
                   "linear rate (every impact model stays within |flow| / liquidity); a number or "
                   "BTC=2e9,ETH=1e9 (default: the illustrative table BTC=2e9, ETH=1e9, SPX=2e10)")
    p.add_argument("--slippage", type=number(0.0, 1.0), default=0.0,
                   help="cost as a fraction of underlying notional (default: 0: the price impact already moves "
                   "the closing prices; liquidate defaults to 0.002 for one account's trades)")
    p.add_argument("--max-rounds", type=count(1), default=100, help="cap on the number of rounds")
    p.add_argument("--mode", choices=("cross", "isolated", "both"), default="both", help="margin mode(s)")
    p.set_defaults(func=run_cascade_cmd)

    p = sub.add_parser("population", help="generate a synthetic population of accounts (positions + collateral)")
    p.add_argument("--accounts", type=count(1), default=10000, help="number of accounts")
    p.add_argument("--seed", type=int, default=1, help="random seed")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--market", type=Path, help="market snapshot (default: the bundled example market)")
    p.add_argument("--model", default="greeks-default",
                   help="no account opens below IM under this model ('none': leverage only)")
    p.add_argument("--file-format", choices=("csv", "parquet"), default="csv", help="format of the tables")
    p.set_defaults(func=run_population)


# ------------------------------------------------------------------------------------------- commands
def run_solvency(args: argparse.Namespace) -> int:
    """Run ``greeksmargin solvency``."""
    from greeksmargin.book.book import load_book, load_book_market_collect
    from greeksmargin.book.collateral import load_collateral
    from greeksmargin.book.market import load_market
    from greeksmargin.reports.solvency import solvency_report
    from greeksmargin.solvency.assess import BookValuer, VolReaction, assess_solvency, equity_path, margin_function

    _inputs_checked(args)
    market = load_market(args.market)
    collateral = load_collateral(args.collateral) if args.collateral else None
    if args.keep_going:  # accounts with a bad row are set aside, listed in the table with their reason, exit 3
        positions = load_book(args.positions, market, errors="collect")
    else:  # a bad row is fatal; an account the market cannot price gets an error row
        positions = load_book_market_collect(args.positions, market)
    bad = positions.bad_accounts
    t0 = time.perf_counter()
    n_acc = len(positions.accounts)
    want = args.distance == "yes" or (args.distance == "auto" and n_acc <= AUTO_DISTANCE_MAX)
    moves = _moves(args.move)
    what = f"solvency of {n_acc:,d} accounts" + (" with the distance to liquidation" if want else "")
    with _progress.step(what):
        res = assess_solvency(positions, market, collateral, args.model, moves=moves, distance=want,
                              no_collateral=args.no_collateral)
    elapsed = time.perf_counter() - t0
    acc = res.accounts
    notes = [NO_COLLATERAL_NOTE] if args.no_collateral else []
    if not want and args.distance == "auto":
        notes.append(f"distance to liquidation skipped: {n_acc:,d} accounts is above {AUTO_DISTANCE_MAX:,d} "
                     "(--distance yes computes it)")
    if moves:
        notes.append("at the moved market " + ", ".join(f"{u} {m:+g}" for u, m in moves.items())
                     + " (accounts and distance to liquidation; distances are further moves from there)")
    if args.format == "csv":
        _emit("".join(f"# {n}\n" for n in notes) + acc.to_csv(index=False), args.out)
    elif args.format == "json":
        doc = {"summary": res.summary(), "elapsed_s": elapsed, "notes": notes, "moves": moves,
               "collateral": None if args.no_collateral else str(args.collateral), "accounts": _records(acc),
               "distance": _records(res.distance) if res.distance is not None else None}
        _emit(json.dumps(_clean(doc), indent=1) + "\n", args.out)
    elif args.format == "html":
        book = BookValuer(positions, market, collateral, margin_function(args.model),
                    vol_reaction=VolReaction.from_model(args.model, market.underlyings))
        chosen = args.path_account or list(
            acc[acc["n_positions"] > 0].sort_values("margin_ratio", ascending=False)["account"].head(3)
        )
        paths = {}
        ok = set(acc.loc[~acc["status"].isin(["error", "not_computed"]), "account"])
        for a in [x for x in chosen if x in ok]:
            u = "ALL"
            if res.distance is not None:
                d = res.distance[(res.distance["account"] == a) & res.distance["move"].notna()
                                 & (res.distance["underlying"] != "ALL")]
                if len(d):
                    u = str(d.loc[d["move"].abs().idxmin(), "underlying"])
            paths[a] = (u, equity_path(book, a, u))
        html = solvency_report(res, paths=paths, subtitle=f"{args.positions} on {args.market}, model {args.model}, "
                                                           f"{len(acc)} accounts, computed in {elapsed:.2f} s"
                                                           + "".join(f"; {n}" for n in notes))
        _emit(html, args.out)
    else:
        cols = ["account", "currency", "equity", "im", "mm", "available_funds", "margin_ratio", "status", "at_mm"]
        text = "".join(f"{n}\n" for n in notes)
        riskiest = acc.sort_values("margin_ratio", ascending=False, na_position="first", kind="stable")
        text += _table(pd.DataFrame([res.summary()])) + "\n"
        if len(acc) > 200:
            text += (f"The 200 riskiest of {len(acc):,d} accounts (highest margin ratio MM / equity first; "
                     f"{len(acc) - 200:,d} more with --format csv)\n")
        text += _table(riskiest[cols].head(200))
        failed = acc[acc["status"].isin(["error", "not_computed"])]
        if len(failed):
            text += (f"\nAccounts not computed ({len(failed)}): IM / MM null, never healthy\n"
                     + _table(failed[["account", "status", "reason"]].head(200)))
        if res.distance is not None:
            d = res.distance[["account", "underlying", "move", "price", "direction", "method", "reason"]]
            d = d.assign(_abs=d["move"].abs()).sort_values("_abs", na_position="last", kind="stable")
            head = "\nDistance to liquidation (nearest first)"
            if len(d) > 300:
                head += f"; the 300 nearest of {len(d):,d} rows (all with --format csv)"
            text += head + "\n" + _table(d.drop(columns="_abs").head(300))
        text += f"\ncomputed in {elapsed:.2f} s\n"
        _emit(text, args.out)
    if not args.keep_going:
        return 0
    failed = acc[acc["error"].fillna("").astype(str) != ""]
    errors = {**bad, **dict(zip(failed["account"].astype(str), failed["error"].astype(str)))}
    if errors:
        print(f"greeksmargin solvency: {len(errors)} account(s) not computed:", file=sys.stderr)
        for a, e in errors.items():
            print(f"  {a}: {e}", file=sys.stderr)
        return 3
    return 0


def run_liquidate(args: argparse.Namespace) -> int:
    """Run ``greeksmargin liquidate``."""
    from greeksmargin.reports.solvency import liquidation_report
    from greeksmargin.solvency.liquidation import liquidate_account

    positions, market, collateral = _inputs(args)
    known = set(positions["account"]) | (set(collateral["account"]) if collateral is not None else set())
    if args.account not in known:
        raise InputError(f"account '{args.account}' is not in the positions or the collateral", column="--account")
    untradable = [s.strip() for s in args.untradable.split(",") if s.strip()]
    instruments = set(positions.loc[positions["account"] == args.account, "instrument"])
    for s in untradable:
        if s not in instruments:
            from greeksmargin.book.tables import nearest_column

            near = nearest_column(s, sorted(instruments), cutoff=0.6)
            hint = f" (did you mean '{near}'?)" if near else ""
            raise InputError(f"instrument '{s}' is not held by account '{args.account}'{hint}", column="--untradable")
    res = liquidate_account(positions, market, collateral, args.account, args.model, moves=_moves(args.move),
                            slippage=args.slippage, step_fraction=args.step_fraction, untradable=untradable)
    note = f"{NO_COLLATERAL_NOTE}\n" if args.no_collateral else ""
    if args.format == "csv":
        _emit(note.replace(NO_COLLATERAL_NOTE, "# " + NO_COLLATERAL_NOTE) + res.trades.to_csv(index=False), args.out)
    elif args.format == "json":
        _emit(json.dumps(_clean({"summary": res.summary(), "notes": [note.strip()] if note else [],
                                 "trades": _records(res.trades)}), indent=1) + "\n", args.out)
    elif args.format == "html":
        _emit(liquidation_report(res, subtitle=f"{args.positions} on {args.market}, model {args.model}"), args.out)
    else:
        s = pd.DataFrame([res.summary()])
        _emit(note + _table(s) + "\nTrades\n" + (_table(res.trades) if len(res.trades) else "(none)\n"), args.out)
    return 0


def run_cascade_cmd(args: argparse.Namespace) -> int:
    """Run ``greeksmargin cascade``."""
    from greeksmargin.reports.solvency import cascade_report
    from greeksmargin.solvency.assess import VolReaction, margin_function
    from greeksmargin.solvency.cascade import run_cascade

    positions, market, collateral = _inputs(args)
    fn = margin_function(args.model)
    vr = VolReaction.from_model(args.model, market.underlyings)
    kw = dict(shock=args.shock, underlying=args.underlying, impact=args.impact, liquidity=_liquidity(args.liquidity),
              slippage=args.slippage, max_rounds=args.max_rounds, margin_fn=fn, vol_reaction=vr)
    modes = ["cross", "isolated"] if args.mode == "both" else [args.mode]
    results = []
    timing = {}
    for m in modes:
        t0 = time.perf_counter()
        with _progress.step(f"cascade under {m} margin, {positions['account'].nunique():,d} accounts"):
            results.append(run_cascade(positions, market, collateral, args.model, mode=m, **kw))
        timing[m] = time.perf_counter() - t0
    comp = pd.DataFrame([r.summary() | {"elapsed_s": timing[r.mode]} for r in results])
    notes = [NO_COLLATERAL_NOTE] if args.no_collateral else []
    errors = results[0].errors if results else pd.DataFrame(columns=["account", "error"])
    if args.format == "csv":
        frames = [r.rounds.assign(mode=r.mode) for r in results]
        _emit(pd.concat(frames, ignore_index=True).to_csv(index=False), args.out)
    elif args.format == "json":
        doc = {"comparison": _records(comp), "rounds": {r.mode: _records(r.rounds) for r in results},
               "errors": _records(errors), "notes": notes,
               "liquidity": results[0].liquidity if results else {},
               "not_computed": {r.mode: _records(r.not_computed) for r in results}}
        _emit(json.dumps(_clean(doc), indent=1) + "\n", args.out)
    elif args.format == "html":
        used = results[0].liquidity if results else {}
        params = {"shock": args.shock, "underlying": args.underlying or "ALL", "impact": args.impact,
                  "liquidity": ", ".join(f"{u}={fmt.amount(v)}" for u, v in used.items())
                  + ("" if args.liquidity else " (default table)"), "slippage": args.slippage, "model": args.model,
                  "accounts": int(positions["account"].nunique())}
        _emit(cascade_report(results, comparison=comp, parameters=params,
                             subtitle=f"{args.positions} on {args.market}"), args.out)
    else:
        text = "".join(f"{n}\n" for n in notes)
        used = results[0].liquidity if results else {}
        text += ("liquidity L (USD notional; a net flow of L moves the price by at most 100%): "
                 + ", ".join(f"{u}={fmt.amount(v)}" for u, v in used.items())
                 + ("" if args.liquidity else " (default table)") + "\n")
        text += _table(comp)
        for r in results:
            mv = r.moves()
            text += (f"\nWhat moved each price ({r.mode} margin): initial shock, then the impact of the liquidation "
                     "flows, never beyond bound = prod(1 + |flow| / liquidity) - 1\n" + _table(mv))
        for r in results:
            cols = [c for c in r.rounds.columns if not c.startswith("flow_") and not c.startswith("impact_")]
            cap = " - hit the round cap" if r.hit_cap else ""
            text += f"\nRounds ({r.mode} margin){cap}\n" + _table(r.rounds[cols])
        if len(errors):
            text += f"\nAccounts not computed, left out of the cascade ({len(errors)})\n" + _table(errors.head(200))
        nc = results[0].not_computed if results else None
        if nc is not None and len(nc):
            text += (f"\nUnits the model does not cover ({len(nc)}): MM unknown, never liquidated\n"
                     + _table(nc.head(200)))
        _emit(text, args.out)
    return 0


def run_population(args: argparse.Namespace) -> int:
    """Run ``greeksmargin population``."""
    from greeksmargin.book.market import load_market
    from greeksmargin.solvency.population import generate_population

    if args.accounts < 1:
        raise InputError("--accounts must be >= 1", column="--accounts")
    if args.market is not None:
        market = load_market(args.market)
    else:
        from greeksmargin.datasets import load_example_book

        market = load_example_book().market
    model = None if args.model == "none" else args.model
    t0 = time.perf_counter()
    positions, collateral = generate_population(args.accounts, args.seed, market=market, model=model)
    elapsed = time.perf_counter() - t0
    ext = "parquet" if args.file_format == "parquet" else "csv"
    out = Path(args.out)
    pos = positions.copy()
    pos["expiry"] = pos["expiry"].map(lambda t: "" if pd.isna(t) else pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M:%SZ"))
    p_pos = io.write_table(pos, out / f"positions.{ext}")
    p_col = io.write_table(collateral, out / f"collateral.{ext}")
    p_mkt = io.write_json(market.to_dict(), out / "market.json")
    strategies = pd.Series(positions.attrs.get("strategies", {}), name="strategy")
    p_str = io.write_table(strategies.rename_axis("account").reset_index(), out / f"strategies.{ext}")
    sys.stdout.write(
        f"{args.accounts} accounts, {len(positions)} positions, {len(collateral)} collateral rows "
        f"(seed {args.seed}) in {elapsed:.2f} s\n{p_pos}\n{p_col}\n{p_mkt}\n{p_str}\n"
    )
    return 0
