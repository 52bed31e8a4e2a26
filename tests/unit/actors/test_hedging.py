"""LatencyTracker and Hedger: the p95 a hedge waits for, and the rules it sends under."""

from __future__ import annotations

import random

from actors.hedging import Hedger, LatencyTracker
from backends.specs import HedgeSettings


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Breaker:
    """A breaker whose state the test sets."""

    def __init__(self) -> None:
        self.state = "closed"


class Budget:
    """A retry budget with ``left`` retries."""

    def __init__(self, left: int) -> None:
        self.left = left

    def try_spend(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True


def test_p95_of_a_uniform_spread_is_within_a_bucket():
    """1..100 ms: the p95 reads 95 ms to within the 10% bucket width."""
    tracker = LatencyTracker(Clock())
    for ms in range(1, 101):
        tracker.record(float(ms))
    value = tracker.value_ms()
    assert value is not None
    assert 95.0 <= value <= 95.0 * 1.1


def test_a_one_percent_tail_does_not_move_the_p95():
    """Log-normal around 15 ms plus a 1% tail of 300 ms: p95 stays near the body's p95."""
    rng = random.Random(7)
    tracker = LatencyTracker(Clock())
    body = sorted(15.0 * rng.lognormvariate(0, 0.65) for _ in range(2_000))
    for ms in body:
        tracker.record(ms + (300.0 if rng.random() < 0.01 else 0.0))
    value = tracker.value_ms()
    assert value is not None
    assert value < 100.0
    assert value >= body[int(len(body) * 0.9)]


def test_old_samples_leave_after_two_windows():
    """A slow past is forgotten: after two windows only the recent, fast samples count."""
    clock = Clock()
    tracker = LatencyTracker(clock, window_s=10.0)
    for _ in range(100):
        tracker.record(200.0)
    clock.now += 10.0
    for _ in range(100):
        tracker.record(5.0)
    assert tracker.samples == 200
    clock.now += 10.0
    assert tracker.samples == 100
    value = tracker.value_ms()
    assert value is not None
    assert value < 6.0
    clock.now += 25.0
    assert tracker.samples == 0
    assert tracker.value_ms() is None


def test_delay_is_max_until_enough_samples_then_the_bounded_p95():
    """No guess before min_samples; then the p95, raised to min_ms and lowered to max_ms."""
    hedger = Hedger(
        HedgeSettings(enabled=True, min_ms=10, max_ms=200),
        breaker=Breaker(),
        budget=Budget(10),
        clock=Clock(),
        min_samples=20,
    )
    for _ in range(19):
        hedger.observe(0.040)
    assert hedger.delay_s() == 0.2
    hedger.observe(0.040)
    assert 0.040 <= hedger.delay_s() <= 0.044
    for _ in range(2_000):
        hedger.observe(0.001)
    assert hedger.delay_s() == 0.010
    for _ in range(10_000):
        hedger.observe(5.0)
    assert hedger.delay_s() == 0.2


def test_may_hedge_needs_a_closed_breaker_time_and_budget():
    """Open breaker, no time before the deadline, or a spent budget: no hedge, nothing spent."""
    breaker, budget = Breaker(), Budget(1)
    hedger = Hedger(HedgeSettings(enabled=True), breaker=breaker, budget=budget, clock=Clock())
    breaker.state = "open"
    assert not hedger.may_hedge(100.0, 101.0)
    breaker.state = "half_open"
    assert not hedger.may_hedge(100.0, 101.0)
    breaker.state = "closed"
    assert not hedger.may_hedge(100.0, 100.001)
    assert budget.left == 1
    assert hedger.may_hedge(100.0, 101.0)
    assert budget.left == 0
    assert not hedger.may_hedge(100.0, 101.0)
    assert hedger.sent == 0  # allowed is not sent: the supervisor counts what went out
    hedger.hedged()
    assert hedger.sent == 1
