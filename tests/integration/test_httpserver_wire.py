"""orchestrator.frontend.httpserver over a real socket: pywsgi with the strict header parser."""

from __future__ import annotations

import socket

import pytest

from orchestrator.frontend.httpserver import MAX_HEADER_FIELDS, NoDelayWSGIServer

pytestmark = pytest.mark.integration


def _app(environ, start_response):
    body = f"{environ.get('HTTP_X_ONE')}|{environ.get('CONTENT_TYPE')}".encode()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server():
    served = NoDelayWSGIServer(("127.0.0.1", 0), _app, log=None, error_log=None)
    served.start()
    yield served
    served.stop(timeout=1)


def _exchange(server, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
        sock.sendall(raw)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_headers_reach_the_environ(server):
    """Fields become HTTP_* keys and CONTENT_TYPE, as with pywsgi's own parser."""
    reply = _exchange(
        server,
        b"GET / HTTP/1.1\r\nHost: a\r\nX-One: 1\r\nContent-Type: text/plain\r\n"
        b"Connection: close\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 200")
    assert reply.endswith(b"1|text/plain")
    assert reply.count(b"\r\nDate: ") == 1


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"Host: a\r\nX-One: 1\r\n folded\r\n", b"400"),
        (b"Host : a\r\n", b"400"),
        (b"".join(b"X-%d: v\r\n" % n for n in range(MAX_HEADER_FIELDS + 1)), b"431"),
    ],
    ids=["obs-fold", "space-before-colon", "too-many-fields"],
)
def test_malformed_header_blocks_are_refused_and_the_server_goes_on(server, head, status):
    """A refused header block is a 400 (malformed) or 431 (too large), not a traceback; the
    next connection is served."""
    reply = _exchange(server, b"GET / HTTP/1.1\r\n" + head + b"Connection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 " + status)
    ok = _exchange(server, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert ok.startswith(b"HTTP/1.1 200")
