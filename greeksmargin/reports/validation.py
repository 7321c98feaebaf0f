"""HTML validation report: a summary, then per suite two plots and the cases, checked apart from not checked.

Failed cases show their per-field table (expected, computed, tolerance, ok / NO / not checked, reason);
passed cases one line each; not-checked cases one line each with the reason, folded, and left out of the plots.

The plots are computed against expected (log-log of absolute values, identity line) and the
distribution of relative errors ``|computed - expected| / max(1e-12, |expected|)`` (log10 scale).
"""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from greeksmargin.reports.html import embed_figure, new_figure, render_page, table_html
from greeksmargin.validation.core import SuiteResult


def _numeric_pairs(computed: Any, expected: Any) -> list[tuple[float, float]]:
    """Flatten matching numeric leaves of two nested structures into (computed, expected) pairs."""
    out: list[tuple[float, float]] = []
    if isinstance(expected, dict) and isinstance(computed, dict):
        for key, exp in expected.items():
            if key in computed:
                out.extend(_numeric_pairs(computed[key], exp))
    elif isinstance(expected, (list, tuple)) and isinstance(computed, (list, tuple)):
        for c, e in zip(computed, expected, strict=False):
            out.extend(_numeric_pairs(c, e))
    elif isinstance(expected, (int, float)) and isinstance(computed, (int, float)):
        if not isinstance(expected, bool) and math.isfinite(float(computed)) and math.isfinite(float(expected)):
            out.append((float(computed), float(expected)))
    return out


def suite_pairs(result: SuiteResult) -> np.ndarray:
    """The (computed, expected) numeric pairs of a suite's checked fields, shape (n_pairs, 2).

    A case with a per-field table contributes only the fields that were checked (``ok`` is True or False);
    a case without one contributes every matching numeric leaf.
    """
    pairs: list[tuple[float, float]] = []
    for c in result.cases:
        fields = c.fields or {}
        if fields:
            for f in fields.values():
                if f.get("ok") is not None:
                    pairs.extend(_numeric_pairs(f.get("computed"), f.get("expected")))
        else:
            pairs.extend(_numeric_pairs(c.computed, c.expected))
    return np.array(pairs, dtype=float).reshape(-1, 2)


def _plots(result: SuiteResult) -> str:
    pairs = suite_pairs(result)
    if len(pairs) == 0:
        return "<p>No numeric figures to plot.</p>"
    fig, (ax1, ax2) = new_figure(ncols=2, figsize=(9, 3.3))
    c, e = np.abs(pairs[:, 0]), np.abs(pairs[:, 1])
    keep = (c > 0) & (e > 0)
    ax1.loglog(e[keep], c[keep], ".", alpha=0.6)
    if keep.any():
        lo, hi = min(e[keep].min(), c[keep].min()), max(e[keep].max(), c[keep].max())
        ax1.loglog([lo, hi], [lo, hi], "k--", lw=0.8, label="computed = expected")
        ax1.legend(loc="upper left")
    ax1.set_xlabel("|expected|")
    ax1.set_ylabel("|computed|")
    ax1.set_title(f"{result.suite}: computed against expected")
    rel = np.abs(pairs[:, 0] - pairs[:, 1]) / np.maximum(1e-12, np.abs(pairs[:, 1]))
    ax2.hist(np.log10(np.maximum(rel, 1e-17)), bins=40)
    ax2.set_xlabel("log10 relative error (exact matches at -17)")
    ax2.set_ylabel("figures")
    ax2.set_title("error distribution")
    return embed_figure(fig, alt=f"{result.suite} computed vs expected and error distribution", dpi=72)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.10g}"
    if isinstance(value, dict):
        return "<br>".join(f"{html.escape(str(k))}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if len(value) > 6:
            return f"[{', '.join(_fmt(v) for v in value[:6])}, ... ({len(value)} values)]"
        return f"[{', '.join(_fmt(v) for v in value)}]"
    return html.escape(str(value))




def _fields_table(fields: dict[str, dict[str, Any]]) -> str:
    """One row per field: expected, computed, tolerance, ok (yes / NO / not checked), reason."""
    rows = []
    for name, f in fields.items():
        ok = f.get("ok")
        mark, cls = ("ok", "pass") if ok is True else ("NO", "fail") if ok is False else ("not checked", "skip")
        rows.append(
            f"<tr class='{cls}'><td>{html.escape(name)}</td><td>{_fmt(f.get('expected'))}</td>"
            f"<td>{_fmt(f.get('computed'))}</td><td>{html.escape(str(f.get('tolerance') or ''))}</td>"
            f"<td>{mark}</td><td>{html.escape(str(f.get('reason', '')))}</td></tr>"
        )
    return (
        "<table class='fields'><tr><th>field</th><th>expected</th><th>computed</th><th>tolerance</th>"
        f"<th>ok</th><th>reason</th></tr>{''.join(rows)}</table>"
    )


def _case_rows(cases: Sequence[Any]) -> pd.DataFrame:
    """One compact row per case: id, fields checked / ok / not checked, the reason a case was not checked."""
    rows = []
    for case in cases:
        f = case.fields or {}
        checked = [k for k, v in f.items() if v.get("ok") is not None]
        skipped = [k for k, v in f.items() if v.get("ok") is None]
        reasons = sorted({str(v.get("reason", "")) for v in f.values() if v.get("ok") is None and v.get("reason")})
        rows.append({"case": str(case.id), "fields_checked": len(checked),
                     "fields_ok": sum(1 for k in checked if f[k].get("ok") is True),
                     "fields_not_checked": len(skipped),
                     "why not checked": (case.error or "; ".join(reasons))[:200]})
    return pd.DataFrame(rows, columns=["case", "fields_checked", "fields_ok", "fields_not_checked", "why not checked"])


def render_validation_report(results: Sequence[SuiteResult] | Iterable[SuiteResult]) -> str:
    """Render a self-contained HTML validation report.

    Checked cases (passed, failed) and not-checked cases are drawn apart: failed cases first with every
    field (expected, computed, tolerance, reason), passed cases one line each, not-checked cases one line
    each with the reason, folded. Plots use only checked figures.

    Parameters
    ----------
    results : sequence of SuiteResult
        One entry per suite run.

    Returns
    -------
    str
        The HTML page (figures embedded as base64 PNG).
    """
    results = list(results)
    counts = pd.DataFrame([{"suite": r.suite, "cases": len(r.cases), "passed": r.n_passed, "failed": r.n_failed,
                            "not checked": r.n_not_checked} for r in results])
    n_pass = int(counts["passed"].sum()) if len(counts) else 0
    n_fail = int(counts["failed"].sum()) if len(counts) else 0
    n_nc = int(counts["not checked"].sum()) if len(counts) else 0
    summary = [("suites", ", ".join(r.suite for r in results)),
               ("checked cases", f"{n_pass + n_fail:,d}: {n_pass:,d} passed, {n_fail:,d} failed"),
               ("not checked", f"{n_nc:,d} (no field could be compared; never counted as passed)"),
               ("suites with failures", ", ".join(r.suite for r in results if r.n_failed) or "none")]
    sections: list[dict[str, Any]] = [{
        "title": "Suites", "id": "suites", "html": table_html(counts),
        "intro": "A case passes only when every checked field is within its tolerance and at least one field is "
                 "checked; a case with no field checked is not checked, never counted as passed."}]
    for r in results:
        status = {c.id: (c.status or ("passed" if c.passed else "failed")) for c in r.cases}
        failed = [c for c in r.cases if status[c.id] == "failed"]
        passed = [c for c in r.cases if status[c.id] == "passed"]
        skipped = [c for c in r.cases if status[c.id] not in ("passed", "failed")]
        parts = [_plots(dataclasses.replace(r, cases=failed + passed))]  # checked figures only
        if failed:
            parts.append("<p class='caption'>Failed cases</p>" + _table_failed(failed))
        if passed:
            parts.append(table_html(_case_rows(passed).drop(columns="why not checked"),
                                    caption=f"Passed cases ({len(passed):,d})", max_rows=2000))
        if skipped:
            parts.append(f"<details><summary>Not checked ({len(skipped):,d}): no field compared</summary>"
                         + table_html(_case_rows(skipped), max_rows=2000) + "</details>")
        sections.append({"title": r.summary_line(), "id": r.suite, "html": "".join(parts),
                         "intro": f"Pass rule: {r.tolerance}" if r.tolerance else ""})
    return render_page("greeksmargin validation report", sections, summary=summary,
                       subtitle="Published exchange cases run through the engine")


def _table_failed(cases: Sequence[Any]) -> str:
    rows = []
    for case in cases:
        err = f"<br><em>{html.escape(case.error)}</em>" if case.error else ""
        rows.append(f"<tr><td>{html.escape(str(case.id))}{err}</td><td>{_fields_table(case.fields or {})}</td></tr>")
    return ("<div class='tablebox'><table class='data'><thead><tr><th>case</th><th>fields (expected, computed, "
            f"tolerance, ok, reason)</th></tr></thead><tbody>{''.join(rows)}</tbody></table></div>")
