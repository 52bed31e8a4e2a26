"""The capacity fault over real sockets: requests beyond the cap queue, a full queue answers
"overloaded", and a cap changed through the admin API takes effect mid-run. Synchronised on
the gate's queue depth (``wait_capacity``), never on elapsed time."""

from __future__ import annotations

import gevent
import pytest
import requests

from backends.simulated import Fault, SimulatedBackends

pytestmark = pytest.mark.integration

TIMEOUT_S = 5
TITLE = "/catalog/titles/t5"


def get(sim: SimulatedBackends) -> requests.Response:
    return requests.get(sim.url + TITLE, timeout=TIMEOUT_S)


def put_fault(sim: SimulatedBackends, body: object) -> requests.Response:
    return requests.put(f"{sim.url}/_faults/catalog", json=body, timeout=TIMEOUT_S)


def spawn_gets(sim: SimulatedBackends, count: int) -> list[gevent.Greenlet]:
    return [gevent.spawn(get, sim) for _ in range(count)]


def depth(sim: SimulatedBackends, serving: int, waiting: int) -> bool:
    """Wait until the catalog's gate serves and queues exactly these many."""
    return sim.wait_capacity(
        "catalog", lambda gate: (gate.serving, gate.waiting) == (serving, waiting), TIMEOUT_S
    )


def test_requests_beyond_capacity_wait_and_a_raised_cap_serves_them(backends):
    """Capacity 2 (each call held by a hang): of 6 concurrent calls 2 are served and 4 wait.
    PUT capacity 4: the 2 held are let go by the fault change and answer; the 4 queued take
    the 4 places. Healing answers them all."""
    assert put_fault(backends, {"capacity": 2, "hang": True}).status_code == 200
    calls = spawn_gets(backends, 6)
    assert depth(backends, serving=2, waiting=4)
    stats = requests.get(backends.url + "/_stats", timeout=TIMEOUT_S).json()
    assert stats["capacity"]["catalog"]["waiting"] == 4
    assert stats["requests"]["catalog"] == 6

    reply = put_fault(backends, {"capacity": 4, "hang": True})
    assert reply.json()["fault"]["capacity"] == 4
    assert depth(backends, serving=4, waiting=0)
    done = gevent.wait(calls, timeout=TIMEOUT_S, count=2)
    assert len(done) == 2
    assert all(call.value.status_code == 200 for call in done)
    assert sum(call.ready() for call in calls) == 2  # the 4 others are held by the new hang

    assert requests.delete(backends.url + "/_faults/catalog", timeout=TIMEOUT_S).ok
    assert [call.get(timeout=TIMEOUT_S).status_code for call in calls] == [200] * 6
    assert backends.capacity("catalog").peak_waiting == 4


def test_a_lowered_cap_holds_new_calls_until_enough_finish(backends):
    """Capacity 3 -> 1 while 3 are served: a new call waits until serving drops below 1."""
    backends.set_fault("catalog", Fault(capacity=3, hang=True))
    first = spawn_gets(backends, 3)
    assert depth(backends, serving=3, waiting=0)
    backends.set_fault("catalog", Fault(capacity=1, hang=True))  # lets the 3 go
    later = spawn_gets(backends, 2)
    assert [call.get(timeout=TIMEOUT_S).status_code for call in first] == [200] * 3
    assert depth(backends, serving=1, waiting=1)
    backends.heal()
    assert [call.get(timeout=TIMEOUT_S).status_code for call in later] == [200] * 2


def test_a_full_queue_answers_503_overloaded_with_retry_after(backends):
    """Capacity 1, queue 1: the third concurrent call is answered at once, 503 overloaded."""
    backends.set_fault("catalog", Fault(capacity=1, queue_limit=1, hang=True))
    held = spawn_gets(backends, 2)
    assert depth(backends, serving=1, waiting=1)
    reply = get(backends)
    assert reply.status_code == 503
    assert reply.json() == {"error": "overloaded"}
    assert reply.headers["Retry-After"] == "1"
    assert reply.headers["X-Service"] == "catalog"
    assert backends.capacity("catalog").rejected == 1
    backends.heal()
    assert [call.get(timeout=TIMEOUT_S).status_code for call in held] == [200, 200]


def test_known_latency_under_a_cap_queues_and_drains(backends):
    """Capacity 1 and 50 ms per call: 4 concurrent calls are all answered, never more than
    one served at a time, and some had to queue (the gate's own counts, not a stopwatch)."""
    backends.set_fault("catalog", Fault(capacity=1, latency_ms=50))
    calls = spawn_gets(backends, 4)
    assert backends.wait_capacity("catalog", lambda gate: gate.waiting >= 1, TIMEOUT_S)
    assert [call.get(timeout=TIMEOUT_S).status_code for call in calls] == [200] * 4
    gate = backends.capacity("catalog")
    assert (gate.serving, gate.waiting, gate.rejected) == (0, 0, 0)
    assert 1 <= gate.peak_waiting <= 3


def test_a_bad_capacity_is_refused_naming_the_key(backends):
    """400 with the key; the fault in force stays."""
    backends.set_fault("catalog", Fault(capacity=2))
    reply = put_fault(backends, {"capacity": 2.5})
    assert reply.status_code == 400
    assert reply.json()["key"] == "capacity"
    assert backends.faults() == {"catalog": Fault(capacity=2)}


def test_stopping_releases_queued_calls(world):
    """Stop with calls held and queued: none is left behind."""
    sim = SimulatedBackends(world=world).start()
    sim.set_fault("catalog", Fault(capacity=1, hang=True))
    calls = spawn_gets(sim, 3)
    assert depth(sim, serving=1, waiting=2)
    sim.stop()
    gevent.wait(calls, timeout=TIMEOUT_S)
    assert all(call.ready() for call in calls)
    assert sim.app.inflight.wait_idle(TIMEOUT_S)
    assert (sim.capacity("catalog").serving, sim.capacity("catalog").waiting) == (0, 0)
