"""The home page (team discovery): personalised rows of title cards, in two versions.

v1 cards carry ``boxart`` and rows a bare ``kind``; v2 cards carry an ``images`` object and
rows a typed ``context``. Both run the same steps, built by one factory with the same
dependencies, fallbacks and feeds, and answer the same page; only the catalog attributes a
card is made of, the shape of a row and the fields that document them differ. v1 announces
its retirement in ``Deprecation``/``Sunset`` headers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from orchestrator.apis.shaping import (
    CATALOG_BATCH_MAX,
    MOST_MATURE,
    TITLE_ID_PATTERN,
    CatalogField,
    Reader,
    artwork,
    boxart,
    catalog_attributes,
    catalog_batch,
    catalog_index,
    match_request,
    match_scores,
    maturity_level,
    member_id,
    no_scores,
    subscriber_request,
    title_ids,
    unique,
    wanted_fields,
)
from orchestrator.plans import (
    Auth,
    BackendRequest,
    Endpoint,
    Field,
    Param,
    Plan,
    RequestBuilder,
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

__all__ = ["V1_DEPRECATED", "V1_SUNSET", "home_v1", "home_v2"]

_MAX_ROWS = 40
_MAX_PER_ROW = 75
# The largest home page holds 40 x 75 = 3,000 distinct titles but a catalog batch takes
# 500, so catalog and ratings calls are declared in up to six batches. Batches past the
# page's last id ask for nothing and are skipped: the default 10 x 20 page makes one of each.
_HOME_BATCHES = -(-_MAX_ROWS * _MAX_PER_ROW // CATALOG_BATCH_MAX)
_CARDS = "rows.videos"
# Every card needs the rating, shown or not: titles above the member's level are left out.
_FILTER_ATTRIBUTES = ("maturity_rating",)
_TITLE_ID = re.compile(TITLE_ID_PATTERN)

#: v1 was deprecated when v2 shipped, and stops answering six months later.
V1_DEPRECATED = datetime(2026, 1, 1, tzinfo=UTC)
V1_SUNSET = datetime(2027, 7, 1, tzinfo=UTC)

# In the order the catalog is asked for them.
_COMMON_CARD: tuple[CatalogField, ...] = (
    CatalogField.plain("title", lambda t: t.text("title")),
    CatalogField.plain("year", lambda t: t.integer("year")),
    CatalogField.plain("genres", lambda t: t.texts("genres")),
    CatalogField.plain("maturity_rating", lambda t: t.text("maturity_rating")),
)
_V1_CARD = (*_COMMON_CARD, CatalogField.plain("boxart", boxart))
_V2_CARD = (
    *_COMMON_CARD,
    CatalogField(
        "images",
        (("images.boxart", "boxart"), ("images.hero", "hero"), ("images.logo", "logo")),
        artwork,
    ),
)


def _params() -> tuple[Param, ...]:
    return (
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
    )


def home_v1(api: str, team: str) -> Endpoint:
    """``GET /v1/discovery/home``: rows of cards with boxart; deprecated in favour of v2."""
    return Endpoint(
        name="home",
        api=api,
        team=team,
        method="GET",
        path="/v1/discovery/home",
        auth=Auth.MEMBER,
        plan=_plan(_V1_CARD, _row_v1),
        deadline_ms=1000,
        summary="The member's home page: personalised rows of titles with match scores.",
        fields=_V1_FIELDS,
        params=_params(),
        example_fields="rows(title,videos(id,title,boxart))",
        successor="/v2/discovery/home",
        deprecated=V1_DEPRECATED,
        sunset=V1_SUNSET,
    )


def home_v2(api: str, team: str) -> Endpoint:
    """``GET /v2/discovery/home``: rows with a typed context, cards with an images object."""
    return Endpoint(
        name="home_v2",
        api=api,
        team=team,
        method="GET",
        path="/v2/discovery/home",
        auth=Auth.MEMBER,
        plan=_plan(_V2_CARD, _row_v2),
        deadline_ms=1000,
        summary="The member's home page: rows with a typed context, titles with all images.",
        fields=_V2_FIELDS,
        params=_params(),
        version=2,
        example_fields="rows(context(type),videos(id,title,images(boxart)))",
    )


# -- steps ---------------------------------------------------------------------------------

#: A row and its cards -> the row as the device sees it.
_RowShape = Callable[[Reader, list[dict[str, Any]]], dict[str, Any]]


def _plan(card: Sequence[CatalogField], row: _RowShape) -> Plan:
    """A version's plan: its steps fetch the attributes ``card`` is made of, and its compose
    shows those cards in rows shaped by ``row``."""

    def compose(ctx: StepContext) -> dict[str, Any]:
        return _page(ctx, card, row)

    return Plan(_steps(card), compose)


def _steps(card: Sequence[CatalogField]) -> tuple[Step, ...]:
    """The home page's steps; ``card`` says which catalog attributes a card is made of."""
    # The rows need the member (their maturity level filters titles) and the catalog (it
    # drops unknown ids, and with them empty rows), so both feed all of "rows".
    steps = [
        Step(
            "subscriber",
            "subscriber",
            subscriber_request,
            feeds=frozenset({"member", "rows"}),
        ),
        Step(
            "recommendations",
            "recommendations",
            _rows_request,
            after=("subscriber",),
            feeds=frozenset({"rows"}),
        ),
    ]
    for batch in range(_HOME_BATCHES):
        steps.append(
            Step(
                _batch_step("catalog", batch),
                "catalog",
                _catalog_batch(batch, card),
                ("recommendations",),
                feeds=frozenset({"rows"}),
            )
        )
        steps.append(
            Step(
                _batch_step("ratings", batch),
                "ratings",
                _ratings_batch(batch),
                ("recommendations",),
                fallback=no_scores(),
                feeds=frozenset({f"{_CARDS}.match"}),
            )
        )
    return tuple(steps)


def _batch_step(base: str, batch: int) -> str:
    """``catalog``, ``catalog_2``, ...: the first batch keeps the plain name."""
    return base if batch == 0 else f"{base}_{batch + 1}"


def _rows_request(ctx: StepContext) -> BackendRequest:
    return get("rows", member_id(ctx), rows=ctx.params["rows"], per_row=ctx.params["per_row"])


def _home_rows(ctx: StepContext) -> list[tuple[Reader, list[str]]]:
    """Each row with its video ids, cut to the size asked for (a backend may send more).
    Parsed and validated once per request: every batch builder and compose read it."""
    return ctx.memo(_parse_home_rows)


def _parse_home_rows(ctx: StepContext) -> list[tuple[Reader, list[str]]]:
    reply = Reader(ctx.results["recommendations"], "recommendations")
    rows = reply.children("rows")[: ctx.params["rows"]]
    return [(row, title_ids(row, "video_ids")[: ctx.params["per_row"]]) for row in rows]


def _all_home_ids(ctx: StepContext) -> list[str]:
    return unique(video for _, videos in _home_rows(ctx) for video in videos)


def _home_ids(ctx: StepContext, batch: int) -> list[str]:
    ids = ctx.memo(_all_home_ids)
    return ids[batch * CATALOG_BATCH_MAX : (batch + 1) * CATALOG_BATCH_MAX]


def _catalog_batch(batch: int, card: Sequence[CatalogField]) -> RequestBuilder:
    def build(ctx: StepContext) -> BackendRequest | None:
        attributes = catalog_attributes(ctx, _CARDS, card, _FILTER_ATTRIBUTES)
        return catalog_batch(_home_ids(ctx, batch), attributes)

    return build


def _ratings_batch(batch: int) -> RequestBuilder:
    def build(ctx: StepContext) -> BackendRequest | None:
        return match_request(ctx, _home_ids(ctx, batch))

    return build


# -- compose -------------------------------------------------------------------------------


def _page(ctx: StepContext, card: Sequence[CatalogField], shape: _RowShape) -> dict[str, Any]:
    """The page from whatever steps ran: a step pruned away leaves its part out."""
    member = Reader(ctx.results["subscriber"], "subscriber") if ctx.has("subscriber") else None
    rows: list[dict[str, Any]] = []
    if member is not None and ctx.has("recommendations"):
        level = member.integer("maturity_level", 0, MOST_MATURE)
        rows = [shape(row, cards) for row, cards in _rows_of_cards(ctx, card, level)]
    page: dict[str, Any] = {"rows": rows}
    if member is not None:
        page["member"] = {"name": member.text("name"), "country": member.text("country")}
    return page


def _rows_of_cards(
    ctx: StepContext, card: Sequence[CatalogField], level: int
) -> list[tuple[Reader, list[dict[str, Any]]]]:
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
    shown = wanted_fields(ctx, _CARDS, card)
    result = []
    for row, videos in rows:
        cards = [
            _card(titles[video], shown, scores.get(video))
            for video in videos
            # Unknown ids (the catalog omits them) and titles above the member's maturity
            # level are left out; a row with nothing left is not shown at all.
            if video in titles and maturity_level(titles[video].text("maturity_rating")) <= level
        ]
        if cards:
            result.append((row, cards))
    return result


def _card(title: Reader, shown: Sequence[CatalogField], match: int | None) -> dict[str, Any]:
    card: dict[str, Any] = {"id": title.text("id")}
    for catalog_field in shown:
        card[catalog_field.key] = catalog_field.read(title)
    card["match"] = match
    return card


def _row_v1(row: Reader, cards: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.text("id"),
        "kind": row.text("kind"),
        "title": row.text("title"),
        "videos": cards,
    }


def _row_v2(row: Reader, cards: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.text("id"),
        "title": row.text("title"),
        "context": _context(row),
        "videos": cards,
    }


def _context(row: Reader) -> dict[str, Any]:
    """Why the row is there, typed: its kind, and the genre or title it is built around."""
    kind = row.text("kind")
    # Row ids carry the row's subject after the kind: "genre:thriller", "because_you_watched:t42".
    subject = row.text("id").partition(":")[2]
    genre = subject if kind == "genre" and subject else None
    seed = subject if kind == "because_you_watched" and _TITLE_ID.fullmatch(subject) else None
    return {"type": kind, "genre": genre, "title_id": seed}


# -- response fields -----------------------------------------------------------------------


def _card_fields(images: Field) -> tuple[Field, ...]:
    return (
        text("id", "The title id, e.g. t42."),
        text("title", "The title's name."),
        integer("year", "Year of release."),
        texts("genres", "Genres, most specific first."),
        text("maturity_rating", "Content rating, e.g. PG-13 or TV-MA."),
        images,
        integer("match", "The member's match percentage (0-100); null if unscored.", nullable=True),
    )


_MEMBER = obj(
    "member",
    "Who the page is for.",
    text("name", "The member's name."),
    text("country", "ISO 3166-1 alpha-2 country of the account."),
)

_ROW_ID = text("id", "The row id, e.g. genre:thriller.")
_ROW_TITLE = text("title", "The row's heading.")


def _page_fields(*row: Field, images: Field) -> Field:
    """A version's page: rows of ``row`` fields holding cards with ``images``, and the member."""
    return body(
        objects(
            "rows",
            "Rows in display order; a row with nothing the member may watch is left out.",
            *row,
            objects("videos", "The row's titles.", *_card_fields(images)),
        ),
        _MEMBER,
    )


_V1_FIELDS = _page_fields(
    _ROW_ID,
    text("kind", "What the row is: top_10, trending, genre, because_you_watched..."),
    _ROW_TITLE,
    images=text("boxart", "Box-art URL."),
)

_V2_FIELDS = _page_fields(
    _ROW_ID,
    _ROW_TITLE,
    obj(
        "context",
        "Why the row is there.",
        text("type", "top_10, trending, genre, because_you_watched, continue_watching..."),
        text("genre", "For a genre row: the genre.", nullable=True),
        text("title_id", "For a because_you_watched row: the title.", nullable=True),
    ),
    images=obj(
        "images",
        "The title's images.",
        text("boxart", "Box-art URL.", nullable=True),
        text("hero", "Wide hero image URL.", nullable=True),
        text("logo", "Title logo URL.", nullable=True),
    ),
)
