"""The simulated server's HTTP/1.1 heads: parsing requests, formatting responses."""

from __future__ import annotations

import re

import pytest

from backends.simulated.http1 import (
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    HttpSyntaxError,
    parse_head,
    response_head,
)


def head(text: str):
    return parse_head(text.encode("latin-1"))


def test_a_plain_get():
    """Method, target and version as sent; keep-alive by default in HTTP/1.1."""
    parsed = head("GET /catalog/titles?ids=t1,t2 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n")
    assert (parsed.method, parsed.target, parsed.version) == (
        "GET",
        "/catalog/titles?ids=t1,t2",
        "HTTP/1.1",
    )
    assert parsed.headers == (("Host", "x"), ("Accept", "*/*"))
    assert parsed.keep_alive
    assert parsed.content_length is None
    assert not parsed.has_body


def test_bare_lf_line_ends_and_header_whitespace():
    """RFC 9112 lets a recipient accept LF alone; values lose surrounding blanks."""
    parsed = head("PUT /b/m1/t1 HTTP/1.1\nContent-Length:  12 \nX-Y:\tz\t\n\n")
    assert parsed.content_length == 12
    assert parsed.has_body
    assert parsed.headers == (("Content-Length", "12"), ("X-Y", "z"))


@pytest.mark.parametrize(
    ("version", "connection", "keep_alive"),
    [
        ("HTTP/1.1", None, True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Keep-Alive, Close", False),
        ("HTTP/1.0", None, False),
        ("HTTP/1.0", "keep-alive", True),
    ],
)
def test_keep_alive_follows_version_and_connection(version, connection, keep_alive):
    """HTTP/1.1 stays open unless told to close; HTTP/1.0 closes unless told to stay."""
    extra = "" if connection is None else f"Connection: {connection}\r\n"
    assert head(f"GET / {version}\r\n{extra}\r\n").keep_alive is keep_alive


def test_chunked_overrides_content_length_and_expect_is_seen():
    """Transfer-Encoding wins over Content-Length; Expect: 100-continue is noticed."""
    parsed = head(
        "POST /x HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: Chunked\r\n"
        "Expect: 100-Continue\r\n\r\n"
    )
    assert parsed.chunked
    assert parsed.content_length is None
    assert parsed.expect_continue
    assert parsed.has_body


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("GET /\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\n\r\n", 505),
        ("GET / HTTP/1.1\r\nNo colon\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nSpace : before\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nA: b\r\n  folded\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (f"GET /{'a' * MAX_REQUEST_LINE} HTTP/1.1\r\n\r\n", 414),
        ("GET / HTTP/1.1\r\n" + "A: b\r\n" * (MAX_HEADERS + 1) + "\r\n", 431),
    ],
)
def test_malformed_heads_are_refused_with_a_status(text, status):
    """What the server will not guess at gets a precise status."""
    with pytest.raises(HttpSyntaxError) as raised:
        head(text)
    assert raised.value.status == status


def test_equal_content_lengths_are_one():
    """The same length twice is not a conflict."""
    assert (
        head("GET / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n").content_length == 3
    )


def test_response_head_has_date_and_the_connection_header_asked_for():
    """Status line, headers in order, Date, then Connection when given, and a blank line."""
    text = response_head("200 OK", [("Content-Length", "2"), ("X-Service", "catalog")]).decode()
    lines = text.split("\r\n")
    assert lines[:3] == ["HTTP/1.1 200 OK", "Content-Length: 2", "X-Service: catalog"]
    assert re.fullmatch(r"Date: \w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT", lines[3])
    assert lines[4:] == ["", ""]
    closing = response_head("503 Service Unavailable", [], "close").decode()
    assert closing.endswith("\r\nConnection: close\r\n\r\n")


@pytest.mark.parametrize("bad", [("X-A", "b\r\nX-Injected: 1"), ("X\nB", "c"), ("X-C", "d\re")])
def test_response_head_refuses_line_breaks_inside_headers(bad):
    """No response splitting through a header."""
    with pytest.raises(ValueError, match="CR or LF"):
        response_head("200 OK", [bad])
