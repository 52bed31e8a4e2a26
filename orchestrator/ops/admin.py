"""The admin surface, free of WSGI: what operators see and do during an incident.

Routes (all need an admin credential: 401 without or with an invalid one, 403 for a valid
member token):

- ``GET /_admin/backends``: per backend, the breaker's state, override and when it last
  changed; in-flight, queued, ``max_concurrent``, ``max_queue``; and the last 10 s
  (``actors.stats.WindowStats``): calls, successes, failures, timeouts, rejections,
  short-circuits, fallbacks, latency p50/p99/max.
- ``GET /_admin/endpoints``: per endpoint, its owning team, in-flight plans and the same
  10 s window (2xx success, 4xx client_error, 504 timeout, other 5xx failure; a degraded
  2xx also counts a fallback).
- ``POST /_admin/backends/{name}/breaker`` with ``{"force": "open"|"closed"|"clear",
  "reason": "..."}``: force a breaker, or clear the override. Audit-logged on
  ``frontdoor.audit`` (who, from where, request id, what, before and after); the line's
  ``time`` says when.

The app routes any path under ``/_admin`` here before admission control (operators must
get in while the process sheds), gives ``AdminRequest`` a body reader that enforces its
own size and JSON rules, and renders ``AdminResponse`` or the ``problems.Problem`` raised.

The actor system provides the data through two small protocols, ``BackendView`` and
``BackendViews``; of actors, only their vocabulary (``actors.outcomes``) and
``WindowStats`` are imported here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from actors.outcomes import BreakerForce, BreakerState, Outcome
from actors.stats import WindowStats
from orchestrator.frontend import problems
from orchestrator.frontend.auth import NotAdminError, TokenSigner, admin_principal, bearer_token
from orchestrator.ops.access_log import AUDIT_LOGGER, FIELDS_ATTR
from orchestrator.ops.metrics import BackendGauges, EndpointLike, GaugeSnapshot

__all__ = [
    "ADMIN_PREFIX",
    "BREAKER_STATES",
    "FORCE_ACTIONS",
    "AdminHandler",
    "AdminRequest",
    "AdminResponse",
    "BackendView",
    "BackendViews",
    "BreakerAction",
    "EndpointInfo",
    "EndpointWindows",
    "endpoint_outcome",
    "gauge_snapshot",
    "parse_breaker_action",
]

ADMIN_PREFIX: Final = "/_admin"
#: What ``BackendView.breaker_state`` may say (the ``circuitbreaker`` package's words).
BREAKER_STATES: Final = tuple(BreakerState)
#: What an operator may ask: force open, force closed, or clear the override.
FORCE_ACTIONS: Final = tuple(BreakerForce)

_BACKEND_BREAKER: Final = re.compile(r"/_admin/backends/([a-z0-9_]{1,64})/breaker")
_MAX_REASON_CHARS: Final = 200
_GATEWAY_TIMEOUT: Final = 504
_SERVER_ERROR: Final = 500
_CLIENT_ERROR: Final = 400


# ---------------------------------------------------------------------------------------
# What the actor system provides.


class BackendView(Protocol):
    """One backend as operators see it; implemented in ``actors/`` over ``BackendState``."""

    @property
    def name(self) -> str:
        """The configured backend name."""
        ...

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half_open``: the state callers see (override applied)."""
        ...

    @property
    def breaker_override(self) -> str | None:
        """``open`` or ``closed`` while an operator forces it, else None."""
        ...

    @property
    def breaker_changed_at(self) -> float | None:
        """When the state last changed, on the system's clock (``time.monotonic``); None if
        it never changed."""
        ...

    @property
    def inflight(self) -> int:
        """Calls running now."""
        ...

    @property
    def queued(self) -> int:
        """Calls waiting for a bulkhead slot."""
        ...

    @property
    def max_concurrent(self) -> int:
        """Bulkhead size."""
        ...

    @property
    def max_queue(self) -> int:
        """Bulkhead queue size."""
        ...

    def window(self) -> Mapping[str, Any]:
        """The backend's ``WindowStats.snapshot()``."""
        ...

    def force_breaker(self, force: str) -> None:
        """Apply ``open``, ``closed`` or ``clear`` (back to automatic) now."""
        ...


class BackendViews(Protocol):
    """Every backend's view (the actor system)."""

    def backend_views(self) -> Sequence[BackendView]:
        """One view per backend, any order."""
        ...


def gauge_snapshot(
    views: Iterable[BackendView], frontend_inflight: int, shed_total: int
) -> GaugeSnapshot:
    """The metrics gauges from the same views: ``breaker_open`` is 1 unless closed."""
    return GaugeSnapshot(
        backends={
            view.name: BackendGauges(
                inflight=view.inflight,
                queued=view.queued,
                breaker_open=view.breaker_state != BreakerState.CLOSED,
            )
            for view in views
        },
        frontend_inflight=frontend_inflight,
        shed_total=shed_total,
    )


# ---------------------------------------------------------------------------------------
# Endpoint windows (kept by the app).


class EndpointInfo(EndpointLike, Protocol):
    """What the admin view shows of an endpoint declaration: the naming fields plus the route."""

    @property
    def method(self) -> str:
        """HTTP method."""
        ...

    @property
    def path(self) -> str:
        """Path template."""
        ...


def endpoint_outcome(status: int) -> Outcome:
    """A response status as a window outcome: 504 ``timeout``, 5xx ``failure``, 4xx
    ``client_error`` (the device's doing: nobody's failure), else ``success``."""
    if status == _GATEWAY_TIMEOUT:
        return Outcome.TIMEOUT
    if status >= _SERVER_ERROR:
        return Outcome.FAILURE
    if status >= _CLIENT_ERROR:
        return Outcome.CLIENT_ERROR
    return Outcome.SUCCESS


# Looked up once, for ``EndpointWindows.record`` (every request): on Python 3.11 naming an
# enum member (``Outcome.SUCCESS``) costs a class look-up of ~70 ns, a dict look-up ~20.
_STATUS_OUTCOMES: Final = {status: endpoint_outcome(status) for status in range(100, 600)}
_FALLBACK: Final = Outcome.FALLBACK


class _EndpointSlot:
    __slots__ = ("inflight", "info", "stats")

    def __init__(self, info: EndpointInfo, stats: WindowStats) -> None:
        self.info = info
        self.stats = stats
        self.inflight = 0


class EndpointWindows:
    """Per-endpoint 10 s windows and in-flight counts, keyed ``"{api}.{name}"``.

    Unknown keys are ignored (this runs on every request and must never raise).
    """

    def __init__(
        self,
        endpoints: Iterable[EndpointInfo],
        *,
        window_s: float = 10.0,
        buckets: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = {
            f"{e.api}.{e.name}": _EndpointSlot(e, WindowStats(window_s, buckets, clock))
            for e in endpoints
        }

    @contextlib.contextmanager
    def running(self, key: str) -> Iterator[None]:
        """Count one plan in flight for the endpoint while the block runs."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.inflight += 1
        try:
            yield
        finally:
            if slot is not None:
                slot.inflight -= 1

    def record(self, key: str, status: int, latency_ms: float, *, degraded: bool = False) -> None:
        """One finished request of the endpoint."""
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.stats.record(_STATUS_OUTCOMES.get(status) or endpoint_outcome(status), latency_ms)
        if degraded and status < _CLIENT_ERROR:
            slot.stats.record(_FALLBACK)

    def views(self) -> list[dict[str, Any]]:
        """Every endpoint's admin view, sorted by key."""
        return [
            {
                "name": key,
                "api": slot.info.api,
                "endpoint": slot.info.name,
                "team": slot.info.team,
                "method": slot.info.method,
                "path": slot.info.path,
                "inflight": slot.inflight,
                "window": slot.stats.snapshot(),
            }
            for key, slot in sorted(self._slots.items())
        ]


# ---------------------------------------------------------------------------------------
# Requests and actions.


@dataclass(frozen=True, slots=True)
class AdminRequest:
    """One admin request, as the app hands it over."""

    method: str
    path: str
    #: The raw ``Authorization`` header, or None.
    authorization: str | None
    request_id: str
    client: str | None
    #: Reads and parses the JSON body (raising ``problems.Problem``); called only for POST
    #: after authentication, so an anonymous caller cannot make us read a body.
    read_body: Callable[[], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class AdminResponse:
    """What to send back: a status and a JSON body."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BreakerAction:
    """A validated breaker action."""

    force: str
    reason: str


def parse_breaker_action(body: Mapping[str, Any]) -> BreakerAction:
    """``{"force": "open"|"closed"|"clear", "reason"?: str}``; anything else is a 400."""
    unknown = sorted(set(body) - {"force", "reason"})
    if unknown:
        raise problems.bad_request(f"Unknown field '{unknown[0][:40]}'.")
    force = body.get("force")
    if not isinstance(force, str) or force not in FORCE_ACTIONS:
        raise problems.invalid_parameter("force", "must be one of open, closed, clear")
    reason = body.get("reason", "")
    if not isinstance(reason, str) or len(reason) > _MAX_REASON_CHARS:
        raise problems.invalid_parameter(
            "reason", f"must be a string of at most {_MAX_REASON_CHARS} characters"
        )
    return BreakerAction(force, reason)


class AdminHandler:
    """Authenticates, routes and answers admin requests; audit-logs every action."""

    def __init__(
        self,
        backends: BackendViews,
        endpoints: EndpointWindows,
        *,
        admin_token: str,
        signer: TokenSigner | None = None,
        audit: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._backends = backends
        self._endpoints = endpoints
        self._admin_token = admin_token
        self._signer = signer
        self._audit = logging.getLogger(AUDIT_LOGGER) if audit is None else audit
        self._clock = clock
        self._wall_clock = wall_clock

    @property
    def backends(self) -> BackendViews:
        """Where the backends' views come from (the live dashboard reads them too)."""
        return self._backends

    @staticmethod
    def handles(path: str) -> bool:
        """Whether ``path`` belongs to the admin surface."""
        return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")

    def handle(self, request: AdminRequest) -> AdminResponse:
        """Answer one request; raises ``problems.Problem`` for every error."""
        who = self.authenticate(request)
        path, method = request.path, request.method
        if path == f"{ADMIN_PREFIX}/backends":
            _allow(method, "GET")
            return AdminResponse(200, self.backends_json())
        if path == f"{ADMIN_PREFIX}/endpoints":
            _allow(method, "GET")
            return AdminResponse(200, self.endpoints_json())
        match = _BACKEND_BREAKER.fullmatch(path)
        view = None if match is None else self._view(match.group(1))
        if view is None:
            raise problems.not_found(path)
        _allow(method, "POST")
        action = parse_breaker_action(request.read_body())
        return AdminResponse(200, self._force(view, action, who, request))

    def authenticate(self, request: AdminRequest) -> str:
        """Who is asking: ``admin_token`` or ``token:<sub>``; 401/403 otherwise (audited)."""
        token = bearer_token(request.authorization)
        if token is None:
            self._denied(request, "no bearer token")
            raise problems.unauthorized()
        try:
            return admin_principal(token, self._admin_token, self._signer)
        except NotAdminError as denied:
            self._denied(request, denied.why)
            if denied.member:
                raise problems.forbidden() from None
            raise problems.unauthorized(invalid_token=True) from None

    def backends_json(self) -> dict[str, Any]:
        """The body of ``GET /_admin/backends``."""
        views = sorted(self._backends.backend_views(), key=lambda view: view.name)
        return {
            "generated_at": _iso(self._wall_clock()),
            "backends": [self._backend_json(view) for view in views],
        }

    def endpoints_json(self) -> dict[str, Any]:
        """The body of ``GET /_admin/endpoints``."""
        return {"generated_at": _iso(self._wall_clock()), "endpoints": self._endpoints.views()}

    # -- internals ----------------------------------------------------------------------

    def _view(self, name: str) -> BackendView | None:
        for view in self._backends.backend_views():
            if view.name == name:
                return view
        return None

    def _breaker_json(self, view: BackendView) -> dict[str, Any]:
        changed = view.breaker_changed_at
        since = None if changed is None else max(0.0, self._clock() - changed)
        return {
            "state": view.breaker_state,
            "override": view.breaker_override,
            "changed_at": None if since is None else _iso(self._wall_clock() - since),
            "seconds_since_change": None if since is None else round(since, 3),
        }

    def _backend_json(self, view: BackendView) -> dict[str, Any]:
        return {
            "name": view.name,
            "breaker": self._breaker_json(view),
            "inflight": view.inflight,
            "queued": view.queued,
            "max_concurrent": view.max_concurrent,
            "max_queue": view.max_queue,
            "window": dict(view.window()),
        }

    def _force(
        self, view: BackendView, action: BreakerAction, who: str, request: AdminRequest
    ) -> dict[str, Any]:
        before = self._breaker_json(view)
        view.force_breaker(action.force)
        after = self._breaker_json(view)
        self._audit.warning(
            "admin action",
            extra={
                FIELDS_ATTR: {
                    "event": "admin_action",
                    "action": "breaker.force",
                    "backend": view.name,
                    "force": action.force,
                    "reason": action.reason,
                    "who": who,
                    "client": request.client,
                    "request_id": request.request_id,
                    "before": {"state": before["state"], "override": before["override"]},
                    "after": {"state": after["state"], "override": after["override"]},
                }
            },
        )
        return {"backend": view.name, "force": action.force, "before": before, "breaker": after}

    def _denied(self, request: AdminRequest, why: str) -> None:
        self._audit.info(
            "admin access denied",
            extra={
                FIELDS_ATTR: {
                    "event": "admin_denied",
                    "why": why,
                    "method": request.method[:16],
                    "path": request.path[:256],
                    "client": request.client,
                    "request_id": request.request_id,
                }
            },
        )


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise problems.method_not_allowed([allowed])


def _iso(epoch_s: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
