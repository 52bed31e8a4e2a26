"""The actor system: starts one backend actor per configured backend, admits calls to them
for request supervisors, replaces one that crashed (one-for-one), and stops everything.

Backend state (breaker, retry budget, last-good cache, counters) is kept across a restart:
it describes the backend, not the actor, and resetting it would re-open the gates to a
backend that is known to be failing (and refill the budget of one that is being retried).
A probe the crashed actor had out is abandoned; its lease reopens the breaker. The bulkhead
is reset: the crashed actor failed every call it held or had in its mailbox, which also
gave back every reserved place.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pykka

from actors.backend import BackendActor, BackendCaller, BackendState, submit
from actors.breaker import OPEN, Override
from actors.call_cache import SharedCalls
from actors.last_good import LastGoodCache
from actors.messages import Call, Outcome, Reply
from actors.outcomes import BreakerForce
from actors.plan import Plan, RunResult, StepRecord
from actors.stats import WindowTotals
from actors.supervisor import Adaptations, build_adaptations, execute_plan
from backends.specs import BackendSpec

log = logging.getLogger("frontdoor.actors.system")

LAST_GOOD_ENTRIES = 10_000
LAST_GOOD_TTL_S = 300.0


#: Told ``(backend, old_state, new_state)`` when a backend's breaker changes state.
BreakerListener = Callable[[str, str, str], None]
#: Told ``(backend, restarts_so_far)`` after a crashed backend actor was replaced.
RestartListener = Callable[[str, int], None]


#: An operator's breaker action (``orchestrator.ops.admin``) -> the override it sets.
FORCE_ACTIONS: dict[str, Override | None] = {
    BreakerForce.OPEN: Override.FORCE_OPEN,
    BreakerForce.CLOSED: Override.FORCE_CLOSED,
    BreakerForce.CLEAR: None,
}
_OVERRIDE_NAMES = {override: action for action, override in FORCE_ACTIONS.items() if override}


class ActorSystemError(RuntimeError):
    """The actor system was used before start or after stop."""


@dataclass(frozen=True, slots=True)
class AdaptiveTotals:
    """A backend's hedging and collapsing since start, as operators see them.

    A mechanism the backend does not turn on has None in its fields; a backend with neither
    has no ``AdaptiveTotals`` at all (``BackendView.adaptive`` is None).
    """

    #: Hedges sent (the retry budget spent), and those whose answer won (``Hedger``).
    hedges_sent_total: int | None = None
    hedges_won_total: int | None = None
    #: Calls handed to the collapser, and the calls it sent the backend for them
    #: (``Collapser.members`` and ``calls``): ``in - out`` calls saved.
    collapse_calls_in_total: int | None = None
    collapse_calls_out_total: int | None = None


def adaptive_totals(adaptations: Adaptations | None, backend: str) -> AdaptiveTotals | None:
    """What ``backend``'s hedger and collapser have counted; None when it has neither."""
    if adaptations is None:
        return None
    hedger = adaptations.hedgers.get(backend)
    collapser = adaptations.collapsers.get(backend)
    if hedger is None and collapser is None:
        return None
    return AdaptiveTotals(
        hedges_sent_total=None if hedger is None else hedger.sent,
        hedges_won_total=None if hedger is None else hedger.won,
        collapse_calls_in_total=None if collapser is None else collapser.members,
        collapse_calls_out_total=None if collapser is None else collapser.calls,
    )


class BackendView:
    """One backend as operators see it (``orchestrator.ops.admin.BackendView``), read live."""

    __slots__ = ("_adaptations", "_state")

    def __init__(self, state: BackendState, adaptations: Adaptations | None = None) -> None:
        self._state = state
        self._adaptations = adaptations

    @property
    def name(self) -> str:
        """The configured backend name."""
        return self._state.spec.name

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half_open``, override applied."""
        return self._state.breaker.state

    @property
    def breaker_override(self) -> str | None:
        """``open`` or ``closed`` while an operator forces it, else ``None``."""
        forced = self._state.breaker.forced
        return None if forced is None else _OVERRIDE_NAMES[forced]

    @property
    def breaker_changed_at(self) -> float | None:
        """When the breaker state last changed, on the system's clock; ``None`` if never."""
        return self._state.breaker.changed_at

    @property
    def inflight(self) -> int:
        """Calls running now."""
        return self._state.inflight

    @property
    def queued(self) -> int:
        """Calls waiting for a bulkhead slot."""
        return self._state.queued

    @property
    def max_concurrent(self) -> int:
        """Bulkhead size."""
        return self._state.spec.max_concurrent

    @property
    def max_queue(self) -> int:
        """Bulkhead queue size."""
        return self._state.spec.max_queue

    @property
    def limit(self) -> int | None:
        """The adaptive concurrency limit now; None unless the backend has one."""
        limiter = self._state.limiter
        return None if limiter is None else limiter.limit

    @property
    def adaptive(self) -> AdaptiveTotals | None:
        """Hedges and collapsed calls since start; None unless the backend hedges or
        collapses."""
        return adaptive_totals(self._adaptations, self._state.spec.name)

    def window_totals(self) -> WindowTotals:
        """The last 10 s of calls as plain totals (``WindowTotals.snapshot`` reads them),
        to add up with other workers' windows."""
        return self._state.stats.totals()

    def force_breaker(self, force: str) -> None:
        """Apply ``open``, ``closed`` or ``clear`` (back to automatic); ``KeyError`` else."""
        self._state.breaker.force(FORCE_ACTIONS[force])


class ActorSystem:
    """Owns the backend actors of one process.

    ``clock`` is every actor's and breaker's time source (``time.monotonic``'s scale);
    ``seed`` makes retry jitter reproducible (tests), else each backend draws from the OS;
    ``on_breaker_change`` hears every breaker state change, after it was logged and counted
    (``breaker_open``, ``breaker_half_open``, ``breaker_closed`` in ``counts``).
    """

    def __init__(
        self,
        specs: Iterable[BackendSpec],
        client_factory: Callable[[BackendSpec], BackendCaller],
        clock: Callable[[], float] = time.monotonic,
        *,
        seed: int | None = None,
        on_breaker_change: BreakerListener | None = None,
        on_restart: RestartListener | None = None,
    ) -> None:
        self._clock = clock
        self._on_breaker_change = on_breaker_change
        self._on_restart = on_restart
        self.states: dict[str, BackendState] = {}
        for spec in specs:
            self.states[spec.name] = BackendState.create(
                spec,
                client_factory(spec),
                last_good=LastGoodCache(LAST_GOOD_ENTRIES, LAST_GOOD_TTL_S, clock),
                clock=clock,
                # Jitter decorrelates clients, so by default no two processes share a seed.
                rng=random.Random(None if seed is None else f"{seed}:{spec.name}"),  # noqa: S311 - jitter, not security
                on_breaker_change=functools.partial(self._breaker_changed, spec.name),
            )
        self._refs: dict[str, pykka.ActorRef[BackendActor]] = {}
        self._running = False
        #: The hedgers and collapsers of the backends that turn them on (None: none does).
        self.adaptations = build_adaptations(self.states, self, clock)

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

    def submit(self, call: Call) -> Reply | None:
        """Tell ``call`` to its backend's actor, or return its rejection at once.

        ``None`` means a reply will come to ``call.reply_to``. A backend with no room
        (``capacity`` calls outstanding), unknown, or between restarts rejects without
        queueing anything (see ``actors.backend.submit``).
        """
        state = self.states.get(call.backend)
        ref = self._refs.get(call.backend)
        if state is None or ref is None:
            now = self._clock()
            return Reply(
                call.call_id, call.backend, Outcome.REJECTED, None, "unavailable", now, now
            )
        return submit(state, ref, call, self._clock())

    def breaker_state(self, backend: str) -> str:
        """The backend's breaker state (``closed``, ``open``, ``half_open``); ``KeyError``."""
        return self.states[backend].breaker.state

    def force_breaker(self, backend: str, override: Override | None) -> None:
        """Force a backend's breaker open or closed (operators); ``None`` returns it to
        automatic, closed with an empty window. ``KeyError`` for an unknown backend."""
        self.states[backend].breaker.force(override)

    def record_fallbacks(self, records: Iterable[StepRecord]) -> None:
        """Count each step that fell back in its backend's window (``fallbacks``).

        A fallback is a fact of the request, not of the call, so the app reports it after
        the plan ran."""
        for record in records:
            state = self.states.get(record.step.backend) if record.degraded else None
            if state is not None:
                state.stats.record(Outcome.FALLBACK)

    def backend_views(self) -> list[BackendView]:
        """One live view per backend, for operators (``orchestrator.ops.admin.BackendViews``)."""
        return [BackendView(state, self.adaptations) for state in self.states.values()]

    def execute(
        self,
        plan: Plan,
        *,
        params: dict[str, Any],
        member_id: str | None,
        deadline: float,
        request_id: str,
        presets: Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run one request's plan in a fresh supervisor; returns by the deadline.

        The path the app runs a device's plan on (``execute_plan``, its calls through a
        ``SharedCalls`` in front of this system: identical reads made once), on this
        system's clock; ``ActorSystemError`` when the system is not running."""
        if not self._running:
            raise ActorSystemError("actor system is not running")
        return execute_plan(
            plan,
            directory=SharedCalls(self),
            params=params,
            member_id=member_id,
            deadline=deadline,
            request_id=request_id,
            clock=self._clock,
            presets=presets,
        )

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop every backend actor (calls they hold are rejected at once), then close
        every backend's client."""
        self._running = False
        refs = list(self._refs.values())
        self._refs.clear()
        for ref in refs:
            ref.stop(block=False)
        for ref in refs:
            ref.actor_stopped.wait(timeout_s)
        for state in self.states.values():
            # The clients' pooled connections: closed now rather than whenever the garbage
            # collector finds them. A client closed this way still works if started again.
            close = getattr(state.client, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # one client's failure must not stop the rest
                    log.exception("backend %s: closing its client failed", state.spec.name)

    def counts(self) -> Mapping[str, Mapping[str, int]]:
        """Per-backend counters: outcomes, ``expired``, ``retries``, ``crashes``,
        ``restarts``, and breaker changes (``breaker_open``...)."""
        return {name: dict(state.counts) for name, state in self.states.items()}

    def _start_actor(self, name: str) -> None:
        self._refs[name] = BackendActor.start(self.states[name], self._clock, self._on_crash)

    def _on_crash(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        """Called by a crashed backend actor from its own greenlet, after it failed its calls."""
        if not self._running or self._refs.get(name) is not ref:
            return
        state = self.states[name]
        state.count("restarts")
        log.warning("backend actor %s crashed; restarting it", name)
        if state.outstanding:  # pragma: no cover - the crashed actor answered every call
            log.error("backend %s: %d places still reserved at restart", name, state.outstanding)
            state.outstanding = 0
        self._start_actor(name)
        if self._on_restart is not None:
            self._on_restart(name, state.counts["restarts"])

    def _breaker_changed(self, name: str, before: str, after: str) -> None:
        self.states[name].count(f"breaker_{after}")
        # Opening is what an operator must notice; the way back is routine.
        level = logging.WARNING if after == OPEN else logging.INFO
        log.log(level, "backend %s: breaker %s -> %s", name, before, after)
        if self._on_breaker_change is not None:
            self._on_breaker_change(name, before, after)
