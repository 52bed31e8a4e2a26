"""Which API packages a process serves, from its configuration alone.

``server.apis`` and ``server.passthrough`` name modules; each exposes ``PACKAGE``, an
``orchestrator.plans.ApiPackage``. The built-in families (orchestrator/apis/) are loaded
exactly like a team's package installed from elsewhere (examples/kids_api/): adding one is
a line of configuration, never an edit here. Every problem is a ``ConfigError`` naming the
setting, so that ``frontdoor check-config`` and start-up report it like any other.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass

from backends.specs import BackendSpec
from orchestrator.config import ConfigError, MultipleConfigError, ServerSettings, Settings
from orchestrator.frontend.enrichment import Enricher
from orchestrator.frontend.passthrough import edge_endpoints
from orchestrator.plans import ApiPackage, Endpoint

__all__ = ["Served", "check_backends", "load_package"]


def load_package(module: str, setting: str = "server.apis") -> ApiPackage:
    """The ``PACKAGE`` of ``module``; a ``ConfigError`` on ``setting`` when there is none."""
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        raise ConfigError(setting, f"cannot import {module}: {exc}") from exc
    package = getattr(loaded, "PACKAGE", None)
    if not isinstance(package, ApiPackage):
        raise ConfigError(setting, f"{module} has no PACKAGE (an orchestrator.plans.ApiPackage)")
    return package


@dataclass(frozen=True, slots=True)
class Served:
    """The packages one process serves itself and those it passes through."""

    own: tuple[ApiPackage, ...]
    passed: tuple[ApiPackage, ...] = ()

    @classmethod
    def configured(cls, server: ServerSettings) -> Served:
        """The packages ``server.apis`` and ``server.passthrough`` name, loaded."""
        own = tuple(load_package(name) for name in server.apis)
        passed = tuple(load_package(name, "server.passthrough") for name in server.passthrough)
        names = [package.name for package in (*own, *passed)]
        if duplicates := sorted({name for name in names if names.count(name) > 1}):
            raise ConfigError("server.apis", f"two packages are called {', '.join(duplicates)}")
        return cls(own, passed)

    @property
    def shared_steps(self) -> frozenset[str]:
        """The steps an edge may have run for this process's own packages."""
        return frozenset().union(*(package.shared_steps for package in self.own))

    def passed_through(self) -> tuple[Endpoint, ...]:
        """The passed-through packages' endpoints as declared (as their layer serves them)."""
        return tuple(endpoint for package in self.passed for endpoint in _declared(package))

    def endpoints(self, enricher: Enricher | None = None) -> tuple[Endpoint, ...]:
        """Every endpoint served: the own packages', then the passed-through ones as the
        edge serves them, sealing enrichments with ``enricher`` (a throwaway one when only
        listing them)."""
        own = tuple(endpoint for package in self.own for endpoint in _declared(package))
        if not self.passed:
            return own
        sealer = Enricher(b"listing only") if enricher is None else enricher
        passed = tuple(
            endpoint
            for package in self.passed
            for endpoint in edge_endpoints(_declared(package), sealer, package.shared_steps)
        )
        return own + passed


def _declared(package: ApiPackage) -> tuple[Endpoint, ...]:
    try:
        return package.declare()
    except ValueError as exc:
        raise ConfigError("server.apis", f"package {package.name}: {exc}") from exc


def check_backends(
    settings: Settings, endpoints: Iterable[Endpoint], specs: Iterable[BackendSpec]
) -> list[str]:
    """Raise one ``ConfigError`` listing every backend an endpoint names that ``specs`` do
    not configure; return a warning for the configured backends no endpoint uses."""
    endpoints = tuple(endpoints)
    configured = {spec.name for spec in specs}
    users: dict[str, list[str]] = {}
    for endpoint in endpoints:
        for backend in sorted(endpoint.plan.backends):
            users.setdefault(backend, []).append(endpoint.name)
    errors = [
        ConfigError(
            f"backends.{backend}.url",
            f"not configured; called by endpoint {', '.join(names)}",
        )
        for backend, names in sorted(users.items())
        if backend not in configured
    ]
    MultipleConfigError.raise_any(errors)
    unused = sorted(set(settings.backends.configured) - set(users))
    if not unused:
        return []
    return [f"backends configured but called by no endpoint served here: {', '.join(unused)}"]
