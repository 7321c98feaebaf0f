"""HTML reports of solvency, liquidation and cascades (the only place where solvency figures are drawn).

Each function returns a self-contained HTML page (a string); the CLI writes it with :mod:`greeksmargin.io`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from greeksmargin.reports import fmt
from greeksmargin.reports.html import embed_figure, escape, new_figure, render_page, table_html

if TYPE_CHECKING:
    from greeksmargin.solvency.assess import SolvencyResult
    from greeksmargin.solvency.cascade import CascadeResult
    from greeksmargin.solvency.liquidation import LiquidationResult

__all__ = ["cascade_report", "liquidation_report", "solvency_report"]

_STATUS_COLOURS = {"healthy": "#2b8a3e", "below_im": "#e67700", "below_mm": "#c92a2a", "bankrupt": "#5f3dc4"}


def _ratio_figure(accounts: pd.DataFrame) -> str:
    fig, ax = new_figure(figsize=(8, 3.6))
    r = accounts["margin_ratio"].to_numpy(dtype=float)
    finite = r[np.isfinite(r)]
    n_inf = int(np.isinf(r).sum())
    if finite.size:
        top = max(1.5, float(np.nanpercentile(finite, 99)) * 1.05) if finite.size > 1 else max(1.5, finite[0] * 1.1)
        bins = np.linspace(0.0, top, 41)
        for status, colour in _STATUS_COLOURS.items():
            sel = accounts["status"].to_numpy() == status
            v = np.clip(r[sel & np.isfinite(r)], 0.0, top)
            if v.size:
                ax.hist(v, bins=bins, color=colour, alpha=0.75, label=f"{status} ({v.size})")
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1, label="MM = equity (ratio 1)")
    ax.set_xlabel("margin ratio = MM / equity")
    ax.set_ylabel("accounts")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    title = "Margin-ratio distribution"
    if n_inf:
        title += f" ({n_inf} accounts with equity <= 0 not shown)"
    ax.set_title(title)
    ax.legend(fontsize=8)
    return embed_figure(fig, alt="margin ratio distribution")


def _path_figure(path: pd.DataFrame, account: str, underlying: str, currency: str, liq_move: float | None) -> str:
    fig, ax = new_figure(figsize=(8, 3.6))
    x = 100 * path["move"].to_numpy(dtype=float)
    ax.plot(x, path["equity"], color="#1c7ed6", label="equity")
    ax.plot(x, path["mm"], color="#c92a2a", label="MM")
    ax.plot(x, path["im"], color="#e67700", linestyle=":", label="IM")
    if liq_move is not None and np.isfinite(liq_move):
        y = float(np.interp(100 * liq_move, x, path["mm"].to_numpy(dtype=float)))
        ax.axvline(100 * liq_move, color="black", linestyle="--", linewidth=1)
        ax.plot([100 * liq_move], [y], "ko", label=f"liquidation at {100 * liq_move:+.2f}%")
    ax.axhline(0.0, color="grey", linewidth=0.6)
    ax.set_xlabel(f"relative move of {underlying} (%)")
    ax.set_ylabel(currency)
    ax.set_title(f"{account}: equity and MM against the move (full revaluation, vol reacting)")
    ax.legend(fontsize=8)
    return embed_figure(fig, alt=f"equity path of {account}")


def solvency_report(
    result: SolvencyResult,
    *,
    paths: Mapping[str, tuple[str, pd.DataFrame]] | None = None,
    title: str = "Solvency report",
    subtitle: str = "",
    max_rows: int = 200,
) -> str:
    """HTML page: status counts, margin-ratio distribution, per-account table, equity paths, distances.

    Parameters
    ----------
    result : SolvencyResult
        From :func:`~greeksmargin.solvency.assess.assess_solvency`.
    paths : mapping of account -> (underlying, DataFrame), optional
        Equity paths (:func:`~greeksmargin.solvency.assess.equity_path`) to draw, with the underlying moved.
    title, subtitle : str
        Page heading.
    max_rows : int
        Rows shown in the account table (the accounts nearest to liquidation first).

    Returns
    -------
    str
        The HTML page.
    """
    acc = result.accounts
    summ = pd.DataFrame([result.summary()])
    s = result.summary()
    risky = acc.sort_values("margin_ratio", ascending=False, kind="stable").head(5)
    summary: list[tuple[str, Any]] = [
        ("accounts", f"{s['accounts']:,d}: " + ", ".join(f"{s[k]:,d} {k[2:].replace('_', ' ')}" for k in s
                                                          if k.startswith("n_") and s[k])),
        ("equity / IM / MM (USD)", f"{fmt.amount(s['equity_usd'])} / {fmt.amount(s['im_usd'])} / "
                                   f"{fmt.amount(s['mm_usd'])}"),
        ("nearest to liquidation (MM / equity)", ", ".join(f"{a} {fmt.ratio(v)}" for a, v in
                                                          zip(risky["account"], risky["margin_ratio"]))),
        ("distance to liquidation", "computed" if result.distance is not None else "not computed"),
    ]
    sections: list[dict[str, Any]] = [
        {"title": "Status counts", "html": table_html(summ),
         "intro": "Status: bankrupt (equity <= 0), below_mm (equity < MM), below_im (equity after IM haircuts < "
                  "IM), healthy. An account with |equity - MM| <= 1e-9 relative is at the MM boundary (at_mm) "
                  "and is not liquidated."},
        {"title": "Margin-ratio distribution", "html": _ratio_figure(acc)},
    ]
    shown = acc.sort_values("margin_ratio", ascending=False, kind="stable")
    sections.append({"title": "Accounts (highest margin ratio first)",
                     "html": table_html(shown, max_rows=max_rows)})
    if "error" in acc.columns:
        failed = acc[acc["error"].fillna("").astype(str) != ""]
        if len(failed):
            sections.append({"title": f"Accounts not computed ({len(failed)})",
                             "html": table_html(failed[["account", "n_positions", "error"]], max_rows=max_rows),
                             "intro": "A position of these accounts cannot be priced on the market snapshot; "
                                      "they have no figures and the other accounts are computed."})
    dist = result.distance
    if paths:
        html = []
        for account, (underlying, path) in paths.items():
            liq = None
            sel = acc["account"] == account
            ccy = str(acc.loc[sel, "currency"].iloc[0]) if sel.any() else ""
            if dist is not None:
                row = dist[(dist["account"] == account) & (dist["underlying"] == underlying)]
                if len(row):
                    liq = float(row["move"].iloc[0])
            html.append(_path_figure(path, account, underlying, ccy, liq))
        sections.append({"title": "Equity path against the move", "html": "".join(html),
                         "intro": "Equity and MM of the account as the underlying moves (MM recomputed by the "
                                  "model at each moved market); the dot marks the liquidation point."})
    if dist is not None:
        sections.append({"title": "Distance to liquidation", "html": table_html(dist, max_rows=max_rows),
                         "intro": "Smallest adverse relative move (each underlying alone, and ALL together) at "
                                  "which equity equals MM, found by root finding on full revaluation; NaN with a "
                                  "reason when there is none within +-90%."})
    return render_page(title, sections, subtitle=subtitle, summary=summary)


def liquidation_report(result: LiquidationResult, *, title: str = "Liquidation", subtitle: str = "") -> str:
    """HTML page of one account's liquidation: summary, trades, equity and MM after each step.

    Parameters
    ----------
    result : LiquidationResult
        From :func:`~greeksmargin.solvency.liquidation.liquidate_account`.
    title, subtitle : str
        Page heading.

    Returns
    -------
    str
    """
    r = result
    summary = [("account", f"{r.account} ({r.currency})"), ("outcome", r.status),
               ("equity / MM before", f"{fmt.amount(r.equity_before)} / {fmt.amount(r.mm_before)} {r.currency}"),
               ("equity / MM after", f"{fmt.amount(r.equity_after)} / {fmt.amount(r.mm_after)} {r.currency}"),
               ("trades", f"{len(r.trades):,d}; cost {fmt.amount(r.realised_cost)}, shortfall "
                          f"{fmt.amount(r.shortfall)} {r.currency}")]
    sections: list[dict[str, Any]] = [{"title": "Figures", "html": table_html(pd.DataFrame([result.summary()]))}]
    t = result.trades
    if len(t):
        fig, ax = new_figure(figsize=(8, 3.4))
        steps = np.r_[0, t["step"].to_numpy()]
        ax.step(steps, np.r_[result.equity_before, t["equity_after"].to_numpy()], where="post", label="equity")
        ax.step(steps, np.r_[result.mm_before, t["mm_after"].to_numpy()], where="post", label="MM", color="#c92a2a")
        ax.set_xlabel("trade number (0 = before the liquidation)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"amount ({result.currency})")
        ax.set_title(f"{result.account}: equity and MM through the liquidation ({result.status})")
        ax.legend(fontsize=8)
        sections.append({"title": "Equity and MM per trade", "html": embed_figure(fig, alt="liquidation steps")})
    sections.append({"title": "Trades", "html": table_html(t) if len(t) else
                     f"<p>No trade: the account was not below MM ({escape(result.status)}).</p>"})
    return render_page(title, sections, subtitle=subtitle, summary=summary)


def _rounds_figure(results: Sequence[CascadeResult]) -> str:
    unders = [c[len("price_"):] for c in results[0].rounds.columns if c.startswith("price_")]
    moved = [u for u in unders if any(abs(r.final_moves.get(u, 0.0)) > 0 for r in results)] or unders
    fig, axes = new_figure(1, 2, figsize=(11, 3.8))
    ax0, ax1 = axes
    width = 0.8 / len(results)
    for k, r in enumerate(results):
        x = r.rounds["round"].to_numpy() + (k - (len(results) - 1) / 2) * width
        ax0.bar(x, r.rounds["n_liquidated"], width=width, label=f"{r.mode}")
        for u in moved:
            p = np.r_[0.0, 100 * r.rounds[f"move_{u}"].to_numpy()]
            ax1.plot(np.arange(len(p)), p, marker="o", label=f"{u} ({r.mode})",
                     linestyle="-" if r.mode == "cross" else "--")
    ax0.set_xlabel("round")
    ax0.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax1.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax0.set_ylabel("units liquidated")
    ax0.set_title("Liquidations per round")
    ax0.legend(fontsize=8)
    ax1.set_xlabel("round (0 = before the shock)")
    ax1.set_ylabel("cumulative move (%)")
    ax1.set_title("Price path (shock, then impact of the liquidations)")
    ax1.legend(fontsize=8)
    return embed_figure(fig, alt="cascade rounds")


def _comparison_figure(comparison: pd.DataFrame) -> str:
    fig, axes = new_figure(1, 3, figsize=(11, 3.2))
    for ax, col, lab in zip(axes, ("units_liquidated", "notional_usd", "shortfall_usd"),
                            ("units liquidated", "notional traded (USD)", "shortfall (USD)")):
        colours = ["#1c7ed6", "#e67700"][: len(comparison)]
        ax.bar(comparison["mode"].astype(str), comparison[col].astype(float), color=colours)
        ax.set_title(lab)
    return embed_figure(fig, alt="cross versus isolated")


def cascade_report(
    results: Sequence[CascadeResult],
    *,
    comparison: pd.DataFrame | None = None,
    title: str = "Liquidation cascade",
    subtitle: str = "",
    parameters: Mapping[str, Any] | None = None,
) -> str:
    """HTML page of one or more cascades (typically cross and isolated margin on the same population).

    Parameters
    ----------
    results : sequence of CascadeResult
        The cascades (drawn together).
    comparison : DataFrame, optional
        The table of :func:`~greeksmargin.solvency.cascade.compare_cross_isolated` (drawn as bars).
    title, subtitle : str
        Page heading.
    parameters : mapping, optional
        Shock, impact model, liquidity... shown as a table.

    Returns
    -------
    str
    """
    sections: list[dict[str, Any]] = []
    summary: list[tuple[str, Any]] = [(str(k), v) for k, v in (parameters or {}).items()]
    for r in results:
        sm = r.summary()
        summary.append((f"{r.mode} margin", f"{sm['rounds']} rounds{' (round cap hit)' if r.hit_cap else ''}, "
                        f"{sm['units_liquidated']:,d} of {sm['units']:,d} units liquidated, shortfall "
                        f"{fmt.amount(sm['shortfall_usd'])} USD; final moves "
                        + ", ".join(f"{u} {fmt.percent(v)}" for u, v in r.final_moves.items() if u in r.liquidity)))
    for r in results:
        sections.append({"title": f"What moved each price ({r.mode} margin)", "html": table_html(r.moves()),
                         "intro": "initial_shock is the shock given; impact is what the liquidation flows added "
                                  "(never beyond bound = prod(1 + |flow| / liquidity) - 1, the liquidity named)."})
    comp = comparison if comparison is not None else pd.DataFrame([r.summary() for r in results])
    long = comp.set_index("mode").T.reset_index().rename(columns={"index": "figure"})  # one column per mode
    long.columns = [str(c) for c in long.columns]
    html = table_html(long.astype({c: object for c in long.columns[1:]}).map(
        lambda v: fmt.amount(v) if isinstance(v, float) else v))
    if len(results) > 1:
        html += _comparison_figure(comp)
    sections.append({"title": "Cross versus isolated margin" if len(results) > 1 else "Summary", "html": html,
                     "intro": "Cross: one collateral pool per account, MM on the net risk. Isolated: each position "
                              "margined alone with its pro-rata share of the account's collateral. Shortfall = "
                              "losses beyond collateral (what an insurance fund covers)."})
    sections.append({"title": "Rounds", "html": _rounds_figure(results)})
    for r in results:
        sections.append({"title": f"Rounds ({r.mode} margin)" + (" - stopped at the round cap" if r.hit_cap else ""),
                         "html": table_html(_rounds_long(r.rounds))})
    return render_page(title, sections, subtitle=subtitle, summary=summary)


def _rounds_long(rounds: pd.DataFrame) -> pd.DataFrame:
    """The rounds table in a long format (one row per round and underlying) so that it fits a page."""
    unders = [c[len("price_"):] for c in rounds.columns if c.startswith("price_")]
    base = [c for c in rounds.columns if not any(c.startswith(p) for p in ("flow_", "impact_", "move_", "price_"))]
    rows = []
    for _, r in rounds.iterrows():
        for u in unders:
            rows.append({**{c: r[c] for c in base}, "underlying": u, "flow_usd": r[f"flow_{u}"],
                         "impact": r[f"impact_{u}"], "cum_move": r[f"move_{u}"], "price": r[f"price_{u}"]})
    out = pd.DataFrame(rows)
    for c in ("round", "n_liquidated", "n_bankrupt"):
        if c in out:
            out[c] = out[c].astype(int)
    return out
