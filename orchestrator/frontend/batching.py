"""The batch endpoint (``POST /v1/batch``): several device calls in one round trip.

Each call goes down the same stages as a request of its own, from routing on: it is
admitted like one (a batch is that much work), routed, authenticated and run; up to
``concurrency`` at once. The calls share their batch's scope: its deadline, its
Authorization (verified once) and one ``SharedCalls`` (identical backend reads made once).
The batch answers 200 whatever its calls do: a call's failure is that call's reply (its
problem, with its own request id ``<batch id>.<index>``), never raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable
from typing import Any

import gevent.pool

from orchestrator.frontend import problems
from orchestrator.frontend.admission import Admission
from orchestrator.frontend.authentication import Authenticator
from orchestrator.frontend.body import WITH_BODY, BodyReader
from orchestrator.frontend.observe import Observer
from orchestrator.frontend.plan_stage import PlanStage
from orchestrator.frontend.protocol.batch import BatchCall, answer, envelope, failure, parse_batch
from orchestrator.frontend.request import LOGGER, Environ, Request, Scope
from orchestrator.frontend.routing import Router
from orchestrator.frontend.scope import Scopes
from orchestrator.ops.access_log import FIELDS_ATTR
from orchestrator.plans import Endpoint

__all__ = ["BatchEndpoint", "call_body"]

log = logging.getLogger(LOGGER)


class BatchEndpoint:
    """Runs batches of at most ``max_calls`` calls, ``concurrency`` at once, within
    ``deadline_ms`` (each call's deadline is its endpoint's, cut to what is left)."""

    __slots__ = (
        "_admission",
        "_authenticator",
        "_body",
        "_clock",
        "_concurrency",
        "_deadline_ms",
        "_max_calls",
        "_observer",
        "_plans",
        "_router",
        "_scopes",
    )

    def __init__(
        self,
        *,
        admission: Admission,
        router: Router,
        scopes: Scopes,
        authenticator: Authenticator,
        body: BodyReader,
        plans: PlanStage,
        observer: Observer,
        clock: Callable[[], float],
        max_calls: int,
        concurrency: int,
        deadline_ms: int,
    ) -> None:
        self._admission = admission
        self._router = router
        self._scopes = scopes
        self._authenticator = authenticator
        self._body = body
        self._plans = plans
        self._observer = observer
        self._clock = clock
        self._max_calls = max_calls
        self._concurrency = concurrency
        self._deadline_ms = deadline_ms

    def serve(self, environ: Environ, request: Request) -> tuple[int, Any]:
        """Run every call of the batch ``request`` posts; its status and envelope."""
        scope, calls = self.receive(environ, request)
        return self.run(request, scope, calls)

    def receive(self, environ: Environ, request: Request) -> tuple[Scope, tuple[BatchCall, ...]]:
        """The batch's scope and calls, its body read (the app does this before admission)."""
        if request.method != "POST":
            raise problems.method_not_allowed(("POST",))
        scope = self._scopes.open(environ, request.started, self._deadline_ms)
        calls = parse_batch(self._body.read(environ, scope.deadline), self._max_calls)
        return scope, calls

    def run(
        self,
        request: Request,
        scope: Scope,
        calls: tuple[BatchCall, ...],
        client: Hashable | None = None,
    ) -> tuple[int, Any]:
        """Run the calls, each admitted as ``client``'s; the batch's status and envelope."""
        pool = gevent.pool.Pool(self._concurrency)
        replies = pool.map(
            lambda numbered: self._call(request, scope, numbered[0], numbered[1], client),
            enumerate(calls),
        )
        return 200, envelope(list(replies))

    def _call(
        self,
        batch: Request,
        scope: Scope,
        index: int,
        call: BatchCall,
        client: Hashable | None = None,
    ) -> dict[str, Any]:
        """One call of a batch through the common stages; its failure is its reply."""
        request = Request(
            f"{batch.request_id}.{index}",
            call.method,
            call.path,
            self._clock(),
            environ=batch.environ,
            metrics=batch.metrics,
            backend_request_id=f"{batch.backend_request_id or batch.request_id}.{index}",
        )
        if call.problem is not None:
            return failure(call.id, call.problem, request.request_id)
        if not self._admission.try_enter(client):
            return failure(call.id, problems.overloaded(retry_after_s=1), request.request_id)
        try:
            endpoint, path_params = self._router.route(request)
            request.member_id = self._authenticator.member(scope, endpoint)
            body = call_body(endpoint, call)
            status, payload = self._plans.serve(
                request, scope, endpoint, path_params, call.query, body
            )
        except problems.Problem as problem:
            self._observer.call_finished(batch, request, problem.status)
            return failure(call.id, problem, request.request_id)
        except Exception:
            log.exception(
                "request %s: unhandled error",
                request.request_id,
                extra={FIELDS_ATTR: {"request_id": request.request_id}},
            )
            self._observer.call_finished(batch, request, 500)
            return failure(call.id, problems.internal_error(), request.request_id)
        finally:
            self._admission.leave(client)
        self._observer.call_finished(batch, request, status)
        return answer(call.id, status, payload, dict(request.extra_headers))


def call_body(endpoint: Endpoint, call: BatchCall) -> dict[str, Any] | None:
    """A batch call's body: an object for endpoints that take one, else none at all."""
    if endpoint.method in WITH_BODY:
        return {} if call.body is None else call.body
    if call.body is not None:
        raise problems.invalid_batch(f"{endpoint.method} {endpoint.path} takes no body")
    return None
