"""greeksmargin: options-aware, Greeks-based cross-margin.

The public API is re-exported here lazily (importing the package stays cheap)::

    import greeksmargin as gm
    book = gm.datasets.load_example_book()
    greeks = gm.price_positions(book.positions, book.market)
    result = gm.compute_margin(book.positions, book.market, "greeks-default")
"""

from __future__ import annotations

import importlib
from typing import Any

from greeksmargin._version import __version__

_LAZY = {
    "price_positions": "risk.greeks",
    "aggregate_greeks": "risk.aggregation",
    "to_crif": "risk.aggregation",
    "MarketSnapshot": "book.market",
    "load_market": "book.market",
    "load_positions": "book.positions",
    "load_book": "book.book",
    "Book": "book.book",
    "compute_margin": "engine.margin",
    "margin_change": "engine.whatif",
    "max_size": "solvency.sizing",
    "MarginResult": "engine.margin",
    "load_model": "engine.models",
    "list_models": "engine.models",
    "simm_margin": "engine.params_files",
    "simm_by_portfolio": "engine.params_files",
}

_SUBMODULES = {
    "units",
    "errors",
    "io",
    "pricing",
    "book",
    "risk",
    "methodologies",
    "engine",
    "solvency",
    "calibration",
    "validation",
    "reports",
    "datasets",
}

__all__ = sorted(_LAZY) + sorted(_SUBMODULES) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'greeksmargin' has no attribute '{name}'")
