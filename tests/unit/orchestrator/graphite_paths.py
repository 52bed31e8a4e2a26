"""Graphite paths over Frontdoor's statsd names: what the Grafana dashboard and the alert
rules (docs/grafana/frontdoor.json, docs/alerts.md) are checked with.

A query's metric paths are found by stripping its Graphite functions (their names, quoted
strings and numbers); template variables are replaced; the statsd graphite backend's
namespace (``legacyNamespace: true``, its default) gives the statsd type and, for a timer,
the statistic leaf (``stats_counts.N``: counter; ``stats.timers.N.<stat>``: timer;
``stats.gauges.N``: gauge; ``stats.N``: counter per second). Each brace alternative
(``{2xx,4xx}``) must match, as a Graphite glob, at least one name of that type in
``MetricNames(...).catalogue()`` built from the shipped endpoints and backends: the one
source of Frontdoor's metric names (orchestrator/ops/metrics.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from orchestrator.config import load_settings
from orchestrator.ops.metrics import MetricNames, StatKind

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
# The Graphite functions the dashboard and the rules may use (graphite-web 1.1): a typo
# fails here.
GRAPHITE_FUNCTIONS = frozenset(
    {
        "aliasByNode",
        "aliasSub",
        "asPercent",
        "groupByNodes",
        "maxSeries",
        "movingSum",
        "summarize",
        "sumSeries",
        "timeShift",
    }
)


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
