"""Every endpoint's happy path over real HTTP against the simulated microservices."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the fixture's type; conftest is not importable when suites mix
    from conftest import Stack

import pytest

pytestmark = pytest.mark.e2e


def test_plans_for_a_country_are_public(stack: Stack):
    """Plans need no token and list priced plans in the country's currency."""
    reply = stack.get("/v1/nonmember/plans?country=US", auth=False)
    assert reply.status_code == 200
    body = reply.json()
    assert body["country"] == "US"
    assert len(body["plans"]) >= 3
    assert body["meta"] == {"degraded": []}


def test_signup_creates_a_member_whose_token_opens_member_endpoints(stack: Stack):
    """Sign-up answers 201 with a member id and a token that works on home."""
    plans = stack.get("/v1/nonmember/plans?country=GB", auth=False).json()["plans"]
    body = {
        "email": "new.viewer@example.com",
        "country": "GB",
        "plan_id": plans[0]["id"],
        "card_last4": "4242",
    }
    reply = stack.post("/v1/nonmember/signup", body, auth=False)
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["member_id"]
    home = stack.get(
        "/v1/discovery/home?rows=1&per_row=2",
        auth=False,
        headers={"Authorization": f"Bearer {created['token']}"},
    )
    assert home.status_code == 200


def test_home_returns_the_requested_rows_of_titles_with_match_scores(stack: Stack):
    """rows and per_row bound the response; titles carry match scores."""
    reply = stack.get("/v1/discovery/home?rows=3&per_row=4")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert 1 <= len(body["rows"]) <= 3
    for row in body["rows"]:
        assert 1 <= len(row["videos"]) <= 4
        assert all(video["id"].startswith("t") for video in row["videos"])
    assert any(v["match"] is not None for row in body["rows"] for v in row["videos"])
    assert body["meta"]["degraded"] == []


def test_search_returns_titles(stack: Stack):
    """A search for a common word finds titles with names."""
    reply = stack.get("/v1/discovery/search?q=the&limit=5")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert len(body["results"]) <= 5
    assert all("title" in result for result in body["results"])


def test_title_details(stack: Stack):
    """A title's page has its details."""
    reply = stack.get("/v1/discovery/titles/t42")
    assert reply.status_code == 200, reply.text
    assert reply.json()["id"] == "t42"


def test_play_then_heartbeat_then_history(stack: Stack):
    """Play returns a stream and a licence; a heartbeat is saved and shows in history."""
    play = stack.post("/v1/playback/play", {"title_id": "t7", "device_type": "ps5"})
    assert play.status_code == 200, play.text
    body = play.json()
    if body["allowed"]:
        assert body["stream"]["manifest_url"]
        assert body["license"]["id"]
    beat = {"title_id": "t7", "position_s": 120}
    first = stack.post("/v1/playback/heartbeat", beat)
    again = stack.post("/v1/playback/heartbeat", beat)
    assert first.status_code == again.status_code == 200
    assert first.json()["position_s"] == again.json()["position_s"] == 120
    history = stack.get("/v1/playback/history?limit=50")
    assert history.status_code == 200, history.text
    assert "items" in history.json()


def test_request_id_is_echoed_or_generated(stack: Stack):
    """A valid X-Request-Id comes back; an invalid one is replaced by a generated one."""
    path = "/v1/nonmember/plans?country=US"
    mine = stack.get(path, auth=False, headers={"X-Request-Id": "abc-1"})
    assert mine.headers["X-Request-Id"] == "abc-1"
    bad = stack.get(
        "/v1/nonmember/plans?country=US", auth=False, headers={"X-Request-Id": "bad id!"}
    )
    assert bad.headers["X-Request-Id"] != "bad id!"
    assert len(bad.headers["X-Request-Id"]) == 32


def test_engineers_get_a_trace_with_the_admin_token_and_devices_never_do(stack: Stack):
    """meta.trace lists every step with timings, only for the admin token."""
    admin = stack.frontdoor.settings.auth.admin_token
    traced = stack.get(
        "/v1/discovery/home?rows=1&per_row=2",
        headers={"X-Frontdoor-Trace": "1", "X-Frontdoor-Admin-Token": admin},
    ).json()
    steps = {entry["step"]: entry for entry in traced["meta"]["trace"]}
    assert steps["subscriber"]["outcome"] == "success"
    assert steps["recommendations"]["queued_ms"] >= steps["subscriber"]["finished_ms"]
    untraced = stack.get("/v1/discovery/home?rows=1&per_row=2", headers={"X-Frontdoor-Trace": "1"})
    assert "trace" not in untraced.json()["meta"]


def test_a_trace_takes_the_admin_credentials_the_admin_routes_take(stack: Stack):
    """An admin-scoped signed token (``frontdoor token --admin``) unlocks the trace as it
    unlocks ``/_admin/*``; a member token unlocks neither."""
    path = "/v1/discovery/home?rows=1&per_row=2"
    admin = stack.frontdoor.signer.issue("ops1", scope="admin")
    member = stack.frontdoor.signer.issue("m1")
    assert stack.get(
        "/_admin/backends", auth=False, headers={"Authorization": f"Bearer {admin}"}
    ).ok
    traced = stack.get(path, headers={"X-Frontdoor-Trace": "1", "X-Frontdoor-Admin-Token": admin})
    assert traced.json()["meta"]["trace"]
    refused = stack.get(path, headers={"X-Frontdoor-Trace": "1", "X-Frontdoor-Admin-Token": member})
    assert "trace" not in refused.json()["meta"]
