"""Discovery documents built from the endpoint declarations: ``/v1/catalog`` and OpenAPI 3.1.

Both are plain data made once per process from the registry (which never changes after
start-up), so serving them costs a dict look-up. The catalog is Frontdoor's own shape,
for device teams browsing what exists; the OpenAPI document is the standard one, for
tools. Nothing here is written by hand per endpoint: add an endpoint, and it appears.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from orchestrator.frontend import problems
from orchestrator.frontend.protocol.batch import BATCH_PATH
from orchestrator.frontend.protocol.fields import MAX_DEPTH, MAX_LENGTH
from orchestrator.plans import Auth, Endpoint, EndpointRegistry, Param, Source
from orchestrator.schema import Field, Kind

__all__ = [
    "BUILTIN_ROUTES",
    "CATALOG_PATH",
    "DOCS_PATH",
    "OPENAPI_PATH",
    "Limits",
    "catalog_document",
    "example_request",
    "openapi_document",
]

CATALOG_PATH = "/v1/catalog"
OPENAPI_PATH = "/openapi.json"
DOCS_PATH = "/docs"
#: Routes the app answers itself, outside the registry: (method, path).
BUILTIN_ROUTES = (
    ("POST", BATCH_PATH),
    ("GET", CATALOG_PATH),
    ("GET", OPENAPI_PATH),
    ("GET", DOCS_PATH),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
)

_FIELDS_SYNTAX = (
    "Comma-separated names; a nested selection in parentheses, e.g. "
    "rows(title,videos(id,title)); a/b is short for a(b); * selects every field of its level."
)
_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}
_PROBLEM_REF = {"$ref": "#/components/responses/Problem"}


@dataclass(frozen=True, slots=True)
class Limits:
    """The protocol's limits, as the app enforces them."""

    batch_max_calls: int
    batch_concurrency: int


# -- the catalog ---------------------------------------------------------------------------


def catalog_document(registry: EndpointRegistry, limits: Limits) -> dict[str, Any]:
    """Every endpoint with its parameters, selectable fields, owner, auth and an example."""
    return {
        "endpoints": [_entry(endpoint) for endpoint in registry.endpoints],
        "protocol": {
            "fields": {
                "parameter": "fields",
                "syntax": _FIELDS_SYNTAX,
                "max_length": MAX_LENGTH,
                "max_depth": MAX_DEPTH,
            },
            "batch": {
                "method": "POST",
                "path": BATCH_PATH,
                "max_calls": limits.batch_max_calls,
                "concurrency": limits.batch_concurrency,
            },
        },
        "documents": {"openapi": OPENAPI_PATH, "docs": DOCS_PATH},
    }


def _entry(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "name": endpoint.name,
        "api": endpoint.api,
        "team": endpoint.team,
        "method": endpoint.method,
        "path": endpoint.path,
        "version": endpoint.version,
        "auth": endpoint.auth.value,
        "summary": endpoint.summary,
        "deadline_ms": endpoint.deadline_ms,
        "status": endpoint.success_status,
        "params": [_param_entry(param) for param in endpoint.params],
        "fields": [_field_entry(child) for child in endpoint.fields.children],
        "example": example_request(endpoint),
        "deprecation": _deprecation(endpoint),
    }


def _param_entry(param: Param) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": param.name,
        "in": param.source.value,
        "type": _JSON_TYPES[param.kind],
        "required": param.required,
        "description": param.description,
    }
    optional = {
        "default": param.default,
        "minimum": param.minimum,
        "maximum": param.maximum,
        "max_length": param.max_length,
        "pattern": param.pattern,
        "choices": list(param.choices) or None,
    }
    entry.update((key, value) for key, value in optional.items() if value is not None)
    return entry


def _field_entry(field: Field) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": field.name,
        "type": field.kind.value,
        "many": field.many,
        "nullable": field.nullable,
        "description": field.description,
    }
    if field.children:
        entry["fields"] = [_field_entry(child) for child in field.children]
    return entry


def _deprecation(endpoint: Endpoint) -> dict[str, Any] | None:
    if endpoint.deprecated is None:
        return None
    return {
        "deprecated": _iso(endpoint.deprecated),
        "sunset": None if endpoint.sunset is None else _iso(endpoint.sunset),
        "successor": endpoint.successor,
    }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def example_request(endpoint: Endpoint) -> dict[str, Any]:
    """A request that works: the declared examples of required parameters, and ``fields``."""
    path = endpoint.path
    query: list[tuple[str, str]] = []
    body: dict[str, Any] = {}
    for param in endpoint.params:
        if not param.required:
            continue
        if param.source is Source.PATH:
            path = path.replace(f"{{{param.name}}}", str(param.example))
        elif param.source is Source.QUERY:
            query.append((param.name, str(param.example)))
        else:
            body[param.name] = param.example
    if endpoint.example_fields is not None:
        query.append(("fields", endpoint.example_fields))
    if query:
        # Parentheses, commas and stars are legal in a query: keep selections readable.
        path += "?" + urlencode(query, safe="(),*/")
    example: dict[str, Any] = {"method": endpoint.method, "path": path}
    if endpoint.auth is not Auth.PUBLIC:
        example["headers"] = {"Authorization": "Bearer <token>"}
    if endpoint.method in {"POST", "PUT"}:
        example["body"] = body
    return example


# -- OpenAPI 3.1 ---------------------------------------------------------------------------


def openapi_document(registry: EndpointRegistry, limits: Limits) -> dict[str, Any]:
    """A valid OpenAPI 3.1 document of every route, from the same declarations."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {"Problem": _problem_schema(), "Meta": _meta_schema()}
    for endpoint in registry.endpoints:
        name = f"{endpoint.api}.{endpoint.name}"
        schemas[name] = _body_schema(endpoint.fields)
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, name)
    schemas.update(_batch_schemas(limits))
    for path, operations in _builtin_paths().items():
        paths.setdefault(path, {}).update(operations)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Frontdoor",
            "version": _version(),
            "summary": "The device-facing API of the video service.",
            "description": (
                "Every endpoint takes `fields` for a partial response; errors are RFC 9457 "
                "problem details with a stable `code`; `POST /v1/batch` runs several calls "
                "in one round trip. See /v1/catalog for the same in Frontdoor's own shape."
            ),
        },
        "tags": _tags(registry.endpoints),
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": _common_parameters(),
            "responses": {
                "Problem": {
                    "description": "A problem: see its code.",
                    "content": {problems.CONTENT_TYPE: {"schema": {"$ref": _ref("Problem")}}},
                }
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _version() -> str:
    try:
        return importlib.metadata.version("frontdoor")
    except importlib.metadata.PackageNotFoundError:  # running from a source tree
        return "0+unknown"


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _tags(endpoints: Iterable[Endpoint]) -> list[dict[str, str]]:
    teams = {endpoint.api: endpoint.team for endpoint in endpoints}
    tags = [{"name": api, "description": f"Owned by team {team}."} for api, team in teams.items()]
    tags.append({"name": "protocol", "description": "Batching, discovery and operations."})
    return tags


def _operation(endpoint: Endpoint, schema_name: str) -> dict[str, Any]:
    example = example_request(endpoint)
    operation: dict[str, Any] = {
        "operationId": schema_name,
        "summary": endpoint.summary,
        "tags": [endpoint.api],
        "parameters": [
            *(_parameter(p) for p in endpoint.params if p.source is not Source.BODY),
            {"$ref": "#/components/parameters/fields"},
            {"$ref": "#/components/parameters/requestId"},
            {"$ref": "#/components/parameters/requestTimeout"},
        ],
        "responses": _responses(endpoint, schema_name),
        "security": [] if endpoint.auth is Auth.PUBLIC else [{"bearer": []}],
        "x-team": endpoint.team,
        "x-auth": endpoint.auth.value,
        "x-deadline-ms": endpoint.deadline_ms,
        "x-example-request": example,
    }
    body_params = [p for p in endpoint.params if p.source is Source.BODY]
    if body_params:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _body_params(body_params)}},
        }
    if endpoint.deprecated is not None:
        operation["deprecated"] = True
    return operation


def _parameter(param: Param) -> dict[str, Any]:
    parameter: dict[str, Any] = {
        "name": param.name,
        "in": param.source.value,
        "required": param.required or param.source is Source.PATH,
        "description": param.description,
        "schema": _param_schema(param),
    }
    if param.example is not None:
        parameter["example"] = param.example
    return parameter


def _param_schema(param: Param) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _JSON_TYPES[param.kind]}
    bounds = {
        "default": param.default,
        "minimum": param.minimum,
        "maximum": param.maximum,
        "maxLength": param.max_length,
        "pattern": param.pattern,
        "enum": list(param.choices) or None,
    }
    schema.update((key, value) for key, value in bounds.items() if value is not None)
    return schema


def _body_params(params: list[Param]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {p.name: {**_param_schema(p), "description": p.description} for p in params},
        "required": [p.name for p in params if p.required],
        "additionalProperties": False,
        "example": {p.name: p.example for p in params if p.example is not None},
    }


def _responses(endpoint: Endpoint, schema_name: str) -> dict[str, Any]:
    success: dict[str, Any] = {
        "description": "The response; with `fields`, only the selected fields.",
        "content": {"application/json": {"schema": {"$ref": _ref(schema_name)}}},
    }
    if endpoint.deprecated is not None:
        success["headers"] = _deprecation_headers(endpoint)
    statuses = ["400"]
    if endpoint.auth is not Auth.PUBLIC:
        statuses.append("401")
    if endpoint.auth is Auth.ADMIN:
        statuses.append("403")
    if endpoint.method in {"POST", "PUT"}:
        statuses.extend(("413", "415"))
    # What the endpoint's services may refuse on the device's behalf (409, 402, 404...).
    statuses.extend(
        str(problems.CODES[error.code].status)
        for step in endpoint.plan.steps
        for error in step.device_errors.values()
    )
    statuses.extend(("500", "503", "504"))
    statuses = sorted(set(statuses))
    responses = {str(endpoint.success_status): success}
    responses.update((status, _PROBLEM_REF) for status in statuses)
    return responses


def _deprecation_headers(endpoint: Endpoint) -> dict[str, Any]:
    headers = {
        "Deprecation": {
            "description": "RFC 9745: when this version was deprecated, e.g. @1767225600.",
            "schema": {"type": "string"},
        },
        "Link": {
            "description": f"The successor version ({endpoint.successor}), rel=successor-version.",
            "schema": {"type": "string"},
        },
    }
    if endpoint.sunset is not None:
        headers["Sunset"] = {
            "description": "RFC 8594: when this version stops answering (an HTTP date).",
            "schema": {"type": "string"},
        }
    return headers


def _body_schema(fields: Field) -> dict[str, Any]:
    schema = _object_schema(fields)
    schema["properties"]["meta"] = {"$ref": _ref("Meta")}
    return schema


def _object_schema(field: Field) -> dict[str, Any]:
    # No "required": with ``fields`` a device may leave any field out of its response.
    return {
        "type": "object",
        "properties": {child.name: _field_schema(child) for child in field.children},
    }


def _field_schema(field: Field) -> dict[str, Any]:
    item = _object_schema(field) if field.kind is Kind.OBJECT else {"type": field.kind.value}
    if field.nullable:
        item["type"] = [item["type"], "null"]
    schema = {"type": "array", "items": item} if field.many else item
    if field.description:
        schema["description"] = field.description
    return schema


def _meta_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Always present, whatever `fields` selects.",
        "properties": {
            "degraded": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Parts that fell back to a default because a service failed.",
            }
        },
    }


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string", "enum": sorted(problems.CODES)},
            "request_id": {"type": "string"},
        },
        "required": ["type", "title", "status", "detail", "code", "request_id"],
    }


def _common_parameters() -> dict[str, Any]:
    return {
        "fields": {
            "name": "fields",
            "in": "query",
            "required": False,
            "description": f"A partial response. {_FIELDS_SYNTAX}",
            "schema": {"type": "string", "maxLength": MAX_LENGTH},
        },
        "requestId": {
            "name": "X-Request-Id",
            "in": "header",
            "required": False,
            "description": "Echoed back and passed to every service; generated if absent.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
        },
        "requestTimeout": {
            "name": "X-Request-Timeout-Ms",
            "in": "header",
            "required": False,
            "description": "Lowers (never raises) the endpoint's deadline.",
            "schema": {"type": "integer", "minimum": 1},
        },
    }


def _batch_schemas(limits: Limits) -> dict[str, Any]:
    call = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,64}$"},
            "method": {"type": "string", "default": "GET"},
            "path": {"type": "string", "description": "An endpoint's path, e.g. /v1/..."},
            "query": {
                "type": "object",
                "additionalProperties": {
                    "type": ["string", "integer", "boolean", "array"],
                    "items": {"type": ["string", "integer", "boolean"]},
                },
            },
            "body": {"type": "object"},
        },
        "required": ["id", "path"],
        "additionalProperties": False,
    }
    reply = {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "integer"},
            "body": {"description": "The call's response body, on success."},
            "problem": {"$ref": _ref("Problem")},
            "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        },
        "required": ["id", "status"],
    }
    return {
        "BatchRequest": {
            "type": "object",
            "properties": {
                "requests": {
                    "type": "array",
                    "items": call,
                    "minItems": 1,
                    "maxItems": limits.batch_max_calls,
                }
            },
            "required": ["requests"],
            "additionalProperties": False,
        },
        "BatchResponse": {
            "type": "object",
            "properties": {
                "responses": {"type": "array", "items": reply},
                "meta": {
                    "type": "object",
                    "properties": {"calls": {"type": "integer"}, "failed": {"type": "integer"}},
                },
            },
        },
    }


def _builtin_paths() -> dict[str, dict[str, Any]]:
    def get(operation_id: str, summary: str, content: dict[str, Any]) -> dict[str, Any]:
        return {
            "get": {
                "operationId": operation_id,
                "summary": summary,
                "tags": ["protocol"],
                "security": [],
                "responses": {"200": {"description": summary, "content": content}},
            }
        }

    any_json = {"application/json": {"schema": {"type": "object"}}}
    return {
        BATCH_PATH: {
            "post": {
                "operationId": "protocol.batch",
                "summary": "Run several calls in one round trip, each with its own status.",
                "tags": ["protocol"],
                "security": [],
                "description": (
                    "Calls run concurrently, share one deadline and the batch's "
                    "Authorization; identical service reads are made once. The batch "
                    "answers 200 whatever its calls do."
                ),
                "parameters": [
                    {"$ref": "#/components/parameters/requestId"},
                    {"$ref": "#/components/parameters/requestTimeout"},
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _ref("BatchRequest")}}},
                },
                "responses": {
                    "200": {
                        "description": "Every call's reply, in request order.",
                        "content": {
                            "application/json": {"schema": {"$ref": _ref("BatchResponse")}}
                        },
                    },
                    "400": _PROBLEM_REF,
                    "413": _PROBLEM_REF,
                    "415": _PROBLEM_REF,
                },
            }
        },
        CATALOG_PATH: get("protocol.catalog", "Every endpoint, in Frontdoor's shape.", any_json),
        OPENAPI_PATH: get("protocol.openapi", "This document.", any_json),
        DOCS_PATH: get(
            "protocol.docs",
            "This document as a page.",
            {"text/html": {"schema": {"type": "string"}}},
        ),
        "/healthz": get("protocol.healthz", "The process is up.", any_json),
        "/readyz": get("protocol.readyz", "Ready for traffic (not draining).", any_json),
    }
