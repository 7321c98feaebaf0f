"""Any shipped model on a positions book: natively through ``compute_margin``, otherwise its book adapter."""

from __future__ import annotations

from typing import Any

from greeksmargin.engine.adapter_dispatch import DISPATCH, margin_by_methodology
from greeksmargin.engine.margin import compute_margin
from greeksmargin.engine.models import list_models, load_model

__all__ = ["run_model", "runnable_models"]


def run_model(positions: Any, market: Any, model: Any, **options: Any) -> Any:
    """Margin of a book under any shipped model: ``compute_margin`` if native, else the adapter.

    Returns
    -------
    MarginResult or AdapterMarginResult
        Both have ``.accounts`` (same leading columns) and ``.components`` (same tidy columns).
    """
    m = load_model(model)
    if m.runnable:
        return compute_margin(positions, market, m, errors="collect")
    return margin_by_methodology(positions, market, m, **options)


def runnable_models() -> list[str]:
    """Names of the shipped models runnable on a positions book (natively or through an adapter)."""
    df = list_models()
    keep = df["runnable"].astype(bool) | df["methodology"].isin(list(DISPATCH))
    return list(df.loc[keep, "name"])
