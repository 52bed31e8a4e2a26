"""The keep-alive client over real loopback sockets: framing, reuse, failures."""

from __future__ import annotations

import socket

import gevent
import gevent.event
import pytest
from gevent.server import StreamServer

from orchestrator.frontend.httpserver import NoDelayWSGIServer
from orchestrator.loadtest.client import FailureKind, HttpClient, RequestError, _retry_after_s
from orchestrator.loadtest.target import Target


def _app(environ, start_response):
    if environ["PATH_INFO"] == "/chunked":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ab", b"cd"]  # no Content-Length: pywsgi sends it chunked
    body = (environ["REQUEST_METHOD"] + " " + environ["PATH_INFO"]).encode()
    start_response(
        "201 Created", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
    )
    return [body]


@pytest.fixture
def server():
    wsgi = NoDelayWSGIServer(("127.0.0.1", 0), _app, log=None)
    wsgi.start()
    yield Target("127.0.0.1", wsgi.server_port)
    wsgi.stop(timeout=1)


def test_a_response_with_content_length_is_read_whole(server):
    """Status, content type and body come back."""
    client = HttpClient(server)
    response = client.request("POST", "/x", (("Content-Type", "text/plain"),), b"hi")
    client.close()
    assert (response.status, response.content_type, response.body) == (
        201,
        "text/plain",
        b"POST /x",
    )


def test_a_chunked_response_is_reassembled(server):
    """Chunked transfer coding is decoded."""
    client = HttpClient(server)
    assert client.request("GET", "/chunked").body == b"abcd"
    client.close()


def test_sequential_requests_reuse_one_connection(server):
    """Keep-alive: ten requests one after another use a single socket."""
    client = HttpClient(server)
    for _ in range(10):
        client.request("GET", "/x")
    assert len(client._idle) == 1
    client.close()


def test_a_connection_idle_too_long_is_closed_not_reused(server):
    """Past max_idle_s idle (the server may be closing it) a new connection is made, and
    the stale one is closed; within it, the same connection is reused."""
    now = [100.0]
    client = HttpClient(server, max_idle_s=30.0, clock=lambda: now[0])
    client.request("GET", "/x")
    ((_, first),) = client._idle
    now[0] += 29.0
    client.request("GET", "/x")
    assert client._idle[0][1] is first  # reused within 30 s
    now[0] += 31.0
    client.request("GET", "/x")
    ((_, second),) = client._idle
    assert second is not first
    assert first._sock.fileno() == -1  # closed
    client.close()


def test_a_refused_connection_is_a_connect_failure():
    """Nothing listening: FailureKind.CONNECT."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RequestError) as caught:
        HttpClient(Target("127.0.0.1", port)).request("GET", "/")
    assert caught.value.kind is FailureKind.CONNECT


def test_a_silent_server_is_a_timeout():
    """A server that accepts and never answers: FailureKind.TIMEOUT after timeout_s."""
    release = gevent.event.Event()

    def silent(sock, _address):
        release.wait(5)
        sock.close()

    stream = StreamServer(("127.0.0.1", 0), silent)
    stream.start()
    try:
        client = HttpClient(Target("127.0.0.1", stream.server_port), timeout_s=0.05)
        with pytest.raises(RequestError) as caught:
            client.request("GET", "/")
        assert caught.value.kind is FailureKind.TIMEOUT
        assert client._idle == []
    finally:
        release.set()
        stream.stop(timeout=1)


def test_garbage_is_a_protocol_failure():
    """A reply that is not HTTP: FailureKind.PROTOCOL."""

    def garbage(sock, _address):
        sock.recv(1024)
        sock.sendall(b"SSH-2.0-OpenSSH\r\n\r\n")
        sock.close()

    stream = StreamServer(("127.0.0.1", 0), garbage)
    stream.start()
    try:
        with pytest.raises(RequestError) as caught:
            HttpClient(Target("127.0.0.1", stream.server_port)).request("GET", "/")
        assert caught.value.kind is FailureKind.PROTOCOL
    finally:
        stream.stop(timeout=1)


def test_retry_after_comes_back_parsed_and_only_when_sent():
    """``Retry-After: 1`` on a 503 is 1.0 s; a response without one has ``None``."""

    def app(environ, start_response):
        headers = [("Content-Type", "text/plain"), ("Content-Length", "0")]
        if environ["PATH_INFO"] == "/shed":
            start_response("503 Service Unavailable", [*headers, ("Retry-After", "1")])
        else:
            start_response("200 OK", headers)
        return [b""]

    wsgi = NoDelayWSGIServer(("127.0.0.1", 0), app, log=None)
    wsgi.start()
    try:
        client = HttpClient(Target("127.0.0.1", wsgi.server_port))
        shed, ok = client.request("GET", "/shed"), client.request("GET", "/ok")
        client.close()
    finally:
        wsgi.stop(timeout=1)
    assert (shed.status, shed.retry_after_s, ok.retry_after_s) == (503, 1.0, None)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (b"120", 120.0),
        (b" 0 ", 0.0),
        (b"Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: retry now
        (b"-1", None),
        (b"soon", None),
        (b"1.5", None),
    ],
)
def test_retry_after_accepts_delta_seconds_and_http_dates(value, seconds):
    """RFC 9110: delta-seconds or an HTTP-date; anything else is as if absent."""
    assert _retry_after_s(value) == seconds
