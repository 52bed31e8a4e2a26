"""The body stage: one JSON object, within a size cap, by a deadline."""

from __future__ import annotations

import io
import time

import gevent
import pytest
from gevent.pywsgi import Input

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


@pytest.mark.parametrize(
    ("raw", "length", "chunked", "reason"),
    [
        (b"zz\r\n{}\r\n0\r\n\r\n", None, True, "chunked"),
        (b"2\r\n{}XX0\r\n\r\n", None, True, "chunked"),
        (b'10\r\n{"a":', None, True, "chunked"),
        (b'{"a":', 50, False, "declared length"),
    ],
    ids=["bad-size", "no-crlf", "cut-short", "short-of-content-length"],
)
def test_a_body_with_broken_framing_is_a_400_and_the_connection_abandoned(
    raw, length, chunked, reason
):
    """pywsgi's reader refusing the body (a bad chunk, fewer bytes than declared) is the
    client's fault: 400 ``malformed_body`` with ``Connection: close``, not a 500; and pywsgi
    is told not to read on (what follows is not a request)."""
    body = Input(io.BufferedReader(io.BytesIO(raw)), length, chunked_input=chunked)
    environ = _environ(b"", CONTENT_LENGTH="" if length is None else str(length))
    environ["wsgi.input"] = body
    with pytest.raises(Problem) as caught:
        BodyReader(64, time.monotonic).read(environ, time.monotonic() + 1.0)
    assert (caught.value.status, caught.value.code) == (400, "malformed_body")
    assert reason in caught.value.detail
    assert caught.value.headers["Connection"] == "close"
    assert body._chunked_input_error  # pywsgi's own "do not discard" flag
