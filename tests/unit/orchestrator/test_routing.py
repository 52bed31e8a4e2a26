"""The routing stage: the endpoint of a method and path, or the problem that says why not."""

from __future__ import annotations

import pytest
from stage_kit import endpoint, request

from orchestrator.frontend.problems import Problem
from orchestrator.frontend.routing import Router
from orchestrator.plans import EndpointRegistry, Param, Source


def _router() -> Router:
    one = endpoint(
        name="one",
        path="/v1/things/{id}",
        params=(Param("id", source=Source.PATH, max_length=8),),
    )
    return Router(EndpointRegistry((endpoint(), endpoint(name="make", method="POST"), one)))


def test_a_route_sets_the_requests_endpoint_and_gives_path_parameters():
    routed = request(path="/v1/things/t42")
    found, path_params = _router().route(routed)
    assert (found.name, dict(path_params)) == ("one", {"id": "t42"})
    assert routed.endpoint is found


def test_an_unknown_path_is_404_and_another_method_405_with_the_allowed_ones():
    with pytest.raises(Problem) as missing:
        _router().route(request(path="/v1/nothing"))
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    deleted = request(method="DELETE")
    with pytest.raises(Problem) as wrong:
        _router().route(deleted)
    assert (wrong.value.status, wrong.value.headers["Allow"]) == (405, "GET, POST")
    assert deleted.endpoint is None
