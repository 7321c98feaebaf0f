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

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["embed_figure", "escape", "figure_to_png", "new_figure", "render_page", "table_html"]

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


def figure_to_png(fig: Any, dpi: int = 90) -> bytes:
    """Render ``fig`` to PNG bytes and close it."""
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


def table_html(df: pd.DataFrame, *, float_format: str = "{:,.6g}", index: bool = False, max_rows: int = 500) -> str:
    """A DataFrame as an HTML ``<table class="data">`` (numbers formatted, at most ``max_rows`` rows)."""
    shown = df.head(max_rows)
    out = shown.to_html(
        index=index,
        classes="data",
        border=0,
        na_rep="",
        float_format=lambda x: float_format.format(x),
        escape=True,
    )
    if len(df) > max_rows:
        out += f"<p class='note'>{len(df) - max_rows} more rows not shown.</p>"
    return out


def render_page(
    title: str,
    sections: Sequence[Mapping[str, Any]],
    *,
    subtitle: str = "",
    footer: str = "",
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
    return template.render(title=title, subtitle=subtitle, footer=footer, sections=secs)
