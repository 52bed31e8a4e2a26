"""The HTTP server module: the strict, bounded request-header parser behind every server."""

from __future__ import annotations

import io

import pytest
from gevent.pywsgi import format_date_time
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.frontend.httpserver import (
    MAX_HEADER_BYTES,
    MAX_HEADER_FIELDS,
    MAX_HEADER_LINE_BYTES,
    RequestHeaders,
    http_date,
)


def _read(block: bytes) -> RequestHeaders:
    return RequestHeaders.read(io.BufferedReader(io.BytesIO(block)))


def test_fields_are_read_up_to_the_empty_line_and_no_further():
    """The parser stops at the blank line: the body stays in the stream."""
    stream = io.BufferedReader(io.BytesIO(b"Host: a\r\nContent-Length: 4\r\n\r\nbody"))
    headers = RequestHeaders.read(stream)
    assert headers.status == ""
    assert headers.get("content-length") == "4"
    assert stream.read() == b"body"


def test_lookup_is_case_insensitive_and_returns_the_first_field():
    """``get`` finds a field whatever its case; of repeated fields, the first."""
    headers = _read(b"X-Thing: one\r\nx-thing: two\r\n\r\n")
    assert headers.get("X-THING") == "one"
    assert headers.getheader("x-thing") == "one"
    assert headers.get("absent") is None
    assert headers.get("absent", "dflt") == "dflt"


def test_values_lose_surrounding_whitespace_and_keep_inner_colons():
    """Optional whitespace around a value is not part of it; a colon inside it is."""
    headers = _read(b"Host:   127.0.0.1:8080  \r\nContent-Type:application/json\r\n\r\n")
    assert headers.get("host") == "127.0.0.1:8080"
    assert headers.typeheader == "application/json"


def test_lines_are_what_pywsgi_turns_into_environ_keys():
    """``headers`` yields each field as a ``Name: value`` line, in order."""
    headers = _read(b"A: 1\r\nB: 2\r\n\r\n")
    assert list(headers.headers) == ["A: 1\r\n", "B: 2\r\n"]


def test_deleting_removes_every_field_of_that_name_and_tolerates_absence():
    """``del`` drops each field of the name (pywsgi does it for chunked bodies)."""
    headers = _read(b"Content-Length: 1\r\ncontent-length: 2\r\nHost: a\r\n\r\n")
    del headers["CONTENT-LENGTH"]
    del headers["not-there"]
    assert headers.get("content-length") is None
    assert list(headers.headers) == ["Host: a\r\n"]


def test_bare_lf_line_endings_are_accepted():
    """A client ending lines with LF alone is understood (RFC 9112 section 2.2)."""
    assert _read(b"Host: a\n\n").get("host") == "a"


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(b"Host: a\r\n folded\r\n\r\n", id="obs-fold"),
        pytest.param(b"Host : a\r\n\r\n", id="space-before-colon"),
        pytest.param(b"Host\t: a\r\n\r\n", id="tab-before-colon"),
        pytest.param(b"no colon here\r\n\r\n", id="no-colon"),
        pytest.param(b": empty name\r\n\r\n", id="empty-name"),
    ],
)
def test_malformed_lines_are_refused_not_repaired(block):
    """RFC 9112 section 5: such lines get a 400 (a non-empty ``status``), never a guess."""
    assert _read(block).status != ""


def test_too_many_fields_are_refused():
    """More than MAX_HEADER_FIELDS fields: refused, however short."""
    block = b"".join(b"X-%d: v\r\n" % n for n in range(MAX_HEADER_FIELDS + 1)) + b"\r\n"
    assert _read(block).status == "Too many header fields"
    exactly = b"".join(b"X-%d: v\r\n" % n for n in range(MAX_HEADER_FIELDS)) + b"\r\n"
    assert _read(exactly).status == ""


def test_an_overlong_line_is_refused_without_reading_it_whole():
    """A line past MAX_HEADER_LINE_BYTES is refused after reading one byte more than that."""
    stream = io.BufferedReader(io.BytesIO(b"X: " + b"a" * (10 * MAX_HEADER_LINE_BYTES)))
    assert RequestHeaders.read(stream).status != ""
    assert stream.tell() <= MAX_HEADER_LINE_BYTES + 1


def test_the_whole_block_is_bounded():
    """Many long (but legal) lines add up to more than MAX_HEADER_BYTES: refused."""
    line = b"X-Long: " + b"v" * (MAX_HEADER_LINE_BYTES - 12) + b"\r\n"
    count = MAX_HEADER_BYTES // len(line) + 1
    assert count <= MAX_HEADER_FIELDS
    assert _read(line * count + b"\r\n").status != ""


@given(st.binary(max_size=400))
def test_any_bytes_give_fields_or_a_status_never_an_exception(block):
    """Whatever a client sends, the parser answers with fields or a refusal."""
    headers = _read(block)
    assert isinstance(headers.status, str)
    assert all(isinstance(line, str) for line in headers.headers)


def test_the_date_header_is_pywsgis_format_made_once_a_second():
    """http_date gives pywsgi's own IMF-fixdate text, and the same bytes within a second."""
    now = 1_700_000_000.25
    assert http_date(now) == format_date_time(1_700_000_000) == b"Tue, 14 Nov 2023 22:13:20 GMT"
    assert http_date(now + 0.5) is http_date(now)
    assert http_date(now + 1) == b"Tue, 14 Nov 2023 22:13:21 GMT"
