"""The batch protocol: which mistakes fail the batch, which fail one call, and the envelope."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.frontend import problems
from orchestrator.frontend.problems import Problem
from orchestrator.frontend.protocol.batch import (
    MAX_CALLS,
    BatchCall,
    answer,
    envelope,
    failure,
    parse_batch,
)


def _one(**call: Any) -> BatchCall:
    (parsed,) = parse_batch({"requests": [{"id": "a", "path": "/v1/x", **call}]})
    return parsed


def _batch_problem(body: dict[str, Any], max_calls: int = MAX_CALLS) -> str:
    with pytest.raises(Problem) as caught:
        parse_batch(body, max_calls)
    assert caught.value.code == "invalid_batch"
    assert caught.value.status == 400
    return caught.value.detail


def test_calls_are_parsed_in_order_with_method_path_query_and_body():
    """Query values become strings (lists repeat a name); the path's own query is merged."""
    calls = parse_batch(
        {
            "requests": [
                {
                    "id": "home",
                    "method": "GET",
                    "path": "/v1/discovery/home?rows=2",
                    "query": {"per_row": 3, "fields": "rows(id)", "flag": True, "x": ["1", 2]},
                },
                {"id": "play", "method": "POST", "path": "/v1/playback/play", "body": {"a": 1}},
            ]
        }
    )
    home, play = calls
    assert (home.id, home.method, home.path, home.body, home.problem) == (
        "home",
        "GET",
        "/v1/discovery/home",
        None,
        None,
    )
    assert home.query == {
        "rows": ["2"],
        "per_row": ["3"],
        "fields": ["rows(id)"],
        "flag": ["true"],
        "x": ["1", "2"],
    }
    assert (play.method, play.body) == ("POST", {"a": 1})


def test_the_method_defaults_to_get():
    """A call without a method is a GET."""
    assert _one().method == "GET"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({}, "non-empty list"),
        ({"requests": []}, "non-empty list"),
        ({"requests": {"id": "a"}}, "non-empty list"),
        ({"requests": [{"id": "a", "path": "/"}], "extra": 1}, "unknown member 'extra'"),
        ({"requests": ["GET /v1/x"]}, "call 0 is not an object"),
        ({"requests": [{"path": "/v1/x"}]}, "'id' must be"),
        ({"requests": [{"id": "bad id", "path": "/v1/x"}]}, "'id' must be"),
        ({"requests": [{"id": "a", "path": "/"}, {"id": "a", "path": "/"}]}, "used twice"),
    ],
)
def test_a_batch_that_is_not_shaped_right_fails_as_a_whole(body: dict[str, Any], reason: str):
    """Without a well-formed list of identified calls there is nothing to answer call by call."""
    assert reason in _batch_problem(body)


def test_more_calls_than_the_cap_fail_the_batch():
    """The cap is checked before any call is looked at."""
    calls = [{"id": f"c{n}", "path": "/v1/x"} for n in range(4)]
    assert "at most 3 calls" in _batch_problem({"requests": calls}, max_calls=3)


@pytest.mark.parametrize(
    ("call", "code", "reason"),
    [
        ({"path": "/v1/batch"}, "invalid_batch", "may not contain a batch"),
        ({"path": "/v1/batch?x=1"}, "invalid_batch", "may not contain a batch"),
        ({"path": "v1/x"}, "invalid_batch", "absolute path"),
        ({"method": "get"}, "invalid_batch", "upper-case"),
        ({"query": ["rows"]}, "invalid_batch", "'query' must be an object"),
        ({"query": {"rows": 1.5}}, "invalid_parameter", "string, integer or boolean"),
        ({"query": {"rows": {"n": 1}}}, "invalid_parameter", "string, integer or boolean"),
        ({"body": [1]}, "invalid_batch", "'body' must be a JSON object"),
        ({"headers": {}}, "invalid_batch", "unknown member 'headers'"),
    ],
)
def test_a_wrong_call_is_that_calls_problem_only(call: dict[str, Any], code: str, reason: str):
    """The call carries its problem; the batch itself still parses."""
    parsed = _one(**call)
    assert parsed.problem is not None
    assert parsed.problem.code == code
    assert reason in parsed.problem.detail


def test_the_envelope_keeps_order_and_counts_failures():
    """Successes carry a body (and headers when any), failures a problem body."""
    replies = [
        answer("a", 200, {"x": 1}, {}),
        answer("b", 200, {}, {"Deprecation": "@1"}),
        failure("c", problems.not_found("/v1/nope"), "req.2"),
    ]
    assert envelope(replies) == {
        "responses": [
            {"id": "a", "status": 200, "body": {"x": 1}},
            {"id": "b", "status": 200, "body": {}, "headers": {"Deprecation": "@1"}},
            {
                "id": "c",
                "status": 404,
                "problem": {
                    "type": "https://frontdoor.example/problems/not_found",
                    "title": "Not found",
                    "status": 404,
                    "detail": "No endpoint at /v1/nope.",
                    "code": "not_found",
                    "request_id": "req.2",
                },
            },
        ],
        "meta": {"calls": 3, "failed": 1},
    }
