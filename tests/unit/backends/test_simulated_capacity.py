"""The capacity fault: its validation, the FIFO gate, and the app queueing behind it, with
greenlets but no sockets (a hang fault holds the requests being served)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import gevent
import pytest

from backends.simulated import Fault, FaultError, GateState, LatencyModel, SimulatedApp, World
from backends.simulated.admin import AdminApi
from backends.simulated.app import OVERLOADED
from backends.simulated.control import CallCounter, CapacityGate, FaultBoard
from backends.simulated.exchange import Request
from backends.simulated.faults import MAX_QUEUE
from backends.simulated.handoff import Call, Reply
from backends.simulated.services import Services
from backends.simulated.store import Store

TITLE = "/catalog/titles/t5"


def test_capacity_faults_validate_and_round_trip():
    """Integers within range; a queue bound needs a capacity; JSON round trip keeps both."""
    fault = Fault.from_json({"capacity": 2, "queue_limit": 3})
    assert (fault.capacity, fault.queue_limit, fault.active) == (2, 3, True)
    assert Fault.from_json(fault.to_json()) == fault
    assert Fault().queue_limit == MAX_QUEUE
    assert not Fault(capacity=0).active


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"capacity": 2.5}, "capacity"),
        ({"capacity": -1}, "capacity"),
        ({"capacity": True}, "capacity"),
        ({"capacity": 10_001}, "capacity"),
        ({"capacity": "4"}, "capacity"),
        ({"capacity": 2, "queue_limit": -1}, "queue_limit"),
        ({"capacity": 2, "queue_limit": 10_001}, "queue_limit"),
        ({"queue_limit": 5}, "queue_limit"),
    ],
)
def test_bad_capacity_faults_name_the_key(body, key):
    """Refused with the offending key, as every other fault key is."""
    with pytest.raises(FaultError) as caught:
        Fault.from_json(body)
    assert caught.value.key == key


def _enter_all(gate: CapacityGate, names: str, entered: list[str]) -> list[gevent.Greenlet]:
    """One greenlet per name, each entering the gate in turn; run until they all block."""

    def enter(name: str) -> None:
        if gate.enter():
            entered.append(name)
        else:
            entered.append(f"{name}:rejected")

    greenlets = []
    for name in names:
        greenlets.append(gevent.spawn(enter, name))
        gevent.idle()  # arrival order is spawn order
    return greenlets


def test_the_gate_serves_capacity_at_once_and_queues_the_rest_in_order():
    """Capacity 2, five arrivals: two served, three waiting; each leave admits the oldest."""
    gate, entered = CapacityGate(), []
    gate.resize(2, MAX_QUEUE)
    _enter_all(gate, "abcde", entered)
    assert entered == ["a", "b"]
    assert (gate.serving, gate.waiting, gate.peak_waiting) == (2, 3, 3)
    gate.leave()
    gevent.idle()
    assert entered == ["a", "b", "c"]
    gate.leave()
    gate.leave()
    gevent.idle()
    assert entered == ["a", "b", "c", "d", "e"]
    assert (gate.serving, gate.waiting) == (2, 0)


def test_a_full_queue_answers_at_once_and_counts_the_rejection():
    """Capacity 1 with a queue of 1: the third arrival is refused without waiting."""
    gate, entered = CapacityGate(), []
    gate.resize(1, 1)
    _enter_all(gate, "abc", entered)
    assert entered == ["a", "c:rejected"]
    assert gate.state() == GateState(1, 1, serving=1, waiting=1, rejected=1, peak_waiting=1)
    gate.reset_counts()
    assert (gate.rejected, gate.peak_waiting) == (0, 1)


def test_resizing_takes_effect_for_queued_and_new_requests():
    """Up: waiters are let in at once, oldest first. Down: those served finish, new ones
    wait until serving drops below the new cap. To 0: no cap, every waiter in."""
    gate, entered = CapacityGate(), []
    gate.resize(1, MAX_QUEUE)
    _enter_all(gate, "abcd", entered)
    gate.resize(3, MAX_QUEUE)
    gevent.idle()
    assert entered == ["a", "b", "c"]
    assert (gate.serving, gate.waiting) == (3, 1)
    gate.resize(1, MAX_QUEUE)
    _enter_all(gate, "e", entered)
    gate.leave()
    gate.leave()
    gevent.idle()
    assert entered == ["a", "b", "c"]  # 1 still served: d and e wait for the cap of 1
    gate.leave()
    gevent.idle()
    assert entered == ["a", "b", "c", "d"]
    gate.resize(0, MAX_QUEUE)
    gevent.idle()
    assert entered == ["a", "b", "c", "d", "e"]
    assert (gate.serving, gate.waiting) == (2, 0)


def test_a_request_killed_while_queued_gives_up_its_place():
    """Killing a waiter removes it; killing one that was just admitted passes its place on."""
    gate, entered = CapacityGate(), []
    gate.resize(1, MAX_QUEUE)
    greenlets = _enter_all(gate, "abcd", entered)
    greenlets[1].kill()
    assert gate.waiting == 2
    greenlets[2].kill(block=False)  # the kill reaches c after its turn has come
    gate.leave()  # admits c, which dies before it runs: d gets the place
    gevent.idle()
    assert entered == ["a", "d"]
    assert (gate.serving, gate.waiting) == (1, 0)


def test_wait_for_returns_when_the_condition_holds_or_the_time_is_up():
    """A watcher wakes on the change it waits for; an unmet condition times out."""
    gate = CapacityGate()
    gate.resize(1, MAX_QUEUE)
    watcher = gevent.spawn(gate.wait_for, lambda state: state.waiting == 2, 5.0)
    _enter_all(gate, "abc", [])
    assert watcher.get(timeout=5.0) is True
    assert gate.wait_for(lambda state: state.waiting == 9, 0.0) is False


def test_the_board_keeps_a_queue_across_fault_changes_and_heal_releases_it():
    """Replacing a capacity fault resizes the same gate; healing lifts the cap."""
    board, entered = FaultBoard(), []
    board.set("search", Fault(capacity=1))
    gate = board.gate("search")
    _enter_all(gate, "abc", entered)
    board.set("search", Fault(capacity=2, latency_ms=5))
    gevent.idle()
    assert entered == ["a", "b"]
    assert board.gates() == {"search": GateState(2, MAX_QUEUE, 2, 1, 0, 2)}
    board.heal()
    gevent.idle()
    assert entered == ["a", "b", "c"]
    assert board.gates() == {}


@pytest.fixture(scope="module")
def world() -> World:
    return World(7)


@pytest.fixture
def sim(world: World) -> Iterator[SimulatedApp]:
    app = SimulatedApp(Services(world, Store(7, clock=lambda: 1.0)), LatencyModel())
    yield app
    app.close()


def _answers(sim: SimulatedApp, count: int) -> tuple[list[gevent.Greenlet], list[int]]:
    """``count`` requests for one title, each in its own greenlet; the order they finished."""
    finished: list[int] = []

    def ask(index: int) -> Reply:
        reply = sim.answer(Call("GET", TITLE))
        finished.append(index)
        return reply

    greenlets = []
    for index in range(count):
        greenlets.append(gevent.spawn(ask, index))
        gevent.idle()
    return greenlets, finished


def test_the_app_queues_requests_beyond_capacity_and_serves_them_in_order(sim):
    """Capacity 2 under a hang: 2 held, 4 queued; when the hang heals, all 6 answer 200, the
    held ones first, the queued ones in arrival order."""
    sim.board.set("catalog", Fault(capacity=2, hang=True))
    greenlets, finished = _answers(sim, 6)
    assert sim.board.gate("catalog").state() == GateState(2, MAX_QUEUE, 2, 4, 0, 4)
    assert sim.counter.get("catalog") == 6  # every arrival counts, queued or not
    sim.board.heal("catalog")
    replies = [greenlet.get(timeout=5.0) for greenlet in greenlets]
    assert [reply.status for reply in replies] == [200] * 6
    assert finished[:2] == [0, 1]
    assert finished[2:] == [2, 3, 4, 5]


def test_a_full_queue_is_answered_overloaded(sim):
    """Beyond capacity + queue_limit the answer is 503 "overloaded" with Retry-After."""
    sim.board.set("catalog", Fault(capacity=1, queue_limit=1, hang=True))
    greenlets, _ = _answers(sim, 3)
    reply = greenlets[2].get(timeout=5.0)
    assert (reply.status, reply.body, reply.headers) == (
        503,
        b'{"error":"overloaded"}',
        (("Retry-After", "1"),),
    )
    assert reply.body == OVERLOADED.body
    sim.board.heal()
    assert [greenlet.get(timeout=5.0).status for greenlet in greenlets[:2]] == [200, 200]


def test_a_cap_raised_mid_run_serves_the_queue_under_the_new_fault(sim):
    """Capacity 1 -> 3 (still hanging): the held request is released by the fault change,
    and the three queued take the three places, held by the new hang."""
    sim.board.set("catalog", Fault(capacity=1, hang=True))
    greenlets, finished = _answers(sim, 4)
    sim.board.set("catalog", Fault(capacity=3, hang=True))
    assert greenlets[0].get(timeout=5.0).status == 200
    gevent.idle()
    assert finished == [0]
    state = sim.board.gate("catalog").state()
    assert (state.serving, state.waiting) == (3, 0)
    sim.board.heal()
    assert [greenlet.get(timeout=5.0).status for greenlet in greenlets] == [200] * 4


def test_admin_stats_show_the_gates_and_reset_their_counts():
    """GET /_stats lists every capped service's gate; DELETE /_stats resets its counts."""
    board = FaultBoard()
    admin = AdminApi(board, CallCounter())
    board.set("ratings", Fault(capacity=3, queue_limit=0))
    board.gate("ratings").enter()
    board.gate("ratings").rejected = 2

    def stats(method: str) -> dict[str, object]:
        return json.loads(admin.handle(Request(method, ("_stats",))).body)["capacity"]

    expected = {
        "capacity": 3,
        "queue_limit": 0,
        "serving": 1,
        "waiting": 0,
        "rejected": 2,
        "peak_waiting": 0,
    }
    assert stats("GET") == {"ratings": expected}
    assert stats("DELETE") == {"ratings": {**expected, "rejected": 0}}
