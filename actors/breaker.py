"""Circuit breaker: Hystrix-style tripping over the ``circuitbreaker`` package's states.

States (``actors.outcomes.BreakerState``) are the package's (``closed``, ``open``,
``half_open``), with Hystrix's rules:

- closed: every call passes. After a failure, if the rolling window (``window_ms``, in
  buckets) holds at least ``request_volume`` calls of which at least ``error_percent`` %
  failed, the breaker opens. It also opens on a run of timeouts with no answer between
  them that holds at least ``consecutive_timeouts`` timeouts and lasts at least
  ``consecutive_timeouts_span_ms`` from its first to its last (a hang: the window would need
  seconds of timeouts to outweigh the successes before it; 0 timeouts turns this off). The
  span tells a hang from a stall of this process: calls that were in flight while the
  process got no CPU all time out at the instant it resumes, a burst with no length, and
  the calls after it are answered; a hang's timeouts keep coming at the calls' arrival
  rate. Any answer (a success, an error status, a refused connection) resets the run; a
  verdict-less result (``NEUTRAL``) neither counts nor resets.
- open: every call is refused (the caller short-circuits) for ``open_ms``; then half-open.
- half-open: exactly one call, the probe, passes; the others are refused. The probe holds a
  lease of ``probe_lease_s``: its success closes the breaker (with an empty window), its
  failure reopens it, and a probe whose result never comes back (its actor restarted, its
  greenlet was killed) reopens it when the lease expires, so half-open can never wedge.

Only results with a health verdict feed it: the caller maps timeouts to ``TIMEOUT`` (a
failure that also counts in the run of timeouts), ``counts_as_failure`` errors to
``FAILURE``, bad requests (4xx but 408/429) to ``NEUTRAL``, and never records
rejections or short-circuits (those calls never reached the backend).

Why not the package's ``CircuitBreaker`` class itself: it counts consecutive failures and
resets on any success (no error percentage, no window, no minimum volume), reads
``time.monotonic`` directly (no injectable clock), lets every caller through when half-open,
registers each breaker in a process-global monitor, and only wraps a synchronous function
call, while here a call is admitted in an actor and its result comes back later in a
message. So this module keeps the package's state vocabulary and implements the rules.

A plain class with no locking: it belongs to one backend and is used from that backend
actor's greenlet (gevent never preempts in the middle of a method that does no I/O).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Final

import circuitbreaker

from actors.outcomes import BreakerState
from actors.rolling import DEFAULT_BUCKETS, RollingCounts
from backends.specs import BreakerSettings

log = logging.getLogger("frontdoor.actors.breaker")

# The states (``actors.outcomes.BreakerState``) under short names, found by the package's own
# words (a package that renamed one fails here, at import), and bound once: on Python 3.11
# naming an enum member costs a class look-up (~70 ns), and ``acquire`` checks the state on
# every call.
CLOSED: Final = BreakerState(circuitbreaker.STATE_CLOSED)
OPEN: Final = BreakerState(circuitbreaker.STATE_OPEN)
HALF_OPEN: Final = BreakerState(circuitbreaker.STATE_HALF_OPEN)

#: The ticket handed out while forced closed: its results are never recorded. Real tickets
#: are epochs, which start at 0 and only grow.
FORCED_TICKET: Final = -1

_MS_PER_S = 1000.0
_PERCENT = 100.0
_NEVER: Final = 2**62

#: Told ``(old_state, new_state)`` after every change of the state callers see.
StateListener = Callable[[BreakerState, BreakerState], None]


class Verdict(enum.Enum):
    """What one finished call says about the backend's health (never written anywhere).

    Not a function of the call's ``Outcome``: a ``FAILURE`` that was a bad request, or a
    ``TIMEOUT`` that was never sent, says nothing; the backend actor decides per error.
    """

    SUCCESS = enum.auto()
    FAILURE = enum.auto()
    #: A failure by our own timeout: the backend did not answer at all.
    TIMEOUT = enum.auto()
    #: Neither (a bad request): not counted; a probe with this verdict just frees its slot.
    NEUTRAL = enum.auto()


class Override(enum.Enum):
    """An operator's forced state; ``CircuitBreaker.force(None)`` returns to automatic."""

    FORCE_OPEN = "force_open"
    FORCE_CLOSED = "force_closed"


class CircuitBreaker:
    """One backend's breaker; see the module docstring for the rules.

    ``acquire`` returns a ticket (or ``None``: refuse the call); the same ticket goes back in
    ``record`` with the call's verdict, or in ``release`` if the call never reached the
    backend. Tickets are epochs: every state change starts a new one, so a result that comes
    back after the state changed (a call from before the breaker opened, an expired probe)
    is ignored instead of being counted against the new state.
    """

    __slots__ = (
        "_changed_at",
        "_clock",
        "_consecutive_timeouts",
        "_epoch",
        "_error_percent",
        "_forced",
        "_on_change",
        "_open_s",
        "_opened_at",
        "_probe_lease_s",
        "_probe_until",
        "_request_volume",
        "_run_span_s",
        "_run_started_at",
        "_state",
        "_timeouts_in_a_row",
        "_window",
    )

    def __init__(
        self,
        settings: BreakerSettings,
        *,
        probe_lease_s: float,
        clock: Callable[[], float],
        on_change: StateListener | None = None,
        buckets: int = DEFAULT_BUCKETS,
    ) -> None:
        if probe_lease_s <= 0:
            raise ValueError("probe_lease_s must be > 0")
        self._request_volume = settings.request_volume
        self._error_percent = settings.error_percent
        # 0 (off) becomes a run no count of timeouts reaches.
        self._consecutive_timeouts = settings.consecutive_timeouts or _NEVER
        self._timeouts_in_a_row = 0
        self._run_started_at = 0.0
        self._run_span_s = settings.consecutive_timeouts_span_ms / _MS_PER_S
        self._open_s = settings.open_ms / _MS_PER_S
        self._probe_lease_s = probe_lease_s
        self._clock = clock
        self._on_change = on_change
        self._window = RollingCounts(settings.window_ms / _MS_PER_S, clock, buckets)
        self._state: BreakerState = CLOSED
        self._epoch = 0
        self._opened_at = 0.0
        self._probe_until: float | None = None
        self._forced: Override | None = None
        self._changed_at: float | None = None

    @property
    def state(self) -> BreakerState:
        """The state callers see now."""
        if self._forced is not None:
            return OPEN if self._forced is Override.FORCE_OPEN else CLOSED
        self._refresh()
        return self._state

    @property
    def forced(self) -> Override | None:
        """The operator's override in force, if any."""
        return self._forced

    @property
    def changed_at(self) -> float | None:
        """When the state callers see last changed (on the clock); ``None`` if never."""
        self._refresh()
        return self._changed_at

    def window(self) -> tuple[int, int]:
        """``(calls, failures)`` counted in the rolling window (closed state only)."""
        return self._window.totals()

    def acquire(self) -> int | None:
        """A ticket to call the backend now, or ``None``: refuse the call (short-circuit)."""
        if self._forced is not None:
            return FORCED_TICKET if self._forced is Override.FORCE_CLOSED else None
        if self._state is CLOSED:  # the hot path: nothing expires while closed
            return self._epoch
        self._refresh()
        if self._state is HALF_OPEN and self._probe_until is None:
            self._probe_until = self._clock() + self._probe_lease_s
            return self._epoch
        return None

    def valid(self, ticket: int) -> bool:
        """Whether ``ticket`` still belongs to the current state (a queued call re-checks)."""
        if self._forced is not None:
            return ticket == FORCED_TICKET
        self._refresh()
        return ticket == self._epoch

    def release(self, ticket: int) -> None:
        """The call holding ``ticket`` never reached the backend: a probe frees its slot."""
        if ticket == self._epoch and self._state is HALF_OPEN and self._forced is None:
            self._probe_until = None

    def record(self, ticket: int, verdict: Verdict) -> None:
        """Count the result of the call that held ``ticket``; may open or close the breaker."""
        if ticket != self._epoch or self._forced is not None:
            return  # issued under another state (or forced): says nothing about this one
        if self._state is CLOSED:
            if verdict is Verdict.SUCCESS:  # the hot path, inline
                self._timeouts_in_a_row = 0
                self._window.add(1, 0)
            elif verdict is not Verdict.NEUTRAL:
                self._record_failure(verdict)
            return
        self._refresh()
        if ticket != self._epoch or self._state is not HALF_OPEN:
            return  # the probe's lease expired before its result came back
        if verdict is Verdict.SUCCESS:
            self._window.clear()
            self._change(CLOSED, self._clock())
        elif verdict is not Verdict.NEUTRAL:
            self._open(self._clock())
        else:
            self._probe_until = None

    def force(self, override: Override | None) -> None:
        """Force the breaker open or closed (operators), or return to automatic with ``None``.

        While forced, nothing is recorded; returning to automatic starts closed with an
        empty window, as if the backend were new.
        """
        before = self.state
        self._forced = override
        self._epoch += 1  # calls admitted under the old regime must not count under the new
        if override is None:
            self._state = CLOSED
            self._probe_until = None
            self._window.clear()
            self._timeouts_in_a_row = 0
        self._notify(before, self.state, self._clock())

    # -- internals ----------------------------------------------------------------------

    def _record_failure(self, verdict: Verdict) -> None:
        """Count one failure while closed: open on a run of timeouts or on the window."""
        self._window.add(1, 1)
        if verdict is Verdict.TIMEOUT:
            now = self._clock()
            self._timeouts_in_a_row += 1
            if self._timeouts_in_a_row == 1:
                self._run_started_at = now
            elif (
                self._timeouts_in_a_row >= self._consecutive_timeouts
                and now - self._run_started_at >= self._run_span_s
            ):
                self._open(now)
                return
        else:
            self._timeouts_in_a_row = 0  # it answered, if with an error: not a hang
        calls, failures = self._window.totals()
        if calls >= self._request_volume and failures * _PERCENT >= self._error_percent * calls:
            self._open(self._clock())

    def _refresh(self) -> None:
        """Apply the changes that time alone makes: open -> half-open, expired probe -> open."""
        if self._forced is not None:
            return  # frozen while forced: clearing starts afresh anyway
        now = self._clock()
        while True:
            if self._state is OPEN and now >= self._opened_at + self._open_s:
                self._probe_until = None
                self._change(HALF_OPEN, self._opened_at + self._open_s)
            elif (
                self._state is HALF_OPEN
                and self._probe_until is not None
                and now >= self._probe_until
            ):
                # An abandoned probe counts as a failure from the moment its lease ended.
                self._open(self._probe_until)
            else:
                return

    def _open(self, at: float) -> None:
        self._opened_at = at
        self._probe_until = None
        self._change(OPEN, at)

    def _change(self, state: BreakerState, at: float) -> None:
        before, self._state = self._state, state
        self._epoch += 1
        self._timeouts_in_a_row = 0
        self._notify(before, state, at)

    def _notify(self, before: BreakerState, after: BreakerState, at: float) -> None:
        if before is after:
            return
        # Changes that time alone makes are dated when they happened, not when noticed.
        self._changed_at = at
        if self._on_change is None:
            return
        try:
            self._on_change(before, after)
        except Exception:
            # Reporting must never undo or block a state change (nor crash the actor).
            log.exception("breaker state listener failed")
