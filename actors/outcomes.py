"""Outcomes: the one vocabulary for how a backend call, or a plan step, ended; and the
states of the breaker that short-circuits calls.

Like Hystrix's ``HystrixEventType``, one enum serves everyone, and each consumer's view of
it is derived here, once: what a ``Reply`` carries and the backend actor counts, what
``PlanRun`` writes in each ``StepRecord`` (the trace's and the metrics' word), which
outcomes have a statsd counter or a latency, and which are columns of the admin windows.

Values are wire words (statsd leaf names, the ``outcome`` of trace lines, window keys via
``WINDOW_COLUMNS``) that dashboards and docs depend on: never change one. A member is a
``StrEnum``, so it is written, compared and hashed as its value.

The views are frozensets and a mapping built at import: a request asks ``outcome in
TIMED`` (one string hash), never a method that loops. Only the standard library is imported
here, so the logging and admin modules can name these words before gevent patches.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = [
    "CALLS",
    "COUNTERS",
    "OWN_TIMEOUT",
    "REFUSED_HERE",
    "TIMED",
    "WINDOW_COLUMNS",
    "BreakerForce",
    "BreakerState",
    "Outcome",
]


class Outcome(enum.StrEnum):
    """How one backend call, or one plan step, ended."""

    #: The backend answered with a value.
    SUCCESS = "success"
    #: The call failed: an error status or body, a transport error, a crashed actor, or a
    #: step's request builder raised.
    FAILURE = "failure"
    #: No answer in time: the call's own bound, or the request's deadline.
    TIMEOUT = "timeout"
    #: Refused here: no room in the backend's bulkhead, or no live actor for it.
    REJECTED = "rejected"
    #: Refused here: the backend's breaker is open.
    SHORT_CIRCUITED = "short_circuited"
    #: Windows only: a ``FAILURE`` that was a bad request (4xx but 408/429), or an
    #: endpoint's 4xx; a call that happened but is nobody's failure.
    CLIENT_ERROR = "client_error"
    #: Not a call: a step fell back (counted beside its call's own outcome).
    FALLBACK = "fallback"
    #: Steps only, no call: the builder asked for nothing, or a dependency left no result.
    SKIPPED = "skipped"
    #: Steps only, no call: the result was given to the run (``PlanRun(presets=...)``).
    PRESET = "preset"
    #: Steps only, no call: the builder refused the device's request (``plan.Refused``).
    REFUSED = "refused"
    #: Steps only: not ended yet (a step still pending or running when its run ended).
    UNFINISHED = "unfinished"

    @property
    def ok(self) -> bool:
        """Whether the call produced a value (``SUCCESS``)."""
        return self is Outcome.SUCCESS


#: How a backend call can end: a ``Reply``'s outcome. A step that ended so made its call
#: (or had it refused here), and counts in its backend's statsd counters.
CALLS: Final = frozenset(
    {Outcome.SUCCESS, Outcome.FAILURE, Outcome.TIMEOUT, Outcome.REJECTED, Outcome.SHORT_CIRCUITED}
)
#: A ``TIMEOUT`` reply's error when the call's own bound (the backend's ``timeout_ms``, or
#: what was left of the deadline if less) fired, as opposed to a deadline that passed
#: before the call started; ``actors.plan`` tells the two bounds apart by the time.
OWN_TIMEOUT: Final = "timeout"
#: Calls Frontdoor refused itself: they never reached the backend, so the breaker never
#: hears of them, their latency is not timed, and a device may try again soon.
REFUSED_HERE: Final = frozenset({Outcome.REJECTED, Outcome.SHORT_CIRCUITED})
#: Calls that may have reached the backend: their latency is timed (when an attempt ran).
TIMED: Final = CALLS - REFUSED_HERE
#: The leaves of a backend's statsd counters (``{p}.backend.{b}.{leaf}``), in declaration
#: order: each call outcome, and ``fallback`` for each step that fell back.
COUNTERS: Final = tuple(o for o in Outcome if o in CALLS or o is Outcome.FALLBACK)
#: The columns of a rolling window (``actors.stats.WindowStats``, shown by the admin views),
#: in order: outcome -> key in a snapshot. All but ``fallback`` count as calls.
WINDOW_COLUMNS: Final[Mapping[Outcome, str]] = MappingProxyType(
    {
        Outcome.SUCCESS: "successes",
        Outcome.FAILURE: "failures",
        Outcome.TIMEOUT: "timeouts",
        Outcome.REJECTED: "rejections",
        Outcome.SHORT_CIRCUITED: "short_circuits",
        Outcome.CLIENT_ERROR: "client_errors",
        Outcome.FALLBACK: "fallbacks",
    }
)


class BreakerState(enum.StrEnum):
    """A breaker's state as callers see it (``actors.breaker``). The values are the
    ``circuitbreaker`` package's words, and wire words too: admin views, ``breaker_state``
    events, ``breaker_{state}`` counters."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class BreakerForce(enum.StrEnum):
    """What an operator may ask of a breaker (``POST /_admin/backends/{name}/breaker``):
    force it open, force it closed, or clear the override. Wire words of the admin API."""

    OPEN = "open"
    CLOSED = "closed"
    CLEAR = "clear"
