"""Assembling one Frontdoor process from its settings: backends, actor system, app.

Used by the CLI (``frontdoor serve``), the gunicorn target and end-to-end tests, so all
three run exactly the same wiring.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from actors.backend import BackendCaller
from actors.system import ActorSystem
from backends.client import BackendClient
from backends.specs import BackendSpec, RetrySettings
from backends.transports import make_transport
from orchestrator.config import ServerSettings, Settings, Topology
from orchestrator.frontend.app import AppOptions, FrontdoorApp
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.enrichment import Enricher
from orchestrator.frontend.passthrough import layer_backend
from orchestrator.ops.access_log import AccessLog, EventLog, SheddingMonitor
from orchestrator.ops.admin import AdminHandler, EndpointWindows, gauge_snapshot
from orchestrator.ops.instance import Instance, LocalWorker
from orchestrator.ops.metrics import GaugeReporter, Metrics
from orchestrator.ops.peers import PeerChannel, WorkerDirectory
from orchestrator.packages import Served, check_backends
from orchestrator.plans import Endpoint, EndpointRegistry

log = logging.getLogger("frontdoor.runtime")


def endpoints_for(server: ServerSettings, enricher: Enricher | None = None) -> tuple[Endpoint, ...]:
    """Every endpoint a process with ``server`` settings serves (``Served.endpoints``)."""
    return Served.configured(server).endpoints(enricher)


def layer_specs(settings: Settings, endpoints: tuple[Endpoint, ...]) -> tuple[BackendSpec, ...]:
    """The edge's backends for the layer, one per passed-through endpoint (its own bulkhead
    and breaker): as many calls as requests may be in flight (no queue), up to the
    endpoint's deadline, and no retries: the layer retries its own calls, and retrying at
    two tiers multiplies the load on a failing service."""
    return tuple(
        BackendSpec(
            layer_backend(endpoint),
            settings.server.playback_upstream,
            timeout_ms=endpoint.deadline_ms,
            max_concurrent=settings.server.max_inflight,
            max_queue=0,
            retry=RetrySettings(max_attempts=1),
            transport=settings.backends.transport,
        )
        for endpoint in endpoints
    )


def rebase_specs(specs: tuple[BackendSpec, ...], old: str, new: str) -> tuple[BackendSpec, ...]:
    """Point every backend under ``old`` base URL at ``new`` (embedded services' real port)."""
    old, new = old.rstrip("/"), new.rstrip("/")
    return tuple(
        dataclasses.replace(spec, base_url=new + spec.base_url[len(old) :])
        if spec.base_url.startswith(old)
        else spec
        for spec in specs
    )


def _client(spec: BackendSpec) -> BackendClient:
    return BackendClient(spec, make_transport(spec))


@dataclass(slots=True)
class Frontdoor:
    """One process's parts, started and stopped together."""

    settings: Settings
    system: ActorSystem
    app: FrontdoorApp
    signer: TokenSigner
    metrics: Metrics
    reporter: GaugeReporter
    #: The workers operators see through ``/_admin/*`` (this process, until ``join_workers``).
    instance: Instance
    _peers: PeerChannel | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        specs: tuple[BackendSpec, ...] | None = None,
        clients: Callable[[BackendSpec], BackendCaller] = _client,
    ) -> Frontdoor:
        """Wire the parts; nothing runs until ``start`` (statsd's address is resolved now).

        ``specs`` replaces the configured backends (tests, embedded services); ``clients``
        makes each backend's client (the test kit's fakes: orchestrator/testkit.py).
        """
        topology = settings.server.topology
        enricher = Enricher(settings.auth.token_secret.encode())
        served = Served.configured(settings.server)
        registry = EndpointRegistry(served.endpoints(enricher))
        all_specs = settings.backend_specs() if specs is None else specs
        all_specs = (*all_specs, *layer_specs(settings, served.passed_through()))
        for warning in check_backends(settings, registry.endpoints, all_specs):
            log.warning("%s", warning)
        needed = registry.backends()
        events = EventLog()
        system = ActorSystem(
            [s for s in all_specs if s.name in needed],
            clients,
            on_breaker_change=events.breaker_changed,
            on_restart=events.backend_restarted,
        )
        signer = TokenSigner(settings.auth.token_secret.encode(), settings.auth.token_ttl_s)
        options = AppOptions(
            max_body_bytes=settings.server.max_body_bytes,
            header_timeout_s=settings.server.header_timeout_s,
            idle_timeout_s=settings.server.idle_timeout_s,
            max_header_bytes=settings.server.max_header_bytes,
            max_inflight=settings.server.max_inflight,
            admin_token=settings.auth.admin_token,
            body_timeout_s=settings.server.body_timeout_s,
            limits_enabled=settings.limits.enabled,
            member_rate=settings.limits.member_rate,
            member_burst=settings.limits.member_burst,
            address_rate=settings.limits.address_rate,
            address_burst=settings.limits.address_burst,
            trust_request_id=settings.server.trust_request_id,
        )
        metrics = Metrics.from_settings(settings.statsd, registry.endpoints, sorted(needed))
        windows = EndpointWindows(registry.endpoints)
        instance = Instance(LocalWorker(system, windows))
        admin = AdminHandler(instance, admin_token=settings.auth.admin_token, signer=signer)
        app = FrontdoorApp(
            registry,
            system,
            signer,
            options,
            metrics=metrics,
            access_log=AccessLog(settings.logging.slow_request_ms),
            windows=windows,
            admin=admin,
            # Only a playback layer trusts an edge's enrichment.
            enricher=enricher if topology is Topology.PLAYBACK else None,
            shared_steps=served.shared_steps,
        )
        shedding = SheddingMonitor(events)
        reporter = GaugeReporter(
            metrics,
            lambda: instance.gauges(
                gauge_snapshot(system.backend_views(), app.admission.inflight, app.admission.shed)
            ),
            settings.statsd.gauge_interval_s,
            observers=[lambda snap: shedding.observe(snap.shed_total, snap.frontend_inflight)],
        )
        return cls(settings, system, app, signer, metrics, reporter, instance)

    def single_listener_app(self) -> Callable[[Any, Any], Iterable[bytes]]:
        """The WSGI callable for a server with one listener and no admin port (gunicorn).

        Every route; but with ``server.admin_port`` set, every route except ``/_admin/*``
        (404): the operator asked for admin routes off the device port, and there is no
        loopback listener here to move them to.
        """
        if not self.settings.server.admin_port:
            return self.app
        log.warning(
            "server.admin_port is set but this server has one listener: "
            "admin routes are not served (404); run `frontdoor serve` for the admin listener"
        )
        return self.app.device_only

    def start(self) -> None:
        """Start the backend actors, then the gauge reporter."""
        self.system.start()
        self.reporter.start()

    def join_workers(self, directory: WorkerDirectory) -> None:
        """Be one worker of a pre-fork instance (gunicorn): answer the other workers in
        ``directory`` and speak for all of them on ``/_admin/*`` and the dashboard
        (``orchestrator/ops/peers.py``). Call after ``start``, in the worker process."""
        peers = PeerChannel(directory, self.instance.local)
        peers.start()
        self.instance.attach(peers)
        self._peers = peers

    def stop(self) -> None:
        """Stop reporting, stop the backend actors (after the server has drained)."""
        if self._peers is not None:
            self._peers.close()
            self._peers = None
        self.reporter.stop()
        self.system.stop()
        self.metrics.close()
