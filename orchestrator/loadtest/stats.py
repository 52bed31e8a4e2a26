"""What happened to every request, bucketed by (phase, endpoint) and by second of the run.

``Recorder`` is fed by the runner and knows nothing of sockets or clocks: each call passes
offsets in seconds since the run started. Requests scheduled during warmup are counted
apart and kept out of every result.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from orchestrator.loadtest.histogram import LatencyHistogram, SparseHistogram
from orchestrator.loadtest.phase import PhaseMap

__all__ = ["Cell", "EndpointSecond", "Recorder", "SecondBin", "status_class"]

_MAX_SAMPLES = 40
_SAMPLE_CHARS = 300


def status_class(status: int) -> str:
    """``2xx``, ``3xx``, ``4xx``, ``5xx`` (anything else is ``other``)."""
    return f"{status // 100}xx" if 200 <= status < 600 else "other"  # noqa: PLR2004 - HTTP ranges


@dataclass(slots=True)
class Cell:
    """The results of one endpoint in one phase (or merged over several)."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    not_sent: int = 0
    degraded: int = 0
    degraded_by: Counter[str] = field(default_factory=Counter)
    #: Responses that carried ``Retry-After``, by ``"<status> <problem code>"`` (e.g.
    #: ``503 overloaded``: shed; ``503 dependency_unavailable``: a breaker or bulkhead said no).
    retry_after: Counter[str] = field(default_factory=Counter)

    @property
    def responses(self) -> int:
        """Requests answered with any HTTP status."""
        return sum(self.statuses.values())

    @property
    def sent(self) -> int:
        """Requests that went on the wire (answered or failed)."""
        return self.responses + sum(self.failures.values())

    @property
    def count(self) -> int:
        """Requests scheduled: sent, plus those the generator could not send."""
        return self.sent + self.not_sent

    def merge(self, other: Cell) -> None:
        """Add ``other``'s results into this cell."""
        self.latency.merge(other.latency)
        self.statuses.update(other.statuses)
        self.failures.update(other.failures)
        self.not_sent += other.not_sent
        self.degraded += other.degraded
        self.degraded_by.update(other.degraded_by)
        self.retry_after.update(other.retry_after)


@dataclass(slots=True)
class SecondBin:
    """One second of the run: latency of the requests scheduled in it, and what completed.
    (A sparse histogram: an HDR one preallocates ~190 kB, 680 MB for an hour's seconds.)"""

    latency: SparseHistogram = field(default_factory=SparseHistogram)
    scheduled: int = 0
    completed: int = 0
    failed: int = 0
    errors_5xx: int = 0
    not_sent: int = 0


@dataclass(slots=True)
class EndpointSecond:
    """One endpoint in one second of the run: what became of the requests *scheduled* in it
    (the same attribution as phases, so an endpoint's seconds add up to its cells)."""

    latency: SparseHistogram = field(default_factory=SparseHistogram)
    scheduled: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failed: int = 0
    not_sent: int = 0
    degraded: int = 0


class Recorder:
    """Accumulates outcomes; read ``cells``, ``series`` and the generator's own figures."""

    def __init__(self, phases: PhaseMap, warmup_s: float) -> None:
        self.phases = phases
        self.warmup_s = warmup_s
        self.cells: dict[tuple[int, str], Cell] = {}
        self.series: dict[int, SecondBin] = {}
        #: Per (second, endpoint), by scheduled second: O(1) a response, a few kB each (about
        #: 4 kB with 60 requests; a ``LatencyHistogram`` would be 190 kB).
        self.endpoint_series: dict[tuple[int, str], EndpointSecond] = {}
        self.send_lag = LatencyHistogram()
        self.warmup_requests = 0
        #: Latencies since the progress line last read them (``take_recent``).
        self.recent = LatencyHistogram()
        self.responses = 0
        self.failures = 0
        self.not_sent_total = 0
        #: The first few error responses per endpoint and status: why, not just how many.
        self.samples: dict[str, str] = {}

    def _cell(self, endpoint: str, scheduled_s: float) -> Cell:
        key = (self.phases.index(scheduled_s), endpoint)
        cell = self.cells.get(key)
        if cell is None:
            cell = self.cells[key] = Cell()
        return cell

    def _bin(self, offset_s: float) -> SecondBin:
        second = int(offset_s)
        found = self.series.get(second)
        if found is None:
            found = self.series[second] = SecondBin()
        return found

    def _endpoint_second(self, endpoint: str, scheduled_s: float) -> EndpointSecond:
        key = (int(scheduled_s), endpoint)
        found = self.endpoint_series.get(key)
        if found is None:
            found = self.endpoint_series[key] = EndpointSecond()
        return found

    def record(
        self,
        endpoint: str,
        scheduled_s: float,
        done_s: float,
        latency_s: float,
        *,
        status: int | None,
        failure: str | None = None,
        degraded: tuple[str, ...] = (),
        retry_after: str | None = None,
    ) -> None:
        """One request that was sent: answered with ``status``, or failed with ``failure``;
        ``retry_after`` names a response that carried ``Retry-After`` (``Cell.retry_after``)."""
        if scheduled_s < self.warmup_s:
            self.warmup_requests += 1
            return
        cell = self._cell(endpoint, scheduled_s)
        cell.latency.record(latency_s)
        self.recent.record(latency_s)
        scheduled_bin = self._bin(scheduled_s)
        scheduled_bin.latency.record(latency_s)
        scheduled_bin.scheduled += 1
        done_bin = self._bin(done_s)
        second = self._endpoint_second(endpoint, scheduled_s)
        second.latency.record(latency_s)
        second.scheduled += 1
        if status is not None:
            cell.statuses[status_class(status)] += 1
            second.statuses[status_class(status)] += 1
            self.responses += 1
            done_bin.completed += 1
            if status >= 500:  # noqa: PLR2004 - server errors
                done_bin.errors_5xx += 1
        else:
            cell.failures[failure or "unknown"] += 1
            self.failures += 1
            done_bin.failed += 1
            second.failed += 1
        if degraded:
            cell.degraded += 1
            second.degraded += 1
            cell.degraded_by.update(degraded)
        if retry_after is not None:
            cell.retry_after[retry_after] += 1

    def take_recent(self) -> LatencyHistogram:
        """The latencies recorded since the last call (and start afresh)."""
        recent, self.recent = self.recent, LatencyHistogram()
        return recent

    def sample(self, endpoint: str, what: str, detail: str) -> None:
        """Keep the first ``detail`` seen for an endpoint's error ``what`` (e.g. ``503``)."""
        key = f"{endpoint} {what}"
        if key not in self.samples and len(self.samples) < _MAX_SAMPLES:
            self.samples[key] = detail[:_SAMPLE_CHARS]

    def not_sent(self, endpoint: str, scheduled_s: float) -> None:
        """A request the generator did not send: too many were already in flight."""
        if scheduled_s < self.warmup_s:
            self.warmup_requests += 1
            return
        self._cell(endpoint, scheduled_s).not_sent += 1
        bucket = self._bin(scheduled_s)
        bucket.scheduled += 1
        bucket.not_sent += 1
        second = self._endpoint_second(endpoint, scheduled_s)
        second.scheduled += 1
        second.not_sent += 1
        self.not_sent_total += 1

    def sent_late(self, lag_s: float) -> None:
        """How late the generator put a request on the wire after its scheduled time."""
        self.send_lag.record(lag_s)
