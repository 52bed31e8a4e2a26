"""Rolling counts: totals over a sliding window of fixed buckets."""

from __future__ import annotations

import pytest

from actors.rolling import RollingCounts
from actors.testing import ManualClock


def test_counts_are_summed_within_the_window():
    """Everything added inside the window is in the totals."""
    clock = ManualClock()
    counts = RollingCounts(10.0, clock, buckets=10)
    counts.add(1, 0)
    clock.advance(4.0)
    counts.add(2, 1)
    assert counts.totals() == (3, 1)


def test_counts_leave_the_window_bucket_by_bucket():
    """A bucket's counts drop out once the window has slid past it, not before."""
    clock = ManualClock(0.0)
    counts = RollingCounts(10.0, clock, buckets=10)
    counts.add(5, 5)  # bucket [0, 1)
    clock.advance(1.0)
    counts.add(1, 0)  # bucket [1, 2)
    clock.advance(8.5)  # now 9.5: both buckets still inside
    assert counts.totals() == (6, 5)
    clock.advance(0.5)  # now 10.0: the first bucket left
    assert counts.totals() == (1, 0)
    clock.advance(1.0)
    assert counts.totals() == (0, 0)


def test_a_long_silence_clears_everything():
    """After more than a window with no traffic, the totals are zero."""
    clock = ManualClock()
    counts = RollingCounts(10.0, clock)
    counts.add(100, 50)
    clock.advance(1_000.0)
    assert counts.totals() == (0, 0)
    counts.add(1, 1)
    assert counts.totals() == (1, 1)


def test_clear_forgets_the_counts():
    """clear empties every bucket."""
    counts = RollingCounts(10.0, ManualClock())
    counts.add(3, 2)
    counts.clear()
    assert counts.totals() == (0, 0)


def test_rejects_an_empty_window():
    """A window must have a length and at least one bucket."""
    with pytest.raises(ValueError, match="window_s"):
        RollingCounts(0.0, ManualClock())
