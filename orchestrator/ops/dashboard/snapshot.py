"""The dashboard's document: one JSON object a second, everything the page draws.

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
from dataclasses import dataclass
from typing import Any, Final

from actors.outcomes import BreakerState
from orchestrator.ops.admin import BackendView, BackendViews, EndpointWindows

__all__ = ["BACKEND_ERRORS", "DashboardSnapshot", "FrontendGauges"]

#: The window columns that count against a backend's error %.
BACKEND_ERRORS: Final = ("failures", "timeouts", "rejections", "short_circuits")
_BREAKER_RANK: Final = {BreakerState.OPEN: 0, BreakerState.HALF_OPEN: 1}
_CLOSED_RANK: Final = 2


@dataclass(frozen=True, slots=True)
class FrontendGauges:
    """The frontend's own numbers: device requests admitted now, and shed since start."""

    inflight: int
    shed_total: int


class DashboardSnapshot:
    """Builds the dashboard document from the admin views and the frontend's gauges."""

    def __init__(
        self,
        backends: BackendViews,
        endpoints: EndpointWindows,
        frontend: Callable[[], FrontendGauges],
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._backends = backends
        self._endpoints = endpoints
        self._frontend = frontend
        self._wall_clock = wall_clock

    def snapshot(self) -> dict[str, Any]:
        """The document: ``generated_at`` (ISO, UTC), ``server_time_ms`` (epoch ms),
        ``frontend``, ``backends`` (worst first) and ``endpoints`` (worst first)."""
        now = self._wall_clock()
        gauges = self._frontend()
        backends = [_backend(view) for view in self._backends.backend_views()]
        backends.sort(
            key=lambda b: (
                _BREAKER_RANK.get(b["breaker"]["state"], _CLOSED_RANK),
                -b["error_pct"],
                b["name"],
            )
        )
        endpoints = [_endpoint(view) for view in self._endpoints.views()]
        endpoints.sort(key=lambda e: (-e["error_pct"], e["name"]))
        return {
            "generated_at": _iso(now),
            "server_time_ms": round(now * 1000),
            "frontend": {"inflight": gauges.inflight, "shed_total": gauges.shed_total},
            "backends": backends,
            "endpoints": endpoints,
        }


def _backend(view: BackendView) -> dict[str, Any]:
    window = view.window()
    calls = int(window.get("calls", 0))
    errors = sum(int(window.get(column, 0)) for column in BACKEND_ERRORS)
    return {
        "name": view.name,
        "breaker": {"state": str(view.breaker_state), "override": view.breaker_override},
        "calls": calls,
        "calls_per_s": _rate(calls, window),
        "error_pct": _pct(errors, calls),
        "failures": int(window.get("failures", 0)),
        "timeouts": int(window.get("timeouts", 0)),
        "rejections": int(window.get("rejections", 0)),
        "short_circuits": int(window.get("short_circuits", 0)),
        "fallbacks": int(window.get("fallbacks", 0)),
        "bulkhead": {
            "in_use": view.inflight,
            "capacity": view.max_concurrent,
            "queued": view.queued,
            "queue_capacity": view.max_queue,
        },
        "latency_ms": _latency(window),
    }


def _endpoint(view: Mapping[str, Any]) -> dict[str, Any]:
    window: Mapping[str, Any] = view["window"]
    calls = int(window.get("calls", 0))
    successes = int(window.get("successes", 0))
    server_errors = int(window.get("failures", 0))
    timeouts = int(window.get("timeouts", 0))
    return {
        "name": view["name"],
        "team": view["team"],
        "method": view["method"],
        "path": view["path"],
        "inflight": view["inflight"],
        "calls": calls,
        "calls_per_s": _rate(calls, window),
        "status": {
            "2xx": successes,
            "4xx": int(window.get("client_errors", 0)),
            "5xx": server_errors,
            "504": timeouts,
        },
        "error_pct": _pct(server_errors + timeouts, calls),
        "degraded_pct": _pct(int(window.get("fallbacks", 0)), successes),
        "latency_ms": _latency(window),
    }


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
