"""Playback API (team playback): start playing, report the position, and viewing history."""

from __future__ import annotations

from typing import Any

from orchestrator.apis.shaping import (
    Reader,
    ShapeError,
    catalog_batch,
    catalog_index,
    member_id,
    resume_position,
    subscriber_request,
    title_id,
    title_id_param,
    unique,
    unknown_title,
)
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
    boolean,
    get,
    integer,
    number,
    obj,
    objects,
    post,
    put,
    text,
)

__all__ = ["API", "TEAM", "endpoints"]

#: The family name: the second path segment and the first part of metric names.
API = "playback"
#: The team that owns these endpoints.
TEAM = "playback"

_MAX_POSITION_S = 86_400
_PROGRESS_DIGITS = 3


def endpoints() -> tuple[Endpoint, ...]:
    """The playback endpoints: play, heartbeat and history."""
    return (_play(), _heartbeat(), _history())


# -- play ----------------------------------------------------------------------------------


def _play() -> Endpoint:
    # What every device on the market plays: when the device service is down, a stream
    # that looks worse beats no stream.
    generic_device = {
        "max_resolution": "720p",
        "codecs": ["h264"],
        "drm": "widevine",
        "hdr": False,
        "audio": ["aac-stereo"],
    }
    return Endpoint(
        name="play",
        api=API,
        team=TEAM,
        method="POST",
        path="/v1/playback/play",
        auth=Auth.MEMBER,
        # The decision and the licence always run (no feeds): they are what play is for.
        plan=Plan(
            (
                Step("subscriber", "subscriber", subscriber_request),
                Step("device", "device", _device_request, fallback=Fallback.static(generic_device)),
                Step(
                    "decision",
                    "playback",
                    _decision_request,
                    ("subscriber", "device"),
                    device_errors=unknown_title("title_id"),
                ),
                # No bookmark means starting from the beginning, not failing to play.
                Step(
                    "bookmark",
                    "bookmarks",
                    _bookmark_request,
                    ("subscriber", "device"),
                    fallback=Fallback.static({"position_s": 0}),
                    feeds=frozenset({"resume_position_s"}),
                ),
                # Needs the decision (is playing allowed?) and the device (which DRM).
                Step("license", "licensing", _license_request, ("device", "decision")),
            ),
            _compose_play,
        ),
        deadline_ms=1500,
        summary="Whether and how a title plays on a device, with its licence and resume point.",
        fields=_PLAY_FIELDS,
        params=(
            title_id_param("title_id", Source.BODY, "The title to play, e.g. t42."),
            Param(
                "device_type",
                source=Source.BODY,
                required=True,
                max_length=40,
                pattern=r"^[a-z0-9-]{1,40}$",
                description="The device model family, e.g. tv-samsung-2024 or web-chrome.",
                example="tv-samsung-2024",
            ),
        ),
        example_fields="allowed,reason,stream(manifest_url),license(id)",
    )


def _device_request(ctx: StepContext) -> BackendRequest:
    return get("devices", ctx.params["device_type"])


def _decision_request(ctx: StepContext) -> BackendRequest:
    member = Reader(ctx.results["subscriber"], "subscriber")
    body = {
        "member_id": member_id(ctx),
        "title_id": ctx.params["title_id"],
        "device_type": ctx.params["device_type"],
        "plan_id": member.text("plan_id"),
        "country": member.text("country"),
    }
    return post("decisions", body=body)


def _bookmark_request(ctx: StepContext) -> BackendRequest:
    return get(member_id(ctx), ctx.params["title_id"])


def _allowed(ctx: StepContext) -> bool:
    return Reader(ctx.results["decision"], "playback").flag("allowed")


def _license_request(ctx: StepContext) -> BackendRequest | None:
    if not _allowed(ctx):
        return None  # nothing to license: compose explains the refusal
    body = {
        "member_id": member_id(ctx),
        "title_id": ctx.params["title_id"],
        "drm": Reader(ctx.results["device"], "device").text("drm"),
        "device_type": ctx.params["device_type"],
    }
    return post("licenses", body=body)


def _compose_play(ctx: StepContext) -> dict[str, Any]:
    decision = Reader(ctx.results["decision"], "playback")
    if not decision.flag("allowed"):
        return {"allowed": False, "reason": decision.optional_text("reason")}
    if not ctx.has("license"):
        raise ShapeError("licensing: playing is allowed but there is no licence")
    stream = decision.child("stream")
    grant = Reader(ctx.results["license"], "licensing")
    resume = resume_position(ctx, "bookmark")
    return {
        "allowed": True,
        "title_id": ctx.params["title_id"],
        "stream": {
            "manifest_url": stream.text("manifest_url"),
            "resolution": stream.text("resolution"),
            "codec": stream.text("codec"),
            "bitrate_kbps": stream.integer("bitrate_kbps", minimum=1),
            "cdn": stream.text("cdn"),
        },
        "license": {
            "id": grant.text("license_id"),
            "drm": grant.text("drm"),
            "expires_in_s": grant.integer("expires_in_s", minimum=0),
        },
        "resume_position_s": resume,
    }


# -- heartbeat -----------------------------------------------------------------------------


def _heartbeat() -> Endpoint:
    return Endpoint(
        name="heartbeat",
        api=API,
        team=TEAM,
        method="POST",
        path="/v1/playback/heartbeat",
        auth=Auth.MEMBER,
        # A write: it runs whatever the device selects.
        plan=Plan(
            (
                Step(
                    "bookmark",
                    "bookmarks",
                    _save_request,
                    device_errors={
                        **unknown_title("title_id"),
                        400: DeviceError(
                            "invalid_parameter",
                            "Parameter 'position_s' is invalid: it is past the end of the title.",
                            "position_s",
                        ),
                    },
                ),
            ),
            _compose_heartbeat,
        ),
        deadline_ms=500,
        summary="Save the playing position, so the member can resume on any device.",
        fields=_HEARTBEAT_FIELDS,
        params=(
            title_id_param("title_id", Source.BODY, "The title being played, e.g. t42."),
            Param(
                "position_s",
                kind=int,
                source=Source.BODY,
                required=True,
                minimum=0,
                maximum=_MAX_POSITION_S,
                description="Playing position in whole seconds from the start.",
                example=120,
            ),
        ),
    )


def _save_request(ctx: StepContext) -> BackendRequest:
    return put(
        member_id(ctx), ctx.params["title_id"], body={"position_s": ctx.params["position_s"]}
    )


def _compose_heartbeat(ctx: StepContext) -> dict[str, Any]:
    saved = Reader(ctx.results["bookmark"], "bookmarks")
    return {
        "title_id": ctx.params["title_id"],
        "position_s": saved.integer("position_s", minimum=0),  # what is stored is the truth
        "saved": True,
    }


# -- history -------------------------------------------------------------------------------


def _history() -> Endpoint:
    return Endpoint(
        name="history",
        api=API,
        team=TEAM,
        method="GET",
        path="/v1/playback/history",
        auth=Auth.MEMBER,
        plan=Plan(
            (
                Step("history", "history", _history_request, feeds=frozenset({"items"})),
                # Without the catalog the items still come back, without their names.
                Step(
                    "catalog",
                    "catalog",
                    _history_catalog,
                    ("history",),
                    fallback=Fallback.omit(),
                    feeds=frozenset({"items.title"}),
                ),
            ),
            _compose_history,
        ),
        deadline_ms=1000,
        summary="What the member watched, newest first, with how far they got.",
        fields=_HISTORY_FIELDS,
        example_fields="items(title_id,title,progress)",
        params=(
            Param(
                "limit",
                kind=int,
                default=20,
                minimum=1,
                maximum=100,
                description="How many items to return at most.",
            ),
        ),
    )


def _history_request(ctx: StepContext) -> BackendRequest:
    return get(member_id(ctx), limit=ctx.params["limit"])


def _items(ctx: StepContext) -> list[Reader]:
    items = Reader(ctx.results["history"], "history").children("items")
    return items[: ctx.params["limit"]]  # a backend that sends more does not grow the reply


def _history_catalog(ctx: StepContext) -> BackendRequest | None:
    ids = unique(title_id(item, "title_id") for item in _items(ctx))
    return catalog_batch(ids, ("title",))


def _compose_history(ctx: StepContext) -> dict[str, Any]:
    if not ctx.has("history"):  # nothing was selected that needs it
        return {}
    items = _items(ctx)
    titles: dict[str, Reader] = {}
    if ctx.has("catalog"):
        titles = catalog_index(ctx.results["catalog"], {title_id(i, "title_id") for i in items})
    shaped = []
    for item in items:
        watched = title_id(item, "title_id")
        position = item.integer("position_s", minimum=0)
        duration = item.integer("duration_s", minimum=0)
        entry: dict[str, Any] = {"title_id": watched}
        # "title" is present only when known: the catalog fell back, or no longer has it.
        if watched in titles:
            entry["title"] = titles[watched].text("title")
        entry.update(
            watched_at=item.text("watched_at"),
            position_s=position,
            duration_s=duration,
            progress=_progress(position, duration),
        )
        shaped.append(entry)
    return {"items": shaped}


def _progress(position_s: int, duration_s: int) -> float:
    """Share watched, 0..1; a position past the end (credits, rounding) counts as finished."""
    if duration_s == 0:
        return 0.0
    return round(min(1.0, position_s / duration_s), _PROGRESS_DIGITS)


# -- response fields -----------------------------------------------------------------------

_PLAY_FIELDS = body(
    boolean("allowed", "Whether the title may play on this device now."),
    text("reason", "Why not, when not allowed.", nullable=True),
    text("title_id", "The title to play."),
    obj(
        "stream",
        "What to play.",
        text("manifest_url", "The stream manifest."),
        text("resolution", "e.g. 1080p."),
        text("codec", "e.g. h264."),
        integer("bitrate_kbps", "Peak bitrate."),
        text("cdn", "Which CDN serves it."),
    ),
    obj(
        "license",
        "The DRM licence.",
        text("id", "The licence id."),
        text("drm", "widevine, playready or fairplay."),
        integer("expires_in_s", "Seconds until the licence expires."),
    ),
    integer("resume_position_s", "Where to start, in seconds.", nullable=True),
)

_HEARTBEAT_FIELDS = body(
    text("title_id", "The title being played."),
    integer("position_s", "The position now stored, in seconds."),
    boolean("saved", "Always true: the position was stored."),
)

_HISTORY_FIELDS = body(
    objects(
        "items",
        "Watched titles, newest first.",
        text("title_id", "The title id."),
        text("title", "The title's name; absent when the catalog did not answer."),
        text("watched_at", "When it was last watched (ISO 8601)."),
        integer("position_s", "How far the member got, in seconds."),
        integer("duration_s", "The title's running time, in seconds."),
        number("progress", "Share watched, 0 to 1."),
    ),
)
