"""The body stage: one JSON object, within a size cap, by a deadline."""

from __future__ import annotations

import io
import time

import gevent
import pytest

from orchestrator.frontend.body import WITH_BODY, BodyReader
from orchestrator.frontend.problems import Problem


class SlowInput:
    """A body that never arrives; remembers whether pywsgi was told to drop it."""

    _chunked_input_error = False

    def read(self, _size: int) -> bytes:
        gevent.sleep(10)
        return b"{}"


def _environ(raw: bytes, **extra: object) -> dict[str, object]:
    return {
        "CONTENT_TYPE": "application/json; charset=utf-8",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        **extra,
    }


def _problem(environ: dict[str, object], max_bytes: int = 64) -> tuple[int, str]:
    with pytest.raises(Problem) as caught:
        BodyReader(max_bytes, time.monotonic).read(environ, time.monotonic() + 1.0)
    return caught.value.status, caught.value.code


def test_a_json_object_is_read():
    reader = BodyReader(64, time.monotonic)
    assert reader.read(_environ(b'{"a": [1]}'), time.monotonic() + 1.0) == {"a": [1]}
    assert frozenset({"POST", "PUT"}) == WITH_BODY


def test_only_json_is_accepted():
    assert _problem(_environ(b"{}", CONTENT_TYPE="text/plain")) == (415, "unsupported_media_type")
    assert _problem(_environ(b"[1]")) == (400, "malformed_json")
    assert _problem(_environ(b"{", CONTENT_LENGTH="")) == (400, "malformed_json")


def test_a_body_past_the_cap_is_413_declared_or_not():
    assert _problem(_environ(b"{}", CONTENT_LENGTH="65")) == (413, "payload_too_large")
    assert _problem(_environ(b"{}", CONTENT_LENGTH="1e3")) == (400, "malformed_json")
    undeclared = _environ(b'{"a":"' + b"x" * 80 + b'"}', CONTENT_LENGTH="")
    assert _problem(undeclared) == (413, "payload_too_large")


def test_a_body_not_there_by_the_deadline_is_408_and_the_connection_abandoned():
    slow = SlowInput()
    reader = BodyReader(64, time.monotonic)
    started = time.monotonic()
    with pytest.raises(Problem) as caught:
        reader.read(_environ(b"", CONTENT_LENGTH="2", **{"wsgi.input": slow}), started + 0.05)
    assert (caught.value.status, caught.value.code) == (408, "request_timeout")
    assert time.monotonic() - started < 1.0
    assert slow._chunked_input_error is True
