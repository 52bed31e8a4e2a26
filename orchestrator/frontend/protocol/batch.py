"""``POST /v1/batch``: several device calls in one round trip. Pure: parse and shape.

The body is ``{"requests": [{"id", "method", "path", "query", "body"}, ...]}``. A body that
is not that shape, has too many calls, or repeats an id is one ``invalid_batch`` problem
for the whole batch: there is no call to pin it on. Everything wrong with one call (an
unknown key, a nested batch, a query value that is not a scalar) is that call's problem
only, carried in its ``BatchCall`` and answered in its place; the others still run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from orchestrator.frontend import problems

__all__ = [
    "BATCH_PATH",
    "MAX_CALLS",
    "BatchCall",
    "answer",
    "envelope",
    "failure",
    "parse_batch",
]

#: Where batches are posted.
BATCH_PATH = "/v1/batch"
#: Most calls one batch may carry (the app's ``AppOptions.batch_max_calls`` default).
MAX_CALLS = 20

_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_METHOD = re.compile(r"[A-Z]{3,7}")
_CALL_KEYS = frozenset({"id", "method", "path", "query", "body"})
_MAX_PATH = 512


@dataclass(frozen=True, slots=True)
class BatchCall:
    """One call of a batch, ready for the router; or, with ``problem`` set, its answer."""

    id: str
    method: str = "GET"
    path: str = "/"
    #: As ``urllib.parse.parse_qs`` gives it: each name with its list of values.
    query: Mapping[str, list[str]] = field(default_factory=dict)
    body: dict[str, Any] | None = None
    problem: problems.Problem | None = None


def parse_batch(body: Mapping[str, Any], max_calls: int = MAX_CALLS) -> tuple[BatchCall, ...]:
    """The calls of a batch body, in order; raises ``invalid_batch`` for the batch as a whole."""
    unknown = sorted(set(body) - {"requests"})
    if unknown:
        raise problems.invalid_batch(f"unknown member {unknown[0]!r}; send only 'requests'")
    items = body.get("requests")
    if not isinstance(items, list) or not items:
        raise problems.invalid_batch("'requests' must be a non-empty list of calls")
    if len(items) > max_calls:
        raise problems.invalid_batch(f"at most {max_calls} calls per batch, got {len(items)}")
    calls: list[BatchCall] = []
    seen: set[str] = set()
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise problems.invalid_batch(f"call {position} is not an object")
        call_id = item.get("id")
        if not isinstance(call_id, str) or not _ID.fullmatch(call_id):
            raise problems.invalid_batch(
                f"call {position}: 'id' must be 1-64 characters of A-Z a-z 0-9 . _ : -"
            )
        if call_id in seen:
            raise problems.invalid_batch(f"call {position}: id {call_id!r} is used twice")
        seen.add(call_id)
        try:
            calls.append(_call(call_id, item))
        except problems.Problem as problem:
            calls.append(BatchCall(call_id, problem=problem))
    return tuple(calls)


def _call(call_id: str, item: Mapping[str, Any]) -> BatchCall:
    unknown = sorted(set(item) - _CALL_KEYS)
    if unknown:
        raise problems.invalid_batch(f"unknown member {unknown[0]!r} in a call")
    method = item.get("method", "GET")
    if not isinstance(method, str) or not _METHOD.fullmatch(method):
        raise problems.invalid_batch("'method' must be an upper-case HTTP method, e.g. GET")
    raw_path = item.get("path")
    if not isinstance(raw_path, str) or not raw_path.startswith("/") or len(raw_path) > _MAX_PATH:
        raise problems.invalid_batch(f"'path' must be an absolute path of at most {_MAX_PATH}")
    path, _, query_string = raw_path.partition("?")
    if path == BATCH_PATH:
        raise problems.invalid_batch("a batch may not contain a batch")
    query = parse_qs(query_string, keep_blank_values=True)
    for name, values in _query(item.get("query")).items():
        query.setdefault(name, []).extend(values)
    body = item.get("body")
    if body is not None and not isinstance(body, dict):
        raise problems.invalid_batch("'body' must be a JSON object")
    return BatchCall(call_id, method, path, query, body)


def _query(raw: Any) -> dict[str, list[str]]:
    """``{"rows": 3, "fields": "rows(id)"}`` as query values; a list repeats the name."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise problems.invalid_batch("'query' must be an object of parameter values")
    query: dict[str, list[str]] = {}
    for name, value in raw.items():
        values = value if isinstance(value, list) else [value]
        query[name] = [_text(name, item) for item in values]
    return query


def _text(name: str, value: Any) -> str:
    # Booleans first: True is an int too. Floats are refused, not rounded.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int):
        return str(value)
    raise problems.invalid_parameter(name, "a query value must be a string, integer or boolean")


def answer(call_id: str, status: int, body: Any, headers: Mapping[str, str]) -> dict[str, Any]:
    """A call's success in the envelope; headers (e.g. ``Deprecation``) only when there are any."""
    reply: dict[str, Any] = {"id": call_id, "status": status, "body": body}
    if headers:
        reply["headers"] = dict(headers)
    return reply


def failure(call_id: str, problem: problems.Problem, request_id: str) -> dict[str, Any]:
    """A call's problem in the envelope, as it would have been its own response's body."""
    return {"id": call_id, "status": problem.status, "problem": problem.to_dict(request_id)}


def envelope(replies: list[dict[str, Any]]) -> dict[str, Any]:
    """The batch's 200 body: every call's reply in request order, and a summary."""
    failed = sum(1 for reply in replies if reply["status"] >= 400)  # noqa: PLR2004 - HTTP
    return {"responses": replies, "meta": {"calls": len(replies), "failed": failed}}
