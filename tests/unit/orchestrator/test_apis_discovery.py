"""The discovery API declarations: home, search and title details, their plans and guards."""

from __future__ import annotations

import re
from typing import Any

import pytest
from family_harness import Family

from orchestrator.apis import FAMILIES, TEAMS
from orchestrator.apis.discovery import endpoints as discovery  # the module
from orchestrator.apis.shaping import ShapeError, maturity_level
from orchestrator.plans import Auth, EndpointRegistry

HOME = {"rows": 10, "per_row": 20}
SUBSCRIBER = {
    "member_id": "m1",
    "name": "Ava",
    "country": "US",
    "language": "en-US",
    "plan_id": "standard",
    "maturity_level": 3,
    "profiles": [{"id": "p1", "name": "Ava"}],
    "member_since": "2019-04-01",
}
ROWS = {
    "member_id": "m1",
    "rows": [
        {"id": "r1", "kind": "trending", "title": "Trending Now", "video_ids": ["t1", "t2", "t3"]},
        {"id": "r2", "kind": "genre", "title": "Thrillers", "video_ids": ["t3", "t4"]},
        {"id": "r3", "kind": "genre", "title": "Gone Soon", "video_ids": ["t9"]},
    ],
}


def _title(tid: str, rating: str = "PG", **extra: Any) -> dict[str, Any]:
    art = f"https://img.example.invalid/boxart/{tid}.jpg"
    return {
        "id": tid,
        "title": f"Title {tid}",
        "year": 2019,
        "genres": ["Drama"],
        "maturity_rating": rating,
        "artwork": {"boxart": art, "hero": None, "logo": None},
        "popularity": 0.5,
        **extra,
    }


# t4 is rated R (above Ava's level 3); t9 is unknown to the catalog, so r3 ends up empty.
CATALOG = {"titles": [_title("t1"), _title("t2", "TV-14"), _title("t3"), _title("t4", "R")]}
SCORES = {"member_id": "m1", "scores": {"t1": 97, "t3": 64}}

family = Family(discovery.endpoints)


def test_the_family_is_registered_and_its_endpoints_are_documented():
    """Four member-only endpoints owned by discovery, each with a summary and described params."""
    assert FAMILIES["discovery"] is discovery.endpoints
    endpoints = discovery.endpoints()
    assert [(e.name, e.method, e.path, e.deadline_ms) for e in endpoints] == [
        ("home", "GET", "/v1/discovery/home", 1000),
        ("search", "GET", "/v1/discovery/search", 800),
        ("title", "GET", "/v1/discovery/titles/{id}", 800),
        ("home_v2", "GET", "/v2/discovery/home", 1000),
    ]
    for endpoint in endpoints:
        assert (endpoint.api, endpoint.team) == ("discovery", TEAMS["discovery"])
        assert endpoint.auth is Auth.MEMBER
        assert endpoint.summary
        assert all(param.description for param in endpoint.params)


def test_every_family_routes_together_without_clashes():
    """All families' endpoints form one registry; a title path routes to the title endpoint."""
    registry = EndpointRegistry(e for family in FAMILIES.values() for e in family())
    match = registry.route("GET", "/v1/discovery/titles/t42")
    assert match.endpoint is not None
    assert match.endpoint.name == "title"
    assert match.path_params == {"id": "t42"}


def test_home_runs_subscriber_then_recommendations_then_catalog_and_ratings_in_parallel():
    """Catalog and ratings both wait for recommendations only; only ratings may fall back."""
    steps = family.steps("home")
    assert steps["recommendations"].after == ("subscriber",)
    for name in ("catalog", "ratings"):
        assert steps[name].after == ("recommendations",)
    assert steps["catalog"].required
    assert steps["ratings"].fallback is not None
    assert steps["ratings"].fallback.value == {"scores": {}}
    assert {s.backend for s in steps.values()} == {
        "subscriber",
        "recommendations",
        "catalog",
        "ratings",
    }


def test_home_builders_ask_for_the_rows_then_each_distinct_title_once():
    """The catalog batch and the ratings call carry the rows' ids, deduplicated, in row order."""
    ctx = family.ctx(HOME, subscriber=SUBSCRIBER, recommendations=ROWS)
    assert family.target("home", "subscriber", ctx) == ("GET", "/members/m1")
    assert family.target("home", "recommendations", ctx) == ("GET", "/rows/m1?per_row=20&rows=10")
    assert family.target("home", "catalog", ctx) == (
        "GET",
        "/titles?fields=title,year,genres,maturity_rating,boxart&ids=t1,t2,t3,t4,t9",
    )
    assert family.target("home", "ratings", ctx) == ("GET", "/match/m1?ids=t1,t2,t3,t4,t9")
    assert family.target("home", "catalog_2", ctx) is None  # one batch is enough: the rest skip


def test_the_largest_home_page_is_split_into_batches_the_catalog_accepts():
    """40 rows of 75 distinct titles become six catalog and six ratings calls of 500 ids."""
    params = {"rows": 40, "per_row": 75}
    rows = [
        {
            "id": f"r{r}",
            "kind": "genre",
            "title": "Row",
            "video_ids": [f"t{r * 75 + v + 1}" for v in range(75)],
        }
        for r in range(40)
    ]
    ctx = family.ctx(params, subscriber=SUBSCRIBER, recommendations={"rows": rows})
    batches = [s for s in family.endpoint("home").plan.steps if s.backend == "catalog"]
    requests = [step.request(ctx) for step in batches]
    assert [len(dict(r.query)["ids"].split(",")) for r in requests if r is not None] == [500] * 6
    last = requests[-1]
    assert last is not None
    assert dict(last.query)["ids"].split(",")[-1] == "t3000"


def test_home_cuts_a_backend_that_sends_more_than_was_asked():
    """Rows and videos beyond rows/per_row are ignored, so the batches stay bounded."""
    ctx = family.ctx({"rows": 1, "per_row": 2}, subscriber=SUBSCRIBER, recommendations=ROWS)
    assert family.target("home", "ratings", ctx) == ("GET", "/match/m1?ids=t1,t2")


def test_home_composes_rows_of_title_cards_for_the_member():
    """Cards carry only contract fields and the match; R titles, unknown ids and empty rows go."""
    ctx = family.ctx(
        HOME, subscriber=SUBSCRIBER, recommendations=ROWS, catalog=CATALOG, ratings=SCORES
    )
    body = family.endpoint("home").plan.compose(ctx)
    assert body["member"] == {"name": "Ava", "country": "US"}
    assert [(row["id"], [v["id"] for v in row["videos"]]) for row in body["rows"]] == [
        ("r1", ["t1", "t2", "t3"]),
        ("r2", ["t3"]),
    ]
    first = body["rows"][0]
    assert {k: first[k] for k in ("id", "kind", "title")} == {
        "id": "r1",
        "kind": "trending",
        "title": "Trending Now",
    }
    assert first["videos"][0] == {
        "id": "t1",
        "title": "Title t1",
        "year": 2019,
        "maturity_rating": "PG",
        "genres": ["Drama"],
        "boxart": "https://img.example.invalid/boxart/t1.jpg",
        "match": 97,
    }
    assert first["videos"][1]["match"] is None  # not scored


def test_home_without_ratings_shows_cards_without_match():
    """With the ratings fallback every card's match is null and the page still renders."""
    fallback = family.steps("home")["ratings"].fallback
    assert fallback is not None
    ctx = family.ctx(
        HOME, subscriber=SUBSCRIBER, recommendations=ROWS, catalog=CATALOG, ratings=fallback.value
    )
    body = family.endpoint("home").plan.compose(ctx)
    assert [v["match"] for row in body["rows"] for v in row["videos"]] == [None] * 4


def test_home_through_the_plan_runner_degrades_only_for_ratings():
    """Run as a plan with ratings down: success, degraded by ratings, unused batches skipped."""
    replies = {"subscriber": SUBSCRIBER, "recommendations": ROWS, "catalog": CATALOG}
    result = family.run("home", HOME, replies)
    assert result.degraded == ("ratings",)
    assert len(result.body["rows"]) == 2
    skipped = [r.step.name for r in result.records if r.outcome == "skipped"]
    assert "catalog_2" in skipped
    assert "ratings_6" in skipped


def test_an_unknown_maturity_rating_fails_closed():
    """A rating outside the mapping counts as the most mature, so kids never see it."""
    assert maturity_level("TV-Y") == 0
    assert maturity_level("PG-13") == maturity_level("TV-14") == 3
    assert maturity_level("NC-17") == 4
    ctx = family.ctx(
        HOME,
        subscriber=SUBSCRIBER,
        recommendations={"rows": [{"id": "r", "kind": "k", "title": "T", "video_ids": ["t1"]}]},
        catalog={"titles": [_title("t1", "NC-17")]},
        ratings=SCORES,
    )
    assert family.endpoint("home").plan.compose(ctx)["rows"] == []


def test_flat_artwork_from_the_catalog_is_read_as_well():
    """The catalog may send boxart at the top level (as fields projection does)."""
    flat = {k: v for k, v in _title("t1").items() if k != "artwork"}
    flat["boxart"] = "https://img.example.invalid/flat.jpg"
    ctx = family.ctx(
        HOME,
        subscriber=SUBSCRIBER,
        recommendations={"rows": [{"id": "r", "kind": "k", "title": "T", "video_ids": ["t1"]}]},
        catalog={"titles": [flat]},
        ratings=SCORES,
    )
    body = family.endpoint("home").plan.compose(ctx)
    assert body["rows"][0]["videos"][0]["boxart"] == "https://img.example.invalid/flat.jpg"


@pytest.mark.parametrize(
    "results",
    [
        {"subscriber": {**SUBSCRIBER, "maturity_level": "3"}},
        {"catalog": {"titles": [_title("t1", year="2019")]}},
        {"catalog": {"titles": [_title("t1", genres="Drama")]}},
        {"catalog": {"titles": [_title("t1", artwork={"boxart": 7})]}},
        {"ratings": {"scores": {"t1": "97%"}}},
        {"ratings": {"scores": {"t1": 970}}},
        {"recommendations": {"rows": [{"id": "r", "kind": "k", "title": 1, "video_ids": ["t1"]}]}},
    ],
)
def test_home_compose_rejects_wrongly_typed_replies(results: dict[str, Any]):
    """Any backend value of the wrong type raises instead of reaching the device."""
    base = {
        "subscriber": SUBSCRIBER,
        "recommendations": ROWS,
        "catalog": CATALOG,
        "ratings": SCORES,
    }
    with pytest.raises(ShapeError):
        family.endpoint("home").plan.compose(family.ctx(HOME, **{**base, **results}))


def test_home_builders_reject_malformed_video_ids():
    """Ids that are not title ids (or not strings) never travel on to catalog or ratings."""
    for ids in (["t1", 2], ["t1,t2"], "t1"):
        bad = {"rows": [{"id": "r", "kind": "k", "title": "T", "video_ids": ids}]}
        with pytest.raises(ShapeError):
            family.steps("home")["catalog"].request(family.ctx(HOME, recommendations=bad))


SEARCH = {"q": "  heist ", "limit": 20}
HITS = {
    "query": "heist",
    "total": 2,
    "results": [{"id": "t3", "score": 9.1}, {"id": "t1", "score": 7.5}],
}


def test_search_runs_search_then_an_optional_catalog_batch():
    """The catalog depends on the search and falls back by omission."""
    steps = family.steps("search")
    assert steps["search"].after == ()
    assert steps["catalog"].after == ("search",)
    assert steps["catalog"].fallback is not None
    assert steps["catalog"].fallback.kind.value == "omit"


def test_search_builders_send_the_trimmed_query_then_the_hits():
    """The query is sent without surrounding spaces; the catalog is asked for the hits' cards."""
    ctx = family.ctx(SEARCH, search=HITS)
    assert family.target("search", "search", ctx) == ("GET", "/query?limit=20&q=heist")
    assert family.target("search", "catalog", ctx) == (
        "GET",
        "/titles?fields=title,year,boxart&ids=t3,t1",
    )
    no_hits = {"query": "zzz", "total": 0, "results": []}
    assert family.target("search", "catalog", family.ctx(SEARCH, search=no_hits)) is None


def test_search_composes_results_in_search_order():
    """Results keep the search ranking and carry id, title, year and boxart."""
    body = family.endpoint("search").plan.compose(family.ctx(SEARCH, search=HITS, catalog=CATALOG))
    assert body["query"] == "heist"
    assert body["total"] == 2
    assert body["results"] == [
        {
            "id": "t3",
            "title": "Title t3",
            "year": 2019,
            "boxart": "https://img.example.invalid/boxart/t3.jpg",
        },
        {
            "id": "t1",
            "title": "Title t1",
            "year": 2019,
            "boxart": "https://img.example.invalid/boxart/t1.jpg",
        },
    ]


def test_search_without_the_catalog_returns_bare_ids():
    """When the catalog step is omitted, each result carries its id only."""
    body = family.endpoint("search").plan.compose(family.ctx(SEARCH, search=HITS))
    assert body["results"] == [{"id": "t3"}, {"id": "t1"}]


def test_search_rejects_a_blank_query_and_a_wrongly_typed_reply():
    """q needs a non-space character; a non-integer total raises."""
    pattern = {p.name: p for p in family.endpoint("search").params}["q"].pattern
    assert pattern is not None
    assert re.fullmatch(pattern, " \t ") is None
    assert re.fullmatch(pattern, " a b ") is not None
    with pytest.raises(ShapeError):
        family.endpoint("search").plan.compose(family.ctx(SEARCH, search={**HITS, "total": "2"}))


TITLE = {
    **_title("t42", "TV-14"),
    "synopsis": "A crew plans one last job.",
    "duration_s": 3120,
    "type": "series",
    "artwork": {
        "boxart": "https://b/t42.jpg",
        "hero": "https://h/t42.jpg",
        "logo": "https://l/t42.png",
    },
}


def test_title_calls_catalog_ratings_and_bookmarks_in_parallel():
    """Three independent steps: title required, match static fallback, bookmark omitted."""
    steps = family.steps("title")
    assert all(step.after == () for step in steps.values())
    assert steps["title"].required
    assert steps["match"].fallback is not None
    assert steps["match"].fallback.value == {"scores": {}}
    assert steps["bookmark"].fallback is not None
    assert steps["bookmark"].fallback.kind.value == "omit"
    ctx = family.ctx({"id": "t42"})
    assert family.target("title", "title", ctx) == ("GET", "/titles/t42")
    assert family.target("title", "match", ctx) == ("GET", "/match/m1?ids=t42")
    assert family.target("title", "bookmark", ctx) == ("GET", "/m1/t42")


def test_title_composes_details_match_and_resume_point():
    """The details are the contract's fields plus match and resume position."""
    bookmark = {"member_id": "m1", "title_id": "t42", "position_s": 1800, "updated_at": "x"}
    ctx = family.ctx({"id": "t42"}, title=TITLE, match={"scores": {"t42": 88}}, bookmark=bookmark)
    assert family.endpoint("title").plan.compose(ctx) == {
        "id": "t42",
        "title": "Title t42",
        "synopsis": "A crew plans one last job.",
        "year": 2019,
        "genres": ["Drama"],
        "maturity_rating": "TV-14",
        "duration_s": 3120,
        "type": "series",
        "artwork": {
            "boxart": "https://b/t42.jpg",
            "hero": "https://h/t42.jpg",
            "logo": "https://l/t42.png",
        },
        "match": 88,
        "resume_position_s": 1800,
    }


def test_title_without_ratings_or_bookmark_has_null_match_and_resume_point():
    """With match's static fallback and bookmark omitted, both fields are null."""
    fallback = family.steps("title")["match"].fallback
    assert fallback is not None
    body = family.endpoint("title").plan.compose(
        family.ctx({"id": "t42"}, title=TITLE, match=fallback.value)
    )
    assert (body["match"], body["resume_position_s"]) == (None, None)


@pytest.mark.parametrize(
    "results",
    [
        {"title": {**TITLE, "id": "t43"}},
        {"title": {**TITLE, "duration_s": -1}},
        {"title": {**TITLE, "synopsis": ["A crew"]}},
        {"match": {"scores": []}},
        {"bookmark": {"position_s": "1800"}},
    ],
)
def test_title_compose_rejects_wrongly_typed_replies(results: dict[str, Any]):
    """Another title's details or wrongly typed fields raise instead of reaching the device."""
    base = {"title": TITLE, "match": {"scores": {}}}
    with pytest.raises(ShapeError):
        family.endpoint("title").plan.compose(family.ctx({"id": "t42"}, **{**base, **results}))
