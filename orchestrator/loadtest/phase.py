"""Phases of a run: the windows between fault-timeline events, each named for what is broken.

A scenario's timeline (``FaultEvent``\\ s) cuts the measured window into phases: "before",
then one per change of the injected faults ("licensing hang"), then "after licensing hang"
once healed. Results are attributed to the phase in which each request was *scheduled*, so
the requests a fault delayed count against that fault even if they finish after it healed.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FaultEvent", "Phase", "PhaseMap", "describe_fault"]


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """At ``at_s`` seconds into the run, set ``service``'s fault, or heal it (``fault`` None).

    ``service`` None with ``fault`` None heals every service.
    """

    at_s: float
    service: str | None
    fault: Mapping[str, Any] | None = field(default=None)

    @property
    def heals(self) -> bool:
        """Whether this event removes faults rather than setting one."""
        return self.fault is None


@dataclass(frozen=True, slots=True)
class Phase:
    """A named window ``[start_s, end_s)`` of the run, with the faults in force during it."""

    name: str
    start_s: float
    end_s: float
    faults: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """The window's length in seconds."""
        return self.end_s - self.start_s


def describe_fault(service: str, fault: Mapping[str, Any]) -> str:
    """A short human name for a fault, e.g. ``licensing hang`` or ``ratings 50% errors``."""
    parts: list[str] = []
    if fault.get("hang"):
        parts.append("hang")
    if fault.get("refuse"):
        parts.append("refuse")
    if fault.get("malformed"):
        parts.append("malformed")
    if rate := fault.get("error_rate"):
        parts.append(f"{float(rate) * 100:g}% errors")
    if latency := fault.get("latency_ms"):
        parts.append(f"+{float(latency):g} ms")
    if drip := fault.get("drip_ms"):
        parts.append(f"drip {float(drip):g} ms")
    if tail := fault.get("tail_percent"):
        parts.append(f"{float(tail):g}% tail of {float(fault.get('tail_ms', 0)):g} ms")
    if capacity := fault.get("capacity"):
        parts.append(f"capacity {int(capacity)}")
    return f"{service} {', '.join(parts) or 'healthy'}"


class PhaseMap:
    """The phases of one run, and which phase an offset falls in."""

    def __init__(self, phases: Sequence[Phase]) -> None:
        if not phases:
            raise ValueError("a run has at least one phase")
        self.phases = tuple(phases)
        self._starts = [phase.start_s for phase in self.phases]

    @classmethod
    def from_timeline(cls, events: Sequence[FaultEvent], start_s: float, end_s: float) -> PhaseMap:
        """Cut ``[start_s, end_s)`` at every event time inside it.

        Events before ``start_s`` (during warmup) set the state the first phase starts in.
        """
        if not events:
            return cls([Phase("steady", start_s, end_s)])
        active: dict[str, str] = {}
        boundaries: list[tuple[float, tuple[str, ...]]] = []
        for at_s in sorted({event.at_s for event in events}):
            for event in (e for e in events if e.at_s == at_s):
                _apply(active, event)
            boundaries.append((at_s, tuple(active[name] for name in sorted(active))))
        state: tuple[str, ...] = ()
        for at_s, after in boundaries:
            if at_s <= start_s:
                state = after
        phases: list[Phase] = []
        cursor, seen_fault = start_s, bool(state)
        for at_s, after in [*(b for b in boundaries if start_s < b[0] < end_s), (end_s, ())]:
            if at_s > cursor:
                phases.append(Phase(_name(state, seen_fault, phases), cursor, at_s, state))
            seen_fault = seen_fault or bool(state)
            cursor, state = at_s, after
        return cls(_unique(phases))

    @classmethod
    def from_steps(
        cls, steps: Sequence[tuple[float, float]], start_s: float, end_s: float
    ) -> PhaseMap:
        """One phase per rate step (``(at_s, rate)`` pairs) inside ``[start_s, end_s)``: how
        the service holds up at each offered load."""
        cuts = [(max(at, start_s), rate) for at, rate in steps if at < end_s]
        cuts = [cut for i, cut in enumerate(cuts) if i + 1 == len(cuts) or cuts[i + 1][0] > cut[0]]
        phases = [
            Phase(f"{rate:g} req/s", at, cuts[i + 1][0] if i + 1 < len(cuts) else end_s)
            for i, (at, rate) in enumerate(cuts)
        ]
        return cls(_unique(phases))

    def index(self, offset_s: float) -> int:
        """The phase index ``offset_s`` falls in (offsets past the end go to the last)."""
        return max(0, bisect.bisect_right(self._starts, offset_s) - 1)

    def __iter__(self) -> Any:
        return iter(self.phases)

    def __len__(self) -> int:
        return len(self.phases)


def _apply(active: dict[str, str], event: FaultEvent) -> None:
    if event.fault is None:
        if event.service is None:
            active.clear()
        else:
            active.pop(event.service, None)
    elif event.service is not None:
        active[event.service] = describe_fault(event.service, event.fault)


def _name(state: tuple[str, ...], seen_fault: bool, earlier: Sequence[Phase]) -> str:
    if state:
        return " + ".join(state)
    if not seen_fault:
        return "before"
    last_faulty = next((phase for phase in reversed(earlier) if phase.faults), None)
    return f"after {' + '.join(last_faulty.faults)}" if last_faulty else "after"


def _unique(phases: list[Phase]) -> list[Phase]:
    """A fault applied twice gives two phases of the same name: number the repeats."""
    seen: dict[str, int] = {}
    unique: list[Phase] = []
    for phase in phases:
        count = seen[phase.name] = seen.get(phase.name, 0) + 1
        name = phase.name if count == 1 else f"{phase.name} ({count})"
        unique.append(Phase(name, phase.start_s, phase.end_s, phase.faults))
    return unique
