"""``bin/loadtest report`` and ``bin/loadtest compare``: work on saved ``--json`` reports,
without sending anything (no gevent, no network).

    bin/loadtest report run.json --html run.html          # the HTML report of a saved run
    bin/loadtest compare before.json after.json           # what changed beyond noise

Exit codes: 0 done (compare: no regression beyond noise), 2 usage error (a file missing or
not a bin/loadtest report), 99 compare flagged a regression (like a failed threshold).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any, TextIO

from orchestrator.loadtest.cli import EXIT_OK, EXIT_REGRESSION, EXIT_USAGE

__all__ = ["load_report", "run_offline"]


class ReportFileError(Exception):
    """A file that is not a readable bin/loadtest ``--json`` report."""


def load_report(path: str) -> dict[str, Any]:
    """A saved report, checked to have what ``report`` and ``compare`` read."""
    try:
        with open(path, encoding="utf-8") as file:  # noqa: PTH123 - plain file
            report = json.load(file)
    except OSError as exc:
        raise ReportFileError(f"{path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ReportFileError(f"{path}: not JSON: {exc}") from exc
    missing = [key for key in ("run", "endpoints", "all", "phases") if key not in report]
    if not isinstance(report, dict) or missing:
        raise ReportFileError(
            f"{path}: not a bin/loadtest --json report (missing {', '.join(missing)})"
        )
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="loadtest", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    report = commands.add_parser("report", help="render a saved --json report")
    report.add_argument("json", metavar="RUN.json", help="a report written by --json")
    report.add_argument("--html", metavar="FILE.html", help="write the self-contained HTML report")
    report.add_argument("--plot", metavar="FILE.png", help="draw latency and throughput")
    compare = commands.add_parser(
        "compare",
        help="compare two saved runs; exit 99 when B regressed beyond noise",
        description="Per endpoint and phase: the change in req/s, p50/p99/p99.9 and error and "
        "degraded rates from A to B, flagged when beyond run-to-run noise (docs/loadtest.md, "
        "Comparing runs). Exit 0: no regression; 99: a regression flagged; 2: bad files.",
    )
    compare.add_argument("a", metavar="A.json", help="the reference run")
    compare.add_argument("b", metavar="B.json", help="the run under test")
    compare.add_argument(
        "--z", type=float, default=3.0, help="two-sided z of every test (default: 3.0)"
    )
    compare.add_argument(
        "--min-change",
        type=float,
        default=10.0,
        metavar="PERCENT",
        help="smallest relative change of a latency or req/s to flag (default: 10)",
    )
    return parser


def run_offline(argv: list[str], out: TextIO) -> int:
    """Run ``report`` or ``compare`` (``argv`` starts with its name); the exit code."""
    import sys

    args = _parser().parse_args(argv)
    try:
        if args.command == "report":
            return _report(args, out)
        return _compare(args, out)
    except ReportFileError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's own error line
        return EXIT_USAGE


def _report(args: argparse.Namespace, out: TextIO) -> int:
    report = load_report(args.json)
    if args.html:
        from orchestrator.loadtest.html_report import write_html

        write_html(report, args.html)
    if args.plot:
        from orchestrator.loadtest.plot import plot_report

        plot_report(report, args.plot)
    if not args.html and not args.plot:
        from orchestrator.loadtest.report import render_tables

        out.write(render_tables(report) + "\n")
    return EXIT_OK


def _compare(args: argparse.Namespace, out: TextIO) -> int:
    from orchestrator.loadtest.compare import compare_reports, render_comparison

    a, b = load_report(args.a), load_report(args.b)
    comparison = compare_reports(a, b, z=args.z, min_change=args.min_change / 100.0)
    out.write(render_comparison(comparison, _label(args.a, a), _label(args.b, b)) + "\n")
    return EXIT_REGRESSION if comparison.regressions else EXIT_OK


def _label(path: str, report: Mapping[str, Any]) -> str:
    run = report["run"]
    return f"{path} ({run['scenario'] or 'ad-hoc run'}, {run['load']}, {run.get('started_at', '')})"
