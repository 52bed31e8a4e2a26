"""Hedged reads: a second attempt of an idempotent call that is slower than usual.

A call still unanswered after the backend's observed 95th percentile gets a twin; the
first successful answer wins (Dean and Barroso, "The Tail at Scale"). The p95 comes from
``LatencyTracker``, bounded by ``HedgeSettings.min_ms`` and ``max_ms``. A hedge is a retry
that does not wait for the failure, so it follows the retry rules that still apply: it
spends the backend's retry budget, is never sent while the breaker is not closed, and
never when the deadline leaves no room for an attempt.

Pure: no greenlets, no actors; the clock is injected. ``RequestSupervisor`` arms the timer,
sends the twin and picks the winner (``actors/supervisor.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Final, Protocol

from actors.retry import MIN_ATTEMPT_S
from backends.specs import HedgeSettings

_MS_PER_S = 1000.0
#: The percentile a hedge waits for: past it, a call is in the slowest 5% of its backend.
HEDGE_PERCENTILE: Final = 95.0
#: Buckets grow by 10%: a percentile is read to within 10% of its value.
_GROWTH: Final = 1.1
_LOG_GROWTH: Final = math.log(_GROWTH)
#: The first bucket's upper edge; 170 buckets reach past 100 s.
_FIRST_MS: Final = 0.1
_BUCKETS: Final = 170
#: The percentile is recomputed after this many samples (or a rotation): O(1) amortised.
_RECOMPUTE_EVERY: Final = 16


class LatencyTracker:
    """A percentile of recent latencies: a log-bucketed histogram over two rolling halves.

    ``record`` is O(1) (one logarithm, one increment). Samples live for one to two
    ``window_s``: the current half and the previous one are both read, and every
    ``window_s`` the older half is dropped. The percentile is the upper edge of its
    bucket, recomputed every ``_RECOMPUTE_EVERY`` samples (O(buckets)).
    """

    __slots__ = (
        "_cached_ms",
        "_clock",
        "_current",
        "_current_total",
        "_percentile",
        "_previous",
        "_previous_total",
        "_rotated_at",
        "_since_compute",
        "_window_s",
    )

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        percentile: float = HEDGE_PERCENTILE,
        window_s: float = 10.0,
    ) -> None:
        self._clock = clock
        self._percentile = percentile
        self._window_s = window_s
        self._current = [0] * _BUCKETS
        self._previous = [0] * _BUCKETS
        self._current_total = 0
        self._previous_total = 0
        self._rotated_at = clock()
        self._cached_ms: float | None = None
        self._since_compute = 0

    @property
    def samples(self) -> int:
        """Samples in the window."""
        self._rotate()
        return self._current_total + self._previous_total

    def record(self, latency_ms: float) -> None:
        """One call's latency."""
        self._rotate()
        if latency_ms <= _FIRST_MS:
            index = 0
        else:
            index = min(_BUCKETS - 1, math.ceil(math.log(latency_ms / _FIRST_MS) / _LOG_GROWTH))
        self._current[index] += 1
        self._current_total += 1
        self._since_compute += 1
        if self._since_compute >= _RECOMPUTE_EVERY:
            self._cached_ms = None

    def value_ms(self) -> float | None:
        """The percentile of the window's samples in ms; ``None`` with no sample."""
        self._rotate()
        if self._cached_ms is None:
            self._cached_ms = self._compute()
            self._since_compute = 0
        return self._cached_ms

    def _compute(self) -> float | None:
        total = self._current_total + self._previous_total
        if total == 0:
            return None
        rank = math.ceil(total * self._percentile / 100.0)
        seen = 0
        for index, (now, before) in enumerate(zip(self._current, self._previous, strict=True)):
            seen += now + before
            if seen >= rank:
                return _FIRST_MS * _GROWTH**index
        return _FIRST_MS * _GROWTH ** (_BUCKETS - 1)  # pragma: no cover - rank <= total

    def _rotate(self) -> None:
        now = self._clock()
        elapsed = now - self._rotated_at
        if elapsed < self._window_s:
            return
        if elapsed >= 2 * self._window_s:  # both halves are stale
            self._previous = [0] * _BUCKETS
            self._previous_total = 0
        else:
            self._previous = self._current
            self._previous_total = self._current_total
        self._current = [0] * _BUCKETS
        self._current_total = 0
        self._rotated_at = now
        self._cached_ms = None


class BreakerView(Protocol):
    """The breaker's state as a hedge needs it (``actors.breaker.CircuitBreaker``)."""

    @property
    def state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        ...


class Budget(Protocol):
    """The retry budget a hedge spends (``actors.retry.RetryBudget``)."""

    def try_spend(self) -> bool:
        """Take one retry; ``False`` when the budget is spent."""
        ...


class Hedger:
    """One backend's hedging: when to send a twin, and whether one may go now.

    Until ``min_samples`` latencies are known the delay is ``max_ms``: a backend not yet
    seen is not hedged early on a guess.
    """

    __slots__ = ("_breaker", "_budget", "_max_s", "_min_s", "min_samples", "sent", "tracker", "won")

    def __init__(
        self,
        settings: HedgeSettings,
        *,
        breaker: BreakerView,
        budget: Budget,
        clock: Callable[[], float],
        min_samples: int = 20,
    ) -> None:
        self._min_s = settings.min_ms / _MS_PER_S
        self._max_s = max(settings.min_ms, settings.max_ms) / _MS_PER_S
        self._breaker = breaker
        self._budget = budget
        self.tracker = LatencyTracker(clock)
        self.min_samples = min_samples
        #: Hedges sent (taken by the backend: ``hedged``), and hedges whose answer won;
        #: counted since start, read by the operator views (``actors/system.py``).
        self.sent = 0
        self.won = 0

    def observe(self, latency_s: float) -> None:
        """One answered call's latency (every call of the backend, winners and losers)."""
        self.tracker.record(latency_s * _MS_PER_S)

    def delay_s(self) -> float:
        """How long a call runs before its twin is sent: the p95, within the bounds."""
        if self.tracker.samples < self.min_samples:
            return self._max_s
        p95_ms = self.tracker.value_ms()
        if p95_ms is None:  # pragma: no cover - samples > 0
            return self._max_s
        return min(self._max_s, max(self._min_s, p95_ms / _MS_PER_S))

    def may_hedge(self, now: float, deadline: float) -> bool:
        """Whether a twin may go now; spends from the retry budget when it says yes.

        Never past the deadline (an attempt needs ``MIN_ATTEMPT_S`` at least), never while
        the breaker is open or half-open, never beyond the budget."""
        if now + MIN_ATTEMPT_S >= deadline or self._breaker.state != "closed":
            return False
        return bool(self._budget.try_spend())

    def hedged(self) -> None:
        """A twin went out (counted once the backend took it, not when it was allowed)."""
        self.sent += 1
