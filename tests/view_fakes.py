"""Stand-ins for what the actor system and the packages give the operator views
(``orchestrator/ops/views.py``): backend views over plain fields with a real window, the
system that lists them, an endpoint declaration and a clock the test moves. Shared by the
admin, dashboard and worker-channel tests."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from actors.stats import WindowStats, WindowTotals
from actors.system import AdaptiveTotals
from orchestrator.ops.views import BackendView


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeBackend:
    """A ``BackendView`` over plain fields, with a real ``WindowStats``; a force is applied
    as the real breaker applies it, and remembered in ``forced``."""

    name: str
    stats: WindowStats = field(default_factory=WindowStats)
    breaker_state: str = "closed"
    breaker_override: str | None = None
    breaker_changed_at: float | None = None
    inflight: int = 0
    queued: int = 0
    max_concurrent: int = 10
    max_queue: int = 0
    limit: int | None = None
    adaptive: AdaptiveTotals | None = None
    forced: list[str] = field(default_factory=list)
    #: When set, a force stamps ``breaker_changed_at`` with it.
    clock: Callable[[], float] | None = None

    def window_totals(self) -> WindowTotals:
        """The window's totals."""
        return self.stats.totals()

    def force_breaker(self, force: str) -> None:
        """Apply an override the way the real breaker does."""
        self.forced.append(force)
        self.breaker_override = None if force == "clear" else force
        self.breaker_state = "closed" if force == "clear" else force
        if self.clock is not None:
            self.breaker_changed_at = self.clock()


class FakeSystem:
    """``BackendViews`` over fakes (a list, or a dict by name: the views are its values)."""

    def __init__(self, backends: Iterable[FakeBackend] | dict[str, FakeBackend]) -> None:
        self.backends = backends

    def backend_views(self) -> list[BackendView]:
        """Every view."""
        found = self.backends.values() if isinstance(self.backends, dict) else self.backends
        return list(found)


@dataclass(frozen=True)
class Decl:
    """A stand-in endpoint declaration."""

    api: str
    name: str
    team: str
    method: str
    path: str
