"""The HDR histogram adapter: percentiles in ms, clamping, merging."""

from __future__ import annotations

import pytest

from orchestrator.loadtest.histogram import LatencyHistogram


def _filled(values_ms):
    histogram = LatencyHistogram()
    for value in values_ms:
        histogram.record(value / 1000.0)
    return histogram


def test_percentiles_are_within_a_tenth_of_a_percent():
    """1..1000 ms uniformly: p50 ~ 500 ms, p99 ~ 990 ms, max ~ 1000 ms (3 significant digits)."""
    histogram = _filled(range(1, 1001))
    summary = histogram.summary_ms()
    assert summary["p50"] == pytest.approx(500, rel=1e-3)
    assert summary["p99"] == pytest.approx(990, rel=1e-3)
    assert summary["p99.9"] == pytest.approx(999, rel=1e-3)
    assert summary["max"] == pytest.approx(1000, rel=1e-3)
    assert histogram.count == 1000


def test_an_empty_histogram_reads_zero():
    """No values: every figure is 0, nothing raises."""
    assert set(LatencyHistogram().summary_ms().values()) == {0.0}


def test_values_out_of_range_are_clamped_not_lost():
    """Zero and ten hours are still counted."""
    histogram = LatencyHistogram()
    histogram.record(0.0)
    histogram.record(36_000.0)
    assert histogram.count == 2
    assert histogram.max_ms() == pytest.approx(3_600_000, rel=1e-3)


def test_merge_adds_counts():
    """Merging two histograms keeps every value."""
    first, second = _filled([1, 2, 3]), _filled([100])
    first.merge(second)
    assert first.count == 4
    assert first.max_ms() == pytest.approx(100, rel=1e-3)


def test_encode_gives_a_base64_string():
    """The standard encoding is text, fit for JSON."""
    assert isinstance(_filled([5]).encode(), str)
