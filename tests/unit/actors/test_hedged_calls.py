"""Hedged reads through RequestSupervisor over live backend actors."""

from __future__ import annotations

from collections.abc import Callable

import gevent.event

from actors.breaker import Override
from actors.plan import Fallback, Plan, RunStatus, Step, StepContext
from actors.supervisor import adaptations
from actors.system import ActorSystem, AdaptiveTotals
from actors.testing import run
from backends.errors import BackendConnectionError
from backends.specs import HedgeSettings, RetrySettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get, post

SystemFactory = Callable[..., ActorSystem]
#: A fixed 20 ms hedge delay: below min_samples the delay is max_ms.
HEDGED = HedgeSettings(enabled=True, min_ms=20, max_ms=20)


def _results(ctx: StepContext) -> dict[str, object]:
    return dict(ctx.results)


class FirstHangs:
    """The first call waits on ``gate``; every later one answers at once, with its number."""

    def __init__(self) -> None:
        self.gate = gevent.event.Event()
        self.first_started = gevent.event.Event()
        self.count = 0

    def __call__(self, _request: BackendRequest) -> object:
        self.count += 1
        number = self.count
        if number == 1:
            self.first_started.set()
            self.gate.wait()
        return {"answer": number}


_READ = get("x")


def _plan(request: BackendRequest = _READ) -> Plan:
    return Plan((Step("s", "slow", lambda _c: request),), _results)


def test_a_slow_read_is_hedged_and_the_twin_wins(make_system: SystemFactory):
    """The first call hangs; the hedge sent after the p95 answers, and the request with it."""
    handler = FirstHangs()
    fake = FakeBackend("slow", handler)
    system = make_system(fake, hedge=HEDGED)
    try:
        result = run(system, _plan())
    finally:
        handler.gate.set()
    assert result.status is RunStatus.OK
    assert result.body == {"s": {"answer": 2}}
    (record,) = result.records
    assert record.hedged
    assert record.attempts == 2
    found = adaptations(system)
    assert found is not None
    assert found.hedgers["slow"].sent == 1
    assert found.hedgers["slow"].won == 1
    (view,) = system.backend_views()
    assert view.adaptive == AdaptiveTotals(hedges_sent_total=1, hedges_won_total=1)


def test_a_fast_read_is_not_hedged(make_system: SystemFactory):
    """An answer before the hedge delay: one backend call, nothing hedged."""
    fake = FakeBackend("slow")
    system = make_system(fake, hedge=HedgeSettings(enabled=True, min_ms=500, max_ms=500))
    result = run(system, _plan())
    assert result.status is RunStatus.OK
    assert fake.calls == 1
    assert not result.records[0].hedged


def test_writes_are_never_hedged(make_system: SystemFactory):
    """A POST is not idempotent: it waits for its one call however slow."""
    handler = FirstHangs()
    fake = FakeBackend("slow", handler)
    system = make_system(fake, hedge=HEDGED)
    plan = _plan(post("x", body={"a": 1}))
    waiter = gevent.spawn(run, system, plan)
    handler.first_started.wait(2.0)
    assert not waiter.ready()
    handler.gate.set()
    result = waiter.get(timeout=2.0)
    assert result.status is RunStatus.OK
    assert fake.calls == 1


def test_no_hedge_while_the_breaker_is_open(make_system: SystemFactory):
    """The breaker opens while the first call runs: its hedge is not sent."""
    handler = FirstHangs()
    fake = FakeBackend("slow", handler)
    system = make_system(fake, hedge=HEDGED)
    plan = Plan((Step("s", "slow", lambda _c: get("x"), fallback=Fallback.static("fb")),), _results)
    waiter = gevent.spawn(run, system, plan, 0.3)
    assert handler.first_started.wait(2.0)
    system.force_breaker("slow", Override.FORCE_OPEN)
    result = waiter.get(timeout=2.0)
    handler.gate.set()
    assert fake.calls == 1
    assert result.body == {"s": "fb"}
    assert not result.records[0].hedged


def test_no_hedge_beyond_the_retry_budget(make_system: SystemFactory):
    """A spent retry budget (0% and no floor) sends no hedge: the slow call is waited for."""
    handler = FirstHangs()
    fake = FakeBackend("slow", handler)
    system = make_system(
        fake, hedge=HEDGED, retry=RetrySettings(budget_percent=0.0, budget_floor=0)
    )
    plan = Plan((Step("s", "slow", lambda _c: get("x"), fallback=Fallback.static("fb")),), _results)
    result = run(system, plan, 0.2)
    handler.gate.set()
    assert fake.calls == 1
    assert result.body == {"s": "fb"}
    assert result.records[0].outcome == "timeout"


def test_no_hedge_past_the_deadline(make_system: SystemFactory):
    """A deadline shorter than the hedge delay: the step times out with no second call."""
    handler = FirstHangs()
    fake = FakeBackend("slow", handler)
    system = make_system(fake, hedge=HedgeSettings(enabled=True, min_ms=400, max_ms=400))
    plan = Plan((Step("s", "slow", lambda _c: get("x"), fallback=Fallback.static("fb")),), _results)
    result = run(system, plan, 0.1)
    handler.gate.set()
    assert fake.calls == 1
    assert result.body == {"s": "fb"}


def test_a_failed_twin_waits_for_the_original(make_system: SystemFactory):
    """The twin fails at once; the original's later success is the answer."""
    gate = gevent.event.Event()
    started = gevent.event.Event()
    count = 0

    def handler(_request: BackendRequest) -> object:
        nonlocal count
        count += 1
        if count == 1:
            started.set()
            gate.wait()
            return {"answer": "original"}
        gate.set()  # the twin lets the original finish, then fails
        raise BackendConnectionError("refused")

    fake = FakeBackend("slow", handler)
    system = make_system(fake, hedge=HEDGED, retry=RetrySettings(max_attempts=1))
    result = run(system, _plan())
    assert result.status is RunStatus.OK
    assert result.body == {"s": {"answer": "original"}}
    assert result.records[0].hedged


def test_off_by_default_no_adaptations(make_system: SystemFactory):
    """Without hedge or collapse settings the system has no adaptations: the plain path."""
    system = make_system(FakeBackend("slow"))
    assert adaptations(system) is None
    assert [view.adaptive for view in system.backend_views()] == [None]
