"""HTML reports of calibration runs and coverage backtests (self-contained, figures as base64 PNG).

* :func:`calibration_report`: the h-day return distribution with the calibrated quantiles (plain and
  filtered), the price and EWMA volatility through time, the vol index / proxy, and the shock table.
* :func:`backtest_report`: per portfolio the margin against the realised MPOR loss through time with
  breach markers, the margin's rolling peak-to-trough, and the test table (breaches, Kupiec,
  Christoffersen, procyclicality, efficiency).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.reports import fmt
from greeksmargin.reports.html import embed_figure, escape, new_figure, render_page, table_html


def _calibration_table(cal: Any) -> pd.DataFrame:
    d = cal.to_dict()
    vol = d.pop("vol", {})
    extra = d.pop("extra", None) or {}
    rows = [(k, v) for k, v in d.items()] + [(f"vol.{k}", v) for k, v in vol.items()]
    ref = extra.get("vega_reference")  # asdict of a ReferenceVega: the vega charge's reference shocks
    if isinstance(ref, dict):
        rows += [(f"vega_reference.{k}", v) for k, v in ref.items()]
    return pd.DataFrame(rows, columns=["item", "value"]).astype({"value": str})


def calibration_report(hist: pd.DataFrame, cal: Any, *, title: str | None = None, command: str = "") -> str:
    """Render the calibration report.

    Parameters
    ----------
    hist : pandas.DataFrame
        The history calibrated on (``date, price, vol, vol_source``).
    cal : Calibration
        Result of :func:`greeksmargin.calibration.shocks.calibrate`.
    title : str, optional
        Page title.
    command : str
        Command line shown in the footer.

    Returns
    -------
    str
        HTML page.
    """
    from greeksmargin.calibration.history import ewma_sigma, select_dates
    from greeksmargin.calibration.shocks import filtered_h_day_returns, h_day_returns

    win = select_dates(hist, cal.start, cal.end)
    p = win["price"].to_numpy(dtype=float)
    r = h_day_returns(p, cal.mpor, cal.return_kind)
    fig, (ax1, ax2) = new_figure(ncols=2, figsize=(11, 4))
    ax1.hist(r, bins=120, alpha=0.6, density=True, label=f"{cal.mpor}-day returns (HS)")
    if cal.method == "fhs":
        rf, _ = filtered_h_day_returns(p, cal.mpor, cal.lam or 0.94, cal.return_kind)
        ax1.hist(rf, bins=120, alpha=0.4, density=True, label="filtered (FHS)")
    ax1.axvline(cal.q_low, color="r", ls="--", lw=1, label=f"{cal.method.upper()} quantiles")
    ax1.axvline(cal.q_high, color="r", ls="--", lw=1)
    ax1.axvline(-cal.hs_price_shock_down, color="k", ls=":", lw=1, label="HS quantiles")
    ax1.axvline(cal.hs_price_shock_up, color="k", ls=":", lw=1)
    ax1.set_title(f"{cal.dataset}: {cal.mpor}-day returns, {cal.method.upper()} quantiles at c={cal.confidence}")
    ax1.set_xlabel(f"{cal.return_kind} return")
    ax1.legend(loc="upper left", fontsize=8)
    sig = ewma_sigma(np.diff(np.log(p)), cal.lam or 0.94)[1:] * np.sqrt(hist.attrs.get("periods_per_year", 252))
    ax2.plot(win["date"].iloc[1:], sig, lw=0.8, label="EWMA vol (annualised)")
    v = win["vol"].to_numpy(dtype=float)
    idx = (win["vol_source"] == "index").to_numpy()
    if idx.any():
        ax2.plot(win["date"][idx], v[idx], ".", ms=1.5, label="vol index")
    if (~idx).any():
        ax2.plot(win["date"][~idx], v[~idx], ".", ms=1, alpha=0.5, label="vol proxy")
    ax2.set_title("volatility")
    ax2.legend(loc="upper left", fontsize=8)
    fig2, (ax3, ax4) = new_figure(ncols=2, figsize=(11, 3.5))
    vsrc = win["vol_source"] == ("index" if cal.vol.source == "index" else "proxy")
    vv = win.loc[vsrc, "vol"].to_numpy(dtype=float)
    if vv.size > cal.mpor + 1:
        dlog = np.log(vv[cal.mpor:] / vv[: -cal.mpor])
        ax4.hist(dlog, bins=80, alpha=0.7)
        ax4.axvline(np.log1p(cal.vol.up), color="r", ls="--", lw=1, label=f"up {cal.vol.up:.3f}")
        ax4.axvline(np.log1p(-cal.vol.down), color="r", ls=":", lw=1, label=f"down {cal.vol.down:.3f}")
        ax4.legend(fontsize=8)
    ax4.set_title(f"{cal.mpor}-day log changes of the vol ({cal.vol.source})")
    ax3.semilogy(win["date"], p, lw=0.8)
    if cal.stress_from:
        ax3.axvspan(pd.Timestamp(cal.stress_from), pd.Timestamp(cal.stress_to), color="orange", alpha=0.3,
                    label="stressed window")
        ax3.legend(loc="upper left")
    ax3.set_title(f"{cal.dataset} price")
    sections = [
        {
            "title": "Shocks",
            "intro": (
                f"Price shocks are relative moves of the underlying over {cal.mpor} trading days at confidence "
                f"{cal.confidence} ({cal.method.upper()}); vol shocks from the {cal.vol.source} "
                f"({cal.vol.start}..{cal.vol.end})."
            ),
            "html": table_html(_calibration_table(cal)),
        },
        {"title": "Return distribution and volatility", "html": embed_figure(fig, alt="returns and volatility")},
        {"title": "Price history", "html": embed_figure(fig2, alt="price history")},
    ]
    shocks = _calibration_table(cal)
    summary = [("data", f"{cal.dataset}: {cal.source}"), ("period", f"{cal.start} to {cal.end}"),
               ("method", f"{cal.method.upper()}, confidence {cal.confidence}, {cal.mpor}-day horizon"),
               ("vol shocks from", f"{cal.vol.source} ({cal.vol.start}..{cal.vol.end})"),
               ("shocks", f"{len(shocks):,d} rows, table below"), ("command", command or "not recorded")]
    return render_page(
        title or f"Calibration: {cal.dataset} {cal.method.upper()} c={cal.confidence} h={cal.mpor}",
        sections,
        subtitle=f"{cal.source}; {cal.start} to {cal.end}",
        footer=command, summary=summary,
    )


def backtest_report(result: Any, *, title: str | None = None, command: str = "", model_name: str = "") -> str:
    """Render the backtest report.

    Parameters
    ----------
    result : BacktestResult
        From :func:`greeksmargin.calibration.backtest.run_backtest`.
    title : str, optional
        Page title.
    command : str
        Command line shown in the footer.
    model_name : str
        Model name shown in the subtitle.

    Returns
    -------
    str
        HTML page.
    """
    st = result.settings
    daily = result.daily
    names = list(dict.fromkeys(daily["portfolio"]))
    ncols = 3
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(14, 3.0 * nrows))
    axes = np.atleast_1d(axes).ravel()
    for ax, name in zip(axes, names):
        g = daily[daily["portfolio"] == name]
        pct = 100.0 / g["spot"]
        ax.plot(g["date"], g["im"] * pct, lw=0.8, label="IM")
        ax.plot(g["date"], g["loss"] * pct, lw=0.5, alpha=0.7, label=f"{st['mpor']}-day loss")
        b = g[g["breach"]]
        ax.plot(b["date"], b["loss"] * 100.0 / b["spot"], "rv", ms=4, label=f"breach ({len(b)})")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("% of spot", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    summary = result.summary.copy()
    intro = (
        f"Margin at each test day against the realised {st['mpor']}-day loss of the same positions; breach = "
        f"loss > margin. Expected breach rate {1 - st['confidence']:.4g}. Kupiec POF is two-sided (too few "
        "breaches also reject: a conservative margin); excess_p is the one-sided binomial p-value of at least "
        "that many breaches (rejects under-coverage only). Christoffersen tests independence of consecutive "
        "breaches (overlapping windows when step < MPOR cluster by construction). peak_to_trough_1y: largest "
        "max/min margin ratio within a rolling year; efficiency: average margin / average positive loss."
    )
    settings = pd.DataFrame([(k, str(v)) for k, v in st.items()], columns=["setting", "value"])
    sections = [
        {"title": "Tests", "intro": intro, "html": table_html(summary)},
        {
            "title": "Margin and realised loss (% of the day's spot)",
            "html": embed_figure(fig, alt="margin vs realised loss with breaches"),
        },
        {"title": "Settings", "html": table_html(settings)},
    ]
    sm = result.summary
    ports = sm[sm["portfolio"] != "all"] if "portfolio" in sm else sm
    rejected = ports.loc[ports["kupiec_p"] < 0.05, "portfolio"].astype(str).tolist() if "kupiec_p" in ports else []
    pooled = sm[sm["portfolio"] == "all"] if "portfolio" in sm else sm.iloc[0:0]
    head: list[tuple[str, Any]] = [
        ("model", model_name or "not stated"), ("data", f"{st.get('dataset', '')}, {st['start']} to {st['end']}"),
        ("test", f"confidence {st['confidence']}, {st['mpor']}-day loss, every {st['step']} day(s), "
                 f"margin function {st['margin']}"),
        ("portfolios", f"{len(ports):,d}; Kupiec rejects (p < 0.05): {', '.join(rejected) or 'none'}")]
    if len(pooled):
        row = pooled.iloc[0]
        head.append(("pooled breaches", f"{int(row['breaches']):,d} of {fmt.amount(float(row['expected']))} "
                                        f"expected (Kupiec p {fmt.ratio(float(row['kupiec_p']))})"))
    return render_page(
        title or f"Backtest: {escape(st.get('dataset', ''))} c={st['confidence']} h={st['mpor']}",
        sections, summary=head,
        subtitle=f"model {model_name}; test days {st['start']} to {st['end']} every {st['step']} row(s); "
        f"margin function {st['margin']}",
        footer=command,
    )


def walk_forward_report(result: Any, *, title: str | None = None, command: str = "", model_name: str = "") -> str:
    """Render the walk-forward report: coverage out of and in sample, breaches by year, the margin path.

    Parameters
    ----------
    result : WalkForwardResult
        From :func:`greeksmargin.calibration.walkforward.walk_forward`.
    title : str, optional
        Page title.
    command : str
        Command line shown in the footer.
    model_name : str
        Model name shown in the subtitle.

    Returns
    -------
    str
        HTML page.
    """
    s = result.summary
    st = s["settings"]
    daily = result.daily
    rows = []
    for p in s["portfolios"]:
        ins = p.get("in_sample", {})
        rows.append({"portfolio": p["portfolio"], "days": p["days"], "expected": p["expected"],
                     "breaches (out of sample)": p["breaches"], "excess p (oos)": p["excess_p"],
                     "breaches (in sample)": ins.get("breaches"), "excess p (is)": ins.get("excess_p"),
                     "christoffersen p": p["christoffersen_p"], "worst excess": p["worst_excess"],
                     "peak/trough": p["peak_to_trough"], "max 5-day rise": p["max_increase_5d"],
                     "max 30-day rise": p["max_increase_30d"], "efficiency": p["efficiency"]})
    tests = pd.DataFrame(rows)
    by_year = pd.DataFrame({p["portfolio"]: p["breaches_by_year"] for p in s["portfolios"]}).fillna(0).astype(int)
    by_year.index.name = "year"
    names = [p["portfolio"] for p in s["portfolios"]]
    ncols = 3
    nrows = int(np.ceil(len(names) / ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(14, 3.0 * nrows))
    axes = np.atleast_1d(axes).ravel()
    for ax, name in zip(axes, names):
        g = daily[daily["portfolio"] == name]
        pct = 100.0 / g["spot"]
        ax.plot(g["date"], g["im"] * pct, lw=0.8, label="IM (out of sample)")
        if "im_in_sample" in g:
            ax.plot(g["date"], g["im_in_sample"] * pct, lw=0.5, alpha=0.7, label="IM (in sample)")
        ax.plot(g["date"], g["loss"] * pct, lw=0.4, alpha=0.6, label=f"{st['mpor']}-day loss")
        b = g[g["breach"]]
        ax.plot(b["date"], b["loss"] * 100.0 / b["spot"], "rv", ms=3, label=f"breach ({len(b)})")
        ax.set_title(name, fontsize=9)
        ax.set_ylabel("% of spot", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6, loc="upper left")
    for ax in axes[len(names):]:
        ax.set_visible(False)
    refits = pd.DataFrame(s["refits"])
    intro = (
        f"At each refit date the model's calibration recipe is re-run on the rows before that date only and "
        f"margins the next period; the in-sample column is the same recipe fitted on the whole history. "
        f"Expected breach rate {1 - st['confidence']:.4g}; excess p: one-sided binomial p-value of at least that "
        "many breaches. Procyclicality: peak/trough = max/min IM over the test period; largest relative IM rise "
        "within 5 and 30 calendar days. Efficiency: mean IM / mean positive loss."
    )
    settings = pd.DataFrame([(k, str(v)) for k, v in st.items()], columns=["setting", "value"])
    sections = [
        {"title": "Coverage and procyclicality", "intro": intro, "html": table_html(tests)},
        {"title": "Breaches by year (out of sample)", "html": table_html(by_year.reset_index())},
        {"title": "Margin path and realised loss (% of the day's spot)",
         "html": embed_figure(fig, alt="walk-forward margin vs realised loss")},
        {"title": "Refits", "html": table_html(refits)},
        {"title": "Settings", "html": table_html(settings)},
    ]
    head = [("model", model_name or "not stated"),
            ("test", f"{st.get('dataset', '')}: {st['test_start']} to {st['test_end']}, refit {st['refit']}, "
                     f"confidence {st['confidence']}"),
            ("refits", f"{len(refits):,d}")]
    return render_page(
        title or f"Walk-forward: {escape(str(st.get('dataset', '')))} from {st['oos_start']}",
        sections, summary=head,
        subtitle=f"model {model_name}; test days {st['test_start']} to {st['test_end']}; refit {st['refit']}",
        footer=command,
    )
