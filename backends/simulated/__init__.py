"""Simulated microservices: seeded, realistic data over real HTTP, with run-time faults.

One gevent server on one port serves every service under its own path prefix
(``/catalog/...``, ``/plans/...``); ``/_faults``, ``/_stats`` and ``/_health`` control it.
``SimulatedApp`` is also a WSGI application, for any other server.
Used by the demo, end-to-end tests and load tests::

    backends = SimulatedBackends(seed=7, latency_profile="realistic").start()
    backends.set_fault("catalog", Fault(error_rate=0.5))
    ...
    backends.stop()

Nothing here imports ``orchestrator`` or ``actors``.
"""

from __future__ import annotations

from backends.simulated.app import SimulatedApp
from backends.simulated.data import World
from backends.simulated.faults import (
    HEALTHY,
    LATENCY_PROFILES,
    Fault,
    FaultError,
    LatencyModel,
)
from backends.simulated.reference import DEFAULT_SEED, SERVICES
from backends.simulated.server import SimulatedBackends

__all__ = [
    "DEFAULT_SEED",
    "HEALTHY",
    "LATENCY_PROFILES",
    "SERVICES",
    "Fault",
    "FaultError",
    "LatencyModel",
    "SimulatedApp",
    "SimulatedBackends",
    "World",
]
