"""A typed adapter around ``hdrh.histogram.HdrHistogram`` for latencies in seconds.

HDR histograms keep every latency from 1 µs to an hour at three significant digits in a
fixed amount of memory, so percentiles are exact to 0.1% however long the run, and two
histograms merge losslessly (per-phase into per-run, per-endpoint into overall). The
``hdrhistogram`` package has no type hints; this module is the only one that touches it.
"""

from __future__ import annotations

from typing import Any

from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "LatencyHistogram"]

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
        """The mean latency in ms; 0.0 when empty."""
        return float(self._hdr.get_mean_value()) / 1000.0 if self.count else 0.0

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

    def encode(self) -> str:
        """The standard compressed, base64 HdrHistogram encoding (readable by HdrHistogram
        tools in any language)."""
        encoded = self._hdr.encode()
        return encoded.decode("ascii") if isinstance(encoded, bytes) else str(encoded)
