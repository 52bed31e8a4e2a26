"""Discovery API (team discovery): the home page's rows, search, and a title's details."""

from __future__ import annotations

from typing import Any

from actors.plan import RequestBuilder
from backends.transport import BackendRequest, get
from orchestrator.apis.shaping import (
    CATALOG_BATCH_MAX,
    MOST_MATURE,
    TITLE_ID_PATTERN,
    Reader,
    ShapeError,
    artwork,
    boxart,
    catalog_batch,
    catalog_index,
    match_scores,
    maturity_level,
    member_id,
    title_id,
    title_ids,
    unique,
)
from orchestrator.plans import Auth, Endpoint, Fallback, Param, Plan, Source, Step, StepContext

__all__ = ["API", "TEAM", "endpoints"]

#: The family name: the second path segment and the first part of metric names.
API = "discovery"
#: The team that owns these endpoints.
TEAM = "discovery"

_MAX_ROWS = 40
_MAX_PER_ROW = 75
# The largest home page holds 40 x 75 = 3,000 distinct titles but a catalog batch takes
# 500, so catalog and ratings calls are declared in up to six batches. Batches past the
# page's last id ask for nothing and are skipped: the default 10 x 20 page makes one of each.
_HOME_BATCHES = -(-_MAX_ROWS * _MAX_PER_ROW // CATALOG_BATCH_MAX)
_CARD_FIELDS = ("title", "year", "genres", "maturity_rating", "boxart")
_SEARCH_FIELDS = ("title", "year", "boxart")


def _no_scores() -> Fallback:
    """Without match scores a page still renders; cards just show no match percentage."""
    return Fallback.static({"scores": {}})


def endpoints() -> tuple[Endpoint, ...]:
    """The discovery endpoints: home, search and title details."""
    return (_home(), _search(), _title())


# -- home ----------------------------------------------------------------------------------


def _home() -> Endpoint:
    steps = [
        Step("subscriber", "subscriber", _subscriber_request),
        Step("recommendations", "recommendations", _rows_request, after=("subscriber",)),
    ]
    for batch in range(_HOME_BATCHES):
        steps.append(
            Step(
                _batch_step("catalog", batch),
                "catalog",
                _catalog_batch(batch),
                ("recommendations",),
            )
        )
        steps.append(
            Step(
                _batch_step("ratings", batch),
                "ratings",
                _ratings_batch(batch),
                ("recommendations",),
                fallback=_no_scores(),
            )
        )
    return Endpoint(
        name="home",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/discovery/home",
        auth=Auth.MEMBER,
        plan=Plan(tuple(steps), _compose_home),
        deadline_ms=1000,
        summary="The member's home page: personalised rows of titles with match scores.",
        params=(
            Param(
                "rows",
                kind=int,
                default=10,
                minimum=1,
                maximum=_MAX_ROWS,
                description="How many rows to return.",
            ),
            Param(
                "per_row",
                kind=int,
                default=20,
                minimum=1,
                maximum=_MAX_PER_ROW,
                description="How many titles each row holds at most.",
            ),
        ),
    )


def _batch_step(base: str, batch: int) -> str:
    """``catalog``, ``catalog_2``, ...: the first batch keeps the plain name."""
    return base if batch == 0 else f"{base}_{batch + 1}"


def _subscriber_request(ctx: StepContext) -> BackendRequest:
    return get("members", member_id(ctx))


def _rows_request(ctx: StepContext) -> BackendRequest:
    return get("rows", member_id(ctx), rows=ctx.params["rows"], per_row=ctx.params["per_row"])


def _home_rows(ctx: StepContext) -> list[tuple[Reader, list[str]]]:
    """Each row with its video ids, cut to the size asked for (a backend may send more)."""
    reply = Reader(ctx.results["recommendations"], "recommendations")
    rows = reply.children("rows")[: ctx.params["rows"]]
    return [(row, title_ids(row, "video_ids")[: ctx.params["per_row"]]) for row in rows]


def _home_ids(ctx: StepContext, batch: int) -> list[str]:
    ids = unique(video for _, videos in _home_rows(ctx) for video in videos)
    return ids[batch * CATALOG_BATCH_MAX : (batch + 1) * CATALOG_BATCH_MAX]


def _catalog_batch(batch: int) -> RequestBuilder:
    def build(ctx: StepContext) -> BackendRequest | None:
        return catalog_batch(_home_ids(ctx, batch), _CARD_FIELDS)

    return build


def _ratings_batch(batch: int) -> RequestBuilder:
    def build(ctx: StepContext) -> BackendRequest | None:
        ids = _home_ids(ctx, batch)
        return get("match", member_id(ctx), ids=",".join(ids)) if ids else None

    return build


def _compose_home(ctx: StepContext) -> dict[str, Any]:
    member = Reader(ctx.results["subscriber"], "subscriber")
    level = member.integer("maturity_level", 0, MOST_MATURE)
    rows = _home_rows(ctx)
    wanted = {video for _, videos in rows for video in videos}
    titles: dict[str, Reader] = {}
    scores: dict[str, int] = {}
    for batch in range(_HOME_BATCHES):
        catalog, ratings = _batch_step("catalog", batch), _batch_step("ratings", batch)
        if ctx.has(catalog):
            titles.update(catalog_index(ctx.results[catalog], wanted))
        if ctx.has(ratings):
            scores.update(match_scores(ctx.results[ratings], _home_ids(ctx, batch)))
    shaped = []
    for row, videos in rows:
        cards = [
            _card(titles[video], scores.get(video))
            for video in videos
            # Unknown ids (the catalog omits them) and titles above the member's maturity
            # level are left out; a row with nothing left is not shown at all.
            if video in titles and maturity_level(titles[video].text("maturity_rating")) <= level
        ]
        if cards:
            shaped.append(
                {
                    "id": row.text("id"),
                    "kind": row.text("kind"),
                    "title": row.text("title"),
                    "videos": cards,
                }
            )
    return {
        "rows": shaped,
        "member": {"name": member.text("name"), "country": member.text("country")},
    }


def _card(title: Reader, match: int | None) -> dict[str, Any]:
    return {
        "id": title.text("id"),
        "title": title.text("title"),
        "year": title.integer("year"),
        "maturity_rating": title.text("maturity_rating"),
        "genres": title.texts("genres"),
        "boxart": boxart(title),
        "match": match,
    }


# -- search --------------------------------------------------------------------------------


def _search() -> Endpoint:
    return Endpoint(
        name="search",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/discovery/search",
        auth=Auth.MEMBER,
        plan=Plan(
            (
                Step("search", "search", _search_request),
                # Without the catalog, results still come back, as bare ids.
                Step("catalog", "catalog", _search_catalog, ("search",), fallback=Fallback.omit()),
            ),
            _compose_search,
        ),
        deadline_ms=800,
        summary="Search the catalogue by title, person or genre.",
        params=(
            Param(
                "q",
                required=True,
                max_length=100,
                pattern=r"^\s*\S[\s\S]*$",  # at least one non-space character
                description="What to search for; surrounding spaces are ignored.",
            ),
            Param(
                "limit",
                kind=int,
                default=20,
                minimum=1,
                maximum=50,
                description="How many results to return at most.",
            ),
        ),
    )


def _query(ctx: StepContext) -> str:
    text: str = ctx.params["q"]
    return text.strip()


def _search_request(ctx: StepContext) -> BackendRequest:
    return get("query", q=_query(ctx), limit=ctx.params["limit"])


def _hits(ctx: StepContext) -> list[str]:
    results = Reader(ctx.results["search"], "search").children("results")
    return unique(title_id(hit, "id") for hit in results)[: ctx.params["limit"]]


def _search_catalog(ctx: StepContext) -> BackendRequest | None:
    return catalog_batch(_hits(ctx), _SEARCH_FIELDS)


def _compose_search(ctx: StepContext) -> dict[str, Any]:
    total = Reader(ctx.results["search"], "search").integer("total", minimum=0)
    hits = _hits(ctx)
    results: list[dict[str, Any]]
    if ctx.has("catalog"):
        titles = catalog_index(ctx.results["catalog"], set(hits))
        results = [
            {
                "id": hit,
                "title": titles[hit].text("title"),
                "year": titles[hit].integer("year"),
                "boxart": boxart(titles[hit]),
            }
            for hit in hits
            if hit in titles  # a hit the catalog no longer knows is not worth showing
        ]
    else:
        results = [{"id": hit} for hit in hits]
    return {"query": _query(ctx), "total": total, "results": results}


# -- title details -------------------------------------------------------------------------


def _title() -> Endpoint:
    return Endpoint(
        name="title",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/discovery/titles/{id}",
        auth=Auth.MEMBER,
        plan=Plan(
            (
                Step("title", "catalog", _title_request),
                Step("match", "ratings", _match_request, fallback=_no_scores()),
                Step("bookmark", "bookmarks", _bookmark_request, fallback=Fallback.omit()),
            ),
            _compose_title,
        ),
        deadline_ms=800,
        summary="A title's details, the member's match score and where they stopped watching.",
        params=(
            Param(
                "id",
                source=Source.PATH,
                required=True,
                max_length=8,
                pattern=TITLE_ID_PATTERN,
                description="The title id, e.g. t42.",
            ),
        ),
    )


def _title_request(ctx: StepContext) -> BackendRequest:
    return get("titles", ctx.params["id"])


def _match_request(ctx: StepContext) -> BackendRequest:
    return get("match", member_id(ctx), ids=ctx.params["id"])


def _bookmark_request(ctx: StepContext) -> BackendRequest:
    return get(member_id(ctx), ctx.params["id"])


def _compose_title(ctx: StepContext) -> dict[str, Any]:
    wanted: str = ctx.params["id"]
    title = Reader(ctx.results["title"], "catalog")
    if title_id(title, "id") != wanted:
        raise ShapeError("catalog: the reply is for another title")
    resume = None
    if ctx.has("bookmark"):
        resume = Reader(ctx.results["bookmark"], "bookmarks").integer("position_s", minimum=0)
    return {
        "id": wanted,
        "title": title.text("title"),
        "synopsis": title.text("synopsis"),
        "year": title.integer("year"),
        "genres": title.texts("genres"),
        "maturity_rating": title.text("maturity_rating"),
        "duration_s": title.integer("duration_s", minimum=0),
        "type": title.text("type"),
        "artwork": artwork(title),
        "match": match_scores(ctx.results["match"], (wanted,)).get(wanted),
        "resume_position_s": resume,
    }
