"""The discovery documents (catalog, OpenAPI, docs page): endpoints of the app itself.

Rendered once at start-up, since the registry never changes after it, and answered before
admission control, even while the process sheds: they cost a dictionary lookup.
"""

from __future__ import annotations

from orchestrator.frontend.catalog import (
    CATALOG_PATH,
    DOCS_PATH,
    OPENAPI_PATH,
    Limits,
    catalog_document,
    openapi_document,
)
from orchestrator.frontend.docs_page import CONTENT_SECURITY_POLICY, render
from orchestrator.frontend.request import Request, StartResponse
from orchestrator.frontend.respond import JSON, Document, Responder, encode_json
from orchestrator.plans import EndpointRegistry

__all__ = ["Documents"]


class Documents:
    """Serves each document at its path (GET only)."""

    __slots__ = ("_by_path", "_respond")

    def __init__(self, registry: EndpointRegistry, limits: Limits, respond: Responder) -> None:
        openapi = openapi_document(registry, limits)
        # Cacheable for a while: they change only with a deployment.
        cache = ("Cache-Control", "public, max-age=300")
        self._by_path = {
            CATALOG_PATH: Document(JSON, encode_json(catalog_document(registry, limits)), (cache,)),
            OPENAPI_PATH: Document(JSON, encode_json(openapi), (cache,)),
            DOCS_PATH: Document(
                "text/html; charset=utf-8",
                render(openapi).encode(),
                (cache, ("Content-Security-Policy", CONTENT_SECURITY_POLICY)),
            ),
        }
        self._respond = respond

    def serve(self, start_response: StartResponse, request: Request) -> list[bytes] | None:
        """The response when ``request`` asks for a document; None otherwise."""
        document = self._by_path.get(request.path)
        if document is None:
            return None
        return self._respond.document(start_response, request, document)
