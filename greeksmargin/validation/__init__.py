"""Adapters from published case formats to the engine, and the common suite runner.

Each suite module ``greeksmargin.validation.<module>`` exposes ``run(path) -> SuiteResult``. The suite
names on the command line map to modules in :data:`SUITES`.
"""

from __future__ import annotations

from greeksmargin.validation.core import SUITES, CaseResult, SuiteResult, Tolerance, run_suite

__all__ = ["SUITES", "CaseResult", "SuiteResult", "Tolerance", "run_suite"]
