"""A plan's result as devices get it: the status and body, or the problem."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from stage_kit import endpoint, request

from actors.outcomes import Outcome
from actors.plan import DeviceError, RunResult, RunStatus, StepRecord
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.deprecation import Deprecations
from orchestrator.frontend.problems import Problem
from orchestrator.frontend.protocol.fields import parse_fields
from orchestrator.frontend.results import Results, upstream_degraded
from orchestrator.schema import body, text

SIGNER = TokenSigner(b"k" * 32, 3600)
THING = endpoint()


def _results(*endpoints) -> Results:
    return Results(SIGNER, Deprecations(endpoints or (THING,)))


def _problem(result: RunResult) -> Problem:
    with pytest.raises(Problem) as caught:
        _results().shape(request(), THING, result, None)
    return caught.value


def _failed_on(outcome: Outcome) -> RunResult:
    (step,) = THING.plan.steps
    record = StepRecord(step, outcome=outcome)
    return RunResult(RunStatus.FAILED, failed_step="thing", records=(record,))


def test_a_body_gets_meta_degraded_and_the_request_learns_it():
    shaped = request()
    result = RunResult(RunStatus.OK, {"name": "x"}, degraded=("ratings",))
    assert _results().shape(shaped, THING, result, None) == (
        200,
        {"name": "x", "meta": {"degraded": ["ratings"]}},
    )
    assert shaped.degraded == ("ratings",)
    assert shaped.extra_headers == []


def test_an_upstream_frontdoors_degraded_parts_are_this_responses_too():
    """The layer's meta is replaced by this one's, its degraded parts merged in once."""
    passed = {"name": "x", "meta": {"degraded": ["bookmark", "ratings", "bookmark", 7]}}
    result = RunResult(RunStatus.OK, passed, degraded=("ratings",))
    _, shaped = _results().shape(request(), THING, result, None)
    assert shaped["meta"] == {"degraded": ["ratings", "bookmark"]}
    assert upstream_degraded(None, ()) == ()
    assert upstream_degraded({"degraded": "x"}, ()) == ()


def test_a_selection_projects_the_body_but_meta_stays():
    wide = endpoint(fields=body(text("name"), text("other")))
    result = RunResult(RunStatus.OK, {"name": "x", "other": "y"})
    selected = parse_fields("name", wide.fields)
    _, shaped = _results(wide).shape(request(), wide, result, selected)
    assert shaped == {"name": "x", "meta": {"degraded": []}}


def test_an_endpoint_that_grants_a_token_gets_one_for_its_member():
    signup = endpoint(grants_member_token=True, success_status=201)
    result = RunResult(RunStatus.OK, {"member_id": "m9"})
    status, shaped = _results(signup).shape(request(), signup, result, None)
    assert status == 201
    assert SIGNER.verify(shaped["token"]).sub == "m9"


def test_a_deprecated_endpoints_response_carries_its_headers():
    old = endpoint(
        deprecated=datetime(2026, 1, 1, tzinfo=UTC),
        successor="/v2/things/thing",
    )
    shaped = request()
    _results(old).shape(shaped, old, RunResult(RunStatus.OK, {}), None)
    assert [name for name, _ in shaped.extra_headers] == ["Deprecation", "Link"]


def test_runs_that_did_not_succeed_are_problems():
    assert _problem(RunResult(RunStatus.TIMED_OUT)).code == "deadline_exceeded"
    refusal = DeviceError("already_exists", "signed up already", "email")
    refused = _problem(RunResult(RunStatus.REJECTED, rejection=refusal))
    assert (refused.status, refused.detail, refused.extras["parameter"]) == (
        409,
        "signed up already",
        "email",
    )
    for step in ("compose", "supervisor"):
        assert _problem(RunResult(RunStatus.FAILED, failed_step=step)).status == 500


def test_retry_after_only_when_frontdoor_itself_refused_the_failed_step():
    for outcome in (Outcome.SHORT_CIRCUITED, Outcome.REJECTED):
        problem = _problem(_failed_on(outcome))
        assert (problem.code, problem.headers.get("Retry-After")) == (
            "dependency_unavailable",
            "1",
        )
    for outcome in (Outcome.FAILURE, Outcome.TIMEOUT):
        assert "Retry-After" not in _problem(_failed_on(outcome)).headers
