"""gunicorn's lifecycle with Frontdoor's worker class, two workers, real sockets.

SIGTERM to the master drains every worker (readiness 503 on a kept-alive probe, requests in
flight finish, idle keep-alive connections closed) and the master exits within
``server.drain_s`` + 1 s; ``max_requests`` restarts lose no request.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import gevent.event
import gevent.pool
import pytest
import requests

from backends.simulated import Fault, SimulatedBackends

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 30
DRAIN_S = 3.0
SECRETS = {
    "FRONTDOOR_AUTH_TOKEN_SECRET": "gunicorn-lifecycle-token-secret-0123456789",
    "FRONTDOOR_AUTH_ADMIN_TOKEN": "gunicorn-lifecycle-admin-0123456789",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Gunicorn:
    """A gunicorn master whose stderr is read line by line as it comes."""

    process: subprocess.Popen[bytes]
    port: int
    lines: list[str] = field(default_factory=list)
    _changed: gevent.event.Event = field(default_factory=gevent.event.Event)

    def read(self) -> None:
        """Collect stderr lines until gunicorn closes it (a greenlet)."""
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            self.lines.append(raw.decode("utf-8", "replace"))
            self._changed.set()
        self._changed.set()

    def wait_for(self, text: str, count: int = 1) -> None:
        """Wait until ``text`` appeared in ``count`` lines (an event per line, no polling)."""
        deadline = time.monotonic() + 60
        while sum(text in line for line in self.lines) < count:
            self._changed.clear()
            if self.process.poll() is not None and sum(text in x for x in self.lines) < count:
                raise AssertionError(f"gunicorn exited before {text!r}:\n{self.log}")
            if not self._changed.wait(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"no {text!r} x{count} within 60 s:\n{self.log}")

    @property
    def log(self) -> str:
        """Everything gunicorn and its workers wrote to stderr so far."""
        return "".join(self.lines)

    def connect(self) -> http.client.HTTPConnection:
        """A new keep-alive connection."""
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT_S)


@pytest.fixture
def backends() -> Iterator[SimulatedBackends]:
    """The simulated microservices in this process, no added latency."""
    sim = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


def _start(backends: SimulatedBackends, *options: str, **env: str) -> Gunicorn:
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    environ.update(
        SECRETS,
        FRONTDOOR_BACKENDS_BASE_URL=backends.url,
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_SERVER_DRAIN_S=str(DRAIN_S),
        **env,
    )
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn",
         "-k", "orchestrator.frontend.gunicorn_worker.FrontdoorWorker", "-w", "2",
         "-b", f"127.0.0.1:{port}", "--no-control-socket", *options,
         "orchestrator.wsgi:application"],
        cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    server = Gunicorn(process, port)
    gevent.spawn(server.read)
    try:
        # Both workers loaded the app and handle signals (one forked a moment ago would not).
        server.wait_for("worker serving", count=2)
    except BaseException:
        _stop(server)  # never leave a gunicorn behind
        raise
    return server


def _stop(server: Gunicorn) -> None:
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=TIMEOUT_S)


def _get(connection: http.client.HTTPConnection, path: str) -> tuple[int, str | None, bytes]:
    connection.request("GET", path)
    reply = connection.getresponse()
    return reply.status, reply.getheader("Connection"), reply.read()


def _closed_by_server(connection: http.client.HTTPConnection) -> bool:
    """Whether the server closed this idle kept-alive connection (EOF or reset)."""
    sock = connection.sock
    assert sock is not None
    sock.settimeout(TIMEOUT_S)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def _signup(url: str, index: int) -> int:
    body = {
        "email": f"drain{index}-{os.getpid()}@example.com",
        "country": "US",
        "plan_id": "standard",
        "card_last4": "4242",
    }
    return requests.post(f"{url}/v1/nonmember/signup", json=body, timeout=TIMEOUT_S).status_code


def test_sigterm_drains_both_workers_with_requests_in_flight(backends):
    """Requests held in a backend when SIGTERM arrives finish with their 201; a kept-alive
    readiness probe gets 503 with Connection: close; idle keep-alive connections are closed
    by the server; no new connection is accepted; gunicorn exits 0 within drain_s + 1 s."""
    server = _start(backends, FRONTDOOR_BACKENDS_ACCOUNTS_TIMEOUT_MS="1900")
    url = f"http://127.0.0.1:{server.port}"
    probes = [server.connect() for _ in range(4)]
    idle = [server.connect() for _ in range(4)]
    try:
        for connection in probes + idle:  # opened and used while ready, then left idle
            assert _get(connection, "/readyz")[:2] == (200, None)
        backends.set_fault("accounts", Fault(latency_ms=1200))
        in_flight = [gevent.spawn(_signup, url, index) for index in range(6)]
        assert backends.wait_held("accounts", TIMEOUT_S)

        stopping_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.wait_for("draining: waiting up to", count=2)
        answers = []
        for probe in probes:
            try:
                answers.append(_get(probe, "/readyz"))
            except (http.client.RemoteDisconnected, ConnectionResetError):
                answers.append(None)  # a worker with nothing in flight closed it already
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{url}/healthz", timeout=TIMEOUT_S)  # nothing accepts any more

        assert [greenlet.get(timeout=TIMEOUT_S) for greenlet in in_flight] == [201] * 6
        assert all(_closed_by_server(connection) for connection in idle)
        assert server.process.wait(timeout=TIMEOUT_S) == 0
        elapsed = time.monotonic() - stopping_at
    finally:
        _stop(server)
        for connection in probes + idle:
            connection.close()
    served = [answer for answer in answers if answer is not None]
    assert served, "every probe was closed: none saw the 503"
    for status, connection_header, body in served:
        assert (status, connection_header) == (503, "close")
        assert json.loads(body) == {"ready": False, "draining": True}
    assert elapsed < DRAIN_S + 1, f"gunicorn took {elapsed:.1f} s:\n{server.log}"
    assert server.log.count('"drained in') == 2
    assert "Worker graceful timeout" not in server.log
    assert "Traceback" not in server.log


def test_sigterm_with_only_idle_keep_alive_connections_exits_at_once(backends):
    """Nothing in flight, kept-alive connections idle (the 32 s case): both workers drain
    and gunicorn exits within drain_s + 1 s, closing those connections."""
    server = _start(backends)
    idle = [server.connect() for _ in range(6)]
    try:
        for connection in idle:
            assert _get(connection, "/v1/nonmember/plans?country=US")[0] == 200
        stopping_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=TIMEOUT_S) == 0
        elapsed = time.monotonic() - stopping_at
        assert all(_closed_by_server(connection) for connection in idle)
    finally:
        _stop(server)
        for connection in idle:
            connection.close()
    assert elapsed < DRAIN_S + 1, f"gunicorn took {elapsed:.1f} s:\n{server.log}"
    assert server.log.count('"drained in') == 2


def test_a_drain_grace_keeps_accepting_not_ready_so_a_balancer_can_leave(backends):
    """With server.drain_grace_s, SIGTERM turns /readyz 503 while every worker still
    accepts and answers (Connection: close) for the grace: a balancer's health check sees
    the 503 on a new connection, where without it the connection would be refused."""
    grace_s = 2.0
    server = _start(backends, FRONTDOOR_SERVER_DRAIN_GRACE_S=str(grace_s))
    try:
        stopping_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        server.wait_for(f"accepting for {grace_s:.1f} s more", count=2)
        probe = server.connect()
        status, connection, _ = _get(probe, "/readyz")
        probe.close()
        assert (status, connection) == (503, "close")
        device = server.connect()
        status, connection, _ = _get(device, "/v1/nonmember/plans?country=US")
        device.close()
        assert (status, connection) == (200, "close")
        assert server.process.wait(timeout=TIMEOUT_S) == 0
        elapsed = time.monotonic() - stopping_at
    finally:
        _stop(server)
    assert elapsed < grace_s + DRAIN_S + 1, f"gunicorn took {elapsed:.1f} s:\n{server.log}"
    assert server.log.count('"drained in') == 2


def test_max_requests_restarts_lose_no_request(backends):
    """--max-requests 20: 200 requests, sequential and concurrent, over keep-alive and fresh
    connections, while the workers restart every 20 of theirs; every one answers 200."""
    server = _start(backends, "--max-requests", "20", "--max-requests-jitter", "0")
    url = f"http://127.0.0.1:{server.port}/v1/nonmember/plans?country=US"
    try:

        def keep_alive(count: int) -> list[int]:
            with requests.Session() as session:
                return [session.get(url, timeout=TIMEOUT_S).status_code for _ in range(count)]

        def fresh(count: int) -> list[int]:
            close = {"Connection": "close"}
            return [requests.get(url, headers=close, timeout=TIMEOUT_S).status_code
                    for _ in range(count)]  # fmt: skip

        statuses = keep_alive(80)  # sequential, one connection
        statuses += fresh(20)  # sequential, a connection each
        pool = gevent.pool.Pool(6)
        for batch in pool.imap_unordered(
            lambda job: job[0](job[1]), [(keep_alive, 20)] * 4 + [(fresh, 10)] * 2
        ):  # concurrent: four keep-alive clients and two closing ones
            statuses += batch
        restarts = server.log.count("Autorestarting worker")
    finally:
        _stop(server)  # a worker may be booting: it would miss a SIGTERM (gunicorn's race)
    assert len(statuses) == 200
    assert statuses == [200] * 200
    assert restarts >= 5, f"the workers did not restart ({restarts}):\n{server.log}"
    assert "Traceback" not in server.log
