"""Thresholds: the pass/fail criteria that let a run gate a release (k6's idea, our syntax).

One threshold is ``SELECTOR[@PHASE].METRIC OP VALUE[UNIT]``::

    home.p99<250ms              home's p99 over the measured run is under 250 ms
    all.errors<1%               under 1% of all scheduled requests got a 5xx or no answer
    play@fault.p99<1500ms       play's p99 while a fault was in force
    all@"500 req/s".shed>10%    in the phase named "500 req/s", over 10% were shed
    device.success>=99%         client group ``device`` (all its endpoints)

``SELECTOR`` is an endpoint (``home``), ``all``, a client group (``device``) or one group's
endpoint (``device:home``). ``PHASE`` is ``before`` (no fault yet), ``fault`` (every phase
with a fault in force, merged), ``after`` (healthy again after a fault), a phase's position
(``@2``, from 1) or its exact name in quotes. ``OP`` is ``<``, ``<=``, ``>`` or ``>=``.
Metrics and their units are in ``METRICS``. A scenario's ``[thresholds]`` table maps a
selector to a list of ``METRIC OP VALUE`` strings (``home = ["p99<250ms", "errors<1%"]``).

Parsing is pure and fails with ``ThresholdError`` saying what is wrong where; ``evaluate``
reads only the report dict (``report.build_report``), so a saved ``--json`` report can be
judged again. A threshold over a selection without a single request fails: a gate that
measured nothing must not pass.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from orchestrator.loadtest.histogram import LatencyHistogram

__all__ = [
    "METRICS",
    "Threshold",
    "ThresholdError",
    "check_applicable",
    "evaluate",
    "parse_table",
    "parse_threshold",
    "render_results",
]

DEFAULT_SOURCE = "--threshold"
#: Shown for a value that could not be measured (an en dash).
NO_VALUE = "\u2013"


class Kind(StrEnum):
    """What a metric measures, which decides the units its bound takes."""

    LATENCY = "latency"
    SHARE = "share"
    THROUGHPUT = "throughput"
    COUNT = "count"


#: Every metric with its kind and what it is (``--help`` and the docs list these).
METRICS: Mapping[str, tuple[Kind, str]] = {
    "p50": (Kind.LATENCY, "median latency"),
    "p90": (Kind.LATENCY, "90th percentile latency"),
    "p99": (Kind.LATENCY, "99th percentile latency"),
    "p99.9": (Kind.LATENCY, "99.9th percentile latency"),
    "max": (Kind.LATENCY, "slowest request"),
    "mean": (Kind.LATENCY, "mean latency"),
    "errors": (Kind.SHARE, "5xx or no HTTP response"),
    "failed": (Kind.SHARE, "no HTTP response (timeout, connect, ...)"),
    "success": (Kind.SHARE, "2xx"),
    "degraded": (Kind.SHARE, "2xx with a non-empty meta.degraded"),
    "shed": (Kind.SHARE, "503 overloaded (shed on admission)"),
    "limited": (Kind.SHARE, "429 rate_limited"),
    "unsent": (Kind.SHARE, "not sent: the generator's in-flight cap"),
    "rps": (Kind.THROUGHPUT, "HTTP responses per second"),
    "count": (Kind.COUNT, "scheduled requests"),
}
_UNITS: Mapping[Kind, Mapping[str, float]] = {
    Kind.LATENCY: {"": 1.0, "ms": 1.0, "s": 1000.0, "us": 0.001},
    Kind.SHARE: {"": 1.0, "%": 0.01},
    Kind.THROUGHPUT: {"": 1.0, "/s": 1.0},
    Kind.COUNT: {"": 1.0},
}
#: Shown after a value: ms, % or /s.
_SHOWN_UNIT = {Kind.LATENCY: " ms", Kind.SHARE: "%", Kind.THROUGHPUT: " req/s", Kind.COUNT: ""}
_OPERATORS: Mapping[str, Any] = {
    "<": float.__lt__,
    "<=": float.__le__,
    ">": float.__gt__,
    ">=": float.__ge__,
}
PHASE_ROLES = ("before", "fault", "after")
_OPERATOR = re.compile(r"(<=|>=|==|!=|<|>|=)")
_SELECTOR = re.compile(r"[a-z][a-z0-9_-]{0,31}(:[a-z][a-z0-9_-]{0,31})?")
_VALUE = re.compile(
    r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:e[+-]?[0-9]+)?\s*(ms|us|s|%|/s)?", re.IGNORECASE
)
_QUOTED = re.compile(r"\"([^\"]+)\"|'([^']+)'")


class ThresholdError(ValueError):
    """An expression that is not a threshold, or one that cannot apply to the run."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """One parsed threshold; ``bound`` is in the metric's base unit (ms, a 0-1 share,
    req/s or a count)."""

    expression: str
    selector: str
    phase: str | None
    metric: str
    op: str
    bound: float
    source: str = DEFAULT_SOURCE

    @property
    def kind(self) -> Kind:
        """The metric's kind."""
        return METRICS[self.metric][0]

    def holds(self, value: float) -> bool:
        """Whether a measured ``value`` (base unit) satisfies the threshold."""
        return bool(_OPERATORS[self.op](float(value), self.bound))


def parse_threshold(text: str, source: str = DEFAULT_SOURCE) -> Threshold:
    """Parse ``SELECTOR[@PHASE].METRIC OP VALUE[UNIT]``; ``ThresholdError`` says why not."""
    expression = text.strip()
    left, op, right = _split_operator(expression)
    target, dot, metric = _split_metric(expression, left)
    if not dot:
        raise ThresholdError(
            f"{expression!r}: expected SELECTOR.METRIC on the left, e.g. home.p99<250ms"
        )
    selector, at, phase_text = target.partition("@")
    selector = selector.strip()
    if not _SELECTOR.fullmatch(selector):
        raise ThresholdError(
            f"{expression!r}: {selector!r} is not an endpoint, 'all', a client or client:endpoint"
        )
    phase = _phase(expression, phase_text.strip()) if at else None
    bound = _bound(expression, metric, right)
    return Threshold(expression, selector, phase, metric, op, bound, source)


def _split_operator(expression: str) -> tuple[str, str, str]:
    found = _OPERATOR.search(expression)
    if found is None:
        raise ThresholdError(
            f"{expression!r}: no comparison; expected one of <, <=, >, >= (e.g. home.p99<250ms)"
        )
    op = found.group(1)
    if op not in _OPERATORS:
        raise ThresholdError(f"{expression!r}: {op!r} is not supported; use <, <=, > or >=")
    left, right = expression[: found.start()], expression[found.end() :]
    if _OPERATOR.search(right):
        raise ThresholdError(f"{expression!r}: one comparison per threshold")
    return left.strip(), op, right.strip()


def _split_metric(expression: str, left: str) -> tuple[str, str, str]:
    # "p99.9" holds a dot of its own: take the longest metric name the text ends with.
    for metric in sorted(METRICS, key=len, reverse=True):
        if left.endswith("." + metric):
            return left[: -len(metric) - 1], ".", metric
    target, dot, metric = left.rpartition(".")
    if dot:
        raise ThresholdError(
            f"{expression!r}: unknown metric {metric!r}; expected one of {', '.join(METRICS)}"
        )
    return target, dot, metric


def _phase(expression: str, text: str) -> str:
    quoted = _QUOTED.fullmatch(text)
    if quoted:
        return f'"{quoted.group(1) or quoted.group(2)}"'
    if text in PHASE_ROLES or (text.isdigit() and int(text) >= 1):
        return text
    raise ThresholdError(
        f"{expression!r}: phase {text!r}: expected before, fault, after, a position from 1 "
        'or a quoted name (@"licensing hang")'
    )


def _bound(expression: str, metric: str, text: str) -> float:
    kind = METRICS[metric][0]
    found = _VALUE.fullmatch(text)
    units = _UNITS[kind]
    if found is None:
        raise ThresholdError(f"{expression!r}: {text!r} is not a number with a unit")
    unit = (found.group(2) or "").lower()
    if unit not in units:
        allowed = ", ".join(u for u in units if u) or "none"
        raise ThresholdError(
            f"{expression!r}: {metric} is a {kind}; its bound takes unit {allowed}, not {unit!r}"
        )
    value = float(text[: found.start(2)] if found.group(2) else text) * units[unit]
    if not math.isfinite(value):
        raise ThresholdError(f"{expression!r}: the bound must be finite")
    if kind is Kind.SHARE and not 0 <= value <= 1:
        raise ThresholdError(f"{expression!r}: a share is from 0 to 1 (or 0% to 100%)")
    return value


def parse_table(table: Mapping[str, Any], source: str) -> tuple[Threshold, ...]:
    """A scenario's ``[thresholds]``: selector -> ``METRIC OP VALUE`` string or list of them.
    Errors name the key: ``thresholds.home[1]: ...``."""
    parsed: list[Threshold] = []
    for selector, value in table.items():
        items = [value] if isinstance(value, str) else value
        key = f"thresholds.{_toml_key(selector)}"
        if not isinstance(items, list) or not items:
            raise ThresholdError(f"{key}: must be a string or a non-empty list of strings")
        for index, item in enumerate(items):
            where = key if isinstance(value, str) else f"{key}[{index}]"
            if not isinstance(item, str):
                raise ThresholdError(f'{where}: must be a string like "p99<250ms"')
            try:
                parsed.append(parse_threshold(f"{selector}.{item.strip()}", source))
            except ThresholdError as exc:
                raise ThresholdError(f"{where}: {exc}") from exc
    return tuple(parsed)


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f"'{key}'"


# -- before the run: does every threshold name something the run will have? -----------------


def check_applicable(
    thresholds: Iterable[Threshold],
    endpoints: Collection[str],
    phases: Sequence[Mapping[str, Any]],
) -> None:
    """``ThresholdError`` for a threshold whose selector or phase the run cannot produce.

    ``endpoints``: every endpoint name the run can record (``client:endpoint`` with client
    groups); ``phases``: the planned phases as in the report (``name``, ``faults``)."""
    groups = {name.partition(":")[0] for name in endpoints if ":" in name}
    for threshold in thresholds:
        selector = threshold.selector
        if selector != "all" and selector not in endpoints and selector not in groups:
            known = ", ".join(["all", *sorted(groups), *sorted(endpoints)])
            raise ThresholdError(
                f"{threshold.expression!r} ({threshold.source}): this run sends no "
                f"{selector!r}; expected one of {known}"
            )
        if threshold.phase is not None and not _phase_names(threshold.phase, phases):
            names = ", ".join(f'"{phase["name"]}"' for phase in phases)
            raise ThresholdError(
                f"{threshold.expression!r} ({threshold.source}): this run has no phase "
                f"{threshold.phase}; its phases are {names}"
            )


def _phase_names(phase: str, phases: Sequence[Mapping[str, Any]]) -> list[str]:
    if phase.startswith('"'):
        return [p["name"] for p in phases if p["name"] == phase.strip('"')]
    if phase.isdigit():
        index = int(phase) - 1
        return [phases[index]["name"]] if index < len(phases) else []
    first_fault = next((i for i, p in enumerate(phases) if p["faults"]), None)
    if phase == "fault":
        return [p["name"] for p in phases if p["faults"]]
    if first_fault is None:
        return []
    if phase == "before":
        return [p["name"] for p in phases[:first_fault]]
    return [p["name"] for p in phases[first_fault:] if not p["faults"]]


# -- after the run: measure and judge -------------------------------------------------------


@dataclass(slots=True)
class _Selection:
    """Counters summed over the selected cells, and their latency merged."""

    count: int = 0
    sent: int = 0
    responses: int = 0
    ok: int = 0
    errors: int = 0
    failed: int = 0
    degraded: int = 0
    shed: int = 0
    limited: int = 0
    unsent: int = 0
    seconds: float = 0.0
    cells: tuple[Mapping[str, Any], ...] = ()

    def add(self, cell: Mapping[str, Any]) -> None:
        status, failures = cell["status"], cell["failures"]
        self.count += cell["count"]
        self.sent += cell["sent"]
        self.responses += cell["responses"]
        self.ok += status.get("2xx", 0)
        self.failed += sum(failures.values())
        self.errors += status.get("5xx", 0) + status.get("other", 0) + sum(failures.values())
        self.degraded += cell["degraded"]
        self.shed += cell["retry_after"].get("503 overloaded", 0)
        self.limited += cell["retry_after"].get("429 rate_limited", 0)
        self.unsent += cell["not_sent"]
        self.cells = (*self.cells, cell)

    def latency_ms(self, metric: str) -> float:
        if len(self.cells) == 1:
            return float(self.cells[0]["latency_ms"][metric])
        merged = LatencyHistogram()
        for cell in self.cells:
            merged.merge(LatencyHistogram.decode(cell["histogram"]))
        return merged.summary_ms()[metric]


def evaluate(thresholds: Iterable[Threshold], report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each threshold's result as a JSON-able dict: the threshold, ``value`` (base unit,
    None without requests), ``count`` (requests it rests on), ``phases`` (the phase names it
    read), ``passed`` and, when it could not be judged, ``reason``."""
    return [_judge(threshold, report) for threshold in thresholds]


def _judge(threshold: Threshold, report: Mapping[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = asdict(threshold)
    result["unit"] = _SHOWN_UNIT[threshold.kind].strip()
    bases = _bases(threshold.selector, report)
    phases = report["phases"]
    names = _phase_names(threshold.phase, phases) if threshold.phase is not None else []
    invalid = sorted({p["name"] for p in phases if p.get("invalid")} & set(names))
    if threshold.phase is None and any(p.get("invalid") for p in phases):
        invalid = [p["name"] for p in phases if p.get("invalid")]
    selection = _Selection()
    for base in bases:
        if threshold.phase is None:
            selection.add(base["total"])
        else:
            for name in names:
                selection.add(base["phases"][name])
    selection.seconds = _seconds(report, names if threshold.phase is not None else None)
    result.update(phases=names, count=selection.count, value=None, passed=False, reason=None)
    if not bases or (threshold.phase is not None and not names):
        result["reason"] = "nothing in this run matches it"
    elif invalid:
        result["reason"] = f"phase not valid: {', '.join(invalid)} (a fault was not applied)"
        result["value"] = _value(threshold, selection)
    elif _needs_sent(threshold) and selection.sent == 0:
        result["reason"] = "no requests were sent"
    elif selection.count == 0 and threshold.kind is Kind.SHARE:
        result["reason"] = "no requests"
    else:
        value = _value(threshold, selection)
        result["value"] = value
        result["passed"] = threshold.holds(value)
    return result


def _needs_sent(threshold: Threshold) -> bool:
    return threshold.kind is Kind.LATENCY


def _bases(selector: str, report: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if selector == "all":
        return [report["all"]]
    endpoints = report["endpoints"]
    if selector in endpoints:
        return [endpoints[selector]]
    return [data for name, data in endpoints.items() if name.partition(":")[0] == selector]


def _seconds(report: Mapping[str, Any], names: Sequence[str] | None) -> float:
    run = report["run"]
    if names is None:
        return max(0.0, float(run["ended_s"]) - float(run["warmup_s"]))
    return sum(
        max(0.0, min(float(p["end_s"]), float(run["ended_s"])) - float(p["start_s"]))
        for p in report["phases"]
        if p["name"] in names
    )


def _value(threshold: Threshold, selection: _Selection) -> float:
    metric = threshold.metric
    if threshold.kind is Kind.LATENCY:
        return selection.latency_ms(metric)
    if threshold.kind is Kind.COUNT:
        return float(selection.count)
    if threshold.kind is Kind.THROUGHPUT:
        return selection.responses / selection.seconds if selection.seconds > 0 else 0.0
    counts = {
        "errors": selection.errors,
        "failed": selection.failed,
        "success": selection.ok,
        "degraded": selection.degraded,
        "shed": selection.shed,
        "limited": selection.limited,
        "unsent": selection.unsent,
    }
    return counts[metric] / selection.count if selection.count else 0.0


def shown(result: Mapping[str, Any], key: str = "value") -> str:
    """A result's ``value`` (or ``bound``) in its display unit: ``178.7 ms``, ``0.52%``."""
    value = result[key]
    if value is None:
        return NO_VALUE
    kind = METRICS[result["metric"]][0]
    if kind is Kind.SHARE:
        return f"{value * 100:.2f}%"
    if kind is Kind.COUNT:
        return f"{value:.0f}"
    return f"{value:.1f}{_SHOWN_UNIT[kind]}"


def render_results(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """The report's threshold lines: verdict, expression, measured value, bound, basis."""
    if not results:
        return []
    width = max(len(result["expression"]) for result in results)
    lines = ["", "thresholds:"]
    for result in results:
        verdict = "PASS" if result["passed"] else "FAIL"
        if result["reason"] and result["value"] is None:
            measured = result["reason"]
        else:
            measured = f"{shown(result)} (n={result['count']})"
            if result["reason"]:
                measured += f"; {result['reason']}"
        lines.append(f"  {verdict}  {result['expression']:<{width}}  measured {measured}")
    failed = sum(not result["passed"] for result in results)
    lines.append(
        f"thresholds: {len(results) - failed} passed, {failed} failed"
        if failed
        else f"thresholds: all {len(results)} passed"
    )
    return lines
