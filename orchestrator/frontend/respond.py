"""The response stage: every answer a device gets is written here, and observed once.

A JSON body (``Responder.json``), an ``application/problem+json`` problem with a stable
code and the request id (``Responder.problem``; an unexpected exception becomes a logged
500: ``Responder.unhandled``), or a document made at start-up (``Responder.document``:
cacheable, and not observed). No exception, stack trace or backend body reaches a device.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

import orjson

from orchestrator.frontend import problems
from orchestrator.frontend.observe import Observer
from orchestrator.frontend.request import LOGGER, Request, StartResponse
from orchestrator.ops.access_log import FIELDS_ATTR

__all__ = ["JSON", "STATUS_LINES", "Document", "Responder", "encode_json"]

log = logging.getLogger(LOGGER)

JSON: Final = "application/json"
STATUS_LINES: Final = {
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


@dataclass(frozen=True, slots=True)
class Document:
    """A response made once at start-up (catalog, OpenAPI, docs page)."""

    content_type: str
    payload: bytes
    headers: tuple[tuple[str, str], ...] = ()


class Responder:
    """Writes responses through ``start_response``; each request's ends in ``observer``."""

    __slots__ = ("_observer",)

    def __init__(self, observer: Observer) -> None:
        self._observer = observer

    def json(
        self, start_response: StartResponse, request: Request, status: int, body: Any
    ) -> list[bytes]:
        """``body`` as JSON, with the request's extra headers."""
        payload = encode_json(body)
        headers = [
            ("Content-Type", JSON),
            ("Content-Length", str(len(payload))),
            ("X-Request-Id", request.request_id),
            ("Cache-Control", "no-store"),
            *request.extra_headers,
        ]
        start_response(STATUS_LINES.get(status, f"{status} Unknown"), headers)
        self._observer.finished(request, status)
        return [payload]

    def problem(
        self, start_response: StartResponse, request: Request, problem: problems.Problem
    ) -> list[bytes]:
        """``problem`` as ``application/problem+json``, with its own headers."""
        payload = problem.to_body(request.request_id)
        headers = [
            ("Content-Type", "application/problem+json"),
            ("Content-Length", str(len(payload))),
            ("X-Request-Id", request.request_id),
            ("Cache-Control", "no-store"),
            *problem.headers.items(),
        ]
        start_response(STATUS_LINES.get(problem.status, f"{problem.status} Error"), headers)
        self._observer.finished(request, problem.status)
        return [payload]

    def unhandled(
        self, start_response: StartResponse, request: Request, exc: Exception
    ) -> list[bytes]:
        """A bug: logged once, with its traceback and request id; the device gets a 500."""
        log.error(
            "request %s: unhandled error",
            request.request_id,
            exc_info=exc,
            extra={FIELDS_ATTR: {"request_id": request.request_id}},
        )
        return self.problem(start_response, request, problems.internal_error())

    def document(
        self, start_response: StartResponse, request: Request, document: Document
    ) -> list[bytes]:
        """A document, to GET only."""
        if request.method != "GET":
            return self.problem(start_response, request, problems.method_not_allowed(("GET",)))
        headers = [
            ("Content-Type", document.content_type),
            ("Content-Length", str(len(document.payload))),
            ("X-Request-Id", request.request_id),
            *document.headers,
        ]
        start_response(STATUS_LINES[200], headers)
        return [document.payload]


def encode_json(document: Any) -> bytes:
    """A response body: compact UTF-8 JSON, as ``json.dumps(separators=(",", ":"),
    ensure_ascii=False)`` writes it, ~14x faster (orjson). Non-string keys are written as
    strings, like ``json``; NaN and infinities (never in a body: backend replies that carry
    them are refused) would become null."""
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)
