"""Write ``tests/pins/regression.json``: today's figures, pinned before the core redesign moved any code.

Run from the repository root: ``python tests/pins/make_pins.py``. The pins hold IM/MM (and isolated IM,
status, currency) of every account of the bundled example book under every shipped model, and every numeric
figure each validation suite computes for its published cases. ``tests/test_regression_pins.py`` compares
the current code with them (1e-12 relative). Regenerate only for a deliberate, reviewed change of figures.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import greeksmargin as gm
from greeksmargin.validation.core import SUITES, run_suite

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).with_name("regression.json")


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_leaves(v, f"{prefix}{k}."))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_leaves(v, f"{prefix}{i}."))
    elif isinstance(obj, bool) or obj is None or isinstance(obj, str):
        out[prefix[:-1]] = obj
    elif isinstance(obj, (int, float)):
        out[prefix[:-1]] = float(obj) if math.isfinite(float(obj)) else None
    elif hasattr(obj, "tolist"):
        out.update(_leaves(obj.tolist(), prefix))
    return out


def model_pins() -> dict[str, Any]:
    book = gm.datasets.load_example_book()
    pins: dict[str, Any] = {}
    for row in gm.list_models(ROOT / "models").itertuples():
        res = gm.compute_margin(book.positions, book.market, row.file, collateral=book.collateral)
        acc = res.accounts.set_index("account")
        cols = [c for c in ("currency", "status", "im", "mm", "isolated_im") if c in acc.columns]
        pins[row.name] = {a: _leaves({c: acc.loc[a, c] for c in cols}) for a in acc.index}
    return pins


def suite_pins_of(name: str) -> dict[str, Any]:
    folder = SUITES[name][1]
    result = run_suite(name, ROOT / "validation" / "cases" / folder)
    return {f"{i:04d} {c.id}": {"status": c.status, **_leaves(c.computed)} for i, c in enumerate(result.cases)}


def suite_pins() -> dict[str, Any]:
    return {name: suite_pins_of(name) for name in SUITES}


if __name__ == "__main__":
    OUT.write_text(json.dumps({"models": model_pins(), "suites": suite_pins()}, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}")
