"""Rolling-window statistics for the admin view: what a backend or endpoint did lately.

``WindowStats`` counts outcomes and a latency histogram over the last ``window_s`` seconds
in ``buckets`` time slices (a ring), so memory is fixed whatever the traffic and recording
is O(1): one slice look-up, one counter, one bisect over a short tuple of bounds. A slice
older than the window is reset lazily when its turn comes round again, so nothing runs
on a timer. The newest slice is partial: a snapshot covers between ``window_s * (n-1)/n``
and ``window_s`` seconds of history, the usual trade of a bucketed window.

Plain class, no actors, no I/O; the clock is injected. It is called from a backend actor's
mailbox and from request greenlets, so ``record`` never raises.

``WindowTotals`` is a window's totals as plain data: what one worker process sends another
(``to_json``/``from_json``), and what windows of several workers add up to (``merge``:
counts and histograms add, so the instance's percentiles are read from the merged
histogram, not averaged from each worker's).
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from actors.outcomes import WINDOW_COLUMNS, Outcome

__all__ = ["LATENCY_BOUNDS_MS", "WindowStats", "WindowTotals"]

#: Outcome -> its counter's place in a slice (the columns are ``WINDOW_COLUMNS``).
_COLUMN_INDEX: Final[dict[str, int]] = {
    outcome: index for index, outcome in enumerate(WINDOW_COLUMNS)
}

#: Upper bounds (ms) of the latency histogram; roughly 1.5x apart, so a percentile read
#: from it is within one bucket (at most ~50%) of the truth, then capped by the real max.
LATENCY_BOUNDS_MS: Final = (
    1.0, 2.0, 3.0, 5.0, 7.5, 10.0, 15.0, 20.0, 30.0, 50.0, 75.0, 100.0,
    150.0, 200.0, 300.0, 500.0, 750.0, 1_000.0, 1_500.0, 2_000.0, 3_000.0, 5_000.0,
    10_000.0, math.inf,
)  # fmt: skip


class _Slice:
    """One time slice: outcome counts, latency histogram, largest latency."""

    __slots__ = ("counts", "epoch", "histogram", "max_ms")

    def __init__(self) -> None:
        self.epoch = -1
        self.counts = [0] * len(WINDOW_COLUMNS)
        self.histogram = [0] * len(LATENCY_BOUNDS_MS)
        self.max_ms = 0.0

    def reset(self, epoch: int) -> None:
        self.epoch = epoch
        for index in range(len(self.counts)):
            self.counts[index] = 0
        for index in range(len(self.histogram)):
            self.histogram[index] = 0
        self.max_ms = 0.0


class WindowStats:
    """Outcome counts and latency percentiles over a rolling window of ``window_s`` seconds."""

    def __init__(
        self,
        window_s: float = 10.0,
        buckets: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not (window_s > 0 and math.isfinite(window_s)) or buckets < 1:
            raise ValueError("window_s must be a positive number and buckets >= 1")
        self.window_s = window_s
        self._width_s = window_s / buckets
        self._clock = clock
        self._slices = tuple(_Slice() for _ in range(buckets))

    def record(self, outcome: str, latency_ms: float | None = None) -> None:
        """Count one ``outcome`` (an ``Outcome``, or its value), with its latency if it has one.

        An outcome that is no column is ignored rather than raised: this runs inside actor
        handlers, where an exception would stop the actor. Negative or non-finite latencies
        are ignored for the same reason (a clock step must not poison the histogram).
        """
        index = _COLUMN_INDEX.get(outcome)
        if index is None:
            return
        current = self._current()
        current.counts[index] += 1
        if latency_ms is not None and 0.0 <= latency_ms < math.inf:
            current.histogram[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1
            current.max_ms = max(current.max_ms, latency_ms)

    def snapshot(self) -> dict[str, Any]:
        """Totals over the window: ``calls``, one count per column, and ``latency_ms``
        (``WindowTotals.snapshot``)."""
        return self.totals().snapshot()

    def totals(self) -> WindowTotals:
        """The window's counts, latency histogram and largest latency, as plain data."""
        counts = [0] * len(WINDOW_COLUMNS)
        histogram = [0] * len(LATENCY_BOUNDS_MS)
        max_ms = 0.0
        oldest = self._epoch(self._clock()) - len(self._slices) + 1
        for part in self._slices:
            if part.epoch < oldest:
                continue
            for index, count in enumerate(part.counts):
                counts[index] += count
            for index, count in enumerate(part.histogram):
                histogram[index] += count
            max_ms = max(max_ms, part.max_ms)
        return WindowTotals(self.window_s, tuple(counts), tuple(histogram), max_ms)

    def _epoch(self, now: float) -> int:
        return math.floor(now / self._width_s)

    def _current(self) -> _Slice:
        epoch = self._epoch(self._clock())
        part = self._slices[epoch % len(self._slices)]
        if part.epoch != epoch:
            part.reset(epoch)
        return part


@dataclass(frozen=True, slots=True)
class WindowTotals:
    """One window's totals: a count per ``WINDOW_COLUMNS`` column, the latency histogram
    over ``LATENCY_BOUNDS_MS`` and the largest latency seen."""

    window_s: float
    counts: tuple[int, ...]
    histogram: tuple[int, ...]
    max_ms: float

    @classmethod
    def empty(cls, window_s: float = 10.0) -> WindowTotals:
        """No calls at all."""
        return cls(window_s, (0,) * len(WINDOW_COLUMNS), (0,) * len(LATENCY_BOUNDS_MS), 0.0)

    @classmethod
    def merge(cls, parts: Iterable[WindowTotals]) -> WindowTotals:
        """The sum of several windows (one per worker): counts and histograms add, the
        largest latency is the largest of all. No parts: an empty 10 s window."""
        items = list(parts)
        if not items:
            return cls.empty()
        counts = [sum(column) for column in zip(*(p.counts for p in items), strict=True)]
        histogram = [sum(bucket) for bucket in zip(*(p.histogram for p in items), strict=True)]
        return cls(
            max(p.window_s for p in items),
            tuple(counts),
            tuple(histogram),
            max(p.max_ms for p in items),
        )

    def snapshot(self) -> dict[str, Any]:
        """Totals over the window: ``calls``, one count per column, and ``latency_ms``.

        ``latency_ms`` holds ``samples``, ``p50``, ``p99`` and ``max`` (None without samples).
        A percentile is the upper bound of the histogram bucket it falls in, capped at the
        largest latency seen: never lower than the truth, at most one bucket higher.
        """
        result: dict[str, Any] = {"window_s": self.window_s}
        columns = zip(WINDOW_COLUMNS.items(), self.counts, strict=True)
        result["calls"] = 0
        for (outcome, key), count in columns:
            result[key] = count
            if outcome is not Outcome.FALLBACK:  # steps that fell back, not calls
                result["calls"] += count
        histogram = list(self.histogram)
        samples = sum(histogram)
        result["latency_ms"] = {
            "samples": samples,
            "p50": _percentile(histogram, samples, 0.50, self.max_ms),
            "p99": _percentile(histogram, samples, 0.99, self.max_ms),
            "max": round(self.max_ms, 3) if samples else None,
        }
        return result

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: ``window_s``, ``counts`` (keyed by column), ``histogram``, ``max_ms``."""
        return {
            "window_s": self.window_s,
            "counts": dict(zip(WINDOW_COLUMNS.values(), self.counts, strict=True)),
            "histogram": list(self.histogram),
            "max_ms": self.max_ms,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WindowTotals:
        """Read ``to_json``'s output; ``ValueError`` for anything else (a peer is not
        trusted to be of the same version: an unknown column or bound count is refused)."""
        try:
            counts_by_key = data["counts"]
            histogram = tuple(int(count) for count in data["histogram"])
            window_s = float(data["window_s"])
            max_ms = float(data["max_ms"])
            counts = tuple(int(counts_by_key[key]) for key in WINDOW_COLUMNS.values())
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a window: {exc}") from None
        if len(histogram) != len(LATENCY_BOUNDS_MS) or set(counts_by_key) != set(
            WINDOW_COLUMNS.values()
        ):
            raise ValueError("not a window of this version (columns or latency bounds differ)")
        return cls(window_s, counts, histogram, max_ms)


def _percentile(histogram: list[int], samples: int, quantile: float, max_ms: float) -> float | None:
    if samples == 0:
        return None
    rank = max(1, math.ceil(quantile * samples))
    seen = 0
    for bound, count in zip(LATENCY_BOUNDS_MS, histogram, strict=True):
        seen += count
        if seen >= rank:
            return round(min(bound, max_ms), 3)
    return round(max_ms, 3)  # pragma: no cover - the last bound is infinite
