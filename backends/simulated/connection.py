"""The connection side of the simulated server: a lean HTTP/1.1 keep-alive loop that hands
each request to the application (``SimulatedApp.answer``), counts requests in flight,
exposes the socket (to notice a client that left) and drops a connection with a reset
instead of answering (the ``refuse`` fault).

It replaces gevent's pywsgi handler and the WSGI environ: together they cost about as much
CPU per call as the services themselves (header parsing through ``email``, a second ``send``
for the body, an access line formatted even when nobody logs it). What it leaves out
(HTTP/0.9, folded headers, transfer codings other than chunked) no client of the simulated
services sends.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from gevent.event import Event

from backends.simulated.handoff import Call, Reply
from backends.simulated.http1 import HttpSyntaxError, RequestHead, parse_head, response_head
from backends.simulated.wire import RequestReader

_log = logging.getLogger("frontdoor.simulated.connection")

#: Answers one request; raises ``ConnectionDropError`` to drop the connection instead.
Answer = Callable[[Call], Reply]

# SO_LINGER on with a zero timeout: close() sends a reset instead of a graceful FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_PHRASES = {
    400: "Bad Request",
    413: "Content Too Large",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    505: "HTTP Version Not Supported",
}


class ConnectionDropError(Exception):
    """Raised by the app to make the handler drop the connection without any response."""


class InFlight:
    """Counts requests being answered, so stopping can wait for them but not for idle
    keep-alive connections."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = Event()
        self._idle.set()

    def enter(self) -> None:
        """A request started."""
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        """A request's response is written (or abandoned)."""
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is being answered; False if ``timeout_s`` passed first."""
        return bool(self._idle.wait(timeout_s))


class ConnectionHandler:
    """Serves each accepted connection (``handler(sock, address)``, as gevent's
    ``StreamServer`` calls it): requests in turn until the client or a response closes it."""

    def __init__(
        self, answer: Answer, inflight: InFlight, access_log: logging.Logger | None = None
    ) -> None:
        self._answer = answer
        self._inflight = inflight
        self._access_log = access_log

    def __call__(self, sock: socket.socket, address: Any) -> None:
        # Head and body go out in one send, but a drip's later chunks are small sends of
        # their own: without TCP_NODELAY each would wait for the client's delayed ACK.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            reader = RequestReader(sock)
            while self._one(sock, reader, address):
                pass
        except OSError:
            pass  # the client reset or left; nothing to answer
        finally:
            sock.close()

    def _one(self, sock: socket.socket, reader: RequestReader, address: Any) -> bool:
        """Serve the next request; whether the connection stays open for another."""
        try:
            block = reader.head()
            if block is None:
                return False
            head = parse_head(block)
            if head.expect_continue and head.has_body:
                sock.sendall(_CONTINUE)
            body = reader.body(head)
        except HttpSyntaxError as exc:
            _refuse(sock, exc)
            return False
        started = time.perf_counter()
        self._inflight.enter()
        try:
            reply = self._respond(sock, head, body)
        finally:
            self._inflight.leave()
        if reply is None:
            return False
        if self._access_log is not None:
            self._access_log.info(
                '%s "%s %s %s" %d %d %.6f',
                address[0] if isinstance(address, tuple) else address,
                head.method,
                head.target,
                head.version,
                reply.status,
                len(reply.body),
                time.perf_counter() - started,
            )
        return head.keep_alive

    def _respond(self, sock: socket.socket, head: RequestHead, body: bytes) -> Reply | None:
        """Answer and send; the reply sent, or None when the connection must end."""
        path, _, query = head.target.partition("?")
        streaming = False
        try:
            reply = self._answer(Call(head.method, path, query, body, sock))
            preamble = response_head(reply.status_line, reply.fields(), _connection(head))
            if head.method == "HEAD":
                sock.sendall(preamble)
            elif reply.chunks is None:
                sock.sendall(preamble + reply.body)
            else:
                streaming = True
                _stream(sock, preamble, reply.chunks)
        except ConnectionDropError:
            _reset(sock)
            return None
        except OSError:
            raise  # the client left: nothing more to send on this connection
        except Exception:  # noqa: BLE001 - logged with its traceback; the client gets a 500
            _log.exception("simulated services: answering failed")
            if not streaming:
                _refuse(sock, HttpSyntaxError(500, "internal error"))
            return None
        finally:
            if streaming and reply.chunks is not None:
                close = getattr(reply.chunks, "close", None)
                if close is not None:
                    close()
        return reply


def _connection(head: RequestHead) -> str | None:
    """The Connection header an answer to ``head`` carries, if any."""
    if not head.keep_alive:
        return "close"
    return "keep-alive" if head.version == "HTTP/1.0" else None


def _stream(sock: socket.socket, preamble: bytes, chunks: Iterator[bytes]) -> None:
    """Send the head with the first chunk, then each chunk as it comes (a drip)."""
    for chunk in chunks:
        if chunk:
            sock.sendall(preamble + chunk)
            preamble = b""
    if preamble:
        sock.sendall(preamble)


def _refuse(sock: socket.socket, exc: HttpSyntaxError) -> None:
    """Answer a request that cannot be served, then close (the stream may be out of step)."""
    body = f'{{"error":"{exc.reason}"}}'.encode()
    status = f"{exc.status} {_PHRASES.get(exc.status, 'Error')}"
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("X-Service", "none"),
    ]
    with contextlib.suppress(OSError):
        sock.sendall(response_head(status, headers, "close") + body)


def _reset(sock: socket.socket) -> None:
    # The client may already be gone; then there is nothing left to reset.
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)


def peer_gone(sock: socket.socket) -> None:
    """Return once the client closes or resets the connection (cooperatively blocking)."""
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        return
    if data:
        # A pipelined request: the peer is alive and we cannot tell more; wait to be killed.
        Event().wait()
