"""The per-second sparse histogram, and the HDR histogram's rank and curve readings."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest

from orchestrator.loadtest.histogram import LatencyHistogram, SparseHistogram


def test_sparse_percentiles_are_within_one_percent_of_hdr():
    """Log-normal latencies from 0.1 ms to seconds: every percentile within 0.8%."""
    rng = random.Random(5)
    sparse, hdr = SparseHistogram(), LatencyHistogram()
    for _ in range(20_000):
        value = rng.lognormvariate(-3, 1.2)
        sparse.record(value)
        hdr.record(value)
    for percentile in (1, 50, 90, 99, 99.9):
        assert sparse.percentile_ms(percentile) == pytest.approx(
            hdr.percentile_ms(percentile), rel=0.008
        )
    assert sparse.summary_ms()["max"] == pytest.approx(hdr.max_ms(), rel=1e-3)
    assert len(sparse._buckets) < 1500


def test_a_full_summary_has_the_hdr_summarys_keys_and_values():
    """The run's per-second series uses the sparse histogram: the same six figures as an
    HDR summary (percentiles within 0.8%, max and mean within rounding)."""
    rng = random.Random(7)
    sparse, hdr = SparseHistogram(), LatencyHistogram()
    for _ in range(5_000):
        value = rng.lognormvariate(-3, 1.0)
        sparse.record(value)
        hdr.record(value)
    full, reference = sparse.summary_ms(full=True), hdr.summary_ms()
    assert list(full) == list(reference)
    for key, value in reference.items():
        assert full[key] == pytest.approx(value, rel=0.008), key
    assert set(sparse.summary_ms()) == {"p50", "p90", "p99", "max"}


def test_an_empty_sparse_histogram_reads_zero():
    """No values: every figure is 0."""
    assert set(SparseHistogram().summary_ms().values()) == {0.0}


def test_ranks_and_the_percentile_curve():
    """1..1000 ms: rank 250 is 250 ms, ranks clamp to 1..n; the curve rises to (100, max)."""
    histogram = LatencyHistogram()
    for value in range(1, 1001):
        histogram.record(value / 1000)
    assert histogram.value_at_rank_ms(250) == pytest.approx(250, rel=1e-3)
    assert histogram.value_at_rank_ms(0) == pytest.approx(1, rel=1e-3)
    assert histogram.value_at_rank_ms(5000) == histogram.max_ms()
    curve = histogram.percentile_curve_ms()
    assert curve[-1] == (100.0, histogram.max_ms())
    assert all(a < b for (a, _), (b, _) in pairwise(curve))


def test_the_mean_is_hdr_s_own():
    """The fast mean equals hdrh's get_mean_value to the last digit."""
    rng = random.Random(2)
    histogram = LatencyHistogram()
    for _ in range(3000):
        histogram.record(rng.expovariate(20))
    assert histogram.mean_ms() == histogram._hdr.get_mean_value() / 1000.0
