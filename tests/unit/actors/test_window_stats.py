"""WindowStats: rolling outcome counts and latency percentiles on a fake clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.outcomes import WINDOW_COLUMNS
from actors.stats import LATENCY_BOUNDS_MS, WindowStats


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_empty_window_reports_zeros_and_no_latency():
    """A fresh window has no calls and no percentiles."""
    snap = WindowStats(clock=FakeClock()).snapshot()
    assert snap["calls"] == 0
    assert all(snap[key] == 0 for key in WINDOW_COLUMNS.values())
    assert snap["latency_ms"] == {"samples": 0, "p50": None, "p99": None, "max": None}
    assert snap["window_s"] == 10.0


def test_counts_each_outcome_and_calls_exclude_fallbacks():
    """Every outcome has its counter; fallbacks are not calls."""
    stats = WindowStats(clock=FakeClock())
    for outcome in ("success", "success", "failure", "timeout", "rejected", "short_circuited"):
        stats.record(outcome)
    stats.record("client_error")
    stats.record("fallback")
    snap = stats.snapshot()
    assert snap["successes"] == 2
    assert snap["failures"] == 1
    assert snap["timeouts"] == 1
    assert snap["rejections"] == 1
    assert snap["short_circuits"] == 1
    assert snap["client_errors"] == 1
    assert snap["fallbacks"] == 1
    assert snap["calls"] == 7


def test_unknown_outcome_and_bad_latency_are_ignored_not_raised():
    """Actor handlers call record: it must never raise on odd input."""
    stats = WindowStats(clock=FakeClock())
    stats.record("skipped", 5.0)
    stats.record("success", -1.0)
    stats.record("success", float("nan"))
    stats.record("success", float("inf"))
    snap = stats.snapshot()
    assert snap["calls"] == 3  # the three successes count; their bad latencies do not
    assert snap["latency_ms"]["samples"] == 0


def test_ten_failures_show_as_ten_failures():
    """The admin view's scripted-fault case: 10 failing calls read back as 10 failures."""
    stats = WindowStats(clock=FakeClock())
    for _ in range(10):
        stats.record("failure", 3.0)
    snap = stats.snapshot()
    assert (snap["calls"], snap["failures"], snap["successes"]) == (10, 10, 0)


def test_old_slices_leave_the_window():
    """Events older than the window are forgotten; recent ones stay."""
    clock = FakeClock(0.0)
    stats = WindowStats(window_s=10, buckets=10, clock=clock)
    stats.record("failure")
    clock.now = 5.0
    stats.record("success")
    clock.now = 9.99
    assert stats.snapshot()["calls"] == 2
    clock.now = 10.0  # the first slice [0, 1) is now out of the window
    snap = stats.snapshot()
    assert (snap["calls"], snap["failures"], snap["successes"]) == (1, 0, 1)
    clock.now = 100.0
    assert stats.snapshot()["calls"] == 0


def test_a_reused_slice_starts_from_zero():
    """When the ring wraps, the slice is reset before it counts again."""
    clock = FakeClock(0.5)
    stats = WindowStats(window_s=2, buckets=2, clock=clock)
    stats.record("failure", 100.0)
    clock.now = 2.5  # same ring position as 0.5, two widths later
    stats.record("success", 1.0)
    snap = stats.snapshot()
    assert (snap["failures"], snap["successes"]) == (0, 1)
    assert snap["latency_ms"]["max"] == 1.0


def test_percentiles_read_from_buckets_and_capped_by_max():
    """p50 and p99 are bucket upper bounds, never above the largest latency seen."""
    stats = WindowStats(clock=FakeClock())
    for _ in range(98):
        stats.record("success", 4.0)  # bucket (3, 5]
    stats.record("success", 120.0)  # bucket (100, 150]
    stats.record("success", 130.0)
    latency = stats.snapshot()["latency_ms"]
    assert latency["samples"] == 100
    assert latency["p50"] == 5.0
    assert latency["p99"] == 130.0  # bucket bound 150 capped at the max
    assert latency["max"] == 130.0


def test_rejects_a_nonsense_window():
    """A zero window or no buckets is a programming error, raised at construction."""
    with pytest.raises(ValueError, match="window_s"):
        WindowStats(window_s=0)
    with pytest.raises(ValueError, match="buckets"):
        WindowStats(buckets=0)


@given(st.lists(st.floats(min_value=0, max_value=20_000), min_size=1, max_size=200))
def test_percentiles_bracket_the_truth(latencies):
    """A percentile is at least the true one and at most one bucket above it."""
    stats = WindowStats(clock=FakeClock())
    for value in latencies:
        stats.record("success", value)
    ordered = sorted(latencies)
    latency = stats.snapshot()["latency_ms"]
    for key, quantile in (("p50", 0.5), ("p99", 0.99)):
        rank = max(1, math.ceil(quantile * len(ordered)))
        true_value = ordered[rank - 1]
        reported = latency[key]
        assert reported >= round(true_value, 3) - 1e-9
        upper = next(bound for bound in LATENCY_BOUNDS_MS if bound >= true_value)
        assert reported <= max(upper, round(max(ordered), 3))
