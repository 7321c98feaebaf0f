"""HTML validation report: per suite a table of cases, field by field, and two plots.

Each case row holds its per-field table (expected, computed, tolerance, ok / NO / not checked, reason).

The plots are computed against expected (log-log of absolute values, identity line) and the
distribution of relative errors ``|computed - expected| / max(1e-12, |expected|)`` (log10 scale).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from greeksmargin.reports.html import embed_figure, new_figure
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
    """All (computed, expected) numeric pairs of a suite, shape (n_pairs, 2)."""
    pairs = [p for c in result.cases for p in _numeric_pairs(c.computed, c.expected)]
    return np.array(pairs, dtype=float).reshape(-1, 2)


def _plots(result: SuiteResult) -> str:
    pairs = suite_pairs(result)
    if len(pairs) == 0:
        return "<p>No numeric figures to plot.</p>"
    fig, (ax1, ax2) = new_figure(ncols=2, figsize=(10, 4))
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
    return embed_figure(fig, alt=f"{result.suite} computed vs expected and error distribution")


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


_CLASS = {"passed": "pass", "failed": "fail", "not_checked": "skip"}
_LABEL = {"passed": "PASS", "failed": "FAIL", "not_checked": "NOT CHECKED"}


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


def _table(result: SuiteResult) -> str:
    rows = []
    for case in result.cases:
        status = case.status or ("passed" if case.passed else "failed")
        err = f"<br><em>{html.escape(case.error)}</em>" if case.error else ""
        rows.append(
            f"<tr class='{_CLASS.get(status, 'fail')}'><td>{html.escape(str(case.id))}</td>"
            f"<td>{_fields_table(case.fields or {})}</td>"
            f"<td>{_LABEL.get(status, status)}{err}</td></tr>"
        )
    return (
        "<table><thead><tr><th>case</th><th>fields (expected, computed, tolerance, ok, reason)</th>"
        f"<th>result</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;font-size:12px;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
tr.fail td{background:#fde2e2} tr.pass td:last-child{color:#1a7f37} tr.skip td{background:#f3f3f3;color:#555}
table.fields{margin:0;font-size:11px}
.summary td{font-size:14px}
"""


def render_validation_report(results: Sequence[SuiteResult] | Iterable[SuiteResult]) -> str:
    """Render a self-contained HTML validation report.

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
    summary = "".join(
        f"<tr><td><a href='#{r.suite}'>{r.suite}</a></td><td>{len(r.cases)}</td>"
        f"<td>{r.n_passed}</td><td>{r.n_failed}</td><td>{r.n_not_checked}</td></tr>"
        for r in results
    )
    body = [
        "<h1>greeksmargin validation report</h1>",
        "<p>A case passes only when every checked field is within its tolerance and at least one field is "
        "checked; a case with no field checked is <em>not checked</em>, never counted as passed.</p>",
        "<table class='summary'><tr><th>suite</th><th>cases</th><th>passed</th><th>failed</th>"
        "<th>not checked</th></tr>",
        summary,
        "</table>",
    ]
    for r in results:
        body.append(f"<h2 id='{r.suite}'>{html.escape(r.summary_line())}</h2>")
        if r.tolerance:
            body.append(f"<p>Pass rule: {html.escape(r.tolerance)}</p>")
        body.append(_plots(r))
        body.append(_table(r))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>greeksmargin validation</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
