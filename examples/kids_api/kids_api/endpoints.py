"""Kids API (team kids): the shows a kids profile may watch, and one show's details.

Two backends of the team's own: ``parental`` (a member's parental controls) and
``kids_catalog`` (the shows, each with the youngest age it suits). The list is a plan of
two dependent steps: the controls first, then the catalogue filtered by their age limit.
Without the controls the list still comes, limited to the youngest age and marked degraded.
"""

from __future__ import annotations

from typing import Any

from orchestrator.plans import (
    Auth,
    BackendRequest,
    DeviceError,
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
    objects,
    text,
    texts,
)

__all__ = ["API", "TEAM", "endpoints"]

#: The package name: the second path segment and the first part of metric names.
API = "kids"
#: The team that owns these endpoints.
TEAM = "kids"

#: The age limit when the parental controls cannot be read: the strictest there is.
YOUNGEST = 3

_SHOW = (
    text("id", "Show id."),
    text("title", "Show title."),
    integer("min_age", "Youngest age the show suits."),
    texts("genres", "Genres, most specific first."),
)
_SHOWS_FIELDS = body(
    integer("max_age", "The age limit applied (the member's parental controls)."),
    objects("shows", "Shows within the age limit, best first.", *_SHOW),
)
_SHOW_FIELDS = body(*_SHOW, text("synopsis", "A short synopsis for the show page."))


def endpoints() -> tuple[Endpoint, ...]:
    """The kids endpoints: the shows list and one show."""
    shows = Endpoint(
        name="shows",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/kids/shows",
        auth=Auth.MEMBER,
        plan=Plan(
            (
                Step(
                    "controls",
                    "parental",
                    _controls_request,
                    fallback=Fallback.static({"max_age": YOUNGEST}),
                    feeds=frozenset({"max_age", "shows"}),
                ),
                Step(
                    "shows",
                    "kids_catalog",
                    _shows_request,
                    after=("controls",),
                    feeds=frozenset({"shows"}),
                ),
            ),
            _compose_shows,
        ),
        deadline_ms=800,
        summary="The shows the kids profile may watch, within its parental controls.",
        fields=_SHOWS_FIELDS,
        params=(
            Param(
                "limit",
                kind=int,
                default=20,
                minimum=1,
                maximum=50,
                description="How many shows to return.",
                example=10,
            ),
        ),
        example_fields="max_age,shows(id,title)",
    )
    show = Endpoint(
        name="show",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/kids/shows/{show_id}",
        auth=Auth.PUBLIC,
        plan=Plan(
            (
                Step(
                    "show",
                    "kids_catalog",
                    _show_request,
                    device_errors={404: DeviceError("not_found", "No such show.", "show_id")},
                ),
            ),
            _compose_show,
        ),
        deadline_ms=500,
        summary="One show's details.",
        fields=_SHOW_FIELDS,
        params=(
            Param(
                "show_id",
                source=Source.PATH,
                required=True,
                max_length=32,
                pattern=r"^[a-z0-9-]+$",
                description="The show's id.",
                example="s1",
            ),
        ),
    )
    return (shows, show)


def _controls_request(ctx: StepContext) -> BackendRequest:
    return get("controls", ctx.member_id or "")


def _shows_request(ctx: StepContext) -> BackendRequest:
    max_age = int(ctx.results["controls"]["max_age"])
    return get("shows", max_age=max_age, limit=ctx.params["limit"])


def _compose_shows(ctx: StepContext) -> dict[str, Any]:
    max_age = int(ctx.results["controls"]["max_age"])
    shows = ctx.results["shows"]["shows"] if ctx.has("shows") else []
    return {
        "max_age": max_age,
        "shows": [_show(show) for show in shows if int(show["min_age"]) <= max_age],
    }


def _show_request(ctx: StepContext) -> BackendRequest:
    return get("shows", ctx.params["show_id"])


def _compose_show(ctx: StepContext) -> dict[str, Any]:
    show = ctx.results["show"]
    return {**_show(show), "synopsis": str(show.get("synopsis", ""))}


def _show(show: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(show["id"]),
        "title": str(show["title"]),
        "min_age": int(show["min_age"]),
        "genres": [str(genre) for genre in show.get("genres", ())],
    }
