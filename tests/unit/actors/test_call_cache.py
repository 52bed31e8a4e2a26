"""SharedCalls: identical reads in one scope reach the backend once; every call is answered."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Callable

import gevent
import gevent.event
import gevent.queue

from actors.call_cache import SharedCalls
from actors.messages import Call, Outcome, Reply
from actors.plan import Plan, RunStatus, Step, StepContext
from actors.supervisor import execute_plan
from actors.system import ActorSystem
from backends.errors import BackendStatusError
from backends.specs import RetrySettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get, post


class Inbox:
    """A reply target that queues what it is told."""

    def __init__(self) -> None:
        self.queue: gevent.queue.Queue = gevent.queue.Queue()

    def tell(self, message: Reply) -> None:
        self.queue.put(message)

    def next(self) -> Reply:
        return self.queue.get(timeout=2)


SystemFactory = Callable[..., ActorSystem]


def _call(call_id: int, inbox: Inbox, request: BackendRequest | None = None) -> Call:
    request = get("titles", "t1") if request is None else request
    return Call(call_id, "x", request, time.monotonic() + 5, "req", inbox, 0.0)


def test_identical_reads_in_flight_together_are_made_once(make_system: SystemFactory):
    """The second identical GET waits for the first; each caller gets its own call_id."""
    gate = gevent.event.Event()
    fake = FakeBackend("x", lambda _r: gate.wait() and {"ok": 1})
    scope = SharedCalls(make_system(fake))
    first, second = Inbox(), Inbox()
    assert scope.submit(_call(3, first)) is None
    assert scope.submit(_call(7, second)) is None
    gate.set()
    assert (first.next().call_id, second.next().call_id) == (3, 7)
    assert fake.calls == 1
    assert (scope.made, scope.shared) == (1, 1)


def test_a_later_identical_read_gets_the_kept_reply_at_once(make_system: SystemFactory):
    """After a success, the same read is answered from the scope without a call."""
    fake = FakeBackend("x")
    scope = SharedCalls(make_system(fake))
    inbox = Inbox()
    scope.submit(_call(1, inbox))
    first = inbox.next()
    scope.submit(_call(2, inbox))
    again = inbox.next()
    assert (again.call_id, again.value, again.outcome) == (2, first.value, Outcome.SUCCESS)
    assert fake.calls == 1


def test_writes_and_different_reads_are_never_shared(make_system: SystemFactory):
    """Two identical POSTs are two actions; a GET with another query is another read."""
    fake = FakeBackend("x")
    scope = SharedCalls(make_system(fake))
    inbox = Inbox()
    for call_id in (1, 2):
        scope.submit(_call(call_id, inbox, post("licenses", body={"t": 1})))
    scope.submit(_call(3, inbox, get("titles", "t1")))
    scope.submit(_call(4, inbox, get("titles", "t2")))
    assert sorted(inbox.next().call_id for _ in range(4)) == [1, 2, 3, 4]
    assert fake.calls == 4


def test_a_failure_is_passed_on_but_not_kept(make_system: SystemFactory):
    """A failed read answers its waiters; the next identical read tries the backend again."""
    outcomes = iter([BackendStatusError(503), {"ok": 1}])

    def handler(_request: BackendRequest) -> object:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    fake = FakeBackend("x", handler)
    scope = SharedCalls(make_system(fake, retry=RetrySettings(max_attempts=1)))
    inbox = Inbox()
    scope.submit(_call(1, inbox))
    assert inbox.next().outcome is Outcome.FAILURE
    scope.submit(_call(2, inbox))
    assert inbox.next().outcome is Outcome.SUCCESS
    assert fake.calls == 2


def test_a_rejection_comes_back_at_once_with_the_callers_id(make_system: SystemFactory):
    """An unknown backend rejects now; nothing is kept for the next caller to wait on."""
    scope = SharedCalls(make_system(FakeBackend("x")))
    call = Call(9, "nowhere", get("a"), time.monotonic() + 5, "req", Inbox(), 0.0)
    rejection = scope.submit(call)
    assert rejection is not None
    assert (rejection.call_id, rejection.outcome) == (9, Outcome.REJECTED)
    assert scope.submit(call) is not None


def _both(ctx: StepContext) -> dict[str, object]:
    return dict(ctx.results)


def _run(scope: SharedCalls, plan: Plan) -> object:
    result = execute_plan(
        plan,
        directory=scope,
        params={},
        member_id="m1",
        deadline=time.monotonic() + 2,
        request_id="req",
        clock=time.monotonic,
    )
    assert result.status is RunStatus.OK
    return result.body


def test_identical_steps_of_one_request_make_one_call(make_system: SystemFactory):
    """Two steps of one plan asking the same read share it, and both get the value."""
    fake = FakeBackend("x")
    scope = SharedCalls(make_system(fake))
    same = get("members", "m1")
    plan = Plan((Step("a", "x", lambda _c: same), Step("b", "x", lambda _c: same)), _both)
    body = _run(scope, plan)
    assert body == {"a": {"path": "/members/m1", "body": None}, "b": body["a"]}  # type: ignore[index]
    assert fake.calls == 1


def test_plans_running_together_in_one_scope_share_their_reads(make_system: SystemFactory):
    """A batch's calls share a scope: their identical reads reach the backend once."""
    gate = gevent.event.Event()
    fake = FakeBackend("x", lambda r: gate.wait() and r.target())
    scope = SharedCalls(make_system(fake))
    plan = Plan((Step("a", "x", lambda _c: get("members", "m1")),), _both)
    runs = [gevent.spawn(_run, scope, plan) for _ in range(3)]
    gevent.idle()
    gate.set()
    gevent.joinall(runs, raise_error=True)
    assert [run.value for run in runs] == [{"a": "/members/m1"}] * 3
    assert fake.calls == 1


class _Recording:
    """A directory that takes every call and answers none (the test answers)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def submit(self, call: Call) -> Reply | None:
        self.calls.append(call)
        return None


def test_a_scope_is_freed_by_reference_counting_alone():
    """No reference cycle: a finished scope and its kept replies (decoded JSON trees) go
    the moment the request drops them, not at the next full garbage collection."""
    gc.collect()
    gc.disable()
    try:
        directory, inbox = _Recording(), Inbox()
        scope = SharedCalls(directory)
        assert scope.submit(_call(1, inbox)) is None
        directory.calls[0].reply_to.tell(Reply(0, "x", Outcome.SUCCESS, {"rows": [[1], [2]]}))
        assert inbox.next().call_id == 1
        freed = weakref.ref(scope)
        del scope, directory
        assert freed() is None
    finally:
        gc.enable()
