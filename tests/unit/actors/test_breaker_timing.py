"""When a hanging backend's breaker opens, on a clock the test moves (nothing sleeps).

A timed-out call counts in the breaker at the moment its bound fires (Hystrix counts a
timeout when its timer fires), whether the bound was the backend's timeout or the request's
deadline, and whether or not its request still waits for the reply. So hanging calls at a
steady rate open the breaker the moment the window holds the minimum volume at the error
percentage: from an empty window that is the ``request_volume``-th timeout; after healthy
traffic it is later, because the successes still in the window count too (the licensing
load test saw ~6 s: see ``test_successes_still_in_the_window_delay_the_opening``). The run
of consecutive timeouts (``breaker.consecutive_timeouts``, 3 over at least 100 ms by
default) opens it sooner, whatever the window holds: the last tests here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent.event
import gevent.queue
import pykka
import pytest

from actors.breaker import CLOSED, OPEN
from actors.messages import Call, Outcome, Reply
from actors.system import ActorSystem
from actors.testing import Inbox, ManualClock, system_over
from backends.errors import BackendDeadlineError, BackendTimeoutError
from backends.specs import BreakerSettings
from backends.transport import BackendRequest, post

#: On a whole second, so the breaker's 1 s buckets start on round numbers.
START = 1024.0
#: 8 calls a second; binary fractions keep every clock reading exact.
STEP_S = 0.125
BOUND_S = 0.75
#: The window's defaults (20 calls, 50 %, 10 s window), spelled out because the arithmetic
#: uses them; the run of timeouts is off, so that the window alone decides.
DEFAULTS = BreakerSettings(
    request_volume=20, error_percent=50.0, window_ms=10_000, consecutive_timeouts=0
)
#: The shipped defaults, the run of 5 timeouts included.
SHIPPED = BreakerSettings()
LICENSE = post("licenses", body={"title_id": "t42"})  # not idempotent: never retried
OK = post("ok", body={})


class BoundedHang:
    """A backend that never answers: each call ends with ``BackendTimeoutError`` when its
    bound (the smaller of the backend timeout and the request's deadline) passes on the
    test's clock, as ``BackendClient``'s total bound ends it. ``/ok`` answers at once."""

    def __init__(self, clock: ManualClock, timeout_s: float) -> None:
        self.name = "licensing"
        self.clock = clock
        self.timeout_s = timeout_s
        self.started: gevent.queue.Queue[None] = gevent.queue.Queue()
        self.pending: list[tuple[float, gevent.event.AsyncResult]] = []

    def call(self, request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        """Answer ``/ok``; hang anything else until ``fire_due`` ends it."""
        del request_id
        if request.target() == "/ok":
            return {"ok": True}
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        self.pending.append((min(self.clock() + self.timeout_s, deadline), result))
        self.started.put(None)
        return result.get()

    def fire_due(self) -> int:
        """End the calls whose bound has passed by now; how many."""
        now = self.clock()
        due = [result for end, result in self.pending if end <= now]
        self.pending = [(end, result) for end, result in self.pending if end > now]
        for result in due:
            result.set_exception(BackendTimeoutError("call exceeded its time budget"))
        return len(due)


class GoneSupervisor:
    """A reply target whose request already answered and stopped (pykka says it is dead).

    The reply is still handed to ``inbox``, only so the test knows the call was handled.
    """

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    def tell(self, message: Reply) -> None:
        """Note the reply, then refuse it as a stopped actor would."""
        self.inbox.tell(message)
        raise pykka.ActorDeadError("supervisor stopped")


class Traffic:
    """Calls to one backend at a steady rate, on the manual clock."""

    def __init__(self, system: ActorSystem, backend: BoundedHang, target: Any, inbox: Inbox):
        self.system = system
        self.backend = backend
        self.target = target
        self.inbox = inbox
        self.breaker = system.states["licensing"].breaker
        self.timeouts = 0
        self.short_circuited = 0
        self.ids = iter(range(1_000_000))

    def send(self, request: BackendRequest, deadline_s: float) -> None:
        """Submit one call now; return once it is running (or answered, if it never runs)."""
        now = self.backend.clock()
        call = Call(next(self.ids), "licensing", request, now + deadline_s, "r", self.target, now)
        assert self.system.submit(call) is None
        if self.breaker.state == OPEN:
            assert self.inbox.next().outcome is Outcome.SHORT_CIRCUITED
            self.short_circuited += 1
        elif request.target() == "/ok":
            assert self.inbox.next().outcome is Outcome.SUCCESS
        else:
            self.backend.started.get(timeout=2)  # running: its bound is set from now

    def tick(self) -> None:
        """Move the clock one step, and let every bound that passed fire (and be handled)."""
        self.backend.clock.advance(STEP_S)
        for _ in range(self.backend.fire_due()):
            assert self.inbox.next().outcome is Outcome.TIMEOUT
            self.timeouts += 1

    def hang_until_open(self, deadline_s: float, limit_s: float = 20.0) -> None:
        """Hanging calls at the rate until the breaker opens (at most ``limit_s``)."""
        for _ in range(int(limit_s / STEP_S)):
            self.send(LICENSE, deadline_s)
            self.tick()
            if self.breaker.state == OPEN:
                return
        pytest.fail(f"breaker still {self.breaker.state} after {limit_s} s of timeouts")


@pytest.fixture
def clock() -> ManualClock:
    """Time that moves only when the test moves it."""
    return ManualClock(START)


@pytest.fixture
def start(clock: ManualClock) -> Iterator[Any]:
    """Start a system whose only backend is ``BoundedHang``; stopped after the test."""
    systems: list[ActorSystem] = []

    def factory(
        timeout_s: float, breaker: BreakerSettings = DEFAULTS, **spec_fields: Any
    ) -> tuple[ActorSystem, BoundedHang]:
        backend = BoundedHang(clock, timeout_s)
        system = system_over([backend], clock=clock, breaker=breaker, **spec_fields)
        system.start()
        systems.append(system)
        return system, backend

    yield factory
    for system in systems:
        system.stop()


@pytest.mark.parametrize(
    ("timeout_ms", "deadline_s"),
    [
        pytest.param(750, 1.5, id="bound-by-backend-timeout"),
        pytest.param(1_000, BOUND_S, id="bound-by-request-deadline"),
    ],
)
@pytest.mark.parametrize("gone", [False, True], ids=["request-waiting", "request-gone"])
def test_hanging_calls_open_the_breaker_at_the_volumeth_timeout(
    start, clock, timeout_ms, deadline_s, gone
):
    """8 hanging calls a second, each cut at 0.75 s: the 20th timeout opens the breaker,
    when it fires (19 * 0.125 + 0.75 = 3.125 s after the first call), not one step later."""
    system, backend = start(timeout_ms / 1000, timeout_ms=timeout_ms)
    inbox = Inbox()
    traffic = Traffic(system, backend, GoneSupervisor(inbox) if gone else inbox, inbox)

    traffic.hang_until_open(deadline_s)

    breaker = system.states["licensing"].breaker
    assert (traffic.timeouts, breaker.changed_at) == (20, START + 19 * STEP_S + BOUND_S)
    traffic.send(LICENSE, deadline_s)  # and from then on calls short-circuit
    assert traffic.short_circuited == 1
    counts = system.counts()["licensing"]
    assert (counts["timeout"], counts["breaker_open"]) == (20, 1)


def test_nineteen_timeouts_leave_it_closed(start, clock):
    """One timeout short of the volume, the breaker stays closed however long it waits."""
    system, backend = start(BOUND_S, timeout_ms=750)
    inbox = Inbox()
    traffic = Traffic(system, backend, inbox, inbox)
    for _ in range(19):
        traffic.send(LICENSE, 1.5)
        traffic.tick()
    while backend.pending:
        traffic.tick()
    assert (traffic.timeouts, system.breaker_state("licensing")) == (19, CLOSED)


def test_successes_still_in_the_window_delay_the_opening(start, clock):
    """Why licensing opened ~6 s into the hang of the load test: not late counting, but the
    window. After 10 s of successes at 8/s, hanging calls from t = 10 s time out from 10.75 s;
    the breaker needs timeouts >= successes still in the window. At 14.875 s the window
    (buckets [5 s, 15 s)) holds 40 successes and 34 timeouts; at 15.0 s the [5 s, 6 s)
    bucket leaves, and the 35th timeout meets 32 successes: open, 5.0 s into the hang.
    (Continuous estimate: bound + 50 % x (window - bound) = 0.75 + 4.625 = 5.4 s; Hystrix
    does the same, and its 500 ms health snapshot can add to it.)"""
    system, backend = start(BOUND_S, timeout_ms=750)
    inbox = Inbox()
    traffic = Traffic(system, backend, inbox, inbox)
    for _ in range(80):
        traffic.send(OK, 1.5)
        traffic.tick()
    assert clock() == START + 10.0

    traffic.hang_until_open(1.5)

    breaker = system.states["licensing"].breaker
    assert (traffic.timeouts, breaker.changed_at) == (35, START + 15.0)
    assert breaker.window() == (32 + 35, 35)


def test_a_call_never_sent_for_lack_of_time_stays_out_of_the_breaker(start, clock):
    """Under a millisecond left, the client refuses to send (``BackendDeadlineError``): the
    request's deadline, not licensing's health, so twenty of them leave the breaker closed
    and empty, and are counted as expired timeouts."""
    system, backend = start(BOUND_S, timeout_ms=750)

    def refuse(request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        raise BackendDeadlineError("deadline passed before the call was sent")

    backend.call = refuse
    inbox = Inbox()
    for index in range(20):
        call = Call(index, "licensing", LICENSE, clock() + 0.0005, "r", inbox, clock())
        assert system.submit(call) is None
        reply = inbox.next()
        assert (reply.outcome, reply.error, reply.attempts) == (
            Outcome.TIMEOUT,
            "deadline passed",
            1,
        )
    assert system.breaker_state("licensing") == CLOSED
    assert system.states["licensing"].breaker.window() == (0, 0)
    counts = system.counts()["licensing"]
    assert (counts["timeout"], counts["expired"]) == (20, 20)


def test_a_run_of_timeouts_opens_it_after_healthy_traffic_within_a_second_of_the_first(
    start, clock
):
    """The shipped defaults, in the case above: after 10 s of successes, hanging calls from
    t = 10 s time out from 10.75 s, one every 0.125 s; the 3rd in a row (0.25 s after the
    first: over the 0.1 s span) opens the breaker at 10.75 + 2 * 0.125 = 11.0 s, 1.0 s into
    the hang (the window alone: 5.0 s), although the window still holds 80 successes."""
    system, backend = start(BOUND_S, breaker=SHIPPED, timeout_ms=750)
    assert (SHIPPED.consecutive_timeouts, SHIPPED.consecutive_timeouts_span_ms) == (3, 100)
    inbox = Inbox()
    traffic = Traffic(system, backend, inbox, inbox)
    for _ in range(80):
        traffic.send(OK, 1.5)
        traffic.tick()

    traffic.hang_until_open(1.5)

    breaker = system.states["licensing"].breaker
    assert (traffic.timeouts, breaker.changed_at) == (3, START + 11.0)
    traffic.send(LICENSE, 1.5)
    assert traffic.short_circuited == 1


def test_an_answer_between_timeouts_breaks_the_run(start, clock):
    """Two timeouts, a success, two more: never three in a row, so it stays closed (the
    window's 4 of 5 failures are under its volume of 20)."""
    system, backend = start(BOUND_S, breaker=SHIPPED, timeout_ms=750)
    inbox = Inbox()
    traffic = Traffic(system, backend, inbox, inbox)
    for _ in range(2):
        for _ in range(2):
            traffic.send(LICENSE, 1.5)
            traffic.tick()
        while backend.pending:
            traffic.tick()
        traffic.send(OK, 1.5)
    assert (traffic.timeouts, system.breaker_state("licensing")) == (4, CLOSED)
