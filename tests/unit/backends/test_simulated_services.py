"""Service handlers without sockets: contracts, validation, and run-time state."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.simulated import World
from backends.simulated.exchange import Request
from backends.simulated.services import Services
from backends.simulated.store import Store

NOW = 1_790_000_000.0  # 2026-09-21, a fixed "wall clock"


@pytest.fixture(scope="module")
def world() -> World:
    return World(7)


@pytest.fixture
def clock() -> list[float]:
    return [NOW]


@pytest.fixture
def services(world, clock) -> Services:
    return Services(world, Store(7, clock=lambda: clock[0]))


def call(
    services: Services,
    service: str,
    *segments: str,
    method: str = "GET",
    query: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    raw = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    response = services.handle(service, Request(method, segments, query or {}, raw))
    return response.status, json.loads(response.body)


def test_accounts_then_subscriber_then_billing(services):
    """A new account gets the next member id, is served by subscriber and can subscribe."""
    status, account = call(
        services,
        "accounts",
        "accounts",
        method="POST",
        body={"email": "Jo.Doe@example.com", "country": "GB", "plan_id": "standard"},
    )
    assert status == 201
    assert account["member_id"] == "m100001"
    assert account["created_at"] == "2026-09-21T14:13:20Z"
    status, member = call(services, "subscriber", "members", "m100001")
    assert status == 200
    assert member["country"] == "GB"
    assert member["name"] == "Jo Doe"
    status, subscription = call(
        services,
        "billing",
        "subscriptions",
        method="POST",
        body={
            "member_id": "m100001",
            "plan_id": "standard",
            "trial_days": 30,
            "payment": {"card_last4": "4242", "brand": "visa"},
        },
    )
    assert status == 201
    assert subscription["status"] == "trialing"
    assert subscription["trial_ends_at"] == "2026-10-21T14:13:20Z"
    assert subscription["next_charge"] == {"amount": 1299, "currency": "GBP", "date": "2026-10-21"}


def test_the_same_email_twice_is_a_conflict(services):
    """409 exists, whatever the case of the address."""
    body = {"email": "a@example.com", "country": "US", "plan_id": "basic"}
    assert call(services, "accounts", "accounts", method="POST", body=body)[0] == 201
    body["email"] = "A@EXAMPLE.COM"
    assert call(services, "accounts", "accounts", method="POST", body=body) == (
        409,
        {"error": "exists"},
    )


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nope", "country": "US", "plan_id": "basic"},
        {"email": "a@b.com", "country": "XX", "plan_id": "basic"},
        {"email": "a@b.com", "country": "US", "plan_id": "gold"},
        b"{not json",
        b"[1, 2]",
        b'{"email": NaN}',
    ],
)
def test_bad_account_bodies_are_400(services, body):
    """Invalid fields and non-object or non-JSON bodies are refused."""
    status, reply = call(services, "accounts", "accounts", method="POST", body=body)
    assert status == 400
    assert reply["error"]


def test_billing_without_trial_is_active_and_declined_cards_are_402(services):
    """trial_days 0 charges now; the test card 0002 is declined."""
    body = {"member_id": "m9", "plan_id": "premium", "trial_days": 0}
    status, reply = call(
        services,
        "billing",
        "subscriptions",
        method="POST",
        body={**body, "payment": {"card_last4": "1111"}},
    )
    assert status == 201
    assert reply["status"] == "active"
    assert reply["trial_ends_at"] is None
    declined = {**body, "payment": {"card_last4": "0002"}}
    assert call(services, "billing", "subscriptions", method="POST", body=declined)[0] == 402


def test_bookmark_writes_are_idempotent_and_feed_history(services, clock):
    """The same position twice is one state; history shows it first."""
    path = ("m42", "t5")
    status, first = call(services, "bookmarks", *path, method="PUT", body={"position_s": 300})
    assert status == 200
    assert first["position_s"] == 300
    clock[0] += 60
    _, again = call(services, "bookmarks", *path, method="PUT", body={"position_s": 300})
    assert again == first
    _, read = call(services, "bookmarks", *path)
    assert read == first
    _, history = call(services, "history", "m42", query={"limit": "5"})
    assert history["items"][0] == {
        "title_id": "t5",
        "watched_at": first["updated_at"],
        "position_s": 300,
        "duration_s": history["items"][0]["duration_s"],
    }
    assert [item["title_id"] for item in history["items"]].count("t5") == 1


def test_bookmark_positions_must_fit_the_title(services, world):
    """Negative, fractional or too-long positions are 400."""
    duration = world.catalogue.get("t5").duration_s
    for position in (-1, 1.5, duration + 1, "10", True):
        status, _ = call(
            services, "bookmarks", "m1", "t5", method="PUT", body={"position_s": position}
        )
        assert status == 400


def test_unknown_ids_are_404(services):
    """Unknown members and titles are 404 in every service that looks them up."""
    assert call(services, "subscriber", "members", "m0")[0] == 404
    assert call(services, "bookmarks", "m1", "t0")[0] == 404
    assert call(services, "history", "m100001")[0] == 404
    assert call(services, "catalog", "titles", "t9999")[0] == 404
    decision = {"member_id": "m1", "title_id": "t0", "device_type": "ps5"}
    assert call(services, "playback", "decisions", method="POST", body=decision)[0] == 404


def test_catalog_batch_projects_fields_and_skips_unknown_ids(services):
    """fields pushes down attributes, id always included; unknown ids are omitted."""
    status, reply = call(
        services, "catalog", "titles", query={"ids": "t2,t0,t1,t2", "fields": "title,id,year"}
    )
    assert status == 200
    assert [set(t) for t in reply["titles"]] == [{"id", "title", "year"}] * 2
    assert [t["id"] for t in reply["titles"]] == ["t2", "t1"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"ids": ""},
        {"ids": ",".join(f"t{n}" for n in range(1, 502))},
        {"ids": "t1", "fields": "title,price"},
    ],
)
def test_bad_catalog_batches_are_400(services, query):
    """Missing ids, too many ids and unknown fields are refused."""
    assert call(services, "catalog", "titles", query=query)[0] == 400


def test_playback_denies_above_the_members_maturity(services, world):
    """A title rated above the member's level is not allowed, with a reason."""
    member = next(
        m for n in range(1, 500) if (m := world.members.get(f"m{n}")) and m.maturity_level < 4
    )
    title = next(
        t
        for tid in world.catalogue.ids
        if (t := world.catalogue.get(tid)) and t.maturity_level == 4
    )
    body = {"member_id": member.member_id, "title_id": title.title_id, "device_type": "ps5"}
    status, reply = call(services, "playback", "decisions", method="POST", body=body)
    assert status == 200
    assert reply == {"allowed": False, "reason": "maturity_restricted", "stream": None}


def test_playback_caps_resolution_at_plan_and_device(services, world):
    """A basic plan on a 4K TV streams 720p; premium on a phone streams 1080p."""
    title = next(
        t
        for tid in world.catalogue.ids
        if (t := world.catalogue.get(tid)) and t.maturity_level == 0
    )
    body = {"member_id": "m1", "title_id": title.title_id, "country": "US"}
    _, tv = call(
        services,
        "playback",
        "decisions",
        method="POST",
        body={**body, "device_type": "tv-samsung-2024", "plan_id": "basic"},
    )
    assert tv["allowed"] is True
    assert tv["stream"]["resolution"] == "720p"
    assert tv["stream"]["codec"] == "av1"
    _, phone = call(
        services,
        "playback",
        "decisions",
        method="POST",
        body={**body, "device_type": "ios-phone", "plan_id": "premium"},
    )
    assert phone["stream"]["resolution"] == "1080p"
    assert phone["stream"]["manifest_url"].endswith(".m3u8")
    assert phone["stream"]["cdn"].startswith("oca-us-")


def test_licensing_validates_drm(services):
    """Known DRM systems get keys; others are 400."""
    body = {"member_id": "m1", "title_id": "t1", "device_type": "web-chrome", "drm": "widevine"}
    status, reply = call(services, "licensing", "licenses", method="POST", body=body)
    assert status == 200
    assert reply["expires_in_s"] > 0
    assert len(reply["key_ids"]) == 2
    bad = {**body, "drm": "clearkey"}
    assert call(services, "licensing", "licenses", method="POST", body=bad)[0] == 400


@pytest.mark.parametrize(
    ("service", "segments", "query"),
    [
        ("recommendations", ("rows", "m1"), {"rows": "51"}),
        ("recommendations", ("rows", "m1"), {"per_row": "0"}),
        ("recommendations", ("rows", "m1"), {"rows": "-3"}),
        ("search", ("query",), {"q": "  "}),
        ("search", ("query",), {"q": "x", "limit": "1000"}),
        ("ratings", ("match", "m1"), {}),
        ("trial", ("eligibility",), {"email": "not-an-email"}),
        ("plans", ("plans",), {}),
        ("history", ("m1",), {"limit": "ten"}),
        ("device", ("devices", "Bad Type!"), {}),
    ],
)
def test_bad_parameters_are_400(services, service, segments, query):
    """Out-of-range sizes, missing or malformed parameters are refused with a message."""
    status, reply = call(services, service, *segments, query=query)
    assert status == 400
    assert isinstance(reply["error"], str)


def test_wrong_methods_and_paths(services):
    """A known path with the wrong method is 405; an unknown path below a service is 404."""
    assert call(services, "plans", "plans", method="DELETE", query={"country": "US"})[0] == 405
    assert call(services, "catalog", "movies")[0] == 404
    assert call(services, "nonexistent", "x")[0] == 404
