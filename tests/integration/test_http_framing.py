"""Strict HTTP/1.1 framing, one error format and the head's timeouts, over raw sockets
against the real server (``frontdoor serve``'s ``HttpServer``, and gunicorn's worker).

Each framing case sends an ambiguous or broken request followed by a second, well-formed
one (``X-Request-Id: smuggled-1``): the first must get a 400 or 501 problem, the
connection must close, and the second must never be answered out of the same bytes
(RFC 9112 section 6). Refusals made before the app runs still get a request id, an
access line and a metric.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import gevent
import pytest
from gunicorn_run import free_port, start_gunicorn, wait_listening
from raw_http import HangGuardError

from backends.simulated import SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.httpserver import NoDelayWSGIServer, ProtocolLimits, Refusal
from orchestrator.frontend.problems import CONTENT_TYPE
from orchestrator.frontend.server import HttpServer
from orchestrator.ops.metrics import CapturingSink
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Request-Id: smuggled-1\r\n\r\n"
SIGNUP = b"POST /v1/nonmember/signup HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\n"
CHUNKED = b"2\r\n{}\r\n0\r\n\r\n"


@dataclass
class Reply:
    """Everything the server sent on one connection, until it closed it."""

    raw: bytes
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def problem(self) -> dict[str, object]:
        """The body, as the problem+json it must be."""
        assert self.headers.get("content-type") == CONTENT_TYPE, self.raw[:300]
        return dict(json.loads(self.body))


def _parse(raw: bytes) -> Reply:
    head, _, rest = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    return Reply(raw, int(lines[0].split(" ")[1]), headers, rest[:length])


def exchange(port: int, raw: bytes, *, half_close: bool = False) -> Reply:
    """Send ``raw`` on a new connection and read until the server closes it (a server that
    keeps it open fails the test with a timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(raw)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return _parse(read_to_close(sock))


def read_to_close(sock: socket.socket) -> bytes:
    """Every byte until the server closes the connection (``TIMEOUT_S`` at most)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def post(headers: bytes, body: bytes) -> bytes:
    """The public sign-up endpoint (it reads a JSON body), with ``headers`` and ``body``."""
    return SIGNUP + headers + b"\r\n" + body


@dataclass
class Served:
    """A running Frontdoor: its port, its metrics and its captured log records."""

    port: int
    sink: CapturingSink
    caplog: pytest.LogCaptureFixture

    def access_lines(self) -> list[dict[str, object]]:
        """The access lines written so far."""
        return [
            r.fields
            for r in self.caplog.records
            if getattr(r, "fields", {}).get("event") == "access"
        ]


@pytest.fixture
def served(
    backends: SimulatedBackends, caplog: pytest.LogCaptureFixture, raw_hang_guard: None
) -> Iterator[Served]:
    """Frontdoor on ``HttpServer`` with short head timeouts, metrics captured."""
    del raw_hang_guard
    settings = load_settings(
        environ={
            "FRONTDOOR_STATSD_ENABLED": "false",
            "FRONTDOOR_SERVER_HEADER_TIMEOUT_S": "0.5",
            "FRONTDOOR_SERVER_IDLE_TIMEOUT_S": "0.5",
        }
    )
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    sink = CapturingSink()
    frontdoor.metrics.sink = sink  # the project's test sink in place of the UDP one
    caplog.set_level(logging.INFO, logger="frontdoor.access")
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=1)
    server.start()
    try:
        yield Served(int(server.url.rsplit(":", 1)[1]), sink, caplog)
    finally:
        server.stop()


def assert_refused(reply: Reply, status: int, code: str) -> None:
    """A problem with ``status`` and ``code`` and a request id, the connection closed after
    it (``exchange`` read to the close), and nothing answered to the smuggled request."""
    assert reply.status == status, reply.raw[:300]
    problem = reply.problem
    assert (problem["status"], problem["code"]) == (status, code)
    assert problem["request_id"] == reply.headers["x-request-id"]
    assert reply.headers["connection"] == "close"
    assert b"smuggled-1" not in reply.raw
    assert reply.raw.count(b"HTTP/1.1 ") == 1


# -- Content-Length (finding 5) ------------------------------------------------------------


@pytest.mark.parametrize(
    "lengths",
    [
        b"Content-Length: 2\r\nContent-Length: %d\r\n" % len(b"{}" + SMUGGLED),
        b"Content-Length: 2\r\nContent-Length: 2\r\n",
        b"Content-Length: 2, 2\r\n",
        b"Content-Length: +2\r\n",
        b"Content-Length: 0_2\r\n",
    ],
    ids=["conflicting", "duplicate", "list", "plus-sign", "underscore"],
)
def test_an_ambiguous_content_length_is_refused_and_nothing_more_is_read(served, lengths):
    """Two Content-Lengths (even equal), a list, or one that is not plain digits: 400
    ``malformed_body``, closed; the bytes after it are never served as a request."""
    reply = exchange(served.port, post(lengths, b"{}" + SMUGGLED))
    assert_refused(reply, 400, "malformed_body")


def test_content_length_with_transfer_encoding_is_refused_and_closed(served):
    """The classic smuggling pair: 400, and the connection closed (RFC 9112 6.3)."""
    head = b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(CHUNKED)
    assert_refused(exchange(served.port, post(head, CHUNKED + SMUGGLED)), 400, "malformed_body")


# -- Transfer-Encoding (finding 5) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("codings", "status", "code"),
    [
        (b"Transfer-Encoding: gzip, chunked\r\n", 501, "unsupported_transfer_coding"),
        (b"Transfer-Encoding: foo, chunked\r\n", 501, "unsupported_transfer_coding"),
        (b"Transfer-Encoding: chunked, gzip\r\n", 400, "malformed_body"),
        (b"Transfer-Encoding: foo\r\n", 400, "malformed_body"),
        (b"Transfer-Encoding: chunked, chunked\r\n", 400, "malformed_body"),
        (b"Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n", 400, "malformed_body"),
    ],
    ids=["gzip-chunked", "unknown-chunked", "chunked-not-last", "no-chunked", "twice", "split"],
)
def test_any_transfer_coding_but_a_final_chunked_is_refused(served, codings, status, code):
    """A coding before the final chunked is not implemented (501); chunked missing, not
    last, or twice leaves the length unknown (400); either way the connection closes."""
    reply = exchange(served.port, post(codings, CHUNKED + SMUGGLED))
    assert_refused(reply, status, code)


def test_transfer_encoding_in_http_1_0_is_refused(served):
    """HTTP/1.0 has no chunked coding: its framing is faulty (RFC 9112 6.1)."""
    raw = (
        SIGNUP.replace(b"HTTP/1.1", b"HTTP/1.0")
        + b"Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
        + CHUNKED
        + SMUGGLED
    )
    assert_refused(exchange(served.port, raw), 400, "malformed_body")


# -- bodies (finding 3) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "half_close"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n" + SMUGGLED, False),
        (b"-2\r\n{}\r\n0\r\n\r\n" + SMUGGLED, False),
        (b"2\r\n{}XX0\r\n\r\n" + SMUGGLED, False),
        (b"1" * 17 + b"\r\n{}\r\n0\r\n\r\n" + SMUGGLED, False),
        (b'10\r\n{"a":', True),
    ],
    ids=["size-zz", "size-negative", "no-crlf-after-chunk", "size-overflow", "cut-short"],
)
def test_a_malformed_chunked_body_is_a_400_not_a_500(served, body, half_close):
    """A bad chunk is the client's fault: 400 ``malformed_body``, closed, and no ERROR
    line (which would feed the 5xx alert)."""
    reply = exchange(
        served.port, post(b"Transfer-Encoding: chunked\r\n", body), half_close=half_close
    )
    assert_refused(reply, 400, "malformed_body")
    assert not [r for r in served.caplog.records if r.levelno >= logging.ERROR]


def test_a_body_shorter_than_its_content_length_is_a_400(served):
    """Fewer bytes than declared, then the client's FIN: 400, not a logged 500."""
    reply = exchange(served.port, post(b"Content-Length: 50\r\n", b'{"a":'), half_close=True)
    assert_refused(reply, 400, "malformed_body")
    assert not [r for r in served.caplog.records if r.levelno >= logging.ERROR]


def test_a_broken_body_the_app_never_read_closes_the_connection_quietly(served):
    """A GET's malformed chunked body is read (and dropped) only after the answer: the
    connection is then closed, the rest never served, and nothing logged as an ERROR."""
    raw = b"GET /healthz HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
    reply = exchange(served.port, raw + SMUGGLED)
    assert reply.status == 200
    assert b"smuggled-1" not in reply.raw
    assert not [r for r in served.caplog.records if r.levelno >= logging.ERROR]


def test_the_rest_of_an_unread_body_that_never_comes_is_not_waited_for(served):
    """A body the app did not read, left unfinished: after the answer, the server waits
    ``server.header_timeout_s`` for the rest, then closes (pywsgi waited for ever)."""
    raw = b"GET /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 10
    reply = exchange(served.port, raw)
    assert reply.status == 200
    assert reply.raw.count(b"HTTP/1.1 ") == 1


def test_an_error_outside_the_app_is_a_problem_too(raw_hang_guard):
    """pywsgi's last resort (an application that raised) answers an ``internal_error``
    problem with a request id, reported like any refusal, instead of a text/plain 500."""
    del raw_hang_guard
    refusals: list[Refusal] = []

    def broken(_environ: object, _start_response: object) -> list[bytes]:
        raise RuntimeError("a bug")

    server = NoDelayWSGIServer(
        ("127.0.0.1", 0),
        broken,
        log=None,
        error_log=None,
        protocol_limits=ProtocolLimits(on_refusal=refusals.append),
    )
    server.start()
    try:
        reply = exchange(
            server.server_port, b"GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: b1\r\n\r\n"
        )
    finally:
        server.stop(timeout=1)
    assert reply.status == 500
    assert (reply.problem["code"], reply.problem["request_id"]) == ("internal_error", "b1")
    assert [(r.status, r.code, r.request_id, r.method, r.path) for r in refusals] == [
        (500, "internal_error", "b1", "GET", "/x")
    ]


# -- the head's limits, in the one error format (finding 6) --------------------------------


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"GET /healthz?" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414, "uri_too_long"),
        (b"GET /x HTTP/1.1\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431, "headers_too_large"),
        (
            b"GET /x HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % n for n in range(101)) + b"\r\n",
            431,
            "headers_too_large",
        ),
        (
            b"GET /x HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (n, b"v" * 7000) for n in range(5)),
            431,
            "headers_too_large",
        ),
    ],
    ids=["uri-over-8k", "header-line-over-8k", "101-fields", "35k-of-fields"],
)
def test_an_oversized_head_is_a_problem_with_an_access_line_and_a_metric(
    served, capfd, raw, status, code
):
    """414/431 as problem+json with a request id, an access line carrying that id, one
    ``frontend.refused.<code>`` count, and nothing on stderr but JSON."""
    reply = exchange(served.port, raw)
    assert_refused(reply, status, code)
    rid = reply.headers["x-request-id"]
    [line] = [a for a in served.access_lines() if a["request_id"] == rid]
    assert (line["status"], line["endpoint"]) == (status, None)
    assert served.sink.counters() == {f"frontdoor.frontend.refused.{code}": 1}
    assert "Traceback" not in capfd.readouterr().err


def test_a_refusal_after_the_headers_keeps_the_devices_request_id(served):
    """When the head was read, the device's own ``X-Request-Id`` tags the refusal."""
    head = b"X-Request-Id: dev-42\r\nContent-Length: 2\r\nContent-Length: 3\r\n"
    reply = exchange(served.port, post(head, b"{}"))
    assert_refused(reply, 400, "malformed_body")
    assert reply.headers["x-request-id"] == "dev-42"
    [line] = [a for a in served.access_lines() if a["request_id"] == "dev-42"]
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/nonmember/signup", 400)
    assert served.sink.counters() == {"frontdoor.frontend.refused.malformed_body": 1}


# -- timeouts (finding 2) ------------------------------------------------------------------


def test_a_head_never_finished_gets_a_408_and_is_closed(served):
    """Half a head, then silence: past ``server.header_timeout_s``, a 408 problem and the
    close (the hang guard fails the test if the server holds on)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Slow: ")
        reply = _parse(read_to_close(sock))
    assert_refused(reply, 408, "request_timeout")
    assert served.sink.counters() == {"frontdoor.frontend.refused.request_timeout": 1}


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(served):
    """No byte within the header timeout: closed, nothing sent (no request began)."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S) as sock:
        assert read_to_close(sock) == b""
    assert served.sink.counters() == {}


def test_a_kept_alive_connection_is_served_then_closed_once_idle(served):
    """Requests sent back to back on one connection are all answered; left idle past
    ``server.idle_timeout_s``, the connection is closed by the server, without an answer."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S) as sock:
        for n in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Request-Id: k%d\r\n\r\n" % n)
            received = b""
            while b"k%d" % n not in received or not received.endswith(b"}"):
                received += sock.recv(65536)
            assert received.startswith(b"HTTP/1.1 200")
        assert read_to_close(sock) == b""


def test_the_idle_timeout_is_per_wait_not_per_connection(served):
    """Each idle wait gets the whole ``server.idle_timeout_s`` (0.5 s here): four requests
    each after 0.35 s of silence (1.4 s idle in all) are all answered. (A timer re-started
    after a stop counts down only what was left of it: the connection was closed once its
    idle gaps added up to 0.5 s, as the client sent on it.)"""
    with socket.create_connection(("127.0.0.1", served.port), timeout=TIMEOUT_S) as sock:
        for n in range(4):
            if n:
                gevent.sleep(0.35)  # the idle gap under test, not a synchronisation
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-Request-Id: i%d\r\n\r\n" % n)
            received = b""
            while b"i%d" % n not in received or not received.endswith(b"}"):
                chunk = sock.recv(65536)
                assert chunk, f"request {n}: the server closed the connection"
                received += chunk
            assert received.startswith(b"HTTP/1.1 200")


# -- the same under gunicorn's worker ------------------------------------------------------


@pytest.fixture
def gunicorn(backends: SimulatedBackends, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """One FrontdoorWorker under gunicorn with a 0.5 s header timeout; its stderr log."""
    port = free_port()
    environ = {
        "FRONTDOOR_BACKENDS_BASE_URL": backends.url,
        "FRONTDOOR_STATSD_ENABLED": "false",
        "FRONTDOOR_AUTH_DEMO": "true",
        "FRONTDOOR_SERVER_HEADER_TIMEOUT_S": "0.5",
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = start_gunicorn(port, log, environ)
        try:
            try:
                wait_listening(port, process)
            except AssertionError as exc:
                raise HangGuardError(f"{exc}: {log_path.read_text()}") from None
            yield port, log_path
        finally:
            process.kill()
            process.wait(timeout=TIMEOUT_S)


def test_gunicorns_worker_frames_strictly_and_times_out_heads(gunicorn):
    """The worker's handler is the same: Content-Length with Transfer-Encoding is refused
    with a problem and closed, a half head gets a 408 after the configured header timeout
    (read from the loaded app); the refusal has its JSON access line, the late head is
    summed in a ``late_heads`` warning (a slowloris burst would otherwise log a line each)."""
    port, log_path = gunicorn
    head = b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(CHUNKED)
    refused = exchange(port, post(head, CHUNKED + SMUGGLED))
    assert_refused(refused, 400, "malformed_body")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
        late = _parse(read_to_close(sock))
    assert_refused(late, 408, "request_timeout")
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    access = {line["request_id"]: line["status"] for line in lines if line.get("event") == "access"}
    assert access[refused.headers["x-request-id"]] == 400
    assert late.headers["x-request-id"] not in access
    assert [line["count"] for line in lines if line.get("event") == "late_heads"] == [1]
