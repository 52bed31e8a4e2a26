"""Strict JSON for device bodies.

Python's ``json`` accepts NaN and Infinity, keeps the last of duplicate keys, accepts lone
surrogates, recurses until RecursionError on deep nesting and raises ValueError on integers
over 4,300 digits. Every one of those becomes a 400 ``malformed_json`` here, and nesting is
capped before parsing so the parser never recurses deeply.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.frontend import problems

MAX_DEPTH = 32


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key[:40]!r}")
        result[key] = value
    return result


def _depth(text: str) -> int:
    """Maximum bracket nesting, ignoring brackets inside strings (linear scan)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_object(raw: bytes) -> dict[str, Any]:
    """Parse a request body that must be one JSON object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise problems.malformed_json("body is not valid UTF-8") from exc
    if _depth(text) > MAX_DEPTH:
        raise problems.malformed_json(f"nesting deeper than {MAX_DEPTH}")
    try:
        value = json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
        # Lone surrogates decode fine but cannot be re-encoded: reject them now.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError) as exc:
        raise problems.malformed_json(_reason(exc)) from exc
    if not isinstance(value, dict):
        raise problems.malformed_json("body must be a JSON object")
    return value


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeEncodeError):
        return "body contains an unpaired surrogate"
    return str(exc)[:120]
