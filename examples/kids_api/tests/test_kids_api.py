"""The kids API's own tests: its endpoints through Frontdoor's pipeline, on fake backends.

Run from this directory with Frontdoor and this package installed::

    python -m gevent.monkey --module pytest tests
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.testkit import BackendRefused, BackendUnavailable, PackageHarness

SHOWS = [
    {"id": "s1", "title": "Moss and Pebble", "min_age": 3, "genres": ["animals"]},
    {"id": "s2", "title": "Night Rangers", "min_age": 10, "genres": ["adventure"]},
]


def controls(request: Any) -> dict[str, Any]:
    assert request.path_segments == ("controls", "m7")
    return {"max_age": 12}


def catalog(request: Any) -> dict[str, Any]:
    if request.path_segments == ("shows",):
        limit = int(dict(request.query)["limit"])
        return {"shows": SHOWS[:limit]}
    show = next((s for s in SHOWS if s["id"] == request.path_segments[1]), None)
    if show is None:
        raise BackendRefused(404)
    return {**show, "synopsis": "A short synopsis."}


@pytest.fixture
def kit():
    with PackageHarness(["kids_api"], {"parental": controls, "kids_catalog": catalog}) as harness:
        yield harness


def test_shows_within_the_members_controls(kit):
    """The controls step runs first; the catalogue is asked for shows up to their age."""
    reply = kit.get("/v1/kids/shows", member="m7", query={"limit": "5"})
    assert reply.status == 200
    assert reply.json["max_age"] == 12
    assert [show["id"] for show in reply.json["shows"]] == ["s1", "s2"]
    assert [backend for backend, _ in kit.calls] == ["parental", "kids_catalog"]
    assert dict(kit.calls[1][1].query)["max_age"] == "12"


def test_without_controls_the_list_is_the_youngest_and_marked_degraded():
    """The parental service is down: the strictest limit applies and the reply says so."""

    def down(_request: Any) -> Any:
        raise BackendUnavailable

    with PackageHarness(["kids_api"], {"parental": down, "kids_catalog": catalog}) as kit:
        reply = kit.get("/v1/kids/shows", member="m7")
    assert reply.status == 200
    assert reply.json["max_age"] == 3
    assert [show["id"] for show in reply.json["shows"]] == ["s1"]
    assert "controls" in reply.json["meta"]["degraded"]


def test_the_list_needs_a_member(kit):
    """No token: a 401 problem, and no backend is called."""
    reply = kit.get("/v1/kids/shows")
    assert reply.status == 401
    assert reply.json["code"] == "unauthorized"
    assert kit.calls == []


def test_fields_prune_the_catalogue_call(kit):
    """Asking only for the age limit skips the catalogue."""
    reply = kit.get("/v1/kids/shows", member="m7", query={"fields": "max_age"})
    assert reply.json["max_age"] == 12
    assert "shows" not in reply.json
    assert [backend for backend, _ in kit.calls] == ["parental"]


def test_an_unknown_show_is_a_404_problem(kit):
    """The catalogue's 404 is the device's not_found, naming the parameter."""
    reply = kit.get("/v1/kids/shows/s99")
    assert reply.status == 404
    assert reply.json["code"] == "not_found"


def test_a_bad_limit_is_refused_before_any_call(kit):
    """Out of bounds is a 400 naming the parameter, never clamped."""
    reply = kit.get("/v1/kids/shows", member="m7", query={"limit": "500"})
    assert reply.status == 400
    assert reply.json["code"] == "invalid_parameter"
    assert kit.calls == []
