"""Choosing a backend's transport: ``spec.transport`` names the HTTP client library.

``gevent`` (the default) is geventhttpclient's C parser, ~4x cheaper in CPU per call;
``requests`` is kept as a supported choice (its behaviour is the reference the contract
tests hold both to). Configuration checks the name at start-up (``backends.transport``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from backends.gevent_transport import GeventTransport
from backends.requests_transport import RequestsTransport
from backends.specs import TRANSPORT_NAMES, BackendSpec
from backends.transport import Transport

__all__ = ["TRANSPORTS", "make_transport"]

#: Each transport name of ``backends.specs.TRANSPORT_NAMES`` and what builds it.
TRANSPORTS: Final[Mapping[str, Callable[[BackendSpec], Transport]]] = {
    "gevent": GeventTransport,
    "requests": RequestsTransport,
}


def make_transport(spec: BackendSpec) -> Transport:
    """The transport ``spec.transport`` names; ``ValueError`` for a name not in the table."""
    try:
        factory = TRANSPORTS[spec.transport]
    except KeyError:
        choices = ", ".join(TRANSPORT_NAMES)
        message = f"unknown transport {spec.transport!r}; expected one of {choices}"
        raise ValueError(message) from None
    return factory(spec)
