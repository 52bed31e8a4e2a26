"""The plan stage: one call's parameters, run and result, and what it counts on the way."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from stage_kit import endpoint, metrics

from actors.call_cache import SharedCalls
from actors.plan import Fallback, Plan, Step
from actors.system import ActorSystem
from actors.testing import system_over
from backends.errors import BackendStatusError
from backends.testing import FakeBackend
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.deprecation import Deprecations
from orchestrator.frontend.plan_stage import PlanStage
from orchestrator.frontend.problems import Problem
from orchestrator.frontend.request import Request, Scope, arrive
from orchestrator.frontend.results import Results
from orchestrator.ops.admin import EndpointWindows
from orchestrator.ops.metrics import CapturingSink
from orchestrator.plans import Endpoint, Param, StepContext, get


class Fallbacks:
    """Keeps the records it is told to count."""

    def __init__(self) -> None:
        self.told: list[tuple[str, bool]] = []

    def record_fallbacks(self, records) -> None:
        self.told.extend((record.step.name, record.degraded) for record in records)


def _answer(request) -> dict[str, str]:
    if request.query and dict(request.query).get("fail") == "1":
        raise BackendStatusError(503, "down")
    return {"name": f"thing {dict(request.query).get('n', '-')}"}


@pytest.fixture
def system() -> Iterator[ActorSystem]:
    started = system_over([FakeBackend("things", _answer)], clock=time.monotonic)
    started.start()
    yield started
    started.stop()


def _thing(fallback: Fallback | None = None) -> Endpoint:
    def build(ctx: StepContext):
        return get("thing", n=ctx.params["n"], fail=int(ctx.params["fail"]))

    def compose(ctx: StepContext):
        return dict(ctx.results["thing"])

    plan = Plan((Step("thing", "things", build, fallback=fallback),), compose)
    params = (Param("n", int, default=0, maximum=9), Param("fail", bool, default=False))
    return endpoint(plan=plan, params=params)


def _stage(thing: Endpoint, fallbacks: Fallbacks | None = None) -> PlanStage:
    results = Results(TokenSigner(b"k" * 32, 3600), Deprecations((thing,)))
    windows = EndpointWindows((thing,))
    return PlanStage(fallbacks or Fallbacks(), windows, results, time.monotonic)


def _scope(system: ActorSystem, budget_s: float = 2.0, **fields) -> Scope:
    deadline = time.monotonic() + budget_s
    return Scope(None, deadline, SharedCalls(system), **{"trace": False, **fields})


def _request(sink: CapturingSink | None = None) -> Request:
    pipeline = None if sink is None else metrics(_thing(), sink=sink).request()
    return Request("rid-1", "GET", "/v1/things/thing", time.monotonic(), metrics=pipeline)


def test_a_call_runs_its_plan_and_counts_what_it_did(system):
    thing, fallbacks, sink = _thing(), Fallbacks(), CapturingSink()
    served = _request(sink)
    status, body = _stage(thing, fallbacks).serve(
        served, _scope(system), thing, {}, {"n": ["7"]}, None
    )
    assert (status, body) == (200, {"name": "thing 7", "meta": {"degraded": []}})
    assert [(record.step.name, record.outcome) for record in served.records] == [
        ("thing", "success")
    ]
    assert served.backend_calls == 1
    assert fallbacks.told == [("thing", False)]
    assert served.planned
    served.metrics.finish(200, 1.0)
    assert sink.counters()["frontdoor.backend.things.success"] == 1


def test_a_fallback_degrades_the_response_and_is_counted(system):
    thing, fallbacks = _thing(Fallback.static({"name": "stand-in"})), Fallbacks()
    served = _request()
    _, body = _stage(thing, fallbacks).serve(
        served, _scope(system), thing, {}, {"fail": ["true"]}, None
    )
    assert body == {"name": "stand-in", "meta": {"degraded": ["thing"]}}
    assert served.degraded == ("thing",)
    assert fallbacks.told == [("thing", True)]


def test_bad_parameters_are_refused_before_any_call(system):
    thing = _thing()
    served = _request()
    with pytest.raises(Problem) as caught:
        _stage(thing).serve(served, _scope(system), thing, {}, {"n": ["99"]}, None)
    assert caught.value.code == "invalid_parameter"
    assert served.records == ()
    assert not served.planned  # so it counts as rejected, not in the endpoint's latency


def test_the_scopes_deadline_bounds_the_run(system):
    """A scope with no time left (a batch's, spent) ends the run at once."""
    thing = _thing()
    with pytest.raises(Problem) as caught:
        _stage(thing).serve(_request(), _scope(system, budget_s=-1.0), thing, {}, {}, None)
    assert caught.value.code == "deadline_exceeded"


def test_a_preset_step_makes_no_call_and_a_trace_is_added_when_asked(system):
    thing = _thing()
    served = _request()
    scope = _scope(system, trace=True, presets={"thing": {"name": "from the edge"}})
    _, body = _stage(thing).serve(served, scope, thing, {}, {}, None)
    assert body["name"] == "from the edge"
    (step,) = body["meta"]["trace"]
    assert (step["step"], step["outcome"]) == ("thing", "preset")
    assert served.backend_calls == 0


class _Recording(FakeBackend):
    """A fake backend that keeps the request id of every call."""

    def __init__(self, name: str) -> None:
        super().__init__(name, _answer)
        self.request_ids: list[str] = []

    def call(self, request, *, deadline: float, request_id: str):
        self.request_ids.append(request_id)
        return super().call(request, deadline=deadline, request_id=request_id)


@pytest.mark.parametrize(("trust", "forwarded"), [(False, False), (True, True)])
def test_backends_get_the_devices_request_id_only_when_trusted(trust, forwarded):
    """Finding 8: a device's X-Request-Id reaches backends only with trust_request_id."""
    recording = _Recording("things")
    started = system_over([recording], clock=time.monotonic)
    started.start()
    try:
        thing = _thing()
        environ = {"HTTP_X_REQUEST_ID": "chosen-by-device", "PATH_INFO": "/v1/things/thing"}
        served = arrive(environ, time.monotonic(), metrics(thing).request(), trust_request_id=trust)
        status, _body = _stage(thing).serve(served, _scope(started), thing, {}, {}, None)
    finally:
        started.stop()
    assert status == 200
    assert served.request_id == "chosen-by-device"
    assert (recording.request_ids == ["chosen-by-device"]) is forwarded
    assert recording.request_ids == [served.backend_request_id]
