"""Retries: which failed calls get another attempt, after how long, and how many in all.

Retries happen at one layer only (Google SRE), here, beside the breaker: the transport never
retries (urllib3 ``max_retries=0``). A failed attempt is retried only when every rule holds:

- the request is idempotent and the failure transient (``BackendError.retryable``: never a
  bad request, a malformed reply, or "overloaded", i.e. 429 or 503 with ``Retry-After``);
- the call has attempts left (``max_attempts``, the first included);
- the breaker is closed (a probe is never retried; an open breaker means stop);
- the deadline leaves room: after the backoff, at least as long as the failed attempt took
  (a timed-out attempt needs its whole timeout again; a refused connection only a little);
- the budget allows it: retries in the rolling window stay within ``budget_percent`` of the
  calls in it plus ``budget_floor``, so a failing backend never sees a retry storm.

Hedged reads (``actors/hedging.py``) spend this same budget: a hedge is a retry that does
not wait for the failure, so hedges and retries together stay within it.

Backoff is capped exponential with full jitter (AWS Builders' Library): uniform in
``[0, min(backoff_max, backoff_base * 2 ** (retry - 1))]``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from actors.rolling import DEFAULT_BUCKETS, RollingCounts
from backends.specs import RetrySettings

_MS_PER_S = 1000.0
_PERCENT = 100.0
#: The least time worth giving an attempt: the deadline header is in whole ms, and a
#: loopback round trip alone takes a fraction of one.
MIN_ATTEMPT_S = 0.002
# 2 ** 30 times any base is far past any cap; the bound keeps the float finite.
_MAX_DOUBLINGS = 30


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a call may make, and how long to wait before each retry."""

    max_attempts: int
    backoff_base_s: float
    backoff_max_s: float

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        """The policy of a backend's ``retry`` settings."""
        return cls(
            settings.max_attempts,
            settings.backoff_base_ms / _MS_PER_S,
            settings.backoff_max_ms / _MS_PER_S,
        )

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """The wait before retry number ``retry`` (1 for the first): full jitter, capped."""
        ceiling = min(
            self.backoff_max_s, self.backoff_base_s * 2.0 ** min(retry - 1, _MAX_DOUBLINGS)
        )
        return rng.uniform(0.0, ceiling)

    def next_delay_s(
        self,
        *,
        attempts: int,
        now: float,
        deadline: float,
        last_attempt_s: float,
        rng: random.Random,
    ) -> float | None:
        """The wait before another attempt, or ``None`` if none is due (attempts or time)."""
        if attempts >= self.max_attempts:
            return None
        delay_s = self.backoff_s(attempts, rng)
        if now + delay_s + max(last_attempt_s, MIN_ATTEMPT_S) > deadline:
            return None
        return delay_s


class RetryBudget:
    """Retries allowed over a rolling window: ``percent`` % of the calls, plus ``floor``."""

    __slots__ = ("_floor", "_percent", "_window")

    def __init__(
        self, settings: RetrySettings, clock: Callable[[], float], buckets: int = DEFAULT_BUCKETS
    ) -> None:
        self._percent = settings.budget_percent
        self._floor = settings.budget_floor
        self._window = RollingCounts(settings.budget_window_ms / _MS_PER_S, clock, buckets)

    def record_call(self) -> None:
        """Count a call's first attempt (retries are counted by ``try_spend``)."""
        self._window.add(1, 0)

    def try_spend(self) -> bool:
        """Take one retry from the budget; ``False`` (nothing taken) when it is spent."""
        calls, retries = self._window.totals()
        if retries >= self._floor + calls * self._percent / _PERCENT:
            return False
        self._window.add(0, 1)
        return True

    def totals(self) -> tuple[int, int]:
        """``(calls, retries)`` in the window."""
        return self._window.totals()


class Retrier:
    """One backend's retry decisions: its policy, budget and jitter source together."""

    __slots__ = ("_rng", "budget", "policy")

    def __init__(self, policy: RetryPolicy, budget: RetryBudget, rng: random.Random) -> None:
        self.policy = policy
        self.budget = budget
        self._rng = rng

    def delay_before_retry(
        self,
        *,
        retryable: bool,
        breaker_closed: bool,
        attempts: int,
        now: float,
        deadline: float,
        last_attempt_s: float,
    ) -> float | None:
        """The backoff before retrying a failed attempt, or ``None``: do not retry.

        ``retryable`` says both that the request is idempotent and that its failure is
        transient. Spends from the budget only when it returns a delay.
        """
        if not (retryable and breaker_closed):
            return None
        delay_s = self.policy.next_delay_s(
            attempts=attempts,
            now=now,
            deadline=deadline,
            last_attempt_s=last_attempt_s,
            rng=self._rng,
        )
        if delay_s is None or not self.budget.try_spend():
            return None
        return delay_s
