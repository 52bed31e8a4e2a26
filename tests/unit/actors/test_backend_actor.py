"""BackendActor: bulkheads, bounded mailboxes, expiry, the breaker, retries, and surviving
timeouts."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import gevent
import gevent.event
import pykka
import pytest

from actors.breaker import CLOSED, OPEN, Override
from actors.messages import Call, Outcome, Reply
from actors.plan import Fallback, Plan, RunStatus, Step, StepContext
from actors.retry import Retrier, RetryBudget, RetryPolicy
from actors.system import ActorSystem
from actors.testing import Inbox, ShiftedClock, run, system_over
from backends.errors import BackendConnectionError, BackendError, BackendStatusError
from backends.specs import BreakerSettings, RetrySettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get, post

Start = Callable[..., ActorSystem]
#: Trips after 4 calls at >= 50 % failures, so tests need few calls.
QUICK_BREAKER = BreakerSettings(request_volume=4, error_percent=50.0, open_ms=5_000)
NO_RETRY = RetrySettings(max_attempts=1)


@pytest.fixture
def clock() -> ShiftedClock:
    """Real time plus a jump the test makes (a breaker's open time passes at once)."""
    return ShiftedClock()


@pytest.fixture
def start(clock: ShiftedClock) -> Iterator[Start]:
    """Start an actor system over fake backends on ``clock``; stopped after the test."""
    systems: list[ActorSystem] = []

    def factory(*fakes: FakeBackend, **spec_fields: object) -> ActorSystem:
        system = system_over(fakes, clock=clock, **spec_fields)
        system.start()
        systems.append(system)
        return system

    yield factory
    for system in systems:
        system.stop()


def _call(
    call_id: int,
    inbox: Inbox,
    clock: ShiftedClock,
    request: BackendRequest,
    deadline_s: float = 5.0,
    *,
    keep_last_good: bool = False,
) -> Call:
    now = clock()
    return Call(
        call_id, "x", request, now + deadline_s, "req", inbox, now, keep_last_good=keep_last_good
    )


def _send(system: ActorSystem, call: Call) -> None:
    assert system.submit(call) is None


def _ask(system: ActorSystem, call: Call, inbox: Inbox) -> Reply:
    _send(system, call)
    return inbox.next()


def _handled_so_far(system: ActorSystem) -> None:
    """Return once the actor has handled every message told to it before this call."""
    system.lookup("x").proxy().name.get(timeout=2)


def _hang_on(gate: gevent.event.Event, path: str) -> Callable[[BackendRequest], object]:
    def handler(request: BackendRequest) -> object:
        if request.target() == path:
            gate.wait()
        return {"path": request.target()}

    return handler


class Script:
    """A handler that raises the queued errors in turn, then answers."""

    def __init__(self, *errors: BackendError) -> None:
        self.errors = list(errors)

    def __call__(self, request: BackendRequest) -> object:
        if self.errors:
            raise self.errors.pop(0)
        return {"path": request.target()}


class Toggle:
    """A handler that fails (503) while ``failing``, else answers; can be held at a gate."""

    def __init__(self) -> None:
        self.failing = True
        self.gate: gevent.event.Event | None = None

    def __call__(self, request: BackendRequest) -> object:
        if self.gate is not None:
            self.gate.wait()
        if self.failing:
            raise BackendStatusError(503)
        return {"path": request.target()}


def _trip(system: ActorSystem, inbox: Inbox, clock: ShiftedClock, calls: int = 4) -> None:
    for index in range(calls):
        assert _ask(system, _call(index, inbox, clock, get("f")), inbox).outcome is Outcome.FAILURE
    assert system.breaker_state("x") == OPEN


# -- bulkhead and bounded mailbox ------------------------------------------------------------


def test_a_hanging_call_does_not_delay_the_next_call_to_the_same_backend(start, clock):
    """While /slow hangs, /fast on the same backend answers (the pool has room)."""
    gate = gevent.event.Event()
    system = start(FakeBackend("x", _hang_on(gate, "/slow"), clock=clock), max_concurrent=4)
    inbox = Inbox()
    _send(system, _call(1, inbox, clock, get("slow")))
    _send(system, _call(2, inbox, clock, get("fast")))
    first = inbox.next()
    assert (first.call_id, first.outcome, first.attempts) == (2, Outcome.SUCCESS, 1)
    gate.set()
    assert inbox.next().call_id == 1


def test_a_hanging_backend_does_not_delay_another_backend(start, clock):
    """A request needing only y is unaffected by x hanging with a full bulkhead."""
    gate = gevent.event.Event()
    system = start(
        FakeBackend("x", _hang_on(gate, "/slow"), clock=clock),
        FakeBackend("y", clock=clock),
        max_concurrent=1,
        max_queue=0,
    )
    inbox = Inbox()
    _send(system, _call(1, inbox, clock, get("slow")))
    result = run(system, Plan((Step("y", "y", lambda _c: get("y")),), lambda c: c.results["y"]))
    assert result.status is RunStatus.OK
    gate.set()
    assert inbox.next().outcome is Outcome.SUCCESS


def test_a_full_bulkhead_rejects_at_once_and_the_step_falls_back(start, clock):
    """With one slot taken and no queue, the next call is rejected into its fallback."""
    gate = gevent.event.Event()
    fake = FakeBackend("x", _hang_on(gate, "/slow"), clock=clock)
    system = start(fake, max_concurrent=1, max_queue=0)
    inbox = Inbox()
    _send(system, _call(1, inbox, clock, get("slow")))
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


def test_queued_calls_run_in_order_and_never_exceed_the_bulkhead(start, clock):
    """Calls beyond max_concurrent wait in the queue, start in order, and concurrency never
    passes the bound; the call beyond the queue is rejected by submit itself."""
    gate, both_running = gevent.event.Event(), gevent.event.Event()

    def handler(request: BackendRequest) -> object:
        if fake.running == 2:
            both_running.set()
        gate.wait()
        return request.target()

    fake = FakeBackend("x", handler, clock=clock)
    system = start(fake, max_concurrent=2, max_queue=3)
    inbox = Inbox()
    for index in range(5):
        _send(system, _call(index, inbox, clock, get(f"p{index}")))
    rejected = system.submit(_call(5, inbox, clock, get("p5")))
    assert rejected is not None
    assert (rejected.call_id, rejected.outcome, rejected.error) == (
        5,
        Outcome.REJECTED,
        "bulkhead full",
    )
    assert both_running.wait(2)
    gate.set()
    replies = [inbox.next() for _ in range(5)]
    assert all(reply.outcome is Outcome.SUCCESS for reply in replies)
    assert fake.max_running == 2
    starts = [target for event, _name, target in fake.log.events if event == "start"]
    assert starts == [f"/p{index}" for index in range(5)]


def test_submit_never_lets_more_than_the_capacity_into_the_mailbox(start, clock):
    """At most max_concurrent + max_queue calls are outstanding; the rest are rejected at
    once without a message, and every place is given back when its call is answered."""
    gate = gevent.event.Event()
    system = start(
        FakeBackend("x", _hang_on(gate, "/h"), clock=clock), max_concurrent=2, max_queue=1
    )
    state = system.states["x"]
    inbox = Inbox()
    outcomes = [system.submit(_call(index, inbox, clock, get("h"))) for index in range(10)]
    assert outcomes[:3] == [None, None, None]
    assert all(reply is not None and reply.outcome is Outcome.REJECTED for reply in outcomes[3:])
    assert system.lookup("x").actor_inbox.qsize() <= 3
    assert state.outstanding == 3
    assert system.counts()["x"]["rejected"] == 7
    gate.set()
    assert [inbox.next().outcome for _ in range(3)] == [Outcome.SUCCESS] * 3
    assert state.outstanding == 0


def test_an_expired_call_is_dropped_and_counted_not_executed(start, clock):
    """A call whose deadline passed before it was handled never reaches the backend."""
    fake = FakeBackend("x", clock=clock)
    system = start(fake)
    inbox = Inbox()
    reply = _ask(system, _call(1, inbox, clock, get("late"), deadline_s=-1), inbox)
    assert reply.outcome is Outcome.TIMEOUT
    assert fake.calls == 0
    assert system.counts()["x"]["expired"] == 1
    assert system.states["x"].outstanding == 0


def test_a_deadline_expiring_mid_call_stops_no_other_actor(start, clock):
    """Regression: a call cut by its deadline (even by a raw gevent.Timeout) kills nothing."""

    def raw_timeout(request: BackendRequest) -> object:
        if request.target() == "/raw":
            raise gevent.Timeout  # a BaseException, the hazard itself
        gevent.event.Event().wait()  # hang until the deadline cuts the call
        return None

    system = start(FakeBackend("x", raw_timeout, clock=clock), FakeBackend("y", clock=clock))
    before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    inbox = Inbox()
    _send(system, _call(1, inbox, clock, get("hang"), deadline_s=0.05))
    _send(system, _call(2, inbox, clock, get("raw")))
    outcomes = {inbox.next().outcome, inbox.next().outcome}
    assert outcomes == {Outcome.TIMEOUT}
    assert {ref.actor_urn for ref in pykka.ActorRegistry.get_all()} == before
    result = run(system, Plan((Step("y", "y", lambda _c: get("y")),), _body))
    assert result.status is RunStatus.OK


# -- breaker ---------------------------------------------------------------------------------


def test_failures_open_the_breaker_and_then_calls_short_circuit(start, clock):
    """After the volume of failures, calls are answered SHORT_CIRCUITED without an attempt."""
    fake = FakeBackend("x", Toggle(), clock=clock)
    system = start(fake, breaker=QUICK_BREAKER, retry=NO_RETRY)
    inbox = Inbox()
    _trip(system, inbox, clock)
    replies = [_ask(system, _call(10 + i, inbox, clock, get("s")), inbox) for i in range(5)]
    assert {reply.outcome for reply in replies} == {Outcome.SHORT_CIRCUITED}
    assert {(reply.attempts, reply.error) for reply in replies} == {(0, "circuit open")}
    assert fake.calls == 4
    counts = system.counts()["x"]
    assert (counts["short_circuited"], counts["failure"], counts["breaker_open"]) == (5, 4, 1)


def test_timeouts_count_as_failures_and_bad_requests_do_not(start, clock):
    """Fifty 404s leave the breaker closed (and say 404); four timeouts open it."""

    def handler(request: BackendRequest) -> object:
        if request.target() == "/missing":
            raise BackendStatusError(404)
        gevent.event.Event().wait()
        return None

    system = start(FakeBackend("x", handler, clock=clock), breaker=QUICK_BREAKER)
    inbox = Inbox()
    for index in range(50):
        reply = _ask(system, _call(index, inbox, clock, get("missing")), inbox)
        # 4xx: never retried; the status travels to the plan, which may map it for devices
        assert (reply.outcome, reply.attempts, reply.status) == (Outcome.FAILURE, 1, 404)
    assert system.breaker_state("x") == CLOSED
    for index in range(4):
        _send(system, _call(100 + index, inbox, clock, get("hang"), deadline_s=0.05))
    assert {inbox.next().outcome for _ in range(4)} == {Outcome.TIMEOUT}
    assert system.breaker_state("x") == OPEN


def test_half_open_lets_one_probe_through_and_its_success_closes_it(start, clock):
    """After the open time one call probes while the others short-circuit; success closes."""
    toggle = Toggle()
    fake = FakeBackend("x", toggle, clock=clock)
    system = start(fake, breaker=QUICK_BREAKER, retry=NO_RETRY)
    inbox = Inbox()
    _trip(system, inbox, clock)
    toggle.failing = False
    toggle.gate = gevent.event.Event()
    clock.advance(5.0)
    _send(system, _call(10, inbox, clock, get("probe")))
    for index in range(3):
        _send(system, _call(20 + index, inbox, clock, get("other")))
    others = [inbox.next() for _ in range(3)]
    assert {(r.outcome, r.call_id >= 20) for r in others} == {(Outcome.SHORT_CIRCUITED, True)}
    assert fake.calls == 5  # four that tripped it, one probe
    toggle.gate.set()
    probe = inbox.next()
    assert (probe.call_id, probe.outcome) == (10, Outcome.SUCCESS)
    assert system.breaker_state("x") == CLOSED
    assert _ask(system, _call(30, inbox, clock, get("after")), inbox).outcome is Outcome.SUCCESS


def test_a_call_queued_when_the_breaker_opens_is_short_circuited_at_its_turn(start, clock):
    """A waiting call re-checks the breaker when it gets a slot, so it never reaches a
    backend that opened while it waited."""
    gate = gevent.event.Event()
    fake = FakeBackend("x", _hang_on(gate, "/first"), clock=clock)
    system = start(fake, max_concurrent=1, max_queue=1)
    inbox = Inbox()
    _send(system, _call(1, inbox, clock, get("first")))
    _send(system, _call(2, inbox, clock, get("second")))
    _handled_so_far(system)
    assert system.states["x"].queued == 1
    system.force_breaker("x", Override.FORCE_OPEN)
    gate.set()
    replies = {reply.call_id: reply for reply in (inbox.next(), inbox.next())}
    assert replies[1].outcome is Outcome.SUCCESS
    assert (replies[2].outcome, fake.calls) == (Outcome.SHORT_CIRCUITED, 1)


def test_a_short_circuited_call_gets_the_last_good_value(start, clock):
    """A last-good step still gets its cached value while the breaker is open."""
    system = start(FakeBackend("x", clock=clock))
    inbox = Inbox()
    first = _ask(system, _call(1, inbox, clock, get("t5"), keep_last_good=True), inbox)
    assert first.outcome is Outcome.SUCCESS
    system.force_breaker("x", Override.FORCE_OPEN)
    reply = _ask(system, _call(2, inbox, clock, get("t5"), keep_last_good=True), inbox)
    assert reply.outcome is Outcome.SHORT_CIRCUITED
    assert (reply.has_last_good, reply.last_good) == (True, first.value)


# -- retries ---------------------------------------------------------------------------------


def test_an_idempotent_call_is_retried_after_a_transient_failure(start, clock):
    """A refused connection then a success: one reply, SUCCESS, two attempts; the breaker
    counted both attempts."""
    fake = FakeBackend("x", Script(BackendConnectionError("refused")), clock=clock)
    system = start(fake)
    inbox = Inbox()
    reply = _ask(system, _call(1, inbox, clock, get("a")), inbox)
    assert (reply.outcome, reply.attempts) == (Outcome.SUCCESS, 2)
    assert fake.calls == 2
    assert system.counts()["x"]["retries"] == 1
    assert system.states["x"].breaker.window() == (2, 1)


def test_a_non_idempotent_call_is_never_retried(start, clock):
    """A POST that fails transiently fails once, for good."""
    fake = FakeBackend("x", Script(BackendConnectionError("refused")), clock=clock)
    system = start(fake)
    inbox = Inbox()
    reply = _ask(system, _call(1, inbox, clock, post("a", body={"n": 1})), inbox)
    assert (reply.outcome, reply.attempts, fake.calls) == (Outcome.FAILURE, 1, 1)


@pytest.mark.parametrize(
    "error",
    [BackendStatusError(429), BackendStatusError(503, retry_after_s=1.0)],
    ids=["429", "503-retry-after"],
)
def test_an_overloaded_reply_is_never_retried(start, clock, error):
    """Retrying into "overloaded" would add load where it hurts most."""
    fake = FakeBackend("x", Script(error), clock=clock)
    system = start(fake)
    inbox = Inbox()
    reply = _ask(system, _call(1, inbox, clock, get("a")), inbox)
    assert (reply.outcome, reply.attempts, fake.calls) == (Outcome.FAILURE, 1, 1)


def test_the_retry_budget_caps_retries_of_a_failing_backend(start, clock):
    """With a floor of 2 and no percentage, 5 failing calls make 7 backend calls, not 15."""
    fake = FakeBackend("x", Script(*[BackendStatusError(503)] * 100), clock=clock)
    retry = RetrySettings(max_attempts=3, budget_percent=0.0, budget_floor=2, backoff_base_ms=0)
    system = start(fake, retry=retry, breaker=BreakerSettings(request_volume=1_000))
    inbox = Inbox()
    replies = [_ask(system, _call(i, inbox, clock, get("a")), inbox) for i in range(5)]
    assert [reply.attempts for reply in replies] == [3, 1, 1, 1, 1]
    assert fake.calls == 7


def test_a_retry_is_not_made_once_the_breaker_opened(start, clock):
    """The failure that opens the breaker is not retried."""
    fake = FakeBackend("x", Toggle(), clock=clock)
    system = start(fake, breaker=QUICK_BREAKER)
    inbox = Inbox()
    attempts = [_ask(system, _call(i, inbox, clock, get("a")), inbox).attempts for i in range(2)]
    # Call 1: 503, retried (breaker closed, 1 of 2 failed), 503 again: now 2 of 2 but under
    # the volume. Call 2: 503 (3 of 3), retried, 503 (4 of 4): the breaker opens.
    assert attempts == [2, 2]
    assert system.breaker_state("x") == OPEN
    assert fake.calls == 4


def test_a_retry_backoff_does_not_hold_the_mailbox(start, clock):
    """While one call waits out its backoff, another call on the same actor is answered; a
    call still backing off when the actor stops is rejected, not lost."""
    fake = FakeBackend("x", Script(BackendConnectionError("refused")), clock=clock)
    system = start(fake, retry=RetrySettings(backoff_base_ms=10_000, backoff_max_ms=10_000))
    state = system.states["x"]
    state.retrier = Retrier(state.retrier.policy, state.retrier.budget, TopOfRange())
    inbox = Inbox()
    _send(system, _call(1, inbox, clock, get("backs-off"), deadline_s=30))
    reply = _ask(system, _call(2, inbox, clock, get("quick")), inbox)
    assert (reply.call_id, reply.outcome) == (2, Outcome.SUCCESS)
    system.stop()
    stopped = inbox.next()
    assert (stopped.call_id, stopped.outcome, stopped.error) == (
        1,
        Outcome.REJECTED,
        "backend stopping",
    )
    assert state.outstanding == 0


class TopOfRange(random.Random):
    """Jitter that always draws the upper bound: the longest backoff."""

    def uniform(self, a: float, b: float) -> float:
        del a
        return b


def test_retry_policy_objects_are_per_backend(start, clock):
    """Each backend gets its own budget and policy from its spec."""
    system = start(FakeBackend("x", clock=clock), retry=RetrySettings(max_attempts=4))
    assert system.states["x"].retrier.policy == RetryPolicy(4, 0.010, 0.200)
    assert isinstance(system.states["x"].retrier.budget, RetryBudget)


def _body(ctx: StepContext) -> object:
    return dict(ctx.results)
