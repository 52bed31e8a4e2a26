"""The WSGI application: one request in, one supervisor run per call, one JSON response out.

The order of work for a request, in one place:
  request id -> documents and health (answered even while shedding) -> admission (shed
  with 503 before any work) -> a batch, or one call: route -> authenticate -> parse body
  and parameters -> parse ``fields`` -> deadline -> prune the plan -> run it -> project
  the body to the selection -> respond.
A batch (``POST /v1/batch``) sends each of its calls down the same path from "route" on,
concurrently, sharing its deadline, its Authorization and one ``SharedCalls`` (identical
backend reads made once). Every failure becomes an ``application/problem+json`` response
(or, in a batch, that call's problem) with a stable code and the request id; no
exception, stack trace or backend body reaches a device.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Protocol
from urllib.parse import parse_qs

import gevent.pool
import orjson

from actors.call_cache import SharedCalls
from actors.messages import Call, Outcome, Reply
from actors.plan import RunResult, RunStatus, StepRecord
from actors.supervisor import execute_plan
from orchestrator.frontend import problems
from orchestrator.frontend.admission import Admission
from orchestrator.frontend.auth import (
    Claims,
    InvalidTokenError,
    TokenSigner,
    bearer_token,
    secret_equals,
)
from orchestrator.frontend.catalog import (
    CATALOG_PATH,
    DOCS_PATH,
    OPENAPI_PATH,
    Limits,
    catalog_document,
    openapi_document,
)
from orchestrator.frontend.docs_page import CONTENT_SECURITY_POLICY, render
from orchestrator.frontend.enrichment import ENVIRON_KEY, SHARED_STEPS, Enricher, EnrichmentError
from orchestrator.frontend.httpserver import abandon_body
from orchestrator.frontend.protocol.batch import (
    BATCH_PATH,
    MAX_CALLS,
    BatchCall,
    answer,
    envelope,
    failure,
    parse_batch,
)
from orchestrator.frontend.protocol.fields import Selection, project
from orchestrator.frontend.protocol.json_body import parse_object
from orchestrator.frontend.protocol.params import parse_params, selection
from orchestrator.ops.access_log import FIELDS_ATTR, AccessLog, access_entry, backend_calls
from orchestrator.ops.admin import AdminHandler, AdminRequest, EndpointWindows
from orchestrator.ops.metrics import MetricNames, Metrics, NullSink, RequestMetrics
from orchestrator.plans import Auth, Endpoint, EndpointRegistry

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Environ = Mapping[str, Any]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_JSON = "application/json"
_WITH_BODY = frozenset({"POST", "PUT"})
_STATUS_LINES = {
    200: "200 OK",
    201: "201 Created",
    400: "400 Bad Request",
    401: "401 Unauthorized",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    408: "408 Request Timeout",
    413: "413 Content Too Large",
    415: "415 Unsupported Media Type",
    429: "429 Too Many Requests",
    500: "500 Internal Server Error",
    503: "503 Service Unavailable",
    504: "504 Gateway Timeout",
}


class Backends(Protocol):
    """The actor system, as the app uses it: whether it runs, and the door calls go through."""

    @property
    def running(self) -> bool:
        """Backend actors are up."""
        ...

    def submit(self, call: Call) -> Reply | None:
        """Tell ``call`` to its backend (``None``: a reply will come), or reject it now."""
        ...

    def record_fallbacks(self, records: Iterable[StepRecord]) -> None:
        """Count, per backend, the steps that fell back (the admin view's window)."""
        ...


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


@dataclass(frozen=True, slots=True)
class AppOptions:
    """Limits of the HTTP layer."""

    max_body_bytes: int = 65_536
    max_inflight: int = 32
    #: The operators' token; ``X-Frontdoor-Admin-Token`` with it unlocks ``meta.trace``.
    admin_token: str = ""
    #: Most calls in one batch, how many of them run at once, and the batch's own deadline
    #: (each call's is its endpoint's, cut to what is left of the batch's).
    batch_max_calls: int = MAX_CALLS
    batch_concurrency: int = 8
    batch_deadline_ms: int = 2000
    #: The longest an admin request's body may take to arrive (a device request's body has
    #: its endpoint's deadline).
    admin_body_timeout_s: float = 5.0


@dataclass(slots=True)
class _Scope:
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


@dataclass(frozen=True, slots=True)
class _Document:
    """A response made once at start-up (catalog, OpenAPI, docs page)."""

    content_type: str
    payload: bytes
    headers: tuple[tuple[str, str], ...] = ()


class FrontdoorApp:
    """The WSGI callable. Built once per process by ``create_app``."""

    def __init__(
        self,
        registry: EndpointRegistry,
        backends: Backends,
        signer: TokenSigner,
        options: AppOptions,
        clock: Callable[[], float] = time.monotonic,
        *,
        metrics: Metrics | None = None,
        access_log: AccessLog | None = None,
        windows: EndpointWindows | None = None,
        admin: AdminHandler | None = None,
        enricher: Enricher | None = None,
    ) -> None:
        """``enricher``: accept an edge's enrichment (the playback layer of the ``edge``
        topology); without one the header is ignored and every step is called."""
        self.registry = registry
        self.enricher = enricher
        if metrics is None:  # tests that build the app alone: drop metrics
            names = MetricNames("frontdoor", registry.endpoints, sorted(registry.backends()))
            metrics = Metrics(names, NullSink())
        self.metrics = metrics
        self.access_log = AccessLog(slow_request_ms=1000) if access_log is None else access_log
        self.windows = (
            EndpointWindows(registry.endpoints, clock=clock) if windows is None else windows
        )
        self.admin = admin
        self.backends = backends
        self.signer = signer
        self.options = options
        self.admission = Admission(options.max_inflight)
        self.draining = False
        self._clock = clock
        self._documents = _documents(registry, options)
        #: Each deprecated endpoint's headers, made once (dates are formatted only here).
        self._deprecations = {
            endpoint.metric_name: tuple(_deprecation_headers(endpoint))
            for endpoint in registry.endpoints
            if endpoint.deprecated is not None
        }

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request, admin routes included; never raises."""
        return self._call(environ, start_response, self.admin)

    def device_only(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """The device port's WSGI callable when admin routes have a listener of their own
        (``server.admin_port``): ``/_admin/*`` answers 404 ``not_found`` here."""
        return self._call(environ, start_response, None)

    def admin_only(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """The admin listener's WSGI callable: ``/_admin/*`` only, 404 for every other path."""
        request = self._request(environ)
        if self.admin is None or not AdminHandler.handles(request.path):
            return self._problem(start_response, request, problems.not_found(request.path))
        return self._admin(start_response, request, self.admin)

    def _request(self, environ: Environ) -> Request:
        return Request(
            _request_id(environ.get("HTTP_X_REQUEST_ID")),
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/") or "/",
            self._clock(),
            environ=environ,
            metrics=self.metrics.request(),
        )

    def _call(
        self, environ: Environ, start_response: StartResponse, admin: AdminHandler | None
    ) -> Iterable[bytes]:
        request = self._request(environ)
        early = self._early(start_response, request, admin)
        if early is not None:
            return early
        if not self.admission.try_enter():
            # Shed before any parsing or backend work: rejection must be far cheaper than work.
            problem = problems.overloaded(retry_after_s=1)
            return self._problem(start_response, request, problem)
        try:
            status, body = self._handle(environ, request)
        except problems.Problem as problem:
            return self._problem(start_response, request, problem)
        except Exception as exc:  # noqa: BLE001 - a bug becomes a 500, logged by _unhandled
            return self._unhandled(start_response, request, exc)
        finally:
            self.admission.leave()
        return self._respond(start_response, request, status, body)

    def _early(
        self, start_response: StartResponse, request: Request, admin: AdminHandler | None
    ) -> list[bytes] | None:
        """Documents, health and admin: answered before admission, even while shedding.

        ``admin`` None: admin paths are not served here (404), whatever their credentials."""
        document = self._documents.get(request.path)
        if document is not None:
            return self._document(start_response, request, document)
        builtin = self._builtin(request)
        if builtin is not None:
            status, body = builtin
            return self._respond(start_response, request, status, body)
        if AdminHandler.handles(request.path):
            if admin is None:
                return self._problem(start_response, request, problems.not_found(request.path))
            # Operators must get in while the process sheds.
            return self._admin(start_response, request, admin)
        return None

    # -- steps of a request ---------------------------------------------------------------

    def _builtin(self, request: Request) -> tuple[int, Any] | None:
        """Health routes: answered even while shedding or draining."""
        if request.path == "/healthz":
            return 200, {"status": "ok"}
        if request.path == "/readyz":
            ready = self.backends.running and not self.draining
            return (200 if ready else 503), {"ready": ready, "draining": self.draining}
        return None

    def _handle(self, environ: Environ, request: Request) -> tuple[int, Any]:
        if request.path == BATCH_PATH:
            return self._batch(environ, request)
        endpoint, path_params = self._route(request)
        scope = self._scope(environ, request.started, endpoint.deadline_ms)
        request.member_id = self._authenticate(scope, endpoint)
        body = self._read_body(environ, scope.deadline) if endpoint.method in _WITH_BODY else None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return self._serve(request, scope, endpoint, path_params, query, body)

    def _serve(
        self,
        request: Request,
        scope: _Scope,
        endpoint: Endpoint,
        path_params: Mapping[str, str],
        query: Mapping[str, list[str]],
        body: dict[str, Any] | None,
    ) -> tuple[int, Any]:
        """One call, from its parameters to its response body (a request, or a batch's call)."""
        params = parse_params(endpoint, query, path_params, body)
        selected = selection(endpoint, query)
        deadline = min(scope.deadline, request.started + endpoint.deadline_ms / 1000.0)
        with self.windows.running(endpoint.metric_name):
            result = execute_plan(
                endpoint.plan.pruned(selected),
                directory=scope.calls,
                params=params,
                member_id=request.member_id,
                deadline=deadline,
                request_id=request.request_id,
                clock=self._clock,
                presets=scope.presets,
            )
        request.records = result.records
        request.backend_calls += backend_calls(result.records)
        if request.metrics is not None:
            request.metrics.steps(result.records)
        self.backends.record_fallbacks(result.records)
        status, payload = self._result(request, endpoint, result, selected)
        if isinstance(payload, dict) and scope.trace:
            payload["meta"]["trace"] = _trace(request.started, result.records)
        return status, payload

    def _route(self, request: Request) -> tuple[Endpoint, Mapping[str, str]]:
        match = self.registry.route(request.method, request.path)
        if match.endpoint is None:
            if match.allowed:
                raise problems.method_not_allowed(match.allowed)
            raise problems.not_found(request.path)
        request.endpoint = match.endpoint
        return match.endpoint, match.path_params

    def _scope(self, environ: Environ, started: float, budget_ms: int) -> _Scope:
        """A fresh scope; ``X-Request-Timeout-Ms`` may shorten ``budget_ms``, never lengthen it."""
        scope = _Scope(
            authorization=environ.get("HTTP_AUTHORIZATION"),
            deadline=started + _budget_ms(environ, budget_ms) / 1000.0,
            calls=SharedCalls(self.backends),
            trace=self._wants_trace(environ),
        )
        sealed = environ.get(ENVIRON_KEY)
        if sealed is not None and self.enricher is not None:
            try:
                member, results = self.enricher.open(sealed)
            except EnrichmentError as exc:
                log.warning("rejected enrichment: %s", exc)
                raise problems.forbidden() from None
            scope.enriched_member = member
            scope.presets = {name: results[name] for name in SHARED_STEPS if name in results}
        return scope

    # -- batches --------------------------------------------------------------------------

    def _batch(self, environ: Environ, request: Request) -> tuple[int, Any]:
        """Run every call of a batch; the batch answers 200 whatever its calls do."""
        if request.method != "POST":
            raise problems.method_not_allowed(("POST",))
        scope = self._scope(environ, request.started, self.options.batch_deadline_ms)
        calls = parse_batch(self._read_body(environ, scope.deadline), self.options.batch_max_calls)
        pool = gevent.pool.Pool(self.options.batch_concurrency)
        replies = pool.map(
            lambda numbered: self._batch_call(request, scope, *numbered), enumerate(calls)
        )
        return 200, envelope(list(replies))

    def _batch_call(
        self, batch: Request, scope: _Scope, index: int, call: BatchCall
    ) -> dict[str, Any]:
        """One call of a batch through the common path; its failure is its reply, not raised."""
        request = Request(
            f"{batch.request_id}.{index}",
            call.method,
            call.path,
            self._clock(),
            environ=batch.environ,
            metrics=batch.metrics,
        )
        if call.problem is not None:
            return failure(call.id, call.problem, request.request_id)
        # Each call is admitted like a request of its own: a batch is that much work.
        if not self.admission.try_enter():
            return failure(call.id, problems.overloaded(retry_after_s=1), request.request_id)
        try:
            endpoint, path_params = self._route(request)
            request.member_id = self._authenticate(scope, endpoint)
            body = _call_body(endpoint, call)
            status, payload = self._serve(request, scope, endpoint, path_params, call.query, body)
        except problems.Problem as problem:
            self._observe_call(batch, request, problem.status)
            return failure(call.id, problem, request.request_id)
        except Exception:
            log.exception(
                "request %s: unhandled error",
                request.request_id,
                extra={FIELDS_ATTR: {"request_id": request.request_id}},
            )
            self._observe_call(batch, request, 500)
            return failure(call.id, problems.internal_error(), request.request_id)
        finally:
            self.admission.leave()
        self._observe_call(batch, request, status)
        return answer(call.id, status, payload, dict(request.extra_headers))

    def _wants_trace(self, environ: Environ) -> bool:
        """Traces are for engineers: they need the admin token, devices never see one."""
        if environ.get("HTTP_X_FRONTDOOR_TRACE") != "1" or not self.options.admin_token:
            return False
        presented = environ.get("HTTP_X_FRONTDOOR_ADMIN_TOKEN", "")
        return secret_equals(presented, self.options.admin_token)

    def _authenticate(self, scope: _Scope, endpoint: Endpoint) -> str | None:
        if endpoint.auth is Auth.PUBLIC:
            return None
        if scope.enriched_member is not None and endpoint.auth is Auth.MEMBER:
            return scope.enriched_member  # the edge verified the member's token
        if not scope.verified:
            scope.claims, scope.verified = self._verify(scope.authorization), True
        if scope.claims is None:
            raise problems.unauthorized()
        if endpoint.auth is Auth.ADMIN and scope.claims.scope != "admin":
            raise problems.forbidden()
        return scope.claims.sub

    def _verify(self, authorization: str | None) -> Claims | None:
        """The token's claims; None when there is no acceptable token (the reason is logged)."""
        token = bearer_token(authorization)
        if token is None:
            return None
        try:
            return self.signer.verify(token)
        except InvalidTokenError as exc:
            log.info("rejected token: %s", exc)
            return None

    def _read_body(self, environ: Environ, deadline: float) -> dict[str, Any]:
        """The JSON object body, read by ``deadline``: a client that sends its body slowly
        (or not at all) holds an admission slot only until then, and gets a 408."""
        content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if content_type != _JSON:
            raise problems.unsupported_media_type(_JSON)
        limit = self.options.max_body_bytes
        length_header = environ.get("CONTENT_LENGTH") or ""
        if length_header:
            if not length_header.isdigit():
                raise problems.malformed_json("invalid Content-Length")
            if int(length_header) > limit:
                raise problems.payload_too_large(limit)
        # Read at most one byte past the cap: never buffer an oversized body whole.
        late = _BodyTimeoutError()
        try:
            with gevent.Timeout(max(0.0, deadline - self._clock()), late):
                raw = environ["wsgi.input"].read(limit + 1)
        except _BodyTimeoutError:
            abandon_body(environ)
            raise problems.request_timeout() from None
        if len(raw) > limit:
            raise problems.payload_too_large(limit)
        return parse_object(raw)

    def _result(
        self,
        request: Request,
        endpoint: Endpoint,
        result: RunResult,
        selected: Selection | None,
    ) -> tuple[int, Any]:
        if result.status is RunStatus.TIMED_OUT:
            raise problems.deadline_exceeded()
        if result.status is RunStatus.REJECTED and result.rejection is not None:
            why = result.rejection
            raise problems.refused(why.code, why.detail, why.parameter)
        if result.status is not RunStatus.OK:
            if result.failed_step in {"compose", "supervisor"}:
                raise problems.internal_error()
            raise problems.dependency_unavailable(_retry_after(result))
        body = result.body
        degraded = result.degraded
        if isinstance(body, dict):
            # A body passed through from another Frontdoor (the edge's playback layer)
            # carries that one's meta: its degraded parts are this response's too.
            degraded += _upstream_degraded(body.pop("meta", None), degraded)
            if endpoint.grants_member_token and isinstance(body.get("member_id"), str):
                body["token"] = self.signer.issue(body["member_id"])
            if selected is not None:
                body = project(body, selected)
            # meta is the protocol's, not the endpoint's: present whatever is selected.
            body["meta"] = {"degraded": list(degraded)}
        request.degraded = degraded
        if endpoint.deprecated is not None:
            request.extra_headers.extend(self._deprecations[endpoint.metric_name])
        return endpoint.success_status, body

    # -- responses ------------------------------------------------------------------------

    def _unhandled(
        self, start_response: StartResponse, request: Request, exc: Exception
    ) -> list[bytes]:
        """A bug: logged once, with its traceback and request id; the device gets a 500."""
        log.error(
            "request %s: unhandled error",
            request.request_id,
            exc_info=exc,
            extra={FIELDS_ATTR: {"request_id": request.request_id}},
        )
        return self._problem(start_response, request, problems.internal_error())

    def _respond(
        self, start_response: StartResponse, request: Request, status: int, body: Any
    ) -> list[bytes]:
        payload = encode_json(body)
        headers = [
            ("Content-Type", _JSON),
            ("Content-Length", str(len(payload))),
            ("X-Request-Id", request.request_id),
            ("Cache-Control", "no-store"),
            *request.extra_headers,
        ]
        start_response(_STATUS_LINES.get(status, f"{status} Unknown"), headers)
        self._observe(request, status)
        return [payload]

    def _document(
        self, start_response: StartResponse, request: Request, document: _Document
    ) -> list[bytes]:
        if request.method != "GET":
            return self._problem(start_response, request, problems.method_not_allowed(("GET",)))
        headers = [
            ("Content-Type", document.content_type),
            ("Content-Length", str(len(document.payload))),
            ("X-Request-Id", request.request_id),
            *document.headers,
        ]
        start_response(_STATUS_LINES[200], headers)
        return [document.payload]

    def _problem(
        self, start_response: StartResponse, request: Request, problem: problems.Problem
    ) -> list[bytes]:
        payload = problem.to_body(request.request_id)
        headers = [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(payload))),
            ("X-Request-Id", request.request_id),
            ("Cache-Control", "no-store"),
            *problem.headers.items(),
        ]
        start_response(_STATUS_LINES.get(problem.status, f"{problem.status} Error"), headers)
        self._observe(request, problem.status)
        return [payload]

    # -- observability ---------------------------------------------------------------------

    def _admin(
        self, start_response: StartResponse, request: Request, admin: AdminHandler
    ) -> list[bytes]:
        environ = request.environ
        admin_request = AdminRequest(
            method=request.method,
            path=request.path,
            authorization=environ.get("HTTP_AUTHORIZATION"),
            request_id=request.request_id,
            client=environ.get("REMOTE_ADDR"),
            read_body=lambda: self._read_body(
                environ, self._clock() + self.options.admin_body_timeout_s
            ),
        )
        try:
            reply = admin.handle(admin_request)
        except problems.Problem as problem:
            return self._problem(start_response, request, problem)
        except Exception as exc:  # noqa: BLE001 - a bug becomes a 500, logged by _unhandled
            return self._unhandled(start_response, request, exc)
        return self._respond(start_response, request, reply.status, reply.body)

    def _observe(self, request: Request, status: int) -> None:
        """A finished HTTP request: its metrics (one pipeline), window and access line."""
        if request.path in _HEALTH_PATHS or request.metrics is None:
            return  # probes every second would drown the access log
        latency_ms = (self._clock() - request.started) * 1000.0
        endpoint = request.endpoint
        degraded = bool(request.degraded)
        try:
            if endpoint is not None:
                request.metrics.endpoint(endpoint.metric_name)
                self.windows.record(endpoint.metric_name, status, latency_ms, degraded=degraded)
            request.metrics.finish(status, latency_ms, degraded=degraded)
            entry = access_entry(
                request.environ,
                request_id=request.request_id,
                status=status,
                latency_ms=latency_ms,
                endpoint=None if endpoint is None else endpoint.metric_name,
                team=None if endpoint is None else endpoint.team,
                degraded=request.degraded,
                backend_calls=request.backend_calls,
            )
            self.access_log.write(entry, lambda: _trace(request.started, request.records))
        except Exception:
            log.exception(
                "request %s: recording metrics or access log failed",
                request.request_id,
                extra={FIELDS_ATTR: {"request_id": request.request_id}},
            )

    def _observe_call(self, batch: Request, request: Request, status: int) -> None:
        """One call of a batch: its endpoint's stats join the batch's pipeline."""
        batch.backend_calls += request.backend_calls
        endpoint = request.endpoint
        if endpoint is None or batch.metrics is None:
            return
        latency_ms = (self._clock() - request.started) * 1000.0
        degraded = bool(request.degraded)
        batch.metrics.endpoint_result(endpoint.metric_name, status, latency_ms, degraded=degraded)
        self.windows.record(endpoint.metric_name, status, latency_ms, degraded=degraded)


_HEALTH_PATHS = frozenset({"/healthz", "/readyz"})


class _BodyTimeoutError(Exception):
    """The request body did not arrive by the deadline (an Exception, unlike gevent.Timeout)."""


def _trace(started: float, records: tuple[StepRecord, ...]) -> list[dict[str, Any]]:
    """Each step's story in milliseconds since the request arrived."""

    def ms(moment: float) -> float | None:
        return round((moment - started) * 1000.0, 3) if moment else None

    return [
        {
            "step": record.step.name,
            "backend": record.step.backend,
            "outcome": record.outcome or "unfinished",
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


def _documents(registry: EndpointRegistry, options: AppOptions) -> dict[str, _Document]:
    """The discovery documents, rendered once: the registry never changes after start-up."""
    limits = Limits(options.batch_max_calls, options.batch_concurrency)
    openapi = openapi_document(registry, limits)
    # Cacheable for a while: they change only with a deployment.
    cache = ("Cache-Control", "public, max-age=300")
    return {
        CATALOG_PATH: _Document(_JSON, encode_json(catalog_document(registry, limits)), (cache,)),
        OPENAPI_PATH: _Document(_JSON, encode_json(openapi), (cache,)),
        DOCS_PATH: _Document(
            "text/html; charset=utf-8",
            render(openapi).encode(),
            (cache, ("Content-Security-Policy", CONTENT_SECURITY_POLICY)),
        ),
    }


def encode_json(document: Any) -> bytes:
    """A response body: compact UTF-8 JSON, as ``json.dumps(separators=(",", ":"),
    ensure_ascii=False)`` writes it, ~14x faster (orjson). Non-string keys are written as
    strings, like ``json``; NaN and infinities (never in a body: backend replies that carry
    them are refused) would become null."""
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)


def _call_body(endpoint: Endpoint, call: BatchCall) -> dict[str, Any] | None:
    """A batch call's body: an object for endpoints that take one, else none at all."""
    if endpoint.method in _WITH_BODY:
        return {} if call.body is None else call.body
    if call.body is not None:
        raise problems.invalid_batch(f"{endpoint.method} {endpoint.path} takes no body")
    return None


def _upstream_degraded(meta: object, known: tuple[str, ...]) -> tuple[str, ...]:
    """The degraded parts an upstream Frontdoor's ``meta`` lists, minus those already known."""
    listed = meta.get("degraded") if isinstance(meta, dict) else None
    if not isinstance(listed, list):
        return ()
    return tuple(
        part for part in dict.fromkeys(listed) if isinstance(part, str) and part not in known
    )


#: Outcomes by which Frontdoor itself refused a call (breaker open, bulkhead full).
_REFUSED_HERE = frozenset({Outcome.SHORT_CIRCUITED.value, Outcome.REJECTED.value})
#: What a device is told to wait after such a refusal: brief, and cheap to answer again.
_DEPENDENCY_RETRY_AFTER_S = 1.0


def _retry_after(result: RunResult) -> float | None:
    """``Retry-After`` for a failed run: only when the failed step was refused here."""
    for record in result.records:
        if record.step.name == result.failed_step:
            return _DEPENDENCY_RETRY_AFTER_S if record.outcome in _REFUSED_HERE else None
    return None


def _deprecation_headers(endpoint: Endpoint) -> list[tuple[str, str]]:
    """RFC 9745 ``Deprecation`` (a structured-field date), RFC 8594 ``Sunset`` (an HTTP
    date) and a ``Link`` to the successor and to the deprecation's documentation."""
    if endpoint.deprecated is None:
        return []
    headers = [("Deprecation", f"@{int(endpoint.deprecated.timestamp())}")]
    if endpoint.sunset is not None:
        sunset = email.utils.format_datetime(endpoint.sunset.astimezone(UTC), usegmt=True)
        headers.append(("Sunset", sunset))
    links = [f'<{DOCS_PATH}#{endpoint.api}.{endpoint.name}>; rel="deprecation"; type="text/html"']
    if endpoint.successor is not None:
        links.insert(0, f'<{endpoint.successor}>; rel="successor-version"')
    headers.append(("Link", ", ".join(links)))
    return headers


def _request_id(header: str | None) -> str:
    """Accept a well-formed device request id; otherwise make one (128 random bits)."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return f"{_IDS.getrandbits(128):032x}"


#: Request ids need to be unique, not secret: a generator seeded from the OS once per
#: process costs ~0.3 µs an id, where os.urandom is a system call each (~5 µs).
_IDS = random.Random(os.urandom(32))  # noqa: S311 - correlation ids, not secrets
# A forked worker (gunicorn --preload) must not repeat its parent's, or a sibling's, ids.
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))


def _budget_ms(environ: Environ, budget_ms: int) -> int:
    """``budget_ms``, lowered (never raised) by ``X-Request-Timeout-Ms``, and by the budget
    an upstream Frontdoor passes on (``X-Frontdoor-Deadline-Ms``, the edge topology)."""
    upstream = environ.get("HTTP_X_FRONTDOOR_DEADLINE_MS")
    if upstream is not None and upstream.isdigit() and 0 < len(upstream) <= 9:  # noqa: PLR2004
        budget_ms = min(int(upstream), budget_ms)
    asked = environ.get("HTTP_X_REQUEST_TIMEOUT_MS")
    if asked is None:
        return budget_ms
    if not asked.isdigit() or len(asked) > 9 or int(asked) < 1:  # noqa: PLR2004 - digit cap
        raise problems.invalid_parameter(
            "X-Request-Timeout-Ms", "must be a positive integer of milliseconds"
        )
    return min(int(asked), budget_ms)
