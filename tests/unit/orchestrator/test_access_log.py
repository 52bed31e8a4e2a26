"""orchestrator.ops.access_log: JSON access lines, slow-request traces, events, no secrets."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import gevent
import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.plan import Step, StepRecord
from orchestrator.ops.access_log import (
    FIELDS_ATTR,
    AccessEntry,
    AccessLog,
    EventLog,
    JsonFormatter,
    SheddingMonitor,
    _iso_utc,
    access_entry,
    backend_calls,
    install_json_logging,
    log_greenlet_errors,
    sanitize,
)

ADMIN_TOKEN = "operators-only-admin-token-123"  # noqa: S105 - a test value, not a credential
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtMSJ9.c2lnbmF0dXJlLWJ5dGVz"


class Lines:
    """A logger whose output is parsed back from JSON, one dict per line."""

    def __init__(self, name: str) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter(redact=[ADMIN_TOKEN]))
        self.logger = logging.getLogger(name)
        self.logger.addHandler(self.handler)
        self.logger.setLevel(logging.DEBUG)
        self.logger.propagate = False

    def parsed(self) -> list[dict[str, Any]]:
        """Every line written so far, parsed."""
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def raw(self) -> str:
        """The text written so far."""
        return self.stream.getvalue()

    def close(self) -> None:
        """Detach from the logger."""
        self.logger.removeHandler(self.handler)
        self.logger.propagate = True


@pytest.fixture
def lines(request: pytest.FixtureRequest) -> Iterator[Lines]:
    """A capturing JSON logger private to the test."""
    captured = Lines(f"test.access_log.{request.node.name}")
    yield captured
    captured.close()


ENVIRON = {
    "REQUEST_METHOD": "GET",
    "PATH_INFO": "/v1/discovery/search",
    "QUERY_STRING": "q=secret+crush&limit=10",
    "REMOTE_ADDR": "203.0.113.7",
    "HTTP_X_DEVICE_TYPE": "tv-samsung-2024",
    "HTTP_AUTHORIZATION": f"Bearer {JWT}",
}


def entry(**overrides: Any):
    """An access entry for a search request."""
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "status": 200,
        "latency_ms": 12.3456,
        "endpoint": "discovery.search",
        "team": "discovery",
        "degraded": ("ratings",),
        "backend_calls": 3,
    }
    fields.update(overrides)
    environ = fields.pop("environ", ENVIRON)
    return access_entry(environ, **fields)


def test_access_line_has_every_field_and_no_query_or_token(lines):
    """One JSON line with the documented fields; the query and credentials stay out."""
    AccessLog(slow_request_ms=1000, logger=lines.logger).write(entry())
    (line,) = lines.parsed()
    assert line["time"].endswith("Z")
    assert line["time"][10] == "T"
    assert {k: line[k] for k in line if k != "time"} == {
        "level": "INFO",
        "logger": lines.logger.name,
        "message": "access",
        "event": "access",
        "request_id": "req-1",
        "method": "GET",
        "path": "/v1/discovery/search",
        "query_chars": 23,
        "endpoint": "discovery.search",
        "team": "discovery",
        "status": 200,
        "latency_ms": 12.346,
        "degraded": ["ratings"],
        "backend_calls": 3,
        "client": "203.0.113.7",
        "device_type": "tv-samsung-2024",
        "slow": False,
        "backend_request_id": None,
    }
    assert "crush" not in lines.raw()
    assert JWT not in lines.raw()


def test_access_line_logs_the_backend_request_id_beside_the_devices(lines):
    """Finding 8: when backends got an id other than the device's, the line has both."""
    AccessLog(1000, lines.logger).write(entry(request_id="dev-1", backend_request_id="f" * 32))
    AccessLog(1000, lines.logger).write(entry(request_id="own", backend_request_id="own"))
    first, second = lines.parsed()
    assert (first["request_id"], first["backend_request_id"]) == ("dev-1", "f" * 32)
    assert (second["request_id"], second["backend_request_id"]) == ("own", None)


def test_access_line_carries_every_entry_field(lines):
    """A field added to AccessEntry must reach the line too."""
    AccessLog(1000, lines.logger).write(entry())
    (line,) = lines.parsed()
    assert {field.name for field in dataclasses.fields(AccessEntry)} <= set(line)


def test_device_input_is_sanitised_and_truncated(lines):
    """Header junk cannot forge fields or lines; long values are cut."""
    environ = {
        **ENVIRON,
        "HTTP_X_DEVICE_TYPE": 'tv"}\n{"level":"CRITICAL' + "x" * 200,
        "PATH_INFO": "/v1/x\n{evil}" + "p" * 500,
        "REQUEST_METHOD": "GET\r\nX",
        "REMOTE_ADDR": "::1",
    }
    AccessLog(1000, lines.logger).write(entry(environ=environ))
    (line,) = lines.parsed()
    assert line["device_type"].startswith("tv_____level___CRITICAL")
    assert len(line["device_type"]) == 64
    assert line["path"].startswith("/v1/x\n{evil}")  # JSON-escaped, so still one line
    assert len(line["path"]) == 256
    assert line["method"] == "GET__X"
    assert line["client"] == "::1"
    assert len(lines.raw().splitlines()) == 1


def test_missing_headers_are_null(lines):
    """No device type or client address: null, not a made-up value."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/healthz"}
    AccessLog(1000, lines.logger).write(entry(environ=environ, endpoint=None, team=None))
    (line,) = lines.parsed()
    assert (line["device_type"], line["client"], line["endpoint"]) == (None, None, None)
    assert line["query_chars"] == 0


def test_slow_request_logs_its_trace(lines):
    """Slower than the threshold: a second line carries the trace."""
    trace = [{"step": "ratings", "backend": "ratings", "outcome": "timeout"}]
    AccessLog(slow_request_ms=10, logger=lines.logger).write(entry(), lambda: trace)
    access, slow = lines.parsed()
    assert access["slow"] is True
    assert slow["event"] == "slow_request"
    assert slow["level"] == "WARNING"
    assert slow["request_id"] == "req-1"
    assert slow["threshold_ms"] == 10
    assert slow["trace"] == trace


def test_fast_request_never_builds_its_trace(lines):
    """The trace is built only for slow requests."""

    def trace() -> list[dict[str, Any]]:
        raise AssertionError("trace built for a fast request")

    AccessLog(slow_request_ms=1000, logger=lines.logger).write(entry(), trace)
    assert len(lines.parsed()) == 1


def test_zero_threshold_traces_every_request(lines):
    """``slow_request_ms = 0`` logs every request's trace."""
    AccessLog(0, lines.logger).write(entry(latency_ms=0.0), list)
    assert [line["event"] for line in lines.parsed()] == ["access", "slow_request"]


def test_a_broken_trace_builder_does_not_lose_the_lines(lines):
    """A bug in the trace builder is noted, not raised."""

    def trace() -> list[dict[str, Any]]:
        raise KeyError("x")

    AccessLog(0, lines.logger).write(entry(), trace)
    _, slow = lines.parsed()
    assert slow["trace_error"] == "KeyError"


def test_formatter_scrubs_tokens_and_secrets_anywhere(lines):
    """Bearer credentials, JWTs and the admin token never reach the log."""
    lines.logger.warning(
        "auth header %s and %s",
        f"Bearer {JWT}",
        ADMIN_TOKEN,
        extra={FIELDS_ATTR: {"token": JWT, "nested": {"t": ADMIN_TOKEN}}},
    )
    raw = lines.raw()
    assert JWT not in raw
    assert ADMIN_TOKEN not in raw
    assert "eyJ" not in raw
    (line,) = lines.parsed()
    assert line["token"] == "[redacted]"  # noqa: S105 - the redaction marker
    assert line["nested"] == {"t": "[redacted]"}


def test_formatter_redacts_bearer_credentials_not_the_word_bearer(lines):
    """An audit reason "no bearer token" is words, kept as written; an ``Authorization:
    Bearer <credential>`` header value loses its credential, in any case of the scheme."""
    opaque = "opaque-credential-0123456789"
    lines.logger.warning(
        "denied",
        extra={
            FIELDS_ATTR: {
                "why": "no bearer token",
                "header": f"Authorization: Bearer {opaque}",
                "lower": f"bearer {opaque}",
            }
        },
    )
    assert opaque not in lines.raw()
    (line,) = lines.parsed()
    assert line["why"] == "no bearer token"
    assert (line["header"], line["lower"]) == (
        "Authorization: Bearer [redacted]",
        "bearer [redacted]",
    )


def test_formatter_keeps_base_keys_and_adds_exceptions(lines):
    """A field cannot overwrite time/level/logger/message; exceptions are one field."""
    try:
        raise ValueError("bad")  # noqa: TRY301 - the test needs a live exception
    except ValueError:
        lines.logger.exception(
            "request req-9 failed", extra={FIELDS_ATTR: {"level": "DEBUG", "request_id": "r"}}
        )
    (line,) = lines.parsed()
    assert line["level"] == "ERROR"
    assert line["field_level"] == "DEBUG"
    assert line["exc_type"] == "ValueError"
    assert "Traceback" in line["exc"]
    assert line["message"] == "request req-9 failed"


def test_formatter_survives_unserialisable_values(lines):
    """Odd field values are written as text rather than failing the line."""
    lines.logger.info("x", extra={FIELDS_ATTR: {"obj": object(), "set": {1}}})
    (line,) = lines.parsed()
    assert line["obj"].startswith("<object")


def test_install_json_logging_replaces_root_handlers():
    """The entry point's one call: JSON lines from every logger, at the given level."""
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        handler = install_json_logging("WARNING", stream=stream, redact=[ADMIN_TOKEN])
        assert root.handlers == [handler]
        logging.getLogger("some.module").warning("token %s", ADMIN_TOKEN)
        logging.getLogger("some.module").info("not shown")
    finally:
        for current in list(root.handlers):
            root.removeHandler(current)
        for old in saved_handlers:
            root.addHandler(old)
        root.setLevel(saved_level)
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["message"] == "token [redacted]"
    assert line["logger"] == "some.module"


def test_events_are_json_lines(lines):
    """Breaker changes, restarts and shedding are structured events."""
    events = EventLog(lines.logger)
    events.breaker_changed("catalog", "closed", "open")
    events.breaker_changed("catalog", "half_open", "closed")
    events.backend_restarted("ratings", 2)
    parsed = lines.parsed()
    assert [(p["event"], p["level"]) for p in parsed] == [
        ("breaker_state", "WARNING"),
        ("breaker_state", "INFO"),
        ("backend_restarted", "WARNING"),
    ]
    assert parsed[0]["backend"] == "catalog"
    assert (parsed[0]["old"], parsed[0]["new"]) == ("closed", "open")
    assert parsed[2]["restarts"] == 2


def test_shedding_onset_and_recovery(lines):
    """Growth of the shed counter starts an episode; one flat interval ends it."""
    now = [100.0]
    monitor = SheddingMonitor(EventLog(lines.logger), clock=lambda: now[0])
    monitor.observe(0, inflight=5)
    assert lines.parsed() == []
    monitor.observe(4, inflight=200)
    now[0] = 101.0
    monitor.observe(10, inflight=200)
    assert monitor.shedding
    now[0] = 102.5
    monitor.observe(10, inflight=20)
    assert not monitor.shedding
    monitor.observe(10)
    started, stopped = lines.parsed()
    assert (started["event"], started["shed"], started["inflight"]) == ("shedding_started", 4, 200)
    assert (stopped["event"], stopped["shed"], stopped["duration_s"]) == (
        "shedding_stopped",
        10,
        2.5,
    )


def test_shedding_counter_restart_counts_as_new(lines):
    """A smaller total (a restarted counter) is all new sheds."""
    monitor = SheddingMonitor(EventLog(lines.logger), clock=lambda: 0.0)
    monitor.observe(50)
    monitor.observe(50)
    monitor.observe(3)
    assert [p["shed"] for p in lines.parsed()] == [50, 50, 3]


def test_backend_calls_sum_attempts():
    """Backend calls are attempts: retries count, rejections and skips do not."""
    records = []
    for attempts in (1, 2, 0):
        record = StepRecord(Step("s", "catalog", lambda _ctx: None))
        record.attempts = attempts
        records.append(record)
    assert backend_calls(records) == 3


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("ios-17", "ios-17"), ("a b/c", "a_b_c"), ("é", "_"), ("x" * 99, "x" * 64)],
)
def test_sanitize(raw, expected):
    """Only [A-Za-z0-9._-] survives, truncated."""
    assert sanitize(raw) == expected


def test_an_error_no_greenlet_caught_is_one_json_line_with_its_traceback():
    """With log_greenlet_errors, gevent's hub logs uncaught errors instead of printing
    plain text to stderr."""
    captured = Lines("frontdoor.greenlets")
    hub = gevent.get_hub()
    log_greenlet_errors()
    try:

        def broken() -> None:
            raise ValueError("no one caught this")

        gevent.spawn(broken).join()
    finally:
        del hub.print_exception  # the class's own printer again
        captured.close()
    [line] = captured.parsed()
    assert (line["level"], line["message"]) == ("ERROR", "uncaught error in Greenlet")
    assert line["exc_type"] == "ValueError"
    assert "no one caught this" in line["exc"]


@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False))
def test_line_time_is_what_datetime_writes(created):
    """The cached-second timestamp equals datetime's own ISO text, to the millisecond."""
    expected = dt.datetime.fromtimestamp(created, dt.UTC).isoformat(timespec="milliseconds")
    assert _iso_utc(created) == expected.replace("+00:00", "Z")
