"""The dashboard's document: one JSON object a second, everything the page draws.

It speaks for the whole instance (``orchestrator/ops/instance.py``): under gunicorn every
worker's numbers added up, and each worker's own beside them (``workers``), so a breaker
open in one worker of two shows as open, with ``1/2`` workers open.

Backends come worst first, as on the Hystrix dashboard: a breaker that is open (then
half-open) before any closed one, then by error % (failures, timeouts, rejections and
short-circuits over calls, Hystrix's definition: a device's 4xx is nobody's failure), then
by name. Endpoints come by error % (5xx, 504 included) then name. Rates and percentages are
over the admin views' rolling window (``actors.stats.WindowStats``, 10 s).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

from actors.outcomes import BreakerState
from actors.stats import WindowTotals
from orchestrator.ops.instance import (
    FrontendGauges,
    Instance,
    MergedBackend,
    MergedEndpoint,
    adaptive_json,
)
from orchestrator.ops.metrics import MetricNames

__all__ = ["BACKEND_ERRORS", "DashboardSnapshot", "FrontendGauges"]

#: The window columns that count against a backend's error %.
BACKEND_ERRORS: Final = ("failures", "timeouts", "rejections", "short_circuits")
_BREAKER_RANK: Final = {BreakerState.OPEN: 0, BreakerState.HALF_OPEN: 1}
_CLOSED_RANK: Final = 2


class DashboardSnapshot:
    """Builds the dashboard document from the instance's workers; ``names`` labels each
    backend and endpoint with the statsd name its series start with (the one source the
    Grafana dashboard and docs/alerts.md use too)."""

    def __init__(
        self,
        instance: Instance,
        names: MetricNames | None = None,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._instance = instance
        self._names = names
        self._wall_clock = wall_clock

    def snapshot(self) -> dict[str, Any]:
        """The document: ``generated_at`` (ISO, UTC), ``server_time_ms`` (epoch ms),
        ``instance`` (the workers it covers), ``frontend``, ``backends`` (worst first) and
        ``endpoints`` (worst first)."""
        now = self._wall_clock()
        report = self._instance.report()
        gauges = report.frontend()
        backends = [_backend(merged) for merged in report.backends()]
        endpoints = [_endpoint(merged) for merged in report.endpoints()]
        if self._names is not None:
            for backend in backends:
                names = self._names.backends.get(backend["name"])
                backend["statsd"] = None if names is None else names.base
            for endpoint in endpoints:
                names_ = self._names.endpoints.get(endpoint["name"])
                endpoint["statsd"] = None if names_ is None else names_.base
        backends.sort(
            key=lambda b: (
                _BREAKER_RANK.get(b["breaker"]["state"], _CLOSED_RANK),
                -b["error_pct"],
                b["name"],
            )
        )
        endpoints.sort(key=lambda e: (-e["error_pct"], e["name"]))
        return {
            "generated_at": _iso(now),
            "server_time_ms": round(now * 1000),
            "instance": report.workers_json(),
            "frontend": {"inflight": gauges.inflight, "shed_total": gauges.shed_total},
            "backends": backends,
            "endpoints": endpoints,
        }


def _backend(merged: MergedBackend) -> dict[str, Any]:
    window = merged.window.snapshot()
    calls = int(window["calls"])
    return {
        "name": merged.name,
        "breaker": {
            "state": merged.breaker.state,
            "override": merged.breaker.override,
            "workers": dict(merged.states),
        },
        "calls": calls,
        "calls_per_s": _rate(calls, window),
        "error_pct": _backend_error_pct(window),
        "failures": int(window.get("failures", 0)),
        "timeouts": int(window.get("timeouts", 0)),
        "rejections": int(window.get("rejections", 0)),
        "short_circuits": int(window.get("short_circuits", 0)),
        "fallbacks": int(window.get("fallbacks", 0)),
        "bulkhead": {
            "in_use": merged.inflight,
            "capacity": merged.max_concurrent,
            "limit": merged.limit,
            "queued": merged.queued,
            "queue_capacity": merged.max_queue,
        },
        "latency_ms": _latency(window),
        # Hedges and collapsed calls since start, every worker's added up; null with neither.
        "adaptive": adaptive_json(merged.adaptive),
        "workers": [
            {
                "pid": pid,
                "state": part.breaker.state,
                "override": part.breaker.override,
                **_rates(part.window, _backend_error_pct),
                "in_use": part.inflight,
            }
            for pid, part in merged.workers
        ],
    }


def _endpoint(merged: MergedEndpoint) -> dict[str, Any]:
    window = merged.window.snapshot()
    calls = int(window["calls"])
    successes = int(window.get("successes", 0))
    return {
        "name": merged.name,
        "team": merged.team,
        "method": merged.method,
        "path": merged.path,
        "inflight": merged.inflight,
        "calls": calls,
        "calls_per_s": _rate(calls, window),
        "status": {
            "2xx": successes,
            "4xx": int(window.get("client_errors", 0)),
            "5xx": int(window.get("failures", 0)),
            "504": int(window.get("timeouts", 0)),
        },
        "error_pct": _endpoint_error_pct(window),
        "degraded_pct": _pct(int(window.get("fallbacks", 0)), successes),
        "latency_ms": _latency(window),
        "workers": [
            {"pid": pid, **_rates(part.window, _endpoint_error_pct), "inflight": part.inflight}
            for pid, part in merged.workers
        ],
    }


def _backend_error_pct(window: Mapping[str, Any]) -> float:
    errors = sum(int(window.get(column, 0)) for column in BACKEND_ERRORS)
    return _pct(errors, int(window["calls"]))


def _endpoint_error_pct(window: Mapping[str, Any]) -> float:
    errors = int(window.get("failures", 0)) + int(window.get("timeouts", 0))
    return _pct(errors, int(window["calls"]))


def _rates(
    totals: WindowTotals, error_pct: Callable[[Mapping[str, Any]], float]
) -> dict[str, float]:
    window = totals.snapshot()
    return {"calls_per_s": _rate(int(window["calls"]), window), "error_pct": error_pct(window)}


def _rate(count: int, window: Mapping[str, Any]) -> float:
    window_s = float(window.get("window_s") or 0.0)
    return round(count / window_s, 2) if window_s > 0 else 0.0


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole > 0 else 0.0


def _latency(window: Mapping[str, Any]) -> dict[str, float | None]:
    latency: Mapping[str, Any] = window.get("latency_ms") or {}
    return {"p50": latency.get("p50"), "p99": latency.get("p99")}


def _iso(epoch_s: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
