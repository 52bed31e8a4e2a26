"""Discovery API (team discovery): the home page's rows, search, and a title's details.

The home page, in its two versions, lives in ``orchestrator/apis/discovery/home.py``.
"""

from __future__ import annotations

from typing import Any

from orchestrator.apis.discovery.home import home_v1, home_v2
from orchestrator.apis.shaping import (
    CatalogField,
    Reader,
    ShapeError,
    artwork,
    boxart,
    catalog_attributes,
    catalog_batch,
    catalog_index,
    match_request,
    match_scores,
    member_id,
    no_scores,
    resume_position,
    title_id,
    title_id_param,
    unique,
    unknown_title,
    wanted_fields,
)
from orchestrator.plans import (
    Auth,
    BackendRequest,
    Endpoint,
    Fallback,
    Param,
    Plan,
    Source,
    Step,
    StepContext,
    body,
    get,
    integer,
    obj,
    objects,
    text,
    texts,
)

__all__ = ["API", "TEAM", "endpoints"]

#: The family name: the second path segment and the first part of metric names.
API = "discovery"
#: The team that owns these endpoints.
TEAM = "discovery"

# In the order the catalog is asked for them.
_SEARCH_CARD = (
    CatalogField.plain("title", lambda t: t.text("title")),
    CatalogField.plain("year", lambda t: t.integer("year")),
    CatalogField.plain("boxart", boxart),
)
_DETAILS = (
    CatalogField.plain("title", lambda t: t.text("title")),
    CatalogField.plain("synopsis", lambda t: t.text("synopsis")),
    CatalogField.plain("year", lambda t: t.integer("year")),
    CatalogField.plain("genres", lambda t: t.texts("genres")),
    CatalogField.plain("maturity_rating", lambda t: t.text("maturity_rating")),
    CatalogField.plain("duration_s", lambda t: t.integer("duration_s", minimum=0)),
    CatalogField.plain("type", lambda t: t.text("type")),
    CatalogField(
        "artwork",
        (("artwork.boxart", "boxart"), ("artwork.hero", "hero"), ("artwork.logo", "logo")),
        artwork,
    ),
)


def endpoints() -> tuple[Endpoint, ...]:
    """The discovery endpoints: home (v1 and v2), search and title details."""
    return (home_v1(API, TEAM), _search(), _title(), home_v2(API, TEAM))


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
                Step("search", "search", _search_request, feeds=frozenset({"total", "results"})),
                # Without the catalog, results still come back, as bare ids; a device that
                # asks only for ids never waits for it.
                Step(
                    "catalog",
                    "catalog",
                    _search_catalog,
                    ("search",),
                    fallback=Fallback.omit(),
                    feeds=frozenset(f"results.{f.key}" for f in _SEARCH_CARD),
                ),
            ),
            _compose_search,
        ),
        deadline_ms=800,
        summary="Search the catalogue by title, person or genre.",
        fields=_SEARCH_FIELDS,
        params=(
            Param(
                "q",
                required=True,
                max_length=100,
                pattern=r"^\s*\S[\s\S]*$",  # at least one non-space character
                description="What to search for; surrounding spaces are ignored.",
                example="heist",
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
        example_fields="total,results(id,title)",
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
    return catalog_batch(_hits(ctx), catalog_attributes(ctx, "results", _SEARCH_CARD))


def _compose_search(ctx: StepContext) -> dict[str, Any]:
    page: dict[str, Any] = {"query": _query(ctx)}
    if not ctx.has("search"):  # only the query was asked for
        return page
    page["total"] = Reader(ctx.results["search"], "search").integer("total", minimum=0)
    hits = _hits(ctx)
    results: list[dict[str, Any]]
    if ctx.has("catalog"):
        titles = catalog_index(ctx.results["catalog"], set(hits))
        shown = wanted_fields(ctx, "results", _SEARCH_CARD)
        results = [
            {"id": hit, **{f.key: f.read(titles[hit]) for f in shown}}
            for hit in hits
            if hit in titles  # a hit the catalog no longer knows is not worth showing
        ]
    else:
        results = [{"id": hit} for hit in hits]
    page["results"] = results
    return page


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
                # Always asked (no feeds), if only for its id: it is what says the title exists.
                Step("title", "catalog", _title_request, device_errors=unknown_title("id")),
                Step(
                    "match",
                    "ratings",
                    _match_request,
                    fallback=no_scores(),
                    feeds=frozenset({"match"}),
                ),
                Step(
                    "bookmark",
                    "bookmarks",
                    _bookmark_request,
                    fallback=Fallback.omit(),
                    feeds=frozenset({"resume_position_s"}),
                ),
            ),
            _compose_title,
        ),
        deadline_ms=800,
        summary="A title's details, the member's match score and where they stopped watching.",
        fields=_TITLE_FIELDS,
        params=(title_id_param("id", Source.PATH, "The title id, e.g. t42."),),
        example_fields="title,synopsis,artwork(hero),match",
    )


def _title_request(ctx: StepContext) -> BackendRequest:
    if ctx.selection is None:
        return get("titles", ctx.params["id"])
    return get("titles", ctx.params["id"], fields=",".join(_title_attributes(ctx)))


def _title_attributes(ctx: StepContext) -> list[str]:
    return catalog_attributes(ctx, "", _DETAILS)


def _match_request(ctx: StepContext) -> BackendRequest | None:
    return match_request(ctx, (ctx.params["id"],))


def _bookmark_request(ctx: StepContext) -> BackendRequest:
    return get(member_id(ctx), ctx.params["id"])


def _compose_title(ctx: StepContext) -> dict[str, Any]:
    wanted: str = ctx.params["id"]
    title = Reader(ctx.results["title"], "catalog")
    if title_id(title, "id") != wanted:
        raise ShapeError("catalog: the reply is for another title")
    details: dict[str, Any] = {"id": wanted}
    details.update((f.key, f.read(title)) for f in wanted_fields(ctx, "", _DETAILS))
    match = None
    if ctx.has("match"):
        match = match_scores(ctx.results["match"], (wanted,)).get(wanted)
    details.update(match=match, resume_position_s=resume_position(ctx, "bookmark"))
    return details


# -- response fields -----------------------------------------------------------------------

_SEARCH_FIELDS = body(
    text("query", "The query as searched (without surrounding spaces)."),
    integer("total", "How many titles match in all."),
    objects(
        "results",
        "The best matches, best first.",
        text("id", "The title id."),
        text("title", "The title's name."),
        integer("year", "Year of release."),
        text("boxart", "Box-art URL."),
    ),
)

_TITLE_FIELDS = body(
    text("id", "The title id."),
    text("title", "The title's name."),
    text("synopsis", "A short summary."),
    integer("year", "Year of release."),
    texts("genres", "Genres, most specific first."),
    text("maturity_rating", "Content rating, e.g. PG-13 or TV-MA."),
    integer("duration_s", "Running time (a series: of an episode), in seconds."),
    text("type", "movie or series."),
    obj(
        "artwork",
        "The title's images.",
        text("boxart", "Box-art URL.", nullable=True),
        text("hero", "Wide hero image URL.", nullable=True),
        text("logo", "Title logo URL.", nullable=True),
    ),
    integer("match", "The member's match percentage (0-100); null if unscored.", nullable=True),
    integer(
        "resume_position_s", "Where the member stopped watching; null if never.", nullable=True
    ),
)
