"""Retry policy, budget and decisions, and which backend failures are worth retrying."""

from __future__ import annotations

import random

import pytest

from actors.retry import MIN_ATTEMPT_S, Retrier, RetryBudget, RetryPolicy
from actors.testing import ManualClock
from backends.errors import (
    BackendBodyTooLargeError,
    BackendConnectionError,
    BackendError,
    BackendProtocolError,
    BackendStatusError,
    BackendTimeoutError,
)
from backends.specs import RetrySettings

POLICY = RetryPolicy(max_attempts=3, backoff_base_s=0.010, backoff_max_s=0.050)


class TopOfRange(random.Random):
    """Jitter that always draws the upper bound, to see the ceiling."""

    def uniform(self, a: float, b: float) -> float:
        del a
        return b


def test_policy_comes_from_the_backends_retry_settings():
    """Milliseconds in settings become seconds in the policy."""
    policy = RetryPolicy.from_settings(RetrySettings())
    assert policy == RetryPolicy(max_attempts=2, backoff_base_s=0.010, backoff_max_s=0.200)


def test_backoff_ceiling_doubles_per_retry_up_to_the_cap():
    """10, 20, 40 ms, then the 50 ms cap, however many retries."""
    ceilings = [POLICY.backoff_s(retry, TopOfRange()) for retry in (1, 2, 3, 4, 10, 1_000)]
    assert ceilings == pytest.approx([0.010, 0.020, 0.040, 0.050, 0.050, 0.050])


def test_backoff_is_full_jitter_and_reproducible_with_a_seed():
    """Delays spread over [0, ceiling] and repeat with the same seed."""
    rng, again = random.Random(7), random.Random(7)
    delays = [POLICY.backoff_s(3, rng) for _ in range(500)]
    assert delays == [POLICY.backoff_s(3, again) for _ in range(500)]
    assert all(0.0 <= delay <= 0.040 for delay in delays)
    assert min(delays) < 0.004
    assert max(delays) > 0.036


def test_no_delay_once_the_attempts_are_used_up():
    """max_attempts counts the first attempt: 3 attempts means 2 retries."""
    rng = random.Random(1)
    common = {"now": 0.0, "deadline": 10.0, "last_attempt_s": 0.001, "rng": rng}
    assert POLICY.next_delay_s(attempts=2, **common) is not None
    assert POLICY.next_delay_s(attempts=3, **common) is None


def test_no_retry_when_the_deadline_leaves_no_room_for_another_attempt():
    """After the backoff, the next attempt needs as long as the failed one took."""
    rng = TopOfRange()
    # The failed attempt timed out after 300 ms; 10 ms backoff + 300 ms > 250 ms left.
    assert (
        POLICY.next_delay_s(attempts=1, now=0.0, deadline=0.25, last_attempt_s=0.3, rng=rng) is None
    )
    # A refused connection failed in 1 ms: 10 ms + 2 ms fits in 250 ms.
    assert POLICY.next_delay_s(
        attempts=1, now=0.0, deadline=0.25, last_attempt_s=0.001, rng=rng
    ) == pytest.approx(0.010)
    # Even an instant failure needs the minimum attempt time.
    assert (
        POLICY.next_delay_s(
            attempts=1, now=0.0, deadline=0.010 + MIN_ATTEMPT_S / 2, last_attempt_s=0.0, rng=rng
        )
        is None
    )


def test_budget_floor_allows_a_few_retries_with_no_traffic():
    """With no calls yet, budget_floor retries are allowed, then none."""
    budget = RetryBudget(RetrySettings(budget_percent=10.0, budget_floor=3), ManualClock())
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]


def test_budget_allows_a_percentage_of_calls_plus_the_floor():
    """100 calls at 10 % plus a floor of 3: 13 retries in the window."""
    budget = RetryBudget(RetrySettings(budget_percent=10.0, budget_floor=3), ManualClock())
    for _ in range(100):
        budget.record_call()
    granted = sum(budget.try_spend() for _ in range(50))
    assert granted == 13
    assert budget.totals() == (100, 13)


def test_budget_refills_as_the_window_slides():
    """Retries spent leave the window with time, and so does the traffic that paid for them."""
    clock = ManualClock()
    budget = RetryBudget(RetrySettings(budget_floor=1, budget_window_ms=10_000), clock)
    assert budget.try_spend()
    assert not budget.try_spend()
    clock.advance(10.0)
    assert budget.try_spend()


def _retrier(floor: int = 3, percent: float = 10.0) -> Retrier:
    budget = RetryBudget(RetrySettings(budget_floor=floor, budget_percent=percent), ManualClock())
    return Retrier(POLICY, budget, random.Random(3))


def _decide(retrier: Retrier, **overrides: object) -> float | None:
    arguments: dict[str, object] = {
        "retryable": True,
        "breaker_closed": True,
        "attempts": 1,
        "now": 0.0,
        "deadline": 5.0,
        "last_attempt_s": 0.001,
    }
    arguments.update(overrides)
    return retrier.delay_before_retry(**arguments)


def test_retrier_retries_a_transient_failure_within_the_budget():
    """All rules hold: a delay is returned and one retry is spent."""
    retrier = _retrier()
    delay = _decide(retrier)
    assert delay is not None
    assert 0.0 <= delay <= 0.010
    assert retrier.budget.totals() == (0, 1)


@pytest.mark.parametrize(
    "overrides",
    [
        {"retryable": False},
        {"breaker_closed": False},
        {"attempts": 3},
        {"deadline": 0.001},
    ],
    ids=["not-retryable", "breaker-not-closed", "attempts-used", "no-time-left"],
)
def test_retrier_refuses_without_spending_the_budget(overrides):
    """A refused retry leaves the budget untouched."""
    retrier = _retrier()
    assert _decide(retrier, **overrides) is None
    assert retrier.budget.totals() == (0, 0)


def test_retrier_stops_when_the_budget_is_spent():
    """With a floor of 1 and no calls, the second retry is refused."""
    retrier = _retrier(floor=1, percent=0.0)
    assert _decide(retrier) is not None
    assert _decide(retrier) is None


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (BackendTimeoutError("t"), True),
        (BackendConnectionError("refused"), True),
        (BackendError("unknown network failure"), True),
        (BackendStatusError(500), True),
        (BackendStatusError(502), True),
        (BackendStatusError(503), True),
        (BackendStatusError(504), True),
        (BackendStatusError(408), True),
        (BackendStatusError(503, retry_after_s=1.0), False),
        (BackendStatusError(429), False),
        (BackendStatusError(501), False),
        (BackendStatusError(404), False),
        (BackendStatusError(400), False),
        (BackendProtocolError("bad json"), False),
        (BackendBodyTooLargeError("too big"), False),
    ],
    ids=lambda value: getattr(value, "status", type(value).__name__),
)
def test_which_failures_are_retryable(error, retryable):
    """Transient failures are; bad requests, malformed replies and "overloaded" are not."""
    assert error.retryable is retryable


def test_overloaded_means_429_or_503_with_retry_after():
    """Only those two tell us to back off rather than try again."""
    assert BackendStatusError(429).overloaded
    assert BackendStatusError(503, retry_after_s=2.0).overloaded
    assert not BackendStatusError(503).overloaded
    assert not BackendStatusError(500, retry_after_s=2.0).overloaded
