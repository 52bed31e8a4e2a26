"""The admin surface, free of WSGI: what operators see and do during an incident.

Routes (all need an admin credential: 401 without or with an invalid one, 403 for a valid
member token):

- ``GET /_admin/backends``: per backend, the breaker's state, override and when it last
  changed; in-flight, queued, ``max_concurrent``, ``max_queue``, ``limit`` (the adaptive
  concurrency limit now, null unless ``limit.adaptive``); ``adaptive`` (hedges sent and
  won, calls collapsed in and sent out, since each worker started; null unless the backend
  hedges or collapses, a field null for the mechanism it leaves off); and the last 10 s
  (``actors.stats.WindowStats``): calls, successes, failures, timeouts, rejections,
  short-circuits, fallbacks, latency p50/p99/max.
- ``GET /_admin/endpoints``: per endpoint, its owning team, in-flight plans and the same
  10 s window (2xx success, 4xx client_error, 504 timeout, other 5xx failure; a degraded
  2xx also counts a fallback).
- ``POST /_admin/backends/{name}/breaker`` with ``{"force": "open"|"closed"|"clear",
  "reason": "..."}``: force a breaker, or clear the override, in every worker. Audit-logged
  on ``frontdoor.audit`` (who, from where, request id, what, before and after, which
  workers applied it); the line's ``time`` says when.

Every answer speaks for the whole instance (``orchestrator/ops/instance.py``): under
gunicorn, every worker process's numbers added up, each backend's breaker as bad as its
worst worker's, and each worker's own part under ``workers``; and it names the workers it
covers (``instance.served_by``, ``instance.workers``, ``instance.missing`` for those that
did not answer in time). With one process, that is one worker.

The app routes any path under ``/_admin`` here before admission control (operators must
get in while the process sheds), gives ``AdminRequest`` a body reader that enforces its
own size and JSON rules, and renders ``AdminResponse`` or the ``problems.Problem`` raised.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from actors.outcomes import BreakerForce, BreakerState
from orchestrator.frontend import problems
from orchestrator.frontend.auth import NotAdminError, TokenSigner, admin_principal, bearer_token
from orchestrator.ops.access_log import AUDIT_LOGGER, FIELDS_ATTR
from orchestrator.ops.instance import (
    BreakerPart,
    ForceResult,
    Instance,
    MergedBackend,
    MergedEndpoint,
    adaptive_json,
)
from orchestrator.ops.views import (
    BackendView,
    BackendViews,
    EndpointInfo,
    EndpointWindows,
    endpoint_outcome,
    gauge_snapshot,
)

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
        instance: Instance,
        *,
        admin_token: str,
        signer: TokenSigner | None = None,
        audit: logging.Logger | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._instance = instance
        self._admin_token = admin_token
        self._signer = signer
        self._audit = logging.getLogger(AUDIT_LOGGER) if audit is None else audit
        self._clock = clock

    @property
    def instance(self) -> Instance:
        """The workers answered for (the live dashboard reads them too)."""
        return self._instance

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
        name = None if match is None else match.group(1)
        if name is None or name not in self._instance.local.backend_names():
            raise problems.not_found(path)
        _allow(method, "POST")
        action = parse_breaker_action(request.read_body())
        return AdminResponse(200, self._force(name, action, who, request))

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
        report = self._instance.report()
        return {
            "generated_at": _iso(self._clock()),
            "instance": report.workers_json(),
            "backends": [self._backend_json(merged) for merged in report.backends()],
        }

    def endpoints_json(self) -> dict[str, Any]:
        """The body of ``GET /_admin/endpoints``."""
        report = self._instance.report()
        return {
            "generated_at": _iso(self._clock()),
            "instance": report.workers_json(),
            "endpoints": [_endpoint_json(merged) for merged in report.endpoints()],
        }

    # -- internals ----------------------------------------------------------------------

    def _breaker_json(self, part: BreakerPart) -> dict[str, Any]:
        changed = part.changed_at
        since = None if changed is None else max(0.0, self._clock() - changed)
        return {
            "state": part.state,
            "override": part.override,
            "changed_at": None if changed is None else _iso(changed),
            "seconds_since_change": None if since is None else round(since, 3),
        }

    def _backend_json(self, merged: MergedBackend) -> dict[str, Any]:
        return {
            "name": merged.name,
            "breaker": {**self._breaker_json(merged.breaker), "workers": dict(merged.states)},
            "inflight": merged.inflight,
            "queued": merged.queued,
            "max_concurrent": merged.max_concurrent,
            "max_queue": merged.max_queue,
            "limit": merged.limit,
            "adaptive": adaptive_json(merged.adaptive),
            "window": merged.window.snapshot(),
            "workers": [
                {
                    "pid": pid,
                    "breaker": self._breaker_json(part.breaker),
                    "inflight": part.inflight,
                    "queued": part.queued,
                    "max_concurrent": part.max_concurrent,
                    "limit": part.limit,
                    "adaptive": adaptive_json(part.adaptive),
                    "window": part.window.snapshot(),
                }
                for pid, part in merged.workers
            ],
        }

    def _force(
        self, backend: str, action: BreakerAction, who: str, request: AdminRequest
    ) -> dict[str, Any]:
        result = self._instance.force(backend, action.force)
        if result is None:  # pragma: no cover - the name was checked by ``handle``
            raise problems.not_found(request.path)
        before, after = result.before.breaker, result.after.breaker
        self._audit.warning(
            "admin action",
            extra={
                FIELDS_ATTR: {
                    "event": "admin_action",
                    "action": "breaker.force",
                    "backend": backend,
                    "force": action.force,
                    "reason": action.reason,
                    "who": who,
                    "client": request.client,
                    "request_id": request.request_id,
                    "before": {"state": before.state, "override": before.override},
                    "after": {"state": after.state, "override": after.override},
                    "workers": [pid for pid, part in result.applied if part is not None],
                    "missing": result.missing,
                }
            },
        )
        return self._force_json(backend, action, result)

    def _force_json(
        self, backend: str, action: BreakerAction, result: ForceResult
    ) -> dict[str, Any]:
        shared = self._instance.shared
        return {
            "backend": backend,
            "force": action.force,
            "before": self._breaker_json(result.before.breaker),
            "breaker": self._breaker_json(result.after.breaker),
            "applied_to": [
                {
                    "pid": pid,
                    "applied": part is not None,
                    "breaker": None if part is None else self._breaker_json(part),
                }
                for pid, part in result.applied
            ],
            "missing": result.missing,
            "scope": (
                "every worker of this instance, and workers started later"
                if shared
                else "this process (the whole instance)"
            ),
        }

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


def _endpoint_json(merged: MergedEndpoint) -> dict[str, Any]:
    return {
        "name": merged.name,
        "api": merged.api,
        "endpoint": merged.endpoint,
        "team": merged.team,
        "method": merged.method,
        "path": merged.path,
        "inflight": merged.inflight,
        "window": merged.window.snapshot(),
        "workers": [
            {"pid": pid, "inflight": part.inflight, "window": part.window.snapshot()}
            for pid, part in merged.workers
        ],
    }


def _allow(method: str, allowed: str) -> None:
    if method != allowed:
        raise problems.method_not_allowed([allowed])


def _iso(epoch_s: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch_s, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
