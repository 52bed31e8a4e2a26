"""Bulkhead: a bounded number of calls running and a bounded number waiting.

A plain class owned by one backend actor (so no locking): admission happens before a
call is queued, which keeps the actor's work and memory bounded whatever the offered load.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Admission(enum.Enum):
    """What the bulkhead decided for one call."""

    RUN = "run"
    QUEUE = "queue"
    REJECT = "reject"


class Bulkhead(Generic[T]):
    """At most ``max_concurrent`` running and ``max_queue`` waiting; beyond that, reject."""

    def __init__(self, max_concurrent: int, max_queue: int) -> None:
        if max_concurrent < 1 or max_queue < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queue >= 0")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.running = 0
        self._waiting: deque[T] = deque()

    @property
    def queued(self) -> int:
        """How many calls wait for a slot."""
        return len(self._waiting)

    def admit(self, item: T) -> Admission:
        """Take a slot (RUN), a place in the queue (QUEUE), or neither (REJECT)."""
        if self.running < self.max_concurrent:
            self.running += 1
            return Admission.RUN
        if len(self._waiting) < self.max_queue:
            self._waiting.append(item)
            return Admission.QUEUE
        return Admission.REJECT

    def release(self) -> T | None:
        """Give back a slot; hand it straight to the oldest waiting item, if any."""
        if self._waiting:
            return self._waiting.popleft()  # the slot passes on: running is unchanged
        self.running -= 1
        return None

    def drain(self) -> list[T]:
        """Remove and return every waiting item (on shutdown or restart)."""
        waiting = list(self._waiting)
        self._waiting.clear()
        return waiting
