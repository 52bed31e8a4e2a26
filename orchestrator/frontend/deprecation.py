"""Deprecation headers: what a response of a deprecated endpoint tells the device.

RFC 9745 ``Deprecation`` (a structured-field date), RFC 8594 ``Sunset`` (an HTTP date) and
a ``Link`` to the successor and to the deprecation's documentation. Made once per endpoint
at start-up: dates are formatted only there.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable
from datetime import UTC

from orchestrator.frontend.catalog import DOCS_PATH
from orchestrator.plans import Endpoint

__all__ = ["Deprecations", "deprecation_headers"]


class Deprecations:
    """The headers of each deprecated endpoint among ``endpoints``."""

    __slots__ = ("_by_endpoint",)

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self._by_endpoint = {
            endpoint.metric_name: tuple(deprecation_headers(endpoint))
            for endpoint in endpoints
            if endpoint.deprecated is not None
        }

    def headers(self, endpoint: Endpoint) -> tuple[tuple[str, str], ...]:
        """The headers of ``endpoint``'s responses (none unless it is deprecated)."""
        return self._by_endpoint.get(endpoint.metric_name, ())


def deprecation_headers(endpoint: Endpoint) -> list[tuple[str, str]]:
    """``endpoint``'s ``Deprecation``, ``Sunset`` and ``Link`` headers; none unless it is
    deprecated."""
    if endpoint.deprecated is None:
        return []
    headers = [("Deprecation", f"@{int(endpoint.deprecated.timestamp())}")]
    if endpoint.sunset is not None:
        sunset = email.utils.format_datetime(endpoint.sunset.astimezone(UTC), usegmt=True)
        headers.append(("Sunset", sunset))
    links = [f'<{DOCS_PATH}#{endpoint.api}.{endpoint.name}>; rel="deprecation"; type="text/html"']
    if endpoint.successor is not None:
        links.insert(0, f'<{endpoint.successor}>; rel="successor-version"')
    headers.append(("Link", ", ".join(links)))
    return headers
