"""The simulated server's HTTP/1.1 over raw sockets: keep-alive, pipelining, HTTP/1.0,
request bodies (sized, chunked, expecting 100-continue), HEAD, and refusals."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest

from backends.simulated import SimulatedBackends
from backends.simulated.wire import MAX_READ_BODY_BYTES

pytestmark = pytest.mark.integration

TIMEOUT_S = 5


class Client:
    """A raw connection that reads whole responses (Content-Length framed, or to EOF)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(65_536)
        self.buffer += data
        return bool(data)

    def response(self, *, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            assert self._fill(), "connection closed before a response"
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
        if status == 100 or head_only:  # an interim response, or a HEAD answer: no body
            return status, headers, b""
        if "content-length" not in headers:
            while self._fill():
                pass
            body, self.buffer = self.buffer, b""
            return status, headers, body
        length = int(headers["content-length"])
        while len(self.buffer) < length:
            assert self._fill(), "connection closed inside a body"
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """Whether the server closed the connection (EOF, nothing buffered)."""
        try:
            return not self.buffer and not self.sock.recv(1)
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def client(backends: SimulatedBackends) -> Iterator[Client]:
    connection = Client(backends.port)
    yield connection
    connection.close()


def get(target: str, extra: str = "", version: str = "HTTP/1.1") -> bytes:
    return f"GET {target} {version}\r\nHost: x\r\n{extra}\r\n".encode()


def test_keep_alive_serves_many_requests_on_one_connection(client):
    """Every answer is complete and framed; the connection stays open."""
    for title in ("t1", "t2", "t3"):
        client.send(get(f"/catalog/titles/{title}"))
        status, headers, body = client.response()
        assert status == 200
        assert headers["x-service"] == "catalog"
        assert headers["content-type"] == "application/json"
        assert "date" in headers
        assert "connection" not in headers
        assert json.loads(body)["id"] == title


def test_pipelined_requests_are_answered_in_order(client):
    """Requests sent back to back in one packet get their answers in order."""
    client.send(b"".join(get(f"/catalog/titles/t{n}") for n in (5, 6, 7)))
    ids = [json.loads(client.response()[2])["id"] for _ in range(3)]
    assert ids == ["t5", "t6", "t7"]


def test_connection_close_is_honoured(client):
    """The answer says Connection: close, and the server closes."""
    client.send(get("/device/devices/ps5", "Connection: close\r\n"))
    status, headers, _ = client.response()
    assert status == 200
    assert headers["connection"] == "close"
    assert client.closed()


def test_http_1_0_closes_unless_asked_to_keep_alive(client, backends):
    """HTTP/1.0 keep-alive is opt-in, and said so in the answer."""
    client.send(get("/device/devices/ps5", "Connection: keep-alive\r\n", "HTTP/1.0"))
    assert client.response()[1]["connection"] == "keep-alive"
    client.send(get("/device/devices/ps5", version="HTTP/1.0"))
    assert client.response()[1]["connection"] == "close"
    assert client.closed()


def test_sized_and_chunked_bodies_reach_the_service(client):
    """A PUT with Content-Length, then one with a chunked body, on one connection."""
    body = b'{"position_s": 42}'
    client.send(
        b"PUT /bookmarks/m12/t9 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    assert json.loads(client.response()[2])["position_s"] == 42
    chunked = b"5\r\n" + body[:5] + b"\r\n" + b"%x;ext=1\r\n" % (len(body) - 5) + body[5:]
    client.send(
        b"PUT /bookmarks/m12/t9 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked.replace(b"42", b"43")
        + b"\r\n0\r\nX-Trailer: 1\r\n\r\n"
    )
    status, _, answer = client.response()
    assert status == 200
    assert json.loads(answer)["position_s"] == 43


def test_expect_100_continue_gets_an_interim_answer(client):
    """A client that waits for 100 Continue gets it, then the real answer."""
    body = b'{"position_s": 7}'
    client.send(
        b"PUT /bookmarks/m12/t9 HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    )
    assert client.response()[0] == 100
    client.send(body)
    assert json.loads(client.response()[2])["position_s"] == 7


def test_a_body_over_the_services_limit_is_413_and_the_connection_stays_usable(client):
    """The service refuses it; the server read it all, so the next request parses."""
    body = b'{"position_s": "' + b"x" * 70_000 + b'"}'
    client.send(
        b"PUT /bookmarks/m12/t9 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
        + body
    )
    assert client.response()[0] == 413
    client.send(get("/device/devices/ps5"))
    assert client.response()[0] == 200


def test_a_body_too_large_to_read_is_refused_and_closed(client):
    """Beyond what the server reads at all: 413 at once, then the connection ends."""
    client.send(
        b"PUT /bookmarks/m12/t9 HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
        % (MAX_READ_BODY_BYTES + 1)
    )
    status, headers, _ = client.response()
    assert status == 413
    assert headers["connection"] == "close"


def test_head_gets_the_headers_without_the_body(client):
    """A HEAD answer is framed like a GET's but carries no body: the next answer follows
    the head directly (the services allow GET only, so it is a 405)."""
    client.send(b"HEAD /catalog/titles/t1 HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = client.response(head_only=True)
    assert status == 405
    assert int(headers["content-length"]) > 0
    client.send(get("/_health"))
    assert json.loads(client.response()[2]) == {"status": "ok"}


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/3\r\n\r\n", 505),
        (b"GET / HTTP/1.1\r\nbad header\r\n\r\n", 400),
        (b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\n\r\n", 414),
        (b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    ],
)
def test_malformed_requests_are_answered_then_closed(client, request_bytes, status):
    """A request the server cannot parse is answered with JSON and the connection ends."""
    client.send(request_bytes)
    code, headers, body = client.response()
    assert code == status
    assert headers["connection"] == "close"
    assert "error" in json.loads(body)
    assert client.closed()


def test_empty_lines_before_a_request_are_ignored(client):
    """RFC 9112 2.2: a server ignores empty lines ahead of a request line."""
    client.send(b"\r\n\r\n" + get("/_health"))
    assert client.response()[0] == 200


def test_requests_are_written_to_the_access_log_when_one_is_given(world, caplog):
    """With an access log, one INFO line per request: client, request line, status, bytes."""
    log = logging.getLogger("test.simulated.access")
    with SimulatedBackends(world=world, access_log=log).start() as sim, caplog.at_level("INFO"):
        client = Client(sim.port)
        client.send(get("/catalog/titles/t1"))
        _, _, body = client.response()
        client.close()
    lines = [record.getMessage() for record in caplog.records if record.name == log.name]
    assert len(lines) == 1
    assert '"GET /catalog/titles/t1 HTTP/1.1" 200' in lines[0]
    assert f" {len(body)} " in lines[0]
