"""The latency-tail fault: validation, and the app holding exactly the tail's share."""

from __future__ import annotations

from collections.abc import Iterator

import gevent
import pytest

from backends.simulated import Fault, FaultError, LatencyModel, SimulatedApp, World
from backends.simulated.handoff import Call
from backends.simulated.services import Services
from backends.simulated.store import Store

TITLE = "/catalog/titles/t5"


def test_tail_faults_validate_and_round_trip():
    """A percentage and a delay within range; the JSON round trip keeps both."""
    fault = Fault.from_json({"tail_percent": 1, "tail_ms": 300})
    assert (fault.tail_percent, fault.tail_ms, fault.active) == (1, 300, True)
    assert Fault.from_json(fault.to_json()) == fault
    for body, key in (
        ({"tail_percent": 101}, "tail_percent"),
        ({"tail_percent": -1}, "tail_percent"),
        ({"tail_ms": 10_000_000}, "tail_ms"),
        ({"tail_ms": True}, "tail_ms"),
    ):
        with pytest.raises(FaultError) as caught:
            Fault.from_json(body)
        assert caught.value.key == key


@pytest.fixture
def sim() -> Iterator[SimulatedApp]:
    app = SimulatedApp(Services(World(7), Store(7, clock=lambda: 1.0)), LatencyModel())
    yield app
    app.close()


def test_a_full_tail_holds_every_request_until_healed(sim: SimulatedApp):
    """tail_percent 100 with a minute's delay: the request is held; healing answers it."""
    sim.board.set("catalog", Fault(tail_percent=100.0, tail_ms=60_000.0))
    asking = gevent.spawn(sim.answer, Call("GET", TITLE))
    assert sim.board.slot("catalog").holding.wait(5.0)
    assert not asking.ready()
    sim.board.heal("catalog")
    assert asking.get(timeout=5.0).status == 200


def test_a_zero_tail_never_delays(sim: SimulatedApp):
    """tail_percent 0: the tail's delay never applies, however long it is."""
    sim.board.set("catalog", Fault(tail_percent=0.0, tail_ms=60_000.0))
    replies = [sim.answer(Call("GET", TITLE)) for _ in range(50)]
    assert {reply.status for reply in replies} == {200}
    assert not sim.board.slot("catalog").holding.is_set()
