"""HTML reports of the comparison tools: model vs exchange (ratios, outliers, drivers) and models side by side.

Both return a self-contained HTML page as a string (figures embedded as base64 PNG); the caller writes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.reports import fmt
from greeksmargin.reports.html import embed_figure, new_figure, render_page, table_html

__all__ = ["compare_report", "ratio_figure", "side_by_side_figure", "side_by_side_report"]


def ratio_figure(table: pd.DataFrame, threshold: float) -> Any:
    """Bar chart of ``model IM / exchange IM`` per account on a log scale, outlier band shaded.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`greeksmargin.engine.compare.compare_with_exchange`.
    threshold : float
        Outlier threshold on ``|ln ratio|``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    t = table[np.isfinite(table["im_ratio"].to_numpy(dtype=float))]
    fig, ax = new_figure(figsize=(8, max(2.5, 0.35 * len(t) + 1.2)))
    y = np.arange(len(t))
    ratios = t["im_ratio"].to_numpy(dtype=float)
    colors = ["#c0392b" if o else "#2e86c1" for o in t["outlier"]]
    ax.barh(y, np.log(np.where(ratios > 0, ratios, np.nan)), color=colors)
    band = np.exp(threshold)
    ax.axvspan(-threshold, threshold, color="#d5f5e3", zorder=0, label=f"within x{band:.3g} or /{band:.3g}")
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(t["account"].astype(str))
    ax.invert_yaxis()
    ax.set_xlabel("ln(model IM / exchange IM)")
    ax.set_title("Model IM relative to the exchange (red: outlier)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def compare_report(table: pd.DataFrame, *, model_name: str = "", threshold: float | None = None,
                   source: str = "") -> str:
    """HTML page of a model-vs-exchange comparison.

    Parameters
    ----------
    table : DataFrame
        Output of :func:`greeksmargin.engine.compare.compare_with_exchange`.
    model_name : str
        Model name shown in the title.
    threshold : float, optional
        Outlier threshold (default ``table.attrs["threshold"]``).
    source : str
        Where the exchange figures come from (shown under the title).

    Returns
    -------
    str
        The HTML page.
    """
    thr = float(threshold if threshold is not None else table.attrs.get("threshold", np.log(1.25)))
    outliers = table[table["outlier"]]
    n_ok = int((table["status"] == "ok").sum())
    sections = [
        {"title": "IM ratio per account", "id": "ratios",
         "intro": f"{n_ok} accounts compared, {len(outliers)} outliers (|ln ratio| > {thr:.3g}, i.e. beyond "
                  f"x{np.exp(thr):.3g} or /{np.exp(thr):.3g}).",
         "html": embed_figure(ratio_figure(table, thr), alt="IM ratio per account")},
        {"title": "Outliers and the components that drive them", "id": "outliers",
         "html": table_html(outliers[["account", "currency", "model_im", "exchange_im", "im_ratio", "model_mm",
                                      "exchange_mm", "mm_ratio", "drivers"]]) if len(outliers)
         else "<p>No outlier.</p>"},
        {"title": "All accounts", "id": "all", "html": table_html(table)},
    ]
    sub = f"Model {model_name} against the exchange" + (f" ({source})" if source else "")
    worst = table.assign(_d=np.abs(np.log(table["im_ratio"].astype(float).where(table["im_ratio"] > 0)))) \
        .sort_values("_d", ascending=False, na_position="last").head(3)
    summary = [("model", model_name), ("exchange figures", source or "not stated"),
               ("accounts", f"{len(table):,d}: {n_ok:,d} compared, {len(outliers):,d} outliers"),
               ("outlier rule",
                f"|ln(model / exchange)| > {thr:.4f} (beyond x{np.exp(thr):.2f} or /{np.exp(thr):.2f})"),
               ("largest gaps (IM ratio)", ", ".join(f"{a} {fmt.ratio(r)}" for a, r in
                                                   zip(worst["account"], worst["im_ratio"]) if pd.notna(r)))]
    return render_page(f"Margin comparison: {model_name} vs exchange", sections, subtitle=sub, summary=summary,
                       footer="greeksmargin compare")


def side_by_side_figure(im_table: pd.DataFrame) -> Any:
    """Grouped bar chart: IM per account (groups) per model (bars), log scale.

    Parameters
    ----------
    im_table : DataFrame
        First output of :func:`greeksmargin.engine.compare.side_by_side`.

    Returns
    -------
    matplotlib.figure.Figure
    """
    models = [c for c in im_table.columns if c not in ("account", "currency")]
    n_acc, n_mod = len(im_table), max(len(models), 1)
    fig, ax = new_figure(figsize=(max(8, 1.3 * n_acc + 2), 4.5))
    width = 0.8 / n_mod
    x = np.arange(n_acc)
    cmap = __import__("matplotlib").colormaps["tab10"]
    for i, m in enumerate(models):
        vals = im_table[m].to_numpy(dtype=float)
        ax.bar(x + (i - (n_mod - 1) / 2) * width, np.where(vals > 0, vals, np.nan), width, label=m, color=cmap(i % 10))
    ax.set_xticks(x)
    ax.set_xticklabels(im_table["account"].astype(str), rotation=20, ha="right")
    ccys = sorted(set(im_table["currency"].astype(str)))
    ax.set_ylabel(f"initial margin ({', '.join(ccys)})")
    ax.set_yscale("log")
    ax.set_title("Initial margin per account under each model")
    ax.legend(fontsize=8, ncol=min(n_mod, 4))
    return fig


def side_by_side_report(im_table: pd.DataFrame, saving_table: pd.DataFrame, *, title: str = "") -> str:
    """HTML page of the side-by-side comparison: chart, IM table, savings, and the accounts a model skipped.

    Parameters
    ----------
    im_table, saving_table : DataFrame
        Outputs of :func:`greeksmargin.engine.compare.side_by_side`.
    title : str
        Page title (default "Margin methodologies side by side").

    Returns
    -------
    str
        The HTML page.
    """
    from greeksmargin.engine.compare import side_by_side_display

    errors = im_table.attrs.get("errors", {}) or {}
    illustrative = [m for m, st in (im_table.attrs.get("model_status", {}) or {}).items() if st == "illustrative"]
    err_rows = [{"model": m, "account": a, "reason": msg} for m, d in errors.items() for a, msg in d.items()]
    shown = side_by_side_display(im_table)
    for c in shown.columns[2:]:
        shown[c] = [("n/a" if v.startswith("n/a") else v) if isinstance(v, str)
                    else ("" if pd.isna(v) else fmt.amount(float(v))) for v in shown[c]]
    common = saving_table.attrs.get("common_accounts", [])
    models = [c for c in im_table.columns if c not in ("account", "currency")]
    summary = [("book", f"{len(im_table):,d} accounts under {len(models):,d} models"),
               ("accounts every model priced", ", ".join(common) if common else
                "none: each model's totals run over its own accounts (column accounts) and do not compare"),
               ("not computed", f"{len(err_rows):,d} (model, account) pairs, listed at the bottom (never 0)"),
               ("illustrative models (*)", ", ".join(illustrative) or "none")]
    sections = [
        {"title": "IM per account and model", "id": "chart",
         "html": embed_figure(side_by_side_figure(im_table), alt="IM per account per model")},
        {"title": "IM table", "id": "table", "html": table_html(shown),
         "intro": "n/a: the model did not compute the account (reason below; never 0). "
                  + ("Illustrative parameters (not from a published exchange source), marked *: "
                     + ", ".join(illustrative) + "." if illustrative else "")},
        {"title": "Cross-margin saving of each model (USD totals)", "id": "saving",
         "intro": "saving = isolated (each position margined alone) - cross (the account as a whole). im and "
                  "isolated_im are over the accounts each model priced (column accounts); im_common and "
                  "isolated_im_common over the accounts every model priced, the only like-for-like totals.",
         "html": table_html(saving_table)},
        {"title": "Accounts a model could not compute", "id": "errors",
         "html": table_html(pd.DataFrame(err_rows)) if err_rows else "<p>None.</p>"},
    ]
    return render_page(title or "Margin methodologies side by side", sections, summary=summary,
                       subtitle="The same book under every model", footer="greeksmargin sidebyside")
