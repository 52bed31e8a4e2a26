"""Enrichment: what an edge passes to the playback layer along with a device's request.

In the ``edge`` topology the edge authenticates the device, calls the shared services itself
(the steps the playback package declares shared: ``ApiPackage.shared_steps``, subscriber
and device), and passes the request on to the playback layer with their results, so the
layer does not call them again. The results travel in one header,
``X-Frontdoor-Enrichment: <payload>.<signature>``:

- the payload is base64url JSON ``{"sub": member id, "exp": unix time, "m": method,
  "p": path, "results": {...}}``;
- the signature is HMAC-SHA256 over a fixed domain prefix and the payload, keyed with the
  token secret both processes already share for member tokens (the prefix keeps an
  enrichment from ever verifying as a token, and the other way round).

A verified enrichment stands for the member's token at the layer (the edge checked the
token) and presets the steps it names that the layer's packages declare shared (the layer
ignores others). It is bound to the member, the method and the path of the request it was
sealed for (the path as the layer sees it, ``PATH_INFO``): replayed on another endpoint, or
another title's, it is refused. It expires after ``TTL_S``: enough for one hop, too short to
be worth replaying. Anything wrong with it is an ``EnrichmentError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ["ENVIRON_KEY", "HEADER", "TTL_S", "Enricher", "EnrichmentError"]

HEADER: Final = "X-Frontdoor-Enrichment"
#: The same header as WSGI presents it.
ENVIRON_KEY: Final = "HTTP_X_FRONTDOOR_ENRICHMENT"
#: Seconds an enrichment is valid after it was sealed.
TTL_S: Final = 30
#: A longer header value is refused before any decoding.
MAX_CHARS: Final = 32_768

_DOMAIN: Final = b"frontdoor-enrichment."
_BASE64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_MEMBER_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,64}")


class EnrichmentError(Exception):
    """An enrichment header that is malformed, forged or expired."""


class Enricher:
    """Seals and opens enrichments with one secret and an injected clock."""

    __slots__ = ("_clock", "_secret")

    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock

    def seal(self, member_id: str, results: Mapping[str, Any], method: str, path: str) -> str:
        """The header value carrying ``results`` for ``member_id``'s ``method`` ``path``."""
        claims = {
            "sub": member_id,
            "exp": int(self._clock()) + TTL_S,
            "m": method,
            "p": path,
            "results": dict(results),
        }
        payload = _b64(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._sign(payload)}"

    def open(self, value: str, method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The member id and the results of a valid header value sealed for ``method``
        ``path``."""
        if len(value) > MAX_CHARS or value.count(".") != 1:
            raise EnrichmentError("not an enrichment")
        payload, signature = value.split(".")
        if not hmac.compare_digest(self._sign(payload).encode(), signature.encode()):
            raise EnrichmentError("bad signature")
        claims = _json_object(payload)
        member_id, expires, results = claims.get("sub"), claims.get("exp"), claims.get("results")
        if not isinstance(member_id, str) or not _MEMBER_ID.fullmatch(member_id):
            raise EnrichmentError("no member")
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise EnrichmentError("no expiry")
        if expires < self._clock():
            raise EnrichmentError("expired")
        if claims.get("m") != method or claims.get("p") != path:
            raise EnrichmentError("sealed for another request")
        if not isinstance(results, dict):
            raise EnrichmentError("no results")
        return member_id, results

    def _sign(self, payload: str) -> str:
        return _b64(hmac.digest(self._secret, _DOMAIN + payload.encode(), hashlib.sha256))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _json_object(segment: str) -> dict[str, Any]:
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise EnrichmentError("payload is not base64url")
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise EnrichmentError("payload is not JSON") from exc
    if not isinstance(value, dict):
        raise EnrichmentError("payload is not an object")
    return value
