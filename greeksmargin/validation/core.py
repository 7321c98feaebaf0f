"""Common structure of a validation run: one row per case, computed vs expected, passed or not.

The JSON shape is fixed by the published-cases README::

    {"suite": "simm",
     "cases": [{"id": "C165", "computed": {...}, "expected": {...}, "passed": true}],
     "summary": {"passed": 11, "failed": 0}}

A case that cannot be computed carries ``"error": "<message>"`` and counts as failed; the run goes on.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import GreeksMarginError

#: suite name on the command line -> (module in greeksmargin.validation, default folder under validation/cases)
SUITES: dict[str, tuple[str, str]] = {
    "deribit-chain": ("deribit_chain", "deribit_chain"),
    "deribit-pm": ("deribit_pm", "deribit_pm"),
    "derive-pm2": ("derive_pm2", "derive_pm2"),
    "span": ("span", "span"),
    "simm": ("simm", "simm"),
}


@dataclass
class CaseResult:
    """One case: its id, the computed and expected figures, whether it passed, and any error."""

    id: Any
    computed: dict[str, Any]
    expected: dict[str, Any]
    passed: bool
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the published output shape (``detail`` is not part of it)."""
        out: dict[str, Any] = {
            "id": self.id,
            "computed": _clean(self.computed),
            "expected": _clean(self.expected),
            "passed": bool(self.passed),
        }
        if self.error is not None:
            out["error"] = self.error
        return out


@dataclass
class SuiteResult:
    """All cases of one suite run."""

    suite: str
    cases: list[CaseResult]
    source: str = ""
    tolerance: str = ""

    @property
    def n_passed(self) -> int:
        """Number of cases that passed."""
        return sum(1 for c in self.cases if c.passed)

    @property
    def n_failed(self) -> int:
        """Number of cases that failed or could not be computed."""
        return len(self.cases) - self.n_passed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the published output shape."""
        return {
            "suite": self.suite,
            "cases": [c.to_dict() for c in self.cases],
            "summary": {"passed": self.n_passed, "failed": self.n_failed},
        }


def _clean(obj: Any) -> Any:
    """Make figures JSON-safe: numpy scalars to float, non-finite numbers to None."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _clean(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run_suite(suite: str, cases: str | Path) -> SuiteResult:
    """Run the validation suite ``suite`` on the case file (or folder) ``cases``.

    Parameters
    ----------
    suite : str
        One of :data:`SUITES`.
    cases : str or Path
        A case file of the suite's format, or a folder whose files of that format are all run.

    Returns
    -------
    SuiteResult
    """
    if suite not in SUITES:
        raise GreeksMarginError(f"unknown suite '{suite}'; known: {', '.join(SUITES)}")
    module = importlib.import_module(f"{__package__}.{SUITES[suite][0]}")
    return module.run(Path(cases))
