"""BackendActor: bulkhead isolation, fast rejection, expiry, and surviving timeouts."""

from __future__ import annotations

import time

import gevent
import gevent.event
import gevent.queue
import pykka
from conftest import SystemFactory, run

from actors.messages import Call, Outcome, Reply
from actors.plan import Fallback, Plan, RunStatus, Step, StepContext
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get


class Inbox:
    """A reply target that queues what it is told, for tests talking to an actor directly."""

    def __init__(self) -> None:
        self.queue: gevent.queue.Queue[Reply] = gevent.queue.Queue()

    def tell(self, message: Reply) -> None:
        self.queue.put(message)

    def next(self, timeout_s: float = 2.0) -> Reply:
        return self.queue.get(timeout=timeout_s)


def _call(call_id: int, path: str, inbox: Inbox, deadline_s: float = 5.0) -> Call:
    start = time.monotonic()
    return Call(call_id, "x", get(path), start + deadline_s, "req", inbox, start)


def _hang_on(gate: gevent.event.Event, path: str):
    def handler(request: BackendRequest) -> object:
        if request.target() == path:
            gate.wait()
        return {"path": request.target()}

    return handler


def test_a_hanging_call_does_not_delay_the_next_call_to_the_same_backend(
    make_system: SystemFactory,
):
    """While /slow hangs, /fast on the same backend answers (the pool has room)."""
    gate = gevent.event.Event()
    system = make_system(FakeBackend("x", _hang_on(gate, "/slow")), max_concurrent=4)
    inbox = Inbox()
    actor = system.lookup("x")
    actor.tell(_call(1, "slow", inbox))
    actor.tell(_call(2, "fast", inbox))
    first = inbox.next()
    assert (first.call_id, first.outcome) == (2, Outcome.SUCCESS)
    gate.set()
    assert inbox.next().call_id == 1


def test_a_hanging_backend_does_not_delay_another_backend(make_system: SystemFactory):
    """A request needing only y is unaffected by x hanging with a full bulkhead."""
    gate = gevent.event.Event()
    system = make_system(
        FakeBackend("x", _hang_on(gate, "/slow")), FakeBackend("y"), max_concurrent=1, max_queue=0
    )
    inbox = Inbox()
    system.lookup("x").tell(_call(1, "slow", inbox))
    result = run(system, Plan((Step("y", "y", lambda _c: get("y")),), lambda c: c.results["y"]))
    assert result.status is RunStatus.OK
    gate.set()
    assert inbox.next().outcome is Outcome.SUCCESS


def test_a_full_bulkhead_rejects_at_once_and_the_step_falls_back(make_system: SystemFactory):
    """With one slot taken and no queue, the next call is rejected into its fallback."""
    gate = gevent.event.Event()
    fake = FakeBackend("x", _hang_on(gate, "/slow"))
    system = make_system(fake, max_concurrent=1, max_queue=0)
    inbox = Inbox()
    system.lookup("x").tell(_call(1, "slow", inbox))
    plan = Plan(
        (Step("s", "x", lambda _c: get("other"), fallback=Fallback.static("default")),),
        lambda c: c.results["s"],
    )
    result = run(system, plan, deadline_s=30)  # a rejection must not wait for the deadline
    assert result.body == "default"
    assert result.records[0].outcome == "rejected"
    assert fake.calls == 1
    gate.set()
    inbox.next()


def test_queued_calls_run_in_order_and_never_exceed_the_bulkhead(make_system: SystemFactory):
    """Calls beyond max_concurrent wait in the queue; concurrency never passes the bound."""
    gate = gevent.event.Event()

    def handler(request: BackendRequest) -> object:
        gate.wait()
        return request.target()

    fake = FakeBackend("x", handler)
    system = make_system(fake, max_concurrent=2, max_queue=3)
    inbox = Inbox()
    for index in range(6):
        system.lookup("x").tell(_call(index, f"p{index}", inbox))
    rejected = inbox.next()
    assert (rejected.call_id, rejected.outcome) == (5, Outcome.REJECTED)
    gate.set()
    replies = [inbox.next() for _ in range(5)]
    assert all(reply.outcome is Outcome.SUCCESS for reply in replies)
    assert fake.max_running == 2


def test_an_expired_call_is_dropped_and_counted_not_executed(make_system: SystemFactory):
    """A call whose deadline passed before it was handled never reaches the backend."""
    fake = FakeBackend("x")
    system = make_system(fake)
    inbox = Inbox()
    system.lookup("x").tell(_call(1, "late", inbox, deadline_s=-1))
    reply = inbox.next()
    assert reply.outcome is Outcome.TIMEOUT
    assert fake.calls == 0
    assert system.counts()["x"]["expired"] == 1


def test_a_deadline_expiring_mid_call_stops_no_other_actor(make_system: SystemFactory):
    """Regression: a call cut by its deadline (even by a raw gevent.Timeout) kills nothing."""

    def raw_timeout(request: BackendRequest) -> object:
        if request.target() == "/raw":
            raise gevent.Timeout  # a BaseException, the hazard itself
        gevent.event.Event().wait()  # hang until the deadline cuts the call
        return None

    system = make_system(FakeBackend("x", raw_timeout), FakeBackend("y"))
    before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    inbox = Inbox()
    system.lookup("x").tell(_call(1, "hang", inbox, deadline_s=0.05))
    system.lookup("x").tell(_call(2, "raw", inbox))
    outcomes = {inbox.next().outcome, inbox.next().outcome}
    assert outcomes == {Outcome.TIMEOUT}
    assert {ref.actor_urn for ref in pykka.ActorRegistry.get_all()} == before
    result = run(system, Plan((Step("y", "y", lambda _c: get("y")),), _body))
    assert result.status is RunStatus.OK


def _body(ctx: StepContext) -> object:
    return dict(ctx.results)
