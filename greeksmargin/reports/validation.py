"""HTML validation report: per suite a table of cases (computed vs expected) and two plots.

The plots are computed against expected (log-log of absolute values, identity line) and the
distribution of relative errors ``|computed - expected| / max(1e-12, |expected|)`` (log10 scale).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..validation.core import SuiteResult
from .html import embed_figure, new_figure


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


def _table(result: SuiteResult) -> str:
    rows = []
    for case in result.cases:
        status = "pass" if case.passed else "fail"
        err = f"<br><em>{html.escape(case.error)}</em>" if case.error else ""
        rows.append(
            f"<tr class='{status}'><td>{html.escape(str(case.id))}</td>"
            f"<td>{_fmt(case.computed)}</td><td>{_fmt(case.expected)}</td>"
            f"<td>{status.upper()}{err}</td></tr>"
        )
    return (
        "<table><thead><tr><th>case</th><th>computed</th><th>expected</th><th>result</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;font-size:12px;margin-bottom:1em}
td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}
tr.fail td{background:#fde2e2} tr.pass td:last-child{color:#1a7f37}
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
        f"<td>{r.n_passed}</td><td>{r.n_failed}</td></tr>"
        for r in results
    )
    body = [
        "<h1>greeksmargin validation report</h1>",
        "<table class='summary'><tr><th>suite</th><th>cases</th><th>passed</th><th>failed</th></tr>",
        summary,
        "</table>",
    ]
    for r in results:
        body.append(f"<h2 id='{r.suite}'>{r.suite}: {r.n_passed} passed, {r.n_failed} failed</h2>")
        body.append(_plots(r))
        body.append(_table(r))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>greeksmargin validation</title>"
        f"<style>{_STYLE}</style></head><body>{''.join(body)}</body></html>"
    )
