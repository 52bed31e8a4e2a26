"""Run-time control of the simulated services: the fault in force per service, each service's
capacity gate, and call counts.

Each fault comes with a release event. Requests that hang, drip or sleep under a fault wait
on it, so healing (or replacing) the fault, or stopping the server, frees them at once
instead of leaving greenlets behind.

Each service also has a ``CapacityGate``, which outlives its faults: a fault's ``capacity``
resizes it, so requests queued under one capacity are served under the next, and healing
(capacity 0, no cap) lets every waiting request in at once.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from gevent.event import Event

from backends.simulated.faults import HEALTHY, MAX_QUEUE, Fault
from backends.simulated.reference import SERVICES


@dataclass(frozen=True, slots=True)
class GateState:
    """A capacity gate at one moment, as the admin API shows it."""

    capacity: int
    queue_limit: int
    serving: int
    waiting: int
    #: Since the last reset: requests answered "overloaded", and the longest queue seen.
    rejected: int
    peak_waiting: int


class CapacityGate:
    """At most ``capacity`` requests served at once (0: no cap), the others waiting in arrival
    order, at most ``queue_limit`` of them.

    Requests are counted even without a cap, so a cap set mid-run counts the requests
    already being served. A queued request waits until it is its turn, whatever its client
    does (as a real server's worker queue does). Not thread-safe; gevent only switches while
    a request waits.
    """

    def __init__(self) -> None:
        self.capacity = 0
        self.queue_limit = MAX_QUEUE
        self.serving = 0
        self.rejected = 0
        self.peak_waiting = 0
        self._waiting: deque[Event] = deque()
        # Set (and dropped) on every change, only while someone waits for one.
        self._changed: Event | None = None

    @property
    def waiting(self) -> int:
        """Requests queued for a place."""
        return len(self._waiting)

    def state(self) -> GateState:
        """The gate's settings and counts now."""
        return GateState(
            self.capacity,
            self.queue_limit,
            self.serving,
            len(self._waiting),
            self.rejected,
            self.peak_waiting,
        )

    def enter(self) -> bool:
        """Take a place, waiting for one in turn; False (at once) when the queue is full."""
        if not self.capacity or (self.serving < self.capacity and not self._waiting):
            self.serving += 1
            self._notify()
            return True
        if len(self._waiting) >= self.queue_limit:
            self.rejected += 1
            self._notify()
            return False
        turn = Event()
        self._waiting.append(turn)
        self.peak_waiting = max(self.peak_waiting, len(self._waiting))
        self._notify()
        try:
            turn.wait()
        except BaseException:
            # Killed while queued (the server stopping): give up the place, or pass it on.
            if turn.is_set():
                self.leave()
            else:
                self._waiting.remove(turn)
                self._notify()
            raise
        return True  # whoever set the turn counted this request as serving

    def leave(self) -> None:
        """Give a place back; the longest-waiting request takes it."""
        self.serving -= 1
        self._admit()

    def resize(self, capacity: int, queue_limit: int) -> None:
        """Apply a new capacity and queue bound; a larger (or no) cap admits waiters now.

        Requests served beyond a smaller cap finish; those queued beyond a smaller bound
        keep their place."""
        self.capacity, self.queue_limit = capacity, queue_limit
        self._admit()

    def reset_counts(self) -> None:
        """Start counting rejections and the longest queue from now."""
        self.rejected = 0
        self.peak_waiting = len(self._waiting)

    def wait_for(self, condition: Callable[[GateState], bool], timeout_s: float) -> bool:
        """Wait until ``condition(state)`` holds; False if ``timeout_s`` passed first."""
        deadline = time.monotonic() + timeout_s
        while not condition(self.state()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if self._changed is None:
                self._changed = Event()
            self._changed.wait(remaining)
        return True

    def _admit(self) -> None:
        while self._waiting and (not self.capacity or self.serving < self.capacity):
            self.serving += 1
            self._waiting.popleft().set()
        self._notify()

    def _notify(self) -> None:
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set()


@dataclass(frozen=True, slots=True)
class FaultSlot:
    """A fault, the event set when it stops being in force, and one set when it first holds a
    request (hang, added latency, drip), so a test can wait until the fault has caught a call."""

    fault: Fault
    released: Event = field(default_factory=Event)
    holding: Event = field(default_factory=Event)


class FaultBoard:
    """The fault in force for every service (healthy unless set)."""

    def __init__(self, services: tuple[str, ...] = SERVICES) -> None:
        self._slots = {name: FaultSlot(HEALTHY) for name in services}
        self._gates = {name: CapacityGate() for name in services}

    def __contains__(self, service: object) -> bool:
        return service in self._slots

    def slot(self, service: str) -> FaultSlot:
        """The service's current fault and release event; ``KeyError`` for unknown services."""
        return self._slots[service]

    def gate(self, service: str) -> CapacityGate:
        """The service's capacity gate; ``KeyError`` for unknown services."""
        return self._gates[service]

    def set(self, service: str, fault: Fault) -> None:
        """Put ``fault`` in force, releasing requests held by the previous one, and resize
        the service's capacity gate (its queue carries over)."""
        previous = self._slots[service]
        self._slots[service] = FaultSlot(fault)
        # Released first, so requests the old fault held finish before queued ones start.
        previous.released.set()
        self._gates[service].resize(fault.capacity, fault.queue_limit)

    def heal(self, service: str | None = None) -> None:
        """Make one service (or every service) healthy again."""
        for name in self._slots if service is None else (service,):
            self.set(name, HEALTHY)

    def active(self) -> dict[str, Fault]:
        """The services that currently misbehave, and how."""
        return {name: slot.fault for name, slot in self._slots.items() if slot.fault.active}

    def gates(self) -> dict[str, GateState]:
        """The gates of services with a cap, or with requests still queued."""
        gates = self._gates.items()
        return {name: gate.state() for name, gate in gates if gate.capacity or gate.waiting}

    def reset_gate_counts(self) -> None:
        """Start every gate's rejection count and longest queue from now."""
        for gate in self._gates.values():
            gate.reset_counts()


class CallCounter:
    """Requests received per service, so tests can count backend calls."""

    def __init__(self, services: tuple[str, ...] = SERVICES) -> None:
        self._services = services
        self._counts: Counter[str] = Counter()

    def add(self, service: str) -> None:
        """Count one request."""
        self._counts[service] += 1

    def get(self, service: str) -> int:
        """Requests received by ``service`` since the last reset."""
        return self._counts[service]

    def snapshot(self) -> dict[str, int]:
        """Every service's count (zeros included)."""
        return {name: self._counts[name] for name in self._services}

    def reset(self) -> None:
        """Start counting from zero."""
        self._counts.clear()
