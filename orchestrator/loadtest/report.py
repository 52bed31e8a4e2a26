"""The report of a run: a JSON-able dict built from a ``Recorder``, and its text tables.

Everything printed is rendered from the same dict ``--json`` writes, so the tables, the
JSON and the plot can never disagree. Latencies are milliseconds from the scheduled send
time (open loop) or the actual send time (closed loop), over every request that was sent,
failures included; ``unsent`` counts requests the generator itself could not send.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from orchestrator.loadtest.groups import summarize
from orchestrator.loadtest.histogram import PERCENTILES
from orchestrator.loadtest.phase import Phase, describe_fault
from orchestrator.loadtest.stats import Cell, Recorder
from orchestrator.loadtest.threshold import render_results

__all__ = ["AppliedFault", "RunInfo", "build_report", "describe_routes", "render_tables"]

REPORT_VERSION = 1
#: A generator that sends its p99 request later than this has been the bottleneck.
LAG_WARNING_MS = 10.0


@dataclass(frozen=True, slots=True)
class AppliedFault:
    """A fault-timeline event as it happened: when planned, when done, and whether it worked."""

    at_s: float
    applied_s: float | None
    service: str | None
    fault: Mapping[str, Any] | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """How the run was configured and how it ended."""

    target: str
    mode: str
    load: str
    warmup_s: float
    duration_s: float
    ended_s: float
    partial: bool
    scenario: str | None
    mix: Mapping[str, float]
    seed: int
    started_at: str
    cpu_s: float
    max_inflight: int
    faults: Sequence[AppliedFault] = field(default_factory=tuple)
    #: With ``--route``: every API family and the base URL its requests went to; empty when
    #: everything went to ``target``.
    routes: Mapping[str, str] = field(default_factory=dict)
    #: Why the run was stopped before its end by the tool itself (a fault not applied).
    aborted: str | None = None
    #: Phases whose planned faults did not happen, by name, with the reason.
    invalid_phases: Mapping[str, str] = field(default_factory=dict)


def _cell_json(cell: Cell, duration_s: float) -> dict[str, Any]:
    return {
        "count": cell.count,
        "sent": cell.sent,
        "not_sent": cell.not_sent,
        "responses": cell.responses,
        "rate": round(cell.responses / duration_s, 2) if duration_s > 0 else 0.0,
        "status": dict(sorted(cell.statuses.items())),
        "failures": dict(sorted(cell.failures.items())),
        "degraded": cell.degraded,
        "degraded_by": dict(cell.degraded_by.most_common()),
        "retry_after": dict(sorted(cell.retry_after.items())),
        "latency_ms": cell.latency.summary_ms(),
        "histogram": cell.latency.encode(),
    }


def _clipped(phase: Phase, ended_s: float) -> float:
    return max(0.0, min(phase.end_s, ended_s) - phase.start_s)


def build_report(recorder: Recorder, info: RunInfo) -> dict[str, Any]:
    """The full report as plain JSON types."""
    phases = list(recorder.phases)
    measured_s = max(0.0, info.ended_s - info.warmup_s)
    endpoints = sorted({endpoint for _, endpoint in recorder.cells}, key=_endpoint_order)
    per_endpoint: dict[str, Any] = {}
    totals: dict[str, Cell] = {}
    overall_phases: list[Cell] = [Cell() for _ in phases]
    for endpoint in endpoints:
        total = Cell()
        by_phase: dict[str, Any] = {}
        for index, phase in enumerate(phases):
            cell = recorder.cells.get((index, endpoint), Cell())
            total.merge(cell)
            overall_phases[index].merge(cell)
            by_phase[phase.name] = _cell_json(cell, _clipped(phase, info.ended_s))
        per_endpoint[endpoint] = {"total": _cell_json(total, measured_s), "phases": by_phase}
        totals[endpoint] = total
    overall = Cell()
    for cell in overall_phases:
        overall.merge(cell)
    lag = recorder.send_lag.summary_ms()
    return {
        "version": REPORT_VERSION,
        "run": {
            key: value
            for key, value in asdict(info).items()
            if key not in {"faults", "invalid_phases"}
        },
        "generator": {
            "send_lag_ms": {key: lag[key] for key in ("p50", "p99", "max")},
            "not_sent": recorder.not_sent_total,
            "warmup_requests": recorder.warmup_requests,
            "cpu_share": round(info.cpu_s / info.ended_s, 3) if info.ended_s > 0 else 0.0,
        },
        "phases": [
            {
                "name": p.name,
                "start_s": p.start_s,
                "end_s": p.end_s,
                "faults": list(p.faults),
                # Why the phase is not what it says (its fault was not applied), or None.
                "invalid": info.invalid_phases.get(p.name),
            }
            for p in phases
        ],
        "faults": [asdict(applied) for applied in info.faults],
        "error_samples": dict(sorted(recorder.samples.items())),
        "endpoints": per_endpoint,
        # With [[clients]]: one row per client group (orchestrator/loadtest/groups.py).
        "clients": summarize(totals),
        "all": {
            "total": _cell_json(overall, measured_s),
            "phases": {
                phase.name: _cell_json(cell, _clipped(phase, info.ended_s))
                for phase, cell in zip(phases, overall_phases, strict=True)
            },
        },
        "series": [
            {
                "t": second,
                "scheduled": bucket.scheduled,
                "completed": bucket.completed,
                "failed": bucket.failed,
                "errors_5xx": bucket.errors_5xx,
                "not_sent": bucket.not_sent,
                "latency_ms": bucket.latency.summary_ms(full=True),
            }
            for second, bucket in sorted(recorder.series.items())
        ],
        # Per endpoint, per second in which requests were scheduled (what became of them):
        # the HTML report's latency and status charts.
        "endpoint_series": _endpoint_series(recorder, endpoints),
    }


def _endpoint_series(recorder: Recorder, endpoints: Sequence[str]) -> dict[str, list[Any]]:
    series: dict[str, list[Any]] = {endpoint: [] for endpoint in endpoints}
    for (second, endpoint), bucket in sorted(recorder.endpoint_series.items()):
        series.setdefault(endpoint, []).append(
            {
                "t": second,
                "scheduled": bucket.scheduled,
                "status": dict(sorted(bucket.statuses.items())),
                "failed": bucket.failed,
                "not_sent": bucket.not_sent,
                "degraded": bucket.degraded,
                "latency_ms": bucket.latency.summary_ms(),
            }
        )
    return series


_ORDER = ("home", "search", "title", "play", "heartbeat", "history", "plans", "signup")


def _endpoint_order(name: str) -> tuple[int, str]:
    return (_ORDER.index(name) if name in _ORDER else len(_ORDER), name)


# -- text -------------------------------------------------------------------------------------

_COLUMNS = (
    ("count", 7),
    ("req/s", 7),
    ("2xx", 6),
    ("3xx", 4),
    ("4xx", 5),
    ("5xx", 6),
    ("fail", 5),
    ("unsent", 6),
    ("degr", 6),
    *((name, 8) for name, _ in PERCENTILES),
    ("max", 8),
)


def _row(label: str, width: int, cell: Mapping[str, Any]) -> str:
    status = cell["status"]
    latency = cell["latency_ms"]
    values = [
        str(cell["count"]),
        f"{cell['rate']:.1f}",
        str(status.get("2xx", 0)),
        str(status.get("3xx", 0)),
        str(status.get("4xx", 0)),
        str(status.get("5xx", 0) + status.get("other", 0)),
        str(sum(cell["failures"].values())),
        str(cell["not_sent"]),
        str(cell["degraded"]),
        *(f"{latency[name]:.1f}" for name, _ in PERCENTILES),
        f"{latency['max']:.1f}",
    ]
    cells = "".join(f" {value:>{w}}" for value, (_, w) in zip(values, _COLUMNS, strict=True))
    return f"{label:<{width}}{cells}"


def _header(title: str, width: int) -> str:
    return f"{title:<{width}}" + "".join(f" {name:>{w}}" for name, w in _COLUMNS)


def render_tables(report: Mapping[str, Any]) -> str:
    """The end-of-run tables: per endpoint over the whole run, then one phase table per
    endpoint (and overall), then the generator's own health."""
    run = report["run"]
    lines: list[str] = []
    measured = max(0.0, run["ended_s"] - run["warmup_s"])
    partial = " - PARTIAL (interrupted)" if run["partial"] else ""
    if run.get("aborted"):
        partial = f" - ABORTED ({run['aborted']})"
    lines.append(
        f"== {run['scenario'] or 'ad-hoc run'}: {run['load']} against {_against(run)}, "
        f"{measured:.1f} s measured after {run['warmup_s']:g} s warmup{partial}"
    )
    routes = run.get("routes") or {}
    if routes:
        lines.append("routes: " + describe_routes(routes))
    lines.append("latency in ms from the scheduled send time; fail = no HTTP response")
    width = max([8, *(len(name) for name in report["endpoints"])])  # a run may record none
    lines.append(_header("endpoint", width))
    for name, data in report["endpoints"].items():
        lines.append(_row(name, width, data["total"]))
    lines.append(_row("all", width, report["all"]["total"]))
    lines.extend(_client_rows(report.get("clients") or {}))
    phases = report["phases"]
    if len(phases) > 1:
        labels = [
            f"{p['name']} [{p['start_s']:g}-{p['end_s']:g} s)"
            + (" INVALID" if p.get("invalid") else "")
            for p in phases
        ]
        phase_width = max(len(label) for label in labels)
        blocks = [*report["endpoints"].items(), ("all", report["all"])]
        for name, data in blocks:
            lines.append("")
            lines.append(f"-- phases: {name}")
            lines.append(_header("phase", phase_width))
            for phase, label in zip(phases, labels, strict=True):
                lines.append(_row(label, phase_width, data["phases"][phase["name"]]))
    lines.extend(_notes(report))
    return "\n".join(lines)


def _client_rows(clients: Mapping[str, Any]) -> list[str]:
    """Per client group: scheduled, 2xx, 429 rate_limited, 503 overloaded, other, success %,
    p50 and p99 (every answer's latency, from the scheduled send)."""
    if not clients:
        return []
    width = max(8, *(len(name) for name in clients))
    columns = ("count", "2xx", "429", "503 shed", "other", "success %", "p50", "p99")
    lines = ["", f"{'client':<{width}}" + "".join(f" {name:>9}" for name in columns)]
    for name, row in clients.items():
        values = (
            *(str(row[key]) for key in ("count", "ok", "rate_limited", "shed", "other")),
            f"{row['success_percent']:.2f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
        )
        lines.append(f"{name:<{width}}" + "".join(f" {value:>9}" for value in values))
    return lines


def _against(run: Mapping[str, Any]) -> str:
    routes = run.get("routes") or {}
    urls = sorted(set(routes.values()))
    if len(urls) > 1:
        return f"{len(urls)} targets"
    return str(urls[0]) if urls else str(run["target"])


def describe_routes(routes: Mapping[str, str]) -> str:
    """``nonmember, discovery -> URL; playback -> URL``: where each family's requests went."""
    by_url: dict[str, list[str]] = {}
    for family, url in routes.items():
        by_url.setdefault(url, []).append(family)
    return "; ".join(f"{', '.join(families)} -> {url}" for url, families in by_url.items())


def _summed(report: Mapping[str, Any], key: str) -> dict[str, int]:
    """A per-endpoint counter (``failures``, ``degraded_by``...) summed over endpoints."""
    summed: dict[str, int] = {}
    for data in report["endpoints"].values():
        for name, count in data["total"].get(key, {}).items():
            summed[name] = summed.get(name, 0) + count
    return summed


def _notes(report: Mapping[str, Any]) -> list[str]:
    lines = [""]
    failures = _summed(report, "failures")
    degraded = _summed(report, "degraded_by")
    retry_after = _summed(report, "retry_after")
    if failures:
        lines.append("failures: " + ", ".join(f"{k} {v}" for k, v in sorted(failures.items())))
    if degraded:
        lines.append("degraded by: " + ", ".join(f"{k} {v}" for k, v in degraded.items()))
    if retry_after:
        # 503 overloaded: shed on admission; 503 dependency_unavailable: a breaker or bulkhead.
        answers = ", ".join(f"{k} {v}" for k, v in sorted(retry_after.items()))
        lines.append(f"with Retry-After (counted, not obeyed): {answers}")
    for key, detail in report["error_samples"].items():
        lines.append(f"first {key}: {detail[:160]}")
    for fault in report["faults"]:
        service = fault["service"] or "all"
        change = fault["fault"]
        # describe_fault names the service itself: "licensing hang", "heal licensing".
        what = f"heal {service}" if change is None else describe_fault(service, change)
        when = "FAILED" if fault["applied_s"] is None else f"applied at {fault['applied_s']:.3f} s"
        error = f" ({fault['error']})" if fault["error"] else ""
        lines.append(f"fault at {fault['at_s']:g} s: {what} {when}{error}")
    lines.extend(
        f"INVALID phase {phase['name']!r}: {phase['invalid']}"
        for phase in report["phases"]
        if phase.get("invalid")
    )
    generator = report["generator"]
    lag = generator["send_lag_ms"]
    lines.append(
        f"generator: send lag p50 {lag['p50']:.2f} ms, p99 {lag['p99']:.2f} ms, "
        f"max {lag['max']:.1f} ms; CPU {generator['cpu_share'] * 100:.0f}% of one core; "
        f"unsent {generator['not_sent']}; warmup requests excluded {generator['warmup_requests']}"
    )
    if lag["p99"] > LAG_WARNING_MS or generator["not_sent"]:
        lines.append(
            "WARNING: the generator fell behind its schedule; latencies include its own "
            "lateness and the offered load was lower than planned."
        )
    lines.extend(render_results(report.get("thresholds") or ()))
    return lines
