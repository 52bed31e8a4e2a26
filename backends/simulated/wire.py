"""Reading requests off a connection: a buffer over the socket that hands out each request's
head and body in turn (keep-alive and pipelined requests share it).

Bounded: a head is at most ``MAX_HEAD_BYTES``, a body at most ``MAX_READ_BODY_BYTES`` (413
beyond, without reading it), and only the first ``KEEP_BODY_BYTES`` of a body are kept.
"""

from __future__ import annotations

import re
import socket

from backends.simulated.exchange import MAX_BODY_BYTES
from backends.simulated.http1 import (
    MAX_HEAD_BYTES,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    HttpSyntaxError,
    RequestHead,
)

#: Body bytes handed to the application: one past what a service reads, so it can tell
#: a body that is too large (413) from one that just fits.
KEEP_BODY_BYTES = MAX_BODY_BYTES + 1
#: Most body bytes read (and mostly discarded) to keep a connection in step.
MAX_READ_BODY_BYTES = 1 << 20
_RECV_BYTES = 65_536
# A head ends at its first empty line; CRLF line ends, or bare LF as RFC 9112 2.2 allows.
_HEAD_END = re.compile(rb"\n\r?\n")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")


class RequestReader:
    """Reads successive requests from one connection."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = b""

    def head(self) -> bytes | None:
        """The next request head, up to and including its empty line; None when the client
        closed the connection (or sent only empty lines) before a new request began."""
        while True:
            # Empty lines before a request line are ignored (RFC 9112 2.2).
            self._buffer = self._buffer.lstrip(b"\r\n")
            found = _HEAD_END.search(self._buffer)
            if found is not None:
                block, self._buffer = self._buffer[: found.end()], self._buffer[found.end() :]
                return block
            self._check_head_size()
            if not self._receive():
                return None

    def body(self, head: RequestHead) -> bytes:
        """The request's body (its first ``KEEP_BODY_BYTES``), read to its end."""
        if head.chunked:
            return self._chunked()
        length = head.content_length or 0
        if length > MAX_READ_BODY_BYTES:
            raise HttpSyntaxError(413, "request body too large")
        return self._exact(length)[:KEEP_BODY_BYTES]

    def _check_head_size(self) -> None:
        buffer = self._buffer
        if len(buffer) > MAX_REQUEST_LINE and b"\n" not in buffer[: MAX_REQUEST_LINE + 2]:
            raise HttpSyntaxError(414, "request line too long")
        if len(buffer) > MAX_HEAD_BYTES:
            raise HttpSyntaxError(431, "request head too large")

    def _receive(self) -> bool:
        """Append what the socket has next; False at the end of the stream."""
        data = self._sock.recv(_RECV_BYTES)
        self._buffer += data
        return bool(data)

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._receive():
                raise HttpSyntaxError(400, "request body cut short")
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _line(self) -> bytes:
        """The next line, without its line end."""
        while (end := self._buffer.find(b"\n")) < 0:
            if len(self._buffer) > MAX_REQUEST_LINE:
                raise HttpSyntaxError(400, "chunk line too long")
            if not self._receive():
                raise HttpSyntaxError(400, "request body cut short")
        line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
        return line.removesuffix(b"\r")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self._line().split(b";", 1)[0].strip(b" \t")
            if not _CHUNK_SIZE.fullmatch(size_text):
                raise HttpSyntaxError(400, "malformed chunk size")
            size = int(size_text, 16)
            if size == 0:
                break
            total += size
            if total > MAX_READ_BODY_BYTES:
                raise HttpSyntaxError(413, "request body too large")
            if total - size < KEEP_BODY_BYTES:
                parts.append(self._exact(size))
            else:
                self._exact(size)
            if self._line():
                raise HttpSyntaxError(400, "chunk data longer than its size")
        for _ in range(MAX_HEADERS + 1):
            if not self._line():  # the empty line after the trailer fields
                return b"".join(parts)[:KEEP_BODY_BYTES]
        raise HttpSyntaxError(431, "too many trailer fields")
