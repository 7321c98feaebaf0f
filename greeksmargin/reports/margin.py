"""HTML margin report: per account the P&L across the scenario grid and the component break-down.

One self-contained page (figures embedded as base64 PNG, :mod:`greeksmargin.reports.html`): the accounts
table (IM, MM, isolated IM, saving), then per account a heatmap of the account's P&L per underlying across
the scenarios (spot move x vol state, tails apart), a bar chart of the unit components, and the tables of
the components and worst scenarios.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.reports import fmt
from greeksmargin.reports.html import embed_figure, escape, new_figure, render_page, table_html

__all__ = ["margin_report"]


def _pnl_figure(result: Any, account: str) -> str:
    it = getattr(result, "_internals", None)
    if not it or not it.get("grids") or not it["has_scan"]:
        return "<p class='note'>This model has no scenario grid.</p>"
    names = it["account_names"]
    a = names.get_loc(account)
    units = np.flatnonzero(it["unit_acc"] == a) if "unit_acc" in it else np.array([], dtype=int)
    if units.size == 0:
        return ""
    fig, axes = new_figure(1, units.size, figsize=(min(5.0 * units.size, 15.0), 3.6))
    axes = np.atleast_1d(axes)
    for ax, u in zip(axes, units):
        g = it["grids"][it["unit_grid"][u]]
        pnl = it["unit_pnl"][:, u]
        core = ~g.is_tail
        moves = np.unique(g.spot_move[core])
        for d, name, style in ((1, "vol up", "-"), (0, "vol unchanged", "--"), (-1, "vol down", ":")):
            sel = core & (g.vol_dir == d)
            if sel.any():
                o = np.argsort(g.spot_move[sel])
                ax.plot(100 * g.spot_move[sel][o], pnl[sel][o], style, marker="o", ms=3, label=name)
        if g.is_tail.any():
            t = g.is_tail
            ax.plot(100 * g.spot_move[t], pnl[t] * g.weights[t], "kx", label="tails (weighted)")
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_xlabel("spot move (%)")
        ax.set_ylabel(f"P&L ({it['acc_ccy'][a]})")
        ax.set_title(f"{account} / {it['underlying_names'][it['unit_und'][u]]}")
        if moves.size:
            ax.legend(fontsize=7)
    return embed_figure(fig, alt=f"P&L across the scenario grid of {account}")


def _components_figure(result: Any, account: str) -> str:
    bu = result.by_underlying[result.by_underlying["account"] == account]
    declared = getattr(result.model.params, "figures", None)
    if declared is None:  # adapter methodologies: every component column
        declared = [c for c in bu.columns if c not in ("account", "underlying", "currency")]
    figs = [f for f in declared if f in bu.columns and f != "long_premium_cap"]
    if bu.empty or not figs:
        return ""
    fig, ax = new_figure(figsize=(8, 3.2))
    x = np.arange(len(figs))
    width = 0.8 / max(len(bu), 1)
    for i, (_, row) in enumerate(bu.iterrows()):
        vals = [float(row[f]) if pd.notna(row[f]) else 0.0 for f in figs]
        ax.bar(x + i * width, vals, width=width, label=str(row["underlying"]))
    ax.set_xticks(x + width * (len(bu) - 1) / 2)
    ax.set_xticklabels(figs, rotation=20, fontsize=8)
    ax.set_ylabel(str(bu["currency"].iloc[0]))
    ax.set_title(f"{account}: components per underlying")
    ax.legend(fontsize=7)
    return embed_figure(fig, alt=f"component break-down of {account}")


def margin_report(result: Any, *, title: str | None = None, max_accounts: int = 50) -> str:
    """Render a :class:`~greeksmargin.engine.margin.MarginResult` as a self-contained HTML page.

    Parameters
    ----------
    result : MarginResult
        The result.
    title : str, optional
        Page title.
    max_accounts : int
        Accounts drawn (the table lists them all).

    Returns
    -------
    str
        The HTML page.
    """
    m = result.model
    acc = result.accounts
    sections = [
        {
            "title": "Accounts",
            "id": "accounts",
            "intro": f"Model {m.name} ({m.methodology}). Amounts in each account's margin currency. "
            "isolated_im is the sum of each position margined alone; saving is isolated minus cross.",
            "html": table_html(acc.drop(columns=[c for c in ("error",) if acc[c].isna().all()], errors="ignore")),
        }
    ]
    for account in list(acc.loc[acc["error"].isna(), "account"])[:max_accounts]:
        body = _pnl_figure(result, account) + _components_figure(result, account)
        body += table_html(result.by_underlying[result.by_underlying["account"] == account])
        body += f"<pre>{escape(result.explain(account))}</pre>"
        sections.append({"title": f"Account {account}", "id": f"acc-{account}", "html": body})
    failed = acc[acc["error"].notna()]
    if len(failed):
        sections.append({"title": "Accounts not computed", "html": table_html(failed[["account", "error"]])})
    if hasattr(result, "worst_scenarios"):
        sections.append({"title": "Worst scenarios", "html": table_html(result.worst_scenarios)})
    if hasattr(result, "net_greeks"):
        sections.append({"title": "Net Greeks", "html": table_html(result.net_greeks)})
    ok = (acc[acc["error"].isna() & acc["im"].notna()] if "error" in acc.columns else acc[acc["im"].notna()]).copy()
    ok.attrs = {}  # frames in attrs (adapter details) break pandas' selections
    summary: list[tuple[str, Any]] = [
        ("model", f"{m.name} ({m.methodology})"), ("model file", m.file),
        ("accounts", f"{len(acc):,d} ({len(ok):,d} computed, {len(acc) - len(ok):,d} not computed)"),
    ]
    for ccy, grp in ok.groupby("currency"):
        summary.append((f"total IM / MM ({ccy})", f"{fmt.amount(grp['im'].sum())} / {fmt.amount(grp['mm'].sum())}"
                        + (f"; cross-margin saving {fmt.amount(grp['saving'].sum())}" if "saving" in grp else "")))
        top = grp.sort_values("im", ascending=False).head(3)
        summary.append((f"largest IM ({ccy})", ", ".join(f"{a} {fmt.amount(v)}" for a, v in zip(top["account"],
                                                                                               top["im"]))))
    return render_page(title or f"Margin report: {m.name}", sections,
                       subtitle=f"{len(acc)} accounts; model file {m.file}", summary=summary,
                       footer="greeksmargin margin report")
