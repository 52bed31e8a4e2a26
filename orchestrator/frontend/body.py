"""The body stage: a request's JSON object body, read within a size cap and by a deadline.

A client that sends its body slowly (or not at all) holds an admission slot only until the
deadline, and gets a 408; the connection is then abandoned, since the rest of the body
would be read as the next request. A body is never buffered whole past the cap (413);
anything but ``application/json`` is a 415; a body that is not one JSON object, a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import gevent

from orchestrator.frontend import problems
from orchestrator.frontend.httpserver import abandon_body
from orchestrator.frontend.protocol.json_body import parse_object
from orchestrator.frontend.request import Environ
from orchestrator.frontend.respond import JSON

__all__ = ["WITH_BODY", "BodyReader"]

#: The methods whose endpoints take a body.
WITH_BODY: Final = frozenset({"POST", "PUT"})


class BodyReader:
    """Reads bodies of at most ``max_bytes`` on ``clock``'s time."""

    __slots__ = ("_clock", "max_bytes")

    def __init__(self, max_bytes: int, clock: Callable[[], float]) -> None:
        self.max_bytes = max_bytes
        self._clock = clock

    def read(self, environ: Environ, deadline: float) -> dict[str, Any]:
        """The JSON object body of ``environ``'s request, read by ``deadline``."""
        content_type = environ.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
        if content_type != JSON:
            raise problems.unsupported_media_type(JSON)
        limit = self.max_bytes
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


class _BodyTimeoutError(Exception):
    """The request body did not arrive by the deadline (an Exception, unlike gevent.Timeout)."""
