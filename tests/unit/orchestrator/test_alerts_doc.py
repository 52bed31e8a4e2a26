"""docs/alerts.md speaks of the metrics Frontdoor emits, from the one source of their names
(``MetricNames``, orchestrator/ops/metrics.py), as the Grafana dashboard does
(test_grafana_dashboard.py) and the live page does (its ``statsd`` names): its table of
names is the whole catalogue, no more and no less; every rule's Graphite target names
emitted metrics of the right statsd type; and its thresholds are the code's deadlines and
timeouts.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from graphite_paths import catalogue, expand_braces, glob_regex, unknown_paths

from orchestrator.config import load_settings
from orchestrator.ops.metrics import StatKind
from orchestrator.runtime import endpoints_for

DOC = Path(__file__).resolve().parents[3] / "docs" / "alerts.md"
PREFIX = "frontdoor"
_NAME_ROW = re.compile(r"`(frontdoor\.[^`]+)` \((counter|timer|gauge)")
_PLACEHOLDER = re.compile(r"\{(\w+)\}|<(\w+)>")
_KINDS = {"counter": StatKind.COUNTER, "timer": StatKind.TIMER, "gauge": StatKind.GAUGE}


@pytest.fixture(scope="module")
def doc() -> str:
    return DOC.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def names() -> dict[str, StatKind]:
    return catalogue(PREFIX)


def documented_names(doc: str) -> list[tuple[StatKind, re.Pattern[str]]]:
    """The names table: each name with its placeholders (``{api}``, ``<code>``) as globs."""
    found = []
    for name, kind in _NAME_ROW.findall(doc):
        glob = _PLACEHOLDER.sub("*", name)
        found.extend((_KINDS[kind], glob_regex(path)) for path in expand_braces(glob))
    return found


def graphite_targets(doc: str) -> list[str]:
    """Every Graphite target in the text: backticked ones and the lines of code blocks
    that read a statsd path (``{team}``-style placeholders become ``*``)."""
    blocks = re.findall(r"```\w*\n(.*?)```", doc, flags=re.DOTALL)
    spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", doc, flags=re.DOTALL))
    lines = [line for block in blocks for line in block.splitlines() if not line.startswith("#")]
    targets = []
    for text in (*spans, *lines):
        if not re.search(r"\bstats(_counts)?\.", text) or "…" in text:
            continue
        if re.search(r"\.N(\.|$)", text):  # the namespace explained on a name ``N``
            continue
        targets.append(re.sub(r"\{(team|api|endpoint|b|backend)\}", "*", text))
    return targets


def test_the_names_table_is_the_whole_catalogue(doc, names):
    documented = documented_names(doc)
    assert len(documented) >= 20
    undocumented = [
        f"{name} ({kind.name.lower()})"
        for name, kind in names.items()
        if not any(k is kind and regex.fullmatch(name) for k, regex in documented)
    ]
    assert not undocumented, "emitted but not in docs/alerts.md:\n" + "\n".join(undocumented)
    unknown = [
        regex.pattern
        for kind, regex in documented
        if not any(k is kind and regex.fullmatch(name) for name, k in names.items())
    ]
    assert not unknown, "in docs/alerts.md but not emitted:\n" + "\n".join(unknown)


def test_every_rule_names_metrics_frontdoor_emits(doc, names):
    targets = graphite_targets(doc)
    assert len(targets) >= 25
    missing = [
        f"{target}: {path}" for target in targets for path in unknown_paths(target, {}, names)
    ]
    assert not missing, "rules naming no metric Frontdoor emits:\n" + "\n".join(missing)


def test_the_check_fails_a_rule_on_a_metric_that_is_not_emitted(names):
    assert unknown_paths("maxSeries(stats.gauges.frontdoor.backend.*.capacity)", {}, names)
    assert unknown_paths("stats_counts.frontdoor.team.*.latency", {}, names)


def test_the_team_thresholds_are_the_endpoints_deadlines(doc):
    """Each endpoint is listed under its team with its deadline and a p99 limit of 80 %."""
    team_rows = re.findall(r"^\| (\w+) \| `(\w+)` \| (.+?) \|", doc, flags=re.MULTILINE)
    rows = {team: api for team, api, _ in team_rows}
    listed = {
        (api, name): (int(deadline), int(limit))
        for _, api, cell in team_rows
        for name, deadline, limit in re.findall(r"`(\w+)` \((\d+) → (\d+) ms\)", cell)
    }
    assert rows, "no team table"
    for endpoint in endpoints_for(load_settings(environ={}).server):
        key = (endpoint.api, endpoint.name)
        assert key in listed, f"{endpoint.api}.{endpoint.name} missing from the team table"
        assert rows[endpoint.team] == endpoint.api
        assert listed[key] == (endpoint.deadline_ms, endpoint.deadline_ms * 8 // 10), key


def test_the_backend_thresholds_are_the_configured_timeouts(doc):
    rows = {
        name: (int(timeout), int(limit))
        for name, timeout, limit in re.findall(
            r"^\| (\w+) \| [\w, ]+ \| (\d+) \| (\d+) ms \|", doc, flags=re.MULTILINE
        )
    }
    specs = load_settings(environ={}).backend_specs()
    assert {spec.name for spec in specs} == set(rows)
    for spec in specs:
        assert rows[spec.name] == (spec.timeout_ms, spec.timeout_ms * 8 // 10), spec.name
