"""A typed adapter around ``hdrh.histogram.HdrHistogram`` for latencies in seconds.

HDR histograms keep every latency from 1 µs to an hour at three significant digits in a
fixed amount of memory, so percentiles are exact to 0.1% however long the run, and two
histograms merge losslessly (per-phase into per-run, per-endpoint into overall). The
``hdrhistogram`` package has no type hints; this module is the only one that touches it.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "LatencyHistogram", "SparseHistogram"]

_LOWEST_US = 1
_HIGHEST_US = 3_600_000_000
_SIGNIFICANT_DIGITS = 3

#: The percentiles every report shows, with their column names.
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
)


class LatencyHistogram:
    """Latencies recorded in seconds, read back in milliseconds."""

    __slots__ = ("_hdr",)

    def __init__(self) -> None:
        self._hdr: Any = HdrHistogram(_LOWEST_US, _HIGHEST_US, _SIGNIFICANT_DIGITS)

    def record(self, seconds: float) -> None:
        """Add one latency; values beyond the range are clamped, never dropped."""
        micros = round(seconds * 1_000_000)
        self._hdr.record_value(min(max(micros, _LOWEST_US), _HIGHEST_US))

    @property
    def count(self) -> int:
        """How many latencies were recorded."""
        return int(self._hdr.get_total_count())

    def percentile_ms(self, percentile: float) -> float:
        """The latency at ``percentile`` (0-100) in ms; 0.0 when empty."""
        if not self.count:
            return 0.0
        return int(self._hdr.get_value_at_percentile(percentile)) / 1000.0

    def max_ms(self) -> float:
        """The largest latency recorded (to the histogram's precision) in ms."""
        return int(self._hdr.get_max_value()) / 1000.0 if self.count else 0.0

    def mean_ms(self) -> float:
        """The mean latency in ms (each value at the middle of its bucket, as HdrHistogram
        computes it); 0.0 when empty."""
        count = self.count
        if not count:
            return 0.0
        middle = self._hdr._hdr_median_equiv_value  # noqa: SLF001 - hdrh's own definition
        total = sum(int(middle(value)) * times for value, times in self._recorded())
        return total / count / 1000.0

    def _recorded(self) -> list[tuple[int, int]]:
        """(lowest value of the bucket in µs, count) for every bucket with a count, in
        order. hdrh's own iterators step through every bucket in Python (~0.2 s a
        histogram); a slice of its counts array is a few hundred times faster."""
        hdr = self._hdr
        last = int(hdr.get_counts_array_index(hdr.get_max_value()))
        counts = hdr.counts[: last + 1]
        return [(int(hdr.get_value_from_index(i)), int(n)) for i, n in enumerate(counts) if n]

    def summary_ms(self) -> dict[str, float]:
        """``p50``, ``p90``, ``p99``, ``p99.9``, ``max`` and ``mean`` in ms."""
        summary = {name: self.percentile_ms(value) for name, value in PERCENTILES}
        summary["max"] = self.max_ms()
        summary["mean"] = round(self.mean_ms(), 3)
        return summary

    def merge(self, other: LatencyHistogram) -> None:
        """Add every value of ``other`` into this histogram."""
        self._hdr.add(other._hdr)

    @classmethod
    def decode(cls, encoded: str) -> LatencyHistogram:
        """A histogram from ``encode``'s text (a saved report's cells can be merged again)."""
        histogram = cls()
        histogram._hdr.add(HdrHistogram.decode(encoded.encode("ascii")))
        return histogram

    def value_at_rank_ms(self, rank: int) -> float:
        """The ``rank``-th smallest latency (1-based, clamped to 1..count) in ms, to the
        histogram's precision; 0.0 when empty. Confidence intervals of a percentile are read
        at ranks (``compare``)."""
        count = self.count
        if not count:
            return 0.0
        rank = min(max(rank, 1), count)
        # hdrh finds the first value whose cumulative count reaches
        # int(percentile * count / 100 + 0.5): exactly ``rank`` for this percentile.
        return int(self._hdr.get_value_at_percentile(100.0 * rank / count)) / 1000.0

    def percentile_curve_ms(self) -> list[tuple[float, float]]:
        """``(percentile, latency ms)`` at each recorded value's highest rank, ascending:
        the points of HdrHistogram's "percentile distribution" plot."""
        count = self.count
        points: list[tuple[float, float]] = []
        seen = 0
        for value, times in self._recorded():
            seen += times
            highest = int(self._hdr.get_highest_equivalent_value(value))
            points.append((100.0 * seen / count, highest / 1000.0))
        return points

    def encode(self) -> str:
        """The standard compressed, base64 HdrHistogram encoding (readable by HdrHistogram
        tools in any language)."""
        encoded = self._hdr.encode()
        return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)


#: 8 bits of mantissa: 128 linear sub-buckets per power of two, each < 0.8% wide.
_SUB_BUCKET_BITS = 8


class SparseHistogram:
    """A small log-linear histogram of latencies for one second (of the run, or of one
    endpoint).

    ``LatencyHistogram`` preallocates about 190 kB to cover 1 µs to 1 h at 3 significant
    digits; one per endpoint per second of an hour-long run would not fit in memory. This one
    holds only the buckets it saw (a dict), records in O(1) and reads percentiles to within
    0.8% (the bucket's upper bound): plenty for a per-second chart.
    """

    __slots__ = ("_buckets", "count", "max_us", "sum_us")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.max_us = 0
        self.sum_us = 0

    def record(self, seconds: float) -> None:
        """Add one latency (clamped to 1 µs .. 1 h, like ``LatencyHistogram``)."""
        micros = min(max(round(seconds * 1_000_000), _LOWEST_US), _HIGHEST_US)
        key = _bucket(micros)
        self._buckets[key] = self._buckets.get(key, 0) + 1
        self.count += 1
        self.sum_us += micros
        self.max_us = max(self.max_us, micros)

    def percentile_ms(self, percentile: float) -> float:
        """The latency at ``percentile`` (0-100) in ms, as HDR reads it (the value whose
        cumulative count first reaches ``percentile`` of the total); 0.0 when empty."""
        if not self.count:
            return 0.0
        wanted = max(1, int(percentile * self.count / 100.0 + 0.5))
        seen = 0
        for key in sorted(self._buckets):
            seen += self._buckets[key]
            if seen >= wanted:
                return min(_upper(key), self.max_us) / 1000.0
        return self.max_us / 1000.0

    def summary_ms(self, *, full: bool = False) -> dict[str, float]:
        """``p50``, ``p90``, ``p99`` and ``max`` in ms; with ``full`` also ``p99.9`` and
        ``mean``, the keys of ``LatencyHistogram.summary_ms``."""
        chosen = PERCENTILES if full else PERCENTILES[:3]
        summary = {name: self.percentile_ms(value) for name, value in chosen}
        summary["max"] = self.max_us / 1000.0
        if full:
            summary["mean"] = round(self.sum_us / self.count / 1000.0, 3) if self.count else 0.0
        return summary


def _bucket(micros: int) -> int:
    shift = max(0, micros.bit_length() - _SUB_BUCKET_BITS)
    return (shift << _SUB_BUCKET_BITS) + (micros >> shift)


def _upper(key: int) -> int:
    shift, mantissa = key >> _SUB_BUCKET_BITS, key & ((1 << _SUB_BUCKET_BITS) - 1)
    return ((mantissa + 1) << shift) - 1
