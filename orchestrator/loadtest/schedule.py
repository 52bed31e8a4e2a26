"""When requests are due: open-loop arrival schedules (constant or stepped rates) and the
closed-loop alternative. Pure values and arithmetic, no clock and no I/O.

Open loop is what devices do: they arrive at their own pace whatever the server's state, so
the generator issues request *n* at its scheduled offset and measures latency from that
offset. A server stall then shows as the whole queue of late requests it delayed, not as one
slow request (no coordinated omission).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

__all__ = ["MAX_RATE", "ClosedLoop", "Load", "OpenLoop", "RateStep"]

#: A ceiling on any scheduled rate: one generator process cannot do much more anyway, and
#: a typo (rate = 200000) must not turn into a flood.
MAX_RATE = 20_000.0


@dataclass(frozen=True, slots=True)
class RateStep:
    """From ``at_s`` seconds after the run started, issue ``rate`` requests per second."""

    at_s: float
    rate: float

    def __post_init__(self) -> None:
        if not math.isfinite(self.at_s) or self.at_s < 0:
            raise ValueError("at_s must be a finite number >= 0")
        if not math.isfinite(self.rate) or not 0 <= self.rate <= MAX_RATE:
            raise ValueError(f"rate must be from 0 to {MAX_RATE:g} requests per second")


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """A constant-arrival schedule whose rate changes in steps (one step: a constant rate)."""

    steps: tuple[RateStep, ...]

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0].at_s != 0:
            raise ValueError("the first rate step must start at 0 s")
        if any(b.at_s <= a.at_s for a, b in zip(self.steps, self.steps[1:], strict=False)):
            raise ValueError("rate steps must be in strictly increasing at_s order")

    @classmethod
    def constant(cls, rate: float) -> OpenLoop:
        """One rate for the whole run."""
        return cls((RateStep(0.0, rate),))

    @classmethod
    def stepped(cls, steps: Sequence[tuple[float, float]]) -> OpenLoop:
        """Steps from ``(at_s, rate)`` pairs."""
        return cls(tuple(RateStep(at, rate) for at, rate in steps))

    def rate_at(self, offset_s: float) -> float:
        """The scheduled rate at ``offset_s`` seconds into the run."""
        current = self.steps[0].rate
        for step in self.steps:
            if step.at_s > offset_s:
                break
            current = step.rate
        return current

    def arrivals(self, end_s: float) -> Iterator[float]:
        """Every scheduled send offset in ``[0, end_s)``, in order.

        Offsets are computed as ``step start + n / rate``, never by adding intervals, so a
        long run does not drift from its nominal rate by accumulated rounding.
        """
        for index, step in enumerate(self.steps):
            step_end = self.steps[index + 1].at_s if index + 1 < len(self.steps) else end_s
            step_end = min(step_end, end_s)
            if step.rate <= 0:
                continue
            n = 0
            while (offset := step.at_s + n / step.rate) < step_end:
                yield offset
                n += 1

    def expected_count(self, end_s: float) -> int:
        """How many requests ``arrivals(end_s)`` yields (for the progress line and checks)."""
        total = 0
        for index, step in enumerate(self.steps):
            step_end = self.steps[index + 1].at_s if index + 1 < len(self.steps) else end_s
            span = min(step_end, end_s) - step.at_s
            if span > 0 and step.rate > 0:
                total += math.ceil(span * step.rate - 1e-9)
        return total


@dataclass(frozen=True, slots=True)
class ClosedLoop:
    """``concurrency`` virtual users, each sending its next request when the last answered.

    Latency is measured from each actual send: a closed loop slows down with the server, so
    it measures service time under a fixed concurrency, not what arriving devices would see.
    """

    concurrency: int

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= 10_000:  # noqa: PLR2004 - the documented bound
            raise ValueError("concurrency must be from 1 to 10000")


#: How load is offered.
Load = OpenLoop | ClosedLoop
