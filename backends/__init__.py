"""The backend side: what Frontdoor knows about each microservice (``BackendSpec``), the
request builders, and the client that makes one bounded JSON call over a pluggable transport.

Public: ``__all__``; ``backends.simulated`` (the simulated microservices) and
``backends.testing`` (fakes) are public subpackages/modules; the rest is implementation. A new
HTTP library goes in as a ``Transport`` module registered in ``transports.py`` and held to
``tests/integration/test_transport_contract.py``. Imports neither ``actors`` nor ``orchestrator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from backends.client import BackendClient
    from backends.errors import (
        BackendBodyTooLargeError,
        BackendConnectionError,
        BackendDeadlineError,
        BackendError,
        BackendProtocolError,
        BackendStatusError,
        BackendTimeoutError,
    )
    from backends.specs import (
        DEFAULT_TRANSPORT,
        TRANSPORT_NAMES,
        BackendSpec,
        BreakerSettings,
        RetrySettings,
    )
    from backends.transport import BackendRequest, Transport, WireResponse, get, post, put
    from backends.transports import make_transport

__all__ = [
    "DEFAULT_TRANSPORT",
    "TRANSPORT_NAMES",
    "BackendBodyTooLargeError",
    "BackendClient",
    "BackendConnectionError",
    "BackendDeadlineError",
    "BackendError",
    "BackendProtocolError",
    "BackendRequest",
    "BackendSpec",
    "BackendStatusError",
    "BackendTimeoutError",
    "BreakerSettings",
    "RetrySettings",
    "Transport",
    "WireResponse",
    "get",
    "make_transport",
    "post",
    "put",
]

# Lazy (PEP 562): importing the package imports no submodule, so not ssl, requests or
# geventhttpclient before gevent patches.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "client": ("BackendClient",),
            "errors": (
                "BackendBodyTooLargeError",
                "BackendConnectionError",
                "BackendDeadlineError",
                "BackendError",
                "BackendProtocolError",
                "BackendStatusError",
                "BackendTimeoutError",
            ),
            "specs": (
                "DEFAULT_TRANSPORT",
                "TRANSPORT_NAMES",
                "BackendSpec",
                "BreakerSettings",
                "RetrySettings",
            ),
            "transport": ("BackendRequest", "Transport", "WireResponse", "get", "post", "put"),
            "transports": ("make_transport",),
        },
    )
