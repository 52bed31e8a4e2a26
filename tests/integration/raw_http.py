"""Raw HTTP/1.1 servers on 127.0.0.1 for transport tests: each runs a handler per accepted
connection, given the socket and a buffered file, so a test can misbehave exactly as it
needs (stall, drip, reset, close after reading). Handlers that wait, wait on the shared
``release`` event, set at teardown, so none outlives its test."""

from __future__ import annotations

import dataclasses
import socket
import struct
from collections.abc import Callable
from typing import BinaryIO

import gevent.event
from gevent.server import StreamServer

JSON_OK = b'{"ok":true}'


class HangGuardError(Exception):
    """A test ran past its hang guard."""


@dataclasses.dataclass
class Request:
    """One request as a server read it."""

    line: str
    headers: dict[str, str]
    body: bytes


class Conn:
    """One accepted connection: its socket and a buffered file over it."""

    def __init__(self, sock: socket.socket, file: BinaryIO, index: int) -> None:
        self.sock = sock
        self.file = file
        #: 0 for the server's first connection, 1 for its second...
        self.index = index

    def read_request(self) -> Request | None:
        """Read one request (head and Content-Length body); None at end of stream."""
        line = self.file.readline(8192)
        if not line:
            return None
        headers: dict[str, str] = {}
        for _ in range(100):
            raw = self.file.readline(8192)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = self.file.read(int(headers.get("content-length", "0")))
        return Request(line.decode("latin-1").strip(), headers, body)

    def send(self, raw: bytes) -> None:
        """Write and flush."""
        self.file.write(raw)
        self.file.flush()

    def reset(self) -> None:
        """Abort the connection with a TCP RST instead of a FIN."""
        self.file.flush()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


Handler = Callable[[Conn], None]


class Server:
    """A raw HTTP server on 127.0.0.1 running ``handler`` once per connection.

    ``kwargs`` go to gevent's ``StreamServer`` (``ssl_context`` serves TLS).
    """

    def __init__(self, handler: Handler, **kwargs: object) -> None:
        self.connections = 0
        self._handler = handler
        self._server = StreamServer(("127.0.0.1", 0), self._handle, **kwargs)
        self._server.start()
        self.url = f"http://127.0.0.1:{self._server.server_port}"

    def _handle(self, sock: socket.socket, _address: object) -> None:
        index = self.connections
        self.connections += 1
        with sock, sock.makefile("rwb") as file:
            try:
                self._handler(Conn(sock, file, index))
                file.flush()
            except OSError:
                pass  # the client went away first, which is what several tests provoke

    def stop(self) -> None:
        """Stop accepting and end the connections' handlers."""
        self._server.stop(timeout=2)


class Servers:
    """Every server a test starts, stopped at teardown."""

    def __init__(self) -> None:
        # Set at teardown: every handler that waits, waits on this, so none outlives its test.
        self.release = gevent.event.Event()
        self._servers: list[Server] = []

    def start(self, handler: Handler, **kwargs: object) -> Server:
        """Start a server running ``handler``; stopped with the others at teardown."""
        server = Server(handler, **kwargs)
        self._servers.append(server)
        return server

    def stop(self) -> None:
        """Release every waiting handler, then stop every server."""
        self.release.set()
        for server in self._servers:
            server.stop()


def json_reply(body: bytes = JSON_OK, status: str = "200 OK", extra: bytes = b"") -> bytes:
    """A whole JSON reply with its Content-Length; ``extra`` is more header lines."""
    return b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
        status.encode(),
        len(body),
        extra,
        body,
    )


def serve_all(server_requests: list[Request], reply: bytes = b"") -> Handler:
    """Answer every request on the connection (keep-alive) until the client closes it."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            server_requests.append(request)
            conn.send(reply or json_reply())

    return handler
