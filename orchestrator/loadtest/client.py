"""A minimal keep-alive HTTP/1.1 client on gevent sockets, built for generating load.

Why not ``requests``: it costs about 470 µs of CPU per call under gevent (measured here),
which caps one core near 2,000 req/s before any bookkeeping. This client costs about 36 µs:
one ``sendall`` of a pre-built request, a buffered ``recv`` and a parse of only the headers
that frame the body. It never retries, never follows redirects and never reads proxy
settings, so every request the report counts is exactly one request on the wire.

One ``HttpClient`` talks to one origin and keeps a LIFO stack of idle connections; each
in-flight request owns its connection, so the number of sockets never exceeds the caller's
in-flight bound. A connection idle for longer than ``max_idle_s`` (30 s) is closed rather
than reused, as browsers and device HTTP stacks do: a server closes idle keep-alive
connections (Frontdoor after ``server.idle_timeout_s``, 60 s less up to 25%), and a request
sent on one it is closing fails for the client's reasons, not the server's. Every failure
is one ``RequestError`` with a ``FailureKind``.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import gevent

from orchestrator.loadtest.target import Target

__all__ = ["FailureKind", "HttpClient", "RequestError", "Response"]

_MAX_HEAD_BYTES = 65_536
_RECV_BYTES = 65_536
_NO_BODY_STATUSES = frozenset({204, 304})


class FailureKind(enum.StrEnum):
    """Why a request got no HTTP response; the values are the report's column names."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    IO = "io"
    PROTOCOL = "protocol"


class RequestError(Exception):
    """A request that got no usable HTTP response."""

    def __init__(self, kind: FailureKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Response:
    """A complete HTTP response: its status, ``Content-Type``, body and ``Retry-After``.

    ``retry_after_s`` is ``None`` without a (valid) ``Retry-After``. The generator only
    counts it: a load tool that backed off would lower the offered load and hide overload.
    """

    status: int
    content_type: str
    body: bytes
    retry_after_s: float | None = None


class _Connection:
    """One keep-alive socket and its receive buffer."""

    __slots__ = ("_buffer", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def close(self) -> None:
        self._sock.close()

    def exchange(self, payload: bytes, *, head: bool, max_body_bytes: int) -> tuple[Response, bool]:
        """Send one request, read its response; also says whether the socket is reusable."""
        self._sock.sendall(payload)
        version, status, headers = self._read_head()
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        retry_after = headers.get(b"retry-after")
        retry_after_s = None if retry_after is None else _retry_after_s(retry_after)
        connection = headers.get(b"connection", b"").lower()
        keep_alive = (
            connection != b"close" if version == b"HTTP/1.1" else connection == b"keep-alive"
        )
        if head or status in _NO_BODY_STATUSES or 100 <= status < 200:  # noqa: PLR2004 - 1xx
            return Response(status, content_type, b"", retry_after_s), keep_alive
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self._read_chunked(max_body_bytes)
        elif b"content-length" in headers:
            body = self._read_exactly(_content_length(headers[b"content-length"]), max_body_bytes)
        else:
            body, keep_alive = self._read_to_close(max_body_bytes), False
        return Response(status, content_type, body, retry_after_s), keep_alive

    def _fill(self) -> None:
        data = self._sock.recv(_RECV_BYTES)
        if not data:
            raise RequestError(FailureKind.IO, "connection closed by the server")
        self._buffer += data

    def _read_line(self, limit: int) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            if len(self._buffer) > limit:
                raise RequestError(FailureKind.PROTOCOL, "line too long")
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _read_head(self) -> tuple[bytes, int, dict[bytes, bytes]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > _MAX_HEAD_BYTES:
                raise RequestError(FailureKind.PROTOCOL, "response head too large")
            self._fill()
        lines = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[: end + 4]
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():  # noqa: PLR2004 - version and code
            raise RequestError(FailureKind.PROTOCOL, f"bad status line {lines[0][:60]!r}")
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return parts[0], int(parts[1]), headers

    def _read_exactly(self, size: int, max_body_bytes: int) -> bytes:
        if size > max_body_bytes:
            raise RequestError(FailureKind.PROTOCOL, f"body of {size} bytes exceeds the cap")
        while len(self._buffer) < size:
            self._fill()
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        return body

    def _read_chunked(self, max_body_bytes: int) -> bytes:
        body = bytearray()
        while True:
            size_text = self._read_line(_MAX_HEAD_BYTES).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError as exc:
                raise RequestError(FailureKind.PROTOCOL, "bad chunk size") from exc
            if size == 0:
                while self._read_line(_MAX_HEAD_BYTES):
                    pass  # trailer fields are not used
                return bytes(body)
            body += self._read_exactly(size, max_body_bytes - len(body))
            if self._read_line(2):
                raise RequestError(FailureKind.PROTOCOL, "chunk not followed by CRLF")

    def _read_to_close(self, max_body_bytes: int) -> bytes:
        while data := self._sock.recv(_RECV_BYTES):
            self._buffer += data
            if len(self._buffer) > max_body_bytes:
                raise RequestError(FailureKind.PROTOCOL, "body exceeds the cap")
        body = bytes(self._buffer)
        self._buffer.clear()
        return body


def _retry_after_s(value: bytes) -> float | None:
    """``Retry-After`` in seconds from now: delta-seconds or an HTTP-date; ``None`` if invalid."""
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zoneless one is malformed
        return None
    return max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds())


def _content_length(value: bytes) -> int:
    if not value.isdigit():
        raise RequestError(FailureKind.PROTOCOL, f"bad Content-Length {value[:20]!r}")
    return int(value)


class HttpClient:
    """Requests to one origin over reused connections, each bounded by a total timeout."""

    def __init__(
        self,
        target: Target,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        max_body_bytes: int = 8 * 1024 * 1024,
        max_idle: int = 1024,
        max_idle_s: float = 30.0,
        source: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``source``: the local address connections come from ("": the system's choice);
        ``max_idle_s``: how long a connection may sit idle and still be reused."""
        self.target = target
        self.source = source
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_body_bytes = max_body_bytes
        self.max_idle = max_idle
        self.max_idle_s = max_idle_s
        self._clock = clock
        #: (when it went idle, the connection), the most recently used last.
        self._idle: list[tuple[float, _Connection]] = []
        self._host_line = f"Host: {target.host_header}\r\n".encode("latin-1")

    def encode(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> bytes:
        """The request's bytes on the wire; build once, send with ``send``."""
        lines = [f"{method} {path} HTTP/1.1\r\n".encode("latin-1"), self._host_line]
        lines.extend(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)
        if body is not None:
            lines.append(f"Content-Length: {len(body)}\r\n".encode("latin-1"))
        lines.append(b"\r\n")
        if body is not None:
            lines.append(body)
        return b"".join(lines)

    def request(
        self,
        method: str,
        path: str,
        headers: Sequence[tuple[str, str]] = (),
        body: bytes | None = None,
    ) -> Response:
        """Encode and send one request; ``RequestError`` when no response came."""
        return self.send(self.encode(method, path, headers, body), head=method == "HEAD")

    def send(self, payload: bytes, *, head: bool = False) -> Response:
        """Send pre-encoded request bytes; the whole exchange is bounded by ``timeout_s``."""
        conn: _Connection | None = None
        # An Exception, not gevent.Timeout (a BaseException): it must not look like a kill.
        timeout = gevent.Timeout(
            self.timeout_s, RequestError(FailureKind.TIMEOUT, f"no response in {self.timeout_s} s")
        )
        timeout.start()
        try:
            conn = self._reusable() or self._connect()
            response, keep_alive = conn.exchange(
                payload, head=head, max_body_bytes=self.max_body_bytes
            )
        except OSError as exc:
            self._discard(conn)
            raise RequestError(FailureKind.IO, str(exc) or type(exc).__name__) from exc
        except BaseException:
            # Timeouts, protocol errors and kills alike: the socket's state is unknown.
            self._discard(conn)
            raise
        finally:
            timeout.close()
        if keep_alive and len(self._idle) < self.max_idle:
            self._idle.append((self._clock(), conn))
        else:
            conn.close()
        return response

    def _reusable(self) -> _Connection | None:
        """The most recently used idle connection, unless it idled too long (then it and
        every older one are closed: the stack is in order of use)."""
        if not self._idle:
            return None
        since, conn = self._idle.pop()
        if self._clock() - since <= self.max_idle_s:
            return conn
        conn.close()
        while self._idle:
            self._idle.pop()[1].close()
        return None

    @staticmethod
    def _discard(conn: _Connection | None) -> None:
        if conn is not None:
            conn.close()

    def _connect(self) -> _Connection:
        try:
            sock = socket.create_connection(
                (self.target.host, self.target.port),
                timeout=self.connect_timeout_s,
                source_address=(self.source, 0) if self.source else None,
            )
        except OSError as exc:
            raise RequestError(FailureKind.CONNECT, str(exc) or type(exc).__name__) from exc
        sock.settimeout(None)  # the request's total timeout bounds every read
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Connection(sock)

    def close(self) -> None:
        """Close every idle connection (in-flight ones close when their request ends)."""
        while self._idle:
            self._idle.pop()[1].close()
