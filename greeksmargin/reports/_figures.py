"""Figure helpers shared by the reports: a non-interactive matplotlib figure and its embedding.

Reports are self-contained HTML: each figure is a base64 PNG inside an ``<img>`` tag.
"""

from __future__ import annotations

import base64
import io as _bytesio
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (8, 4)) -> tuple[Any, Any]:
    """A new matplotlib figure and its axes (Agg backend, nothing shown)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, constrained_layout=True)
    return fig, axes


def figure_to_png(fig: Any, dpi: int = 90) -> bytes:
    """Render ``fig`` to PNG bytes and close it."""
    buf = _bytesio.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    plt.close(fig)
    return buf.getvalue()


def figure_to_img_tag(fig: Any, alt: str = "", dpi: int = 90) -> str:
    """Render ``fig`` as an ``<img src="data:image/png;base64,...">`` tag and close it."""
    data = base64.b64encode(figure_to_png(fig, dpi=dpi)).decode("ascii")
    return f'<img alt="{alt}" src="data:image/png;base64,{data}">'
