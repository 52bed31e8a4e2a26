"""Selections drive the plan: Plan.pruned keeps exactly the steps the selected fields need."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from actors.messages import Outcome, Reply
from actors.plan import PRUNED_CACHE_SIZE, Fallback, Plan, PlanRun, RunStatus, Step, StepContext
from backends.simulated import SimulatedBackends
from backends.transport import BackendRequest, get
from orchestrator.apis import FAMILIES
from orchestrator.frontend.protocol.fields import Selection, parse_fields, project
from orchestrator.plans import Endpoint
from orchestrator.schema import Field


def _compose(ctx: StepContext) -> dict[str, Any]:
    return dict(ctx.results)


def _step(name: str, *after: str, feeds: tuple[str, ...] = (), fallback: Fallback | None = None):
    return Step(name, "svc", lambda _c: get(name), after, fallback, frozenset(feeds))


# a -> b -> c (each feeding a part of x); a -> d (feeds y); e declares no feeds: always runs.
PLAN = Plan(
    (
        _step("a", feeds=("x.a",)),
        _step("b", "a", feeds=("x.b",)),
        _step("c", "b", feeds=("x.c",)),
        _step("d", "a", feeds=("y",), fallback=Fallback.static(0)),
        _step("e", feeds=()),
    ),
    _compose,
)


def _names(plan: Plan) -> list[str]:
    return [step.name for step in plan.steps]


def test_no_selection_is_the_whole_plan_itself():
    """Without fields nothing is pruned and no new plan is made."""
    assert PLAN.pruned(None) is PLAN


def test_a_step_feeding_a_selected_field_keeps_its_dependencies_transitively():
    """Selecting x.c keeps c, b (its dependency), a (b's) and e (always); d is pruned."""
    assert _names(PLAN.pruned(parse_fields("x(c)"))) == ["a", "b", "c", "e"]


def test_selecting_a_parent_or_a_child_of_a_fed_field_keeps_the_step():
    """Selecting all of x keeps every x feeder; y.z sits inside d's field y."""
    assert _names(PLAN.pruned(parse_fields("x"))) == ["a", "b", "c", "e"]
    assert _names(PLAN.pruned(parse_fields("y(z)"))) == ["a", "d", "e"]


def test_a_selection_that_needs_no_feeder_keeps_only_steps_that_always_run():
    """A field no step feeds (computed from parameters) needs only the undeclared step."""
    assert _names(PLAN.pruned(parse_fields("z"))) == ["e"]


def test_pruned_plans_are_cached_per_distinct_selection_and_the_cache_is_bounded():
    """Equal selections get the same plan object; old selections fall out of the cache."""
    first = PLAN.pruned(parse_fields("x(c)"))
    assert PLAN.pruned(parse_fields("x( c )")) is first
    for number in range(PRUNED_CACHE_SIZE + 1):
        PLAN.pruned(parse_fields(f"f{number}"))
    assert len(PLAN._pruned) == PRUNED_CACHE_SIZE
    assert PLAN.pruned(parse_fields("x(c)")) is not first


def test_a_pruned_step_is_not_run_and_not_degraded():
    """The run dispatches only kept steps, and compose sees no result for the others."""
    run = PlanRun(PLAN.pruned(parse_fields("y")), {}, None, deadline=10.0)
    dispatched = [record.step.name for _, record, _ in run.take_ready(0.0)]
    assert dispatched == ["a", "e"]
    assert [record.step.name for record in run.records] == ["a", "d", "e"]
    run.resolve(0, Reply(0, "svc", Outcome.SUCCESS, 1))
    run.resolve(2, Reply(2, "svc", Outcome.SUCCESS, 5))
    assert [record.step.name for _, record, _ in run.take_ready(0.0)] == ["d"]
    run.resolve(1, Reply(1, "svc", Outcome.FAILURE, None, "down"))
    result = run.result()
    assert result.status is RunStatus.OK
    assert result.degraded == ("d",)  # d fell back; b and c were never in the run
    assert result.body == {"a": 1, "e": 5, "d": 0}


def test_request_builders_see_the_selection_the_plan_was_pruned_for():
    """StepContext.wants answers from the selection, and True when there is none."""
    selection = parse_fields("x(c)")
    ctx = PlanRun(PLAN.pruned(selection), {}, None, 1.0).context()
    assert ctx.selection == selection
    assert ctx.wants("x.c")
    assert not ctx.wants("y")
    assert PlanRun(PLAN, {}, None, 1.0).context().wants("y")


# -- the real endpoints, against the simulated services in-process -------------------------

_READS = ("plans", "home", "home_v2", "search", "title", "history")
_PARAMS = {
    "plans": {"country": "US"},
    "home": {"rows": 4, "per_row": 5},
    "home_v2": {"rows": 4, "per_row": 5},
    "search": {"q": "heist", "limit": 5},
    "title": {"id": "t42"},
    "history": {"limit": 5},
}


@pytest.fixture(scope="module")
def services() -> SimulatedBackends:
    """The simulated services, called in-process through their WSGI app (no sockets)."""
    return SimulatedBackends(latency_profile="none")


def _endpoint(name: str) -> Endpoint:
    return {e.name: e for family in FAMILIES.values() for e in family()}[name]


def _ask(services: SimulatedBackends, backend: str, request: BackendRequest) -> Any:
    path, _, query = request.target().partition("?")
    payload = b"" if request.body is None else json.dumps(request.body).encode()
    environ = {
        "REQUEST_METHOD": request.method,
        "PATH_INFO": f"/{backend}{path}",
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
    }
    statuses: list[str] = []
    body = b"".join(services.app(environ, lambda status, _headers: statuses.append(status)))
    assert statuses[0].startswith("200"), (backend, request.target(), body)
    return json.loads(body)


def _run(services: SimulatedBackends, plan: Plan, params: dict[str, Any]) -> tuple[Any, Counter]:
    """Drive the pure state machine to the end, answering every call from the services."""
    run = PlanRun(plan, params, "m1", deadline=10.0)
    calls: Counter[str] = Counter()
    while not run.finished:
        ready = run.take_ready(0.0)
        if not ready:
            break
        for index, record, request in ready:
            calls[record.step.backend] += 1
            value = _ask(services, record.step.backend, request)
            run.resolve(index, Reply(index, record.step.backend, Outcome.SUCCESS, value))
    result = run.result()
    assert result.status is RunStatus.OK, result
    return result.body, calls


def _paths(field: Field, prefix: str = "") -> Iterator[str]:
    """Every selectable field as a fields value: rows, rows(id), rows(videos(id)), ..."""
    for child in field.children:
        yield f"{prefix}{child.name}" + ")" * prefix.count("(")
        yield from _paths(child, f"{prefix}{child.name}(")


@pytest.mark.parametrize("name", _READS)
def test_every_single_field_selection_gives_the_same_answer_with_fewer_or_equal_calls(
    services: SimulatedBackends, name: str
):
    """For each field: the pruned plan's body, projected, equals the full plan's projection."""
    endpoint = _endpoint(name)
    full_body, full_calls = _run(services, endpoint.plan, _PARAMS[name])
    for text in _paths(endpoint.fields):
        selection = parse_fields(text, endpoint.fields)
        body, calls = _run(services, endpoint.plan.pruned(selection), _PARAMS[name])
        assert project(body, selection) == project(full_body, selection), text
        assert calls <= full_calls, text


def test_home_without_match_scores_makes_no_ratings_call(services: SimulatedBackends):
    """The issue's example: rows(videos(id,title)) needs no ratings, and the catalog only
    the title (and the rating, which filters what a member may see)."""
    plan = _endpoint("home").plan.pruned(parse_fields("rows(videos(id,title))"))
    assert {step.backend for step in plan.steps} == {"subscriber", "recommendations", "catalog"}
    body, calls = _run(services, plan, _PARAMS["home"])
    assert calls == Counter(subscriber=1, recommendations=1, catalog=1)
    catalog = {step.name: step for step in plan.steps}["catalog"]
    ctx = StepContext(_PARAMS["home"], "m1", {"recommendations": _rows()}, selection=plan.selection)
    request = catalog.request(ctx)
    assert request is not None
    assert dict(request.query)["fields"] == "title,maturity_rating"
    assert all(
        set(video) == {"id", "title", "match"} for r in body["rows"] for video in r["videos"]
    )


def _rows() -> dict[str, Any]:
    return {"rows": [{"id": "r", "kind": "genre", "title": "T", "video_ids": ["t1", "t2"]}]}


def test_search_asking_only_for_ids_makes_no_catalog_call(services: SimulatedBackends):
    """results(id) is answered by the search index alone."""
    plan = _endpoint("search").plan.pruned(parse_fields("results(id)"))
    assert [step.name for step in plan.steps] == ["search"]
    body, calls = _run(services, plan, _PARAMS["search"])
    assert calls == Counter(search=1)
    assert body["results"]
    assert all(set(result) == {"id"} for result in body["results"])


def test_writes_run_every_step_whatever_is_selected():
    """Sign-up and heartbeat declare no feeds: selecting one field never skips a write."""
    for name in ("signup", "heartbeat"):
        endpoint = _endpoint(name)
        first = endpoint.fields.children[0].name
        assert endpoint.plan.pruned(parse_fields(first)).steps == endpoint.plan.steps


def test_every_declared_feed_is_a_field_of_the_endpoint():
    """A feed that names no field would never be selected: a typo that prunes for good."""
    for family in FAMILIES.values():
        for endpoint in family():
            for step in endpoint.plan.steps:
                for feed in step.feeds:
                    node: Field | None = endpoint.fields
                    for name in feed.split("."):
                        node = None if node is None else node.child(name)
                    assert node is not None, (endpoint.name, step.name, feed)


def test_selection_all_is_not_a_pruning():
    """'*' parses to ALL, which the app treats as no selection."""
    assert parse_fields("*") is Selection.ALL
