"""Caps on open device connections over real sockets: a real ``HttpServer`` (gevent's
pywsgi, Frontdoor's pipeline, simulated backends) with a total cap of 20 and 8 per client
address, clients on 127.0.0.x (Linux routes all of 127/8 to lo, so each is an address of
its own); and ``frontdoor serve`` refusing to start when the descriptor limit leaves no room.

A connection is known to be admitted once a keep-alive request on it is answered; a
connection is known to be gone once the server's pool of connection greenlets is empty.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gevent
import gevent.pool
import pytest
from gunicorn_run import free_port, start_gunicorn, wait_listening

from backends.simulated import SimulatedBackends
from orchestrator.config import DEMO_ADMIN_TOKEN, load_settings
from orchestrator.frontend.connections import ConnectionLimits, budgeted
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.integration

MAX_CONNECTIONS = 20
PER_IP = 8
TIMEOUT_S = 10
ROOT = Path(__file__).resolve().parents[2]
#: SO_LINGER on, 0 s: close sends RST instead of FIN.
RESET_ON_CLOSE = b"\x01\x00\x00\x00\x00\x00\x00\x00"


@pytest.fixture(scope="module")
def backends() -> Iterator[SimulatedBackends]:
    sim = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


@pytest.fixture
def server(backends: SimulatedBackends) -> Iterator[HttpServer]:
    """Frontdoor capped at 20 connections, 8 per address, as ``frontdoor serve`` wires it;
    admin routes on a listener of their own."""
    settings = load_settings(
        environ={
            "FRONTDOOR_SERVER_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
            "FRONTDOOR_SERVER_MAX_CONNECTIONS_PER_IP": str(PER_IP),
            "FRONTDOOR_STATSD_ENABLED": "false",
        }
    )
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    slots = [view.max_concurrent for view in frontdoor.system.backend_views()]
    served = HttpServer(
        frontdoor,
        "127.0.0.1",
        0,
        drain_s=1,
        admin_address=("127.0.0.1", 0),
        connections=budgeted(settings.server, slots, embedded=False),
    )
    served.start()
    with gevent.Timeout(30, AssertionError("test hung")):
        yield served
    served.stop()


def _limits(server: HttpServer) -> ConnectionLimits:
    assert server.connections is not None
    return server.connections


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length: status, headers (lower-case), body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines)}
    while len(body) < int(headers["content-length"]):
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return int(status_line.split()[1]), headers, body


def _connect(url: str, source: str) -> socket.socket:
    """A connection to ``url``'s port from the loopback address ``source``."""
    sock = socket.socket()
    sock.settimeout(TIMEOUT_S)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", _port(url)))
    return sock


def _held(url: str, source: str) -> socket.socket:
    """A keep-alive connection from ``source`` whose first request was answered (so the
    server admitted it), then left idle."""
    sock = _connect(url, source)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    status, _headers, _body = _read_response(sock)
    assert status == 200
    return sock


def _refused(url: str, source: str) -> tuple[int, dict[str, str], dict[str, object]]:
    """Connect from ``source`` without sending: the server's answer, and that it closed."""
    sock = _connect(url, source)
    try:
        status, headers, body = _read_response(sock)
        assert sock.recv(1) == b""  # closed by the server, not left open
    finally:
        sock.close()
    return status, headers, json.loads(body)


def _get(url: str, source: str, path: str = "/v1/nonmember/plans?country=US") -> int:
    sock = _connect(url, source)
    try:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".encode())
        return _read_response(sock)[0]
    finally:
        sock.close()


def _close_all(server: HttpServer, socks: list[socket.socket]) -> None:
    """Close the clients' ends, and wait until the server has closed every connection."""
    for sock in socks:
        sock.close()
    assert server._wsgi.pool.join(timeout=TIMEOUT_S)  # the device listener's greenlets


def _close_one(server: HttpServer, sock: socket.socket) -> None:
    """Close one client's end, and wait until the server has closed its connection."""
    serving = list(server._wsgi.pool.greenlets)
    sock.close()
    assert gevent.wait(serving, timeout=TIMEOUT_S, count=1)


def test_the_connection_past_the_total_cap_gets_503_and_is_closed(server):
    """20 idle connections from three addresses fill the process, each having served a
    request (so none is evicted, however old); the 21st, from a fourth address, is answered
    503 ``overloaded`` (problem+json, request id) and closed at once."""
    _limits(server).evict_after_s = 0.0
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    held = [_held(server.url, sources[n % 3]) for n in range(MAX_CONNECTIONS)]
    assert _limits(server).open == MAX_CONNECTIONS
    status, headers, body = _refused(server.url, "127.0.0.5")
    assert status == 503
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert headers["retry-after"] == "1"
    assert body["code"] == "overloaded"
    assert isinstance(body["request_id"], str)
    assert len(body["request_id"]) == 32
    assert _limits(server).refused_total == 1
    # One goes away: a new client is served again.
    _close_one(server, held[0])
    assert _limits(server).open == MAX_CONNECTIONS - 1
    assert _get(server.url, "127.0.0.5") == 200
    _close_all(server, held[1:])
    assert (_limits(server).open, _limits(server).clients) == (0, 0)


def _closed_by_server(sock: socket.socket) -> bool:
    """Whether the server ends this connection (FIN or RST) before the timeout."""
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def test_silent_connections_from_many_addresses_make_way_for_a_client(server):
    """20 connections from ten addresses that never send a request fill the process; a
    client's request is still served: the oldest silent connection is shut down for it
    (here as soon as it is full: ``evict_after_s`` 0), and the others stay."""
    limits = _limits(server)
    limits.evict_after_s = 0.0
    silent = [_connect(server.url, f"127.0.2.{1 + n % 10}") for n in range(MAX_CONNECTIONS)]
    assert _get(server.url, "127.0.0.1") == 200
    assert _closed_by_server(silent[0])
    assert limits.evicted == 1
    # Full again: the next client's request is served at the next oldest's expense.
    silent.append(_connect(server.url, "127.0.2.11"))
    assert _get(server.url, "127.0.0.1") == 200
    assert _closed_by_server(silent[1])
    assert limits.evicted >= 2  # (3 if the first client was not yet closed server-side)
    assert limits.refused_total == 0
    _close_all(server, silent)
    assert (limits.open, limits.clients, limits.waiting) == (0, 0, 0)


def test_one_address_over_its_cap_gets_429_and_another_is_still_served(server):
    """8 connections from 127.0.0.2 are its share: its 9th is answered 429 ``rate_limited``
    and closed, while a request from 127.0.0.1 is served; the counts return to 0."""
    held = [_held(server.url, "127.0.0.2") for _ in range(PER_IP)]
    status, _headers, body = _refused(server.url, "127.0.0.2")
    assert status == 429
    assert body["code"] == "rate_limited"
    assert _get(server.url, "127.0.0.1") == 200
    assert _limits(server).held_by("127.0.0.2") == PER_IP
    _close_all(server, held)
    assert (_limits(server).open, _limits(server).clients) == (0, 0)
    assert _get(server.url, "127.0.0.2") == 200


def test_the_admin_listener_is_not_capped(server):
    """With the device listener full, the admin listener still answers."""
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    held = [_held(server.url, sources[n % 3]) for n in range(MAX_CONNECTIONS)]
    assert _refused(server.url, "127.0.0.5")[0] == 503
    admin = _connect(server.admin_url, "127.0.0.1")
    try:
        admin.sendall(
            b"GET /_admin/backends HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
            + f"Authorization: Bearer {DEMO_ADMIN_TOKEN}\r\n\r\n".encode()
        )
        assert _read_response(admin)[0] == 200
    finally:
        admin.close()
    _close_all(server, held)


def _churn(url: str, index: int) -> str:
    """One client's life: a request then a close, an abrupt reset, or a half-sent head."""
    source = f"127.0.1.{1 + index % 5}"
    try:
        sock = _connect(url, source)
    except OSError:
        return "connect failed"
    try:
        kind = index % 3
        if kind == 0:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            outcome = str(_read_response(sock)[0])
        elif kind == 1:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, RESET_ON_CLOSE)
            outcome = "reset"
        else:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost:")  # and leave mid-header
            outcome = "half"
    except OSError as exc:
        outcome = type(exc).__name__
    finally:
        sock.close()
    return outcome


def test_the_count_is_exact_under_churn(server):
    """300 clients at once (some over the caps, some resetting, some leaving mid-request):
    the count never passes the cap, and is 0 once the server has closed them all."""
    limits = _limits(server)
    peak = [0]

    def watch() -> None:
        while True:
            peak[0] = max(peak[0], limits.open)
            gevent.sleep(0)

    watcher = gevent.spawn(watch)
    pool = gevent.pool.Pool(60)
    outcomes = pool.map(lambda index: _churn(server.url, index), range(300))
    watcher.kill()
    assert server._wsgi.pool.join(timeout=TIMEOUT_S)
    assert (limits.open, limits.clients) == (0, 0)
    assert 0 < peak[0] <= MAX_CONNECTIONS
    assert "connect failed" not in outcomes
    assert {"200", "reset", "half"} <= set(outcomes)


def test_serve_refuses_to_start_when_the_descriptor_limit_leaves_no_room():
    """``frontdoor serve`` under a hard limit of 200 descriptors (its embedded services'
    backends alone need more): exit status 2 and one line naming the setting and the fix."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    environ["FRONTDOOR_STATSD_ENABLED"] = "false"

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (200, 200))

    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from orchestrator.cli import main; raise SystemExit(main())",
            "serve",
            "--port",
            "0",
            "--backends-port",
            "0",
        ],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=low_limit,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if "server.max_connections" in line]
    assert line.startswith("frontdoor: configuration error: server.max_connections: ")
    assert "ulimit -n" in line
    assert "Traceback" not in done.stderr


def test_gunicorn_with_frontdoors_worker_class_applies_the_caps(tmp_path, backends):
    """The gunicorn target sizes the caps (its log says so) and Frontdoor's worker class
    enforces them: with 5 connections in use, the 6th is answered 503 and closed."""
    port = free_port()
    environ = {
        "FRONTDOOR_AUTH_TOKEN_SECRET": "connection-limits-test-token-secret-0123456789",
        "FRONTDOOR_AUTH_ADMIN_TOKEN": "connection-limits-test-admin",
        "FRONTDOOR_BACKENDS_BASE_URL": backends.url,
        "FRONTDOOR_STATSD_ENABLED": "false",
        "FRONTDOOR_SERVER_MAX_CONNECTIONS": "5",
    }
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        process = start_gunicorn(port, log, environ)
    url = f"http://127.0.0.1:{port}"
    held: list[socket.socket] = []
    try:
        wait_listening(port, process)
        held = [_held(url, "127.0.0.2") for _ in range(5)]
        status, _headers, body = _refused(url, "127.0.0.3")
        assert status == 503
        assert body["code"] == "overloaded"
    finally:
        for sock in held:
            sock.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    budget = [
        json.loads(line)
        for line in log_path.read_text().splitlines()
        if '"descriptor_budget"' in line
    ]
    assert [entry["max_connections"] for entry in budget] == [5]
