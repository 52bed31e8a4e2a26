"""The actor layer: one long-lived actor per backend (bulkhead, breaker, retries, last-good
cache) and one short-lived supervisor per request, which runs an endpoint's ``Plan``.

Public: ``__all__`` (the actor system, plans and their steps, the messages); fakes for tests
are in ``actors.testing``; the other modules are implementation. A new resilience mechanism
goes here as a plain class (no actors, no I/O, any clock injected: see ``bulkhead.py``), wired
in by ``actors/backend.py``. Imports ``backends``, never ``orchestrator``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from actors.breaker import Override
    from actors.call_cache import SharedCalls
    from actors.messages import Call, Reply, ReplyTarget
    from actors.outcomes import BreakerForce, BreakerState, Outcome
    from actors.plan import (
        DeviceError,
        Fallback,
        Plan,
        PlanError,
        PlanRun,
        Refused,
        RequestBuilder,
        RunResult,
        RunStatus,
        Step,
        StepContext,
        StepRecord,
        StepState,
    )
    from actors.stats import WindowStats
    from actors.supervisor import BackendDirectory, execute_plan
    from actors.system import ActorSystem, ActorSystemError, BackendView

__all__ = [
    "ActorSystem",
    "ActorSystemError",
    "BackendDirectory",
    "BackendView",
    "BreakerForce",
    "BreakerState",
    "Call",
    "DeviceError",
    "Fallback",
    "Outcome",
    "Override",
    "Plan",
    "PlanError",
    "PlanRun",
    "Refused",
    "Reply",
    "ReplyTarget",
    "RequestBuilder",
    "RunResult",
    "RunStatus",
    "SharedCalls",
    "Step",
    "StepContext",
    "StepRecord",
    "StepState",
    "WindowStats",
    "execute_plan",
]

# Lazy (PEP 562): importing the package imports no submodule, so not pykka before gevent patches.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "breaker": ("Override",),
            "call_cache": ("SharedCalls",),
            "messages": ("Call", "Reply", "ReplyTarget"),
            "outcomes": ("BreakerForce", "BreakerState", "Outcome"),
            "plan": (
                "DeviceError",
                "Fallback",
                "Plan",
                "PlanError",
                "PlanRun",
                "Refused",
                "RequestBuilder",
                "RunResult",
                "RunStatus",
                "Step",
                "StepContext",
                "StepRecord",
                "StepState",
            ),
            "stats": ("WindowStats",),
            "supervisor": ("BackendDirectory", "execute_plan"),
            "system": ("ActorSystem", "ActorSystemError", "BackendView"),
        },
    )
