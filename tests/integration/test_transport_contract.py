"""The transport contract, held by every transport over real sockets on 127.0.0.1.

Each test runs once per implementation in ``backends.transports.TRANSPORTS`` (gevent and
requests), against small raw-socket servers that misbehave on purpose. Servers signal with
events, never sleeps; every test is bounded by a hang guard.
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Callable, Iterator

import gevent
import gevent.event
import pytest
from raw_http import (
    JSON_OK,
    Conn,
    Handler,
    Request,
    Servers,
    json_reply,
    serve_all,
)

from backends.client import BackendClient
from backends.errors import (
    BackendBodyTooLargeError,
    BackendConnectionError,
    BackendDeadlineError,
    BackendError,
    BackendProtocolError,
    BackendTimeoutError,
)
from backends.specs import TRANSPORT_NAMES, BackendSpec
from backends.transport import Transport, WireResponse, get, post
from backends.transports import make_transport

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("raw_hang_guard")]

CAP = 1_024
MAX_CONCURRENT = 3


@pytest.fixture(params=TRANSPORT_NAMES)
def transport_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def wire(transport_name: str) -> Iterator[Callable[..., Transport]]:
    """Build the transport under test for a base URL; all are closed at teardown."""
    built: list[Transport] = []

    def make(base_url: str) -> Transport:
        spec = BackendSpec(
            name="wire",
            base_url=base_url,
            max_body_bytes=CAP,
            max_concurrent=MAX_CONCURRENT,
            transport=transport_name,
        )
        built.append(make_transport(spec))
        return built[-1]

    yield make
    for transport in built:
        transport.close()


@pytest.fixture
def client(wire: Callable[..., Transport]) -> Callable[..., BackendClient]:
    """A BackendClient over the transport under test (its total budget is the bound)."""

    def make(base_url: str, timeout_ms: int = 2_000) -> BackendClient:
        transport = wire(base_url)
        spec = BackendSpec(
            name="wire", base_url=base_url, timeout_ms=timeout_ms, max_body_bytes=CAP
        )
        return BackendClient(spec, transport)

    return make


def _send(
    transport: Transport,
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 2.0,
) -> WireResponse:
    return transport.send(
        method,
        url,
        headers=headers if headers is not None else {"Accept": "application/json"},
        body=body,
        timeout_s=timeout_s,
        max_body_bytes=CAP,
    )


def _call(client: BackendClient, request=None, budget_s: float = 5.0) -> object:
    return client.call(
        request or get("x"), deadline=time.monotonic() + budget_s, request_id="contract-1"
    )


# --- what goes over the wire ---------------------------------------------------------


def test_success_returns_status_headers_and_body(raw_servers, wire):
    """A 200 with a JSON body comes back whole, its headers readable by lower-case name."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, json_reply(extra=b"X-Thing: 1\r\n")))
    reply = _send(wire(server.url), f"{server.url}/titles/t1?lang=en")
    assert (reply.status, reply.body, reply.headers["x-thing"]) == (200, JSON_OK, "1")
    assert reply.headers["content-type"] == "application/json"
    assert seen[0].line == "GET /titles/t1?lang=en HTTP/1.1"


def test_client_call_decodes_the_reply(raw_servers, client):
    """Through BackendClient, the JSON body is decoded."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    assert _call(client(server.url)) == {"ok": True}


def test_post_body_is_delivered(raw_servers, client):
    """A POST's JSON body arrives whole, with its length and content type."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    _call(client(server.url + "/api"), post("accounts", body={"email": "a@b.c", "n": [1, 2]}))
    [request] = seen
    assert request.line == "POST /api/accounts HTTP/1.1"
    assert request.body == b'{"email":"a@b.c","n":[1,2]}'
    assert request.headers["content-length"] == str(len(request.body))
    assert request.headers["content-type"] == "application/json"


def test_a_body_larger_than_the_socket_buffer_is_delivered_whole(raw_servers, wire):
    """A request body too big for one send goes out whole, in order."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    body = bytes(range(256)) * (8 * 4096)  # 8 MiB
    reply = _send(wire(server.url), f"{server.url}/upload", method="POST", body=body)
    assert reply.status == 200
    assert seen[0].body == body


def test_request_headers_are_delivered(raw_servers, client):
    """The client's headers, a request's own and a correct Host arrive; nothing sends cookies."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    request = dataclasses.replace(get("x"), headers=(("X-Frontdoor-Enrichment", "e30"),))
    _call(client(server.url), request)
    headers = seen[0].headers
    assert headers["x-request-id"] == "contract-1"
    assert headers["accept"] == "application/json"
    assert 0 < int(headers["x-frontdoor-deadline-ms"]) <= 2_000
    assert headers["x-frontdoor-enrichment"] == "e30"
    assert headers["host"] == server.url.removeprefix("http://")
    assert "content-length" not in headers  # a GET without a body declares none
    assert "cookie" not in headers


def test_cookies_are_not_kept_between_calls(raw_servers, wire):
    """A Set-Cookie is never sent back: a call may carry another device's request."""
    seen: list[Request] = []
    server = raw_servers.start(
        serve_all(seen, json_reply(extra=b"Set-Cookie: session=abc; Path=/\r\n"))
    )
    transport = wire(server.url)
    _send(transport, f"{server.url}/a")
    _send(transport, f"{server.url}/b")
    assert "cookie" not in seen[1].headers


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", id="204"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", id="200-empty"),
    ],
)
def test_empty_reply_body(raw_servers, wire, raw):
    """A reply without a body comes back with an empty body, and the connection is reused."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, raw))
    transport = wire(server.url)
    assert _send(transport, f"{server.url}/x").body == b""
    assert _send(transport, f"{server.url}/x").body == b""
    assert server.connections == 1


def test_empty_body_is_a_protocol_error_for_the_client(raw_servers, client):
    """BackendClient wants a JSON object or array: an empty 204 is malformed for it."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, b"HTTP/1.1 204 No Content\r\n\r\n"))
    with pytest.raises(BackendProtocolError):
        _call(client(server.url))


def test_chunked_reply_is_reassembled(raw_servers, wire):
    """A chunked body is joined from its chunks, and the connection stays usable."""
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4\r\n{"ok\r\n7\r\n":true}\r\n0\r\n\r\n'
    )
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, chunked))
    transport = wire(server.url)
    assert _send(transport, f"{server.url}/x").body == JSON_OK
    assert _send(transport, f"{server.url}/x").body == JSON_OK
    assert server.connections == 1


def test_keep_alive_reuses_one_connection(raw_servers, client):
    """Two sequential calls share one connection."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    backend = client(server.url)
    assert _call(backend) == _call(backend) == {"ok": True}
    assert (server.connections, len(seen)) == (1, 2)


def test_pool_holds_one_connection_per_concurrent_call(raw_servers, wire):
    """max_concurrent calls at once use as many connections, each carrying one call at a
    time; the next round reuses them. Two calls on one socket would deadlock this server:
    it answers only once every call has arrived, each on a connection of its own."""
    arrived = gevent.event.Event()
    count = {"requests": 0, "round": MAX_CONCURRENT}

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            count["requests"] += 1
            if count["requests"] == count["round"]:
                arrived.set()
            arrived.wait(5)
            conn.send(json_reply())

    server = raw_servers.start(handler)
    transport = wire(server.url)
    for round_number in (1, 2):
        arrived.clear()
        count["round"] = MAX_CONCURRENT * round_number
        calls = [gevent.spawn(_send, transport, f"{server.url}/x") for _ in range(MAX_CONCURRENT)]
        gevent.joinall(calls, raise_error=True)
        assert all(call.value.status == 200 for call in calls)
    assert server.connections == MAX_CONCURRENT


def test_non_positive_timeout_sends_nothing(raw_servers, wire):
    """With no time left the transport refuses at once and opens no connection."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    with pytest.raises(BackendDeadlineError):
        _send(wire(server.url), f"{server.url}/x", timeout_s=0)
    assert server.connections == 0


# --- slow and silent backends --------------------------------------------------------


def _silent(servers: Servers) -> Handler:
    """A server that reads the request and never answers (until the test ends)."""

    def silent(conn: Conn) -> None:
        conn.read_request()
        servers.release.wait(10)

    return silent


def test_hang_times_out_within_the_bound(raw_servers, client):
    """A server that reads the request and never answers costs one budget."""
    server = raw_servers.start(_silent(raw_servers))
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        _call(client(server.url, timeout_ms=200))
    assert time.monotonic() - started < 2


def test_the_transport_alone_bounds_each_read(raw_servers, wire):
    """Without the client's total timeout, the per-operation timeout still ends a hang."""
    server = raw_servers.start(_silent(raw_servers))
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError):
        _send(wire(server.url), f"{server.url}/x", timeout_s=0.2)
    assert time.monotonic() - started < 2


def test_dripping_body_is_cut_at_the_total_budget_and_not_reused(raw_servers, client):
    """A body dripped a byte every 50 ms never trips a per-read timeout, so the client's
    total budget cuts it; the half-read connection is closed, not reused."""
    release = raw_servers.release

    def drip_first(conn: Conn) -> None:
        while conn.read_request() is not None:
            if conn.index:
                conn.send(json_reply())
                continue
            conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(1000):
                conn.send(b" ")
                if release.wait(0.05):
                    return

    server = raw_servers.start(drip_first)
    backend = client(server.url, timeout_ms=300)
    started = time.monotonic()
    with pytest.raises(BackendTimeoutError, match="time budget"):
        _call(backend)
    assert time.monotonic() - started < 2
    assert _call(backend) == {"ok": True}
    assert server.connections == 2


def test_connection_refused_fails_fast(wire):
    """A port nobody listens on gives BackendConnectionError at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(BackendConnectionError):
        _send(wire(f"http://127.0.0.1:{port}"), f"http://127.0.0.1:{port}/x")
    assert time.monotonic() - started < 1


# --- malformed and oversized replies -------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"NOT-HTTP\r\n\r\n", id="bad-status-line"),
        pytest.param(b"HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n", id="bad-status-code"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", id="bad-content-length"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", id="bad-chunk"
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", id="truncated"),
    ],
)
def test_malformed_reply_is_a_protocol_error(raw_servers, client, raw):
    """A reply that is not HTTP, or is cut short, raises BackendProtocolError."""
    server = raw_servers.start(lambda conn: (conn.read_request(), conn.send(raw)))
    with pytest.raises(BackendProtocolError):
        _call(client(server.url))


def _oversized(chunked: bool, release: gevent.event.Event) -> Handler:
    """Declare a length over the cap and send no body, or stream chunks past the cap; then
    stall: a transport that read on before checking would time out instead of refusing."""

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            if conn.index:
                conn.send(json_reply())
                continue
            if chunked:
                conn.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                conn.send((b"200\r\n" + b" " * 0x200 + b"\r\n") * 4)
            else:
                conn.send(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (CAP * 1000))
            release.wait(10)
            return

    return handler


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_refused_early_and_not_reused(raw_servers, client, chunked):
    """A body over the cap raises BackendBodyTooLargeError without waiting for the rest;
    the connection is dropped and the next call opens a new one."""
    server = raw_servers.start(_oversized(chunked, raw_servers.release))
    backend = client(server.url)
    with pytest.raises(BackendBodyTooLargeError):
        _call(backend)
    assert _call(backend) == {"ok": True}
    assert server.connections == 2


def test_body_at_the_cap_is_accepted(raw_servers, wire):
    """Exactly the cap is not over it."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, json_reply(b" " * CAP)))
    assert len(_send(wire(server.url), f"{server.url}/x").body) == CAP


def test_reset_mid_body_is_an_error_and_not_reused(raw_servers, client):
    """A connection reset after part of the body is a backend error (never a hang); the
    next call opens a new connection."""

    def reset_first(conn: Conn) -> None:
        while conn.read_request() is not None:
            if conn.index:
                conn.send(json_reply())
                continue
            conn.send(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"a":')
            conn.reset()
            return

    server = raw_servers.start(reset_first)
    backend = client(server.url)
    with pytest.raises(BackendError) as info:
        _call(backend)
    assert not isinstance(info.value, BackendTimeoutError)
    assert _call(backend) == {"ok": True}
    assert server.connections == 2


# --- what is never done --------------------------------------------------------------


def test_redirect_is_returned_not_followed(raw_servers, wire, client):
    """A 3xx comes back as its status (the client makes it a protocol error); its target
    is never contacted."""
    target_seen: list[Request] = []
    target = raw_servers.start(serve_all(target_seen))
    redirect = b"HTTP/1.1 302 Found\r\nLocation: %s/x\r\nContent-Length: 0\r\n\r\n" % (
        target.url.encode()
    )
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, redirect))
    assert _send(wire(server.url), f"{server.url}/x").status == 302
    with pytest.raises(BackendProtocolError, match="redirect not followed"):
        _call(client(server.url))
    assert (target.connections, target_seen) == (0, [])


@pytest.mark.parametrize("reuse", [False, True], ids=["new-connection", "reused-connection"])
def test_post_is_never_sent_twice(raw_servers, wire, reuse):
    """A POST whose connection the server closes after reading it fails; it is not
    re-sent, on this connection or another, whether or not the connection was reused."""
    seen: list[Request] = []

    def close_after_post(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            seen.append(request)
            if request.line.startswith("POST"):
                return  # read, maybe acted on, never answered
            conn.send(json_reply())

    server = raw_servers.start(close_after_post)
    transport = wire(server.url)
    if reuse:
        _send(transport, f"{server.url}/warm")
    with pytest.raises(BackendConnectionError):
        _send(transport, f"{server.url}/accounts", method="POST", body=b"{}")
    assert [request.line.split()[0] for request in seen].count("POST") == 1
    assert server.connections == 1


def test_a_connection_closed_while_idle_is_not_used(raw_servers, wire):
    """When the server closed a kept-alive connection between calls, the next call (a POST,
    which may not be re-sent) goes on a new connection and succeeds."""
    closed = gevent.event.Event()
    seen: list[Request] = []

    def one_then_close(conn: Conn) -> None:
        request = conn.read_request()
        if request is not None:
            seen.append(request)
            conn.send(json_reply())  # no "Connection: close": the client believes it alive
        conn.sock.shutdown(socket.SHUT_RDWR)
        closed.set()

    server = raw_servers.start(one_then_close)
    transport = wire(server.url)
    _send(transport, f"{server.url}/a")
    assert closed.wait(5)
    reply = _send(transport, f"{server.url}/accounts", method="POST", body=b"{}")
    assert reply.status == 200
    assert [request.line.split()[0] for request in seen] == ["GET", "POST"]
    assert server.connections == 2


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"])
def test_proxy_variables_are_ignored(raw_servers, wire, monkeypatch, variable):
    """Proxy environment variables never reroute a backend call."""
    proxy_seen: list[Request] = []
    proxy = raw_servers.start(serve_all(proxy_seen, json_reply(b'{"proxied":true}')))
    monkeypatch.setenv(variable, proxy.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    assert _send(wire(server.url), f"{server.url}/x").body == JSON_OK
    assert (proxy.connections, len(seen)) == (0, 1)
