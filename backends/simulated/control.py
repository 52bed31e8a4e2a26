"""Run-time control of the simulated services: the fault in force per service, and call counts.

Each fault comes with a release event. Requests that hang, drip or sleep under a fault wait
on it, so healing (or replacing) the fault, or stopping the server, frees them at once
instead of leaving greenlets behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gevent.event import Event

from backends.simulated.faults import HEALTHY, Fault
from backends.simulated.reference import SERVICES


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

    def __contains__(self, service: object) -> bool:
        return service in self._slots

    def slot(self, service: str) -> FaultSlot:
        """The service's current fault and release event; ``KeyError`` for unknown services."""
        return self._slots[service]

    def set(self, service: str, fault: Fault) -> None:
        """Put ``fault`` in force, releasing requests held by the previous one."""
        previous = self._slots[service]
        self._slots[service] = FaultSlot(fault)
        previous.released.set()

    def heal(self, service: str | None = None) -> None:
        """Make one service (or every service) healthy again."""
        for name in self._slots if service is None else (service,):
            self.set(name, HEALTHY)

    def active(self) -> dict[str, Fault]:
        """The services that currently misbehave, and how."""
        return {name: slot.fault for name, slot in self._slots.items() if slot.fault.active}


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
