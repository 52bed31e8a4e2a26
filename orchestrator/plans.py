"""Endpoint declarations: one place that says everything about a device-facing endpoint.

An ``Endpoint`` is data plus small functions: path and version, owning team, auth class,
parameters with types and limits, a deadline, and the ``Plan`` of backend steps with its
compose function, and the ``Field`` tree of its response. The same declaration feeds the
router, parameter validation, the ``fields`` parser and plan pruning, the catalog, the
OpenAPI document and metric names. Team modules (``orchestrator/apis/``) only declare;
they never touch actors, greenlets or sockets.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from actors.plan import DeviceError, Fallback, Plan, Refused, RequestBuilder, Step, StepContext
from backends.transport import BackendRequest, get, post, put
from orchestrator.frontend.problems import CODES
from orchestrator.schema import (
    Field,
    body,
    boolean,
    integer,
    number,
    obj,
    objects,
    text,
    texts,
)

#: The public API of team code: everything an endpoint declaration needs (its plan, steps,
#: fallbacks, device errors, backend requests and response schema). Team modules
#: (orchestrator/apis/) import from here and from helpers of their own; ruff's banned-api
#: rule (ruff.toml) refuses their imports of actors or backends.
__all__ = [
    "ApiPackage",
    "Auth",
    "BackendRequest",
    "DeviceError",
    "Endpoint",
    "EndpointRegistry",
    "Fallback",
    "Field",
    "Param",
    "Plan",
    "Refused",
    "RequestBuilder",
    "RouteMatch",
    "Source",
    "Step",
    "StepContext",
    "body",
    "boolean",
    "get",
    "integer",
    "number",
    "obj",
    "objects",
    "post",
    "put",
    "text",
    "texts",
]

_SEGMENT = re.compile(r"\{([a-z_]+)\}")


class Auth(enum.Enum):
    """Who may call an endpoint. Every route declares one; there is no default."""

    PUBLIC = "public"
    MEMBER = "member"
    ADMIN = "admin"


class Source(enum.Enum):
    """Where a parameter comes from."""

    QUERY = "query"
    PATH = "path"
    BODY = "body"


@dataclass(frozen=True, slots=True)
class Param:
    """A device parameter with its type and bounds; out-of-bounds is a 400, never clamped."""

    name: str
    kind: type = str
    source: Source = Source.QUERY
    required: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    description: str = ""
    #: A value shown in the catalog's example request (required parameters need one).
    example: Any = None

    def __post_init__(self) -> None:
        if self.required and self.example is None:
            raise TypeError(f"param {self.name}: a required parameter needs an example")
        if self.kind not in (str, int, bool):
            raise TypeError(f"param {self.name}: kind must be str, int or bool")
        if self.kind is str and self.max_length is None:
            raise TypeError(f"param {self.name}: a string parameter needs max_length")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One device-facing endpoint and its plan."""

    name: str
    api: str
    team: str
    method: str
    path: str
    auth: Auth
    plan: Plan
    deadline_ms: int
    summary: str
    #: The response body's fields: what ``fields`` may select and what the docs describe.
    fields: Field
    params: tuple[Param, ...] = ()
    version: int = 1
    success_status: int = 200
    #: A ``fields`` value the catalog shows as an example of a partial response.
    example_fields: str | None = None
    #: The successor's path, when this version is deprecated (announced in headers).
    successor: str | None = None
    #: When this version was deprecated (RFC 9745) and when it will stop answering (RFC 8594).
    deprecated: datetime | None = None
    sunset: datetime | None = None
    #: The app attaches a signed member token for ``body["member_id"]`` (sign-up).
    grants_member_token: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._check_deprecation()
        if not self.path.startswith(f"/v{self.version}/"):
            raise ValueError(f"{self.path}: path must start with /v{self.version}/")
        path_names = set(_SEGMENT.findall(self.path))
        declared = {p.name for p in self.params if p.source is Source.PATH}
        if path_names != declared:
            raise ValueError(f"{self.path}: path parameters {path_names} != declared {declared}")
        parts = _SEGMENT.split(self.path)  # literal, name, literal, name, ...
        regex = "".join(
            f"(?P<{part}>[^/]+)" if odd else re.escape(part)
            for odd, part in zip(itertools.cycle((False, True)), parts, strict=False)
        )
        object.__setattr__(self, "_pattern", re.compile(f"^{regex}$"))

    def _check_deprecation(self) -> None:
        if (self.successor is not None or self.sunset is not None) and self.deprecated is None:
            raise ValueError(f"{self.path}: a successor or sunset needs a deprecation date")
        for moment in (self.deprecated, self.sunset):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError(f"{self.path}: deprecation dates must carry a time zone")
        if self.deprecated and self.sunset and self.sunset <= self.deprecated:
            raise ValueError(f"{self.path}: the sunset must come after the deprecation")

    @property
    def metric_name(self) -> str:
        """``{api}.{endpoint}``: a fixed vocabulary, never built from request data."""
        return f"{self.api}.{self.name}"

    def match(self, path: str) -> dict[str, str] | None:
        """Path parameters if ``path`` is this endpoint's, else None."""
        found = self._pattern.match(path)
        return None if found is None else found.groupdict()


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The result of routing: the endpoint, or what went wrong."""

    endpoint: Endpoint | None
    path_params: Mapping[str, str]
    allowed: tuple[str, ...] = ()


_CLIENT_ERROR_MIN, _CLIENT_ERROR_END = 400, 500


def _check_device_errors(endpoint: Endpoint) -> None:
    """A step's ``device_errors`` must answer with device (4xx) codes about real parameters."""
    names = {param.name for param in endpoint.params}
    for step in endpoint.plan.steps:
        for status, error in step.device_errors.items():
            where = f"{endpoint.name}: step {step.name}: backend status {status}"
            problem = CODES.get(error.code)
            if problem is None or not _CLIENT_ERROR_MIN <= problem.status < _CLIENT_ERROR_END:
                raise ValueError(f"{where} maps to {error.code!r}, not a 4xx problem code")
            if error.parameter and error.parameter not in names:
                raise ValueError(f"{where} names unknown parameter {error.parameter!r}")


@dataclass(frozen=True, slots=True)
class ApiPackage:
    """One team's API, as a process serves it: a module names it ``PACKAGE`` and the
    operator lists the module in ``server.apis`` (or ``server.passthrough``).

    ``endpoints`` builds the declarations afresh on each call (nothing mutable is shared).
    ``shared_steps`` names the steps of its plans that call shared services (a member's
    subscription, the device): an edge that passes this package through runs those steps
    itself and hands their results on, and a layer serving it accepts them
    (orchestrator/frontend/enrichment.py, docs/topologies.md).
    """

    name: str
    team: str
    endpoints: Callable[[], tuple[Endpoint, ...]]
    summary: str = ""
    shared_steps: frozenset[str] = frozenset()

    def declare(self) -> tuple[Endpoint, ...]:
        """The endpoints, checked to belong here: ``ValueError`` names the first that does not."""
        endpoints = self.endpoints()
        for endpoint in endpoints:
            if (endpoint.api, endpoint.team) != (self.name, self.team):
                raise ValueError(
                    f"{endpoint.name} declares api {endpoint.api!r} and team {endpoint.team!r}; "
                    f"its package is {self.name!r} of team {self.team!r}"
                )
        return endpoints


class EndpointRegistry:
    """The endpoints one process serves. Built once at start-up; read-only afterwards."""

    def __init__(self, endpoints: Iterable[Endpoint]) -> None:
        self.endpoints: tuple[Endpoint, ...] = tuple(endpoints)
        seen: set[tuple[str, str]] = set()
        for endpoint in self.endpoints:
            key = (endpoint.method, endpoint.path)
            if key in seen:
                raise ValueError(f"duplicate route {endpoint.method} {endpoint.path}")
            seen.add(key)
            _check_device_errors(endpoint)
        # Exact paths resolve with one dict look-up; templated ones are few.
        self._static: dict[str, list[Endpoint]] = {}
        self._templated: list[Endpoint] = []
        for endpoint in self.endpoints:
            if "{" in endpoint.path:
                self._templated.append(endpoint)
            else:
                self._static.setdefault(endpoint.path, []).append(endpoint)

    def backends(self) -> frozenset[str]:
        """Every backend any endpoint may call."""
        return frozenset().union(*(e.plan.backends for e in self.endpoints))

    def route(self, method: str, path: str) -> RouteMatch:
        """Find the endpoint for ``method path``; ``allowed`` lists methods on a 405."""
        candidates: list[tuple[Endpoint, dict[str, str]]] = [
            (e, {}) for e in self._static.get(path, ())
        ]
        if not candidates:
            for endpoint in self._templated:
                params = endpoint.match(path)
                if params is not None:
                    candidates.append((endpoint, params))
        for endpoint, params in candidates:
            if endpoint.method == method:
                return RouteMatch(endpoint, params)
        allowed = tuple(sorted({endpoint.method for endpoint, _ in candidates}))
        return RouteMatch(None, {}, allowed)
