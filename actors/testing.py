"""Fakes shipped for tests of the actor layer: clocks the test moves, and a reply inbox.

``ManualClock`` stands still until advanced (breaker, budget and window tests).
``ShiftedClock`` follows ``time.monotonic`` plus an offset the test advances: real waits
(gevent timeouts, sockets) still take real time, while a breaker's open window passes at
once. ``Inbox`` is a ``ReplyTarget`` for tests that submit calls to a backend actor
themselves. ``system_over`` builds an ``ActorSystem`` over ``backends.testing`` fakes, and
``run`` executes a plan on one with a deadline relative to now.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent.queue

from actors.messages import Reply
from actors.plan import Plan, RunResult
from actors.system import ActorSystem, BreakerListener
from backends.specs import BackendSpec
from backends.testing import FakeBackend


class ManualClock:
    """A clock that moves only when told; call it for the time."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


class ShiftedClock:
    """``time.monotonic()`` plus an offset that only grows."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    def advance(self, seconds: float) -> None:
        """Jump forward without waiting."""
        self.offset += seconds


class Inbox:
    """A reply target that queues what it is told."""

    def __init__(self) -> None:
        self.queue: gevent.queue.Queue[Reply] = gevent.queue.Queue()

    def tell(self, message: Reply) -> None:
        """Queue one reply."""
        self.queue.put(message)

    def next(self, timeout_s: float = 2.0) -> Reply:
        """The next reply; ``gevent.queue.Empty`` if none comes within ``timeout_s``."""
        reply: Reply = self.queue.get(timeout=timeout_s)
        return reply

    def empty(self) -> bool:
        """Whether no reply is waiting."""
        return bool(self.queue.empty())


def system_over(
    fakes: Iterable[FakeBackend],
    *,
    clock: Callable[[], float],
    seed: int = 0,
    on_breaker_change: BreakerListener | None = None,
    **spec_fields: Any,
) -> ActorSystem:
    """An actor system (not started) whose backends are ``fakes``, each with ``spec_fields``.

    Give the fakes the same ``clock``: they bound calls by the deadline on it.
    """
    by_name = {fake.name: fake for fake in fakes}
    specs = [BackendSpec(name, f"http://127.0.0.1:1/{name}", **spec_fields) for name in by_name]
    return ActorSystem(
        specs,
        lambda spec: by_name[spec.name],
        clock,
        seed=seed,
        on_breaker_change=on_breaker_change,
    )


def run(
    system: ActorSystem,
    plan: Plan,
    deadline_s: float = 2.0,
    *,
    clock: Callable[[], float] = time.monotonic,
    **params: Any,
) -> RunResult:
    """Execute ``plan`` with ``params`` and a deadline ``deadline_s`` after ``clock()``."""
    return system.execute(
        plan, params=params, member_id="m1", deadline=clock() + deadline_s, request_id="req-test"
    )
