"""Draining over real sockets: readiness turns 503 at once, a request in flight still gets
its 200, idle keep-alive connections do not hold the drain, then nothing listens."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator

import gevent
import pytest
import requests

from backends.simulated import Fault, SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

TIMEOUT_S = 10
#: Far longer than any test waits: a drain that waited it out would show as a hang.
DRAIN_S = 3600
PLAY = {"title_id": "t42", "device_type": "tv-samsung-2024"}


@pytest.fixture
def backends() -> Iterator[SimulatedBackends]:
    """The simulated microservices, no added latency."""
    sim = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


@pytest.fixture
def server(backends: SimulatedBackends) -> Iterator[HttpServer]:
    """Frontdoor whose licensing calls may wait out the whole play deadline."""
    settings = load_settings(environ={"FRONTDOOR_BACKENDS_LICENSING_TIMEOUT_MS": "60000"})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    server = HttpServer(Frontdoor.build(settings, specs), "127.0.0.1", 0, drain_s=DRAIN_S)
    server.start()
    yield server
    server.stop()


def _connect(server: HttpServer) -> http.client.HTTPConnection:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return http.client.HTTPConnection(host, int(port), timeout=TIMEOUT_S)


def _get(connection: http.client.HTTPConnection, path: str) -> tuple[int, str | None, object]:
    connection.request("GET", path)
    reply = connection.getresponse()
    return reply.status, reply.getheader("Connection"), json.loads(reply.read())


def test_readyz_is_503_while_a_request_in_flight_finishes_with_200(server, backends):
    """Once the drain begins /readyz says 503 draining; the request in flight gets its 200."""
    probe = _connect(server)  # a load balancer's kept-alive connection, opened while ready
    assert _get(probe, "/readyz") == (200, None, {"ready": True, "draining": False})
    token = server.frontdoor.signer.issue("m1")
    backends.set_fault("licensing", Fault(hang=True))
    in_flight = gevent.spawn(
        requests.post,
        server.url + "/v1/playback/play",
        json=PLAY,
        headers={"Authorization": f"Bearer {token}"},
        timeout=TIMEOUT_S,
    )
    assert backends.wait_held("licensing", TIMEOUT_S)  # the request is inside its plan

    server.begin_drain()
    stopping = gevent.spawn(server.stop)
    status, connection, body = _get(probe, "/readyz")
    assert (status, body) == (503, {"ready": False, "draining": True})
    assert connection == "close"  # the client is told to go elsewhere
    assert not in_flight.ready()
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/healthz", timeout=TIMEOUT_S)  # no new connections

    backends.heal("licensing")
    reply = in_flight.get(timeout=TIMEOUT_S)
    assert reply.status_code == 200
    assert reply.json()["meta"]["degraded"] == []  # licensing answered: after the heal
    stopping.get(timeout=TIMEOUT_S)
    assert not server.frontdoor.system.running


def test_idle_keep_alive_connections_do_not_hold_the_drain(server):
    """With nothing in flight, stop returns at once though a client keeps a connection open."""
    idle = _connect(server)
    assert _get(idle, "/healthz")[0] == 200
    stopping = gevent.spawn(server.stop)
    stopping.get(timeout=TIMEOUT_S)
    with pytest.raises((ConnectionError, http.client.HTTPException)):
        _get(idle, "/healthz")
