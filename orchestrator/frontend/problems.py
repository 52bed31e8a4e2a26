"""Problem details (RFC 9457): the only shape in which devices see errors.

A ``Problem`` is both the exception the request path raises and the value the WSGI layer
renders: ``status_line``, ``headers`` and ``to_body(request_id)`` give everything the
response needs. Each problem has a stable snake_case ``code`` from ``CODES``, which fixes
its status and title, so clients and alerting can key on it and docs can list them all.

Details are written by Frontdoor for devices: factories take only what is safe to show
(a parameter name, a limit), never an exception, a backend host or a backend body.
Device input echoed back (a path) is clipped and JSON-escaped.
"""

from __future__ import annotations

import http
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, TypeAlias

__all__ = [
    "CODES",
    "CONTENT_TYPE",
    "REFUSALS",
    "TYPE_BASE_URI",
    "JsonValue",
    "Problem",
    "ProblemType",
    "backend_timeout",
    "bad_request",
    "deadline_exceeded",
    "dependency_unavailable",
    "forbidden",
    "headers_too_large",
    "internal_error",
    "invalid_batch",
    "invalid_fields",
    "invalid_parameter",
    "malformed_body",
    "malformed_json",
    "method_not_allowed",
    "not_found",
    "overloaded",
    "payload_too_large",
    "rate_limited",
    "refused",
    "request_timeout",
    "unauthorized",
    "unsupported_media_type",
    "unsupported_transfer_coding",
    "uri_too_long",
]

CONTENT_TYPE: Final = "application/problem+json"
TYPE_BASE_URI: Final = "https://frontdoor.example/problems/"

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"

# Device input echoed in a detail is cut here: enough to recognise, too little to abuse.
_MAX_ECHO_CHARS: Final = 120
# Members RFC 9457 and Frontdoor define; extras may not overwrite them.
_RESERVED: Final = frozenset(
    {"type", "title", "status", "detail", "instance", "code", "request_id"}
)


#: The codes of requests the HTTP server refuses before the application runs (framing,
#: oversized or late heads: ``orchestrator/frontend/httpserver.py``); each has a counter,
#: ``frontend.refused.<code>`` (``orchestrator/ops/metrics.py``).
REFUSALS: Final = (
    "bad_request",
    "malformed_body",
    "request_timeout",
    "uri_too_long",
    "headers_too_large",
    "unsupported_transfer_coding",
    "internal_error",
)


@dataclass(frozen=True, slots=True)
class ProblemType:
    """What a code always means: its HTTP status and its short, fixed title."""

    status: int
    title: str


#: Every code a device can receive. Adding a problem means adding its code here.
CODES: Final[Mapping[str, ProblemType]] = MappingProxyType(
    {
        "bad_request": ProblemType(400, "Bad request"),
        "invalid_parameter": ProblemType(400, "Invalid parameter"),
        "malformed_json": ProblemType(400, "Malformed JSON"),
        "malformed_body": ProblemType(400, "Malformed body"),
        "invalid_fields": ProblemType(400, "Invalid fields"),
        "invalid_batch": ProblemType(400, "Invalid batch"),
        "unauthorized": ProblemType(401, "Unauthorized"),
        "forbidden": ProblemType(403, "Forbidden"),
        "payment_declined": ProblemType(402, "Payment declined"),
        "not_found": ProblemType(404, "Not found"),
        "method_not_allowed": ProblemType(405, "Method not allowed"),
        "request_timeout": ProblemType(408, "Request timeout"),
        "already_exists": ProblemType(409, "Already exists"),
        "payload_too_large": ProblemType(413, "Payload too large"),
        "uri_too_long": ProblemType(414, "URI too long"),
        "unsupported_media_type": ProblemType(415, "Unsupported media type"),
        "rate_limited": ProblemType(429, "Too many requests"),
        "headers_too_large": ProblemType(431, "Request headers too large"),
        "internal_error": ProblemType(500, "Internal error"),
        "unsupported_transfer_coding": ProblemType(501, "Unsupported transfer coding"),
        "dependency_unavailable": ProblemType(503, "Dependency unavailable"),
        "overloaded": ProblemType(503, "Overloaded"),
        "deadline_exceeded": ProblemType(504, "Deadline exceeded"),
        "backend_timeout": ProblemType(504, "Backend timeout"),
    }
)


def _json_value(value: object) -> JsonValue:
    """A copy of ``value`` that ``json.dumps`` is sure to accept, checked at the raise site."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("problem members must be finite numbers")
        return value
    if isinstance(value, Mapping):
        return {str(key): _json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(item) for item in value]
    raise TypeError(f"problem members must be JSON values, not {type(value).__name__}")


def _clip(text: str) -> str:
    return text if len(text) <= _MAX_ECHO_CHARS else text[:_MAX_ECHO_CHARS] + "..."


class Problem(Exception):  # noqa: N818 - it is the RFC's name, and also a value, not only an error
    """An error as devices see it: a code from ``CODES``, a detail, extra members, headers.

    Raise it anywhere on the request path; the app renders it with ``to_body``. The
    members are fixed at construction: treat a Problem as an immutable value.
    """

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        extras: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        problem_type = CODES.get(code)
        if problem_type is None:
            raise ValueError(f"unknown problem code {code!r}; add it to CODES")
        extra_members = dict(extras or {})
        clash = _RESERVED.intersection(extra_members)
        if clash:
            raise ValueError(f"extras may not redefine {sorted(clash)}")
        header_items = dict(headers or {})
        # A CR or LF in a header value would let one header forge others.
        if any("\r" in v or "\n" in v for v in (*header_items, *header_items.values())):
            raise ValueError("header names and values may not contain CR or LF")
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.status = problem_type.status
        self.title = problem_type.title
        self.detail = detail
        self.extras: Mapping[str, JsonValue] = MappingProxyType(
            {key: _json_value(value) for key, value in extra_members.items()}
        )
        self.headers: Mapping[str, str] = MappingProxyType(header_items)

    @property
    def type_uri(self) -> str:
        """The ``type`` member: a URI naming the code, documented at that address."""
        return TYPE_BASE_URI + self.code

    @property
    def status_line(self) -> str:
        """The WSGI status, e.g. ``"404 Not Found"``."""
        return f"{self.status} {http.HTTPStatus(self.status).phrase}"

    def to_body(self, request_id: str) -> bytes:
        """The ``application/problem+json`` body, tagged with the request id."""
        body = self.to_dict(request_id)
        # ASCII-only output: any device text echoed back arrives escaped, never raw.
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode("ascii")

    def to_dict(self, request_id: str) -> dict[str, JsonValue]:
        """The members of the body as a JSON object (a batch nests it in its envelope)."""
        body: dict[str, JsonValue] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
            "request_id": request_id,
        }
        body.update(self.extras)
        return body

    def __repr__(self) -> str:
        return f"Problem({self.code!r}, {self.detail!r})"


def _retry_after(seconds: float) -> str:
    # Retry-After takes whole seconds (RFC 9110 section 10.2.3); round up, at least 1.
    if not math.isfinite(seconds):
        raise ValueError("retry_after_s must be finite")
    return str(max(1, math.ceil(seconds)))


def bad_request(detail: str) -> Problem:
    """400: the request is wrong in a way no more specific code covers."""
    return Problem("bad_request", detail)


def invalid_parameter(name: str, reason: str) -> Problem:
    """400: one parameter failed validation; ``parameter`` names it."""
    return Problem(
        "invalid_parameter",
        f"Parameter '{_clip(name)}' is invalid: {_clip(reason)}",
        extras={"parameter": _clip(name)},
    )


def invalid_fields(reason: str, position: int, *, allowed: Iterable[str] | None = None) -> Problem:
    """400: the ``fields`` selection is wrong at character ``position`` (1-based).

    ``allowed`` lists the valid names at that level when the problem is an unknown name.
    """
    extras: dict[str, object] = {"parameter": "fields", "position": position}
    detail = f"Parameter 'fields' is invalid at character {position}: {_clip(reason)}"
    if allowed is not None:
        names = list(allowed)
        extras["allowed"] = names
        detail += f" (valid here: {', '.join(names)})"
    return Problem("invalid_fields", detail, extras=extras)


def invalid_batch(reason: str) -> Problem:
    """400: a batch, or one call in it, is not shaped as ``POST /v1/batch`` requires."""
    return Problem("invalid_batch", f"The batch is invalid: {_clip(reason)}")


def malformed_json(reason: str) -> Problem:
    """400: the request body is not acceptable JSON (syntax, depth, size, duplicate keys)."""
    return Problem("malformed_json", f"The request body is not valid JSON: {_clip(reason)}")


def malformed_body(reason: str) -> Problem:
    """400: the request's framing is broken (RFC 9112 section 6): conflicting lengths, a bad
    chunk, a body shorter than declared. The connection is closed after it: where the next
    request would start is unknown."""
    return Problem(
        "malformed_body",
        f"The request body is malformed: {_clip(reason)}",
        headers={"Connection": "close"},
    )


def unauthorized(*, invalid_token: bool = False) -> Problem:
    """401: no usable credentials. The reason a token failed is never told (RFC 6750)."""
    challenge = 'Bearer error="invalid_token"' if invalid_token else "Bearer"
    return Problem(
        "unauthorized",
        "A valid bearer token is required.",
        headers={"WWW-Authenticate": challenge},
    )


def forbidden() -> Problem:
    """403: the credentials are valid but do not allow this endpoint."""
    return Problem("forbidden", "These credentials do not allow this request.")


def not_found(path: str) -> Problem:
    """404: no endpoint at ``path`` (echoed clipped)."""
    return Problem("not_found", f"No endpoint at {_clip(path)}.")


def method_not_allowed(allowed: Iterable[str]) -> Problem:
    """405: the path exists with other methods, listed in ``allowed`` and in ``Allow``."""
    methods = list(dict.fromkeys(method.upper() for method in allowed))
    listed = ", ".join(methods)
    return Problem(
        "method_not_allowed",
        f"Use one of: {listed}." if methods else "This path takes no method.",
        extras={"allowed": methods},
        headers={"Allow": listed},
    )


def request_timeout() -> Problem:
    """408: the request did not arrive in time. The connection is closed after it (RFC 9110
    section 15.5.9): what is left of the body would otherwise be read as the next request."""
    return Problem(
        "request_timeout",
        "The request was not received in time.",
        headers={"Connection": "close"},
    )


def payload_too_large(max_bytes: int) -> Problem:
    """413: the body is over the limit, given in ``max_bytes``."""
    return Problem(
        "payload_too_large",
        f"The request body exceeds {max_bytes} bytes.",
        extras={"max_bytes": max_bytes},
    )


def uri_too_long(max_chars: int) -> Problem:
    """414: the request target is over the limit, given in ``max_chars``."""
    return Problem(
        "uri_too_long",
        f"The request URI exceeds {max_chars} characters.",
        extras={"max_chars": max_chars},
    )


def unsupported_transfer_coding() -> Problem:
    """501: the body has a transfer coding other than ``chunked`` (RFC 9112 section 6.1).
    The connection is closed after it: the body cannot be skipped."""
    return Problem(
        "unsupported_transfer_coding",
        "The only transfer coding accepted is chunked.",
        headers={"Connection": "close"},
    )


def unsupported_media_type(expected: str = "application/json") -> Problem:
    """415: the body is not in the media type the endpoint takes."""
    return Problem("unsupported_media_type", f"Send the request body as {expected}.")


def rate_limited(retry_after_s: float) -> Problem:
    """429: this client sent too much; it may retry after ``Retry-After`` seconds."""
    return Problem(
        "rate_limited",
        "Too many requests from this client; retry later.",
        headers={"Retry-After": _retry_after(retry_after_s)},
    )


def headers_too_large() -> Problem:
    """431: the request headers are over the limit."""
    return Problem("headers_too_large", "The request headers are too large.")


def internal_error() -> Problem:
    """500: a bug. Nothing of it is shown; the request id finds it in the logs."""
    return Problem(
        "internal_error",
        "An unexpected error occurred; quote the request id when reporting it.",
    )


def dependency_unavailable(retry_after_s: float | None = None) -> Problem:
    """503: a service this request needs failed and had no fallback (which one stays internal).

    ``retry_after_s`` is given when Frontdoor itself refused the call (breaker open, bulkhead
    full): then it knows the refusal is brief and says when to come back.
    """
    headers = None if retry_after_s is None else {"Retry-After": _retry_after(retry_after_s)}
    return Problem(
        "dependency_unavailable",
        "A service this request depends on is unavailable; retry later.",
        headers=headers,
    )


def refused(code: str, detail: str, parameter: str = "") -> Problem:
    """4xx: a service refused what the device asked for (``code`` from ``CODES``).

    ``detail`` is the endpoint's own text for devices; ``parameter`` names the culprit.
    """
    extras = {"parameter": parameter} if parameter else None
    return Problem(code, detail, extras=extras)


def overloaded(retry_after_s: float) -> Problem:
    """503: shed under load before any work was done; ``Retry-After`` says when to return."""
    return Problem(
        "overloaded",
        "The service is overloaded; retry later.",
        headers={"Retry-After": _retry_after(retry_after_s)},
    )


def backend_timeout() -> Problem:
    """504: a service this request needs did not answer within its own timeout, before the
    request's deadline (which one stays internal, as for ``dependency_unavailable``)."""
    return Problem(
        "backend_timeout",
        "A service this request depends on did not answer within its own timeout;"
        " the request's deadline had not passed.",
    )


def deadline_exceeded() -> Problem:
    """504: the request's deadline passed before a response could be built."""
    return Problem("deadline_exceeded", "The request did not complete within its deadline.")
