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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import io
from ..errors import CaseFormatError, GreeksMarginError, InputError

#: suite name on the command line -> (module in greeksmargin.validation, default folder under validation/cases)
SUITES: dict[str, tuple[str, str]] = {
    "deribit-chain": ("deribit_chain", "deribit_chain"),
    "deribit-pm": ("deribit_pm", "deribit_pm"),
    "derive-pm2": ("derive_pm2", "derive_pm2"),
    "span": ("span", "span"),
    "simm": ("simm", "simm"),
}


#: what computing one case may raise: the case gets ``error`` and the run goes on
CASE_ERRORS: tuple[type[Exception], ...] = (GreeksMarginError, ValueError, KeyError, TypeError, ArithmeticError)


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
    _check_schema(suite, Path(cases))
    module = importlib.import_module(f"{__package__}.{SUITES[suite][0]}")
    return module.run(Path(cases))


def _check_schema(suite: str, path: Path) -> None:
    """Check the JSON case files of ``path`` against the suite's schema (greeksmargin.schemas.CASE_SCHEMAS)."""
    from ..schemas import CASE_SCHEMAS, check_case_file

    if suite not in CASE_SCHEMAS:
        return
    if not path.is_dir():
        check_case_file(suite, read_case_json(path), str(path))
        return
    shape = CASE_SCHEMAS[suite][1]
    for file in iter_case_files(path, "*.json"):
        doc = read_case_json(file)
        if (shape == "list" and isinstance(doc, list)) or (shape == "object" and isinstance(doc, dict)
                                                             and "sensitivities" in doc):
            check_case_file(suite, doc, str(file))


def iter_case_files(path: Path, pattern: str) -> list[Path]:
    """``[path]`` for a file; the sorted files of the folder ``path`` matching the glob ``pattern`` otherwise."""
    path = Path(path)
    return io.list_files(path, pattern) if path.is_dir() else [path]


def read_case_json(file: Path) -> Any:
    """The JSON document of a case file; unreadable JSON is a :class:`CaseFormatError` naming the file."""
    try:
        return io.read_json(file)
    except CaseFormatError:
        raise
    except InputError as exc:
        raise CaseFormatError(f"not a JSON case file: {exc.reason}", file=str(file), row=exc.row) from exc


def is_case_list(doc: Any, keys: Iterable[str]) -> bool:
    """Whether ``doc`` is a JSON list with at least one case object holding every key of ``keys``."""
    return isinstance(doc, list) and any(isinstance(c, dict) and all(k in c for k in keys) for c in doc)


def check_case_list(doc: Any, file: Path, what: str, keys: Iterable[str]) -> list[dict[str, Any]]:
    """The cases of a JSON list of ``what`` cases, or a :class:`CaseFormatError` naming the file and the key.

    Every item must be an object and each key of ``keys`` must appear in at least one case.
    """
    if not isinstance(doc, list):
        raise CaseFormatError(f"expected a JSON list of {what} cases", file=str(file))
    for i, case in enumerate(doc):
        if not isinstance(case, dict):
            raise CaseFormatError("a case must be an object", file=str(file), row=i)
    for key in keys:
        if doc and not any(key in c for c in doc):
            raise CaseFormatError(f"missing key '{key}'", file=str(file), row=0, column=key)
    return doc


def load_case_files(
    path: Path,
    is_case_file: Callable[[Any], bool],
    check: Callable[[Any, Path], Any],
    missing: str,
    column: str,
) -> list[tuple[Path, Any]]:
    """``(file, checked document)`` of a JSON case file, or of every ``*.json`` file of the format in a folder.

    Parameters
    ----------
    path : Path
        A case file (always checked) or a folder (files for which ``is_case_file(doc)`` is false are skipped).
    is_case_file : callable
        ``is_case_file(doc) -> bool``: whether a folder's document is of the suite's format.
    check : callable
        ``check(doc, file)`` returns the document as the suite runs it, or raises :class:`CaseFormatError`.
    missing : str
        Description of the format in the error raised when a folder holds no file of it.
    column : str
        Key named by that error.

    Returns
    -------
    list of (Path, object)
    """
    path = Path(path)
    if not path.is_dir():
        return [(path, check(read_case_json(path), path))]
    out = []
    for file in iter_case_files(path, "*.json"):
        doc = read_case_json(file)
        if is_case_file(doc):
            out.append((file, check(doc, file)))
    if not out:
        raise CaseFormatError(f"no {missing} in folder", file=str(path), column=column)
    return out


def require_keys(case: dict[str, Any], keys: Iterable[str], cid: Any) -> None:
    """Raise a :class:`CaseFormatError` naming the first key of ``keys`` missing from ``case``."""
    for key in keys:
        if key not in case:
            raise CaseFormatError(f"case {cid}: missing key '{key}'", column=key)


def run_guarded(cid: Any, expected: Any, compute: Callable[[], CaseResult]) -> CaseResult:
    """``compute()``, or a failed :class:`CaseResult` carrying the error when it raises one of :data:`CASE_ERRORS`."""
    try:
        return compute()
    except CASE_ERRORS as exc:
        return CaseResult(cid, {}, expected if isinstance(expected, dict) else {}, False, error=str(exc))
