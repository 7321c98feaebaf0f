"""Shared HTML helpers: embed a matplotlib figure as a base64 PNG and render a self-contained page.

Every report of greeksmargin is one HTML file with no external resource: figures are ``<img>`` tags
holding base64 PNG data, the style sheet is inline. Usage::

    from greeksmargin.reports.html import embed_figure, new_figure, render_page, table_html

    fig, ax = new_figure()
    ax.plot([0, 1], [0, 1])
    sections = [{"title": "A plot", "html": embed_figure(fig, alt="a line") + table_html(df)}]
    page = render_page("My report", sections, subtitle="generated ...")   # str; write it with io.write_text
"""

from __future__ import annotations

import base64
import html as _html
import io as _bytesio
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import matplotlib
import pandas as pd
from markupsafe import Markup

from greeksmargin.reports import fmt

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["embed_figure", "escape", "figure_to_png", "new_figure", "render_page", "summary_html", "table_html"]

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("greeksmargin.reports", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def escape(text: Any) -> str:
    """HTML-escape ``str(text)``."""
    return _html.escape(str(text))


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (8, 4)) -> tuple[Any, Any]:
    """A new matplotlib figure and its axes (Agg backend, nothing shown; constrained layout)."""
    return plt.subplots(nrows, ncols, figsize=figsize, constrained_layout=True)


def plain_axes(fig: Any) -> None:
    """Give every linear numeric axis of ``fig`` plain tick labels (:func:`fmt.tick`): no ``1e7`` offset."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale == "linear" and isinstance(axis.get_major_formatter(), ScalarFormatter):
                axis.set_major_formatter(FuncFormatter(fmt.tick))


def figure_to_png(fig: Any, dpi: int = 90) -> bytes:
    """Render ``fig`` to PNG bytes (plain tick labels, :func:`plain_axes`) and close it."""
    plain_axes(fig)
    buf = _bytesio.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def embed_figure(fig: Any, alt: str = "", dpi: int = 90) -> str:
    """Render a matplotlib figure as an ``<img src="data:image/png;base64,...">`` tag and close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure (closed afterwards).
    alt : str
        Alternative text of the image.
    dpi : int
        Resolution of the PNG.

    Returns
    -------
    str
        A self-contained ``<img>`` tag.
    """
    data = base64.b64encode(figure_to_png(fig, dpi=dpi)).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def table_html(df: pd.DataFrame, *, float_format: str | None = None, index: bool = False, max_rows: int = 500,
               caption: str = "") -> str:
    """A DataFrame as a sortable HTML table in a scrolling box (numbers by :mod:`greeksmargin.reports.fmt`).

    Parameters
    ----------
    df : DataFrame
        The rows.
    float_format : str, optional
        A ``str.format`` pattern for every float (default: :func:`greeksmargin.reports.fmt.cell`, by column
        unit; never scientific notation).
    index : bool
        Print the index.
    max_rows : int
        Rows shown; the number left out is said under the table.
    caption : str
        Plain text shown above the table.

    Returns
    -------
    str
        ``<div class="tablebox"><table class="data sortable">...</table></div>``: the box scrolls
        horizontally and vertically inside the page; clicking a header sorts (script in the page template).
    """
    shown = df.head(max_rows)
    numeric = [c for c in shown.columns
               if pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c])]
    if float_format is None:
        formatters = {c: (lambda v, c=c: "" if pd.isna(v) else fmt.cell(str(c), v)) for c in numeric}
    else:
        ff = float_format
        formatters = {c: (lambda v, ff=ff: "" if pd.isna(v) else ff.format(v)) for c in numeric}
    out = shown.to_html(
        index=index,
        classes="data sortable",
        border=0,
        na_rep="",
        formatters=formatters,
        escape=True,
    )
    cap = f"<p class='caption'>{escape(caption)}</p>" if caption else ""
    out = f"{cap}<div class='tablebox'>{out}</div>"
    if len(df) > max_rows:
        out += (f"<p class='note'>Showing {max_rows:,d} of {len(df):,d} rows; {len(df) - max_rows:,d} more not shown "
                "(write the full table with --format csv).</p>")
    return out


def summary_html(items: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> str:
    """The summary block that opens every page: label / value pairs (numbers by :func:`fmt.cell`).

    Parameters
    ----------
    items : sequence of (label, value) or mapping
        Inputs, model, valuation time, totals, the accounts that matter; a float is formatted by the
        unit its label implies, anything else printed as text.

    Returns
    -------
    str
        ``<dl class="summary">...</dl>``.
    """
    pairs = list(items.items()) if isinstance(items, Mapping) else list(items)
    rows = []
    for label, value in pairs:
        if isinstance(value, float):
            text = fmt.cell(str(label).replace(" ", "_"), value)
        elif isinstance(value, int) and not isinstance(value, bool):
            text = f"{value:,d}"
        else:
            text = str(value)
        rows.append(f"<dt>{escape(label)}</dt><dd>{escape(text)}</dd>")
    return "<dl class='summary'>" + "".join(rows) + "</dl>"


def render_page(
    title: str,
    sections: Sequence[Mapping[str, Any]],
    *,
    subtitle: str = "",
    footer: str = "",
    summary: Sequence[tuple[str, Any]] | Mapping[str, Any] | None = None,
) -> str:
    """Render a self-contained HTML page.

    Parameters
    ----------
    title : str
        Page title (``<h1>``).
    sections : sequence of mappings
        Each with ``"title"`` (plain text, escaped), ``"html"`` (trusted HTML: tables, ``<img>`` tags) and
        optionally ``"id"`` (anchor) and ``"intro"`` (plain text paragraph).
    subtitle, footer : str
        Plain text lines under the title and at the bottom.
    summary : sequence of (label, value) or mapping, optional
        The summary block at the top of the page (:func:`summary_html`).

    Returns
    -------
    str
        The page; nothing is read from or written to disk.
    """
    template = _ENV.get_template("page.html.j2")
    secs = [
        {
            "title": s.get("title", ""),
            "id": s.get("id", ""),
            "intro": s.get("intro", ""),
            "html": Markup(s.get("html", "")),
        }
        for s in sections
    ]
    block = Markup(summary_html(summary)) if summary else ""
    return template.render(title=title, subtitle=subtitle, footer=footer, sections=secs, summary=block)
