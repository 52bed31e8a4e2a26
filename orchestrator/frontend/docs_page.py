"""``GET /docs``: the OpenAPI document as one self-contained HTML page.

No script and no external asset (no CDN): the page is rendered once at start-up from the
same document ``/openapi.json`` serves, and every value from it is HTML-escaped.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["CONTENT_SECURITY_POLICY", "render"]

#: The page needs its inline style and nothing else.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;
color:#1d1d1f}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2.5rem}
section{border:1px solid #e3e3e3;border-radius:8px;padding:.6rem 1rem;margin:1rem 0}
code,pre{font:13px ui-monospace,monospace;background:#f5f5f7;border-radius:4px}
code{padding:0 .25rem}pre{padding:.6rem;overflow-x:auto}
.method{font-weight:700;padding:.1rem .45rem;border-radius:4px;color:#fff;background:#0a66c2}
.post{background:#1a7f37}.put{background:#9a6700}.deprecated{color:#b3261e;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
td,th{text-align:left;border-bottom:1px solid #eee;padding:.2rem .4rem;vertical-align:top}
ul.fields{margin:.2rem 0 .2rem 1rem;padding-left:1rem}.muted{color:#6e6e73}
"""


def render(openapi: Mapping[str, Any]) -> str:
    """The page: each tag's operations with parameters, selectable fields and an example."""
    info = openapi.get("info", {})
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        '<meta name=viewport content="width=device-width,initial-scale=1">',
        f"<title>{_e(info.get('title', 'API'))} API</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(info.get('title', 'API'))}</h1>",
        (
            f"<p class=muted>Version {_e(info.get('version', ''))} - "
            '<a href="/openapi.json">openapi.json</a> - <a href="/v1/catalog">catalog</a></p>'
        ),
        f"<p>{_e(info.get('description', ''))}</p>",
    ]
    schemas = openapi.get("components", {}).get("schemas", {})
    for tag in openapi.get("tags", []):
        parts.append(f'<h2 id="{_e(tag["name"])}">{_e(tag["name"])}</h2>')
        parts.append(f"<p class=muted>{_e(tag.get('description', ''))}</p>")
        for path, method, operation in _operations(openapi, tag["name"]):
            parts.extend(_operation(path, method, operation, schemas))
    parts.append("</body></html>")
    return "".join(parts)


def _operations(openapi: Mapping[str, Any], tag: str) -> Iterator[tuple[str, str, Any]]:
    for path, operations in openapi.get("paths", {}).items():
        for method, operation in operations.items():
            if tag in operation.get("tags", ()):
                yield path, method, operation


def _operation(
    path: str, method: str, operation: Mapping[str, Any], schemas: Mapping[str, Any]
) -> Iterator[str]:
    anchor = _e(operation.get("operationId", f"{method} {path}"))
    yield f'<section id="{anchor}">'
    yield (
        f"<p><span class='method {_e(method)}'>{_e(method.upper())}</span> "
        f"<code>{_e(path)}</code> {_e(operation.get('summary', ''))}</p>"
    )
    if operation.get("deprecated"):
        yield "<p class=deprecated>Deprecated: see the Deprecation, Sunset and Link headers.</p>"
    facts = {
        "team": operation.get("x-team"),
        "auth": operation.get("x-auth"),
        "deadline": operation.get("x-deadline-ms") and f"{operation['x-deadline-ms']} ms",
    }
    known = [f"{name}: {_e(str(value))}" for name, value in facts.items() if value]
    if known:
        yield f"<p class=muted>{' - '.join(known)}</p>"
    if operation.get("description"):
        yield f"<p>{_e(operation['description'])}</p>"
    yield from _parameters(operation)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
    if "properties" in body.get("schema", {}):
        yield "<p><b>Body</b></p>"
        yield from _tree(body["schema"], schemas)
    fields = _success_schema(operation, schemas)
    if fields is not None:
        yield "<p><b>Fields</b> <span class=muted>(selectable with <code>fields</code>)</span></p>"
        yield from _tree(fields, schemas)
    example = operation.get("x-example-request")
    if example is not None:
        yield "<p><b>Example</b></p>"
        yield f"<pre>{_e(json.dumps(example, indent=2))}</pre>"
    yield "</section>"


def _parameters(operation: Mapping[str, Any]) -> Iterator[str]:
    rows = [p for p in operation.get("parameters", ()) if "$ref" not in p]
    if not rows:
        return
    yield "<table><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr>"
    for param in rows:
        schema = param.get("schema", {})
        bounds = ", ".join(
            f"{key} {_e(str(schema[key]))}"
            for key in ("default", "minimum", "maximum", "maxLength")
            if key in schema
        )
        required = " <b>required</b>" if param.get("required") else ""
        yield (
            f"<tr><td><code>{_e(param['name'])}</code>{required}</td><td>{_e(param['in'])}</td>"
            f"<td>{_e(str(schema.get('type', '')))} <span class=muted>{bounds}</span></td>"
            f"<td>{_e(param.get('description', ''))}</td></tr>"
        )
    yield "</table>"


def _success_schema(operation: Mapping[str, Any], schemas: Mapping[str, Any]) -> Any:
    for status, response in operation.get("responses", {}).items():
        if status.startswith("2"):
            content = response.get("content", {}).get("application/json", {})
            return _resolve(content.get("schema"), schemas)
    return None


def _resolve(schema: Any, schemas: Mapping[str, Any]) -> Any:
    if isinstance(schema, Mapping) and "$ref" in schema:
        return schemas.get(str(schema["$ref"]).rsplit("/", 1)[-1])
    return schema


def _tree(schema: Any, schemas: Mapping[str, Any]) -> Iterator[str]:
    schema = _resolve(schema, schemas)
    properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    if not properties:
        return
    yield "<ul class=fields>"
    for name, prop in properties.items():
        resolved = _resolve(prop, schemas)
        inner = resolved.get("items", resolved) if resolved.get("type") == "array" else resolved
        kind = _type_name(resolved)
        yield (
            f"<li><code>{_e(name)}</code> <span class=muted>{_e(kind)}</span> "
            f"{_e(resolved.get('description', ''))}"
        )
        yield from _tree(inner, schemas)
        yield "</li>"
    yield "</ul>"


def _type_name(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type", "object")
    if kind == "array":
        return f"list of {_type_name(schema.get('items', {}))}"
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    return str(kind)


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)
