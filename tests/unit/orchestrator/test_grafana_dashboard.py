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
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import load_settings
from orchestrator.ops.metrics import MetricNames, StatKind

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "frontdoor.json"

# The statsd settings docs/alerts.md assumes: percentThreshold [90, 99].
PERCENT_THRESHOLDS = ("90", "99")
# What statsd's graphite backend writes under stats.timers.N (lib/process_metrics.js).
TIMER_STATS = re.compile(
    r"count|count_ps|lower|upper|mean|median|std|sum|sum_squares"
    rf"|(?:count|mean|upper|sum|sum_squares)_(?:{'|'.join(PERCENT_THRESHOLDS)})"
)
_LITERAL = re.compile(r"-?\d+(?:\.\d+)?|true|false|True|False|None")
_FUNCTION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
# The Graphite functions the dashboard may use (graphite-web 1.1): a typo fails here.
GRAPHITE_FUNCTIONS = frozenset(
    {
        "aliasByNode",
        "aliasSub",
        "asPercent",
        "groupByNodes",
        "maxSeries",
        "movingSum",
        "sumSeries",
    }
)


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


def metric_paths(expression: str) -> list[str]:
    """The path expressions of a Graphite target: what is left once the function names,
    quoted strings and numbers are taken out."""
    paths: list[str] = []
    i, n = 0, len(expression)
    while i < n:
        char = expression[i]
        if char in " ,()":
            i += 1
        elif char in "'\"":
            end = expression.index(char, i + 1)
            i = end + 1
        else:
            start, depth = i, 0
            while i < n and (depth or expression[i] not in " ,()"):
                depth += {"{": 1, "}": -1}.get(expression[i], 0)
                i += 1
            word = expression[start:i]
            if expression[i:].lstrip().startswith("("):
                assert _FUNCTION.fullmatch(word), f"bad function name {word!r}"
                assert word in GRAPHITE_FUNCTIONS, f"unexpected Graphite function {word}"
            elif not _LITERAL.fullmatch(word):
                paths.append(word)
    return paths


def substitute(path: str, values: Mapping[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        assert name in values, f"{path}: ${name} is not a template variable"
        return values[name]

    return _VARIABLE.sub(value, path)


def expand_braces(path: str) -> list[str]:
    """``a.{b,c}.d`` -> ``a.b.d``, ``a.c.d`` (Graphite's braces do not nest)."""
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return [p for alt in match.group(1).split(",") for p in expand_braces(head + alt + tail)]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A Graphite glob (``*``, ``?``, ``[...]``; braces already expanded) as a regex."""
    parts = re.split(r"(\*|\?|\[[^\]]*\])", pattern)
    out = []
    for part in parts:
        if part == "*":
            out.append(r"[^.]*")
        elif part == "?":
            out.append(r"[^.]")
        elif part.startswith("[") and part.endswith("]"):
            out.append(part)
        else:
            out.append(re.escape(part))
    return re.compile("".join(out))


def statsd_name(path: str) -> tuple[StatKind, str]:
    """The statsd type and the Frontdoor name (a glob) a Graphite path reads."""
    if path.startswith("stats_counts."):
        return StatKind.COUNTER, path.removeprefix("stats_counts.")
    if path.startswith("stats.timers."):
        name, _, stat = path.removeprefix("stats.timers.").rpartition(".")
        assert TIMER_STATS.fullmatch(stat), f"{path}: statsd writes no timer stat {stat!r}"
        return StatKind.TIMER, name
    if path.startswith("stats.gauges."):
        return StatKind.GAUGE, path.removeprefix("stats.gauges.")
    assert not path.startswith(("stats.counters.", "stats.sets.")), (
        f"{path}: not the legacy namespace (legacyNamespace: true) the dashboard assumes"
    )
    assert path.startswith("stats."), f"{path}: not under a statsd graphite namespace"
    return StatKind.COUNTER, path.removeprefix("stats.")


def variable_values(dashboard: Mapping[str, Any]) -> dict[str, str]:
    """``$prefix`` -> its default; every other query variable -> ``*``."""
    values = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "textbox":
            values[variable["name"]] = variable["query"]
        elif variable["type"] == "query":
            values[variable["name"]] = "*"
    return values


def catalogue(prefix: str) -> dict[str, StatKind]:
    from backends.simulated.reference import SERVICES as BACKEND_NAMES
    from orchestrator.runtime import endpoints_for

    settings = load_settings(environ={})
    return MetricNames(prefix, endpoints_for(settings.server), BACKEND_NAMES).catalogue()


def unknown_paths(
    expression: str, values: Mapping[str, str], names: Mapping[str, StatKind]
) -> list[str]:
    """The paths of a target that no emitted name of the right type matches."""
    missing = []
    for path in metric_paths(expression):
        kind, name = statsd_name(substitute(path, values))
        for alternative in expand_braces(name):
            regex = glob_regex(alternative)
            if not any(k is kind and regex.fullmatch(n) for n, k in names.items()):
                missing.append(f"{path} ({kind.name.lower()} {alternative})")
    return missing


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
