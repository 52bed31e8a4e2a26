"""RequestSupervisor over live backend actors: ordering, overlap, deadlines, fallbacks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import gevent
import gevent.event

from actors.messages import Call, Reply
from actors.plan import Fallback, Plan, RunStatus, Step, StepContext
from actors.supervisor import LateAnswers, execute_plan
from actors.system import ActorSystem
from actors.testing import run
from backends.testing import EventLog, FakeBackend
from backends.transport import BackendRequest, get

SystemFactory = Callable[..., ActorSystem]


def _results(ctx: StepContext) -> dict[str, object]:
    return dict(ctx.results)


class Rendezvous:
    """Handlers that each wait until ``parties`` calls are in progress at once."""

    def __init__(self, parties: int) -> None:
        self.parties = parties
        self.arrived = 0
        self.all_here = gevent.event.Event()

    def handler(self, request: BackendRequest) -> object:
        self.arrived += 1
        if self.arrived == self.parties:
            self.all_here.set()
        self.all_here.wait()
        return {"path": request.target()}


def _gated(gate: gevent.event.Event, value: object = "ok") -> object:
    def handler(_request: BackendRequest) -> object:
        gate.wait()
        return value

    return handler


def test_diamond_plan_respects_order_and_overlaps_independent_steps(
    make_system: SystemFactory, event_log: EventLog
):
    """a -> (b, c) -> d: b and c both start before either finishes; d starts after both."""
    both = Rendezvous(2)  # b and c can only finish if they overlap
    fakes = [
        FakeBackend("a", log=event_log),
        FakeBackend("b", both.handler, log=event_log),
        FakeBackend("c", both.handler, log=event_log),
        FakeBackend("d", log=event_log),
    ]
    system = make_system(*fakes)
    plan = Plan(
        (
            Step("a", "a", lambda _c: get("a")),
            Step("b", "b", lambda c: get("b", x=c.results["a"]["path"]), after=("a",)),
            Step("c", "c", lambda _c: get("c"), after=("a",)),
            Step("d", "d", lambda _c: get("d"), after=("b", "c")),
        ),
        _results,
    )
    result = run(system, plan)

    assert result.status is RunStatus.OK
    log = event_log
    assert log.index("finish", "a") < log.index("start", "b")
    assert log.index("finish", "a") < log.index("start", "c")
    assert log.index("start", "b") < log.index("finish", "c")
    assert log.index("start", "c") < log.index("finish", "b")
    assert log.index("start", "d") > max(log.index("finish", "b"), log.index("finish", "c"))
    assert result.body["b"] == {"path": "/b?x=%2Fa"}  # built from a's result


def test_a_step_starts_when_its_own_inputs_exist_not_when_a_stage_ends(
    make_system: SystemFactory, event_log: EventLog
):
    """a -> slow and a -> c -> e: e runs while slow is still running (slow waits for e)."""
    slow_gate = gevent.event.Event()

    def e_releases_slow(request: BackendRequest) -> object:
        slow_gate.set()
        return {"path": request.target()}

    fakes = [
        FakeBackend("a", log=event_log),
        FakeBackend("slow", _gated(slow_gate), log=event_log),
        FakeBackend("c", log=event_log),
        FakeBackend("e", e_releases_slow, log=event_log),
    ]
    system = make_system(*fakes)

    plan = Plan(
        (
            Step("a", "a", lambda _c: get("a")),
            Step("slow", "slow", lambda _c: get("slow"), after=("a",)),
            Step("c", "c", lambda _c: get("c"), after=("a",)),
            Step("e", "e", lambda _c: get("e"), after=("c",)),
        ),
        _results,
    )
    result = run(system, plan)
    assert result.status is RunStatus.OK
    assert event_log.index("start", "e") < event_log.index("finish", "slow")
    assert event_log.index("finish", "c") < event_log.index("start", "e")


def test_deadline_resolves_unfinished_optional_steps_to_their_fallbacks(
    make_system: SystemFactory,
):
    """A hanging optional step becomes its fallback at the deadline; the request succeeds."""
    never = gevent.event.Event()
    system = make_system(FakeBackend("fast"), FakeBackend("hang", _gated(never)))
    plan = Plan(
        (
            Step("fast", "fast", lambda _c: get("f")),
            Step("hang", "hang", lambda _c: get("h"), fallback=Fallback.static({"n": 0})),
        ),
        _results,
    )
    result = run(system, plan, deadline_s=0.2)
    assert result.status is RunStatus.OK
    assert result.body["hang"] == {"n": 0}
    assert result.degraded == ("hang",)
    assert result.records[1].outcome == "timeout"


def test_a_required_step_hanging_fails_the_request_as_a_timeout(make_system: SystemFactory):
    """A required step unfinished at the deadline gives a timed-out result naming it."""
    never = gevent.event.Event()
    system = make_system(FakeBackend("hang", _gated(never)))
    plan = Plan((Step("hang", "hang", lambda _c: get("h")),), _results)
    result = run(system, plan, deadline_s=0.1)
    assert (result.status, result.failed_step) == (RunStatus.TIMED_OUT, "hang")


def test_an_unknown_backend_fails_fast_into_the_fallback(make_system: SystemFactory):
    """A step naming a backend with no actor is rejected at once, not at the deadline."""
    system = make_system(FakeBackend("a"))
    plan = Plan(
        (
            Step("a", "a", lambda _c: get("a")),
            Step("x", "nowhere", lambda _c: get("x"), fallback=Fallback.omit()),
        ),
        _results,
    )
    result = run(system, plan, deadline_s=30)
    assert result.status is RunStatus.OK
    assert result.records[1].outcome == "rejected"


def test_a_compose_bug_fails_the_request_without_killing_anything(make_system: SystemFactory):
    """An exception in compose becomes a failed result; the backend actor lives on."""
    system = make_system(FakeBackend("a"))

    def broken(_ctx: StepContext) -> object:
        raise ZeroDivisionError

    result = run(system, Plan((Step("a", "a", lambda _c: get("a")),), broken))
    assert (result.status, result.failed_step) == (RunStatus.FAILED, "compose")
    assert system.lookup("a").is_alive()


class _StuckDirectory:
    """A directory whose ``submit`` holds the supervisor's greenlet until ``release``: the
    supervisor is alive but cannot run, as in a CPU-saturated process."""

    def __init__(self) -> None:
        self.release = gevent.event.Event()

    def submit(self, call: Call) -> Reply | None:
        del call
        self.release.wait()
        return None  # a reply "will come": the supervisor answers at its deadline message


def test_a_late_supervisor_is_overload_a_warning_and_a_count_not_an_error(caplog):
    """Finding 7: a supervisor still alive but unable to answer by its deadline (a saturated
    process) gives a 504 result by deadline + grace, and is logged as a warning with a count,
    at most once per interval; no ERROR, which stays for a supervisor that died."""
    late = LateAnswers(clock=lambda: 100.0, interval_s=10.0)
    plan = Plan((Step("a", "a", lambda _c: get("a")),), _results)
    stuck = [_StuckDirectory(), _StuckDirectory()]
    with caplog.at_level(logging.WARNING, logger="frontdoor.actors.supervisor"):
        results = [
            execute_plan(
                plan,
                directory=directory,
                params={},
                member_id="m1",
                deadline=time.monotonic() + 0.05,
                request_id=f"late-{index}",
                clock=time.monotonic,
                late_answers=late,
            )
            for index, directory in enumerate(stuck)
        ]
    for directory in stuck:
        directory.release.set()  # the supervisors run again, and stop as they were asked
    gevent.idle()
    assert [(r.status, r.failed_step) for r in results] == [(RunStatus.TIMED_OUT, "supervisor")] * 2
    assert (late.late, late.dead) == (2, 0)
    records = [r for r in caplog.records if r.name == "frontdoor.actors.supervisor"]
    assert [r.levelname for r in records] == ["WARNING"]  # the second one is only counted
    assert "late-0" in records[0].getMessage()
    assert "process saturated" in records[0].getMessage()


def test_a_supervisor_dead_without_answering_is_an_error(caplog):
    """The other case: no live supervisor and no answer is a bug, logged as an error."""
    late = LateAnswers()
    with caplog.at_level(logging.WARNING, logger="frontdoor.actors.supervisor"):
        late.record("dead-1", alive=False)
    assert (late.late, late.dead) == (0, 1)
    assert [r.levelname for r in caplog.records] == ["ERROR"]
