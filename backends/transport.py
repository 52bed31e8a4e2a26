"""The wire seam: a small interface the client speaks to, so the HTTP library can change.

Two implementations: ``GeventTransport`` (``backends/gevent_transport.py``, the default) and
``RequestsTransport`` (``backends/requests_transport.py``); ``backends/transports.py`` picks
one by ``BackendSpec.transport``, and ``tests/integration/test_transport_contract.py`` holds
both to the same behaviour. A transport moves bytes and translates its library's exceptions
into ``backends.errors``; it knows nothing about JSON, deadlines or retries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

#: A path segment that percent-encoding leaves as it is (RFC 3986 unreserved characters).
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


@dataclass(frozen=True, slots=True)
class BackendRequest:
    """A call to one backend, relative to its base URL.

    ``path_segments`` are percent-encoded here, so device input can only ever fill a
    segment, never change the host or climb the path.
    """

    method: str
    path_segments: tuple[str, ...]
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    #: Extra request headers (name, value). The client's own (request id, deadline,
    #: content type) cannot be overridden by them.
    headers: tuple[tuple[str, str], ...] = ()
    # ``target()`` and ``key()``, each computed once: the call cache, the client and the
    # last-good cache all read them, and percent-encoding is not free.
    _target: str = field(default="", init=False, repr=False, compare=False)
    _key: str = field(default="", init=False, repr=False, compare=False)

    @property
    def idempotent(self) -> bool:
        """Safe to retry: GET, HEAD, PUT and DELETE per RFC 9110."""
        return self.method in {"GET", "HEAD", "PUT", "DELETE"}

    def target(self) -> str:
        """The encoded path and query below the backend's base URL."""
        if self._target:
            return self._target
        path = "/" + "/".join(
            # Most segments (ids, names) need no escaping: skip quote's encode/translate.
            segment if _UNRESERVED.fullmatch(segment) else quote(segment, safe="")
            for segment in self.path_segments
        )
        # Commas stay as they are (RFC 3986 allows them in a query): a batch of ids
        # encoded as %2C made urllib3 re-check the whole URL byte by byte in Python, four
        # times per call (~0.5 ms for 200 ids); without a "%" its fast path applies.
        target = f"{path}?{urlencode(self.query, safe=',')}" if self.query else path
        object.__setattr__(self, "_target", target)
        return target

    def key(self) -> str:
        """A stable identity of this call, for de-duplication and last-good caches."""
        if self._key:
            return self._key
        body = "" if self.body is None else json.dumps(self.body, sort_keys=True)
        headers = "".join(f" {name}={value}" for name, value in sorted(self.headers))
        key = f"{self.method} {self.target()} {body}{headers}"
        object.__setattr__(self, "_key", key)
        return key


def get(*segments: str, **query: str | int) -> BackendRequest:
    """Shorthand for a GET with query parameters (sorted, for stable keys)."""
    return BackendRequest("GET", segments, tuple(sorted((k, str(v)) for k, v in query.items())))


def post(*segments: str, body: Any) -> BackendRequest:
    """Shorthand for a POST with a JSON body."""
    return BackendRequest("POST", segments, (), body)


def put(*segments: str, body: Any) -> BackendRequest:
    """Shorthand for a PUT with a JSON body."""
    return BackendRequest("PUT", segments, (), body)


@dataclass(frozen=True, slots=True)
class WireResponse:
    """What came back over the wire, body already capped."""

    status: int
    #: Looked up by lower-case name, which every transport supports (a repeated header
    #: comes back as one comma-joined value).
    headers: Mapping[str, str]
    body: bytes


class Transport(Protocol):
    """Moves one request over the wire. Implementations raise only ``backends.errors``."""

    def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout_s: float,
        max_body_bytes: int,
    ) -> WireResponse:
        """Send and read the whole (capped) reply; never follow redirects."""
        ...

    def close(self) -> None:
        """Release pooled connections."""
        ...
