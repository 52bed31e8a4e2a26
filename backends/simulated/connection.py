"""The connection side of the simulated server: pywsgi's handler extended to count requests
in flight, expose the socket (to notice a client that left), and drop a connection with a
reset instead of answering (the ``refuse`` fault)."""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from gevent.event import Event
from gevent.pywsgi import WSGIHandler

#: Environ keys the handler adds for the app.
SOCKET_KEY = "frontdoor.simulated.socket"
RAW_PATH_KEY = "frontdoor.simulated.raw_path"
# SO_LINGER on with a zero timeout: close() sends a reset instead of a graceful FIN.
_RESET_ON_CLOSE = struct.pack("ii", 1, 0)


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


class ConnectionHandler(WSGIHandler):  # type: ignore[misc]  # gevent ships no type information
    """pywsgi's handler, plus: the socket in the environ, dropping a connection on demand,
    and counting requests in flight. Serves ``SimulatedApp`` only (its ``inflight``)."""

    def handle(self) -> None:
        # pywsgi writes the headers and the body in two sends; with Nagle on, the body waits
        # for the client's delayed ACK (40 ms): 25 responses per second per connection.
        with contextlib.suppress(OSError):
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle()

    def handle_one_response(self) -> None:
        inflight: InFlight = self.server.application.inflight
        inflight.enter()
        try:
            super().handle_one_response()
        finally:
            inflight.leave()

    def get_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = super().get_environ()
        environ[SOCKET_KEY] = self.socket
        # PATH_INFO is already unquoted, so an encoded "/" inside an id would split it.
        environ[RAW_PATH_KEY] = self.path.split("?", 1)[0]
        return environ

    def run_application(self) -> None:
        try:
            super().run_application()
        except ConnectionDropError:
            self.close_connection = True
            # The client may already be gone; then there is nothing left to reset.
            with contextlib.suppress(OSError):
                self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET_ON_CLOSE)


def peer_gone(sock: socket.socket) -> None:
    """Return once the client closes or resets the connection (cooperatively blocking)."""
    try:
        data = sock.recv(1, socket.MSG_PEEK)
    except OSError:
        return
    if data:
        # A pipelined request: the peer is alive and we cannot tell more; wait to be killed.
        Event().wait()
