"""Each fault mode of the simulated services, over real HTTP, through the actor system: what
the request gets, how the breaker moves, what is rejected, short-circuited and falls back,
and that the faulted backend never sees more calls at once than its bulkhead allows."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gevent
import pykka
import pytest
import requests

from actors.breaker import CLOSED, HALF_OPEN, OPEN
from actors.plan import Fallback, Plan, RunResult, RunStatus, Step, StepContext
from actors.system import ActorSystem
from actors.testing import ShiftedClock
from backends.client import BackendClient
from backends.simulated import Fault, SimulatedBackends
from backends.specs import BackendSpec, BreakerSettings, RetrySettings
from backends.transport import BackendRequest, get
from backends.transports import make_transport

pytestmark = pytest.mark.integration

#: Trips after 4 calls at >= 50 % failures; 5 s open (passed with the clock, not waited).
# The window's rule alone (no trip on a run of timeouts): these tests count to its volume.
QUICK_BREAKER = BreakerSettings(
    request_volume=4, error_percent=50.0, open_ms=5_000, consecutive_timeouts=0
)
NO_RETRY = RetrySettings(max_attempts=1)
TIMEOUT_MS = 200
MAX_CONCURRENT = 2
FALLBACK = {"id": "fallback"}


class CountingCaller:
    """A backend client that counts the calls Frontdoor makes, and how many at once."""

    def __init__(self, inner: BackendClient) -> None:
        self.inner = inner
        self.calls = 0
        self.running = 0
        self.max_running = 0

    def call(self, request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        """Pass the call on, counting it while it runs."""
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            return self.inner.call(request, deadline=deadline, request_id=request_id)
        finally:
            self.running -= 1


def _title_step(fallback: Fallback) -> Step:
    return Step("title", "catalog", lambda c: get("titles", c.params["title"]), fallback=fallback)


def _results(ctx: StepContext) -> dict[str, Any]:
    return dict(ctx.results)


#: The faulted backend's step (optional) next to a healthy one (required).
PLAN = Plan(
    (
        _title_step(Fallback.static(FALLBACK)),
        Step("device", "device", lambda _c: get("devices", "ps5")),
    ),
    _results,
)


@dataclass
class Stack:
    """Simulated services on a real port, and an actor system calling them over HTTP."""

    sim: SimulatedBackends
    system: ActorSystem
    clock: ShiftedClock
    clients: list[BackendClient]
    catalog: CountingCaller
    #: New states of the catalog breaker, in order.
    changes: list[str] = field(default_factory=list)

    def request(self, plan: Plan = PLAN, deadline_s: float = 1.0, title: str = "t5") -> RunResult:
        """Run one request's plan and return its result (by its deadline)."""
        return self.system.execute(
            plan,
            params={"title": title},
            member_id=None,
            deadline=self.clock() + deadline_s,
            request_id="fault-test",
        )

    def requests(self, count: int, deadline_s: float = 1.0) -> list[RunResult]:
        """Run ``count`` requests at once."""
        jobs = [gevent.spawn(self.request, PLAN, deadline_s) for _ in range(count)]
        gevent.joinall(jobs, raise_error=True)
        return [job.value for job in jobs]

    def put_fault(self, body: dict[str, object]) -> None:
        """Inject a fault through the simulated services' admin API."""
        reply = requests.put(f"{self.sim.url}/_faults/catalog", json=body, timeout=5)
        assert reply.status_code == 200, reply.text

    def counts(self) -> dict[str, int]:
        """The catalog backend's counters."""
        return dict(self.system.counts()["catalog"])

    def assert_bulkhead_held(self) -> None:
        """The faulted backend never had more calls at once than its bulkhead allows."""
        assert self.catalog.max_running <= MAX_CONCURRENT
        assert self.system.states["catalog"].outstanding == 0


def _title_outcomes(results: list[RunResult]) -> Counter[str]:
    return Counter(result.records[0].outcome for result in results)


def _fell_back(results: list[RunResult]) -> int:
    return sum(1 for result in results if result.degraded == ("title",))


@pytest.fixture
def make_stack() -> Iterator[Any]:
    """Build a Stack whose catalog backend has the given settings; torn down after."""
    stacks: list[Stack] = []

    def factory(retry: RetrySettings = NO_RETRY, breaker: BreakerSettings = QUICK_BREAKER) -> Stack:
        sim = SimulatedBackends(latency_profile="none").start()
        clock = ShiftedClock()
        specs = [
            BackendSpec(
                "catalog",
                f"{sim.url}/catalog",
                timeout_ms=TIMEOUT_MS,
                max_concurrent=MAX_CONCURRENT,
                max_queue=1,
                breaker=breaker,
                retry=retry,
            ),
            BackendSpec("device", f"{sim.url}/device", timeout_ms=1_000),
        ]
        clients = {spec.name: BackendClient(spec, make_transport(spec), clock) for spec in specs}
        catalog = CountingCaller(clients["catalog"])
        changes: list[str] = []

        def breaker_changed(name: str, _before: str, after: str) -> None:
            if name == "catalog":
                changes.append(after)

        system = ActorSystem(
            specs,
            lambda spec: catalog if spec.name == "catalog" else clients[spec.name],
            clock,
            seed=1,
            on_breaker_change=breaker_changed,
        )
        system.start()
        stack = Stack(sim, system, clock, list(clients.values()), catalog, changes)
        stacks.append(stack)
        return stack

    yield factory
    for stack in stacks:
        stack.system.stop()
        stack.sim.stop()
        for client in stack.clients:
            client.close()


def test_hang_times_out_within_the_bulkhead_then_opens_and_heals(make_stack):
    """A hanging backend costs its calls only their timeout, never more than its bulkhead
    at once; the breaker opens, short-circuits, and one probe closes it after healing. The
    healthy backend and every actor live through it (timeout regression over real HTTP)."""
    stack = make_stack()
    actors_before = {ref.actor_urn for ref in pykka.ActorRegistry.get_all()}
    stack.put_fault({"hang": True})

    results = stack.requests(6)
    assert {result.status for result in results} == {RunStatus.OK}
    assert all(result.body["title"] == FALLBACK for result in results)
    assert all(result.body["device"]["device_type"] == "ps5" for result in results)
    # 2 running + 1 queued; the other 3 rejected at submit, before any queue.
    assert _title_outcomes(results) == {"timeout": 3, "rejected": 3}
    for result in results:
        record = result.records[0]
        assert record.finished_at - record.sent_at < 1.0  # never past the deadline
    assert stack.system.breaker_state("catalog") == CLOSED  # 3 failures: under the volume

    fourth = stack.request()
    assert fourth.records[0].outcome == "timeout"
    assert stack.system.breaker_state("catalog") == OPEN
    assert {ref.actor_urn for ref in pykka.ActorRegistry.get_all()} >= actors_before

    started = time.perf_counter()
    open_result = stack.request()
    elapsed_s = time.perf_counter() - started
    assert open_result.records[0].outcome == "short_circuited"
    assert open_result.body["title"] == FALLBACK
    assert elapsed_s < 0.1  # microseconds in fact; generous for a loaded test machine
    calls_while_open = stack.catalog.calls

    stack.sim.heal("catalog")
    stack.clock.advance(5.0)
    healed = stack.request()
    assert healed.degraded == ()
    assert healed.body["title"]["id"] == "t5"
    assert stack.catalog.calls == calls_while_open + 1  # exactly one probe
    assert stack.changes == [OPEN, HALF_OPEN, CLOSED]
    counts = stack.counts()
    assert (counts["timeout"], counts["rejected"], counts["short_circuited"]) == (4, 3, 1)
    assert _fell_back([*results, fourth, open_result]) == 8
    stack.assert_bulkhead_held()


def test_calls_cut_by_a_real_hang_leave_every_actor_alive(make_stack):
    """Regression: the client's total timeout and the request's deadline both cut calls to
    a hanging backend over real sockets; no actor stops, none is restarted, and the other
    backend keeps answering."""
    stack = make_stack()
    refs = {name: stack.system.lookup(name) for name in ("catalog", "device")}
    bystander = pykka.ThreadingActor.start()  # an unrelated actor in the same process
    try:
        stack.sim.set_fault("catalog", Fault(hang=True))
        by_timeout = stack.request(deadline_s=1.0)  # the 200 ms backend timeout fires
        by_deadline = stack.request(deadline_s=0.1)  # the request's deadline fires first
        assert by_timeout.records[0].outcome == "timeout"
        assert by_deadline.records[0].outcome == "timeout"
        assert all(ref.is_alive() for ref in refs.values())
        assert {name: stack.system.lookup(name) for name in refs} == refs
        assert bystander.is_alive()
        assert "crashes" not in stack.counts()
        assert by_deadline.body["device"]["device_type"] == "ps5"
    finally:
        bystander.stop()


def test_slow_below_the_timeout_only_adds_its_delay(make_stack):
    """+50 ms under a 200 ms timeout: every call succeeds, a little later; breaker closed."""
    stack = make_stack()
    stack.sim.set_fault("catalog", Fault(latency_ms=50))
    results = [stack.request() for _ in range(5)]
    assert all(result.degraded == () for result in results)
    durations = [r.records[0].finished_at - r.records[0].started_at for r in results]
    assert min(durations) >= 0.05
    assert stack.changes == []
    stack.assert_bulkhead_held()


def test_slow_above_the_timeout_times_out_and_opens_the_breaker(make_stack):
    """+500 ms over a 200 ms timeout: each call is cut at 200 ms; four of them open it."""
    stack = make_stack()
    stack.sim.set_fault("catalog", Fault(latency_ms=500))
    results = [stack.request() for _ in range(5)]
    assert [result.records[0].outcome for result in results] == ["timeout"] * 4 + [
        "short_circuited"
    ]
    for result in results[:4]:
        record = result.records[0]
        assert 0.2 <= record.finished_at - record.started_at < 0.4
    assert _fell_back(results) == 5
    assert stack.changes == [OPEN]
    stack.assert_bulkhead_held()


def test_error_rate_opens_the_breaker_with_retries_within_the_budget(make_stack):
    """Every call 503s: retries stay within 10 % of calls plus the floor of 3, the breaker
    opens at its volume (20 calls, default settings), then nothing more reaches it."""
    stack = make_stack(retry=RetrySettings(backoff_base_ms=1), breaker=BreakerSettings())
    stack.put_fault({"error_rate": 1.0})
    results = [stack.request() for _ in range(40)]
    assert _fell_back(results) == 40
    assert stack.changes == [OPEN]
    counts = stack.counts()
    retries = counts.get("retries", 0)
    assert 0 < retries <= 3 + 0.1 * 40
    assert stack.catalog.calls == counts["failure"] + retries  # every attempt reached it
    assert stack.catalog.calls <= 40 * 1.1 + 3  # backend load <= device load x (1 + budget)
    assert stack.catalog.calls == 20  # the breaker's volume: then short-circuits only
    assert stack.sim.calls("catalog") == 20
    assert counts["short_circuited"] == 40 - counts["failure"]
    stack.assert_bulkhead_held()


def test_bad_requests_never_trip_the_breaker_nor_are_retried(make_stack):
    """404s (the caller's fault) leave the breaker closed and make one call each."""
    stack = make_stack(retry=RetrySettings())
    results = [stack.request(title="nope") for _ in range(30)]
    assert {result.records[0].outcome for result in results} == {"failure"}
    assert {result.records[0].attempts for result in results} == {1}
    assert stack.system.breaker_state("catalog") == CLOSED
    assert stack.sim.calls("catalog") == 30


def test_connection_refused_fails_fast_counts_and_falls_back(make_stack):
    """A reset connection fails in milliseconds, is retried within the budget, trips the
    breaker, and the step falls back."""
    stack = make_stack(retry=RetrySettings(backoff_base_ms=1))
    stack.sim.set_fault("catalog", Fault(refuse=True))
    results = [stack.request() for _ in range(4)]
    assert _fell_back(results) == 4
    for result in results:
        record = result.records[0]
        assert record.finished_at - record.started_at < 0.1
    assert [result.records[0].outcome for result in results[:2]] == ["failure", "failure"]
    assert results[0].records[0].attempts == 2  # refused is transient: retried once
    assert stack.changes == [OPEN]  # 2 calls x 2 attempts: 4 failures
    assert results[-1].records[0].outcome == "short_circuited"
    stack.assert_bulkhead_held()


def test_a_malformed_reply_is_a_failure_with_the_last_good_value(make_stack):
    """Truncated JSON is never passed on: the step gets the last good value, and the
    failure is not retried (it would be the same) but counts for the breaker."""
    stack = make_stack(retry=RetrySettings())
    plan = Plan((_title_step(Fallback.last_good()),), _results)
    good = stack.request(plan)
    assert good.degraded == ()
    stack.sim.set_fault("catalog", Fault(malformed=True))
    results = [stack.request(plan) for _ in range(5)]
    assert all(result.body["title"] == good.body["title"] for result in results)
    assert all(result.degraded == ("title",) for result in results)
    # The good call and 3 failures are 4 calls at 75 %: open.
    outcomes = [result.records[0].outcome for result in results]
    assert outcomes == ["failure"] * 3 + ["short_circuited"] * 2
    assert {result.records[0].attempts for result in results[:3]} == {1}
    assert stack.changes == [OPEN]
    stack.assert_bulkhead_held()


def test_a_dripping_body_is_cut_at_the_total_timeout(make_stack):
    """One 64-byte chunk every 100 ms would take ~0.7 s; the call ends at its 200 ms budget."""
    stack = make_stack()
    stack.put_fault({"drip_ms": 100})
    result = stack.request()
    record = result.records[0]
    assert (record.outcome, result.body["title"]) == ("timeout", FALLBACK)
    assert 0.2 <= record.finished_at - record.started_at < 0.4
    assert stack.sim.wait_held("catalog", 0)  # the fault did catch the call mid-body
    stack.assert_bulkhead_held()
