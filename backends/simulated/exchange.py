"""The I/O-free request and response the simulated services speak, and their input parsing.

Handlers take a ``Request`` and return a ``Response`` (or raise ``HttpError``); sockets and
HTTP are the server's (``server.py``, ``connection.py``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Largest JSON request body a simulated service reads.
MAX_BODY_BYTES = 65_536
# json.dumps(value, separators=(",", ":")) builds this encoder anew on every call.
_COMPACT = json.JSONEncoder(separators=(",", ":"))
# Whitespace as str.strip() sees it (both use the same Unicode table).
_SPACE = re.compile(r"\s")
# Python's json accepts NaN and Infinity; real services do not.
_REJECT = {"NaN", "Infinity", "-Infinity"}


class HttpError(Exception):
    """Answer with ``status`` and ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def bad_request(message: str) -> HttpError:
    """A 400 for input the service cannot use."""
    return HttpError(400, message)


def not_found(message: str = "not found") -> HttpError:
    """A 404 for a path or id the service does not know."""
    return HttpError(404, message)


@dataclass(frozen=True, slots=True)
class Request:
    """One request to a service; ``segments`` are the path segments after the service name."""

    method: str
    segments: tuple[str, ...]
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, strictly parsed; ``HttpError(400)`` otherwise."""
        if len(self.body) > MAX_BODY_BYTES:
            raise HttpError(413, "body too large")
        try:
            value = json.loads(self.body, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise bad_request("body is not valid JSON") from exc
        if not isinstance(value, dict):
            raise bad_request("body must be a JSON object")
        return value

    def int_param(self, name: str, default: int, low: int, high: int) -> int:
        """An integer query parameter within [low, high]; absent means ``default``."""
        raw = self.query.get(name)
        if raw is None:
            return default
        if not raw.isascii() or not raw.isdigit() or len(raw) > 9:  # noqa: PLR2004 - digits of a sane int
            raise bad_request(f"{name} must be an integer between {low} and {high}")
        value = int(raw)
        if not low <= value <= high:
            raise bad_request(f"{name} must be an integer between {low} and {high}")
        return value

    def list_param(self, name: str, limit: int) -> list[str]:
        """A required comma-separated list, duplicates dropped, at most ``limit`` items."""
        raw = self.query.get(name)
        if raw is None or not raw.strip():
            raise bad_request(f"{name} is required")
        if _SPACE.search(raw) is None:
            # What clients send (hundreds of ids, no blanks): nothing to strip, and only
            # empty items to drop; the same list as below, several times faster.
            unique = dict.fromkeys(raw.split(","))
            unique.pop("", None)
            items = list(unique)
        else:
            items = list(dict.fromkeys(item.strip() for item in raw.split(",") if item.strip()))
        if len(items) > limit:
            raise bad_request(f"{name} takes at most {limit} items")
        return items


def _reject_constant(name: str) -> Any:
    if name in _REJECT:
        raise ValueError(f"{name} is not JSON")
    return name  # pragma: no cover - json only calls this for the three constants


@dataclass(frozen=True, slots=True)
class Response:
    """A status and an already-encoded JSON body."""

    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def encode(value: Any) -> bytes:
    """Compact JSON, as the services send it."""
    return _COMPACT.encode(value).encode()


def ok(value: Any, status: int = 200) -> Response:
    """A JSON response."""
    return Response(status, encode(value))


def error(status: int, message: str) -> Response:
    """A JSON error response: ``{"error": message}``."""
    return Response(status, encode({"error": message}))


def require_str(body: Mapping[str, Any], key: str, max_length: int = 200) -> str:
    """A required non-empty string field of a JSON body."""
    value = body.get(key)
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise bad_request(f"{key} must be a non-empty string")
    return value


def optional_str(body: Mapping[str, Any], key: str, max_length: int = 200) -> str | None:
    """An optional string field (absent or null means None)."""
    if body.get(key) is None:
        return None
    return require_str(body, key, max_length)


def require_int(body: Mapping[str, Any], key: str, low: int, high: int) -> int:
    """A required integer field within [low, high] (booleans and floats are refused)."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"{key} must be an integer between {low} and {high}")
    return value


def allow(request: Request, *methods: str) -> None:
    """``HttpError(405)`` unless the request uses one of ``methods``."""
    if request.method not in methods:
        raise HttpError(405, f"method not allowed; use {' or '.join(methods)}")
