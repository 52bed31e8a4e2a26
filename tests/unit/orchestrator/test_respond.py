"""The response stage: JSON, problems and documents as devices get them, each observed once."""

from __future__ import annotations

import json
import logging

from stage_kit import Started, answer, metrics, observed, request

from orchestrator.frontend import problems
from orchestrator.frontend.respond import Document, encode_json
from orchestrator.ops.access_log import FIELDS_ATTR


def _access_lines(caplog) -> list[dict]:
    return [
        getattr(record, FIELDS_ATTR)
        for record in caplog.records
        if record.name == "frontdoor.access"
    ]


def test_a_json_response_has_fixed_headers_then_the_requests_own(caplog):
    """Content type and length, the request id, no-store, then e.g. deprecation headers."""
    caplog.set_level(logging.INFO)
    respond, _ = observed()
    started = Started()
    answered = request(extra_headers=[("Deprecation", "@1")], metrics=metrics().request())
    body = answer(respond.json(started, answered, 201, {"é": 1}))
    assert (started.status, body) == ("201 Created", {"é": 1})
    assert started.headers == [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(encode_json({"é": 1})))),
        ("X-Request-Id", "rid-1"),
        ("Cache-Control", "no-store"),
        ("Deprecation", "@1"),
    ]
    (line,) = _access_lines(caplog)
    assert (line["status"], line["request_id"]) == (201, "rid-1")


def test_an_unusual_status_still_gets_a_status_line():
    respond, _ = observed()
    started = Started()
    respond.json(started, request(), 299, {})
    assert started.status == "299 Unknown"


def test_a_problem_is_problem_json_with_its_headers():
    """The problem's own headers (Retry-After) follow the fixed ones."""
    respond, _ = observed()
    started = Started()
    body = answer(respond.problem(started, request(), problems.overloaded(retry_after_s=1)))
    assert started.status == "503 Service Unavailable"
    assert started.header("Content-Type") == "application/problem+json"
    assert started.header("Retry-After") == "1"
    assert (body["code"], body["request_id"]) == ("overloaded", "rid-1")


def test_an_unhandled_error_is_a_500_logged_once_with_the_request_id(caplog):
    caplog.set_level(logging.INFO)
    respond, _ = observed()
    started = Started()
    body = answer(respond.unhandled(started, request(), RuntimeError("bug")))
    assert (started.code, body["code"]) == (500, "internal_error")
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.name == "frontdoor.app"
    assert getattr(error, FIELDS_ATTR) == {"request_id": "rid-1"}
    assert error.exc_info is not None


def test_a_document_is_for_get_only_and_is_not_observed(caplog):
    """A document carries its own headers (no no-store); other methods get a 405 (observed)."""
    caplog.set_level(logging.INFO)
    respond, _ = observed()
    document = Document("text/html", b"<p>", (("Cache-Control", "public, max-age=300"),))
    started = Started()
    assert respond.document(started, request(metrics=metrics().request()), document) == [b"<p>"]
    assert started.headers == [
        ("Content-Type", "text/html"),
        ("Content-Length", "3"),
        ("X-Request-Id", "rid-1"),
        ("Cache-Control", "public, max-age=300"),
    ]
    assert _access_lines(caplog) == []
    refused = Started()
    posted = request(method="POST", metrics=metrics().request())
    body = answer(respond.document(refused, posted, document))
    assert (refused.code, body["code"], refused.header("Allow")) == (
        405,
        "method_not_allowed",
        "GET",
    )
    assert len(_access_lines(caplog)) == 1


def test_encode_json_writes_compact_utf8_like_json_dumps():
    document = {"a": [1, 2.5, None, True], "é": "ü", 3: "x"}
    expected = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    assert encode_json(document) == expected
