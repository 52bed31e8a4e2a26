"""The backend client: one JSON call, bounded in total time, decoded strictly.

It owns everything between a ``BackendRequest`` and a decoded reply that is not about
moving bytes: the time budget, the headers that carry the request id and deadline, the
status mapping and the JSON rules. The ``Transport`` below it moves the bytes.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

import gevent

from backends.errors import (
    BackendDeadlineError,
    BackendProtocolError,
    BackendStatusError,
    BackendTimeoutError,
)
from backends.specs import BackendSpec
from backends.transport import BackendRequest, Transport

__all__ = ["BackendClient"]

_MS_PER_S = 1000
_HTTP_OK_MIN = 200
_HTTP_REDIRECT_MIN = 300
_HTTP_REDIRECT_END = 400
#: Headers the client sets itself (lower case); a request cannot replace them.
_CLIENT_HEADERS = frozenset(
    {"accept", "content-type", "content-length", "host", "x-request-id", "x-frontdoor-deadline-ms"}
)
# An escaped UTF-16 surrogate; only when one appears is the slower lone-surrogate check run.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(_name: str) -> Any:
    # NaN and +/-Infinity are not JSON (RFC 8259) and would break our own responses.
    raise ValueError("non-finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # e.g. 1e400 overflows to inf
        raise ValueError("non-finite number")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last duplicate silently; two readers could disagree on the value.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate object key")
    return obj


# Stateless and reusable: building a decoder per call (as json.loads(**kw) does) is waste.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_unique_keys,
    parse_constant=_reject_constant,
    parse_float=_finite_float,
)


def _decode_json(body: bytes) -> Any:
    """Decode a reply body strictly: UTF-8, finite numbers, unique keys, object or array.

    Raises ``BackendProtocolError`` (with a fixed message: body text never reaches an
    exception message) for anything else, including nesting too deep to parse.
    """
    try:
        text = body.decode("utf-8")
        value = _DECODER.decode(text)
        if _ESCAPED_SURROGATE.search(text) is not None:
            # "\ud800" decodes to a lone surrogate that no UTF-8 encoder accepts; pairs pass.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError) as exc:  # UnicodeError and JSONDecodeError included
        raise BackendProtocolError("reply body is not valid JSON") from exc
    if not isinstance(value, dict | list):
        raise BackendProtocolError("reply body is not a JSON object or array")
    return value


class BackendClient:
    """Calls one backend: budget, headers, status mapping and strict JSON decoding.

    Raises only ``backends.errors`` for anything the backend or the network does; a body
    that cannot be encoded as JSON is the caller's bug and raises ``TypeError``/``ValueError``.
    """

    __slots__ = ("_base_url", "_clock", "_max_body_bytes", "_timeout_s", "_transport")

    def __init__(
        self,
        spec: BackendSpec,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Bind the client to one backend; ``clock`` must be on ``time.monotonic``'s scale."""
        self._base_url = spec.base_url.rstrip("/")
        self._timeout_s = spec.timeout_ms / _MS_PER_S
        self._max_body_bytes = spec.max_body_bytes
        self._transport = transport
        self._clock = clock

    def call(self, request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        """Send ``request`` and return its decoded JSON object or array.

        ``deadline`` is absolute, in ``time.monotonic()`` seconds. The whole call
        (connect, send, body, decode) is bounded by the smaller of the backend's timeout
        and the time left before the deadline; nothing is sent when none is left.
        """
        budget_s = min(self._timeout_s, deadline - self._clock())
        budget_ms = int(budget_s * _MS_PER_S)
        # Under a millisecond cannot be sent honestly in an integer-ms header, nor served.
        if budget_ms <= 0:
            raise BackendDeadlineError("deadline passed before the call was sent")
        headers = {
            name: value
            for name, value in request.headers
            if name.lower() not in _CLIENT_HEADERS  # the client's own always win
        }
        headers["Accept"] = "application/json"
        headers["X-Request-Id"] = request_id
        headers["X-Frontdoor-Deadline-Ms"] = str(budget_ms)
        body: bytes | None = None
        if request.body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(request.body, separators=(",", ":"), allow_nan=False).encode()
        url = self._base_url + request.target()
        # requests' read timeout is per socket read, so a dripping body would never trip
        # it. gevent.Timeout bounds the total; given an Exception instance it raises that
        # instead of itself, so no BaseException can escape into an actor.
        with gevent.Timeout(budget_s, BackendTimeoutError("call exceeded its time budget")):
            wire = self._transport.send(
                request.method,
                url,
                headers=headers,
                body=body,
                timeout_s=budget_s,
                max_body_bytes=self._max_body_bytes,
            )
            status = wire.status
            if _HTTP_OK_MIN <= status < _HTTP_REDIRECT_MIN:
                return _decode_json(wire.body)
        if _HTTP_REDIRECT_MIN <= status < _HTTP_REDIRECT_END:
            raise BackendProtocolError("redirect not followed")
        raise BackendStatusError(status)

    def close(self) -> None:
        """Release the transport's pooled connections."""
        self._transport.close()
