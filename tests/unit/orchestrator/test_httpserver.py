"""The HTTP server module: the strict, bounded request-header parser behind every server."""

from __future__ import annotations

import io

import pytest
from gevent.pywsgi import format_date_time
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.frontend import problems
from orchestrator.frontend.httpserver import (
    MAX_HEADER_BYTES,
    MAX_HEADER_FIELDS,
    MAX_HEADER_LINE_BYTES,
    REFUSAL_CODES,
    Refusal,
    RequestHeaders,
    framing_problem,
    http_date,
)
from orchestrator.ops.metrics import REFUSED_CODES, CapturingSink, MetricNames, Metrics


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


def test_the_block_is_refused_once_the_configured_size_is_read():
    """``max_bytes`` (``server.max_header_bytes``) bounds what is read: a block past it is
    refused as too large after reading at most that plus one line."""
    line = b"X-Pad: " + b"v" * 1000 + b"\r\n"
    stream = io.BufferedReader(io.BytesIO(line * 50 + b"\r\n"))
    headers = RequestHeaders.read(stream, 4096)
    assert headers.too_large
    assert stream.tell() <= 4096 + len(line)
    assert _read(line * 3 + b"\r\n").status == ""


def test_a_refusal_is_too_large_only_for_size():
    """Too many or too long fields: 431 (``too_large``); a malformed line: 400."""
    many = b"".join(b"X-%d: v\r\n" % n for n in range(MAX_HEADER_FIELDS + 1)) + b"\r\n"
    assert _read(many).too_large
    assert _read(b"X: " + b"a" * (MAX_HEADER_LINE_BYTES + 1) + b"\r\n\r\n").too_large
    assert not _read(b"Host : a\r\n\r\n").too_large
    assert _read(b"Host : a\r\n\r\n").status != ""


def test_values_gives_every_field_of_a_name():
    """``values``: all fields of a name, in order (``get`` gives only the first)."""
    headers = _read(b"TE: a\r\nHost: h\r\nte: b\r\n\r\n")
    assert headers.values("Te") == ["a", "b"]
    assert headers.values("absent") == []


def _framing(block: bytes, version: str = "HTTP/1.1") -> tuple[int, str] | None:
    problem = framing_problem(_read(block + b"\r\n"), version)
    return None if problem is None else (problem.status, problem.code)


@pytest.mark.parametrize(
    "block",
    [
        b"",
        b"Content-Length: 0\r\n",
        b"Content-Length: 52\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"transfer-encoding:  Chunked \r\n",
    ],
)
def test_one_unambiguous_length_passes(block):
    """No body, one decimal Content-Length, or exactly chunked (any case)."""
    assert _framing(block) is None


_BAD = (400, "malformed_body")
_NOT_IMPLEMENTED = (501, "unsupported_transfer_coding")


@pytest.mark.parametrize(
    ("block", "version", "expected"),
    [
        (b"Content-Length: 2\r\nContent-Length: 3\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: 2\r\ncontent-length: 2\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: 2, 2\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: +2\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: 0_2\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: \xc2\xb2\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: 1234567890123456789\r\n", "HTTP/1.1", _BAD),
        (b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1", _BAD),
        (b"Transfer-Encoding: chunked\r\n", "HTTP/1.0", _BAD),
        (b"Transfer-Encoding: gzip, chunked\r\n", "HTTP/1.1", _NOT_IMPLEMENTED),
        (b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "HTTP/1.1",
         _NOT_IMPLEMENTED),
        (b"Transfer-Encoding: chunked, gzip\r\n", "HTTP/1.1", _BAD),
        (b"Transfer-Encoding: identity\r\n", "HTTP/1.1", _BAD),
        (b"Transfer-Encoding: chunked, chunked\r\n", "HTTP/1.1", _BAD),
        (b"Transfer-Encoding: chunked,\r\n", "HTTP/1.1", _BAD),
        (b"Transfer-Encoding:\r\n", "HTTP/1.1", _BAD),
        (b"Transfer-Encoding: chunked;ext=1\r\n", "HTTP/1.1", _BAD),
    ],
    ids=[
        "two-lengths", "same-length-twice", "length-list", "plus", "underscore", "unicode-digit",
        "19-digits", "length-and-chunked", "chunked-in-1.0", "gzip-then-chunked",
        "codings-on-two-lines", "chunked-not-last", "identity", "chunked-twice", "empty-coding",
        "empty-value", "chunked-with-parameter",
    ],
)  # fmt: skip
def test_every_ambiguous_length_is_refused(block, version, expected):
    """RFC 9112 section 6: a length read two ways, or not at all, is a 400; a coding
    before the final chunked, which the server cannot undo, a 501."""
    assert _framing(block, version) == expected


@given(st.lists(st.sampled_from(["Content-Length", "Transfer-Encoding", "X"]), max_size=4),
       st.lists(st.text(alphabet="0123456789,;+ chunkedgzipCHUNKED", max_size=12), min_size=4,
                max_size=4))  # fmt: skip
def test_framing_never_raises_and_lets_only_one_reading_through(names, values):
    """Whatever the fields, a problem or None; None only with at most one Content-Length of
    digits and no Transfer-Encoding, or a lone chunked Transfer-Encoding."""
    headers = RequestHeaders(
        [(name, value.strip()) for name, value in zip(names, values, strict=False)]
    )
    problem = framing_problem(headers, "HTTP/1.1")
    lengths = headers.values("content-length")
    codings = headers.values("transfer-encoding")
    if problem is None:
        assert (not codings and len(lengths) <= 1 and all(v.isdigit() for v in lengths)) or (
            not lengths and [c.strip().lower() for c in codings] == ["chunked"]
        )


def test_every_refusal_code_is_a_problem_code_and_has_a_metric():
    """The server's refusals use codes of ``problems.CODES``, each with its counter; an
    unknown code is dropped and counted, never sent."""
    assert set(REFUSAL_CODES) <= set(problems.CODES)
    assert set(REFUSAL_CODES) == set(REFUSED_CODES)
    sink = CapturingSink()
    metrics = Metrics(MetricNames("fd", [], []), sink)
    for code in REFUSAL_CODES:
        metrics.refused(code)
    metrics.refused("not_a_code")
    assert sink.counters() == {f"fd.frontend.refused.{code}": 1 for code in REFUSAL_CODES}
    assert metrics.unknown_names == 1


def test_a_refusal_is_described_as_an_access_line_reads_it():
    """``Refusal.environ``: the method, path and client an access line is made of."""
    refusal = Refusal(431, "headers_too_large", "r1", "GET", "/v1/x", "10.0.0.1", 1.5)
    assert refusal.environ() == {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/v1/x",
        "REMOTE_ADDR": "10.0.0.1",
    }
    assert Refusal(414, "uri_too_long", "r2", "", "", None, 0.1).environ() == {
        "REQUEST_METHOD": "",
        "PATH_INFO": "/",
    }
