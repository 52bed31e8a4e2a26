"""GeventTransport's own choices, over real sockets on 127.0.0.1: the one re-send it makes
(a GET on a stale keep-alive connection) and the ones it never makes, replies the contract
suite does not cover (HEAD, 1xx, close-delimited, trailing bytes), requests it refuses to
send, the pool's bound, and TLS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
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
    json_reply,
    serve_all,
)

from backends.errors import BackendConnectionError, BackendProtocolError
from backends.gevent_transport import GeventTransport
from backends.specs import BackendSpec
from backends.transport import WireResponse

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("raw_hang_guard")]

CAP = 1_024


@pytest.fixture
def wire() -> Iterator[Callable[..., GeventTransport]]:
    built: list[GeventTransport] = []

    def make(base_url: str, max_concurrent: int = 2, **kwargs: object) -> GeventTransport:
        spec = BackendSpec(
            "wire", base_url, max_body_bytes=CAP, max_concurrent=max_concurrent, transport="gevent"
        )
        built.append(GeventTransport(spec, **kwargs))  # type: ignore[arg-type]
        return built[-1]

    yield make
    for transport in built:
        transport.close()


def _send(
    transport: GeventTransport,
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> WireResponse:
    return transport.send(
        method,
        url,
        headers=headers if headers is not None else {"Accept": "application/json"},
        body=body,
        timeout_s=2.0,
        max_body_bytes=CAP,
    )


def _methods(seen: list[Request]) -> list[str]:
    return [request.line.split()[0] for request in seen]


def _close_after_reading(seen: list[Request], unanswered: set[int]) -> Handler:
    """Answer every request but those whose number (1 for the first the server reads,
    across connections) is in ``unanswered``: read those, then close the connection."""

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            seen.append(request)
            if len(seen) in unanswered:
                return  # read, maybe acted on, never answered
            conn.send(json_reply())

    return handler


# --- the stale-connection re-send ----------------------------------------------------


def test_get_on_a_stale_reused_connection_is_sent_once_more(raw_servers, wire):
    """A GET whose reused connection closes before any reply byte goes once more, on a
    new connection, and succeeds."""
    seen: list[Request] = []
    server = raw_servers.start(_close_after_reading(seen, {2}))
    transport = wire(server.url)
    _send(transport, f"{server.url}/warm")
    assert _send(transport, f"{server.url}/x").body == JSON_OK
    assert _methods(seen) == ["GET", "GET", "GET"]
    assert server.connections == 2


def test_the_get_is_re_sent_once_only(raw_servers, wire):
    """If the new connection closes too, the GET fails: it went out twice, never three times."""
    seen: list[Request] = []
    server = raw_servers.start(_close_after_reading(seen, {2, 3}))
    transport = wire(server.url)
    _send(transport, f"{server.url}/warm")
    with pytest.raises(BackendConnectionError):
        _send(transport, f"{server.url}/x")
    assert [request.line for request in seen].count("GET /x HTTP/1.1") == 2


def test_a_get_on_a_new_connection_is_not_re_sent(raw_servers, wire):
    """Closed without a reply on a fresh connection: the backend's failure, reported as is."""
    seen: list[Request] = []
    server = raw_servers.start(_close_after_reading(seen, {1}))
    with pytest.raises(BackendConnectionError):
        _send(wire(server.url), f"{server.url}/x")
    assert (len(seen), server.connections) == (1, 1)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_only_safe_methods_are_re_sent(raw_servers, wire, method):
    """PUT and DELETE are idempotent but not safe: they are retried one layer up, within a
    budget, never here; POST never at all."""
    seen: list[Request] = []
    server = raw_servers.start(_close_after_reading(seen, {2}))
    transport = wire(server.url)
    _send(transport, f"{server.url}/warm")
    with pytest.raises(BackendConnectionError):
        _send(transport, f"{server.url}/x", method=method, body=b"{}")
    assert _methods(seen) == ["GET", method]
    assert server.connections == 1


def test_no_re_send_once_part_of_the_reply_arrived(raw_servers, wire):
    """A reply cut after its first bytes may mean the request was served: no re-send."""
    seen: list[Request] = []

    def partial_second(conn: Conn) -> None:
        for number in (1, 2):
            request = conn.read_request()
            if request is None:
                return
            seen.append(request)
            conn.send(json_reply() if number == 1 else b"HTTP/1.1 200")

    server = raw_servers.start(partial_second)
    transport = wire(server.url)
    _send(transport, f"{server.url}/warm")
    with pytest.raises(BackendProtocolError):
        _send(transport, f"{server.url}/x")
    assert (len(seen), server.connections) == (2, 1)


# --- replies the contract suite does not cover ---------------------------------------


def test_head_reply_has_no_body_and_keeps_the_connection(raw_servers, wire):
    """A HEAD reply's Content-Length describes a body that never comes (and may exceed the
    cap): nothing is read for it and the connection stays usable."""
    seen: list[Request] = []
    head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (CAP * 10)

    def handler(conn: Conn) -> None:
        while (request := conn.read_request()) is not None:
            seen.append(request)
            conn.send(head if request.line.startswith("HEAD") else json_reply())

    server = raw_servers.start(handler)
    transport = wire(server.url)
    reply = _send(transport, f"{server.url}/x", method="HEAD")
    assert (reply.status, reply.body, reply.headers["content-length"]) == (200, b"", str(CAP * 10))
    assert _send(transport, f"{server.url}/x").body == JSON_OK
    assert server.connections == 1


def test_interim_reply_is_skipped(raw_servers, wire):
    """A 103 Early Hints before the reply is not the reply."""
    seen: list[Request] = []
    raw = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + json_reply(extra=b"X-Final: 1\r\n")
    server = raw_servers.start(serve_all(seen, raw))
    reply = _send(wire(server.url), f"{server.url}/x")
    assert (reply.status, reply.body, reply.headers.get("link")) == (200, JSON_OK, None)
    assert reply.headers["x-final"] == "1"


def test_body_delimited_by_the_close_is_read_to_the_end(raw_servers, wire):
    """Without Content-Length or chunking, the body is what arrives before the close."""
    server = raw_servers.start(
        lambda conn: (conn.read_request(), conn.send(b"HTTP/1.1 200 OK\r\n\r\n{}"))
    )
    transport = wire(server.url)
    assert _send(transport, f"{server.url}/x").body == b"{}"
    assert transport._idle == []


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json_reply(extra=b"Connection: close\r\n"), id="connection-close"),
        pytest.param(json_reply().replace(b"HTTP/1.1", b"HTTP/1.0"), id="http-1.0"),
        pytest.param(json_reply() + b"HTTP/1.1 200 OK\r\n", id="trailing-bytes"),
    ],
)
def test_connection_is_not_kept_when_it_cannot_carry_another_call(raw_servers, wire, raw):
    """The reply is returned, but a connection the server will close, or with bytes after
    the reply, is not put back in the pool."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, raw))
    transport = wire(server.url)
    assert _send(transport, f"{server.url}/x").body == JSON_OK
    assert transport._idle == []
    assert _send(transport, f"{server.url}/x").body == JSON_OK
    assert server.connections == 2


def test_repeated_headers_are_joined(raw_servers, wire):
    """Two lines of one header come back as one comma-joined value, under a lower-case name."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, json_reply(extra=b"Vary: a\r\nVARY: b\r\n")))
    assert _send(wire(server.url), f"{server.url}/x").headers["vary"] == "a, b"


def test_header_bytes_outside_utf8_come_back_as_latin1(raw_servers, wire):
    """A header byte that is not UTF-8 is read as Latin-1 (as http.client does). Before
    geventhttpclient 2.5 it crashed the interpreter: setup.cfg's floor is that release."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen, json_reply(extra=b"X-Name: caf\xe9 \xff\r\n")))
    reply = _send(wire(server.url), f"{server.url}/x")
    assert (reply.body, reply.headers["x-name"]) == (JSON_OK, "caf\xe9 \xff")


def test_a_head_that_never_ends_is_refused(raw_servers, wire):
    """A reply head growing past 64 KiB is a protocol error, not unbounded memory."""
    release = raw_servers.release

    def endless(conn: Conn) -> None:
        conn.read_request()
        conn.send(b"HTTP/1.1 200 OK\r\n")
        for number in range(10_000):
            conn.send(b"X-Filler-%d: %s\r\n" % (number, b"x" * 100))
            if release.is_set():
                return

    server = raw_servers.start(endless)
    with pytest.raises(BackendProtocolError):
        _send(wire(server.url), f"{server.url}/x")


# --- requests that are never sent ----------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Bad": "a\r\nX-Injected: 1"},
        {"X-Bad": "a\nX-Injected: 1"},
        {"X-Bad": "a\rb"},
        {"X-Bad\r\nX-Injected": "1"},
    ],
)
def test_a_line_break_in_a_header_is_refused_before_sending(raw_servers, wire, headers):
    """A header that would end its line early (request smuggling) is the caller's bug."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    with pytest.raises(ValueError, match="line break"):
        _send(wire(server.url), f"{server.url}/x", headers=headers)
    assert server.connections == 0


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:1/x", "http://127.0.0.1:{port}0/x", "http://127.0.0.1:{port}?x"],
)
def test_a_url_outside_the_backend_is_refused(raw_servers, wire, url):
    """The transport is bound to one backend's origin: a URL elsewhere is the caller's bug."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    port = server.url.rsplit(":", 1)[1]
    with pytest.raises(ValueError, match="not below"):
        _send(wire(server.url), url.format(port=port))
    assert server.connections == 0


# --- the pool ------------------------------------------------------------------------


def test_the_pool_keeps_at_most_max_concurrent_idle_connections(raw_servers, wire):
    """A call beyond the bulkhead's size opens a connection of its own and never waits for
    a pooled one; only max_concurrent connections stay open afterwards."""
    arrived = gevent.event.Event()
    count = {"requests": 0}

    def handler(conn: Conn) -> None:
        while conn.read_request() is not None:
            count["requests"] += 1
            if count["requests"] == 3:
                arrived.set()
            arrived.wait(5)
            conn.send(json_reply())

    server = raw_servers.start(handler)
    transport = wire(server.url, max_concurrent=2)
    calls = [gevent.spawn(_send, transport, f"{server.url}/x") for _ in range(3)]
    gevent.joinall(calls, raise_error=True)
    assert server.connections == 3
    assert len(transport._idle) == 2


def test_close_closes_idle_connections(raw_servers, wire):
    """close() ends the pooled connections: the server sees them end."""
    ended = gevent.event.Event()
    seen: list[Request] = []

    def handler(conn: Conn) -> None:
        serve_all(seen)(conn)
        ended.set()

    server = raw_servers.start(handler)
    transport = wire(server.url)
    _send(transport, f"{server.url}/x")
    transport.close()
    assert ended.wait(5)


def test_errors_name_no_host_and_keep_the_original(wire):
    """A refused connection's message is fixed; the socket error is its cause."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(BackendConnectionError) as info:
        _send(wire(f"http://localhost:{port}"), f"http://localhost:{port}/x")
    assert "localhost" not in str(info.value)
    assert str(port) not in str(info.value)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


# --- TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = str(folder / "key.pem"), str(folder / "cert.pem")
    subprocess.run(  # noqa: S603 - a fixed command line
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return key, cert


def _server_context(key: str, cert: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


def test_https_with_a_trusted_certificate(raw_servers, wire, certificate):
    """An https backend is reached over TLS, verified against the given trust, kept alive."""
    key, cert = certificate
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen), ssl_context=_server_context(key, cert))
    base = server.url.replace("http://", "https://")
    transport = wire(base, ssl_context=ssl.create_default_context(cafile=cert))
    assert _send(transport, f"{base}/x").body == JSON_OK
    assert _send(transport, f"{base}/x").body == JSON_OK
    assert server.connections == 1


def test_https_with_an_untrusted_certificate_is_refused(raw_servers, wire, certificate):
    """By default only certifi's authorities are trusted: a self-signed backend is not."""
    key, cert = certificate
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen), ssl_context=_server_context(key, cert))
    base = server.url.replace("http://", "https://")
    started = time.monotonic()
    with pytest.raises(BackendConnectionError) as info:
        _send(wire(base), f"{base}/x")
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    assert seen == []
    assert time.monotonic() - started < 2


def test_base_url_path_is_kept(raw_servers, wire):
    """A base URL with a path sends its calls below that path."""
    seen: list[Request] = []
    server = raw_servers.start(serve_all(seen))
    _send(wire(f"{server.url}/catalog"), f"{server.url}/catalog/titles")
    assert seen[0].line == "GET /catalog/titles HTTP/1.1"
