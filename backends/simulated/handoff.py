"""What the simulated server hands the application for each request, and what it gets back.

A ``Call`` is the request as read off the wire (path and query still percent-encoded); a
``Reply`` is ready to send. The server calls ``SimulatedApp.answer`` directly: building a
WSGI environ and headers list per call cost more than some services' whole answer.
``wsgi.py`` adapts the same app to any WSGI server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus

_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


@dataclass(frozen=True, slots=True)
class Call:
    """One request; ``sock`` (when known) lets a held request notice that its client left."""

    method: str
    path: str
    query: str = ""
    body: bytes = b""
    sock: socket.socket | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON response from ``service`` (``X-Service``); ``chunks``, when set, stream ``body``
    (its ``Content-Length`` is still ``len(body)``)."""

    status: int
    service: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    chunks: Iterator[bytes] | None = None

    @property
    def status_line(self) -> str:
        """E.g. ``200 OK``."""
        return _STATUS_LINES.get(self.status, f"{self.status} Unknown")

    def fields(self) -> list[tuple[str, str]]:
        """The header fields, in the order the services always sent them."""
        return [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(self.body))),
            ("X-Service", self.service),
            *self.headers,
        ]
