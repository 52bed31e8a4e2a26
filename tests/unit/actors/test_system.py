"""ActorSystem: one-for-one restart, clean shutdown, and no leaks over many requests."""

from __future__ import annotations

import gc
import time

import gevent
import gevent.event
import gevent.pool
import greenlet
import pykka
from conftest import SystemFactory, run
from test_backend_actor import Inbox

from actors.messages import Call, Outcome
from actors.plan import Fallback, Plan, RunStatus, Step, StepContext
from actors.supervisor import RequestSupervisor
from backends.errors import BackendStatusError
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get


class Crash:
    """A message no actor handles: delivering it is how a test crashes a backend actor."""


def _body(ctx: StepContext) -> object:
    return dict(ctx.results)


def _live_greenlets() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and obj)


def test_a_crashed_backend_actor_is_restarted_and_serves_the_next_call(
    make_system: SystemFactory,
):
    """After a crash the system starts a fresh actor; in-flight calls failed fast."""
    gate = gevent.event.Event()

    def handler(request: BackendRequest) -> object:
        if request.target() == "/hang":
            gate.wait()
        return "ok"

    system = make_system(FakeBackend("x", handler))
    inbox = Inbox()
    old = system.lookup("x")
    old.tell(Call(1, "x", get("hang"), time.monotonic() + 30, "r", inbox, 0.0))
    old.tell(Crash())
    held = inbox.next(timeout_s=2)  # long before the call's 30 s deadline
    assert (held.call_id, held.outcome, held.error) == (
        1,
        Outcome.FAILURE,
        "backend actor restarted",
    )
    old.actor_stopped.wait(2)
    gevent.idle()  # the crashed actor's greenlet finishes its crash handling
    new = system.lookup("x")
    assert new is not old
    assert new.is_alive()
    result = run(system, Plan((Step("x", "x", lambda _c: get("again")),), _body))
    assert result.body == {"x": "ok"}
    assert system.counts()["x"]["restarts"] == 1
    gate.set()


def test_stop_rejects_held_calls_and_leaves_no_actor(make_system: SystemFactory):
    """Shutdown answers every held call at once and stops every backend actor."""
    gate = gevent.event.Event()
    system = make_system(FakeBackend("x", lambda _r: gate.wait()))
    inbox = Inbox()
    system.lookup("x").tell(Call(1, "x", get("h"), time.monotonic() + 30, "r", inbox, 0.0))
    gevent.idle()
    system.stop()
    assert inbox.next().outcome is Outcome.REJECTED
    assert pykka.ActorRegistry.get_all() == []


def test_a_thousand_requests_leave_no_actor_or_greenlet_behind(make_system: SystemFactory):
    """Successes, failures and timeouts alike: actors and greenlets return to baseline."""

    def handler(request: BackendRequest) -> object:
        kind = request.query[0][1]
        if kind == "fail":
            raise BackendStatusError(503)
        if kind == "hang":
            gevent.event.Event().wait()
        return kind

    system = make_system(FakeBackend("a", handler), FakeBackend("b", handler), max_concurrent=50)
    plan = Plan(
        (
            Step("a", "a", lambda c: get("a", k=c.params["kind"])),
            Step(
                "b",
                "b",
                lambda c: get("b", k=c.params["kind"]),
                after=("a",),
                fallback=Fallback.omit(),
            ),
        ),
        _body,
    )
    kinds = ["ok", "fail", "hang", "ok"]
    run(system, plan, kind="ok")  # warm up lazily created machinery before the baseline
    gevent.idle()
    actors_before = len(pykka.ActorRegistry.get_all())
    greenlets_before = _live_greenlets()

    pool = gevent.pool.Pool(50)
    results = pool.map(
        lambda i: run(system, plan, deadline_s=0.05, kind=kinds[i % 4]).status, range(1000)
    )
    assert results.count(RunStatus.OK) == 500
    assert results.count(RunStatus.FAILED) == 250
    assert results.count(RunStatus.TIMED_OUT) == 250
    for ref in pykka.ActorRegistry.get_by_class(RequestSupervisor):
        ref.actor_stopped.wait(2)
    gevent.idle()
    assert len(pykka.ActorRegistry.get_all()) == actors_before
    assert _live_greenlets() == greenlets_before
