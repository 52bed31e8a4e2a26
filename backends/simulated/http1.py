"""HTTP/1.1 as the simulated server speaks it, without I/O: a request head parsed from its
bytes, a response head formatted. ``wire.py`` reads, ``connection.py`` serves.

Deliberately small: HTTP/1.0 and 1.1, ``Content-Length`` or ``chunked`` request bodies,
keep-alive, ``Expect: 100-continue``. What a real server would tolerate but a test fixture
need not (obsolete line folding, other transfer codings, HTTP/0.9) is refused with a 4xx
or 5xx status rather than guessed at.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate

#: Longest request line; longer is answered 414.
MAX_REQUEST_LINE = 8_192
#: Longest request head (request line and headers); longer is answered 431.
MAX_HEAD_BYTES = 65_536
#: Most header fields in one request; more is answered 431.
MAX_HEADERS = 100

# RFC 9110 token characters: what a method and a field name are made of.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSIONS = frozenset({"HTTP/1.0", "HTTP/1.1"})
_DIGITS = re.compile(r"[0-9]{1,18}")


class HttpSyntaxError(Exception):
    """The request cannot be served; answer ``status`` and close the connection."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RequestHead:
    """A parsed request line and header section.

    ``headers`` keeps each field as sent (name, value), in order; the other attributes are
    what the server decides from them.
    """

    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    content_length: int | None = None
    chunked: bool = False
    keep_alive: bool = True
    expect_continue: bool = False

    @property
    def has_body(self) -> bool:
        """Whether a body follows the head."""
        return self.chunked or bool(self.content_length)


def parse_head(block: bytes) -> RequestHead:
    """The head of ``block`` (request line to the blank line, CRLF or bare LF line ends)."""
    lines = block.decode("latin-1").split("\n")
    method, target, version = _request_line(lines[0].removesuffix("\r"))
    fields: list[tuple[str, str]] = []
    for raw in lines[1:]:
        line = raw.removesuffix("\r")
        if not line:
            break
        fields.append(_field(line))
        if len(fields) > MAX_HEADERS:
            raise HttpSyntaxError(431, "too many header fields")
    return _decide(method, target, version, tuple(fields))


def _request_line(line: str) -> tuple[str, str, str]:
    if len(line) > MAX_REQUEST_LINE:
        raise HttpSyntaxError(414, "request line too long")
    parts = line.split(" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]) or not parts[1]:  # noqa: PLR2004 - method, target, version
        raise HttpSyntaxError(400, "malformed request line")
    if parts[2] not in _VERSIONS:
        raise HttpSyntaxError(505, "HTTP version not supported")
    return parts[0], parts[1], parts[2]


def _field(line: str) -> tuple[str, str]:
    name, colon, value = line.partition(":")
    # No space before the colon, no folded continuation lines (RFC 9112 5.1, 5.2).
    if not colon or not _TOKEN.fullmatch(name):
        raise HttpSyntaxError(400, "malformed header field")
    return name, value.strip(" \t")


def _decide(
    method: str, target: str, version: str, fields: tuple[tuple[str, str], ...]
) -> RequestHead:
    lengths: set[str] = set()
    codings: list[str] = []
    tokens: set[str] = set()
    expect = False
    for name, value in fields:
        lowered = name.lower()
        if lowered == "content-length":
            lengths.add(value)
        elif lowered == "transfer-encoding":
            codings.extend(token.strip().lower() for token in value.split(","))
        elif lowered == "connection":
            tokens.update(token.strip().lower() for token in value.split(","))
        elif lowered == "expect":
            expect = value.lower() == "100-continue"
    chunked = _chunked(codings)
    if chunked:
        # Transfer-Encoding overrides Content-Length (RFC 9112 6.3).
        lengths.clear()
    if len(lengths) > 1:
        raise HttpSyntaxError(400, "conflicting Content-Length")
    length = lengths.pop() if lengths else None
    if length is not None and not _DIGITS.fullmatch(length):
        raise HttpSyntaxError(400, "malformed Content-Length")
    keep_alive = "close" not in tokens if version == "HTTP/1.1" else "keep-alive" in tokens
    return RequestHead(
        method,
        target,
        version,
        fields,
        None if length is None else int(length),
        chunked,
        keep_alive,
        expect,
    )


def _chunked(codings: list[str]) -> bool:
    if not codings:
        return False
    if codings != ["chunked"]:
        raise HttpSyntaxError(501, "unsupported transfer coding")
    return True


def response_head(
    status: str, headers: Iterable[tuple[str, str]], connection: str | None = None
) -> bytes:
    """The status line and header section of a response, with ``Date`` and, when given,
    ``Connection`` (``close``, or ``keep-alive`` for an HTTP/1.0 client)."""
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"Date: {_DATE.now()}")
    if connection is not None:
        lines.append(f"Connection: {connection}")
    text = "\r\n".join(lines)
    # A CR or LF inside a status or header would split it in two (response splitting).
    if text.count("\n") != len(lines) - 1 or text.count("\r") != len(lines) - 1:
        raise ValueError("a CR or LF inside a status or header line")
    return text.encode("latin-1") + b"\r\n\r\n"


class _HttpDate:
    """Now as an HTTP date (RFC 9110 5.6.7), formatted once per second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        second = int(time.time())
        if second != self._second:
            self._second, self._text = second, formatdate(second, usegmt=True)
        return self._text


_DATE = _HttpDate()
