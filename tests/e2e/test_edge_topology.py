"""The edge topology over real sockets: an edge (non-member, discovery, and playback passed
through) in front of a playback layer, both over one set of simulated microservices.

The edge calls the shared services (subscriber, device) and seals their results into the
request it passes on; the layer uses them instead of calling those services again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from actors.system import ActorSystem
from backends.simulated import Fault, SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.enrichment import HEADER, Enricher
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

PLAY = {"title_id": "t42", "device_type": "tv-samsung-2024"}


@dataclass
class Edge:
    """An edge and its playback layer, with a member token and a session."""

    edge: str
    layer: str
    backends: SimulatedBackends
    token: str
    http: requests.Session
    systems: tuple[ActorSystem, ...]

    def post(self, url: str, body: object, **headers: str) -> requests.Response:
        """POST JSON with the member's token."""
        headers = {"Authorization": f"Bearer {self.token}", **headers}
        return self.http.post(url, json=body, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def edge() -> Iterator[Edge]:
    """Simulated backends, a playback layer, and an edge whose upstream is that layer."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    servers: list[HttpServer] = []
    systems: list[ActorSystem] = []
    try:
        upstream = ""
        for environ in (
            {"FRONTDOOR_SERVER_TOPOLOGY": "playback"},
            {"FRONTDOOR_SERVER_TOPOLOGY": "edge", "FRONTDOOR_SERVER_PLAYBACK_UPSTREAM": "x"},
        ):
            if upstream:
                environ["FRONTDOOR_SERVER_PLAYBACK_UPSTREAM"] = upstream
            settings = load_settings(environ=environ)
            specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
            frontdoor = Frontdoor.build(settings, specs)
            systems.append(frontdoor.system)
            server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=5)
            server.start()
            servers.append(server)
            upstream = server.url
        http = requests.Session()
        http.trust_env = False
        token = frontdoor.signer.issue("m1")
        yield Edge(servers[1].url, servers[0].url, backends, token, http, tuple(systems))
        http.close()
    finally:
        for server in reversed(servers):
            server.stop()
        backends.stop()


@pytest.fixture(autouse=True)
def _fresh(edge: Edge) -> Iterator[None]:
    """Healthy services, zeroed counts, and every breaker of both processes closed."""
    edge.backends.heal()
    edge.backends.reset_calls()
    yield
    edge.backends.heal()
    for system in edge.systems:
        for name in system.states:
            system.force_breaker(name, None)


def test_play_through_the_edge_calls_each_shared_service_once(edge: Edge):
    """The edge calls subscriber and device; the layer, given their results, does not."""
    reply = edge.post(f"{edge.edge}/v1/playback/play", PLAY)
    assert reply.status_code == 200, reply.text
    assert reply.json()["title_id"] == "t42"
    calls = {name: edge.backends.calls(name) for name in ("subscriber", "device", "playback")}
    assert calls == {"subscriber": 1, "device": 1, "playback": 1}


def test_the_same_play_on_the_layer_alone_calls_the_shared_services_itself(edge: Edge):
    """Without an enrichment the layer is an ordinary playback API."""
    assert edge.post(f"{edge.layer}/v1/playback/play", PLAY).status_code == 200
    assert (edge.backends.calls("subscriber"), edge.backends.calls("device")) == (1, 1)


def test_the_layers_refusals_reach_the_device_as_its_own_problems(edge: Edge):
    """An unknown title and a position past the end are the device's 404 and 400."""
    unknown = edge.post(f"{edge.edge}/v1/playback/play", {**PLAY, "title_id": "t9999999"})
    assert (unknown.status_code, unknown.json()["parameter"]) == (404, "title_id")
    past = edge.post(f"{edge.edge}/v1/playback/heartbeat", {"title_id": "t7", "position_s": 86000})
    assert (past.status_code, past.json()["parameter"]) == (400, "position_s")


def test_a_part_the_layer_degraded_is_marked_in_the_edges_response(edge: Edge):
    """The layer's meta.degraded is merged into the edge's."""
    edge.backends.set_fault("bookmarks", Fault(error_rate=1.0))
    reply = edge.post(f"{edge.edge}/v1/playback/play", PLAY)
    assert reply.status_code == 200, reply.text
    assert "bookmark" in reply.json()["meta"]["degraded"]


def test_history_and_fields_pass_through(edge: Edge):
    """GET parameters and the fields selection reach the layer."""
    reply = edge.http.get(
        f"{edge.edge}/v1/playback/history?limit=2&fields=items(title_id)",
        headers={"Authorization": f"Bearer {edge.token}"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["items"]) <= 2
    assert all(set(item) == {"title_id"} for item in body["items"])


def test_a_forged_enrichment_is_refused_by_the_layer(edge: Edge):
    """Only the shared secret seals an enrichment the layer accepts: else 403, no call."""
    forged = Enricher(b"not-the-shared-secret-at-all-000000").seal(
        "m2", {"subscriber": {}}, "POST", "/v1/playback/play"
    )
    reply = edge.http.post(
        f"{edge.layer}/v1/playback/play", json=PLAY, headers={HEADER: forged}, timeout=10
    )
    assert reply.status_code == 403
    assert edge.backends.calls("subscriber") == 0


def test_play_failing_at_the_layer_does_not_stop_heartbeats_at_the_edge(edge: Edge):
    """Each endpoint has its own breaker to the layer: play's opens, heartbeat's does not."""
    edge.backends.set_fault("licensing", Fault(error_rate=1.0))
    statuses = {edge.post(f"{edge.edge}/v1/playback/play", PLAY).status_code for _ in range(25)}
    assert statuses == {503}
    beat = edge.post(f"{edge.edge}/v1/playback/heartbeat", {"title_id": "t7", "position_s": 60})
    assert beat.status_code == 200, beat.text
