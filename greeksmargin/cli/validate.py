"""``greeksmargin validate SUITE --cases PATH [--json OUT] [--html OUT]`` and ``validate all``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from greeksmargin import io
from greeksmargin.cli import _progress
from greeksmargin.errors import InputError
from greeksmargin.validation.core import SUITES, SuiteResult, run_suite

DEFAULT_REPORTS = Path("validation") / "reports"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``validate`` sub-command."""
    p = sub.add_parser(
        "validate",
        help="run published exchange cases through the engine",
        description="Run a validation suite on a case file of its published format.",
    )
    p.add_argument("suite", choices=[*SUITES, "all"], help="suite name, or 'all' for every suite")
    p.add_argument("--cases", type=Path,
                   help="case file or folder (default: the published cases shipped with greeksmargin, "
                   "validation/cases/<suite>)")
    p.add_argument("--json", type=Path, dest="json_out", help="write the JSON result here")
    p.add_argument("--html", type=Path, dest="html_out", help="write an HTML report here")
    p.add_argument("--quiet", action="store_true", help="print the summary line only")
    p.set_defaults(func=_run)


def _print(result: SuiteResult, quiet: bool) -> None:
    if not quiet:
        for case in result.cases:
            mark = {"passed": "PASS", "failed": "FAIL"}.get(case.status, "NOT CHECKED")
            extra = f"  error: {case.error}" if case.error else ""
            bad = [f"{k} ({v.get('reason', '')})" for k, v in (case.fields or {}).items() if v.get("ok") is False]
            if bad and not case.error:
                extra += "  fields: " + "; ".join(bad)
            print(f"{mark}  {case.id}{extra}")
    print(result.summary_line())


def _run(args: argparse.Namespace) -> int:
    if args.cases is not None and not Path(args.cases).exists():
        raise InputError("no such case file or folder", file=str(args.cases))
    if args.suite == "all":
        root = args.cases or io.shipped_folder("validation/cases")
        results = []
        for name, (_module, folder) in SUITES.items():
            path = Path(root) / folder
            if not path.exists():
                print(f"{name}: no cases under {path}", file=sys.stderr)
                continue
            with _progress.step(f"validation suite {name}"):
                result = run_suite(name, path)
            _print(result, quiet=True)
            results.append(result)
        if not results:
            raise InputError(f"no suite folder ({', '.join(f for _m, f in SUITES.values())}) under the folder",
                             file=str(root))
        out = args.html_out or DEFAULT_REPORTS / "validation.html"
        from greeksmargin.reports.validation import render_validation_report

        io.write_text(render_validation_report(results), out)
        if args.json_out:
            io.write_json({"suites": [r.to_dict() for r in results]}, args.json_out)
        print(f"report: {out}")
        return 0
    path = args.cases or io.shipped_folder("validation/cases") / SUITES[args.suite][1]
    result = run_suite(args.suite, path)
    _print(result, args.quiet)
    if args.json_out:
        io.write_json(result.to_dict(), args.json_out)
    if args.html_out:
        from greeksmargin.reports.validation import render_validation_report

        io.write_text(render_validation_report([result]), args.html_out)
    return 0
