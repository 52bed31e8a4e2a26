"""Every simulated service over real HTTP on 127.0.0.1: happy path, 400/404, X-Service."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from backends.simulated import SERVICES, SimulatedBackends

pytestmark = pytest.mark.integration

TIMEOUT_S = 5


def get(sim: SimulatedBackends, path: str, **params: Any) -> requests.Response:
    return requests.get(sim.url + path, params=params, timeout=TIMEOUT_S)


def send(sim: SimulatedBackends, method: str, path: str, body: Any) -> requests.Response:
    return requests.request(method, sim.url + path, json=body, timeout=TIMEOUT_S)


def test_url_points_at_loopback(backends):
    """start() returns once listening, on an ephemeral loopback port."""
    assert backends.url == f"http://127.0.0.1:{backends.port}"
    reply = get(backends, "/_health")
    assert reply.status_code == 200
    assert reply.headers["X-Service"] == "admin"


def test_nonmember_family(backends):
    """plans, trial, accounts and billing answer their contracts."""
    plans = get(backends, "/plans/plans", country="BR")
    assert plans.status_code == 200
    assert plans.headers["X-Service"] == "plans"
    assert plans.headers["Content-Type"] == "application/json"
    assert plans.json()["currency"] == "BRL"
    assert get(backends, "/plans/plans", country="ZZ").status_code == 404
    trial = get(backends, "/trial/eligibility", email="someone@example.com").json()
    assert trial["trial_days"] == (30 if trial["eligible"] else 0)
    assert get(backends, "/trial/eligibility").status_code == 400
    account = {"email": "new@example.com", "country": "BR", "plan_id": "basic"}
    created = send(backends, "POST", "/accounts/accounts", account)
    assert created.status_code == 201
    assert send(backends, "POST", "/accounts/accounts", account).status_code == 409
    member_id = created.json()["member_id"]
    subscription = send(
        backends,
        "POST",
        "/billing/subscriptions",
        {
            "member_id": member_id,
            "plan_id": "basic",
            "trial_days": 30,
            "payment": {"card_last4": "4242"},
        },
    )
    assert subscription.status_code == 201
    assert subscription.json()["next_charge"]["currency"] == "BRL"
    assert send(backends, "POST", "/billing/subscriptions", {"member_id": 1}).status_code == 400


def test_discovery_family(backends):
    """subscriber, recommendations, catalog, ratings and search answer their contracts."""
    member = get(backends, "/subscriber/members/m12")
    assert member.status_code == 200
    assert member.headers["X-Service"] == "subscriber"
    assert member.json()["member_id"] == "m12"
    assert get(backends, "/subscriber/members/m100500").status_code == 404
    rows = get(backends, "/recommendations/rows/m12", rows=5, per_row=7).json()
    assert len(rows["rows"]) == 5
    assert all(len(row["video_ids"]) <= 7 for row in rows["rows"])
    ids = rows["rows"][1]["video_ids"]
    titles = get(backends, "/catalog/titles", ids=",".join(ids), fields="title,boxart").json()
    assert [t["id"] for t in titles["titles"]] == ids
    assert all(set(t) == {"id", "title", "boxart"} for t in titles["titles"])
    full = get(backends, "/catalog/titles/t9").json()
    assert full["id"] == "t9"
    assert "synopsis" in full
    assert get(backends, "/catalog/titles", ids="t1", fields="nope").status_code == 400
    scores = get(backends, "/ratings/match/m12", ids=",".join(ids)).json()["scores"]
    assert set(scores) == set(ids)
    assert get(backends, "/ratings/match/m12").status_code == 400
    results = get(backends, "/search/query", q=full["title"], limit=5).json()
    assert results["query"] == full["title"]
    assert results["total"] >= 1
    assert len(results["results"]) <= 5
    assert get(backends, "/search/query", q="").status_code == 400


def test_playback_family(backends):
    """device, playback, bookmarks, licensing and history answer their contracts."""
    device = get(backends, "/device/devices/roku-ultra").json()
    assert device["max_resolution"] == "2160p"
    assert get(backends, "/device/devices/fridge").json()["codecs"] == ["h264"]
    decision = send(
        backends,
        "POST",
        "/playback/decisions",
        {"member_id": "m12", "title_id": "t9", "device_type": "web-chrome"},
    ).json()
    assert set(decision) == {"allowed", "reason", "stream"}
    missing = {"member_id": "m12", "title_id": "t0", "device_type": "web-chrome"}
    assert send(backends, "POST", "/playback/decisions", missing).status_code == 404
    mark = send(backends, "PUT", "/bookmarks/m12/t9", {"position_s": 42})
    assert mark.status_code == 200
    assert get(backends, "/bookmarks/m12/t9").json()["position_s"] == 42
    assert get(backends, "/bookmarks/m12/t0").status_code == 404
    license_body = {"member_id": "m12", "title_id": "t9", "drm": "widevine", "device_type": "ps5"}
    issued = send(backends, "POST", "/licensing/licenses", license_body).json()
    assert issued["drm"] == "widevine"
    history = get(backends, "/history/m12", limit=3).json()
    assert history["items"][0]["title_id"] == "t9"
    assert len(history["items"]) <= 3
    assert get(backends, "/history/m12", limit=0).status_code == 400


def test_every_service_names_itself_even_on_404(backends):
    """X-Service is on every response, including unknown paths below a service."""
    for service in SERVICES:
        reply = get(backends, f"/{service}/no/such/path/here")
        assert reply.status_code in {404, 405}
        assert reply.headers["X-Service"] == service
        assert "error" in reply.json()


def test_unknown_paths_are_404(backends):
    """Paths outside every service are 404 JSON."""
    for path in ("/", "/nope", "/_admin"):
        reply = get(backends, path)
        assert reply.status_code == 404
        assert reply.json() == {"error": "unknown service"}
        assert "X-Service" in reply.headers


def test_stats_count_requests_per_service(backends):
    """/_stats and calls() count what each service received; DELETE resets."""
    for _ in range(3):
        get(backends, "/catalog/titles/t1")
    get(backends, "/catalog/titles/t0")
    get(backends, "/plans/plans", country="US")
    assert backends.calls("catalog") == 4
    stats = get(backends, "/_stats").json()["requests"]
    assert stats["catalog"] == 4
    assert stats["plans"] == 1
    assert stats["search"] == 0
    assert requests.delete(backends.url + "/_stats", timeout=TIMEOUT_S).status_code == 200
    assert backends.calls("catalog") == 0


def test_encoded_slashes_stay_inside_one_segment(backends):
    """A percent-encoded "/" in an id does not climb to another route."""
    reply = get(backends, "/catalog/titles/t1%2F..%2Fx")
    assert reply.status_code == 404
    assert reply.json() == {"error": "unknown title"}
