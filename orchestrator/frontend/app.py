"""The WSGI application: a request goes down a pipeline of stages, one response comes out.

The order of work for a request, in one place (each stage is a module of its own):
  arrive (``request``) -> the app's own endpoints, answered even while shedding: documents
  (``documents``), health (``health``), admin routes (``admin_route``, with the live
  dashboard's page and stream, ``dashboard_route``) -> the batch endpoint (``batching``:
  its scope and body, then its calls go down the same stages from routing on), or one call:
  routing (``routing``) -> scope (``scope``: deadline, shared calls, a
  trusted edge's enrichment, ``edge_enrichment``) -> authentication (``authentication``)
  -> rate limit (``ratelimit``: 429 per member, else per address; a batch costs its calls)
  -> body (``body``: read in full, within ``server.body_timeout_s``) -> admission
  (``admission``: shed with 503 before any backend work, fairly between clients) -> plan
  (``plan_stage``: parameters, ``fields``, the run, its result shaped by ``results``) ->
  response (``respond``, observed once by ``observe``).
Admission comes after the body so that a slow body holds no slot (a request trickling its
body costs a greenlet and its socket until the body timeout, never the capacity of
others); everything before it is microseconds of work and reads nothing but the request.
Every failure becomes an ``application/problem+json`` response (or, in a batch, that call's
problem) with a stable code and the request id; no exception, stack trace or backend body
reaches a device.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from actors.supervisor import BackendDirectory
from orchestrator.frontend import health, problems
from orchestrator.frontend.admin_route import AdminRoute
from orchestrator.frontend.admission import Admission
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.authentication import Authenticator
from orchestrator.frontend.batching import BatchEndpoint
from orchestrator.frontend.body import WITH_BODY, BodyReader
from orchestrator.frontend.catalog import Limits
from orchestrator.frontend.dashboard_route import DashboardRoute
from orchestrator.frontend.deprecation import Deprecations
from orchestrator.frontend.documents import Documents
from orchestrator.frontend.edge_enrichment import EdgeEnrichment
from orchestrator.frontend.enrichment import Enricher
from orchestrator.frontend.health import Health, Running
from orchestrator.frontend.httpserver import MAX_HEADER_BYTES, ProtocolLimits, Refusal
from orchestrator.frontend.observe import Observer
from orchestrator.frontend.plan_stage import FallbackRecorder, PlanStage
from orchestrator.frontend.protocol.batch import BATCH_PATH, MAX_CALLS
from orchestrator.frontend.ratelimit import Client, Policy, RateLimiter, scope_member
from orchestrator.frontend.request import Environ, Request, StartResponse, arrive
from orchestrator.frontend.respond import Responder
from orchestrator.frontend.results import Results
from orchestrator.frontend.routing import Router
from orchestrator.frontend.scope import Scopes
from orchestrator.ops.access_log import AccessLog
from orchestrator.ops.admin import AdminHandler, EndpointWindows
from orchestrator.ops.dashboard.snapshot import DashboardSnapshot, FrontendGauges
from orchestrator.ops.metrics import MetricNames, Metrics, NullSink
from orchestrator.plans import EndpointRegistry

__all__ = ["AppOptions", "Backends", "FrontdoorApp"]


class Backends(BackendDirectory, Running, FallbackRecorder, Protocol):
    """The actor system, as the app uses it: the door calls go through (``submit``),
    whether it runs, and where the steps that fell back are counted."""


@dataclass(frozen=True, slots=True)
class AppOptions:
    """Limits of the HTTP layer."""

    max_body_bytes: int = 65_536
    max_inflight: int = 32
    #: The operators' token; ``X-Frontdoor-Admin-Token`` with it (or with an admin-scoped
    #: signed token) unlocks ``meta.trace``.
    admin_token: str = ""
    #: Most calls in one batch, how many of them run at once, and the batch's own deadline
    #: (each call's is its endpoint's, cut to what is left of the batch's).
    batch_max_calls: int = MAX_CALLS
    batch_concurrency: int = 8
    batch_deadline_ms: int = 2000
    #: The longest an admin request's body may take to arrive.
    admin_body_timeout_s: float = 5.0
    #: The longest a device request's body may take to arrive (and never past its deadline).
    body_timeout_s: float = 1.0
    #: The request head's deadline and size and keep-alive's idle limit, which the HTTP
    #: server enforces (``httpserver.ProtocolLimits``, read from ``protocol_limits``).
    header_timeout_s: float = 10.0
    idle_timeout_s: float = 60.0
    max_header_bytes: int = MAX_HEADER_BYTES
    #: Per-client rate limits and fair admission (``[limits]``); off: neither.
    limits_enabled: bool = True
    member_rate: float = 20.0
    member_burst: int = 60
    address_rate: float = 250.0
    address_burst: int = 500
    #: Whether a device's ``X-Request-Id`` is also its backend calls' (``arrive``).
    trust_request_id: bool = False
    #: The live dashboard's stream: seconds between snapshots, and its longest life.
    dashboard_interval_s: float = 1.0
    dashboard_stream_s: float = 600.0


class FrontdoorApp:
    """The WSGI callable. Built once per process by ``Frontdoor.build``: it builds its
    stages, long-lived objects a request only calls."""

    def __init__(
        self,
        registry: EndpointRegistry,
        backends: Backends,
        signer: TokenSigner,
        options: AppOptions,
        clock: Callable[[], float] = time.monotonic,
        *,
        metrics: Metrics | None = None,
        access_log: AccessLog | None = None,
        windows: EndpointWindows | None = None,
        admin: AdminHandler | None = None,
        enricher: Enricher | None = None,
        shared_steps: frozenset[str] = frozenset(),
    ) -> None:
        """``enricher``: accept an edge's enrichment (the playback layer of the ``edge``
        topology), presetting the ``shared_steps`` it brings; without one the header is
        ignored and every step is called."""
        self.registry = registry
        self._trust_request_id = options.trust_request_id
        if metrics is None:  # tests that build the app alone: drop metrics
            names = MetricNames("frontdoor", registry.endpoints, sorted(registry.backends()))
            metrics = Metrics(names, NullSink())
        self.metrics = metrics
        if access_log is None:
            access_log = AccessLog(slow_request_ms=1000)
        if windows is None:
            windows = EndpointWindows(registry.endpoints, clock=clock)
        self.admission = Admission(options.max_inflight, fair=options.limits_enabled)
        self.limiter = (
            RateLimiter(
                Policy("member", options.member_rate, options.member_burst),
                Policy("address", options.address_rate, options.address_burst),
                clock,
            )
            if options.limits_enabled
            else None
        )
        self._signer = signer
        self._clock = clock
        observer = Observer(windows, access_log, clock, quiet=health.PATHS)
        self._observer = observer
        #: What the HTTP server serving this app enforces before it runs, and the hook that
        #: gives the requests it refuses their access line and metric (``refused``).
        self.protocol_limits = ProtocolLimits(
            header_timeout_s=options.header_timeout_s,
            idle_timeout_s=options.idle_timeout_s,
            max_header_bytes=options.max_header_bytes,
            on_refusal=self.refused,
        )
        respond = Responder(observer)
        body = BodyReader(options.max_body_bytes, clock, options.body_timeout_s)
        limits = Limits(options.batch_max_calls, options.batch_concurrency)
        enrichment = None if enricher is None else EdgeEnrichment(enricher, shared_steps)
        results = Results(signer, Deprecations(registry.endpoints))
        self._respond = respond
        self._documents = Documents(registry, limits, respond)
        self._health = Health(backends, respond)
        #: The live dashboard (``/_admin/dashboard`` and its stream), with the admin routes.
        if admin is not None:
            admin.instance.local.bind_frontend(self._frontend_gauges)
        self.dashboard = (
            None
            if admin is None
            else DashboardRoute(
                admin,
                DashboardSnapshot(admin.instance, metrics.names),
                respond,
                observer,
                clock,
                interval_s=options.dashboard_interval_s,
                lifetime_s=options.dashboard_stream_s,
            )
        )
        self._admin = AdminRoute(
            admin,
            BodyReader(options.max_body_bytes, clock),
            respond,
            clock,
            options.admin_body_timeout_s,
            self.dashboard,
        )
        self._router = Router(registry)
        self._scopes = Scopes(backends, options.admin_token, enrichment, signer=signer)
        self._authenticator = Authenticator(signer)
        self._body = body
        self._plans = PlanStage(backends, windows, results, clock)
        self._batch = BatchEndpoint(
            admission=self.admission,
            router=self._router,
            scopes=self._scopes,
            authenticator=self._authenticator,
            body=body,
            plans=self._plans,
            observer=observer,
            clock=clock,
            max_calls=options.batch_max_calls,
            concurrency=options.batch_concurrency,
            deadline_ms=options.batch_deadline_ms,
        )

    @property
    def draining(self) -> bool:
        """Set when the server starts draining: ``/readyz`` answers 503 from then on."""
        return self._health.draining

    @draining.setter
    def draining(self, draining: bool) -> None:
        self._health.draining = draining
        if draining and self.dashboard is not None:
            self.dashboard.close()  # a stream must not hold the drain

    def _frontend_gauges(self) -> FrontendGauges:
        return FrontendGauges(self.admission.inflight, self.admission.shed)

    def refused(self, refusal: Refusal) -> None:
        """A request the HTTP server refused before the pipeline ran (bad framing, an
        oversized or late head): its metric and access line."""
        self.metrics.refused(refusal.code)
        self._observer.refused(refusal)

    # -- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Handle one request, admin routes included; never raises."""
        return self._call(environ, start_response, admin=True)

    def device_only(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """The device port's WSGI callable when admin routes have a listener of their own
        (``server.admin_port``): ``/_admin/*`` answers 404 ``not_found`` here."""
        return self._call(environ, start_response, admin=False)

    def admin_only(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """The admin listener's WSGI callable: ``/_admin/*`` only, 404 for every other path."""
        request = arrive(
            environ, self._clock(), self.metrics.request(), trust_request_id=self._trust_request_id
        )
        answered = self._admin.serve(start_response, request)
        if answered is None:
            return self._respond.problem(start_response, request, problems.not_found(request.path))
        return answered

    # -- the pipeline ---------------------------------------------------------------------

    def _call(
        self, environ: Environ, start_response: StartResponse, *, admin: bool
    ) -> Iterable[bytes]:
        request = arrive(
            environ, self._clock(), self.metrics.request(), trust_request_id=self._trust_request_id
        )
        # The app's own endpoints: answered before admission, even while shedding.
        answered: Iterable[bytes] | None = self._documents.serve(start_response, request)
        if answered is None:
            answered = self._health.serve(start_response, request)
        if answered is None:
            answered = self._admin.serve(start_response, request, served=admin)
        if answered is not None:
            return answered
        return self._device(environ, start_response, request)

    def _device(
        self, environ: Environ, start_response: StartResponse, request: Request
    ) -> Iterable[bytes]:
        """A device request: received (routed, authenticated, rate limited, its body read),
        then admitted and run."""
        try:
            client, run = self._receive(environ, request)
        except problems.Problem as problem:
            return self._respond.problem(start_response, request, problem)
        except Exception as exc:  # noqa: BLE001 - a bug becomes a 500, logged by unhandled
            return self._respond.unhandled(start_response, request, exc)
        if not self.admission.try_enter(client):
            # Shed before any backend work: rejection must be far cheaper than work.
            shed = problems.overloaded(retry_after_s=1)
            return self._respond.problem(start_response, request, shed)
        try:
            status, body = run()
        except problems.Problem as problem:
            return self._respond.problem(start_response, request, problem)
        except Exception as exc:  # noqa: BLE001 - a bug becomes a 500, logged by unhandled
            return self._respond.unhandled(start_response, request, exc)
        finally:
            self.admission.leave(client)
        return self._respond.json(start_response, request, status, body)

    def _receive(
        self, environ: Environ, request: Request
    ) -> tuple[Client | None, Callable[[], tuple[int, Any]]]:
        """Everything before admission: whom the request is charged to (rate limited), and
        the work to run once admitted, its body already read."""
        if request.path == BATCH_PATH:
            scope, calls = self._batch.receive(environ, request)
            member = None if self.limiter is None else scope_member(scope, self._signer)
            client = self._charge(environ, member, len(calls))
            return client, lambda: self._batch.run(request, scope, calls, client)
        endpoint, path_params = self._router.route(request)
        scope = self._scopes.open(environ, request.started, endpoint.deadline_ms)
        request.member_id = self._authenticator.member(scope, endpoint)
        client = self._charge(environ, request.member_id, 1)
        body = self._body.read(environ, scope.deadline) if endpoint.method in WITH_BODY else None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return client, lambda: self._plans.serve(request, scope, endpoint, path_params, query, body)

    def _charge(self, environ: Environ, member: str | None, cost: int) -> Client | None:
        """The client a request is charged to (None: limits are off); raises the 429."""
        if self.limiter is None:
            return None
        return self.limiter.charge(member, environ.get("REMOTE_ADDR") or "", max(1, cost))
