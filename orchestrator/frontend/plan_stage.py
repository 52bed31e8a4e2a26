"""The plan stage: one call, from its parameters to its response body.

Parses the endpoint's parameters and ``fields`` selection, prunes the plan to what the
selection needs, runs it (``execute_plan``, through the scope's shared calls, by the
earlier of the scope's deadline and the endpoint's own), counts what it did (metrics,
fallbacks, backend calls for the access line) and shapes its result (``Results``). An
engineer's trace, asked for with the admin token, goes into ``meta.trace``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from actors.plan import StepRecord
from actors.supervisor import execute_plan
from orchestrator.frontend.observe import trace
from orchestrator.frontend.protocol.params import parse_params, selection
from orchestrator.frontend.request import Request, Scope
from orchestrator.frontend.results import Results
from orchestrator.ops.access_log import backend_calls
from orchestrator.ops.admin import EndpointWindows
from orchestrator.plans import Endpoint

__all__ = ["FallbackRecorder", "PlanStage"]


class FallbackRecorder(Protocol):
    """Where the steps that fell back are counted, per backend (the actor system)."""

    def record_fallbacks(self, records: Iterable[StepRecord]) -> None:
        """Count, per backend, the steps that fell back (the admin view's window)."""
        ...


class PlanStage:
    """Runs endpoints' plans; ``windows`` counts each endpoint's plans in flight."""

    __slots__ = ("_clock", "_fallbacks", "_results", "_windows")

    def __init__(
        self,
        fallbacks: FallbackRecorder,
        windows: EndpointWindows,
        results: Results,
        clock: Callable[[], float],
    ) -> None:
        self._fallbacks = fallbacks
        self._windows = windows
        self._results = results
        self._clock = clock

    def serve(
        self,
        request: Request,
        scope: Scope,
        endpoint: Endpoint,
        path_params: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: dict[str, Any] | None,
    ) -> tuple[int, Any]:
        """The status and body of one call (a request, or a batch's call); raises a problem."""
        params = parse_params(endpoint, query, path_params, body)
        selected = selection(endpoint, query)
        request.planned = True
        device = params.get("device_type")
        if isinstance(device, str):
            request.device_type = device
        deadline = min(scope.deadline, request.started + endpoint.deadline_ms / 1000.0)
        with self._windows.running(endpoint.metric_name):
            result = execute_plan(
                endpoint.plan.pruned(selected),
                directory=scope.calls,
                params=params,
                member_id=request.member_id,
                deadline=deadline,
                request_id=request.backend_request_id or request.request_id,
                clock=self._clock,
                presets=scope.presets,
            )
        request.records = result.records
        request.backend_calls += backend_calls(result.records)
        if request.metrics is not None:
            request.metrics.steps(result.records)
        self._fallbacks.record_fallbacks(result.records)
        status, payload = self._results.shape(request, endpoint, result, selected)
        if isinstance(payload, dict) and scope.trace:
            payload["meta"]["trace"] = trace(request.started, result.records)
        return status, payload
