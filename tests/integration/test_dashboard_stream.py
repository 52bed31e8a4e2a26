"""The live dashboard on a real admin listener: the page and script with their CSP, the
stream refused without the admin token, a backend's fault seen in the stream within a
bounded time, the breaker forced closed with the page's POST, and a drain ending the stream."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import gevent
import pytest
import requests

from backends.simulated import SimulatedBackends
from orchestrator.config import DEMO_ADMIN_TOKEN, load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.ops.dashboard import CONTENT_SECURITY_POLICY
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
#: The most the stream may lag: a snapshot a second, at most 2 s behind.
LAG_S = 2.0


class Stream:
    """Server-Sent Events read from a live response, one ``(event, data)`` at a time."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self._chunks = response.iter_content(chunk_size=None)
        self._buffer = b""

    def next_event(self) -> tuple[str, Any]:
        """The next event (blocks up to the socket's read timeout)."""
        while b"\n\n" not in self._buffer:
            self._buffer += next(self._chunks)
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        name, data = "message", []
        for line in block.decode().split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        return name, json.loads("\n".join(data))

    def wait_for(self, what: Callable[[dict[str, Any]], bool], within_s: float) -> dict[str, Any]:
        """The first snapshot for which ``what`` holds, read within ``within_s``."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            name, doc = self.next_event()
            if name == "snapshot" and what(doc):
                return doc
        pytest.fail(f"no snapshot matched within {within_s} s")


@pytest.fixture
def served() -> Iterator[tuple[HttpServer, Frontdoor, SimulatedBackends]]:
    """Frontdoor with an admin listener, over simulated backends."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(
        environ={
            "FRONTDOOR_STATSD_GAUGE_INTERVAL_S": "3600",
            "FRONTDOOR_BACKENDS_RATINGS_BREAKER_REQUEST_VOLUME": "10",
            "FRONTDOOR_BACKENDS_RATINGS_RETRY_MAX_ATTEMPTS": "1",
        }
    )
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=30, admin_address=("127.0.0.1", 0))
    server.start()
    try:
        yield server, frontdoor, backends
    finally:
        server.stop()
        backends.stop()


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A session that ignores proxy settings."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def _ratings(doc: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in doc["backends"] if b["name"] == "ratings")


def test_page_and_script_are_served_with_their_types_and_a_strict_csp(served, http):
    server, _, _ = served
    page = http.get(f"{server.admin_url}/_admin/dashboard", timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/_admin/dashboard.js"' in page.text
    assert "<script>" not in page.text  # no inline script
    assert "http://" not in page.text.replace("http://www.w3.org", "")  # nothing from elsewhere
    script = http.get(f"{server.admin_url}/_admin/dashboard.js", timeout=5)
    assert script.status_code == 200
    assert script.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert script.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "/_admin/stream" in script.text
    style = http.get(f"{server.admin_url}/_admin/dashboard.css", timeout=5)
    assert style.headers["Content-Type"] == "text/css; charset=utf-8"
    # The device port serves none of it.
    assert http.get(f"{server.url}/_admin/dashboard", timeout=5).status_code == 404


def test_the_stream_refuses_without_the_admin_token(served, http):
    server, frontdoor, _ = served
    stream = f"{server.admin_url}/_admin/stream"
    assert http.get(stream, timeout=5).status_code == 401
    bearer = {"Authorization": "Bearer not-the-token"}
    assert http.get(stream, headers=bearer, timeout=5).status_code == 401
    member = {"Authorization": f"Bearer {frontdoor.signer.issue('m1')}"}
    assert http.get(stream, headers=member, timeout=5).status_code == 403
    assert http.get(f"{server.url}/_admin/stream", headers=ADMIN, timeout=5).status_code == 404


def test_a_fault_shows_in_the_stream_and_the_page_post_forces_the_breaker_closed(
    served, http, caplog
):
    server, frontdoor, backends = served
    caplog.set_level(logging.INFO, logger="frontdoor")
    reply = http.get(f"{server.admin_url}/_admin/stream", headers=ADMIN, stream=True, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    stream = Stream(reply)
    first = stream.wait_for(lambda _doc: True, within_s=LAG_S)
    assert _ratings(first)["breaker"]["state"] == "closed"
    assert _ratings(first)["error_pct"] == 0.0
    # The stream holds no admission slot: the frontend shows nothing in flight.
    assert first["frontend"] == {"inflight": 0, "shed_total": 0}
    assert frontdoor.app.admission.inflight == 0

    http.put(f"{backends.url}/_faults/ratings", json={"error_rate": 1.0}, timeout=5)
    member = {"Authorization": f"Bearer {frontdoor.signer.issue('m1')}"}
    for _ in range(10):
        home = http.get(
            f"{server.url}/v1/discovery/home?rows=1&per_row=2", headers=member, timeout=5
        )
        assert home.status_code == 200
    opened = stream.wait_for(lambda doc: _ratings(doc)["breaker"]["state"] == "open", LAG_S)
    ratings = _ratings(opened)
    assert ratings["error_pct"] == 100.0
    assert ratings["failures"] == 10
    assert opened["backends"][0]["name"] == "ratings"  # the troubled backend comes first
    home_row = next(e for e in opened["endpoints"] if e["name"] == "discovery.home")
    assert home_row["degraded_pct"] == 100.0

    forced = http.post(
        f"{server.admin_url}/_admin/backends/ratings/breaker",
        json={"force": "closed", "reason": "dashboard test"},
        headers=ADMIN,
        timeout=5,
    )
    assert forced.status_code == 200
    closed = stream.wait_for(lambda doc: _ratings(doc)["breaker"]["state"] == "closed", LAG_S)
    assert _ratings(closed)["breaker"]["override"] == "closed"
    reply.close()
    # The stream's access line was written when it started, with the time to its headers
    # (not its life): no endpoint, so no endpoint's metrics or window. No token logged.
    access = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event") == "access"]
    streamed = [a for a in access if a["path"] == "/_admin/stream"]
    assert len(streamed) == 1
    assert streamed[0]["endpoint"] is None
    assert streamed[0]["latency_ms"] < 1000
    assert DEMO_ADMIN_TOKEN not in caplog.text
    assert not [r for r in caplog.records if DEMO_ADMIN_TOKEN in repr(getattr(r, "fields", ""))]


def test_a_drain_ends_the_stream_at_once_rather_than_waiting_for_it(served, http):
    server, _, _ = served
    reply = http.get(f"{server.admin_url}/_admin/stream", headers=ADMIN, stream=True, timeout=5)
    stream = Stream(reply)
    assert stream.next_event()[0] == "snapshot"
    started = time.monotonic()
    stopping = gevent.spawn(server.stop)
    name, data = stream.next_event()
    while name == "snapshot":
        name, data = stream.next_event()
    assert (name, data) == ("end", {"reason": "draining"})
    stopping.join(timeout=5)
    assert stopping.dead
    # drain_s is 30: the stream did not hold the drain.
    assert time.monotonic() - started < LAG_S
    reply.close()


def test_a_client_that_goes_away_ends_its_stream(served):
    server, frontdoor, _ = served
    dashboard = frontdoor.app.dashboard
    assert dashboard is not None
    host, port = server.admin_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(
            b"GET /_admin/stream HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {DEMO_ADMIN_TOKEN}\r\n\r\n".encode()
        )
        received = b""
        while b"event: snapshot" not in received:
            chunk = client.recv(65_536)
            assert chunk, "the stream closed before its first snapshot"
            received += chunk
        assert received.startswith(b"HTTP/1.1 200 ")
        assert dashboard.streams == 1
        assert not dashboard.wait_idle(0)
    # The next writes fail on the closed connection, which ends the generator.
    assert dashboard.wait_idle(5)
    assert dashboard.streams == 0
