"""The catalog and the OpenAPI document: complete, valid, and built from the declarations."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from openapi_spec_validator import validate

from orchestrator.config import load_settings
from orchestrator.frontend.catalog import (
    BUILTIN_ROUTES,
    Limits,
    catalog_document,
    example_request,
    openapi_document,
)
from orchestrator.frontend.docs_page import render
from orchestrator.frontend.protocol.fields import parse_fields
from orchestrator.frontend.protocol.params import parse_params
from orchestrator.plans import EndpointRegistry
from orchestrator.runtime import endpoints_for

LIMITS = Limits(batch_max_calls=20, batch_concurrency=8)


@pytest.fixture(scope="module")
def registry() -> EndpointRegistry:
    """Every family's endpoints, as one process serves them."""
    return EndpointRegistry(endpoints_for(load_settings(environ={}).server))


@pytest.fixture(scope="module")
def openapi(registry: EndpointRegistry) -> dict[str, Any]:
    """The OpenAPI document of that registry."""
    return openapi_document(registry, LIMITS)


def test_the_openapi_document_is_valid_openapi_3_1(openapi: dict[str, Any]):
    """openapi-spec-validator accepts it."""
    assert openapi["openapi"] == "3.1.0"
    validate(openapi)


def test_every_route_is_in_the_openapi_document(
    registry: EndpointRegistry, openapi: dict[str, Any]
):
    """Each endpoint and each built-in route appears with its method."""
    routes = {(e.method, e.path) for e in registry.endpoints} | set(BUILTIN_ROUTES)
    documented = {
        (method.upper(), path) for path, ops in openapi["paths"].items() for method in ops
    }
    assert routes == documented


def test_operations_carry_owner_auth_deadline_and_a_response_schema(
    registry: EndpointRegistry, openapi: dict[str, Any]
):
    """Member endpoints need the bearer scheme; v1 home is deprecated with its headers."""
    for endpoint in registry.endpoints:
        operation = openapi["paths"][endpoint.path][endpoint.method.lower()]
        assert operation["x-team"] == endpoint.team
        assert operation["x-deadline-ms"] == endpoint.deadline_ms
        assert bool(operation["security"]) == (endpoint.auth.value != "public")
        ref = operation["responses"][str(endpoint.success_status)]["content"]["application/json"]
        schema = openapi["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]
        assert set(schema["properties"]) == {*endpoint.fields.names, "meta"}
    home = openapi["paths"]["/v1/discovery/home"]["get"]
    assert home["deprecated"] is True
    assert set(home["responses"]["200"]["headers"]) == {"Deprecation", "Sunset", "Link"}
    assert "deprecated" not in openapi["paths"]["/v2/discovery/home"]["get"]


def test_the_catalog_lists_every_endpoint_with_everything_a_device_team_needs(
    registry: EndpointRegistry,
):
    """Method, path, version, team, auth, typed bounded params, field tree, deadline, example."""
    catalog = catalog_document(registry, LIMITS)
    entries = {(e["method"], e["path"]): e for e in catalog["endpoints"]}
    assert set(entries) == {(e.method, e.path) for e in registry.endpoints}
    home = entries[("GET", "/v1/discovery/home")]
    assert {k: home[k] for k in ("version", "team", "auth", "deadline_ms")} == {
        "version": 1,
        "team": "discovery",
        "auth": "member",
        "deadline_ms": 1000,
    }
    assert home["params"][0] == {
        "name": "rows",
        "in": "query",
        "type": "integer",
        "required": False,
        "description": "How many rows to return.",
        "default": 10,
        "minimum": 1,
        "maximum": 40,
    }
    rows = home["fields"][0]
    assert (rows["name"], rows["many"]) == ("rows", True)
    videos = {f["name"]: f for f in rows["fields"]}["videos"]
    assert [f["name"] for f in videos["fields"]] == [
        "id",
        "title",
        "year",
        "genres",
        "maturity_rating",
        "boxart",
        "match",
    ]
    assert home["deprecation"] == {
        "deprecated": "2026-01-01T00:00:00Z",
        "sunset": "2027-07-01T00:00:00Z",
        "successor": "/v2/discovery/home",
    }
    assert catalog["protocol"]["batch"] == {
        "method": "POST",
        "path": "/v1/batch",
        "max_calls": 20,
        "concurrency": 8,
    }


def test_every_example_request_routes_and_passes_validation(registry: EndpointRegistry):
    """Examples are generated from declarations, so they must be requests that work."""
    for endpoint in registry.endpoints:
        example = example_request(endpoint)
        url = urlsplit(example["path"])
        match = registry.route(example["method"], url.path)
        assert match.endpoint is endpoint
        query = parse_qs(url.query, keep_blank_values=True)
        fields = query.pop("fields", None)
        parse_params(endpoint, query, match.path_params, example.get("body"))
        if fields is not None:
            parse_fields(fields[0], endpoint.fields)


def test_the_docs_page_shows_every_operation_and_loads_nothing_from_elsewhere(
    openapi: dict[str, Any],
):
    """One anchor per operation; no script, no external stylesheet or image."""
    page = render(openapi)
    for operations in openapi["paths"].values():
        for operation in operations.values():
            assert f'id="{operation["operationId"]}"' in page
    assert "<script" not in page
    assert "src=" not in page
    assert "stylesheet" not in page
    assert "Deprecated" in page


def test_the_docs_page_escapes_what_it_shows():
    """A declaration's text is escaped, never interpreted as HTML."""
    page = render(
        {
            "info": {"title": "<b>x</b>"},
            "tags": [{"name": "t"}],
            "paths": {"/a": {"get": {"tags": ["t"], "summary": "<script>alert(1)</script>"}}},
        }
    )
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
