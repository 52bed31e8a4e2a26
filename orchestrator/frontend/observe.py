"""Observing finished requests: one metrics pipeline, the endpoint's window, one access line.

A request is observed once, when its response is written (``Observer.finished``); each call
of a batch adds its endpoint's stats to its batch's pipeline (``Observer.call_finished``).
Probes of the ``quiet`` paths (health) are not: one a second would drown the access log.
A request the HTTP server refused before the pipeline ran (``Observer.refused``: bad
framing, an oversized or late head) gets its access line too.
Recording never fails a request: an error here is logged, the device still gets its response.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors.plan import StepRecord
from orchestrator.frontend.httpserver import Refusal
from orchestrator.frontend.request import LOGGER, Request
from orchestrator.ops.access_log import FIELDS_ATTR, AccessLog, access_entry
from orchestrator.ops.admin import EndpointWindows

__all__ = ["Observer", "trace"]

log = logging.getLogger(LOGGER)

_HEAD_TIMEOUT = "request_timeout"
#: At most one summary line of late request heads per this many seconds.
_SUMMARY_INTERVAL_S = 1.0


class _Tally:
    """Counts events and logs their number at most once per ``interval_s``."""

    __slots__ = ("_clock", "_interval_s", "_last", "_pending", "_what")

    def __init__(self, what: str, clock: Callable[[], float], interval_s: float) -> None:
        self._what = what
        self._clock = clock
        self._interval_s = interval_s
        self._last = -interval_s
        self._pending = 0

    def add(self) -> None:
        """One more; logs the count so far when the last line is old enough."""
        self._pending += 1
        now = self._clock()
        if now - self._last < self._interval_s:
            return
        self._last = now
        count, self._pending = self._pending, 0
        log.warning(
            "%d %s", count, self._what, extra={FIELDS_ATTR: {"event": "late_heads", "count": count}}
        )


class Observer:
    """Records each finished request in ``windows`` (the admin view), its metrics and
    ``access_log``, except on the ``quiet`` paths; latencies on ``clock``."""

    __slots__ = ("_clock", "_late_heads", "_quiet", "access_log", "windows")

    def __init__(
        self,
        windows: EndpointWindows,
        access_log: AccessLog,
        clock: Callable[[], float],
        quiet: frozenset[str] = frozenset(),
    ) -> None:
        self.windows = windows
        self.access_log = access_log
        self._clock = clock
        self._quiet = quiet
        self._late_heads = _Tally(
            "connections closed: request head not received within server.header_timeout_s",
            clock,
            _SUMMARY_INTERVAL_S,
        )

    def finished(self, request: Request, status: int) -> None:
        """A finished HTTP request: its metrics (one pipeline), window and access line."""
        if request.path in self._quiet or request.metrics is None:
            return
        latency_ms = (self._clock() - request.started) * 1000.0
        endpoint = request.endpoint
        degraded = bool(request.degraded)
        try:
            if endpoint is not None:
                request.metrics.endpoint(endpoint.metric_name)
                self.windows.record(
                    endpoint.metric_name,
                    status,
                    latency_ms if request.planned else None,
                    degraded=degraded,
                )
            request.metrics.finish(status, latency_ms, degraded=degraded, planned=request.planned)
            entry = access_entry(
                request.environ,
                request_id=request.request_id,
                backend_request_id=request.backend_request_id,
                status=status,
                latency_ms=latency_ms,
                endpoint=None if endpoint is None else endpoint.metric_name,
                team=None if endpoint is None else endpoint.team,
                degraded=request.degraded,
                backend_calls=request.backend_calls,
                device_type=request.device_type,
            )
            self.access_log.write(entry, lambda: trace(request.started, request.records))
        except Exception:
            log.exception(
                "request %s: recording metrics or access log failed",
                request.request_id,
                extra={FIELDS_ATTR: {"request_id": request.request_id}},
            )

    def refused(self, refusal: Refusal) -> None:
        """A request the HTTP server refused before the pipeline ran: its access line.

        Heads that did not arrive in time (``request_timeout``) are summed instead, one
        warning a second at most: a slowloris burst times out by the thousand, and a line
        each (~0.3 ms) would spend the CPU the attack is after. Their metric counts each.
        """
        if refusal.code == _HEAD_TIMEOUT:
            self._late_heads.add()
            return
        try:
            entry = access_entry(
                refusal.environ(),
                request_id=refusal.request_id,
                status=refusal.status,
                latency_ms=refusal.latency_ms,
            )
            self.access_log.write(entry)
        except Exception:
            log.exception(
                "request %s: recording the access log failed",
                refusal.request_id,
                extra={FIELDS_ATTR: {"request_id": refusal.request_id}},
            )

    def call_finished(self, batch: Request, request: Request, status: int) -> None:
        """One call of a batch: its endpoint's stats join the batch's pipeline."""
        batch.backend_calls += request.backend_calls
        endpoint = request.endpoint
        if endpoint is None or batch.metrics is None:
            return
        latency_ms = (self._clock() - request.started) * 1000.0
        degraded = bool(request.degraded)
        batch.metrics.endpoint_result(
            endpoint.metric_name, status, latency_ms, degraded=degraded, planned=request.planned
        )
        self.windows.record(
            endpoint.metric_name,
            status,
            latency_ms if request.planned else None,
            degraded=degraded,
        )


def trace(started: float, records: tuple[StepRecord, ...]) -> list[dict[str, Any]]:
    """Each step's story in milliseconds since the request arrived."""

    def ms(moment: float) -> float | None:
        return round((moment - started) * 1000.0, 3) if moment else None

    return [
        {
            "step": record.step.name,
            "backend": record.step.backend,
            "outcome": record.outcome,
            "error": record.error,
            "queued_ms": ms(record.sent_at),
            "started_ms": ms(record.started_at),
            "finished_ms": ms(record.finished_at),
            "attempts": record.attempts,
            "budget_left_ms": round(record.budget_left_ms, 1),
            "degraded": record.degraded,
        }
        for record in records
    ]
