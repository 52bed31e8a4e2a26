"""Open-loop arrival schedules: exact offsets, steps, bounds."""

from __future__ import annotations

import pytest

from orchestrator.loadtest.schedule import ClosedLoop, OpenLoop, RateStep


def test_constant_rate_spaces_requests_evenly():
    """At 4 req/s the offsets are 0, 0.25, 0.5, ... and stop before the end."""
    offsets = list(OpenLoop.constant(4).arrivals(1.0))
    assert offsets == [0.0, 0.25, 0.5, 0.75]


def test_long_runs_do_not_drift():
    """The 30,000th offset at 1,000 req/s is exactly 29.999 s: no accumulated rounding."""
    offsets = list(OpenLoop.constant(1000).arrivals(30.0))
    assert len(offsets) == 30_000
    assert offsets[-1] == pytest.approx(29.999, abs=1e-12)


def test_steps_change_the_rate_at_their_offsets():
    """2 req/s for 1 s, then 4 req/s: the second step starts on its own boundary."""
    offsets = list(OpenLoop.stepped([(0, 2), (1, 4)]).arrivals(2.0))
    assert offsets == [0.0, 0.5, 1.0, 1.25, 1.5, 1.75]


def test_a_zero_rate_step_sends_nothing():
    """A pause in the profile schedules no request."""
    offsets = list(OpenLoop.stepped([(0, 2), (1, 0), (2, 1)]).arrivals(3.0))
    assert offsets == [0.0, 0.5, 2.0]


def test_expected_count_matches_the_arrivals():
    """expected_count agrees with what arrivals yields, steps included."""
    load = OpenLoop.stepped([(0, 3), (1.5, 7), (2.2, 0.5)])
    assert load.expected_count(5.0) == len(list(load.arrivals(5.0)))


def test_rate_at_reads_the_step_in_force():
    """rate_at returns the latest step at or before the offset."""
    load = OpenLoop.stepped([(0, 10), (5, 20)])
    assert (load.rate_at(0), load.rate_at(4.99), load.rate_at(5), load.rate_at(99)) == (
        10,
        10,
        20,
        20,
    )


@pytest.mark.parametrize(
    "steps",
    [[(1, 10)], [(0, 10), (0, 20)], [(0, 10), (5, 20), (3, 5)]],
)
def test_bad_step_profiles_are_refused(steps):
    """Profiles must start at 0 and increase."""
    with pytest.raises(ValueError, match="step"):
        OpenLoop.stepped(steps)


def test_rates_are_bounded():
    """A typo like 200000 req/s is refused, not attempted."""
    with pytest.raises(ValueError, match="rate"):
        RateStep(0, 200_000)


def test_closed_loop_concurrency_is_bounded():
    """Zero or absurd concurrency is refused."""
    with pytest.raises(ValueError, match="concurrency"):
        ClosedLoop(0)
