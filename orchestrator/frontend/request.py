"""What the pipeline's stages share: one request while it is handled, and its scope.

A ``Request`` is made when the request arrives (``arrive``) and filled in as it goes:
routing sets ``endpoint``, authentication ``member_id``, the plan stage ``records`` and
``degraded``; the response stage reads it to observe the request. A ``Scope`` is what the
calls of one HTTP request share (one call, or every call of a batch): its Authorization,
deadline, shared backend reads and the edge's enrichment. Also here: the WSGI types, the
request id, and the pipeline's logger.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from actors.call_cache import SharedCalls
from actors.plan import StepRecord
from orchestrator.frontend.auth import Claims
from orchestrator.frontend.request_ids import new_id, request_id
from orchestrator.ops.metrics import RequestMetrics
from orchestrator.plans import Endpoint

__all__ = ["LOGGER", "Environ", "Request", "Scope", "StartResponse", "arrive", "request_id"]

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Environ = Mapping[str, Any]

#: The logger of every stage: operators' filters and alerts know it by this name.
LOGGER: Final = "frontdoor.app"


@dataclass(slots=True)
class Request:
    """What the app knows about one request while handling it."""

    request_id: str
    method: str
    path: str
    started: float
    endpoint: Endpoint | None = None
    member_id: str | None = None
    degraded: tuple[str, ...] = ()
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    environ: Environ = field(default_factory=dict)
    #: The HTTP request's metrics (a batch's calls share their batch's).
    metrics: RequestMetrics | None = None
    records: tuple[StepRecord, ...] = ()
    backend_calls: int = 0
    #: The id its backend calls carry: ``request_id`` when Frontdoor made it (or trusts the
    #: device's, ``server.trust_request_id``), else a fresh one; empty: ``request_id``.
    backend_request_id: str = ""
    #: Whether its parameters were valid and its plan ran (``PlanStage.serve``): only
    #: those count in the endpoint's latency; the others are counted as rejected.
    planned: bool = False
    #: The endpoint's own ``device_type`` parameter, when it declares one (the access
    #: log's ``device_type``, over the ``X-Device-Type`` header).
    device_type: str | None = None


@dataclass(slots=True)
class Scope:
    """What the calls of one HTTP request share: a single call, or every call of a batch."""

    authorization: str | None
    #: No call of the scope runs past this (absolute, ``clock`` seconds).
    deadline: float
    calls: SharedCalls
    trace: bool
    #: The Authorization is verified at most once per scope (a batch's calls share it).
    verified: bool = False
    claims: Claims | None = None
    #: From a verified enrichment: the member the edge authenticated, and the results of
    #: the shared steps it already called.
    enriched_member: str | None = None
    presets: Mapping[str, Any] | None = None


def arrive(
    environ: Environ, started: float, metrics: RequestMetrics, *, trust_request_id: bool = False
) -> Request:
    """The request ``environ`` describes, arrived at ``started``.

    A device's well-formed ``X-Request-Id`` is the request's id (echoed, logged); its
    backend calls carry it only with ``trust_request_id``, else an id made here, so that a
    device cannot choose, or collide with, the ids backends log and correlate by."""
    given = environ.get("HTTP_X_REQUEST_ID")
    own = request_id(given)
    return Request(
        own,
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("PATH_INFO", "/") or "/",
        started,
        environ=environ,
        metrics=metrics,
        backend_request_id=own if trust_request_id or own != given else new_id(),
    )
