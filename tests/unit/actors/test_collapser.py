"""Request collapsing: the window's grouping, the split of a merged reply, and its errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent

from actors.collapser import Collapser, Window, split_value
from actors.messages import Call, Outcome, Reply
from actors.plan import Plan, RunStatus, Step, StepContext
from actors.system import ActorSystem
from actors.testing import run
from backends.specs import CollapseSettings
from backends.testing import FakeBackend
from backends.transport import BackendRequest, get

SETTINGS = CollapseSettings(window_ms=2.0, max_ids=5)


class Inbox:
    """A reply target that keeps what it is told."""

    def __init__(self) -> None:
        self.replies: list[Reply] = []

    def tell(self, message: Any) -> None:
        self.replies.append(message)


class Directory:
    """Keeps the calls submitted; answers none until the test does."""

    def __init__(self, reject: bool = False) -> None:
        self.calls: list[Call] = []
        self.reject = reject

    def submit(self, call: Call) -> Reply | None:
        self.calls.append(call)
        if self.reject:
            return Reply(call.call_id, call.backend, Outcome.REJECTED, error="bulkhead full")
        return None


class Timers:
    """``arm`` for the collapser: windows end when the test says."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def arm(self, _delay_s: float, callback: Callable[[], None]) -> None:
        self.pending.append(callback)

    def fire(self) -> None:
        pending, self.pending = self.pending, []
        for callback in pending:
            callback()


def _call(call_id: int, ids: str, inbox: Inbox, fields: str = "title") -> Call:
    request = get("titles", ids=ids, fields=fields)
    return Call(call_id, "catalog", request, 10.0 + call_id, f"r{call_id}", inbox, 0.0)


def _collapser(directory: Directory) -> tuple[Collapser, Timers]:
    timers = Timers()
    return Collapser(SETTINGS, directory, lambda: 1.0, arm=timers.arm), timers


def _submit(collapser: Collapser, call: Call) -> None:
    found = collapser.collapsible(call)
    assert found is not None
    collapser.submit(call, found)


def _titles(ids: str) -> dict[str, Any]:
    return {"titles": [{"id": item, "title": item.upper()} for item in ids.split(",")]}


def test_requests_differing_only_in_ids_share_a_batch():
    """Same path and fields: one group; other fields or another path: another group."""
    window = Window(SETTINGS)
    a = window.split_ids(get("titles", ids="t1,t2", fields="title"))
    b = window.split_ids(get("titles", ids="t3", fields="title"))
    c = window.split_ids(get("titles", ids="t3", fields="boxart"))
    assert a is not None
    assert b is not None
    assert c is not None
    assert a[0] == b[0] != c[0]
    assert a[1] == ("t1", "t2")
    assert window.split_ids(get("titles", fields="title")) is None
    assert window.split_ids(get("titles", ids="", fields="title")) is None


def test_a_window_sends_one_call_for_the_union_and_splits_the_reply():
    """Two calls in one window: one backend call for t1,t2,t3; each gets only its titles."""
    directory = Directory()
    collapser, timers = _collapser(directory)
    first, second = Inbox(), Inbox()
    _submit(collapser, _call(1, "t1,t2", first))
    _submit(collapser, _call(2, "t2,t3", second))
    assert directory.calls == []
    timers.fire()
    (merged,) = directory.calls
    assert dict(merged.request.query)["ids"] == "t1,t2,t3"
    assert dict(merged.request.query)["fields"] == "title"
    assert merged.deadline == 12.0
    merged.reply_to.tell(Reply(0, "catalog", Outcome.SUCCESS, _titles("t1,t2,t3"), attempts=1))
    assert [r.call_id for r in first.replies] == [1]
    assert [t["id"] for t in first.replies[0].value["titles"]] == ["t1", "t2"]
    assert [t["id"] for t in second.replies[0].value["titles"]] == ["t2", "t3"]
    assert (collapser.calls, collapser.members) == (1, 2)
    assert (collapser.merged, collapser.saved) == (1, 1)


def test_a_call_alone_in_its_window_goes_out_unchanged():
    """Nothing to merge: the member's own call, with its own reply target."""
    directory = Directory()
    collapser, timers = _collapser(directory)
    inbox = Inbox()
    call = _call(1, "t1", inbox)
    _submit(collapser, call)
    timers.fire()
    assert directory.calls == [call]


def test_a_batch_that_would_pass_max_ids_goes_at_once():
    """Five ids fit; a sixth distinct one sends the full batch now and opens another."""
    directory = Directory()
    collapser, timers = _collapser(directory)
    _submit(collapser, _call(1, "t1,t2,t3", Inbox()))
    _submit(collapser, _call(2, "t3,t4,t5", Inbox()))
    assert directory.calls == []
    _submit(collapser, _call(3, "t6", Inbox()))
    assert len(directory.calls) == 1
    assert dict(directory.calls[0].request.query)["ids"] == "t1,t2,t3,t4,t5"
    timers.fire()
    assert len(directory.calls) == 2
    assert dict(directory.calls[1].request.query)["ids"] == "t6"


def test_counts_say_how_many_calls_went_in_and_out():
    """Three calls in one window and one alone in the next: four in, two out, two saved;
    only the first batch was merged."""
    directory = Directory()
    collapser, timers = _collapser(directory)
    for call_id, ids in ((1, "t1"), (2, "t2"), (3, "t1,t3")):
        _submit(collapser, _call(call_id, ids, Inbox()))
    timers.fire()
    _submit(collapser, _call(4, "t4", Inbox()))
    timers.fire()
    assert len(directory.calls) == 2
    assert (collapser.members, collapser.calls, collapser.saved) == (4, 2, 2)
    assert (collapser.merged, collapser.alone) == (1, 1)


def test_a_server_error_reaches_every_member():
    """A 503 for the merged call: the backend failed them all."""
    directory = Directory()
    collapser, timers = _collapser(directory)
    first, second = Inbox(), Inbox()
    _submit(collapser, _call(1, "t1", first))
    _submit(collapser, _call(2, "t2", second))
    timers.fire()
    failure = Reply(0, "catalog", Outcome.FAILURE, error="BackendStatusError", status=503)
    directory.calls[0].reply_to.tell(failure)
    assert [(r.call_id, r.outcome) for r in first.replies] == [(1, Outcome.FAILURE)]
    assert [(r.call_id, r.status) for r in second.replies] == [(2, 503)]


def test_a_refused_batch_is_asked_again_member_by_member():
    """A 400 for the merged call names no id: each member is sent alone, to its own caller."""
    directory = Directory()
    collapser, timers = _collapser(directory)
    first, second = Inbox(), Inbox()
    one, two = _call(1, "t1", first), _call(2, "bad id", second)
    _submit(collapser, one)
    _submit(collapser, two)
    timers.fire()
    refusal = Reply(0, "catalog", Outcome.FAILURE, error="BackendStatusError", status=400)
    directory.calls[0].reply_to.tell(refusal)
    assert directory.calls[1:] == [one, two]
    assert first.replies == second.replies == []
    # The merged call and each member asked again: three calls out for two in.
    assert (collapser.members, collapser.calls, collapser.saved) == (2, 3, -1)


def test_a_rejected_batch_rejects_every_member():
    """The bulkhead refuses the merged call: each member gets the rejection, relabelled."""
    directory = Directory(reject=True)
    collapser, timers = _collapser(directory)
    first, second = Inbox(), Inbox()
    _submit(collapser, _call(1, "t1", first))
    _submit(collapser, _call(2, "t2", second))
    timers.fire()
    assert [(r.call_id, r.outcome) for r in first.replies] == [(1, Outcome.REJECTED)]
    assert [(r.call_id, r.outcome) for r in second.replies] == [(2, Outcome.REJECTED)]


def test_split_keeps_an_unexpected_reply_whole():
    """A reply not shaped as configured goes whole to each member."""
    assert split_value([1, 2], ("t1",), SETTINGS) == [1, 2]
    assert split_value({"other": 1}, ("t1",), SETTINGS) == {"other": 1}


def test_last_good_calls_are_not_collapsed():
    """A call keeping its last good value needs its own request key: not collapsible."""
    collapser, _timers = _collapser(Directory())
    call = _call(1, "t1", Inbox())
    keeping = Call(1, "catalog", call.request, 1.0, "r", Inbox(), 0.0, keep_last_good=True)
    assert collapser.collapsible(call) is not None
    assert collapser.collapsible(keeping) is None


def test_concurrent_requests_through_live_actors_make_one_call(
    make_system: Callable[..., ActorSystem],
):
    """Three requests in one 200 ms window: one backend call, each its own titles."""

    def answer(request: BackendRequest) -> object:
        return _titles(dict(request.query)["ids"])

    fake = FakeBackend("catalog", answer)
    system = make_system(fake, collapse=CollapseSettings(window_ms=200.0))

    def plan_for(ids: str) -> Plan:
        def compose(ctx: StepContext) -> object:
            return [t["id"] for t in ctx.results["c"]["titles"]]

        return Plan((Step("c", "catalog", lambda _c: get("titles", ids=ids)),), compose)

    runs = [gevent.spawn(run, system, plan_for(ids)) for ids in ("t1,t2", "t2", "t3")]
    results = [job.get(timeout=2.0) for job in runs]
    assert [r.status for r in results] == [RunStatus.OK] * 3
    assert [r.body for r in results] == [["t1", "t2"], ["t2"], ["t3"]]
    assert fake.calls == 1
