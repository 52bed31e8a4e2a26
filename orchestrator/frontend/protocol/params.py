"""Typed, bounded device parameters from the query string, the path and the JSON body.

Out-of-bounds values are a 400 naming the parameter, never silently clamped. Unknown
query parameters are rejected too: a typo should fail loudly on the device team's desk,
not be ignored in production. ``fields``, which every endpoint takes, is parsed by
``selection`` against the endpoint's response fields.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from typing import Any

from orchestrator.frontend import problems
from orchestrator.frontend.protocol.fields import Selection, parse_fields
from orchestrator.plans import Endpoint, Param, Source

_INT = re.compile(r"-?[0-9]{1,10}")
_TRUE = frozenset({"true", "1"})
_FALSE = frozenset({"false", "0"})
#: Query parameters every endpoint accepts and the protocol layer handles itself.
RESERVED_QUERY = frozenset({"fields"})


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def parse_params(
    endpoint: Endpoint,
    query: Mapping[str, list[str]],
    path: Mapping[str, str],
    body: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Validate every declared parameter; return ``name -> typed value`` (defaults filled)."""
    _reject_unknown(endpoint, query, body)
    values: dict[str, Any] = {}
    for param in endpoint.params:
        if param.source is Source.QUERY:
            raw = query.get(param.name)
            if raw is not None and len(raw) > 1:
                raise problems.invalid_parameter(param.name, "given more than once")
            present, value = (raw is not None), (raw[0] if raw else None)
            if present:
                value = _from_text(param, value or "")
        elif param.source is Source.PATH:
            present, value = True, _from_text(param, path[param.name])
        else:
            present = body is not None and param.name in body
            value = _from_json(param, body[param.name]) if present and body is not None else None
        if not present:
            if param.required:
                raise problems.invalid_parameter(param.name, "is required")
            value = param.default
        values[param.name] = value
    return values


def selection(endpoint: Endpoint, query: Mapping[str, list[str]]) -> Selection | None:
    """The device's ``fields`` checked against the endpoint's; None means the whole response."""
    raw = query.get("fields")
    if raw is None:
        return None
    if len(raw) > 1:
        raise problems.invalid_parameter("fields", "given more than once")
    selected = parse_fields(raw[0], endpoint.fields)
    # "*" selects everything: the same plan and body as no selection, so the same cache.
    return None if selected.is_all else selected


def _reject_unknown(
    endpoint: Endpoint, query: Mapping[str, list[str]], body: Mapping[str, Any] | None
) -> None:
    declared_query = {p.name for p in endpoint.params if p.source is Source.QUERY}
    for name in query:
        if name not in declared_query and name not in RESERVED_QUERY:
            allowed = ", ".join(sorted(declared_query | RESERVED_QUERY))
            raise problems.invalid_parameter(name, f"unknown parameter (allowed: {allowed})")
    if body is not None:
        declared_body = {p.name for p in endpoint.params if p.source is Source.BODY}
        for name in body:
            if name not in declared_body:
                allowed = ", ".join(sorted(declared_body))
                raise problems.invalid_parameter(name, f"unknown field (allowed: {allowed})")


def _from_text(param: Param, text: str) -> Any:
    if param.kind is int:
        if not _INT.fullmatch(text):
            raise problems.invalid_parameter(param.name, f"must be an integer, got {text[:20]!r}")
        return _check(param, int(text))
    if param.kind is bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise problems.invalid_parameter(param.name, "must be true or false")
    return _check(param, text)


def _from_json(param: Param, value: Any) -> Any:
    if param.kind is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise problems.invalid_parameter(param.name, "must be an integer")
    if param.kind is bool and not isinstance(value, bool):
        raise problems.invalid_parameter(param.name, "must be true or false")
    if param.kind is str and not isinstance(value, str):
        raise problems.invalid_parameter(param.name, "must be a string")
    return _check(param, value)


def _check(param: Param, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        if param.minimum is not None and value < param.minimum:
            raise problems.invalid_parameter(param.name, f"must be >= {param.minimum}")
        if param.maximum is not None and value > param.maximum:
            raise problems.invalid_parameter(param.name, f"must be <= {param.maximum}")
    elif isinstance(value, str):
        if param.max_length is not None and len(value) > param.max_length:
            raise problems.invalid_parameter(
                param.name, f"must be at most {param.max_length} characters"
            )
        if param.choices and value not in param.choices:
            raise problems.invalid_parameter(
                param.name, f"must be one of: {', '.join(param.choices)}"
            )
        if param.pattern is not None and not _compiled(param.pattern).fullmatch(value):
            raise problems.invalid_parameter(param.name, f"must match {param.pattern}")
    return value
