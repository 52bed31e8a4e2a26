"""Admission control: a bound on requests in flight in this process.

Beyond the bound a request is shed with 503 and ``Retry-After`` before any parsing or
backend work, so rejection costs microseconds while admitted requests keep their latency.
Under gevent there is no preemption between the check and the increment: no lock needed.
"""

from __future__ import annotations


class Admission:
    """Counts requests in flight; ``try_enter`` fails once ``max_inflight`` are running."""

    def __init__(self, max_inflight: int) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be >= 1")
        self.max_inflight = max_inflight
        self.inflight = 0
        self.shed = 0

    def try_enter(self) -> bool:
        """Admit one request, or count it as shed."""
        if self.inflight >= self.max_inflight:
            self.shed += 1
            return False
        self.inflight += 1
        return True

    def leave(self) -> None:
        """An admitted request finished."""
        self.inflight -= 1
