"""Fakes shipped for tests and benchmarks: in-process backends whose calls the test drives.

``FakeBackend`` satisfies the same calling contract as ``backends.client.BackendClient``
(``call(request, deadline=, request_id=)``), honours the deadline the same way (a total
bound that raises ``BackendTimeoutError``), and records when each call started and
finished in a shared ``EventLog``, so tests prove ordering from events, not wall clocks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gevent

from backends.errors import BackendDeadlineError, BackendTimeoutError
from backends.transport import BackendRequest

#: Decides one call's reply; may block cooperatively (gevent) or raise ``BackendError``.
Handler = Callable[[BackendRequest], Any]


@dataclass(slots=True)
class EventLog:
    """An ordered record of ``(event, backend, target)`` tuples, shared by fakes."""

    events: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, event: str, backend: str, target: str) -> None:
        """Append one event."""
        self.events.append((event, backend, target))

    def index(self, event: str, backend: str, target: str | None = None) -> int:
        """Position of the first matching event; ``ValueError`` if absent."""
        for position, (kind, name, where) in enumerate(self.events):
            if kind == event and name == backend and (target is None or where == target):
                return position
        raise ValueError(f"no {event} event for {backend} {target or ''}")


def echo(request: BackendRequest) -> Any:
    """Default handler: answer with what was asked."""
    return {"path": request.target(), "body": request.body}


class FakeBackend:
    """An in-process backend: ``handler`` answers, ``log`` records starts and finishes."""

    def __init__(
        self,
        name: str,
        handler: Handler = echo,
        log: EventLog | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.handler = handler
        self.log = log if log is not None else EventLog()
        self.calls = 0
        self.running = 0
        #: Set by ``close`` (the actor system closes its clients when it stops).
        self.closed = False
        self.max_running = 0
        self._clock = clock

    def call(self, request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        """Run the handler within the deadline, recording start and finish."""
        del request_id
        budget = deadline - self._clock()
        if budget <= 0:
            raise BackendDeadlineError("deadline passed before send")
        self.calls += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        target = request.target()
        self.log.add("start", self.name, target)
        try:
            with gevent.Timeout(budget, BackendTimeoutError("fake backend timed out")):
                return self.handler(request)
        finally:
            self.running -= 1
            self.log.add("finish", self.name, target)

    def close(self) -> None:
        """Nothing to release; remembered, so tests can see who closed it."""
        self.closed = True
