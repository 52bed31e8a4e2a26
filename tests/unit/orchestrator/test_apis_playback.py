"""The playback API declarations: play, heartbeat and history, their plans and guards."""

from __future__ import annotations

from typing import Any

import pytest
from family_harness import Family

from actors.plan import RunStatus
from orchestrator.apis import FAMILIES, TEAMS
from orchestrator.apis.playback import endpoints as playback  # the module
from orchestrator.apis.shaping import ShapeError
from orchestrator.plans import Auth, Source

PLAY = {"title_id": "t42", "device_type": "apple-tv-4k"}
SUBSCRIBER = {
    "member_id": "m1",
    "name": "Ava",
    "country": "GB",
    "language": "en-GB",
    "plan_id": "premium",
    "maturity_level": 4,
    "profiles": [],
    "member_since": "2019-04-01",
}
DEVICE = {
    "device_type": "apple-tv-4k",
    "max_resolution": "2160p",
    "codecs": ["hevc", "h264"],
    "drm": "fairplay",
    "hdr": True,
    "audio": ["atmos"],
}
STREAM = {
    "resolution": "2160p",
    "codec": "hevc",
    "bitrate_kbps": 10400,
    "cdn": "oca-lhr-3",
    "manifest_url": "https://cdn.example.invalid/t42/manifest.m3u8",
    "debug_token": "internal",  # not part of the contract: must not reach devices
}
ALLOWED = {"allowed": True, "reason": None, "stream": STREAM}
DENIED = {"allowed": False, "reason": "not_available_in_country", "stream": None}
BOOKMARK = {"member_id": "m1", "title_id": "t42", "position_s": 1312, "updated_at": "2026-11-25"}
LICENSE = {"license_id": "l-9", "drm": "fairplay", "expires_in_s": 86400, "key_ids": ["k1", "k2"]}

family = Family(playback.endpoints)


def _play_results(**overrides: Any) -> dict[str, Any]:
    results = {
        "subscriber": SUBSCRIBER,
        "device": DEVICE,
        "decision": ALLOWED,
        "bookmark": BOOKMARK,
        "license": LICENSE,
    }
    results.update(overrides)
    return results


def test_the_family_is_registered_and_its_endpoints_are_documented():
    """Three member-only endpoints owned by playback, each with a summary and described params."""
    assert FAMILIES["playback"] is playback.endpoints
    endpoints = playback.endpoints()
    assert [(e.name, e.method, e.path, e.deadline_ms) for e in endpoints] == [
        ("play", "POST", "/v1/playback/play", 1500),
        ("heartbeat", "POST", "/v1/playback/heartbeat", 500),
        ("history", "GET", "/v1/playback/history", 1000),
    ]
    for endpoint in endpoints:
        assert (endpoint.api, endpoint.team) == ("playback", TEAMS["playback"])
        assert endpoint.auth is Auth.MEMBER
        assert endpoint.summary
        assert all(param.description for param in endpoint.params)
    assert all(p.source is Source.BODY for p in family.endpoint("play").params)


def test_play_plan_matches_the_described_dependencies():
    """subscriber || device, then decision || bookmark, then license once the decision is in."""
    steps = family.steps("play")
    assert {name: (s.backend, s.after) for name, s in steps.items()} == {
        "subscriber": ("subscriber", ()),
        "device": ("device", ()),
        "decision": ("playback", ("subscriber", "device")),
        "bookmark": ("bookmarks", ("subscriber", "device")),
        "license": ("licensing", ("device", "decision")),
    }
    assert [name for name, s in steps.items() if not s.required] == ["device", "bookmark"]


def test_play_builders_send_the_contract_requests():
    """Decision carries the member's plan and country; the licence asks for the device's DRM."""
    ctx = family.ctx(PLAY, **_play_results())
    built = {name: step.request(ctx) for name, step in family.steps("play").items()}
    assert {n: (r.method, r.target()) for n, r in built.items() if r is not None} == {
        "subscriber": ("GET", "/members/m1"),
        "device": ("GET", "/devices/apple-tv-4k"),
        "decision": ("POST", "/decisions"),
        "bookmark": ("GET", "/m1/t42"),
        "license": ("POST", "/licenses"),
    }
    decision, grant = built["decision"], built["license"]
    assert decision is not None
    assert grant is not None
    assert decision.body == {
        "member_id": "m1",
        "title_id": "t42",
        "device_type": "apple-tv-4k",
        "plan_id": "premium",
        "country": "GB",
    }
    assert grant.body == {
        "member_id": "m1",
        "title_id": "t42",
        "drm": "fairplay",
        "device_type": "apple-tv-4k",
    }


def test_play_composes_stream_license_and_resume_point():
    """An allowed play returns the stream, the licence and where to resume: contract fields only."""
    assert family.endpoint("play").plan.compose(family.ctx(PLAY, **_play_results())) == {
        "allowed": True,
        "title_id": "t42",
        "stream": {
            "manifest_url": "https://cdn.example.invalid/t42/manifest.m3u8",
            "resolution": "2160p",
            "codec": "hevc",
            "bitrate_kbps": 10400,
            "cdn": "oca-lhr-3",
        },
        "license": {"id": "l-9", "drm": "fairplay", "expires_in_s": 86400},
        "resume_position_s": 1312,
    }


def test_a_refused_play_skips_the_license_and_says_why():
    """When the decision refuses, licensing is never called and the reason is returned."""
    replies = {"subscriber": SUBSCRIBER, "device": DEVICE, "decision": DENIED, "bookmark": BOOKMARK}
    result = family.run("play", PLAY, replies)
    assert result.status is RunStatus.OK
    assert result.body == {"allowed": False, "reason": "not_available_in_country"}
    license_record = next(r for r in result.records if r.step.name == "license")
    assert license_record.outcome == "skipped"
    assert result.degraded == ()


def test_without_the_device_service_play_uses_a_generic_profile():
    """The device fallback is a conservative 720p h264 Widevine profile, used for the licence."""
    fallback = family.steps("play")["device"].fallback
    assert fallback is not None
    assert (fallback.value["max_resolution"], fallback.value["codecs"], fallback.value["drm"]) == (
        "720p",
        ["h264"],
        "widevine",
    )
    grant = family.steps("play")["license"].request(
        family.ctx(PLAY, **_play_results(device=fallback.value))
    )
    assert grant is not None
    assert grant.body["drm"] == "widevine"


def test_without_the_bookmarks_service_play_starts_from_the_beginning():
    """The bookmark fallback resumes at 0; the run is degraded but succeeds."""
    replies = {"subscriber": SUBSCRIBER, "device": DEVICE, "decision": ALLOWED, "license": LICENSE}
    result = family.run("play", PLAY, replies)
    assert result.status is RunStatus.OK
    assert result.degraded == ("bookmark",)
    assert result.body["resume_position_s"] == 0


@pytest.mark.parametrize(
    "overrides",
    [
        {"decision": {**ALLOWED, "allowed": "true"}},
        {"decision": {**ALLOWED, "stream": {**STREAM, "bitrate_kbps": "10400"}}},
        {"decision": {**ALLOWED, "stream": None}},
        {"license": {**LICENSE, "expires_in_s": None}},
        {"bookmark": {**BOOKMARK, "position_s": -5}},
        {"decision": {**DENIED, "reason": {"code": 451}}},
    ],
)
def test_play_compose_rejects_wrongly_typed_replies(overrides: dict[str, Any]):
    """Wrongly typed decision, licence or bookmark data raises instead of reaching the device."""
    with pytest.raises(ShapeError):
        family.endpoint("play").plan.compose(family.ctx(PLAY, **_play_results(**overrides)))


def test_play_builders_reject_wrongly_typed_replies():
    """A subscriber without a plan id or a non-boolean decision raises in the builders."""
    steps = family.steps("play")
    with pytest.raises(ShapeError):
        steps["decision"].request(family.ctx(PLAY, **_play_results(subscriber={"plan_id": 3})))
    with pytest.raises(ShapeError):
        steps["license"].request(family.ctx(PLAY, **_play_results(decision={"allowed": 1})))


HEARTBEAT = {"title_id": "t42", "position_s": 1400}


def test_heartbeat_puts_the_position_and_confirms_it():
    """One required PUT of the bookmark; the response echoes what was stored."""
    step = family.steps("heartbeat")["bookmark"]
    assert step.required
    request = step.request(family.ctx(HEARTBEAT))
    assert request is not None
    assert (request.method, request.target(), request.body) == (
        "PUT",
        "/m1/t42",
        {"position_s": 1400},
    )
    assert request.idempotent
    saved = {**BOOKMARK, "position_s": 1400}
    body = family.endpoint("heartbeat").plan.compose(family.ctx(HEARTBEAT, bookmark=saved))
    assert body == {"title_id": "t42", "position_s": 1400, "saved": True}


def test_heartbeat_bounds_the_position_and_rejects_a_wrongly_typed_reply():
    """position_s is an integer between 0 and a day; a non-integer stored position raises."""
    position = {p.name: p for p in family.endpoint("heartbeat").params}["position_s"]
    assert (position.kind, position.minimum, position.maximum) == (int, 0, 86400)
    with pytest.raises(ShapeError):
        family.endpoint("heartbeat").plan.compose(
            family.ctx(HEARTBEAT, bookmark={"position_s": 1400.5})
        )


HISTORY = {
    "member_id": "m1",
    "items": [
        {
            "title_id": "t42",
            "watched_at": "2026-11-25T21:00:00Z",
            "position_s": 1560,
            "duration_s": 3120,
        },
        {
            "title_id": "t7",
            "watched_at": "2026-11-24T20:00:00Z",
            "position_s": 6000,
            "duration_s": 5400,
        },
        {"title_id": "t42", "watched_at": "2026-11-20T19:00:00Z", "position_s": 0, "duration_s": 0},
    ],
}
HISTORY_TITLES = {"titles": [{"id": "t42", "title": "The Heist"}, {"id": "t7", "title": "Tides"}]}


def test_history_reads_history_then_an_optional_catalog_batch():
    """The catalog waits for the history, asks for each title once, and falls back by omission."""
    steps = family.steps("history")
    assert steps["catalog"].after == ("history",)
    assert steps["catalog"].fallback is not None
    assert steps["catalog"].fallback.kind.value == "omit"
    ctx = family.ctx({"limit": 20}, history=HISTORY)
    history, catalog = steps["history"].request(ctx), steps["catalog"].request(ctx)
    assert history is not None
    assert (history.method, history.target()) == ("GET", "/m1?limit=20")
    assert catalog is not None
    assert catalog.target() == "/titles?fields=title&ids=t42,t7"
    empty = family.ctx({"limit": 20}, history={"member_id": "m1", "items": []})
    assert steps["catalog"].request(empty) is None


def test_history_composes_items_with_titles_and_progress():
    """Each item has its title and a progress clamped to 0..1 (0 for an unknown duration)."""
    ctx = family.ctx({"limit": 20}, history=HISTORY, catalog=HISTORY_TITLES)
    items = family.endpoint("history").plan.compose(ctx)["items"]
    assert items[0] == {
        "title_id": "t42",
        "title": "The Heist",
        "watched_at": "2026-11-25T21:00:00Z",
        "position_s": 1560,
        "duration_s": 3120,
        "progress": 0.5,
    }
    assert [item["progress"] for item in items] == [0.5, 1.0, 0.0]


def test_history_without_the_catalog_returns_items_without_titles():
    """With the catalog omitted, items carry their ids and viewing data but no title."""
    items = family.endpoint("history").plan.compose(family.ctx({"limit": 2}, history=HISTORY))[
        "items"
    ]
    assert len(items) == 2  # a backend sending more than the limit does not grow the reply
    assert all("title" not in item for item in items)
    assert [item["title_id"] for item in items] == ["t42", "t7"]


@pytest.mark.parametrize(
    "history",
    [
        {"items": {"t42": 1}},
        {"items": [{**HISTORY["items"][0], "duration_s": "3120"}]},
        {"items": [{**HISTORY["items"][0], "title_id": "../../admin"}]},
        {"items": [{**HISTORY["items"][0], "watched_at": 1764104400}]},
    ],
)
def test_history_compose_rejects_wrongly_typed_replies(history: dict[str, Any]):
    """A history of the wrong shape raises instead of reaching the device."""
    with pytest.raises(ShapeError):
        family.endpoint("history").plan.compose(family.ctx({"limit": 20}, history=history))
