"""Simulated microservices: seeded, realistic data over real HTTP, with run-time faults.

One gevent server on one port serves every service under its own path prefix
(``/catalog/...``, ``/plans/...``); ``/_faults``, ``/_stats`` and ``/_health`` control it.
``SimulatedApp`` is also a WSGI application, for any other server.
Used by the demo, end-to-end tests and load tests::

    backends = SimulatedBackends(seed=7, latency_profile="realistic").start()
    backends.set_fault("catalog", Fault(error_rate=0.5))
    backends.set_fault("search", Fault(capacity=4, queue_limit=20))  # 4 at once, 20 queue
    ...
    backends.stop()

Public: ``__all__``; the other modules are implementation. A new service is a handler in the
family's module (``nonmember.py``, ``discovery.py``, ``playback.py``), a line of the table in
``services.py`` and its name in ``reference.SERVICES``.
Nothing here imports ``orchestrator`` or ``actors``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from backends.simulated.app import SimulatedApp
    from backends.simulated.control import GateState
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
    "GateState",
    "LatencyModel",
    "SimulatedApp",
    "SimulatedBackends",
    "World",
]

# Lazy (PEP 562): importing the package imports no submodule, so not gevent's server before
# the process is patched.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "app": ("SimulatedApp",),
            "control": ("GateState",),
            "data": ("World",),
            "faults": ("HEALTHY", "LATENCY_PROFILES", "Fault", "FaultError", "LatencyModel"),
            "reference": ("DEFAULT_SEED", "SERVICES"),
            "server": ("SimulatedBackends",),
        },
    )
