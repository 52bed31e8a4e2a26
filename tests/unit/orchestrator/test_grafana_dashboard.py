"""docs/grafana/frontdoor.json: a Grafana dashboard whose every Graphite query names a metric
Frontdoor emits, with the right statsd type.

A query's metric paths are found by stripping its Graphite functions (their names, quoted
strings and numbers); the template variables are replaced (``$prefix`` by its default,
the others by ``*``); the statsd graphite backend's namespace (``legacyNamespace: true``,
its default) gives the statsd type and, for a timer, the statistic leaf:

=====================================  =======  =========================================
Graphite path                          type     Frontdoor name
=====================================  =======  =========================================
``stats_counts.N``                     counter  ``N`` (count per flush)
``stats.timers.N.<stat>``              timer    ``N`` (``<stat>``: median, upper_99, ...)
``stats.gauges.N``                     gauge    ``N``
``stats.N``                            counter  ``N`` (per second)
=====================================  =======  =========================================

Each brace alternative (``{2xx,4xx}``) must match, as a Graphite glob, at least one name
of that type in ``MetricNames(...).catalogue()`` built from the shipped endpoints and
backends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from graphite_paths import (
    catalogue,
    expand_braces,
    glob_regex,
    metric_paths,
    statsd_name,
    substitute,
    unknown_paths,
)

from orchestrator.ops.metrics import StatKind

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "frontdoor.json"


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return data


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels", []))


def graphite_targets(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title, target expression) for every query of every panel."""
    return [
        (panel["title"], target["target"])
        for panel in all_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """``$prefix`` -> its default; every other query variable -> ``*``."""
    values = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "textbox":
            values[variable["name"]] = variable["query"]
        elif variable["type"] == "query":
            values[variable["name"]] = "*"
    return values


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


@pytest.fixture(scope="module")
def names(dashboard: dict[str, Any]) -> dict[str, StatKind]:
    return catalogue(variable_values(dashboard)["prefix"])


def test_is_a_grafana_dashboard_on_a_graphite_datasource(dashboard):
    """schemaVersion 39, timeseries/stat panels, every query on the $datasource variable."""
    assert dashboard["schemaVersion"] >= 39
    assert dashboard["uid"]
    assert dashboard["title"] == "Frontdoor"
    assert "legacyNamespace" in dashboard["description"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "graphite"
    assert variables["prefix"]["query"] == "frontdoor"
    for name in ("backend", "api", "endpoint"):
        assert variables[name]["type"] == "query"
        assert variables[name]["allValue"] == "*"
    panels = list(all_panels(dashboard["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        assert panel["type"] in {"row", "timeseries", "stat"}, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert panel["datasource"] == {"type": "graphite", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]


def test_covers_the_live_pages_panels(dashboard):
    """Every figure of the live page (orchestrator/ops/dashboard) that statsd carries."""
    queries = " ".join(target for _, target in graphite_targets(dashboard))
    for needle in (
        "backend.$backend.breaker_open",
        "backend.$backend.{success,failure,timeout,rejected,short_circuited}",
        "backend.$backend.timeout",
        "backend.$backend.rejected",
        "backend.$backend.short_circuited",
        "backend.$backend.fallback",
        "backend.$backend.inflight",
        "backend.$backend.latency.median",
        "backend.$backend.latency.upper_99",
        "endpoint.$api.$endpoint.status.{2xx,4xx,5xx}",
        "endpoint.$api.$endpoint.status.5xx",
        "endpoint.$api.$endpoint.degraded",
        "endpoint.$api.$endpoint.latency.median",
        "endpoint.$api.$endpoint.latency.upper_99",
        "$prefix.frontend.inflight",
        "$prefix.frontend.shed",
    ):
        assert needle in queries, needle


def test_every_query_names_a_metric_frontdoor_emits(dashboard, names):
    """Each path, braces expanded, matches an emitted name of its statsd type."""
    values = variable_values(dashboard)
    targets = graphite_targets(dashboard)
    assert len(targets) >= 20
    missing = [
        f"{title}: {path}"
        for title, target in targets
        for path in unknown_paths(target, values, names)
    ]
    assert not missing, "queries naming no metric Frontdoor emits:\n" + "\n".join(missing)


def test_template_variable_queries_name_emitted_metrics(dashboard, names):
    """``stats.gauges.$prefix.backend.*`` etc. are node prefixes of emitted names."""
    values = variable_values(dashboard)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        kind, name = statsd_name(substitute(variable["query"], values))
        regex = glob_regex(name)
        prefixes = {
            ".".join(n.split(".")[:depth])
            for n, k in names.items()
            if k is kind
            for depth in range(1, n.count(".") + 2)
        }
        assert any(regex.fullmatch(p) for p in prefixes), variable["name"]


@pytest.mark.parametrize(
    "target",
    [
        "sumSeries(stats_counts.$prefix.backend.$backend.capacity)",  # no such metric
        "stats.gauges.$prefix.backend.$backend.latency",  # a timer read as a gauge
        "stats.timers.$prefix.backend.$backend.breaker_open.median",  # a gauge as a timer
        "stats_counts.$prefix.endpoint.$api.$endpoint.status.{2xx,3xx}",  # no 3xx
        "stats.timers.$prefix.endpoint.$api.$endpoint.latency.upper_95",  # no p95
        "stats.counters.$prefix.frontend.shed.count",  # not the legacy namespace
    ],
)
def test_the_check_refuses_a_metric_frontdoor_does_not_emit(dashboard, names, target):
    """The check itself: wrong names, types, timer stats or namespaces fail it."""
    values = variable_values(dashboard)
    try:
        missing = unknown_paths(target, values, names)
    except AssertionError:
        return
    assert missing, target


def test_path_extraction_strips_functions_strings_and_numbers():
    """Only the metric paths of a target are left."""
    target = (
        "aliasByNode(asPercent(groupByNodes(stats_counts.a.{b,c}.d, 'sum', -2), "
        "groupByNodes(stats.e.*, 'sum', -2), 0), 0)"
    )
    assert metric_paths(target) == ["stats_counts.a.{b,c}.d", "stats.e.*"]
    assert metric_paths("aliasSub(stats.gauges.x, '$', ' in use')") == ["stats.gauges.x"]
    assert expand_braces("a.{b,c}.{d,e}") == ["a.b.d", "a.b.e", "a.c.d", "a.c.e"]
    assert substitute("x.${prefix}.[[b]].$c", {"prefix": "p", "b": "*", "c": "*"}) == "x.p.*.*"
