"""Rolling counts: two counters summed over a sliding time window, in fixed buckets.

Used by the circuit breaker (calls, failures) and the retry budget (calls, retries). Memory
is O(buckets) whatever the traffic, and each operation is amortised O(1): running sums are
kept, and a bucket's counts are subtracted once, when it falls out of the window (the way
Hystrix's rolling number works).
"""

from __future__ import annotations

from collections.abc import Callable

#: Buckets per window: Hystrix's default, a window that slides in tenths.
DEFAULT_BUCKETS = 10


class RollingCounts:
    """Two counters (``first``, ``second``) over the last ``window_s`` seconds.

    The window covers the current bucket and the ``buckets - 1`` before it, so a count
    leaves the totals between ``window_s * (buckets - 1) / buckets`` and ``window_s``
    after it was added.
    """

    __slots__ = ("_bucket_s", "_buckets", "_clock", "_firsts", "_index", "_seconds", "_sums")

    def __init__(
        self, window_s: float, clock: Callable[[], float], buckets: int = DEFAULT_BUCKETS
    ) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self._bucket_s = window_s / buckets
        self._buckets = buckets
        self._clock = clock
        self._firsts = [0] * buckets
        self._seconds = [0] * buckets
        self._sums = [0, 0]
        self._index = self._bucket_index()

    def add(self, first: int = 0, second: int = 0) -> None:
        """Add to the current bucket."""
        self._advance()
        slot = self._index % self._buckets
        self._firsts[slot] += first
        self._seconds[slot] += second
        self._sums[0] += first
        self._sums[1] += second

    def totals(self) -> tuple[int, int]:
        """``(first, second)`` summed over the window."""
        self._advance()
        return self._sums[0], self._sums[1]

    def clear(self) -> None:
        """Forget everything counted so far."""
        for slot in range(self._buckets):
            self._firsts[slot] = self._seconds[slot] = 0
        self._sums[0] = self._sums[1] = 0

    def _bucket_index(self) -> int:
        return int(self._clock() // self._bucket_s)

    def _advance(self) -> None:
        index = self._bucket_index()
        gap = index - self._index
        if gap <= 0:  # same bucket (or a clock that went back: keep counting in this one)
            return
        if gap >= self._buckets:
            self.clear()
        else:
            for skipped in range(self._index + 1, index + 1):
                slot = skipped % self._buckets
                self._sums[0] -= self._firsts[slot]
                self._sums[1] -= self._seconds[slot]
                self._firsts[slot] = self._seconds[slot] = 0
        self._index = index
