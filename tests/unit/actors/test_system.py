"""ActorSystem: one-for-one restart (breaker kept, bulkhead reset), clean shutdown, breaker
reporting and overrides, and no leaks over many requests."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable

import gevent
import gevent.event
import gevent.pool
import greenlet
import pykka
import pytest

from actors.backend import submit
from actors.breaker import CLOSED, HALF_OPEN, OPEN, Override
from actors.messages import Call, Outcome
from actors.plan import Fallback, Plan, RunStatus, Step, StepContext
from actors.supervisor import RequestSupervisor
from actors.system import ActorSystem
from actors.testing import Inbox, ShiftedClock, run, system_over
from backends.errors import BackendStatusError
from backends.specs import BreakerSettings, RetrySettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get

QUICK_BREAKER = BreakerSettings(request_volume=4, open_ms=5_000)
#: The ``make_system`` fixture (tests/unit/actors/conftest.py).
SystemFactory = Callable[..., ActorSystem]


class Crash:
    """A message no actor handles: delivering it is how a test crashes a backend actor."""


def _body(ctx: StepContext) -> object:
    return dict(ctx.results)


def _live_greenlets() -> weakref.WeakSet[greenlet.greenlet]:
    """The greenlets alive now (a weak set: holding them would keep them alive)."""
    gc.collect()
    return weakref.WeakSet(
        obj for obj in gc.get_objects() if isinstance(obj, greenlet.greenlet) and obj
    )


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
    assert system.submit(Call(1, "x", get("hang"), time.monotonic() + 30, "r", inbox, 0.0)) is None
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
    assert system.states["x"].outstanding == 0
    gate.set()


def test_stop_rejects_held_calls_and_leaves_no_actor(make_system: SystemFactory):
    """Shutdown answers every held call at once and stops every backend actor."""
    gate = gevent.event.Event()
    system = make_system(FakeBackend("x", lambda _r: gate.wait()))
    inbox = Inbox()
    assert system.submit(Call(1, "x", get("h"), time.monotonic() + 30, "r", inbox, 0.0)) is None
    gevent.idle()
    system.stop()
    assert inbox.next().outcome is Outcome.REJECTED
    assert pykka.ActorRegistry.get_all() == []
    assert system.states["x"].outstanding == 0


def test_stop_closes_every_backend_client(make_system: SystemFactory):
    """Shutdown releases the clients' pooled connections (each client is closed)."""
    fakes = (FakeBackend("x"), FakeBackend("y"))
    system = make_system(*fakes)
    assert not any(fake.closed for fake in fakes)
    system.stop()
    assert all(fake.closed for fake in fakes)


def test_a_call_told_behind_a_stop_is_answered_not_dropped(make_system: SystemFactory):
    """pykka drops tells left in a stopped actor's inbox; the backend actor answers them."""
    system = make_system(FakeBackend("x"))
    state, ref = system.states["x"], system.lookup("x")
    inbox = Inbox()
    ref.stop(block=False)  # queued: the actor is alive until it handles the stop
    call = Call(1, "x", get("late"), time.monotonic() + 30, "r", inbox, 0.0)
    assert submit(state, ref, call, time.monotonic()) is None
    reply = inbox.next()
    assert (reply.outcome, reply.error) == (Outcome.REJECTED, "backend stopping")
    assert state.outstanding == 0


def test_submit_to_an_unknown_or_stopped_backend_is_rejected_at_once(
    make_system: SystemFactory,
):
    """No actor, no message: the caller gets REJECTED "unavailable" and falls back."""
    system = make_system(FakeBackend("x"))
    inbox = Inbox()
    unknown = system.submit(Call(1, "nowhere", get("a"), time.monotonic() + 30, "r", inbox, 0.0))
    assert unknown is not None
    assert (unknown.outcome, unknown.error) == (Outcome.REJECTED, "unavailable")
    system.stop()
    stopped = system.submit(Call(2, "x", get("a"), time.monotonic() + 30, "r", inbox, 0.0))
    assert stopped is not None
    assert stopped.error == "unavailable"


def test_a_thousand_requests_leave_no_actor_or_greenlet_behind(make_system: SystemFactory):
    """Successes, failures and timeouts alike: actors and greenlets return to baseline."""

    def handler(request: BackendRequest) -> object:
        kind = request.query[0][1]
        if kind == "fail":
            raise BackendStatusError(503)
        if kind == "hang":
            gevent.event.Event().wait()
        return kind

    system = make_system(
        FakeBackend("a", handler),
        FakeBackend("b", handler),
        max_concurrent=50,
        # Exact counts below: half of "a"'s calls fail, a quarter time out in runs, which
        # would open a real breaker.
        breaker=BreakerSettings(request_volume=1_000_000, consecutive_timeouts=0),
    )
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
    # Only the hanging calls meet their deadline: on a busy machine a 50 ms one could pass
    # before a finished plan's supervisor runs, and that request answers 504 (late).
    results = pool.map(
        lambda i: (
            run(
                system, plan, deadline_s=0.05 if kinds[i % 4] == "hang" else 5.0, kind=kinds[i % 4]
            ).status
        ),
        range(1000),
    )
    assert results.count(RunStatus.OK) == 500
    assert results.count(RunStatus.FAILED) == 250
    assert results.count(RunStatus.TIMED_OUT) == 250
    for ref in pykka.ActorRegistry.get_by_class(RequestSupervisor):
        ref.actor_stopped.wait(2)
    gevent.idle()
    assert len(pykka.ActorRegistry.get_all()) == actors_before
    # Compared as sets: greenlets left by earlier tests may end meanwhile. A call's attempt
    # may still be ending as its request answers at the same deadline: every greenlet
    # started here is bounded by one, so each must end, and none may stay.
    started = [g for g in _live_greenlets() if g not in greenlets_before]
    gevent.joinall([g for g in started if isinstance(g, gevent.Greenlet)], timeout=5)
    assert [g for g in started if g] == []


@pytest.fixture
def clock() -> ShiftedClock:
    """Real time plus a jump the test makes."""
    return ShiftedClock()


@pytest.fixture
def changes() -> list[tuple[str, str, str]]:
    """Breaker changes heard by the systems of a test, as (backend, old, new)."""
    return []


@pytest.fixture
def clocked(clock: ShiftedClock, changes: list[tuple[str, str, str]]):
    """Start systems over fakes on ``clock`` that record breaker changes; stopped after."""
    systems: list[ActorSystem] = []

    def factory(*fakes: FakeBackend, **spec_fields: object) -> ActorSystem:
        system = system_over(
            fakes,
            clock=clock,
            on_breaker_change=lambda *change: changes.append(change),
            **spec_fields,
        )
        system.start()
        systems.append(system)
        return system

    yield factory
    for system in systems:
        system.stop()


def _crash(system: ActorSystem, name: str = "x") -> None:
    old = system.lookup(name)
    old.tell(Crash())
    old.actor_stopped.wait(2)
    gevent.idle()  # the crashed actor's greenlet finishes its crash handling
    assert system.lookup(name) is not old


def _fail_four(system: ActorSystem, clock: ShiftedClock, inbox: Inbox) -> None:
    for index in range(4):
        assert system.submit(Call(index, "x", get("f"), clock() + 5, "r", inbox, clock())) is None
        assert inbox.next().outcome is Outcome.FAILURE


def _unavailable(_request: BackendRequest) -> object:
    raise BackendStatusError(503)


def test_a_restart_keeps_the_breaker_open(clocked, clock):
    """The breaker describes the backend: an open one stays open across an actor restart."""
    fake = FakeBackend("x", _unavailable, clock=clock)
    system = clocked(fake, breaker=QUICK_BREAKER, retry=RetrySettings(max_attempts=1))
    inbox = Inbox()
    _fail_four(system, clock, inbox)
    _crash(system)
    assert system.breaker_state("x") == OPEN
    assert system.submit(Call(9, "x", get("a"), clock() + 5, "r", inbox, clock())) is None
    assert inbox.next().outcome is Outcome.SHORT_CIRCUITED
    assert fake.calls == 4


def test_a_probe_abandoned_by_a_restart_cannot_wedge_half_open(clocked, clock, changes):
    """The probe's actor crashes mid-call: its lease expires, the breaker reopens, and the
    next probe (after the open time) closes it."""
    gate = gevent.event.Event()
    healthy = False

    def handler(request: BackendRequest) -> object:
        if request.target() == "/probe":
            gate.wait()
        if not healthy:
            raise BackendStatusError(503)
        return "ok"

    fake = FakeBackend("x", handler, clock=clock)
    system = clocked(fake, breaker=QUICK_BREAKER, retry=RetrySettings(max_attempts=1))
    inbox = Inbox()
    _fail_four(system, clock, inbox)
    clock.advance(5.0)
    assert system.submit(Call(10, "x", get("probe"), clock() + 30, "r", inbox, clock())) is None
    _crash(system)
    assert inbox.next().error == "backend actor restarted"
    assert system.breaker_state("x") == HALF_OPEN  # the probe is still out, as far as we know
    assert system.submit(Call(11, "x", get("b"), clock() + 5, "r", inbox, clock())) is None
    assert inbox.next().outcome is Outcome.SHORT_CIRCUITED
    clock.advance(system.states["x"].spec.timeout_ms / 1000 + 1.0)  # the lease ends
    assert system.breaker_state("x") == OPEN
    healthy = True
    clock.advance(5.0)
    assert system.submit(Call(12, "x", get("c"), clock() + 5, "r", inbox, clock())) is None
    assert inbox.next().outcome is Outcome.SUCCESS
    assert system.breaker_state("x") == CLOSED
    assert [change[2] for change in changes] == [
        OPEN,
        HALF_OPEN,
        OPEN,
        HALF_OPEN,
        CLOSED,
    ]
    gate.set()


def test_breaker_changes_are_reported_counted_and_overridable(clocked, clock, changes):
    """Listeners hear (backend, old, new); counts say how often; operators force states."""
    system = clocked(FakeBackend("x", clock=clock))
    system.force_breaker("x", Override.FORCE_OPEN)
    assert system.breaker_state("x") == OPEN
    system.force_breaker("x", None)
    assert changes == [("x", CLOSED, OPEN), ("x", OPEN, CLOSED)]
    counts = system.counts()["x"]
    assert (counts["breaker_open"], counts["breaker_closed"]) == (1, 1)
    with pytest.raises(KeyError):
        system.force_breaker("nowhere", Override.FORCE_OPEN)


def test_backend_views_show_operators_the_live_state_and_apply_overrides(clocked, clock):
    """Each view reads the breaker, bulkhead and 10 s window live; forcing goes through."""
    system = clocked(
        FakeBackend("x", _unavailable, clock=clock),
        breaker=QUICK_BREAKER,
        retry=RetrySettings(max_attempts=1),
        max_concurrent=3,
        max_queue=2,
    )
    inbox = Inbox()
    _fail_four(system, clock, inbox)
    (view,) = system.backend_views()
    assert (view.name, view.breaker_state, view.breaker_override) == ("x", OPEN, None)
    assert view.breaker_changed_at is not None
    assert (view.inflight, view.queued, view.max_concurrent, view.max_queue) == (0, 0, 3, 2)
    window = view.window_totals().snapshot()
    assert (window["calls"], window["failures"]) == (4, 4)
    assert window["latency_ms"]["samples"] == 4
    view.force_breaker("closed")
    assert (view.breaker_state, view.breaker_override) == (CLOSED, "closed")
    view.force_breaker("clear")
    assert (view.breaker_state, view.breaker_override) == (CLOSED, None)
    with pytest.raises(KeyError):
        view.force_breaker("sideways")


def test_the_window_tells_bad_requests_apart_from_failures(clocked, clock):
    """A 404 is a client_error in the operators' window, not a backend failure."""

    def missing(_request: BackendRequest) -> object:
        raise BackendStatusError(404)

    system = clocked(FakeBackend("x", missing, clock=clock))
    inbox = Inbox()
    assert system.submit(Call(1, "x", get("nope"), clock() + 5, "r", inbox, clock())) is None
    assert inbox.next().outcome is Outcome.FAILURE
    window = system.backend_views()[0].window_totals().snapshot()
    assert (window["client_errors"], window["failures"]) == (1, 0)
