"""Load testing and fault injection for Frontdoor: ``bin/loadtest`` and ``scenarios/``.

Modules, one idea each: ``target`` (where load may go), ``client`` (keep-alive HTTP/1.1 on
gevent sockets), ``schedule`` (open- and closed-loop arrivals), ``mix`` (weighted endpoints,
realistic parameters), ``groups`` (several clients in one run, each its own member, source
address and rate), ``journey`` (device journeys: trips of dependent steps with think
times), ``phase`` (fault timeline -> phases), ``scenario`` (TOML files), ``faults`` (the
admin-API client that applies a timeline), ``histogram`` (HDR adapter),
``threshold`` (pass/fail criteria: parser and evaluator),
``stats`` (per phase/endpoint/second accumulation), ``runner`` (drives a run), ``report``
(JSON and tables), ``plot`` (PNG), ``svg`` and ``html_report`` (the self-contained HTML
page), ``compare`` (two runs, changes beyond noise), ``offline`` (``report`` and ``compare``
on saved JSON), ``recording`` and ``replay`` (captured traffic replayed against one or two
targets, responses diffed), ``cli`` (``main``). Nothing here runs at import time.

Public: ``__all__``: ``main`` and the pieces benchmarks reuse (client, target, histogram) or
a run is made of. A new endpoint of the load mix goes in ``mix.ENDPOINTS``; a new scenario is
a TOML file in ``scenarios/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from orchestrator.loadtest.cli import main
    from orchestrator.loadtest.client import HttpClient, RequestError, Response
    from orchestrator.loadtest.groups import ClientGroup
    from orchestrator.loadtest.histogram import LatencyHistogram
    from orchestrator.loadtest.plot import plot_report
    from orchestrator.loadtest.report import build_report, render_tables
    from orchestrator.loadtest.runner import Runner, RunPlan
    from orchestrator.loadtest.scenario import Scenario, ScenarioError, load_scenario
    from orchestrator.loadtest.stats import Recorder
    from orchestrator.loadtest.target import Target, TargetError, parse_target
    from orchestrator.loadtest.threshold import Threshold, ThresholdError, parse_threshold

__all__ = [
    "ClientGroup",
    "HttpClient",
    "LatencyHistogram",
    "Recorder",
    "RequestError",
    "Response",
    "RunPlan",
    "Runner",
    "Scenario",
    "ScenarioError",
    "Target",
    "TargetError",
    "Threshold",
    "ThresholdError",
    "build_report",
    "load_scenario",
    "main",
    "parse_target",
    "parse_threshold",
    "plot_report",
    "render_tables",
]

# Lazy (PEP 562): ``bin/loadtest`` patches gevent first, but importing the package must not
# bring in gevent, hdrh or matplotlib for a caller that only wants one name.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "cli": ("main",),
            "client": ("HttpClient", "RequestError", "Response"),
            "groups": ("ClientGroup",),
            "histogram": ("LatencyHistogram",),
            "plot": ("plot_report",),
            "report": ("build_report", "render_tables"),
            "runner": ("RunPlan", "Runner"),
            "scenario": ("Scenario", "ScenarioError", "load_scenario"),
            "stats": ("Recorder",),
            "target": ("Target", "TargetError", "parse_target"),
            "threshold": ("Threshold", "ThresholdError", "parse_threshold"),
        },
    )
