"""The WSGI application: a request goes down a pipeline of stages, one response comes out.

The order of work for a request, in one place (each stage is a module of its own):
  arrive (``request``) -> the app's own endpoints, answered even while shedding: documents
  (``documents``), health (``health``), admin routes (``admin_route``) -> admission
  (``admission``: shed with 503 before any work) -> the batch endpoint (``batching``: its
  calls go down the same stages from routing on), or one call: routing (``routing``) ->
  scope (``scope``: deadline, shared calls, a trusted edge's enrichment, ``edge_enrichment``)
  -> authentication (``authentication``) -> body (``body``) -> plan (``plan_stage``:
  parameters, ``fields``, the run, its result shaped by ``results``) -> response
  (``respond``, observed once by ``observe``).
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
from orchestrator.frontend.deprecation import Deprecations
from orchestrator.frontend.documents import Documents
from orchestrator.frontend.edge_enrichment import EdgeEnrichment
from orchestrator.frontend.enrichment import Enricher
from orchestrator.frontend.health import Health, Running
from orchestrator.frontend.observe import Observer
from orchestrator.frontend.plan_stage import FallbackRecorder, PlanStage
from orchestrator.frontend.protocol.batch import BATCH_PATH, MAX_CALLS
from orchestrator.frontend.request import Environ, Request, StartResponse, arrive
from orchestrator.frontend.respond import Responder
from orchestrator.frontend.results import Results
from orchestrator.frontend.routing import Router
from orchestrator.frontend.scope import Scopes
from orchestrator.ops.access_log import AccessLog
from orchestrator.ops.admin import AdminHandler, EndpointWindows
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
    #: The operators' token; ``X-Frontdoor-Admin-Token`` with it unlocks ``meta.trace``.
    admin_token: str = ""
    #: Most calls in one batch, how many of them run at once, and the batch's own deadline
    #: (each call's is its endpoint's, cut to what is left of the batch's).
    batch_max_calls: int = MAX_CALLS
    batch_concurrency: int = 8
    batch_deadline_ms: int = 2000
    #: The longest an admin request's body may take to arrive (a device request's body has
    #: its endpoint's deadline).
    admin_body_timeout_s: float = 5.0


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
        if metrics is None:  # tests that build the app alone: drop metrics
            names = MetricNames("frontdoor", registry.endpoints, sorted(registry.backends()))
            metrics = Metrics(names, NullSink())
        self.metrics = metrics
        if access_log is None:
            access_log = AccessLog(slow_request_ms=1000)
        if windows is None:
            windows = EndpointWindows(registry.endpoints, clock=clock)
        self.admission = Admission(options.max_inflight)
        self._clock = clock
        observer = Observer(windows, access_log, clock, quiet=health.PATHS)
        respond = Responder(observer)
        body = BodyReader(options.max_body_bytes, clock)
        limits = Limits(options.batch_max_calls, options.batch_concurrency)
        enrichment = None if enricher is None else EdgeEnrichment(enricher, shared_steps)
        results = Results(signer, Deprecations(registry.endpoints))
        self._respond = respond
        self._documents = Documents(registry, limits, respond)
        self._health = Health(backends, respond)
        self._admin = AdminRoute(admin, body, respond, clock, options.admin_body_timeout_s)
        self._router = Router(registry)
        self._scopes = Scopes(backends, options.admin_token, enrichment)
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
        request = arrive(environ, self._clock(), self.metrics.request())
        answered = self._admin.serve(start_response, request)
        if answered is None:
            return self._respond.problem(start_response, request, problems.not_found(request.path))
        return answered

    # -- the pipeline ---------------------------------------------------------------------

    def _call(
        self, environ: Environ, start_response: StartResponse, *, admin: bool
    ) -> Iterable[bytes]:
        request = arrive(environ, self._clock(), self.metrics.request())
        # The app's own endpoints: answered before admission, even while shedding.
        answered = self._documents.serve(start_response, request)
        if answered is None:
            answered = self._health.serve(start_response, request)
        if answered is None:
            answered = self._admin.serve(start_response, request, served=admin)
        if answered is not None:
            return answered
        if not self.admission.try_enter():
            # Shed before any parsing or backend work: rejection must be far cheaper than work.
            problem = problems.overloaded(retry_after_s=1)
            return self._respond.problem(start_response, request, problem)
        try:
            status, body = self._handle(environ, request)
        except problems.Problem as problem:
            return self._respond.problem(start_response, request, problem)
        except Exception as exc:  # noqa: BLE001 - a bug becomes a 500, logged by unhandled
            return self._respond.unhandled(start_response, request, exc)
        finally:
            self.admission.leave()
        return self._respond.json(start_response, request, status, body)

    def _handle(self, environ: Environ, request: Request) -> tuple[int, Any]:
        """An admitted request's status and body: a batch, or one call's stages."""
        if request.path == BATCH_PATH:
            return self._batch.serve(environ, request)
        endpoint, path_params = self._router.route(request)
        scope = self._scopes.open(environ, request.started, endpoint.deadline_ms)
        request.member_id = self._authenticator.member(scope, endpoint)
        body = self._body.read(environ, scope.deadline) if endpoint.method in WITH_BODY else None
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        return self._plans.serve(request, scope, endpoint, path_params, query, body)
