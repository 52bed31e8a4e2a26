"""The discovery documents: rendered once, served at their paths, to GET only."""

from __future__ import annotations

import json

from stage_kit import Started, endpoint, observed, request

from orchestrator.frontend.catalog import CATALOG_PATH, DOCS_PATH, OPENAPI_PATH, Limits
from orchestrator.frontend.documents import Documents
from orchestrator.plans import EndpointRegistry


def _documents() -> Documents:
    respond, _ = observed()
    return Documents(EndpointRegistry((endpoint(),)), Limits(20, 8), respond)


def test_each_document_is_served_at_its_path_cacheable():
    documents = _documents()
    for path, content_type in (
        (CATALOG_PATH, "application/json"),
        (OPENAPI_PATH, "application/json"),
        (DOCS_PATH, "text/html; charset=utf-8"),
    ):
        started = Started()
        payload = b"".join(documents.serve(started, request(path=path)) or [])
        assert started.code == 200, path
        assert started.header("Content-Type") == content_type
        assert started.header("Cache-Control") == "public, max-age=300"
        assert started.header("Content-Length") == str(len(payload))
    assert started.header("Content-Security-Policy")


def test_the_catalog_lists_the_registry_and_the_batch_limits():
    started = Started()
    catalog = json.loads(b"".join(_documents().serve(started, request(path=CATALOG_PATH)) or []))
    assert [entry["path"] for entry in catalog["endpoints"]] == ["/v1/things/thing"]
    assert json.dumps(catalog).count('"max_calls": 20, "concurrency": 8') == 1


def test_another_path_is_not_a_document_and_a_post_is_refused():
    documents = _documents()
    assert documents.serve(Started(), request()) is None
    refused = Started()
    documents.serve(refused, request(method="POST", path=OPENAPI_PATH))
    assert refused.code == 405
