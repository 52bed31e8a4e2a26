"""What one process knows of its backends and endpoints, for operators.

``BackendView`` and ``BackendViews`` are what the actor system provides (implemented in
``actors/system.py`` over each backend's state); ``EndpointWindows`` is kept by the app:
per endpoint, plans in flight and a rolling window of outcomes and latency. The admin
routes, the live dashboard and the gauges read these, through ``orchestrator/ops/instance.py``
when they speak for every worker of the instance.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Final, Protocol

from actors.outcomes import BreakerState, Outcome
from actors.stats import WindowStats, WindowTotals
from actors.system import AdaptiveTotals
from orchestrator.ops.metrics import BackendGauges, EndpointLike, GaugeSnapshot

__all__ = [
    "BackendView",
    "BackendViews",
    "EndpointInfo",
    "EndpointWindows",
    "endpoint_outcome",
    "gauge_snapshot",
]

_GATEWAY_TIMEOUT: Final = 504
_SERVER_ERROR: Final = 500
_CLIENT_ERROR: Final = 400


class BackendView(Protocol):
    """One backend as operators see it; implemented in ``actors/`` over ``BackendState``."""

    @property
    def name(self) -> str:
        """The configured backend name."""
        ...

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half_open``: the state callers see (override applied)."""
        ...

    @property
    def breaker_override(self) -> str | None:
        """``open`` or ``closed`` while an operator forces it, else None."""
        ...

    @property
    def breaker_changed_at(self) -> float | None:
        """When the state last changed, on the system's clock (``time.monotonic``); None if
        it never changed."""
        ...

    @property
    def inflight(self) -> int:
        """Calls running now."""
        ...

    @property
    def queued(self) -> int:
        """Calls waiting for a bulkhead slot."""
        ...

    @property
    def max_concurrent(self) -> int:
        """Bulkhead size."""
        ...

    @property
    def max_queue(self) -> int:
        """Bulkhead queue size."""
        ...

    @property
    def limit(self) -> int | None:
        """The adaptive concurrency limit now (calls allowed in flight, at most
        ``max_concurrent``); None unless the backend has ``limit.adaptive``."""
        ...

    @property
    def adaptive(self) -> AdaptiveTotals | None:
        """Hedges sent and won, calls collapsed in and sent out, since start; a mechanism
        the backend does not turn on has None fields; None when it has neither."""
        ...

    def window_totals(self) -> WindowTotals:
        """The backend's window (``WindowStats.totals()``)."""
        ...

    def force_breaker(self, force: str) -> None:
        """Apply ``open``, ``closed`` or ``clear`` (back to automatic) now."""
        ...


class BackendViews(Protocol):
    """Every backend's view (the actor system)."""

    def backend_views(self) -> Sequence[BackendView]:
        """One view per backend, any order."""
        ...


def gauge_snapshot(
    views: Iterable[BackendView], frontend_inflight: int, shed_total: int
) -> GaugeSnapshot:
    """The metrics gauges from the same views: ``breaker_open`` is 1 unless closed."""
    return GaugeSnapshot(
        backends={
            view.name: BackendGauges(
                inflight=view.inflight,
                queued=view.queued,
                breaker_open=view.breaker_state != BreakerState.CLOSED,
                limit=view.limit,
            )
            for view in views
        },
        frontend_inflight=frontend_inflight,
        shed_total=shed_total,
    )


class EndpointInfo(EndpointLike, Protocol):
    """What the admin view shows of an endpoint declaration: the naming fields plus the route."""

    @property
    def method(self) -> str:
        """HTTP method."""
        ...

    @property
    def path(self) -> str:
        """Path template."""
        ...


def endpoint_outcome(status: int) -> Outcome:
    """A response status as a window outcome: 504 ``timeout``, 5xx ``failure``, 4xx
    ``client_error`` (the device's doing: nobody's failure), else ``success``."""
    if status == _GATEWAY_TIMEOUT:
        return Outcome.TIMEOUT
    if status >= _SERVER_ERROR:
        return Outcome.FAILURE
    if status >= _CLIENT_ERROR:
        return Outcome.CLIENT_ERROR
    return Outcome.SUCCESS


# Looked up once, for ``EndpointWindows.record`` (every request): on Python 3.11 naming an
# enum member (``Outcome.SUCCESS``) costs a class look-up of ~70 ns, a dict look-up ~20.
_STATUS_OUTCOMES: Final = {status: endpoint_outcome(status) for status in range(100, 600)}
_FALLBACK: Final = Outcome.FALLBACK


class _EndpointSlot:
    __slots__ = ("inflight", "info", "stats")

    def __init__(self, info: EndpointInfo, stats: WindowStats) -> None:
        self.info = info
        self.stats = stats
        self.inflight = 0


class EndpointWindows:
    """Per-endpoint 10 s windows and in-flight counts, keyed ``"{api}.{name}"``.

    Unknown keys are ignored (this runs on every request and must never raise).
    """

    def __init__(
        self,
        endpoints: Iterable[EndpointInfo],
        *,
        window_s: float = 10.0,
        buckets: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._slots = {
            f"{e.api}.{e.name}": _EndpointSlot(e, WindowStats(window_s, buckets, clock))
            for e in endpoints
        }

    @contextlib.contextmanager
    def running(self, key: str) -> Iterator[None]:
        """Count one plan in flight for the endpoint while the block runs."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.inflight += 1
        try:
            yield
        finally:
            if slot is not None:
                slot.inflight -= 1

    def record(
        self, key: str, status: int, latency_ms: float | None, *, degraded: bool = False
    ) -> None:
        """One finished request of the endpoint; ``latency_ms`` None for one answered before
        its plan ran (invalid parameters, say): its status counts, its 0.3 ms does not
        flatter the endpoint's latency (as in the statsd timers)."""
        slot = self._slots.get(key)
        if slot is None:
            return
        slot.stats.record(_STATUS_OUTCOMES.get(status) or endpoint_outcome(status), latency_ms)
        if degraded and status < _CLIENT_ERROR:
            slot.stats.record(_FALLBACK)

    def totals(self) -> list[tuple[EndpointInfo, int, WindowTotals]]:
        """Every endpoint's declaration, in-flight plans and window, sorted by key."""
        return [
            (slot.info, slot.inflight, slot.stats.totals())
            for _, slot in sorted(self._slots.items())
        ]
