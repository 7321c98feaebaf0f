"""Common structure of a validation run: one row per case, computed vs expected, field by field.

The JSON shape is the published-cases README's, with the per-field comparison added::

    {"suite": "simm",
     "cases": [{"id": "C165", "computed": {...}, "expected": {...}, "passed": true, "status": "passed",
                "fields": {"10d": {"expected": 156000000.0, "computed": 156000000.2, "tolerance": "abs <= 1",
                                   "ok": true}, ...}}],
     "summary": {"passed": 11, "failed": 0, "not_checked": 0}}

Honesty rules, the same for every suite (:class:`CaseResult` applies them; a suite gives ``computed``,
``expected`` and a tolerance rule, :class:`Tolerance` or one per field):

- every expected field gets an entry ``{expected, computed, tolerance, ok, reason?}``; ``ok`` is true /
  false for a *checked* field and null for a field that is not checked, with the ``reason`` (out of the
  suite's checked range, no tolerance rule for it, no expected value); a checked field whose computed value
  is missing or not finite fails with the reason ``not computed``;
- a case ``passed`` only if every checked field is ok and at least one field was checked; a case with no
  field checked is ``not_checked`` (neither passed nor failed); a case with an ``error`` (it could not be
  computed) or any checked field out of tolerance is ``failed``;
- the summary counts ``passed``, ``failed`` and ``not_checked``.

A case that cannot be computed carries ``"error": "<message>"`` and counts as failed; the run goes on.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greeksmargin import io
from greeksmargin.errors import CaseFormatError, GreeksMarginError, InputError

__all__ = ["CASE_ERRORS", "NO_RULE", "SUITES", "CaseResult", "SuiteResult", "Tolerance", "ToleranceRule",
           "case_status", "compare_fields", "run_suite"]

#: suite name on the command line -> (module in greeksmargin.validation, default folder under validation/cases)
SUITES: dict[str, tuple[str, str]] = {
    "deribit-chain": ("deribit_chain", "deribit_chain"),
    "deribit-pm": ("deribit_pm", "deribit_pm"),
    "derive-pm2": ("derive_pm2", "derive_pm2"),
    "span": ("span", "span"),
    "simm": ("simm", "simm"),
    "regt": ("regt", "regt"),
    "pricing": ("pricing", "pricing"),
    "derive-srm": ("derive_srm", "derive_srm"),
}


#: what computing one case may raise: the case gets ``error`` and the run goes on
CASE_ERRORS: tuple[type[Exception], ...] = (GreeksMarginError, ValueError, KeyError, TypeError, ArithmeticError)


@dataclass(frozen=True)
class Tolerance:
    """A per-field pass rule: ``|computed - expected| <= bound``.

    ``kind``: ``"abs"`` (bound = ``value``), ``"rel"`` (bound = ``value x |expected|``), ``"rel_max1"``
    (bound = ``value x max(1, |expected|)``) or ``"exact"`` (computed == expected). ``or_abs`` > 0 also
    passes an absolute error up to it (e.g. the rounding of a published figure). A list value passes when
    it has the expected length and every element passes.

    Parameters
    ----------
    kind : {"abs", "rel", "rel_max1", "exact"}
    value : float
        Tolerance (unitless for relative kinds, units of the field for ``abs``).
    or_abs : float, default 0
        Absolute error that always passes.
    """

    kind: str
    value: float = 0.0
    or_abs: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("abs", "rel", "rel_max1", "exact"):
            raise ValueError(f"unknown tolerance kind {self.kind!r} (abs, rel, rel_max1, exact)")

    def describe(self) -> str:
        """The rule in words, e.g. ``rel <= 0.001 or abs <= 5e-06``."""
        text = {"abs": f"abs <= {self.value:g}", "rel": f"rel <= {self.value:g}",
                "rel_max1": f"abs <= {self.value:g} x max(1, |expected|)", "exact": "exact"}[self.kind]
        return text + (f" or abs <= {self.or_abs:g}" if self.or_abs > 0 else "")

    def _one(self, c: float, e: float) -> bool:
        if self.kind == "exact":
            return c == e
        err = abs(c - e)
        if self.or_abs > 0 and err <= self.or_abs:
            return True
        bound = {"abs": self.value, "rel": self.value * abs(e), "rel_max1": self.value * max(1.0, abs(e))}[self.kind]
        return err <= bound

    def check(self, computed: Any, expected: Any) -> tuple[bool, str | None]:
        """``(ok, reason)`` of one field; ``reason`` says why it failed (None when ok)."""
        comp = computed if isinstance(computed, (list, tuple)) else [computed]
        exp = expected if isinstance(expected, (list, tuple)) else [expected]
        if isinstance(computed, (list, tuple)) != isinstance(expected, (list, tuple)) or len(comp) != len(exp):
            return False, f"shape differs: {len(comp)} computed values for {len(exp)} expected"
        for i, (c, e) in enumerate(zip(comp, exp)):
            cf, ef = _number(c), _number(e)
            if cf is None or not math.isfinite(cf):
                return False, "not computed" + (f" (element {i})" if len(exp) > 1 else "")
            if ef is None:
                return False, "expected value is not a number" + (f" (element {i})" if len(exp) > 1 else "")
            if not self._one(cf, ef):
                err = abs(cf - ef)
                rel = f", rel {err / abs(ef):.3g}" if ef != 0 else ""
                return False, f"out of tolerance: abs error {err:.3g}{rel}" + (
                    f" (element {i})" if len(exp) > 1 else "")
        return True, None


#: a suite's tolerance rule: one for every field, one per field name (fields without one are not checked),
#: or None (no rule: every field is not checked)
ToleranceRule = Tolerance | Mapping[str, Tolerance] | None

NO_RULE = "not checked: no tolerance rule for this field (not part of the suite's pass rule)"


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def compare_fields(
    computed: Mapping[str, Any],
    expected: Mapping[str, Any],
    rule: ToleranceRule,
    *,
    not_checked: str | Mapping[str, str] | None = None,
    error: str | None = None,
) -> dict[str, dict[str, Any]]:
    """The per-field comparison of one case (see the module docstring).

    Parameters
    ----------
    computed, expected : mapping of str -> number or list of numbers
        The case's figures (``computed`` mirrors the keys of ``expected``).
    rule : Tolerance, mapping of str -> Tolerance, or None
        The suite's tolerance rule.
    not_checked : str or mapping of str -> str, optional
        Why fields are not checked although they have a rule (a str: every field; e.g. out of the suite's
        checked range).
    error : str, optional
        The case could not be computed: every field fails with ``not computed: <error>``.

    Returns
    -------
    dict of str -> dict
        ``{field: {"expected", "computed", "tolerance", "ok", "reason"?}}``, in the order of ``expected``.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, top, exp, comp, present in _leaves(expected, computed):
        tol = rule.get(name, rule.get(top)) if isinstance(rule, Mapping) else rule
        entry: dict[str, Any] = {"expected": exp, "computed": comp,
                                 "tolerance": tol.describe() if tol is not None else None, "ok": None}
        skip = (not_checked.get(name, not_checked.get(top)) if isinstance(not_checked, Mapping)
                else not_checked)
        if error is not None:
            entry["ok"], entry["reason"] = False, f"not computed: {error}"
        elif tol is None:
            entry["reason"] = NO_RULE
        elif skip:
            entry["reason"] = skip
        elif exp is None or (not isinstance(exp, (list, tuple)) and _number(exp) is None):
            entry["reason"] = "not checked: the expected value is not a number" if exp is not None else (
                "not checked: no expected value")
        elif not present:
            entry["reason"] = "not checked: not computed (the suite does not compute this figure)"
        else:
            ok, why = tol.check(comp, exp)
            entry["ok"] = ok
            if why is not None:
                entry["reason"] = why
        out[str(name)] = entry
    return out


def _leaves(expected: Mapping[str, Any], computed: Any, prefix: str = "", top: str = "") -> Any:
    """``(name, top-level name, expected, computed, computed present)`` of every leaf; nested objects as ``a.b``."""
    for key, exp in expected.items():
        name = f"{prefix}{key}"
        head = top or str(key)
        present = isinstance(computed, Mapping) and key in computed
        comp = computed.get(key) if present else None
        if isinstance(exp, Mapping):
            yield from _leaves(exp, comp if isinstance(comp, Mapping) else {}, f"{name}.", head)
        else:
            yield name, head, exp, comp, present


def case_status(fields: Mapping[str, Mapping[str, Any]], error: str | None = None) -> str:
    """``"failed"`` (an error or a checked field not ok), ``"not_checked"`` (no field checked) or ``"passed"``."""
    if error is not None:
        return "failed"
    checked = [f["ok"] for f in fields.values() if f.get("ok") is not None]
    if any(not ok for ok in checked):
        return "failed"
    return "passed" if checked else "not_checked"


@dataclass
class CaseResult:
    """One case: its id, the computed and expected figures, the per-field comparison, its status, any error.

    A suite gives ``computed``, ``expected`` and its ``tolerance`` rule (and ``not_checked`` reasons for
    fields it does not check); the fields and the status follow from them (:func:`compare_fields`,
    :func:`case_status`). ``passed`` given by the suite can only make a case fail (a check the fields do not
    express, e.g. a shape); a case passes only when every checked field is ok and at least one is checked.
    Without a tolerance rule no field is checked and the case is ``not_checked``.
    """

    id: Any
    computed: dict[str, Any]
    expected: dict[str, Any]
    passed: bool | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    tolerance: Any = None
    not_checked: str | Mapping[str, str] | None = None
    fields: dict[str, dict[str, Any]] | None = None
    status: str = ""

    def __post_init__(self) -> None:
        if self.fields is None:
            exp = self.expected if isinstance(self.expected, Mapping) else {}
            comp = self.computed if isinstance(self.computed, Mapping) else {}
            self.fields = compare_fields(comp, exp, self.tolerance, not_checked=self.not_checked, error=self.error)
        status = case_status(self.fields, self.error)
        if status == "passed" and self.passed is False:
            status = "failed"
        self.status = status
        self.passed = status == "passed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the published keys (id, computed, expected, passed, error) plus status and fields."""
        out: dict[str, Any] = {
            "id": self.id,
            "computed": _clean(self.computed),
            "expected": _clean(self.expected),
            "passed": bool(self.passed),
            "status": self.status,
            "fields": _clean(self.fields or {}),
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
        """Number of cases that passed (every checked field ok, at least one checked)."""
        return sum(1 for c in self.cases if c.status == "passed")

    @property
    def n_failed(self) -> int:
        """Number of cases that failed (a checked field out of tolerance) or could not be computed."""
        return sum(1 for c in self.cases if c.status == "failed")

    @property
    def n_not_checked(self) -> int:
        """Number of cases with no field checked (neither passed nor failed)."""
        return sum(1 for c in self.cases if c.status == "not_checked")

    def summary_line(self) -> str:
        """``suite: P passed, F failed, N not checked``."""
        return f"{self.suite}: {self.n_passed} passed, {self.n_failed} failed, {self.n_not_checked} not checked"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict in the published output shape, with ``not_checked`` in the summary."""
        return {
            "suite": self.suite,
            "cases": [c.to_dict() for c in self.cases],
            "summary": {"passed": self.n_passed, "failed": self.n_failed, "not_checked": self.n_not_checked},
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
    """Check the JSON case files of ``path`` against the suite's schema (case_schemas.CASE_SCHEMAS)."""
    from greeksmargin.validation.case_schemas import CASE_SCHEMAS, check_case_file

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

