"""Admission after the body, over real sockets (finding 1): connections that send their
headers and then trickle (or withhold) the body hold no admission slot, get a 408 problem
at the body timeout, and every other client is served meanwhile; and a member over its
rate limit gets a 429 with the RateLimit fields on the wire (finding 4)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import gevent
import pytest
import requests
from conftest import Stack

from backends.simulated import SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

#: One admission slot: any slow body that held one would shut every other client out.
SETTINGS = {
    "FRONTDOOR_SERVER_MAX_INFLIGHT": "1",
    "FRONTDOOR_SERVER_BODY_TIMEOUT_S": "0.3",
    "FRONTDOOR_LIMITS_MEMBER_BURST": "3",
    "FRONTDOOR_LIMITS_MEMBER_RATE": "0.001",
}


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Frontdoor with one admission slot and a short body timeout, on real sockets."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(environ=SETTINGS)
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=5)
    server.start()
    http = requests.Session()
    http.trust_env = False
    try:
        yield Stack(server.url, backends, frontdoor.signer.issue("m1"), frontdoor, http)
    finally:
        http.close()
        server.stop()
        backends.stop()


def slow_batch(stack: Stack) -> socket.socket:
    """A connection that sent a batch's headers and one byte of its 1000-byte body."""
    host, port = stack.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    return sock


def response_of(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """Read one response to the end (the server closes the connection after a 408)."""
    raw = b""
    while chunk := sock.recv(65_536):
        raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)
    }
    return status, headers, body


def test_slow_bodies_hold_no_slot_and_end_in_a_408_problem(stack: Stack):
    slow = [slow_batch(stack) for _ in range(5)]
    try:
        for _ in range(5):  # let the server take the connections and start reading
            gevent.idle()
        assert stack.frontdoor.app.admission.inflight == 0
        for _ in range(3):
            plans = stack.get("/v1/nonmember/plans?country=US", auth=False)
            assert plans.status_code == 200, plans.text
        for sock in slow:
            status, headers, body = response_of(sock)
            assert status.startswith("HTTP/1.1 408"), status
            assert headers["content-type"] == "application/problem+json"
            assert headers["connection"] == "close"
            problem = json.loads(body)
            assert problem["code"] == "request_timeout"
            assert problem["request_id"] == headers["x-request-id"]
    finally:
        for sock in slow:
            sock.close()
    assert stack.frontdoor.app.admission.shed == 0


def test_a_member_over_its_limit_gets_429_with_the_ratelimit_fields(stack: Stack):
    token = stack.frontdoor.signer.issue("m77")
    headers = {"Authorization": f"Bearer {token}"}
    statuses = [
        stack.get("/v1/playback/history?limit=1", auth=False, headers=headers).status_code
        for _ in range(3)
    ]
    assert statuses == [200, 200, 200]
    refused = stack.get("/v1/playback/history?limit=1", auth=False, headers=headers)
    assert refused.status_code == 429
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert refused.json()["code"] == "rate_limited"
    assert refused.headers["RateLimit-Policy"] == '"member";q=3;w=3000'
    assert refused.headers["RateLimit"] == '"member";r=0;t=1000'
    assert refused.headers["Retry-After"] == "1000"
