"""The geventhttpclient implementation of the wire seam (the default), and the one place its
errors are translated.

Only geventhttpclient's C response parser (llhttp) is used. Its ``HTTPClient`` merges and
validates header containers in Python on every call, and re-sends a request whose
connection failed up to pool-size + 1 times (any method before 2.6, idempotent ones since,
on new connections too). Its pool takes no per-call connect timeout, and checks an idle
socket with gevent's ``select()``, which yields to the hub on every checkout and fails on
descriptors >= 1024 (every call would then open a new connection).
``benchmarks/transport_cost.py`` measures it against this module. The rest is small and
ours: the request head built as one string and written in one ``send``, a LIFO pool of
keep-alive sockets, and a body cap enforced while parsing.

Every socket, TLS and parser exception leaves this module as exactly one
``backends.errors`` exception, chained to the original (``raise ... from exc``), with a
fixed message (no host names). What it never does: follow a redirect, read proxy
variables from the environment, keep cookies, or send a non-idempotent request twice.
"""

from __future__ import annotations

import errno
import select
import socket
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import certifi
import gevent.monkey
import gevent.socket
import gevent.ssl

# The C parser, the reason for this transport. Its public wrapper
# (geventhttpclient.response.HTTPResponse) adds a Python header container per call.
from geventhttpclient._parser import HTTPParseError, HTTPResponseParser

from backends.errors import (
    BackendBodyTooLargeError,
    BackendConnectionError,
    BackendDeadlineError,
    BackendError,
    BackendProtocolError,
    BackendTimeoutError,
)
from backends.specs import BackendSpec
from backends.transport import WireResponse

__all__ = ["GeventTransport"]

# Large enough that a typical JSON reply arrives in one recv, small enough that the cap is
# enforced within one read of the limit.
_RECV_BYTES: Final = 64 * 1024
# A reply head (status line and headers) beyond this is refused, like http.client's 64 KiB
# line limit: a backend streaming headers forever must not grow our memory.
_MAX_HEAD_BYTES: Final = 64 * 1024
_HTTP_OK_MIN: Final = 200
# Safe methods (RFC 9110 9.2.1): the only ones re-sent after a stale keep-alive connection.
_RESENDABLE: Final = frozenset({"GET", "HEAD"})
# Methods whose requests carry content: sent with "Content-Length: 0" when they have none.
_CONTENT_METHODS: Final = frozenset({"POST", "PUT", "PATCH"})
# The request line, Host, Accept-Encoding and the blank line end: lines every head has.
_FIXED_LINES: Final = 4
# The unpatched poll: a zero-timeout check that never yields, about 0.6 us per call.
# gevent's select() copes with it too but costs ~5 us and fails on descriptors >= 1024.
_poll: Final[Any] = gevent.monkey.get_original("select", "poll")
_POLLIN: Final = select.POLLIN


class _TrailingBytesError(Exception):
    """Bytes followed a complete reply: it is good, the connection is not."""


class _NoReplyError(ConnectionResetError):
    """The peer closed the connection before sending any byte of a reply."""


class _StaleConnectionError(Exception):
    """A reused keep-alive connection was closed under an unanswered safe request."""


@dataclass(slots=True)
class _Connection:
    """One pooled socket and a poller registered on it once, for the idle check."""

    sock: Any
    poller: Any


class _Reply(HTTPResponseParser):
    """One reply, parsed by llhttp through these callbacks; the body capped as it arrives."""

    __slots__ = (
        "body",
        "cap",
        "complete",
        "field",
        "head_done",
        "head_only",
        "headers",
        "received",
        "size",
        "value",
    )

    def __init__(self, cap: int, *, head_only: bool) -> None:
        super().__init__()
        self.cap = cap
        self.head_only = head_only
        self.received = 0
        self.complete = False
        self.head_done = False
        self.headers: dict[str, str] = {}
        self.body: list[bytearray] = []
        self.size = 0
        self.field = ""
        self.value: str | None = None

    def read_from(self, sock: Any, recv_bytes: int) -> bool:
        """Read until the reply is complete; return whether the connection may carry another.

        Raises the socket's and the parser's exceptions as they are (the caller translates).
        """
        while not self.complete:
            data = sock.recv(recv_bytes)
            if not data:
                return self._end_of_stream()
            self.received += len(data)
            self.feed(data)
            if self.received > _MAX_HEAD_BYTES and not self.head_done:
                raise BackendProtocolError("reply head is too large")
        return self.should_keep_alive()

    def _end_of_stream(self) -> bool:
        if not self.received:
            raise _NoReplyError(errno.ECONNRESET, "closed without a reply")
        # Completes a body delimited by the close; one cut short makes the parser raise
        # "Incomplete response".
        self.feed(b"")
        if not self.complete:
            raise BackendProtocolError("reply was cut short")
        return False

    def _on_message_begin(self) -> None:
        if self.complete:
            # llhttp goes on parsing after a complete reply; stop it there.
            raise _TrailingBytesError
        # After an interim 1xx reply, the final one starts with headers of its own.
        self.headers = {}

    def _on_status(self, _text: str) -> None:
        pass

    def _on_header_field(self, text: str) -> None:
        # llhttp hands a name or value over in pieces when it straddles two reads.
        if self.value is not None:
            self._add_header()
            self.field = text
        else:
            self.field += text

    def _on_header_value(self, text: str) -> None:
        self.value = text if self.value is None else self.value + text

    def _add_header(self) -> None:
        # Names are case-insensitive: keep them lower-cased. Repeats join (RFC 9110 5.3).
        name, value = self.field.lower(), self.value or ""
        self.headers[name] = f"{self.headers[name]}, {value}" if name in self.headers else value
        self.field, self.value = "", None

    def _on_headers_complete(self) -> bool:
        if self.field:
            self._add_header()
        self.head_done = True
        if self.head_only:
            return True  # tells llhttp that no body follows, whatever the headers say
        # Without a content coding (we ask for none) the declared length is the body's size:
        # refuse before reading it.
        if "content-length" in self.headers and self.get_remaining_content_length() > self.cap:
            raise BackendBodyTooLargeError("reply body exceeds the byte cap")
        return False

    def _on_body(self, chunk: bytearray) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise BackendBodyTooLargeError("reply body exceeds the byte cap")
        self.body.append(chunk)

    def _on_message_complete(self) -> None:
        # An interim 1xx reply (103 Early Hints) is complete too; the final one follows.
        self.complete = self.get_code() >= _HTTP_OK_MIN


class GeventTransport:
    """A ``Transport`` over geventhttpclient's C parser, with a keep-alive pool per backend.

    Bound to one backend's origin (scheme, host, port of ``spec.base_url``): every URL sent
    must start with it, anything else is the caller's bug (``ValueError``). Safe to share
    between the greenlets of one backend's bulkhead: a socket is owned by one call from
    checkout to return, never by two greenlets at once. The pool keeps up to
    ``spec.max_concurrent`` idle connections (one per call the bulkhead lets run); a call
    beyond that never waits for one: it opens its own, closed after use.

    ``ssl_context`` replaces the default TLS trust (certifi's bundle, as ``requests`` uses)
    for an ``https`` backend.
    """

    __slots__ = (
        "__weakref__",
        "_address",
        "_closed",
        "_host_line",
        "_idle",
        "_max_idle",
        "_origin",
        "_tls",
    )

    def __init__(self, spec: BackendSpec, *, ssl_context: Any = None) -> None:
        """Parse the base URL once; opens no connection yet."""
        parts = urlsplit(spec.base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("backend base URL must be an http(s) URL with a host")
        # Sliced from the URL as written, so the per-call prefix check is one startswith.
        self._origin = spec.base_url[: len(parts.scheme) + 3 + len(parts.netloc)]
        https = parts.scheme == "https"
        self._address = (parts.hostname, parts.port or (443 if https else 80))
        # Accept-Encoding: identity, so the byte cap is the body's size and nothing needs
        # decoding (the requests transport asks for gzip and decodes).
        self._host_line = f"Host: {parts.netloc}\r\nAccept-Encoding: identity\r\n"
        self._tls: Any = None
        if https:
            self._tls = ssl_context or gevent.ssl.create_default_context(cafile=certifi.where())
        self._idle: list[_Connection] = []
        self._max_idle = spec.max_concurrent
        self._closed = False
        # A transport dropped without close() (an actor system is not closed at exit)
        # still closes its idle sockets, as urllib3's pools do.
        weakref.finalize(self, _close_all, self._idle)

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_body_bytes: int,
    ) -> WireResponse:
        """Send one request and read its whole reply, capped at ``max_body_bytes``.

        ``timeout_s`` bounds the connect and each socket operation, not the whole call: the
        caller bounds the total. Raises only ``backends.errors`` for what the network and
        the backend do; ``ValueError`` for a URL outside this backend or a header that
        cannot be sent (a line break in it, or a character outside Latin-1).
        """
        if timeout_s <= 0:
            raise BackendDeadlineError("no time left to send the call")
        target = url[len(self._origin) :]
        if not (url.startswith(self._origin) and target.startswith("/")):
            raise ValueError("URL is not below this backend's base URL")
        payload = self._head(method, target, headers, body)
        conn, reused = self._checkout(timeout_s)
        # A GET whose reused connection turns out closed by the server while idle is sent
        # once more on a new connection, and only if no byte of a reply arrived: the
        # request cannot have been answered, and the race (the server's idle timer against
        # our reuse) says nothing about the backend's health. Nothing else is ever re-sent
        # here: not a POST (the server may have acted on it: RFC 9110 9.2.2), not a call
        # on a new connection, not after a timeout. Retries of idempotent calls live one
        # layer up, within a budget.
        try:
            return self._exchange(
                conn,
                payload,
                method,
                timeout_s,
                max_body_bytes,
                may_resend=reused and method in _RESENDABLE,
            )
        except _StaleConnectionError:
            conn = self._connect(timeout_s)
            return self._exchange(
                conn, payload, method, timeout_s, max_body_bytes, may_resend=False
            )

    def close(self) -> None:
        """Close every pooled connection; the transport must not be used afterwards."""
        self._closed = True
        _close_all(self._idle)

    def _head(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes | None
    ) -> bytes:
        """The request head (and body) as the bytes of one ``send``."""
        lines = [f"{name}: {value}\r\n" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}\r\n")
        elif method in _CONTENT_METHODS:
            lines.append("Content-Length: 0\r\n")
        head = f"{method} {target} HTTP/1.1\r\n{self._host_line}{''.join(lines)}\r\n"
        # A CR or LF inside a value would end its line and smuggle in a header of its own:
        # a well-formed head has exactly one of each per line (two C-level counts).
        expected = len(lines) + _FIXED_LINES
        if head.count("\n") != expected or head.count("\r") != expected:
            raise ValueError("a request header contains a line break")
        encoded = head.encode("latin-1")
        return encoded + body if body else encoded

    def _checkout(self, timeout_s: float) -> tuple[_Connection, bool]:
        """An idle connection still open (and whether it was reused), else a new one."""
        idle = self._idle
        while idle:
            conn = idle.pop()  # LIFO: the most recently used is the least likely closed
            # Readable while idle: the peer closed it (or sent stray bytes). Either way it
            # cannot carry a request; urllib3 makes the same check before reusing one.
            if not conn.poller.poll(0):
                return conn, True
            conn.sock.close()
        return self._connect(timeout_s), False

    def _connect(self, timeout_s: float) -> _Connection:
        """Open a connection within ``timeout_s`` (and its TLS handshake, for https)."""
        try:
            sock = gevent.socket.create_connection(self._address, timeout_s)
        except OSError as exc:
            raise _translate(exc) from exc
        try:
            # One send per request; without this, a request split over two segments (a
            # body larger than the buffer) would wait for the peer's delayed ACK (40 ms).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock = self._tls.wrap_socket(sock, server_hostname=self._address[0])
        except OSError as exc:
            sock.close()
            raise _translate(exc) from exc
        except BaseException:
            sock.close()
            raise
        poller = _poll()
        poller.register(sock.fileno(), _POLLIN)
        return _Connection(sock, poller)

    def _exchange(
        self,
        conn: _Connection,
        payload: bytes,
        method: str,
        timeout_s: float,
        cap: int,
        *,
        may_resend: bool,
    ) -> WireResponse:
        """Send on ``conn`` and read the reply; the connection goes back to the pool only
        when the reply was read exactly to its end and the server keeps it alive."""
        sock = conn.sock
        reply = _Reply(cap, head_only=method == "HEAD")
        try:
            sock.settimeout(timeout_s)
            # One send() takes a request whole unless the socket buffer is full; gevent's
            # sendall() would first ask the kernel for the buffer's size, every call.
            sent = sock.send(payload)
            if sent < len(payload):
                sock.sendall(memoryview(payload)[sent:])
            # Never ask for more than one byte past the cap: a small cap bounds each read.
            reusable = reply.read_from(sock, min(_RECV_BYTES, cap + 1))
        except _TrailingBytesError:
            reusable = False  # the reply is complete; the connection is not clean
        except (OSError, HTTPParseError) as exc:
            sock.close()
            if may_resend and not reply.received and isinstance(exc, ConnectionError):
                raise _StaleConnectionError from exc
            raise _translate(exc) from exc
        except BaseException:
            # The cap was exceeded, or the caller's total timeout fired mid-reply: unread
            # bytes may still be on the way, so the socket must never be reused.
            sock.close()
            raise
        if reusable:
            self._checkin(conn)
        else:
            sock.close()
        return WireResponse(reply.get_code(), reply.headers, b"".join(reply.body))

    def _checkin(self, conn: _Connection) -> None:
        """Keep a clean connection for the next call, or close it if the pool is full."""
        if self._closed or len(self._idle) >= self._max_idle:
            conn.sock.close()
        else:
            self._idle.append(conn)


def _close_all(idle: list[_Connection]) -> None:
    """Close and forget every idle connection (the list is the pool's own)."""
    while idle:
        idle.pop().sock.close()


def _translate(exc: BaseException) -> BackendError:
    """Map one socket, TLS or parser exception onto the backend error tree.

    Messages are fixed reasons: the original, which may name hosts, stays in the chain.
    """
    if isinstance(exc, TimeoutError):  # socket.timeout, for connect and for every read
        return BackendTimeoutError("backend did not answer in time")
    if isinstance(exc, HTTPParseError):
        return BackendProtocolError("reply was not valid HTTP")
    if isinstance(exc, ConnectionError):
        return BackendConnectionError("backend connection refused or reset")
    # Name resolution, unreachable networks, TLS failures: all OSErrors.
    return BackendConnectionError("backend could not be reached")
