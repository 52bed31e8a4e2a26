"""Playback services: device, playback decision, bookmarks, licensing, viewing history."""

from __future__ import annotations

import re
from typing import Any

from backends.simulated.context import ServiceContext
from backends.simulated.exchange import (
    Request,
    Response,
    allow,
    bad_request,
    not_found,
    ok,
    optional_str,
    require_int,
    require_str,
)
from backends.simulated.members import HistoryEntry, iso_time, stable_int
from backends.simulated.reference import (
    CODEC_EFFICIENCY,
    CODEC_PREFERENCE,
    COUNTRIES,
    DRM_SYSTEMS,
    H264_BITRATE_KBPS,
    PLANS_BY_ID,
    RESOLUTIONS,
    DeviceProfile,
)

_DEVICE_TYPE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_LICENSE_TTL_S = 86_400
_CDN_NODES = 8
_DEFAULT_HISTORY = 20
_MAX_HISTORY = 200


def _device_type(value: str) -> str:
    if not _DEVICE_TYPE.fullmatch(value):
        raise bad_request("device_type must be 1-64 characters of a-z, 0-9, '.', '_' or '-'")
    return value


def choose_stream(profile: DeviceProfile, video_quality: str) -> tuple[str, str, int]:
    """Resolution, codec and bitrate: the lower of plan and device, the device's best codec."""
    resolution = min(profile.max_resolution, video_quality, key=RESOLUTIONS.index)
    codec = next((c for c in CODEC_PREFERENCE if c in profile.codecs), "h264")
    bitrate = round(H264_BITRATE_KBPS[resolution] * CODEC_EFFICIENCY[codec])
    return resolution, codec, bitrate


class PlaybackServices:
    """Handlers of the press-play family."""

    def __init__(self, context: ServiceContext) -> None:
        self._context = context
        self._world = context.world
        self._store = context.store

    def device(self, request: Request) -> Response:
        """``GET /device/devices/{device_type}``; unknown types get the generic profile."""
        match request.segments:
            case ("devices", raw_type):
                allow(request, "GET")
                device_type = _device_type(raw_type)
                profile = self._world.device(device_type)
                return ok(
                    {
                        "device_type": device_type,
                        "max_resolution": profile.max_resolution,
                        "codecs": list(profile.codecs),
                        "drm": profile.drm,
                        "hdr": profile.hdr,
                        "audio": list(profile.audio),
                    }
                )
            case _:
                raise not_found()

    def playback(self, request: Request) -> Response:
        """``POST /playback/decisions``: may this member play this title here, and how."""
        if request.segments != ("decisions",):
            raise not_found()
        allow(request, "POST")
        body = request.json_object()
        title = self._context.title(require_str(body, "title_id"))
        member = self._context.member(require_str(body, "member_id"))
        profile = self._world.device(_device_type(require_str(body, "device_type")))
        plan_id = optional_str(body, "plan_id") or member.plan_id
        country = (optional_str(body, "country") or member.country).upper()
        if plan_id not in PLANS_BY_ID:
            raise bad_request(f"plan_id must be one of {', '.join(PLANS_BY_ID)}")
        if country not in COUNTRIES:
            raise bad_request("country must be a supported ISO country code")
        if title.maturity_level > member.maturity_level:
            return ok({"allowed": False, "reason": "maturity_restricted", "stream": None})
        # Plans never refuse a stream outright: the resolution is capped instead.
        resolution, codec, bitrate = choose_stream(profile, PLANS_BY_ID[plan_id].video_quality)
        node = stable_int(self._world.seed, "cdn", member.member_id, title.title_id) % _CDN_NODES
        cdn = f"oca-{country.lower()}-{node + 1:02d}.cdn.example.invalid"
        extension = "m3u8" if profile.drm == "fairplay" else "mpd"
        stream = {
            "resolution": resolution,
            "codec": codec,
            "bitrate_kbps": bitrate,
            "cdn": cdn,
            "manifest_url": f"https://{cdn}/manifests/{title.title_id}/{resolution}-{codec}.{extension}",
        }
        return ok({"allowed": True, "reason": None, "stream": stream})

    def bookmarks(self, request: Request) -> Response:
        """``GET`` / ``PUT /bookmarks/{member_id}/{title_id}``."""
        match request.segments:
            case (member_id, title_id):
                allow(request, "GET", "PUT")
                member = self._context.member(member_id)
                title = self._context.title(title_id)
                if request.method == "PUT":
                    position = require_int(request.json_object(), "position_s", 0, title.duration_s)
                    entry: HistoryEntry | None = self._store.set_bookmark(
                        member.member_id, title.title_id, position, title.duration_s
                    )
                else:
                    entry = self._store.bookmark(member.member_id, title.title_id) or next(
                        (e for e in member.history if e.title_id == title.title_id), None
                    )
                return ok(
                    {
                        "member_id": member.member_id,
                        "title_id": title.title_id,
                        "position_s": entry.position_s if entry else 0,
                        "updated_at": iso_time(entry.watched_at) if entry else None,
                    }
                )
            case _:
                raise not_found()

    def licensing(self, request: Request) -> Response:
        """``POST /licensing/licenses``: a content license for one title and DRM system."""
        if request.segments != ("licenses",):
            raise not_found()
        allow(request, "POST")
        body = request.json_object()
        drm = require_str(body, "drm")
        if drm not in DRM_SYSTEMS:
            raise bad_request(f"drm must be one of {', '.join(sorted(DRM_SYSTEMS))}")
        _device_type(require_str(body, "device_type"))
        member = self._context.member(require_str(body, "member_id"))
        title = self._context.title(require_str(body, "title_id"))
        reply: dict[str, Any] = {
            "license_id": self._store.new_license_id(),
            "drm": drm,
            "expires_in_s": _LICENSE_TTL_S,
            "key_ids": self._world.key_ids(title.title_id),
            "member_id": member.member_id,
        }
        return ok(reply)

    def history(self, request: Request) -> Response:
        """``GET /history/{member_id}?limit=N``: newest first, seeded plus written positions."""
        match request.segments:
            case (member_id,):
                allow(request, "GET")
                limit = request.int_param("limit", _DEFAULT_HISTORY, 1, _MAX_HISTORY)
                member = self._context.member(member_id)
                items = [
                    {
                        "title_id": entry.title_id,
                        "watched_at": iso_time(entry.watched_at),
                        "position_s": entry.position_s,
                        "duration_s": entry.duration_s,
                    }
                    for entry in self._store.history(member)[:limit]
                ]
                return ok({"member_id": member.member_id, "items": items})
            case _:
                raise not_found()
