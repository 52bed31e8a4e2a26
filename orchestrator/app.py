"""The WSGI application: one request in, one supervisor run, one JSON response out.

The order of work for a request, in one place:
  request id -> admission (shed with 503 before any work) -> built-in routes -> route ->
  authenticate -> parse body and parameters -> deadline -> run the plan -> respond.
Every failure becomes an ``application/problem+json`` response with a stable code and the
request id; no exception, stack trace or backend body reaches a device.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import parse_qs

from actors.plan import RunResult, RunStatus, StepRecord
from orchestrator import problems
from orchestrator.admission import Admission
from orchestrator.auth import InvalidTokenError, TokenSigner, bearer_token, secret_equals
from orchestrator.plans import Auth, Endpoint, EndpointRegistry
from orchestrator.protocol.json_body import parse_object
from orchestrator.protocol.params import parse_params

log = logging.getLogger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]
Environ = Mapping[str, Any]

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_JSON = "application/json"
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


class PlanExecutor(Protocol):
    """Runs a plan by its deadline (the actor system)."""

    @property
    def running(self) -> bool:
        """Backend actors are up."""
        ...

    def execute(
        self,
        plan: Any,
        *,
        params: dict[str, Any],
        member_id: str | None,
        deadline: float,
        request_id: str,
    ) -> RunResult:
        """Run one request's plan."""
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


@dataclass(frozen=True, slots=True)
class AppOptions:
    """Limits of the HTTP layer."""

    max_body_bytes: int = 65_536
    max_inflight: int = 200
    #: The operators' token; ``X-Frontdoor-Admin-Token`` with it unlocks ``meta.trace``.
    admin_token: str = ""


class FrontdoorApp:
    """The WSGI callable. Built once per process by ``create_app``."""

    def __init__(
        self,
        registry: EndpointRegistry,
        executor: PlanExecutor,
        signer: TokenSigner,
        options: AppOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry
        self.executor = executor
        self.signer = signer
        self.options = options
        self.admission = Admission(options.max_inflight)
        self.draining = False
        self._clock = clock

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request; never raises."""
        request = Request(
            _request_id(environ.get("HTTP_X_REQUEST_ID")),
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/") or "/",
            self._clock(),
        )
        builtin = self._builtin(request)
        if builtin is not None:
            status, body = builtin
            return self._respond(start_response, request, status, body)
        if not self.admission.try_enter():
            # Shed before any parsing or backend work: rejection must be far cheaper than work.
            problem = problems.overloaded(retry_after_s=1)
            return self._problem(start_response, request, problem)
        try:
            status, body = self._handle(environ, request)
        except problems.Problem as problem:
            return self._problem(start_response, request, problem)
        except Exception:
            log.exception("request %s: unhandled error", request.request_id)
            return self._problem(start_response, request, problems.internal_error())
        finally:
            self.admission.leave()
        return self._respond(start_response, request, status, body)

    # -- steps of a request ---------------------------------------------------------------

    def _builtin(self, request: Request) -> tuple[int, Any] | None:
        """Health routes: answered even while shedding or draining."""
        if request.path == "/healthz":
            return 200, {"status": "ok"}
        if request.path == "/readyz":
            ready = self.executor.running and not self.draining
            return (200 if ready else 503), {"ready": ready, "draining": self.draining}
        return None

    def _handle(self, environ: Environ, request: Request) -> tuple[int, Any]:
        match = self.registry.route(request.method, request.path)
        endpoint = match.endpoint
        if endpoint is None:
            if match.allowed:
                raise problems.method_not_allowed(match.allowed)
            raise problems.not_found(request.path)
        request.endpoint = endpoint
        request.member_id = self._authenticate(environ, endpoint)
        body = self._read_body(environ) if endpoint.method in {"POST", "PUT"} else None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        params = parse_params(endpoint, query, match.path_params, body)
        deadline = request.started + _budget_ms(environ, endpoint) / 1000.0
        result = self.executor.execute(
            endpoint.plan,
            params=params,
            member_id=request.member_id,
            deadline=deadline,
            request_id=request.request_id,
        )
        status, body = self._result(request, endpoint, result)
        if isinstance(body, dict) and self._wants_trace(environ):
            body["meta"]["trace"] = _trace(request.started, result.records)
        return status, body

    def _wants_trace(self, environ: Environ) -> bool:
        """Traces are for engineers: they need the admin token, devices never see one."""
        if environ.get("HTTP_X_FRONTDOOR_TRACE") != "1" or not self.options.admin_token:
            return False
        presented = environ.get("HTTP_X_FRONTDOOR_ADMIN_TOKEN", "")
        return secret_equals(presented, self.options.admin_token)

    def _authenticate(self, environ: Environ, endpoint: Endpoint) -> str | None:
        if endpoint.auth is Auth.PUBLIC:
            return None
        token = bearer_token(environ.get("HTTP_AUTHORIZATION"))
        if token is None:
            raise problems.unauthorized()
        try:
            claims = self.signer.verify(token)
        except InvalidTokenError as exc:
            log.info("rejected token: %s", exc)
            raise problems.unauthorized() from exc
        if endpoint.auth is Auth.ADMIN and claims.scope != "admin":
            raise problems.forbidden()
        return claims.sub

    def _read_body(self, environ: Environ) -> dict[str, Any]:
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
        raw = environ["wsgi.input"].read(limit + 1)
        if len(raw) > limit:
            raise problems.payload_too_large(limit)
        return parse_object(raw)

    def _result(self, request: Request, endpoint: Endpoint, result: RunResult) -> tuple[int, Any]:
        if result.status is RunStatus.TIMED_OUT:
            raise problems.deadline_exceeded()
        if result.status is RunStatus.FAILED:
            if result.failed_step in {"compose", "supervisor"}:
                raise problems.internal_error()
            raise problems.dependency_unavailable()
        body = result.body
        request.degraded = result.degraded
        if isinstance(body, dict):
            if endpoint.grants_member_token and isinstance(body.get("member_id"), str):
                body["token"] = self.signer.issue(body["member_id"])
            body["meta"] = {"degraded": list(result.degraded)}
        if endpoint.successor is not None:
            request.extra_headers.append(("Deprecation", "true"))
            if endpoint.sunset is not None:
                request.extra_headers.append(("Sunset", endpoint.sunset))
            request.extra_headers.append(
                ("Link", f'<{endpoint.successor}>; rel="successor-version"')
            )
        return endpoint.success_status, body

    # -- responses ------------------------------------------------------------------------

    def _respond(
        self, start_response: StartResponse, request: Request, status: int, body: Any
    ) -> list[bytes]:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        headers = [
            ("Content-Type", _JSON),
            ("Content-Length", str(len(payload))),
            ("X-Request-Id", request.request_id),
            ("Cache-Control", "no-store"),
            *request.extra_headers,
        ]
        start_response(_STATUS_LINES.get(status, f"{status} Unknown"), headers)
        return [payload]

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
        return [payload]


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


def _request_id(header: str | None) -> str:
    """Accept a well-formed device request id; otherwise make one (128 random bits)."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


def _budget_ms(environ: Environ, endpoint: Endpoint) -> int:
    """The endpoint's deadline, lowered (never raised) by ``X-Request-Timeout-Ms``."""
    asked = environ.get("HTTP_X_REQUEST_TIMEOUT_MS")
    if asked is None:
        return endpoint.deadline_ms
    if not asked.isdigit() or len(asked) > 9 or int(asked) < 1:  # noqa: PLR2004 - digit cap
        raise problems.invalid_parameter(
            "X-Request-Timeout-Ms", "must be a positive integer of milliseconds"
        )
    return min(int(asked), endpoint.deadline_ms)
