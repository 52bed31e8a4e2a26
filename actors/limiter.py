"""Adaptive concurrency limit per backend: how many calls may be in flight to it at once,
learnt from the latency it answers with (the Gradient2 / Vegas family of Netflix's
concurrency-limits library).

A fixed bulkhead must be sized for the worst case. This limit follows the backend instead:
while latency stays near the backend's no-load latency the limit grows, and when calls start
to queue inside the backend (latency rises with concurrency) it shrinks toward the
concurrency the backend can actually serve, so extra calls are refused here, at once, instead
of waiting in the backend's queue and timing out there.

``AdaptiveLimit`` is the pure algorithm. Per sample (a call that ended, with its start time,
round-trip time, the calls in flight when it started, and whether it was dropped):

- ``short``: an exponential average of the latest ``short_window`` round-trip times (smooths
  jitter; Gradient2 uses the raw sample, which makes one slow call a signal).
- ``noload``: the lowest ``short`` of the last ``noload_window_s`` (a windowed minimum, as
  TCP BBR keeps its min RTT; Gradient2 uses a long average, Vegas a minimum reset now and
  then). It falls at once and rises only when a window ends, so a backend whose own latency
  grows is re-measured within a window.
- ``gradient = clamp(rtt_tolerance * noload / short, 0.5, 1.0)``: 1 while latency is within
  the tolerance (no queueing), down to 0.5 when it doubles past it.
- The limit moves toward ``limit * gradient + queue_size`` by ``smoothing`` of the distance
  per round trip, within ``[min_limit, max_limit]``: each sample takes ``1 / limit`` of that
  step, as TCP grows its window by ``1 / cwnd`` per ack, because a round trip brings about
  ``limit`` samples. (Gradient2 takes the whole step per sample and relies on WindowedLimit
  to batch samples; per-sample whole steps oscillate between the bounds.) ``queue_size`` is
  the headroom that lets the limit probe upward: with enough demand it grows by
  ``smoothing * queue_size`` per round trip, and a backend that queues linearly past its
  capacity holds it where ``limit * (1 - gradient) == queue_size``, about
  ``rtt_tolerance * capacity + queue_size``.
- Slow start (TCP's): at first, after drops cut the limit, and when a window finds a higher
  no-load latency, each sample takes a whole step (as Gradient2 does), so the limit nearly
  doubles per round trip, until the first sign of queueing (``gradient < 1``). A hang that
  heals is back at full limit in a few round trips instead of a few hundred; the price is one
  overshoot of about a round trip's growth.
- No change while the caller is app-limited (``inflight < limit / 2``): a limit that binds
  nobody learns nothing from low load, and must not grow for ever.
- Drops (a timeout, or a 503 / 429 "overloaded" answer): their round-trip time is not used (a
  timeout says only "at least the timeout"). An exponential average over ``drop_window``
  samples tracks the share dropped; while it exceeds ``drop_threshold`` each dropped call
  multiplies the limit by ``backoff_ratio``, app-limited or not. A hang (every call dropped)
  crosses the threshold after a dozen drops and reaches ``min_limit`` within about one
  timeout; a steady 10 % of fast 503s never crosses it (loss tolerance, as BBRv2 has).
- Probe (BBR's ProbeRTT): when a ``noload`` window ends, the limit is cut to
  ``limit * probe_ratio`` for two round trips, so the backend's queue drains and the new
  window sees latency at low load. Without it a backend kept saturated shows only loaded
  latency, ``noload`` creeps up window after window and the limit with it, up to
  ``max_limit`` (the baseline drift Gradient2's long average and Vegas's probe reset share).
  It costs two round trips at reduced limit per window: under 0.1 % of the calls a
  saturated backend would serve with the default 30 s window.

``Limiter`` applies the limit: ``try_acquire(now)`` returns a ``Token`` or ``None`` (rejected:
the caller treats it like a bulkhead rejection and falls back); the caller ends every token
with ``success(now)``, ``dropped(now)`` (timeout, 503/429) or ``ignore()`` (the call says
nothing about the backend's load: a bad request, a call cancelled by its deadline). Ending a
token twice is a no-op.

Plain classes without locks, like ``bulkhead.py``: one backend actor owns one limiter, and
gevent never switches inside a method that does no I/O. Time is always passed in (seconds,
any monotonic origin), so tests drive it with a simulated clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

#: The gradient's floor: one round trip at most halves the target (as in Gradient2).
MIN_GRADIENT = 0.5
#: A round-trip time below this (a coarse clock) counts as this, so ratios stay finite.
MIN_RTT_S = 1e-6
#: How many round trips a probe lasts: one for the queue to drain, one to measure.
PROBE_ROUND_TRIPS = 2.0


@dataclass(frozen=True, slots=True)
class LimiterSettings:
    """How a backend's concurrency limit adapts. ``initial_limit``, ``max_limit``,
    ``smoothing``, ``rtt_tolerance`` and ``queue_size`` are Gradient2's defaults.

    - ``initial_limit`` (20): the limit before any sample.
    - ``min_limit`` (2): never below, so a single stuck call cannot stop a backend's traffic
      (Gradient2 has 20, too high for a bulkhead of 10).
    - ``max_limit`` (200): never above; when wired, the backend's bulkhead size.
    - ``smoothing`` (0.2): share of the distance to the target moved per round trip.
    - ``rtt_tolerance`` (1.5): latency up to this multiple of ``noload`` is not queueing.
    - ``queue_size`` (4): headroom over the gradient's target; the limit grows by
      ``smoothing * queue_size`` per round trip while latency stays within tolerance.
    - ``short_window`` (10): samples in the average of current latency.
    - ``noload_window_s`` (30.0): how long the lowest latency seen stays the no-load latency;
      also how long a backend that truly got slower is taken for a queueing one.
    - ``probe_ratio`` (0.5): share of the limit kept during a probe (1.0: no probes).
    - ``backoff_ratio`` (0.9): the limit is multiplied by this per dropped call while the
      drop share is over ``drop_threshold`` (AIMD's 0.9).
    - ``drop_threshold`` (0.25): share of calls dropped above which drops cut the limit.
    - ``drop_window`` (100): samples in the average of the drop share.
    """

    initial_limit: int = 20
    min_limit: int = 2
    max_limit: int = 200
    smoothing: float = 0.2
    rtt_tolerance: float = 1.5
    queue_size: int = 4
    short_window: int = 10
    noload_window_s: float = 30.0
    probe_ratio: float = 0.5
    backoff_ratio: float = 0.9
    drop_threshold: float = 0.25
    drop_window: int = 100

    def __post_init__(self) -> None:
        _check_types(self)
        if not 1 <= self.min_limit <= self.initial_limit <= self.max_limit:
            raise ValueError("limits must satisfy 1 <= min_limit <= initial_limit <= max_limit")
        _check_share("smoothing", self.smoothing)
        _check_share("probe_ratio", self.probe_ratio)
        if not 0 < self.backoff_ratio < 1:
            raise ValueError("backoff_ratio must be between 0 and 1 (exclusive)")
        if self.rtt_tolerance < 1:
            raise ValueError("rtt_tolerance must be >= 1")
        if self.queue_size < 0:
            raise ValueError("queue_size must be >= 0")
        if self.short_window < 1 or self.drop_window < 1:
            raise ValueError("short_window and drop_window must be >= 1")
        if not 0 <= self.drop_threshold < 1:
            raise ValueError("drop_threshold must be in [0, 1)")
        if self.noload_window_s <= 0:
            raise ValueError("noload_window_s must be > 0")


def _check_types(settings: LimiterSettings) -> None:
    """``TypeError`` unless every field is a finite number of its declared kind."""
    for item in fields(settings):
        value = getattr(settings, item.name)
        # bool is an int, but `min_limit = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"{item.name} must be a number")
        if item.type in (int, "int") and not isinstance(value, int):
            raise TypeError(f"{item.name} must be an integer")
        if not math.isfinite(value):
            raise ValueError(f"{item.name} must be finite")


def _check_share(name: str, value: float) -> None:
    if not 0 < value <= 1:
        raise ValueError(f"{name} must be in (0, 1]")


class AdaptiveLimit:
    """The limit algorithm alone: feed it samples, read ``limit``. See the module docstring."""

    __slots__ = (
        "_drop_factor",
        "_drop_rate",
        "_estimate",
        "_factor",
        "_limit",
        "_noload",
        "_probe_end",
        "_samples",
        "_settings",
        "_short",
        "_slow_start",
        "_window_end",
        "_window_min",
    )

    def __init__(self, settings: LimiterSettings | None = None) -> None:
        self._settings = LimiterSettings() if settings is None else settings
        self._estimate = float(self._settings.initial_limit)
        self._limit = self._settings.initial_limit
        self._factor = 2.0 / (self._settings.short_window + 1)
        self._drop_factor = 2.0 / (self._settings.drop_window + 1)
        self._drop_rate = 0.0
        self._slow_start = True
        self._samples = 0
        self._short = 0.0
        self._noload = math.inf
        self._window_min = math.inf
        self._window_end = math.inf
        self._probe_end = -math.inf

    @property
    def settings(self) -> LimiterSettings:
        """The settings this limit adapts by."""
        return self._settings

    @property
    def limit(self) -> int:
        """Calls allowed in flight now (reduced while probing)."""
        return self._limit

    @property
    def estimate(self) -> float:
        """The unrounded limit, probe aside."""
        return self._estimate

    @property
    def short_rtt_s(self) -> float:
        """The average of recent round-trip times (0 before any sample)."""
        return self._short

    @property
    def noload_rtt_s(self) -> float:
        """The no-load round-trip time estimate (``inf`` before any sample)."""
        return self._noload

    def probing(self, now: float) -> bool:
        """Whether a probe holds the limit down at ``now``."""
        return now < self._probe_end

    def on_sample(self, start: float, rtt_s: float, inflight: int, dropped: bool) -> int:
        """Learn from one ended call; returns the new ``limit``.

        ``inflight`` counts the calls in flight when this one started, itself included.
        """
        settings = self._settings
        now = start + rtt_s
        estimate = self._estimate
        if dropped:
            self._drop_rate += self._drop_factor * (1.0 - self._drop_rate)
            if self._drop_rate > settings.drop_threshold:
                estimate = max(settings.min_limit, estimate * settings.backoff_ratio)
                self._slow_start = True
        else:
            self._drop_rate -= self._drop_factor * self._drop_rate
            short = self._average(max(rtt_s, MIN_RTT_S))
            # Until the average holds short_window samples, one fast call would set noload.
            if self._samples >= settings.short_window:
                self._observe(short, now)
                if inflight * 2 >= estimate:
                    estimate = self._step(estimate, short)
        self._estimate = estimate
        limit = int(estimate)
        if now < self._probe_end:
            limit = max(settings.min_limit, int(estimate * settings.probe_ratio))
        self._limit = limit
        return limit

    def _step(self, estimate: float, short: float) -> float:
        """The estimate after one sample's share of a round trip's gradient step."""
        settings = self._settings
        gradient = settings.rtt_tolerance * self._noload / short
        gradient = max(MIN_GRADIENT, min(1.0, gradient))
        step = estimate * (gradient - 1.0) + settings.queue_size
        if self._slow_start and gradient == 1.0:
            estimate += settings.smoothing * step
        else:
            self._slow_start = False
            estimate += settings.smoothing * step / estimate
        return max(settings.min_limit, min(settings.max_limit, estimate))

    def _average(self, rtt_s: float) -> float:
        """The short average: a plain mean over the first ``short_window`` samples (as the
        library's ExpAvgMeasurement warms up), exponential after."""
        self._samples += 1
        if self._samples <= self._settings.short_window:
            self._short += (rtt_s - self._short) / self._samples
        else:
            self._short += self._factor * (rtt_s - self._short)
        return self._short

    def _observe(self, short: float, now: float) -> None:
        """Keep the windowed minimum; at the end of a window, start a probe."""
        if now >= self._window_end:
            # The window's lowest (seen with its probe) becomes the no-load latency, even when
            # higher than the old one: the backend's own latency may have grown.
            noload = min(self._window_min, short)
            if noload > self._noload:
                # A new, higher baseline: the limit learnt against the old one was too low.
                self._slow_start = True
            self._noload = noload
            self._window_min = short
            self._window_end = now + self._settings.noload_window_s
            if self._settings.probe_ratio < 1:
                self._probe_end = now + PROBE_ROUND_TRIPS * short
            return
        if self._window_end == math.inf:  # the first sample opens the first window
            self._window_end = now + self._settings.noload_window_s
        self._window_min = min(self._window_min, short)
        self._noload = min(self._noload, short)


class Limiter:
    """Admission by an adaptive limit: at most ``limit`` calls in flight.

    ``try_acquire(now)`` is O(1) and allocates one small object; ending the token feeds the
    algorithm one sample (``success`` / ``dropped``) or none (``ignore``).
    """

    __slots__ = ("_algorithm", "_limit", "inflight", "rejected")

    def __init__(
        self, settings: LimiterSettings | None = None, *, algorithm: AdaptiveLimit | None = None
    ) -> None:
        if algorithm is not None and settings is not None:
            raise ValueError("pass settings or an algorithm, not both")
        self._algorithm = AdaptiveLimit(settings) if algorithm is None else algorithm
        self._limit = self._algorithm.limit
        #: Calls acquired and not yet ended.
        self.inflight = 0
        #: Calls refused since construction.
        self.rejected = 0

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        return self._limit

    @property
    def algorithm(self) -> AdaptiveLimit:
        """The algorithm, for its estimates (metrics, admin views)."""
        return self._algorithm

    def try_acquire(self, now: float) -> Token | None:
        """A token for one call, or ``None`` when ``limit`` calls are already in flight."""
        inflight = self.inflight
        if inflight >= self._limit:
            self.rejected += 1
            return None
        inflight += 1
        self.inflight = inflight
        return Token(self, now, inflight)

    def _end(self, token: Token, now: float, *, dropped: bool) -> None:
        self.inflight -= 1
        self._limit = self._algorithm.on_sample(
            token.start, now - token.start, token.inflight, dropped
        )


class Token:
    """One admitted call; end it exactly once (later ends are ignored)."""

    __slots__ = ("_limiter", "inflight", "start")

    def __init__(self, limiter: Limiter, start: float, inflight: int) -> None:
        self._limiter: Limiter | None = limiter
        #: When the call was admitted.
        self.start = start
        #: Calls in flight when it was admitted, itself included.
        self.inflight = inflight

    def success(self, now: float) -> None:
        """The backend answered (2xx, or an error that is not about load): a latency sample."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._end(self, now, dropped=False)  # noqa: SLF001 - the token is the limiter's own

    def dropped(self, now: float) -> None:
        """The call timed out or the backend said it is overloaded (503, 429)."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter._end(self, now, dropped=True)  # noqa: SLF001 - the token is the limiter's own

    def ignore(self) -> None:
        """The call ended without saying anything about the backend's load."""
        limiter, self._limiter = self._limiter, None
        if limiter is not None:
            limiter.inflight -= 1
