"""BackendActor with an adaptive concurrency limit (``limit.adaptive``): admission through
the limit for new, dequeued and retried calls, each attempt's token ended by what it says
about load, and nothing held after a stop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import gevent.event
import gevent.queue
import pytest

from actors.backend import limiter_settings
from actors.limiter import AdaptiveLimit, Limiter, LimiterSettings
from actors.messages import Call, Outcome, Reply
from actors.plan import Fallback, Plan, Step
from actors.system import ActorSystem
from actors.testing import Inbox, ShiftedClock, run, system_over
from backends.errors import (
    BackendConnectionError,
    BackendError,
    BackendStatusError,
    BackendTimeoutError,
)
from backends.specs import LimitSettings, RetrySettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get

#: A limit of exactly two, whatever the calls say.
TWO = LimitSettings(adaptive=True, initial_limit=2, min_limit=2, max_limit=2)
NO_RETRY = RetrySettings(max_attempts=1)


class ScriptedLimit(AdaptiveLimit):
    """An algorithm whose limit the test sets; it records every sample it is fed."""

    __slots__ = ("samples", "value")

    def __init__(self, value: int) -> None:
        super().__init__(LimiterSettings(initial_limit=1, min_limit=1, max_limit=1))
        self.value = value
        #: ``dropped`` per sample, in order.
        self.samples: list[bool] = []

    @property
    def limit(self) -> int:
        """What the test set."""
        return self.value

    def on_sample(self, start: float, rtt_s: float, inflight: int, dropped: bool) -> int:
        """Record the sample; the limit stays what the test set."""
        del start, rtt_s, inflight
        self.samples.append(dropped)
        return self.value


@pytest.fixture
def clock() -> ShiftedClock:
    """Real time (the fakes bound their calls by it)."""
    return ShiftedClock()


@pytest.fixture
def systems() -> Iterator[list[ActorSystem]]:
    """Systems started by a test; stopped after it."""
    started: list[ActorSystem] = []
    yield started
    for system in started:
        system.stop()


def _start(
    systems: list[ActorSystem],
    clock: ShiftedClock,
    fake: FakeBackend,
    scripted: ScriptedLimit | None = None,
    **spec_fields: Any,
) -> ActorSystem:
    spec_fields.setdefault("limit", TWO)
    system = system_over([fake], clock=clock, **spec_fields)
    if scripted is not None:
        system.states[fake.name].limiter = Limiter(algorithm=scripted)
    system.start()
    systems.append(system)
    return system


def _call(call_id: int, inbox: Inbox, clock: ShiftedClock, request: BackendRequest) -> Call:
    now = clock()
    return Call(call_id, "x", request, now + 5.0, "req", inbox, now)


class Started:
    """The paths of calls that reached the backend, in order; ``wait`` for the first n."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self._queue: gevent.queue.Queue[str] = gevent.queue.Queue()

    def add(self, path: str) -> None:
        """A call reached the backend."""
        self.paths.append(path)
        self._queue.put(path)

    def wait(self, count: int) -> None:
        """Return once ``count`` more calls have reached the backend (2 s at most)."""
        for _ in range(count):
            self._queue.get(timeout=2)


def _hang_on(gate: gevent.event.Event, started: Started) -> Any:
    def handler(request: BackendRequest) -> object:
        started.add(request.target())
        gate.wait()
        return {"path": request.target()}

    return handler


def _limiter(system: ActorSystem) -> Limiter:
    limiter = system.states["x"].limiter
    assert limiter is not None
    return limiter


def test_the_limit_is_off_unless_asked_for(systems, clock):
    """By default a backend has no limiter: nothing is acquired, the admin view says None."""
    system = _start(systems, clock, FakeBackend("x", clock=clock), limit=LimitSettings())
    assert system.states["x"].limiter is None
    assert [view.limit for view in system.backend_views()] == [None]


def test_the_bulkhead_caps_every_bound_of_the_limit():
    """``max_concurrent`` stays the hard cap: the limit's bounds are cut to it."""
    settings = limiter_settings(LimitSettings(adaptive=True, min_limit=5), max_concurrent=3)
    assert (settings.min_limit, settings.initial_limit, settings.max_limit) == (3, 3, 3)
    roomy = limiter_settings(LimitSettings(adaptive=True, noload_window_ms=5_000), 50)
    assert (roomy.min_limit, roomy.initial_limit, roomy.max_limit) == (2, 20, 50)
    assert roomy.noload_window_s == 5.0


def test_calls_beyond_the_limit_are_rejected_at_once_and_fall_back(systems, clock):
    """Two calls hang at a limit of two (bulkhead of four): the third is rejected at once
    ("concurrency limit") into its step's fallback, as a full bulkhead's would be; once the
    two answer, a call runs again."""
    gate, started = gevent.event.Event(), Started()
    fake = FakeBackend("x", _hang_on(gate, started), clock=clock)
    system = _start(systems, clock, fake, max_concurrent=4, max_queue=0)
    inbox = Inbox()
    for index in range(2):
        assert system.submit(_call(index, inbox, clock, get(f"slow{index}"))) is None
    started.wait(2)
    assert _limiter(system).inflight == 2

    assert system.submit(_call(2, inbox, clock, get("third"))) is None
    refused = inbox.next()
    assert (refused.call_id, refused.outcome, refused.error) == (
        2,
        Outcome.REJECTED,
        "concurrency limit",
    )
    plan = Plan(
        (Step("s", "x", lambda _c: get("other"), fallback=Fallback.static("default")),),
        lambda c: c.results["s"],
    )
    result = run(system, plan, deadline_s=30)  # a rejection must not wait for the deadline
    assert (result.body, result.records[0].outcome) == ("default", "rejected")
    assert fake.calls == 2

    gate.set()
    assert sorted(inbox.next().call_id for _ in range(2)) == [0, 1]
    assert _limiter(system).inflight == 0
    assert system.submit(_call(3, inbox, clock, get("again"))) is None
    assert inbox.next().outcome is Outcome.SUCCESS
    assert system.states["x"].outstanding == 0
    assert system.counts()["x"]["rejected"] == 2


@pytest.mark.parametrize(
    ("error", "samples"),
    [
        pytest.param(None, [False], id="success-is-a-latency-sample"),
        pytest.param(BackendStatusError(503), [True], id="503-is-a-drop"),
        pytest.param(BackendStatusError(429), [True], id="429-is-a-drop"),
        pytest.param(BackendTimeoutError("late"), [True], id="own-timeout-is-a-drop"),
        pytest.param(BackendConnectionError("refused"), [True], id="unreachable-is-a-drop"),
        pytest.param(BackendStatusError(404), [], id="a-bad-request-says-nothing"),
        pytest.param(BackendStatusError(500), [], id="a-500-says-nothing-about-load"),
    ],
)
def test_each_attempt_ends_its_token_by_what_it_says_about_load(
    systems, clock, error: BackendError | None, samples
):
    """Success feeds a latency sample; a timeout, 503, 429 or refused connection a drop;
    anything else nothing; and the call's token is always given back."""

    def handler(request: BackendRequest) -> object:
        if error is not None:
            raise error
        return {}

    scripted = ScriptedLimit(2)
    system = _start(
        systems, clock, FakeBackend("x", handler, clock=clock), scripted, retry=NO_RETRY
    )
    inbox = Inbox()
    assert system.submit(_call(1, inbox, clock, get("p"))) is None
    reply: Reply = inbox.next()
    assert reply.outcome.ok is (error is None)
    assert (scripted.samples, _limiter(system).inflight) == (samples, 0)


def test_a_retry_takes_a_token_of_its_own_and_none_when_the_limit_is_full(systems, clock):
    """A retried call ends its first attempt's token (a drop) before the retry asks for
    another; when the drop leaves the limit no room, the call fails as it is, without a
    retry; and with no room at all the next call is refused before its first attempt."""
    errors = [BackendStatusError(503)] * 3

    def handler(request: BackendRequest) -> object:
        if errors:
            raise errors.pop(0)
        return {}

    scripted = ScriptedLimit(2)
    retry = RetrySettings(max_attempts=2, backoff_base_ms=0, backoff_max_ms=0)
    fake = FakeBackend("x", handler, clock=clock)
    system = _start(systems, clock, fake, scripted, retry=retry)
    inbox = Inbox()
    assert system.submit(_call(1, inbox, clock, get("p"))) is None
    reply = inbox.next()
    assert (reply.outcome, reply.attempts, scripted.samples) == (Outcome.FAILURE, 2, [True, True])

    scripted.value = 0  # the next sample leaves no room
    assert system.submit(_call(2, inbox, clock, get("p"))) is None
    reply = inbox.next()
    assert (reply.outcome, reply.attempts, fake.calls) == (Outcome.FAILURE, 1, 3)
    assert system.counts()["x"]["retries"] == 1  # the first call's only

    assert system.submit(_call(3, inbox, clock, get("p"))) is None
    reply = inbox.next()
    assert (reply.outcome, reply.error, fake.calls) == (Outcome.REJECTED, "concurrency limit", 3)
    assert _limiter(system).inflight == 0


def test_a_waiting_call_refused_by_a_lowered_limit_passes_its_slot_on(systems, clock):
    """Two calls run and two wait (bulkhead 2 + 2). The limit falls to 1 as the first
    answers: both waiting calls are refused in turn (the slot passes on each time), the
    second running call keeps its place, and the bulkhead ends empty."""
    gates = {"/a": gevent.event.Event(), "/b": gevent.event.Event()}
    started = Started()

    def handler(request: BackendRequest) -> object:
        started.add(request.target())
        gates[request.target()].wait()
        return {}

    scripted = ScriptedLimit(2)
    fake = FakeBackend("x", handler, clock=clock)
    system = _start(systems, clock, fake, scripted, max_concurrent=2, max_queue=2)
    inbox = Inbox()
    for index, path in enumerate(("a", "b", "c", "d")):
        assert system.submit(_call(index, inbox, clock, get(path))) is None
    started.wait(2)
    scripted.value = 1
    gates["/a"].set()
    replies = [inbox.next() for _ in range(3)]
    assert [(r.call_id, r.outcome) for r in replies] == [
        (0, Outcome.SUCCESS),
        (2, Outcome.REJECTED),
        (3, Outcome.REJECTED),
    ]
    assert started.paths == ["/a", "/b"]
    gates["/b"].set()
    assert inbox.next().call_id == 1
    assert _limiter(system).inflight == 0
    assert (system.states["x"].inflight, system.states["x"].queued) == (0, 0)


def test_stopping_ignores_every_token_held(systems, clock):
    """Calls failed by a stop say nothing about load: their tokens are given back unfed."""
    gate, started = gevent.event.Event(), Started()
    scripted = ScriptedLimit(2)
    system = _start(
        systems, clock, FakeBackend("x", _hang_on(gate, started), clock=clock), scripted
    )
    inbox = Inbox()
    for index in range(2):
        assert system.submit(_call(index, inbox, clock, get(f"p{index}"))) is None
    started.wait(2)
    system.stop()
    assert {inbox.next().error for _ in range(2)} == {"backend stopping"}
    assert (_limiter(system).inflight, scripted.samples) == (0, [])
    gate.set()
