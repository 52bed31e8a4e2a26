"""The actor system: starts one backend actor per configured backend, looks them up for
request supervisors, replaces one that crashed (one-for-one), and stops everything.

Backend state (breaker, last-good cache, counters) is kept across a restart: it describes
the backend, not the actor, and resetting it would re-open the gates to a backend that is
known to be failing. The bulkhead is reset: the crashed actor failed every call it held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import pykka

from actors.backend import BackendActor, BackendCaller, BackendState
from actors.last_good import LastGoodCache
from actors.plan import Plan, RunResult
from actors.supervisor import execute_plan
from backends.specs import BackendSpec

log = logging.getLogger(__name__)

LAST_GOOD_ENTRIES = 10_000
LAST_GOOD_TTL_S = 300.0


class ActorSystemError(RuntimeError):
    """The actor system was used before start or after stop."""


class ActorSystem:
    """Owns the backend actors of one process."""

    def __init__(
        self,
        specs: Iterable[BackendSpec],
        client_factory: Callable[[BackendSpec], BackendCaller],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self.states: dict[str, BackendState] = {
            spec.name: BackendState(
                spec,
                client_factory(spec),
                LastGoodCache(LAST_GOOD_ENTRIES, LAST_GOOD_TTL_S, clock),
            )
            for spec in specs
        }
        self._refs: dict[str, pykka.ActorRef[BackendActor]] = {}
        self._running = False

    @property
    def running(self) -> bool:
        """Started and not stopped."""
        return self._running

    def start(self) -> None:
        """Start every backend actor."""
        if self._running:
            return
        self._running = True
        for name in self.states:
            self._start_actor(name)

    def lookup(self, backend: str) -> pykka.ActorRef[Any]:
        """The current actor of ``backend``; ``KeyError`` if unknown or not running."""
        return self._refs[backend]

    def execute(
        self,
        plan: Plan,
        *,
        params: dict[str, Any],
        member_id: str | None,
        deadline: float,
        request_id: str,
    ) -> RunResult:
        """Run one request's plan in a fresh supervisor; returns by the deadline."""
        if not self._running:
            raise ActorSystemError("actor system is not running")
        return execute_plan(
            plan,
            directory=self,
            params=params,
            member_id=member_id,
            deadline=deadline,
            request_id=request_id,
            clock=self._clock,
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every backend actor; calls they hold are rejected at once."""
        self._running = False
        refs = list(self._refs.values())
        self._refs.clear()
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            ref.actor_stopped.wait(timeout_s)

    def counts(self) -> Mapping[str, Mapping[str, int]]:
        """Per-backend counters (outcomes, expired, crashes, restarts)."""
        return {name: dict(state.counts) for name, state in self.states.items()}

    def _start_actor(self, name: str) -> None:
        self._refs[name] = BackendActor.start(self.states[name], self._clock, self._on_crash)

    def _on_crash(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        """Called by a crashed backend actor from its own greenlet, after it failed its calls."""
        if not self._running or self._refs.get(name) is not ref:
            return
        self.states[name].count("restarts")
        log.warning("backend actor %s crashed; restarting it", name)
        self._start_actor(name)
