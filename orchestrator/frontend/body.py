"""The body stage: a request's JSON object body, read within a size cap and by a deadline.

The app reads a device request's body before admitting it, so a client that sends its body
slowly (or not at all) holds no admission slot; it gets a 408 once the reader's timeout
(``server.body_timeout_s``) or the deadline passes, whichever is first, and the connection
is then abandoned, since the rest of the body would be read as the next request. A body is
never buffered whole past the cap (413); anything but ``application/json`` is a 415; a body
that is not one JSON object, a 400; a body whose framing is broken (a bad chunk, fewer
bytes than its Content-Length), a 400 ``malformed_body``, after which the connection is
closed.
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
    """Reads bodies of at most ``max_bytes`` on ``clock``'s time, each within ``timeout_s``
    of the start of its reading (None: by the deadline alone)."""

    __slots__ = ("_clock", "max_bytes", "timeout_s")

    def __init__(
        self, max_bytes: int, clock: Callable[[], float], timeout_s: float | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self.timeout_s = timeout_s

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
        wait_s = deadline - self._clock()
        if self.timeout_s is not None and self.timeout_s < wait_s:
            wait_s = self.timeout_s
        try:
            with gevent.Timeout(max(0.0, wait_s), late):
                raw = environ["wsgi.input"].read(limit + 1)
        except _BodyTimeoutError:
            abandon_body(environ)
            raise problems.request_timeout() from None
        except OSError:
            # The server's reader refuses broken framing (a bad chunk, a body cut short of
            # its Content-Length): the client's fault, so a 400, and the stream is lost.
            abandon_body(environ)
            raise problems.malformed_body(_framing_error(environ["wsgi.input"])) from None
        if len(raw) > limit:
            raise problems.payload_too_large(limit)
        return parse_object(raw)


def _framing_error(body: Any) -> str:
    """What was wrong with the body, in words safe to show (never the exception's text,
    which may quote the client's bytes)."""
    if getattr(body, "chunked_input", False):
        return "invalid or incomplete chunked encoding"
    return "the body ended before its declared length"


class _BodyTimeoutError(Exception):
    """The request body did not arrive by the deadline (an Exception, unlike gevent.Timeout)."""
