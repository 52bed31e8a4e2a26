"""BackendClient over real sockets on 127.0.0.1 (the default transport), against small
misbehaving servers; tests/integration/test_transport_contract.py holds every transport."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from typing import BinaryIO

import gevent
import gevent.event
import pytest
from gevent.server import StreamServer

from backends.client import BackendClient
from backends.errors import (
    BackendBodyTooLargeError,
    BackendConnectionError,
    BackendError,
    BackendProtocolError,
    BackendTimeoutError,
)
from backends.specs import BackendSpec
from backends.transport import get
from backends.transports import make_transport

pytestmark = pytest.mark.integration

CAP = 1_024
OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
Handler = Callable[[BinaryIO], None]


class HangGuardError(Exception):
    """A test ran past its hang guard."""


class Servers:
    """Raw HTTP test servers on 127.0.0.1, all stopped at teardown."""

    def __init__(self) -> None:
        # Set at teardown: every handler that waits, waits on this, so none outlives its test.
        self.release = gevent.event.Event()
        self.connections = 0
        self._servers: list[StreamServer] = []

    def start(self, handler: Handler) -> str:
        """Serve ``handler`` (given the connection's file) and return the base URL."""

        def handle(sock: socket.socket, _address: object) -> None:
            self.connections += 1
            with sock, sock.makefile("rwb") as conn:
                try:
                    handler(conn)
                    conn.flush()
                except OSError:
                    pass  # the client went away first, which is what several tests provoke

        server = StreamServer(("127.0.0.1", 0), handle)
        server.start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    def stop(self) -> None:
        self.release.set()
        for server in self._servers:
            server.stop(timeout=2)


def _read_request(conn: BinaryIO) -> bytes:
    """Read one request head (bounded); return its request line, or b"" at EOF."""
    line = conn.readline(8192)
    for _ in range(100):
        if conn.readline(8192) in (b"\r\n", b"\n", b""):
            break
    return line


def _reply(raw: bytes) -> Handler:
    def handler(conn: BinaryIO) -> None:
        _read_request(conn)
        conn.write(raw)

    return handler


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    with gevent.Timeout(15, HangGuardError("test hung")):
        yield


@pytest.fixture
def servers() -> Iterator[Servers]:
    running = Servers()
    yield running
    running.stop()


@pytest.fixture
def make_client() -> Iterator[Callable[..., BackendClient]]:
    clients: list[BackendClient] = []

    def make(base_url: str, timeout_ms: int = 2_000) -> BackendClient:
        spec = BackendSpec(
            name="wire", base_url=base_url, timeout_ms=timeout_ms, max_body_bytes=CAP
        )
        clients.append(BackendClient(spec, make_transport(spec)))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def _call(client: BackendClient, path: str = "x", budget_s: float = 5.0) -> object:
    return client.call(get(path), deadline=time.monotonic() + budget_s, request_id="wire-1")


def test_silent_server_times_out_within_budget(servers, make_client):
    """A server that accepts and never answers costs one budget and a BackendTimeoutError."""

    def silent(conn: BinaryIO) -> None:
        _read_request(conn)
        servers.release.wait(10)

    client = make_client(servers.start(silent))
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        _call(client, budget_s=0.2)
    assert time.monotonic() - started < 2


def test_dripping_body_is_cut_at_the_total_budget(servers, make_client):
    """A body dripped a byte every 50 ms never trips the per-read timeout but is cut in total."""
    release = servers.release

    def drip(conn: BinaryIO) -> None:
        _read_request(conn)
        conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            conn.write(b" ")
            conn.flush()
            if release.wait(0.05):
                return

    client = make_client(servers.start(drip))
    with pytest.raises(BackendTimeoutError, match="time budget"):
        _call(client, budget_s=0.3)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (CAP * 4) + b" " * (CAP * 4),
            id="declared-length",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            + (b"200\r\n" + b" " * 0x200 + b"\r\n") * 4
            + b"0\r\n\r\n",
            id="chunked",
        ),
    ],
)
def test_body_over_the_cap_raises(servers, make_client, raw):
    """A reply body larger than the cap raises BackendBodyTooLargeError."""
    client = make_client(servers.start(_reply(raw)))
    with pytest.raises(BackendBodyTooLargeError):
        _call(client)


def test_connection_refused(make_client):
    """A port nobody listens on gives BackendConnectionError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}")
    with pytest.raises(BackendConnectionError):
        _call(client)


def test_redirect_is_not_followed(servers, make_client):
    """A redirect is a protocol error and its target is never contacted."""
    contacted: list[bytes] = []

    def target(conn: BinaryIO) -> None:
        contacted.append(_read_request(conn))
        conn.write(OK)

    target_url = servers.start(target)
    redirect = b"HTTP/1.1 302 Found\r\nLocation: %s/x\r\nContent-Length: 0\r\n\r\n" % (
        target_url.encode()
    )
    client = make_client(servers.start(_reply(redirect)))
    with pytest.raises(BackendProtocolError, match="redirect not followed"):
        _call(client)
    assert contacted == []


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"a":', id="chunked"
        ),
        pytest.param(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":', id="declared-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk"
        ),
        pytest.param(b"NOT-HTTP\r\n\r\n", id="bad-status-line"),
    ],
)
def test_truncated_or_malformed_reply_is_a_protocol_error(servers, make_client, raw):
    """A body cut short, or a reply that is not HTTP, raises BackendProtocolError."""
    client = make_client(servers.start(_reply(raw)))
    with pytest.raises(BackendProtocolError):
        _call(client)


@pytest.mark.parametrize("path", ["silent", "drip"])
def test_gevent_timeout_never_escapes(servers, make_client, path):
    """Whatever cuts a call short, the caller sees a BackendError, never a gevent.Timeout."""
    release = servers.release

    def slow(conn: BinaryIO) -> None:
        if b"drip" in _read_request(conn):
            conn.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            conn.flush()
        release.wait(10)

    client = make_client(servers.start(slow))
    with pytest.raises(BaseException, match="time") as info:
        _call(client, path, budget_s=0.1)
    assert isinstance(info.value, BackendError)
    assert not isinstance(info.value, gevent.Timeout)


def _keep_alive(conn: BinaryIO) -> None:
    """Serve requests on one connection until the client closes it; /big is over the cap."""
    big = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (CAP * 4) + b" " * (CAP * 4)
    while line := _read_request(conn):
        conn.write(big if b"/big" in line else OK)
        conn.flush()


def test_connections_are_reused_after_a_good_reply(servers, make_client):
    """Keep-alive works: two good calls share one connection."""
    client = make_client(servers.start(_keep_alive))
    assert _call(client) == {}
    assert _call(client) == {}
    assert servers.connections == 1


def test_connection_is_discarded_after_an_over_cap_body(servers, make_client):
    """A connection with unread bytes is never reused: the next call opens a new one."""
    client = make_client(servers.start(_keep_alive))
    with pytest.raises(BackendBodyTooLargeError):
        _call(client, "big")
    assert _call(client) == {}
    assert servers.connections == 2
