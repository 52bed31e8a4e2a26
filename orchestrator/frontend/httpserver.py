"""gevent's WSGI server with TCP_NODELAY on every accepted connection.

pywsgi writes a response's headers and body in separate sends; with Nagle's algorithm on,
the body waits for the client's delayed ACK of the headers: 40 ms per keep-alive request
on Linux (measured here: 44 ms per call without, 0.57 ms with). Every server of the
project (the API, the simulated microservices, benchmark backends) uses this class.

``abandon_body`` is for an application that gave up reading a request body (it did not
arrive in time): pywsgi would otherwise read the rest of it after the response, waiting
for bytes a stalled client may never send.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator, Mapping
from typing import Any

from gevent.pywsgi import WSGIHandler, WSGIServer, format_date_time

#: Limits of a request's header block: fields, bytes per line, bytes in all. Past any of
#: them the request is refused with 400 before the application sees it. http.client's
#: parser (pywsgi's default) allows 100 lines of 64 KiB each, 6.4 MB of headers.
MAX_HEADER_FIELDS = 100
MAX_HEADER_LINE_BYTES = 8192
MAX_HEADER_BYTES = 65536
_END_OF_HEADERS = frozenset({b"\r\n", b"\n", b""})


class RequestHeaders:
    """A request's header fields, read by a small strict parser instead of the stdlib's
    ``email`` machinery (``http.client.parse_headers``), which pywsgi uses by default and
    which costs ~34 µs for six headers against ~5 µs here (benchmarks/hot_path.py).

    Offers exactly what ``gevent.pywsgi.WSGIHandler`` reads from its ``MessageClass``:
    ``status`` (non-empty: pywsgi answers 400), case-insensitive ``get``/``getheader``
    (the first field of that name), ``del`` (every field of that name), ``headers`` (the
    fields as ``"Name: value\\r\\n"`` lines) and ``typeheader``. Stricter than the stdlib,
    as RFC 9112 section 5 asks: obsolete line folding, whitespace before the colon and a
    line without a colon are refused, not repaired; and the block is bounded in fields,
    line length and total size.
    """

    __slots__ = ("_fields", "status")

    def __init__(self, fields: list[tuple[str, str]] | None = None, status: str = "") -> None:
        self._fields = [] if fields is None else fields
        self.status = status

    @classmethod
    def read(cls, stream: Any) -> RequestHeaders:
        """Read the header block from ``stream`` (a buffered binary reader), up to and
        including its empty line; a malformed or oversized block sets ``status``."""
        fields: list[tuple[str, str]] = []
        total = 0
        while True:
            line = stream.readline(MAX_HEADER_LINE_BYTES + 1)
            if line in _END_OF_HEADERS:
                return cls(fields)
            total += len(line)
            if len(line) > MAX_HEADER_LINE_BYTES or total > MAX_HEADER_BYTES:
                return cls(status="Header line or block too long")
            if len(fields) == MAX_HEADER_FIELDS:
                return cls(status="Too many header fields")
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or not name or name[-1] in " \t" or name[0] in " \t":
                # Includes obs-fold (a line starting with whitespace continues the last).
                return cls(status="Malformed header line")
            fields.append((name, value.strip(" \t\r\n")))

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first field called ``name`` (any case), else ``default``."""
        wanted = name.lower()
        for field_name, value in self._fields:
            if field_name.lower() == wanted:
                return value
        return default

    getheader = get

    def __delitem__(self, name: str) -> None:
        wanted = name.lower()
        self._fields = [field for field in self._fields if field[0].lower() != wanted]

    @property
    def headers(self) -> Iterator[str]:
        """The fields as header lines (what pywsgi turns into ``HTTP_*`` keys)."""
        for name, value in self._fields:
            yield f"{name}: {value}\r\n"

    def items(self) -> list[tuple[str, str]]:
        """Every field as (name, value), in order (what gunicorn's access log reads)."""
        return list(self._fields)

    @property
    def typeheader(self) -> str | None:
        """The ``Content-Type`` value, if any."""
        return self.get("content-type")


class LeanWSGIHandler(WSGIHandler):  # type: ignore[misc] # gevent ships no type hints
    """pywsgi's handler with ``RequestHeaders`` as its header parser, and a ``Date``
    header formatted once a second rather than once a response."""

    def MessageClass(self, stream: Any, *_args: Any) -> RequestHeaders:  # noqa: N802 - pywsgi's name
        """Parse the header block (pywsgi's hook)."""
        return RequestHeaders.read(stream)

    def finalize_headers(self) -> None:
        """pywsgi's, with the second's ``Date`` (pywsgi skips its own when one is there)."""
        if getattr(self, "provided_date", None) is None:
            date = http_date(time.time())
            self.provided_date = date
            self.response_headers.append((b"Date", date))
        super().finalize_headers()


def http_date(now: float) -> bytes:
    """The IMF-fixdate of ``now`` (RFC 9110 section 5.6.7), made once per second."""
    second = int(now)
    if _DATE[0] != second:
        _DATE[:] = [second, format_date_time(second)]
    return _DATE[1]  # type: ignore[no-any-return]


#: The second ``http_date`` last formatted, and its text.
_DATE: list[Any] = [None, b""]


class NoDelayWSGIServer(WSGIServer):  # type: ignore[misc] # gevent ships no type hints
    """A ``gevent.pywsgi.WSGIServer`` that disables Nagle's algorithm per connection and
    parses headers with ``RequestHeaders``."""

    handler_class = LeanWSGIHandler

    def handle(self, sock: socket.socket, address: Any) -> None:
        """Set TCP_NODELAY, then serve the connection as pywsgi does."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


def abandon_body(environ: Mapping[str, Any]) -> None:
    """Tell pywsgi not to read what is left of this request's body, and to close the
    connection after the response (which must say ``Connection: close``).

    Uses the flag pywsgi itself sets when a body is in an unknown state; on another
    server, or a gevent without it, this does nothing.
    """
    body = environ.get("wsgi.input")
    if body is not None and hasattr(body, "_chunked_input_error"):
        body._chunked_input_error = True  # noqa: SLF001 - pywsgi's own "do not discard" flag
