"""The edge topology's playback endpoints: the same contract, enriched and passed through.

For each playback endpoint the edge keeps everything devices see (path, parameters,
``fields``, auth, deadline, problems) and replaces the plan: the shared services' steps
(``subscriber``, ``device``: what discovery calls too) run here with their own fallbacks,
then one ``layer`` step passes the device's request to the playback layer
(``server.playback_upstream``) with their results sealed in an enrichment header, so the
layer skips those calls.

Each endpoint reaches the layer as a backend of its own (``playback_layer_play``, ...),
with its own bulkhead and breaker, as Hystrix keys a command per call type: when the
layer's play fails (its licensing service hangs), the edge's breaker for play opens, and
heartbeats, which need no licence, still pass. One breaker for the whole layer measurably
short-circuited them (``licensing-hang`` through the edge: 28 heartbeat and history 503s).

The layer's body is the response; its refusals of the device's request are the device's
problems, as they would be there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from orchestrator.frontend.enrichment import HEADER, Enricher
from orchestrator.plans import (
    BackendRequest,
    DeviceError,
    Endpoint,
    Plan,
    RequestBuilder,
    Source,
    Step,
    StepContext,
)

__all__ = ["edge_endpoints", "layer_backend"]


def layer_backend(endpoint: Endpoint) -> str:
    """The backend through which the edge passes ``endpoint`` on to the layer
    (``playback_layer_play``; base URL ``server.playback_upstream``)."""
    return f"{endpoint.api}_layer_{endpoint.name}"


def edge_endpoints(
    endpoints: Iterable[Endpoint], enricher: Enricher, shared_steps: frozenset[str]
) -> tuple[Endpoint, ...]:
    """A passed-through package's endpoints as the edge serves them: its ``shared_steps``
    (``ApiPackage.shared_steps``) run here, the rest at the layer."""
    return tuple(_edge(endpoint, enricher, shared_steps) for endpoint in endpoints)


def _edge(endpoint: Endpoint, enricher: Enricher, shared_steps: frozenset[str]) -> Endpoint:
    shared = tuple(
        dataclasses.replace(step, after=(), feeds=frozenset())
        for step in endpoint.plan.steps
        if step.name in shared_steps
    )
    refusals: dict[int, DeviceError] = {}
    for step in endpoint.plan.steps:
        refusals.update(step.device_errors)
    layer = Step(
        "layer",
        layer_backend(endpoint),
        _pass_through(endpoint, enricher, frozenset(step.name for step in shared)),
        after=tuple(step.name for step in shared),
        device_errors=refusals,
    )
    return dataclasses.replace(endpoint, plan=Plan((*shared, layer), _compose))


def _pass_through(endpoint: Endpoint, enricher: Enricher, shared: frozenset[str]) -> RequestBuilder:
    segments = tuple(part for part in endpoint.path.split("/") if part)
    query_params = [p.name for p in endpoint.params if p.source is Source.QUERY]
    body_params = [p.name for p in endpoint.params if p.source is Source.BODY]

    def build(ctx: StepContext) -> BackendRequest:
        params = ctx.params
        path = tuple(str(params[part[1:-1]]) if part.startswith("{") else part for part in segments)
        query = [(name, _text(params[name])) for name in query_params if name in params]
        if ctx.selection is not None:
            query.append(("fields", str(ctx.selection)))
        body = {name: params[name] for name in body_params if name in params}
        known = {name: ctx.results[name] for name in shared if name in ctx.results}
        # Bound to this method and path: replayed on another endpoint it is refused.
        sealed = enricher.seal(ctx.member_id or "", known, endpoint.method, "/" + "/".join(path))
        return BackendRequest(
            endpoint.method,
            path,
            tuple(sorted(query)),
            body if endpoint.method in {"POST", "PUT"} else None,
            headers=((HEADER, sealed),),
        )

    return build


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _compose(ctx: StepContext) -> Any:
    """The layer's body as it came (its ``meta.degraded`` is merged by the app)."""
    return ctx.results["layer"]
