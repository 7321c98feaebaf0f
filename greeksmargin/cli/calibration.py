"""``greeksmargin calibrate | backtest | sweep``: calibration runs, coverage backtests and parameter sweeps.

HISTORY is ``sp500``, ``btc``, ``eth`` (bundled; ``sp500-arch``, ``btc-yahoo`` the earlier bundles) or a CSV/Parquet
file with columns ``date, price[, vol]``. ``backtest --walk-forward`` refits the model's recorded recipe out of sample
(:mod:`greeksmargin.calibration.walkforward`).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from greeksmargin import io
from greeksmargin.cli import _output
from greeksmargin.cli._args import count, date, number
from greeksmargin.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``calibrate``, ``backtest`` and ``sweep`` sub-commands."""
    p = sub.add_parser(
        "calibrate",
        help="calibrate the house model's shocks on market history and write a model file",
        description="Price shocks (HS or EWMA-filtered HS) and vol shocks at confidence c over an MPOR of h "
        "days; writes a model file with its provenance in [meta.calibration].",
    )
    p.add_argument("history", help="sp500, btc, eth, or a CSV/Parquet file (date, price[, vol])")
    p.add_argument("--confidence", type=number(0.5, 1.0, lo_open=True, hi_open=True), default=0.99)
    p.add_argument("--mpor", type=count(1), default=2, help="margin period of risk, trading days (rows)")
    p.add_argument("--method", choices=["hs", "fhs"], default="hs")
    p.add_argument("--lambda", dest="lam", type=number(0.0, 1.0, lo_open=True, hi_open=True), default=0.94,
        help="EWMA decay (fhs)")
    p.add_argument("--kind", choices=["simple", "log"], default="simple", help="h-day return kind")
    p.add_argument("--stress-from", type=date, help="first day of the stressed window (floor)")
    p.add_argument("--stress-to", type=date, help="last day of the stressed window")
    p.add_argument("--stress-weight", type=number(0.0, 1e6), default=1.0)
    p.add_argument("--start", type=date, help="first day of the calibration window")
    p.add_argument("--end", type=date, help="last day of the calibration window")
    p.add_argument("--model", default="greeks-default", help="template model (greeks-stress methodology)")
    p.add_argument("--target", help="'default' or an override name (default: SPX for sp500, else default)")
    p.add_argument("--scale", type=number(0.0, 100.0, lo_open=True), default=1.0,
        help="multiply every shock (0.5: halved shocks)")
    p.add_argument("--vol-from-proxy", action="store_true",
                   help="set the model's vol shocks even when the history has no vol index (realised-vol proxy)")
    p.add_argument("--vol-series", choices=["index", "filled"], default="index",
                   help="vol shocks from the vol index's days only, or from the filled vol series (index where "
                   "it exists, realised-vol proxy elsewhere: the vol path the backtest prices with)")
    p.add_argument("--joint-vol", action="store_true",
                   help="scan vol states = the vol move accompanying a c-quantile price move (median over the "
                   "price-tail days) instead of the marginal c-quantiles; the vega charge keeps the marginal shocks")
    p.add_argument("--vega-method", choices=["index", "reference"], default="index",
                   help="vega-charge shocks: the vol index's marginal c-quantiles, or the shocks with which the "
                   "calibrated model covers the long / short ATM straddle of the vega pivot tenor at c (reference)")
    p.add_argument("--vega-floor", type=number(0.0, 10.0), default=0.5,
                   help="reference vega shocks are at least this fraction of the marginal vol quantiles (policy)")
    p.add_argument("--lookback-years", type=number(0.0, 100.0, lo_open=True),
                   help="calibrate on the last N years up to --end (or the last row) only (a rolling window in "
                   "walk-forward runs)")
    p.add_argument("--apc-buffer", type=number(0.0, 10.0), default=0.0,
                   help="EMIR RTS 153/2013 Art. 28(1)(a): margin buffer (0.25), released when the calculated "
                   "margin rises; recorded in the model for backtests and walk-forward runs")
    p.add_argument("--apc-stressed-weight", type=number(0.0, 1.0, hi_open=True), default=0.0,
                   help="Art. 28(1)(b): at least this weight (0.25) on the most volatile year's returns")
    p.add_argument("--apc-lookback-floor", type=number(0.0, 100.0), default=0.0,
                   help="Art. 28(1)(c): price shocks at least those of the last N years (10)")
    p.add_argument("--policy-vol", metavar="UP,DOWN",
                   help="relative vol shocks set by policy where the calibration window has no vol-index day "
                   "(instead of the template's; e.g. 0.45,0.3)")
    p.add_argument("--out", type=Path, help="write the calibrated model file here (models/NAME.toml)")
    p.add_argument("--name", help="model name in [meta] (default: the --out file stem)")
    p.add_argument("--html", type=Path, dest="html_out", help="write the calibration report here")
    p.add_argument("--json", type=Path, dest="json_out", help="write the calibration as JSON here")
    p.set_defaults(func=_calibrate)

    b = sub.add_parser(
        "backtest",
        help="coverage backtest of a model on market history",
        description="Margin of representative portfolios each day vs the realised MPOR loss; breaches, Kupiec, "
        "Christoffersen, procyclicality, efficiency.",
    )
    b.add_argument("history")
    b.add_argument("--model", default="greeks-default")
    b.add_argument("--confidence", type=number(0.5, 1.0, lo_open=True, hi_open=True),
        help="default: the model's calibration confidence, else 0.99")
    b.add_argument("--mpor", type=count(1), help="default: the model's calibration MPOR, else 2")
    b.add_argument("--step", type=count(1), default=1, help="test every STEP-th day (1 = daily)")
    b.add_argument("--start", type=date)
    b.add_argument("--end", type=date)
    b.add_argument("--margin", choices=["engine", "stress-grid"], default="engine",
                   help="engine: compute_margin; stress-grid: the model's scan alone (fast)")
    b.add_argument("--portfolios", help="comma-separated subset of the representative portfolios")
    b.add_argument("--portfolios-file", type=Path,
                   help="your own portfolios instead: CSV/Parquet, one row per leg (portfolio, kind, quantity, "
                   "option_type, moneyness)")
    b.add_argument("--dynamic-fhs", type=number(0.0, 1.0, lo_open=True, hi_open=True), metavar="LAMBDA",
                   help="recalibrate the model's price shocks on the history by FHS and rescale them each day by "
                   "the EWMA vol (decay LAMBDA) known that day, instead of using the model's fixed shocks")
    b.add_argument("--walk-forward", action="store_true",
                   help="out of sample: at each refit date re-run the model's calibration recipe (the command line "
                   "in its [meta.calibration]) on the rows before that date only, margin the next period")
    b.add_argument("--oos-start", type=date, help="first out-of-sample day (walk-forward)")
    b.add_argument("--refit", choices=["yearly", "quarterly"], default="yearly")
    b.add_argument("--scaling", choices=["static", "ewma", "implied"], default="static",
                   help="walk-forward: shocks fixed per period, or scaled each day by the EWMA / implied vol "
                   "relative to the calibration window's average")
    b.add_argument("--json", type=Path, dest="json_out", help="walk-forward: write the summary JSON here")
    b.add_argument("--html", type=Path, dest="html_out")
    b.add_argument("--csv", type=Path, dest="csv_out", help="write the daily table here")
    b.set_defaults(func=_backtest)

    s = sub.add_parser(
        "sweep",
        help="grid of confidence x MPOR x lambda x model: calibrate and backtest each, on Dask",
        description="Each grid cell calibrates the model on the history and backtests it; cells run on a local "
        "Dask cluster (or --scheduler ADDRESS, or --serial); the table is identical to a serial run.",
    )
    s.add_argument("history")
    s.add_argument("--confidence", default="0.99", help="comma-separated, e.g. 0.975,0.99")
    s.add_argument("--mpor", default="2", help="comma-separated, e.g. 1,2,5")
    s.add_argument("--lambda", dest="lam", default="0.94", help="comma-separated, e.g. 0.94,0.97")
    s.add_argument("--model", default="greeks-default", help="comma-separated template models")
    s.add_argument("--method", default="hs",
                   help="comma-separated: hs, fhs (a grid axis; default hs, as calibrate and the shipped model)")
    s.add_argument("--step", type=count(1), default=5,
                   help="backtest every STEP-th day (default: 5, where backtest uses 1: a sweep runs one "
                   "backtest per grid cell, so it samples every 5th day to stay quick; --step 1 for the daily test)")
    s.add_argument("--margin", choices=["engine", "stress-grid"], default="engine")
    s.add_argument("--vol-series", choices=["index", "filled"], default="index", help="as for calibrate")
    s.add_argument("--joint-vol", action="store_true", help="as for calibrate")
    s.add_argument("--vega-method", choices=["index", "reference"], default="index",
                   help="as for calibrate (reference: one engine run over the history per cell)")
    s.add_argument("--scheduler", help="address of a running Dask scheduler")
    s.add_argument("--serial", action="store_true", help="run in this process without Dask")
    s.add_argument("--processes", action="store_true", help="local cluster with worker processes (default threads)")
    s.add_argument("--no-progress", action="store_true")
    s.add_argument("--out", type=Path, help="write the sweep table (CSV or Parquet) here")
    s.set_defaults(func=_sweep)


def _floats(text: str, what: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"--{what} must be comma-separated numbers, got {text!r}", column=what) from None


def _ints(text: str, what: str) -> list[int]:
    vals = _floats(text, what)
    if any(v != int(v) for v in vals):
        raise InputError(f"--{what} must be whole numbers, got {text!r}", column=what)
    return [int(v) for v in vals]


def _methods(text: str) -> list[str]:
    vals = [x.strip() for x in text.split(",") if x.strip()]
    bad = [v for v in vals if v not in ("hs", "fhs")]
    if bad or not vals:
        raise InputError(f"--method must be hs and/or fhs, got {text!r}", column="method")
    return vals


def code_version() -> str:
    """``greeksmargin.__version__`` plus the git commit of the source, ``-dirty`` if the package code differs.

    Only the package's own code counts as "dirty": a model file being rewritten by the run itself does not.
    """
    from greeksmargin._version import __version__

    ver = __version__
    pkg = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str | None:
        try:
            out = subprocess.run(["git", *cmd], cwd=pkg, capture_output=True, text=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("describe", "--always")
    if commit:
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", str(pkg))
        ver += f" (git {commit}{'-dirty' if dirty else ''})"
    return ver


def _command_line() -> str:
    return "greeksmargin " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def _calibrate(args: argparse.Namespace) -> int:
    from greeksmargin.calibration.history import load_history
    from greeksmargin.calibration.model_file import write_model_file
    from greeksmargin.calibration.sweep import calibrated_model, default_target

    hist = load_history(args.history)
    stress = None
    if args.stress_from or args.stress_to:
        if not (args.stress_from and args.stress_to):
            raise InputError("give both --stress-from and --stress-to", column="stress")
        stress = (args.stress_from, args.stress_to)
    from greeksmargin.calibration.shocks import calibrate
    from greeksmargin.calibration.walkforward import APC, apc_adjust, has_vol_index

    win = hist if not (args.start or args.end) else _window(hist, args.start, args.end)
    if args.lookback_years:
        lb = win["date"].iat[-1] - pd.DateOffset(days=int(round(365.25 * args.lookback_years)))
        win = _window(win, lb, None)
    apc = APC(args.apc_buffer, 20, args.apc_stressed_weight, args.apc_lookback_floor)
    cal = calibrate(
        hist if not args.lookback_years else win, args.confidence, args.mpor, args.method, args.lam, kind=args.kind,
        stress=stress, stress_weight=args.stress_weight, start=None if args.lookback_years else args.start,
        end=None if args.lookback_years else args.end, vol_series=args.vol_series,
    )
    cal = apc_adjust(win, apc, args.confidence, args.mpor, args.kind)(cal)
    _print_calibration(cal)
    cmd = _command_line()
    if args.out:
        extra = {"lookback_years": args.lookback_years or 0.0, "apc_buffer": apc.buffer,
                 "apc_stressed_weight": apc.stressed_weight, "apc_lookback_floor_years": apc.lookback_floor_years}
        policy = _policy_vol(args.policy_vol)
        if policy is not None:
            extra.update(policy_vol_up=policy[0], policy_vol_down=policy[1])
        no_index = not has_vol_index(win)
        raw, cal_out = calibrated_model(
            win, adjust=apc_adjust(win, apc, args.confidence, args.mpor, args.kind, policy),
            template=args.model, target=args.target, confidence=args.confidence, mpor=args.mpor,
            method=args.method, lam=args.lam, stress=stress, stress_weight=args.stress_weight, kind=args.kind,
            scale=args.scale,
            provenance={"code_version": code_version(), "command": cmd, **extra},
            calibrate_vol=True if args.vol_from_proxy or (policy is not None and no_index) else None,
            vol_series=args.vol_series, joint_vol=args.joint_vol, vega_method=args.vega_method,
            vega_floor=args.vega_floor,
        )
        ref = cal_out.extra.get("vega_reference")
        if ref is not None:
            rec = raw["meta"]["calibration"][args.target or default_target(hist)]
            print(f"  vega charge shocks from the reference straddles ({ref.tenor_days:g} days, {ref.n_days} days "
                  f"{ref.start}..{ref.end}): up {ref.up:.6f} down {ref.down:.6f} ({ref.kind}); in-sample "
                  f"coverage {ref.covered_up:.4f} / {ref.covered_down:.4f}; floored at {args.vega_floor:g} x the "
                  f"marginal quantiles: up {rec['vega_shock_up']:.6f} down {rec['vega_shock_down']:.6f}")
        raw["meta"]["name"] = args.name or args.out.stem
        header = (
            f"{raw['meta']['name']}: house Greeks-plus-stress model, shocks calibrated on market history.\n"
            f"Written by: {cmd}\nProvenance of every calibrated number: [meta.calibration]; schema: "
            "greeksmargin/engine/models.py; formulas: README, Models and Calibration."
        )
        write_model_file(raw, args.out, header=header)
        cal = cal_out  # the report and JSON show the shocks written, the vega reference included
        print(f"model: {args.out} (target {args.target or default_target(hist)})")
    if args.json_out:
        io.write_json(cal.to_dict(), args.json_out)
    if args.html_out:
        from greeksmargin.reports.calibration import calibration_report

        io.write_text(calibration_report(hist, cal, command=cmd), args.html_out)
        print(f"report: {args.html_out}")
    return 0


def _policy_vol(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    vals = _floats(text, "policy-vol")
    if len(vals) != 2 or not all(0.0 <= v <= 5.0 for v in vals) or vals[1] >= 1.0:
        raise InputError(f"--policy-vol must be UP,DOWN relative shocks (0 <= UP <= 5, 0 <= DOWN < 1), got {text!r}",
                         column="policy-vol")
    return vals[0], vals[1]


def _window(hist: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    from greeksmargin.calibration.history import select_dates

    return select_dates(hist, start, end)


def _print_calibration(cal: Any) -> None:
    print(f"{cal.dataset} {cal.start}..{cal.end}: {cal.method.upper()}"
          + (f" lambda={cal.lam}" if cal.lam is not None else "")
          + f", c={cal.confidence}, MPOR {cal.mpor} days, {cal.n_returns} {cal.return_kind} returns")
    print(f"  price shock down {cal.price_shock_down:.6f}  up {cal.price_shock_up:.6f}  "
          f"(plain HS down {cal.hs_price_shock_down:.6f} up {cal.hs_price_shock_up:.6f})")
    if cal.stress_from:
        print(f"  stressed {cal.stress_from}..{cal.stress_to}: down {cal.stressed_shock_down:.6f} "
              f"up {cal.stressed_shock_up:.6f} x {cal.stress_weight} (floor binding: {cal.floor_binding})")
    print(f"  vol shock up {cal.vol.up:.6f} down {cal.vol.down:.6f} (relative); up {cal.vol.up_abs:.6f} "
          f"down {cal.vol.down_abs:.6f} (absolute); from the {cal.vol.source} {cal.vol.start}..{cal.vol.end}")
    print(f"  joint vol shock (given a price-tail move) up {cal.vol.up_joint:.6f} down {cal.vol.down_joint:.6f} "
          f"(relative); up {cal.vol.up_joint_abs:.6f} down {cal.vol.down_joint_abs:.6f} (absolute)")
    print(f"  EWMA vol at the end {cal.sigma_annual_now:.4f} (annualised)")


def _model_defaults(model: Any) -> tuple[float | None, int | None]:
    cals = model.meta.get("calibration", {}) or {}
    for rec in cals.values():
        if isinstance(rec, dict) and "confidence" in rec:
            return float(rec["confidence"]), int(rec.get("mpor_days", 2))
    return None, None


def _backtest(args: argparse.Namespace) -> int:
    from greeksmargin.calibration.backtest import PORTFOLIOS, run_backtest
    from greeksmargin.calibration.history import load_history
    from greeksmargin.calibration.sweep import margin_function
    from greeksmargin.engine.models import load_model

    hist = load_history(args.history)
    model = load_model(args.model)
    c0, h0 = _model_defaults(model)
    confidence = args.confidence or c0 or 0.99
    mpor = args.mpor or h0 or 2
    known = dict(PORTFOLIOS)
    if args.portfolios_file:
        from greeksmargin.calibration.backtest import load_portfolios

        known = load_portfolios(args.portfolios_file)
    ports = known
    if args.portfolios:
        names = [x.strip() for x in args.portfolios.split(",") if x.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise InputError(f"unknown portfolio {unknown[0]!r} (known: {', '.join(known)})", column="portfolios")
        ports = {n: known[n] for n in names}
    t0 = time.perf_counter()
    if args.walk_forward:
        return _walk_forward(args, hist, model, ports)
    if args.json_out or args.oos_start:
        raise InputError("--json and --oos-start go with --walk-forward", column="walk-forward")
    if args.dynamic_fhs is not None:
        from greeksmargin.calibration.sweep import fhs_rescaled_margin

        fn = fhs_rescaled_margin(model, hist, confidence=confidence, mpor=mpor, lam=args.dynamic_fhs,
                                 margin=args.margin)
    else:
        fn = margin_function(model, hist, args.margin)
    res = run_backtest(
        hist, fn, confidence=confidence, mpor=mpor, portfolios=ports,
        step=args.step, start=args.start, end=args.end,
    )
    res.settings["model"] = model.name
    res.settings["seconds"] = round(time.perf_counter() - t0, 2)
    cols = ["portfolio", "observations", "breaches", "expected", "kupiec_p", "excess_p", "christoffersen_p",
            "peak_to_trough_1y", "efficiency"]
    print(f"{hist.attrs.get('name')} {res.settings['start']}..{res.settings['end']} model {model.name} "
          f"c={confidence} MPOR {mpor} step {args.step} margin {args.margin} ({res.settings['seconds']} s)")
    print(_output.format_table(res.summary[cols]), end="")
    if args.csv_out:
        io.write_table(res.daily, args.csv_out)
    if args.html_out:
        from greeksmargin.reports.calibration import backtest_report

        io.write_text(backtest_report(res, command=_command_line(), model_name=model.name), args.html_out)
        print(f"report: {args.html_out}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from greeksmargin.calibration.history import load_history
    from greeksmargin.calibration.sweep import sweep_point
    from greeksmargin.engine.distributed import expand_grid, run_sweep

    hist = load_history(args.history)
    grid = expand_grid(
        confidence=_floats(args.confidence, "confidence"),
        mpor=_ints(args.mpor, "mpor"),
        lam=_floats(args.lam, "lambda"),
        model=[m.strip() for m in args.model.split(",") if m.strip()],
        method=_methods(args.method),
    )
    t0 = time.perf_counter()
    table = run_sweep(
        grid,
        sweep_point,
        scheduler="serial" if args.serial else args.scheduler,
        progress=not args.no_progress,
        fn_kwargs={"history": hist, "step": args.step, "margin": args.margin, "vol_series": args.vol_series,
                   "joint_vol": args.joint_vol, "vega_method": args.vega_method},
        processes=args.processes,
    )
    where = "serial" if args.serial else (args.scheduler or "local Dask cluster")
    print(f"{len(grid)} cells on {where} in {time.perf_counter() - t0:.1f} s")
    print(_output.format_table(table), end="")
    if args.out:
        io.write_table(table, args.out)
        print(f"table: {args.out}")
    return 0


def recipe_from_model(model: Any, target: str) -> tuple[dict[str, Any], Any, float | None]:
    """Parse the calibration command recorded in ``[meta.calibration.<target>]`` into walk-forward settings.

    Returns
    -------
    (dict, APC, float or None)
        Keyword arguments of :func:`greeksmargin.calibration.sweep.calibrated_model` (``start`` included),
        the anti-procyclicality options and the rolling lookback in years.
    """
    from greeksmargin.calibration.walkforward import APC

    rec = (model.meta.get("calibration", {}) or {}).get(target)
    if not isinstance(rec, dict) or not rec.get("command"):
        raise InputError(f"model {model.name} records no calibration command for target {target!r} "
                         "([meta.calibration.<target>].command): nothing to refit", column="model")
    parser = argparse.ArgumentParser(prog="greeksmargin", add_help=False)
    register(parser.add_subparsers(dest="cmd"))
    words = shlex.split(str(rec["command"]))
    try:
        ns = parser.parse_args(words[1:] if words and words[0] == "greeksmargin" else words)
    except SystemExit:
        raise InputError(f"cannot parse the calibration command {rec['command']!r}", column="command") from None
    if ns.cmd != "calibrate":
        raise InputError(f"the recorded command is not a calibrate command: {rec['command']!r}", column="command")
    stress = (ns.stress_from, ns.stress_to) if ns.stress_from and ns.stress_to else None
    recipe = {
        "confidence": ns.confidence, "mpor": ns.mpor, "method": ns.method, "lam": ns.lam, "kind": ns.kind,
        "stress": stress, "stress_weight": ns.stress_weight, "scale": ns.scale,
        "calibrate_vol": True if ns.vol_from_proxy else None, "vol_series": ns.vol_series,
        "joint_vol": ns.joint_vol, "vega_method": ns.vega_method, "vega_floor": ns.vega_floor,
        "start": ns.start, "policy_vol": _policy_vol(ns.policy_vol),
    }
    apc = APC(ns.apc_buffer, 20, ns.apc_stressed_weight, ns.apc_lookback_floor)
    return recipe, apc, ns.lookback_years


def _walk_forward(args: argparse.Namespace, hist: pd.DataFrame, model: Any, ports: Any) -> int:
    from greeksmargin.calibration.sweep import default_target
    from greeksmargin.calibration.walkforward import walk_forward

    if args.oos_start is None:
        raise InputError("--walk-forward needs --oos-start DATE", column="oos-start")
    for flag, val in (("--dynamic-fhs", args.dynamic_fhs), ("--start", args.start), ("--end", args.end),
                      ("--portfolios-file", None)):
        if val is not None:
            raise InputError(f"{flag} does not go with --walk-forward", column=flag.strip("-"))
    if args.margin != "engine" or args.step != 1:
        raise InputError("--walk-forward margins every day with the engine (no --margin/--step)", column="margin")
    target = default_target(hist)
    recipe, apc, lookback = recipe_from_model(model, target)
    t0 = time.perf_counter()
    res = walk_forward(hist, model, recipe, oos_start=args.oos_start, refit=args.refit, target=target, apc=apc,
                       scaling=args.scaling, lookback_years=lookback, portfolios=ports)
    s = res.summary
    s["settings"].update(model=model.name, command=_command_line(), seconds=round(time.perf_counter() - t0, 1))
    st = s["settings"]
    print(f"{st['dataset']} walk-forward {st['test_start']}..{st['test_end']} refit {st['refit']} model {model.name} "
          f"c={st['confidence']} MPOR {st['mpor']} scaling {st['scaling']} lookback {lookback or 'all'} y, "
          f"APC {st['apc']} ({st['seconds']} s)")
    rows = []
    for p in s["portfolios"]:
        ins = p.get("in_sample", {})
        rows.append({"portfolio": p["portfolio"], "days": p["days"], "expected": p["expected"],
                     "breaches_oos": p["breaches"], "excess_p_oos": p["excess_p"], "kupiec_p_oos": p["kupiec_p"],
                     "christoffersen_p": p["christoffersen_p"], "breaches_is": ins.get("breaches"),
                     "excess_p_is": ins.get("excess_p"), "peak_to_trough": p["peak_to_trough"],
                     "max_up_5d": p["max_increase_5d"], "max_up_30d": p["max_increase_30d"],
                     "efficiency": p["efficiency"]})
    pool = s["pooled"]
    rows.append({"portfolio": "pooled", "days": pool["days"], "expected": pool["expected"],
                 "breaches_oos": pool["breaches"], "excess_p_oos": pool["excess_p"], "kupiec_p_oos": pool["kupiec_p"],
                 "breaches_is": pool.get("in_sample", {}).get("breaches"),
                 "excess_p_is": pool.get("in_sample", {}).get("excess_p")})
    print(_output.format_table(pd.DataFrame(rows)), end="")
    if args.json_out:
        io.write_json(s, args.json_out)
        print(f"json: {args.json_out}")
    if args.csv_out:
        io.write_table(res.daily, args.csv_out)
    if args.html_out:
        from greeksmargin.reports.calibration import walk_forward_report

        io.write_text(walk_forward_report(res, command=_command_line(), model_name=model.name), args.html_out)
        print(f"report: {args.html_out}")
    return 0
