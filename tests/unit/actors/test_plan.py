"""PlanRun, the pure state machine behind every request: readiness, fallbacks, failure."""

from __future__ import annotations

import pytest

from actors.messages import Outcome, Reply
from actors.plan import (
    DeviceError,
    Fallback,
    Plan,
    PlanError,
    PlanRun,
    Refused,
    RunStatus,
    Step,
    StepContext,
)
from backends.transport import get


def _compose(ctx: StepContext) -> dict[str, object]:
    return dict(ctx.results)


def _step(name: str, *after: str, fallback: Fallback | None = None) -> Step:
    return Step(name, "svc", lambda _ctx: get(name), after=after, fallback=fallback)


def _ok(index: int, value: object) -> Reply:
    return Reply(index, "svc", Outcome.SUCCESS, value)


def _fail(index: int, outcome: Outcome = Outcome.FAILURE) -> Reply:
    return Reply(index, "svc", outcome, None, "boom")


def test_declaring_a_dependency_after_its_user_is_an_error():
    """Dependencies must be declared first, which also rules out cycles."""
    with pytest.raises(PlanError, match="not declared before"):
        Plan((_step("a", "b"), _step("b")), _compose)


def test_duplicate_step_names_are_an_error():
    """Every step name is unique within a plan."""
    with pytest.raises(PlanError, match="duplicate"):
        Plan((_step("a"), _step("a")), _compose)


def test_a_step_becomes_ready_the_moment_its_last_dependency_resolves():
    """Readiness is per step, not per stage: d waits only for b and c."""
    plan = Plan((_step("a"), _step("b", "a"), _step("c", "a"), _step("d", "b", "c")), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    assert [r.step.name for _, r, _ in run.take_ready(0.0)] == ["a"]
    run.resolve(0, _ok(0, 1))
    assert [r.step.name for _, r, _ in run.take_ready(0.0)] == ["b", "c"]
    run.resolve(1, _ok(1, 2))
    assert run.take_ready(0.0) == []
    run.resolve(2, _ok(2, 3))
    assert [r.step.name for _, r, _ in run.take_ready(0.0)] == ["d"]
    run.resolve(3, _ok(3, 4))
    result = run.result()
    assert result.status is RunStatus.OK
    assert result.body == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert result.degraded == ()


def test_an_optional_failure_falls_back_and_marks_the_response_degraded():
    """A failed step with a static fallback contributes its default and is listed as degraded."""
    plan = Plan((_step("a"), _step("b", fallback=Fallback.static([]))), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, _ok(0, "x"))
    run.resolve(1, _fail(1))
    result = run.result()
    assert result.status is RunStatus.OK
    assert result.body == {"a": "x", "b": []}
    assert result.degraded == ("b",)


def test_a_required_failure_fails_the_run_and_names_the_step():
    """A step without a fallback that fails ends the run at once."""
    plan = Plan((_step("a"), _step("b", "a")), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, _fail(0))
    assert run.finished
    result = run.result()
    assert (result.status, result.failed_step) == (RunStatus.FAILED, "a")


@pytest.mark.parametrize(
    ("error", "finished_at", "status"),
    [
        ("timeout", 0.84, RunStatus.BACKEND_TIMED_OUT),  # the backend's own 800 ms bound
        ("timeout", 1.5, RunStatus.TIMED_OUT),  # its bound was what was left of the deadline
        ("deadline passed", 1.499, RunStatus.TIMED_OUT),  # never sent: the deadline's
    ],
)
def test_a_required_steps_own_timeout_is_told_apart_from_the_deadline(error, finished_at, status):
    """A backend timeout that fired before the request's deadline is the backend's bound."""
    run = PlanRun(Plan((_step("a"),), _compose), {}, None, deadline=1.5)
    run.take_ready(0.0)
    run.resolve(0, Reply(0, "svc", Outcome.TIMEOUT, None, error, 0.04, finished_at, 1))
    result = run.result()
    assert (result.status, result.failed_step) == (status, "a")


def test_expiry_times_out_unfinished_steps_into_fallbacks_or_a_timeout():
    """At the deadline optional steps fall back; a required unfinished step is a timeout."""
    plan = Plan((_step("a", fallback=Fallback.omit()), _step("b")), _compose)
    run = PlanRun(plan, {}, None, deadline=1.0)
    run.take_ready(0.0)
    run.expire(1.0)
    result = run.result()
    assert (result.status, result.failed_step) == (RunStatus.TIMED_OUT, "b")


def test_omitted_dependency_skips_its_dependents_into_their_fallbacks():
    """A step whose input was omitted is not called; it takes its own fallback."""
    plan = Plan(
        (_step("a", fallback=Fallback.omit()), _step("b", "a", fallback=Fallback.static(0))),
        _compose,
    )
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, _fail(0))
    assert run.take_ready(0.0) == []
    result = run.result()
    assert result.body == {"b": 0}
    assert result.degraded == ("a", "b")
    assert result.records[1].outcome == "skipped"


def test_last_good_fallback_uses_the_value_attached_to_the_reply():
    """A last-good fallback serves the cached value the backend actor attached."""
    plan = Plan((_step("a", fallback=Fallback.last_good()),), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, Reply(0, "svc", Outcome.TIMEOUT, None, "t", last_good=[1], has_last_good=True))
    assert run.result().body == {"a": [1]}


def test_a_builder_returning_none_skips_the_step_without_degrading():
    """Nothing to ask means no call and no degradation."""
    plan = Plan((Step("a", "svc", lambda _ctx: None),), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    assert run.take_ready(0.0) == []
    assert run.finished
    assert run.result().degraded == ()


def test_a_builder_that_raises_degrades_only_its_step():
    """A bug in one optional step's builder does not fail the request."""

    def broken(_ctx: StepContext) -> None:
        raise KeyError("oops")

    plan = Plan((Step("a", "svc", broken, fallback=Fallback.omit()), _step("b")), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    assert [r.step.name for _, r, _ in run.take_ready(0.0)] == ["b"]
    run.resolve(1, _ok(1, 2))
    assert run.result().degraded == ("a",)


_TAKEN = DeviceError("already_exists", "The e-mail is taken.", "email")


def test_a_mapped_backend_status_refuses_the_request_despite_a_fallback():
    """A backend status the step maps to a device error ends the run, fallback or not."""
    step = Step(
        "a", "svc", lambda _ctx: get("a"), fallback=Fallback.static({}), device_errors={409: _TAKEN}
    )
    plan = Plan((step, _step("b")), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, Reply(0, "svc", Outcome.FAILURE, None, "BackendStatusError", status=409))
    assert run.finished
    result = run.result()
    assert (result.status, result.failed_step, result.rejection) == (
        RunStatus.REJECTED,
        "a",
        _TAKEN,
    )
    assert result.degraded == ()


def test_an_unmapped_backend_status_still_falls_back():
    """Only the mapped statuses refuse; a 500 from the same step falls back as usual."""
    step = Step(
        "a", "svc", lambda _ctx: get("a"), fallback=Fallback.static({}), device_errors={409: _TAKEN}
    )
    run = PlanRun(Plan((step,), _compose), {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, Reply(0, "svc", Outcome.FAILURE, None, "BackendStatusError", status=500))
    result = run.result()
    assert (result.status, result.degraded, result.rejection) == (RunStatus.OK, ("a",), None)


def test_a_builder_refusing_ends_the_run_with_its_device_error():
    """A builder that finds the device's request wrong raises Refused: nothing is sent."""

    def refuse(_ctx: StepContext) -> None:
        raise Refused(_TAKEN)

    plan = Plan((_step("a"), Step("b", "svc", refuse, after=("a",)), _step("c", "b")), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, _ok(0, 1))
    assert run.take_ready(0.0) == []
    result = run.result()
    assert (result.status, result.failed_step, result.rejection) == (
        RunStatus.REJECTED,
        "b",
        _TAKEN,
    )


def test_late_and_duplicate_replies_are_ignored():
    """A reply for a step that is not running changes nothing."""
    plan = Plan((_step("a"),), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0)
    run.take_ready(0.0)
    run.resolve(0, _ok(0, 1))
    run.resolve(0, _fail(0))
    run.resolve(7, _fail(7))
    assert run.result().body == {"a": 1}


def test_a_memo_is_derived_once_per_run_and_shared_by_every_context():
    """Builders and compose of one run share a derived value; a new run derives afresh."""
    derived: list[object] = []

    def derive(ctx: StepContext) -> list[object]:
        derived.append(ctx.results["a"])
        return [ctx.results["a"]]

    def use(ctx: StepContext) -> object:
        return get("b", n=len(ctx.memo(derive)))

    plan = Plan((_step("a"), Step("b", "svc", use, after=("a",))), lambda ctx: ctx.memo(derive))
    for value in (1, 2):
        run = PlanRun(plan, {}, None, deadline=10.0)
        run.take_ready(0.0)
        run.resolve(0, _ok(0, value))
        run.take_ready(0.0)
        run.resolve(1, _ok(1, None))
        assert run.result().body == [value]
    assert derived == [1, 2]


def test_a_memo_that_raises_is_not_remembered():
    """A derivation that fails (its input is missing) is tried again next time."""
    ctx = PlanRun(Plan((_step("a"),), _compose), {}, None, deadline=10.0).context()

    def derive(context: StepContext) -> object:
        return context.results["a"]

    with pytest.raises(KeyError):
        ctx.memo(derive)
    assert derive not in ctx.memos


def test_a_preset_step_is_resolved_without_a_call_and_feeds_its_dependents():
    """A result the caller already has is not fetched again; what needs it starts at once."""
    plan = Plan((_step("a"), _step("b"), _step("c", "a", "b")), _compose)
    run = PlanRun(plan, {}, None, deadline=10.0, presets={"a": {"known": True}})
    assert [r.step.name for _, r, _ in run.take_ready(0.0)] == ["b"]
    run.resolve(1, _ok(1, 2))
    assert [r.step.name for _, r, _ in run.take_ready(0.0)] == ["c"]
    run.resolve(2, _ok(2, 3))
    result = run.result()
    assert result.body == {"a": {"known": True}, "b": 2, "c": 3}
    assert [r.outcome for r in result.records] == ["preset", "success", "success"]
    assert result.degraded == ()
