"""Each fault mode as a client sees it, over real sockets, and its clean end."""

from __future__ import annotations

import time

import gevent
import pytest
import requests

from backends.simulated import Fault, SimulatedBackends

pytestmark = pytest.mark.integration

TIMEOUT_S = 5
TITLE = "/catalog/titles/t5"


def get(sim: SimulatedBackends, path: str = TITLE, timeout: float = TIMEOUT_S) -> requests.Response:
    return requests.get(sim.url + path, timeout=timeout)


def put_fault(sim: SimulatedBackends, service: str, body: object) -> requests.Response:
    return requests.put(f"{sim.url}/_faults/{service}", json=body, timeout=TIMEOUT_S)


def test_error_rate_one_answers_503_injected(backends):
    """Every call fails with 503 {"error": "injected"}; other services are untouched."""
    assert put_fault(backends, "catalog", {"error_rate": 1.0}).status_code == 200
    reply = get(backends)
    assert reply.status_code == 503
    assert reply.json() == {"error": "injected"}
    assert reply.headers["X-Service"] == "catalog"
    assert get(backends, "/device/devices/ps5").status_code == 200


def test_error_rate_is_a_share_of_calls(backends):
    """Half the calls fail under error_rate 0.5 (within generous bounds)."""
    backends.set_fault("ratings", Fault(error_rate=0.5))
    statuses = [get(backends, "/ratings/match/m1?ids=t1").status_code for _ in range(200)]
    assert set(statuses) == {200, 503}
    assert 60 <= statuses.count(503) <= 140


def test_refuse_drops_the_connection_without_a_response(backends):
    """The client sees a connection error, and the call still counts."""
    backends.set_fault("catalog", Fault(refuse=True))
    with pytest.raises(requests.ConnectionError):
        get(backends)
    assert backends.calls("catalog") == 1
    backends.heal("catalog")
    assert get(backends).status_code == 200


def test_malformed_answers_200_with_invalid_json(backends):
    """The status says success; the body does not parse."""
    backends.set_fault("catalog", Fault(malformed=True))
    reply = get(backends)
    assert reply.status_code == 200
    with pytest.raises(requests.JSONDecodeError):
        reply.json()
    backends.heal()
    assert get(backends).json()["id"] == "t5"


def test_hang_times_the_client_out_and_ends_when_it_leaves(backends):
    """The client's read timeout fires; the server notices it left and frees the request."""
    backends.set_fault("catalog", Fault(hang=True))
    with pytest.raises(requests.ReadTimeout):
        get(backends, timeout=0.2)
    assert backends.app.inflight.wait_idle(TIMEOUT_S)


def test_heal_releases_a_hanging_request(backends):
    """A request held by a hang is answered normally as soon as the fault is healed."""
    backends.set_fault("catalog", Fault(hang=True))
    call = gevent.spawn(get, backends)
    assert backends.wait_held("catalog", TIMEOUT_S)
    assert not call.ready()
    backends.heal("catalog")
    reply = call.get(timeout=TIMEOUT_S)
    assert reply.status_code == 200
    assert reply.json()["id"] == "t5"


def test_stop_ends_hanging_requests(world):
    """stop() drops held connections at once rather than waiting for the hang cap."""
    sim = SimulatedBackends(world=world).start()
    sim.set_fault("search", Fault(hang=True))
    call = gevent.spawn(get, sim, "/search/query?q=dark")
    assert sim.wait_held("search", TIMEOUT_S)
    sim.stop()
    with pytest.raises(requests.ConnectionError):
        call.get(timeout=TIMEOUT_S)
    assert sim.app.inflight.count == 0


def test_hang_is_capped(world):
    """A hang never outlives its cap: the connection is dropped."""
    sim = SimulatedBackends(world=world, hang_cap_s=0.1).start()
    try:
        sim.set_fault("catalog", Fault(hang=True))
        with pytest.raises(requests.ConnectionError):
            get(sim)
    finally:
        sim.stop()


def test_drip_sends_the_body_slowly_in_small_chunks(backends):
    """The whole body arrives, but only after one drip interval per 64-byte chunk."""
    backends.set_fault("catalog", Fault(drip_ms=15))
    started = time.perf_counter()
    with requests.get(backends.url + TITLE, timeout=TIMEOUT_S, stream=True) as reply:
        assert reply.status_code == 200
        length = int(reply.headers["Content-Length"])
        body = b"".join(reply.iter_content(chunk_size=64))
    elapsed = time.perf_counter() - started
    assert len(body) == length
    assert body.startswith(b'{"id":"t5"')
    assert elapsed >= (length - 1) // 64 * 0.015 * 0.9


def test_drip_trips_a_read_timeout_after_the_headers(backends):
    """Headers come at once; a read timeout shorter than the drip interval cuts the body."""
    backends.set_fault("catalog", Fault(drip_ms=2_000))
    with requests.get(backends.url + TITLE, timeout=(TIMEOUT_S, 0.3), stream=True) as reply:
        assert reply.status_code == 200
        with pytest.raises(requests.ConnectionError):
            reply.content  # noqa: B018 - reading the body is the point
    backends.heal()
    assert backends.app.inflight.wait_idle(TIMEOUT_S)


def test_added_latency_delays_and_healing_cuts_it_short(backends):
    """latency_ms adds delay; healing releases requests still waiting it out."""
    backends.set_fault("catalog", Fault(latency_ms=60))
    started = time.perf_counter()
    assert get(backends).status_code == 200
    assert time.perf_counter() - started >= 0.05
    backends.set_fault("catalog", Fault(latency_ms=60_000))
    call = gevent.spawn(get, backends)
    assert backends.wait_held("catalog", TIMEOUT_S)
    backends.heal()
    assert call.get(timeout=TIMEOUT_S).status_code == 200


def test_admin_api_validates_and_lists(backends):
    """Bad fault bodies are 400 naming the key; unknown services 404; GET lists; DELETE heals."""
    bad = put_fault(backends, "catalog", {"error_rate": "lots"})
    assert bad.status_code == 400
    assert bad.json()["key"] == "error_rate"
    unknown_key = put_fault(backends, "catalog", {"explode": True})
    assert unknown_key.status_code == 400
    assert "explode" in unknown_key.json()["error"]
    not_json = requests.put(backends.url + "/_faults/catalog", data=b"{", timeout=TIMEOUT_S)
    assert not_json.status_code == 400
    assert put_fault(backends, "payments", {"hang": True}).status_code == 404
    put_fault(backends, "search", {"latency_ms": 5, "drip_ms": 1})
    listing = requests.get(backends.url + "/_faults", timeout=TIMEOUT_S).json()
    assert set(listing["faults"]) == {"search"}
    assert listing["faults"]["search"]["latency_ms"] == 5
    assert requests.delete(backends.url + "/_faults", timeout=TIMEOUT_S).json() == {"faults": {}}
    assert backends.faults() == {}


def test_set_fault_refuses_unknown_services(backends):
    """The Python API names the valid services."""
    with pytest.raises(ValueError, match="catalog"):
        backends.set_fault("payments", Fault(hang=True))


BATCH = "/catalog/titles?ids=t1,t2,t3&fields=title,year,boxart"


def test_faults_apply_to_answers_served_from_the_encoded_title_cache(backends):
    """Once a batch's titles are encoded and cached, every fault mode still applies to it."""
    cached = get(backends, BATCH)
    assert cached.status_code == 200
    assert get(backends, BATCH).content == cached.content  # now spliced from the cache
    backends.set_fault("catalog", Fault(malformed=True))
    truncated = get(backends, BATCH)
    assert truncated.status_code == 200
    assert cached.content.startswith(truncated.content)
    assert len(truncated.content) < len(cached.content)
    backends.set_fault("catalog", Fault(error_rate=1.0))
    assert get(backends, BATCH).json() == {"error": "injected"}
    backends.set_fault("catalog", Fault(refuse=True))
    with pytest.raises(requests.ConnectionError):
        get(backends, BATCH)
    backends.set_fault("catalog", Fault(drip_ms=1))
    assert get(backends, BATCH).content == cached.content
    backends.set_fault("catalog", Fault(hang=True))
    call = gevent.spawn(get, backends, BATCH)
    assert backends.wait_held("catalog", TIMEOUT_S)
    backends.heal("catalog")
    assert call.get(timeout=TIMEOUT_S).content == cached.content
