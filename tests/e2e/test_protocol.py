"""The device protocol over real HTTP: partial responses that prune backend calls, batches,
the catalog and OpenAPI documents, and v1 and v2 of home side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the fixture's type; conftest is not importable when suites mix
    from conftest import Stack

import email.utils
from typing import Any

import pytest
import requests
from openapi_spec_validator import validate

pytestmark = pytest.mark.e2e

SERVICES = ("subscriber", "recommendations", "catalog", "ratings", "search", "bookmarks", "plans")


@pytest.fixture
def counted(stack: Stack) -> None:
    """The test starts with every service's call count at zero."""
    stack.backends.reset_calls()


def _count(stack: Stack) -> dict[str, int]:
    """Calls each simulated service received since the last reset (only non-zero ones)."""
    stats = {service: stack.backends.calls(service) for service in SERVICES}
    stack.backends.reset_calls()
    return {service: count for service, count in stats.items() if count}


def _json(reply: requests.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


# -- partial responses ---------------------------------------------------------------------


def test_home_without_match_scores_makes_no_ratings_call(stack: Stack, counted: None):
    """rows(videos(id,title)) returns exactly that, with no call to ratings."""
    body = _json(stack.get("/v1/discovery/home?rows=3&per_row=4&fields=rows(videos(id,title))"))
    assert _count(stack) == {"subscriber": 1, "recommendations": 1, "catalog": 1}
    assert set(body) == {"rows", "meta"}
    assert body["rows"]
    for row in body["rows"]:
        assert set(row) == {"videos"}
        assert all(set(video) == {"id", "title"} for video in row["videos"])
    full = _json(stack.get("/v1/discovery/home?rows=3&per_row=4"))
    assert _count(stack) == {"subscriber": 1, "recommendations": 1, "catalog": 1, "ratings": 1}
    assert body["rows"] == [
        {"videos": [{"id": v["id"], "title": v["title"]} for v in row["videos"]]}
        for row in full["rows"]
    ]


def test_only_the_member_needs_only_the_subscriber(stack: Stack, counted: None):
    """fields=member makes one backend call."""
    body = _json(stack.get("/v1/discovery/home?fields=member"))
    assert set(body) == {"member", "meta"}
    assert _count(stack) == {"subscriber": 1}


def test_search_asking_only_for_ids_makes_no_catalog_call(stack: Stack, counted: None):
    """results(id) comes from the search index alone; asking for titles adds the catalog."""
    ids = _json(stack.get("/v1/discovery/search?q=heist&limit=5&fields=results(id)"))
    assert _count(stack) == {"search": 1}
    assert ids["results"]
    assert all(set(result) == {"id"} for result in ids["results"])
    named = _json(stack.get("/v1/discovery/search?q=heist&limit=5&fields=results(id,title)"))
    assert _count(stack) == {"search": 1, "catalog": 1}
    assert all(set(result) == {"id", "title"} for result in named["results"])


def test_a_star_or_no_fields_give_the_same_full_response(stack: Stack):
    """fields=* is the whole response."""
    assert stack.get("/v1/discovery/titles/t42?fields=*").json() == (
        stack.get("/v1/discovery/titles/t42").json()
    )


@pytest.mark.parametrize(
    ("fields", "position", "allowed"),
    [
        ("rows(videos(id,colour))", 16, ["id", "title", "year", "genres"]),
        ("rowz", 1, ["rows", "member"]),
        ("rows(id", 8, None),
    ],
)
def test_a_bad_selection_is_a_400_naming_where_and_what_is_valid(
    stack: Stack, fields: str, position: int, allowed: list[str] | None
):
    """The problem gives the character position and, for an unknown name, the valid ones."""
    reply = stack.get("/v1/discovery/home", params={"fields": fields})
    problem = _json(reply, 400)
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert problem["code"] == "invalid_fields"
    assert problem["position"] == position
    if allowed is not None:
        assert problem["allowed"][: len(allowed)] == allowed


# -- batches -------------------------------------------------------------------------------


def _batch(stack: Stack, calls: list[dict[str, Any]], **kwargs: Any) -> requests.Response:
    return stack.post("/v1/batch", {"requests": calls}, **kwargs)


def test_a_batch_answers_each_call_with_its_own_status_and_never_fails_whole(stack: Stack):
    """Success, unknown path, bad parameter and a nested batch side by side in one 200."""
    body = _json(
        _batch(
            stack,
            [
                {"id": "plans", "method": "GET", "path": "/v1/nonmember/plans?country=US"},
                {"id": "lost", "method": "GET", "path": "/v1/nowhere"},
                {"id": "bad", "path": "/v1/discovery/home", "query": {"rows": 0}},
                {"id": "nested", "method": "POST", "path": "/v1/batch", "body": {}},
                {"id": "title", "path": "/v1/discovery/titles/t42", "query": {"fields": "title"}},
            ],
        )
    )
    replies = {reply["id"]: reply for reply in body["responses"]}
    assert [reply["id"] for reply in body["responses"]] == [
        "plans",
        "lost",
        "bad",
        "nested",
        "title",
    ]
    assert replies["plans"]["status"] == 200
    assert replies["plans"]["body"]["country"] == "US"
    assert (replies["lost"]["status"], replies["lost"]["problem"]["code"]) == (404, "not_found")
    assert replies["bad"]["problem"]["code"] == "invalid_parameter"
    assert replies["nested"]["problem"]["code"] == "invalid_batch"
    assert replies["title"]["body"] == {
        "title": replies["title"]["body"]["title"],
        "meta": {"degraded": []},
    }
    assert body["meta"] == {"calls": 5, "failed": 3}


def test_identical_backend_calls_inside_a_batch_are_made_once(stack: Stack, counted: None):
    """Two identical home calls and a third sharing the member: each service is called once."""
    home = {"path": "/v1/discovery/home", "query": {"rows": 2, "per_row": 3}}
    body = _json(
        _batch(
            stack,
            [
                {"id": "a", **home},
                {"id": "b", **home},
                {"id": "c", "path": "/v2/discovery/home", "query": {"rows": 2, "per_row": 3}},
            ],
        )
    )
    assert [reply["status"] for reply in body["responses"]] == [200, 200, 200]
    assert body["responses"][0]["body"] == body["responses"][1]["body"]
    # v2's catalog asks for other attributes (images): a different call, made once more.
    assert _count(stack) == {"subscriber": 1, "recommendations": 1, "catalog": 2, "ratings": 1}


def test_batch_calls_share_the_batchs_authorization(stack: Stack):
    """Without a token member calls are 401 each, while public calls still succeed."""
    body = _json(
        _batch(
            stack,
            [
                {"id": "public", "path": "/v1/nonmember/plans", "query": {"country": "GB"}},
                {"id": "member", "path": "/v1/discovery/titles/t42"},
            ],
            auth=False,
        )
    )
    assert [reply["status"] for reply in body["responses"]] == [200, 401]
    with_token = _json(_batch(stack, [{"id": "member", "path": "/v1/discovery/titles/t42"}]))
    assert with_token["responses"][0]["status"] == 200


def test_batch_calls_share_the_batchs_deadline(stack: Stack):
    """A hanging service costs each call no more than the batch's deadline, not its own."""
    stack.fault("subscriber", hang=True)
    reply = _batch(
        stack,
        [
            {"id": "home", "path": "/v1/discovery/home"},
            {"id": "plans", "path": "/v1/nonmember/plans", "query": {"country": "US"}},
        ],
        headers={"X-Request-Timeout-Ms": "300"},
    )
    body = _json(reply)
    statuses = {r["id"]: (r["status"], r.get("problem", {}).get("code")) for r in body["responses"]}
    assert statuses == {"home": (504, "deadline_exceeded"), "plans": (200, None)}
    # Home's own deadline is 1000 ms: answering well before it shows the batch's 300 ms bound.
    assert reply.elapsed.total_seconds() < 0.9


def test_a_batch_over_the_cap_or_not_posted_is_refused(stack: Stack):
    """More calls than allowed is one invalid_batch problem; GET is 405."""
    calls = [{"id": f"c{n}", "path": "/v1/nonmember/plans?country=US"} for n in range(21)]
    assert _json(_batch(stack, calls), 400)["code"] == "invalid_batch"
    reply = stack.get("/v1/batch")
    assert _json(reply, 405)["code"] == "method_not_allowed"
    assert reply.headers["Allow"] == "POST"


# -- discovery documents -------------------------------------------------------------------


def test_the_catalog_lists_every_endpoint_with_fields_and_a_working_example(stack: Stack):
    """Each entry's example request, sent as is (with a token), succeeds."""
    catalog = _json(stack.get("/v1/catalog", auth=False))
    names = {(entry["method"], entry["path"]) for entry in catalog["endpoints"]}
    assert ("GET", "/v2/discovery/home") in names
    assert len(names) == len(stack.frontdoor.app.registry.endpoints)
    for entry in catalog["endpoints"]:
        assert entry["fields"], entry["name"]
        example = entry["example"]
        if example["method"] == "GET":
            reply = stack.get(example["path"], auth=entry["auth"] != "public")
            assert reply.status_code == 200, (entry["name"], reply.text)


def test_openapi_is_valid_and_documents_every_route(stack: Stack):
    """The served document validates and holds every registry route and the batch."""
    document = _json(stack.get("/openapi.json", auth=False))
    validate(document)
    for endpoint in stack.frontdoor.app.registry.endpoints:
        assert endpoint.method.lower() in document["paths"][endpoint.path]
    assert "post" in document["paths"]["/v1/batch"]


def test_docs_is_a_self_contained_html_page(stack: Stack):
    """HTML with a strict content security policy, listing the endpoints."""
    reply = stack.get("/docs", auth=False)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "/v1/discovery/home" in reply.text
    assert "<script" not in reply.text


# -- versioning ----------------------------------------------------------------------------


def test_v1_and_v2_home_side_by_side(stack: Stack):
    """Same rows and titles; v2 has typed contexts and images; only v1 announces retirement."""
    v1 = stack.get("/v1/discovery/home?rows=4&per_row=3")
    v2 = stack.get("/v2/discovery/home?rows=4&per_row=3")
    one, two = _json(v1), _json(v2)
    assert [r["id"] for r in one["rows"]] == [r["id"] for r in two["rows"]]
    assert [[v["id"] for v in r["videos"]] for r in one["rows"]] == [
        [v["id"] for v in r["videos"]] for r in two["rows"]
    ]
    for old, new in zip(one["rows"], two["rows"], strict=True):
        assert new["context"]["type"] == old["kind"]
        assert "kind" not in new
        for old_video, new_video in zip(old["videos"], new["videos"], strict=True):
            assert new_video["images"]["boxart"] == old_video["boxart"]
            assert "boxart" not in new_video
    assert v1.headers["Deprecation"] == "@1767225600"  # RFC 9745: 2026-01-01T00:00:00Z
    sunset = email.utils.parsedate_to_datetime(v1.headers["Sunset"])  # RFC 8594: an HTTP date
    assert sunset.isoformat() == "2027-07-01T00:00:00+00:00"
    assert '</v2/discovery/home>; rel="successor-version"' in v1.headers["Link"]
    assert "Deprecation" not in v2.headers
    assert "Sunset" not in v2.headers


def test_v2_prunes_and_pushes_down_like_v1(stack: Stack, counted: None):
    """v2 reuses v1's steps: without match it too makes no ratings call."""
    body = _json(stack.get("/v2/discovery/home?rows=2&per_row=2&fields=rows(videos(images(hero)))"))
    assert _count(stack) == {"subscriber": 1, "recommendations": 1, "catalog": 1}
    videos = [video for row in body["rows"] for video in row["videos"]]
    assert videos
    assert all(set(video) == {"images"} and set(video["images"]) == {"hero"} for video in videos)
