"""What the reference implementations of benchmarks/peers.py share: everything but the I/O.

Bearer-token check (the HS256 tokens ``frontdoor token`` issues), device parameters,
backend request bodies and the composition of the two replies, so the peers differ only
in how they serve HTTP and call backends. Deliberately lean: a competent team's service
logic, without Frontdoor's typed readers, fallbacks, field selection or metrics. A
backend reply of the wrong shape raises (KeyError, TypeError...), which the peer turns
into a 502.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import time
from typing import Any

TITLE_ID = re.compile(r"t[0-9]{1,7}")
DEVICE_TYPE = re.compile(r"[a-z0-9-]{1,40}")
MEMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Viewer maturity level a rating requires (0 youngest .. 4 everything), as Frontdoor reads it.
MATURITY = {"TV-Y": 0, "G": 1, "PG": 2, "PG-13": 3, "TV-14": 3, "R": 4, "TV-MA": 4}
CARD_FIELDS = "title,year,genres,maturity_rating,boxart"
MAX_ROWS = 40
MAX_PER_ROW = 75
_BEARER = "Bearer "


class BadRequestError(ValueError):
    """A device parameter is missing or malformed (400)."""


def member_from(authorization: str | None, secret: bytes) -> str | None:
    """The member of a valid, unexpired HS256 bearer token, else None (401)."""
    if not authorization or not authorization.startswith(_BEARER):
        return None
    token = authorization[len(_BEARER) :]
    signing_input, _, signature = token.rpartition(".")
    digest = hmac.digest(secret, signing_input.encode(), "sha256")
    if not hmac.compare_digest(base64.urlsafe_b64encode(digest).rstrip(b"="), signature.encode()):
        return None
    payload = signing_input.partition(".")[2]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except ValueError:
        return None
    sub = claims.get("sub")
    if claims.get("exp", 0) <= time.time() or not isinstance(sub, str):
        return None
    return sub if MEMBER_ID.fullmatch(sub) else None


def play_params(body: Any) -> tuple[str, str]:
    """``(title_id, device_type)`` from a play request body."""
    if not isinstance(body, dict):
        raise BadRequestError("expected a JSON object")
    title, device = body.get("title_id"), body.get("device_type")
    if not isinstance(title, str) or not TITLE_ID.fullmatch(title):
        raise BadRequestError("title_id")
    if not isinstance(device, str) or not DEVICE_TYPE.fullmatch(device):
        raise BadRequestError("device_type")
    return title, device


def home_params(query: dict[str, str]) -> tuple[int, int]:
    """``(rows, per_row)`` from a home request's query (defaults 10 x 20)."""
    try:
        rows, per_row = int(query.get("rows", "10")), int(query.get("per_row", "20"))
    except ValueError as exc:
        raise BadRequestError("rows/per_row") from exc
    if not (1 <= rows <= MAX_ROWS and 1 <= per_row <= MAX_PER_ROW):
        raise BadRequestError("rows/per_row")
    return rows, per_row


def decision_body(member: str, title: str, device: str, subscriber: dict[str, Any]) -> Any:
    """What playback-decision needs: the title, the device and the member's plan and country."""
    return {
        "member_id": member,
        "title_id": title,
        "device_type": device,
        "plan_id": subscriber["plan_id"],
        "country": subscriber["country"],
    }


def licence_body(member: str, title: str, device_type: str, device: dict[str, Any]) -> Any:
    """What licensing needs: the title and the device's DRM."""
    return {
        "member_id": member,
        "title_id": title,
        "drm": device["drm"],
        "device_type": device_type,
    }


def compose_play(
    title: str, decision: dict[str, Any], licence: dict[str, Any] | None, bookmark: dict[str, Any]
) -> dict[str, Any]:
    """The play reply; ``licence`` is None when the decision refused."""
    if not decision["allowed"] or licence is None:
        return {"allowed": False, "reason": decision.get("reason")}
    stream = decision["stream"]
    return {
        "allowed": True,
        "title_id": title,
        "stream": {
            key: stream[key]
            for key in ("manifest_url", "resolution", "codec", "bitrate_kbps", "cdn")
        },
        "license": {
            "id": licence["license_id"],
            "drm": licence["drm"],
            "expires_in_s": licence["expires_in_s"],
        },
        "resume_position_s": bookmark["position_s"],
    }


def home_rows(
    recommendations: dict[str, Any], rows: int, per_row: int
) -> tuple[list[tuple[dict[str, Any], list[str]]], list[str]]:
    """The rows cut to size with their title ids, and the distinct ids of the page."""
    cut = [(row, row["video_ids"][:per_row]) for row in recommendations["rows"][:rows]]
    ids = list(dict.fromkeys(video for _, videos in cut for video in videos))
    for video in ids:  # ids travel on to other backends in a query string
        if not TITLE_ID.fullmatch(video):
            raise ValueError("recommendations: not a title id")
    return cut, ids


def compose_home(
    subscriber: dict[str, Any],
    rows: list[tuple[dict[str, Any], list[str]]],
    catalog: dict[str, Any],
    ratings: dict[str, Any],
) -> dict[str, Any]:
    """The home page (v1 shape): rows of cards the member may watch, with match scores."""
    titles = {title["id"]: title for title in catalog["titles"]}
    scores = ratings["scores"]
    level = subscriber["maturity_level"]
    page_rows = []
    for row, videos in rows:
        cards = [
            {
                "id": video,
                "title": titles[video]["title"],
                "year": titles[video]["year"],
                "genres": titles[video]["genres"],
                "maturity_rating": titles[video]["maturity_rating"],
                "boxart": titles[video]["boxart"],
                "match": scores.get(video),
            }
            for video in videos
            if video in titles and MATURITY.get(titles[video]["maturity_rating"], 4) <= level
        ]
        if cards:
            page_rows.append(
                {"id": row["id"], "kind": row["kind"], "title": row["title"], "videos": cards}
            )
    return {
        "rows": page_rows,
        "member": {"name": subscriber["name"], "country": subscriber["country"]},
    }
