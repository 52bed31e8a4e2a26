"""Circuit breaker: Hystrix-style tripping, one probe at a time, leases, overrides."""

from __future__ import annotations

import circuitbreaker
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.breaker import (
    CLOSED,
    FORCED_TICKET,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    Override,
    Verdict,
)
from actors.testing import ManualClock
from backends.specs import BreakerSettings

LEASE_S = 2.0


class Changes:
    """Records the breaker's state changes."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    def __call__(self, before: str, after: str) -> None:
        self.seen.append((before, after))


def _breaker(
    clock: ManualClock, changes: Changes | None = None, **overrides: float
) -> CircuitBreaker:
    return CircuitBreaker(
        BreakerSettings(**overrides),
        probe_lease_s=LEASE_S,
        clock=clock,
        on_change=changes,
    )


def _calls(breaker: CircuitBreaker, verdicts: list[Verdict]) -> None:
    for verdict in verdicts:
        ticket = breaker.acquire()
        assert ticket is not None
        breaker.record(ticket, verdict)


def _open(breaker: CircuitBreaker) -> None:
    _calls(breaker, [Verdict.FAILURE] * 20)
    assert breaker.state == OPEN


def test_states_are_the_circuitbreaker_packages():
    """The state names are the package's own constants."""
    assert (CLOSED, OPEN, HALF_OPEN) == (
        circuitbreaker.STATE_CLOSED,
        circuitbreaker.STATE_OPEN,
        circuitbreaker.STATE_HALF_OPEN,
    )


def test_stays_closed_below_the_request_volume_even_if_everything_fails():
    """19 failures out of 19 calls do not open it: the minimum volume is 20."""
    breaker = _breaker(ManualClock())
    _calls(breaker, [Verdict.FAILURE] * 19)
    assert breaker.state == CLOSED


def test_opens_at_the_error_percentage_once_the_volume_is_reached():
    """10 failures in 20 calls is 50 %: open."""
    breaker = _breaker(ManualClock())
    _calls(breaker, [Verdict.SUCCESS, Verdict.FAILURE] * 10)
    assert breaker.state == OPEN


def test_stays_closed_under_the_error_percentage():
    """9 failures in 20 calls is 45 %: still closed."""
    breaker = _breaker(ManualClock())
    _calls(breaker, [Verdict.SUCCESS] * 11 + [Verdict.FAILURE] * 9)
    assert breaker.state == CLOSED
    assert breaker.window() == (20, 9)


def test_failures_older_than_the_window_do_not_count():
    """19 failures, then 10 s of quiet, then one more: the window holds only 1 call."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _calls(breaker, [Verdict.FAILURE] * 19)
    clock.advance(10.0)
    _calls(breaker, [Verdict.FAILURE])
    assert breaker.state == CLOSED
    assert breaker.window() == (1, 1)


def test_neutral_results_are_not_counted():
    """Bad requests (4xx) neither trip it nor dilute the error percentage."""
    breaker = _breaker(ManualClock())
    _calls(breaker, [Verdict.NEUTRAL] * 50)
    assert breaker.window() == (0, 0)
    _calls(breaker, [Verdict.FAILURE] * 20)
    assert breaker.state == OPEN


def test_open_refuses_every_call_until_the_open_time_passes():
    """While open nothing passes; after open_ms it is half-open."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    assert breaker.acquire() is None
    clock.advance(4.999)
    assert breaker.acquire() is None
    clock.advance(0.001)
    assert breaker.state == HALF_OPEN


def test_half_open_lets_exactly_one_probe_through():
    """The first caller after the open time is the probe; the others are refused."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    assert [breaker.acquire() for _ in range(5)] == [None] * 5


def test_a_successful_probe_closes_it_with_an_empty_window():
    """Success closes; earlier failures are forgotten."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, Verdict.SUCCESS)
    assert breaker.state == CLOSED
    assert breaker.window() == (0, 0)


def test_a_failed_probe_reopens_it_for_another_open_time():
    """Failure reopens; the next probe is due open_ms after the failure."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    clock.advance(0.5)
    breaker.record(probe, Verdict.FAILURE)
    assert breaker.state == OPEN
    clock.advance(4.9)
    assert breaker.acquire() is None
    clock.advance(0.1)
    assert breaker.acquire() is not None


def test_an_abandoned_probe_reopens_it_when_its_lease_expires():
    """A probe whose result never comes back cannot wedge half-open."""
    clock = ManualClock()
    changes = Changes()
    breaker = _breaker(clock, changes)
    _open(breaker)
    clock.advance(5.0)
    lost = breaker.acquire()
    assert lost is not None
    clock.advance(LEASE_S)  # the lease ends: open from that moment
    assert breaker.state == OPEN
    assert breaker.acquire() is None
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, Verdict.SUCCESS)
    assert changes.seen == [
        (CLOSED, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, OPEN),
        (OPEN, HALF_OPEN),
        (HALF_OPEN, CLOSED),
    ]


def test_a_lease_noticed_late_reopens_from_when_it_expired():
    """If nobody asks until long after the lease ended, the next probe is due at once."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    assert breaker.acquire() is not None
    clock.advance(LEASE_S + 5.0)
    assert breaker.acquire() is not None


def test_the_late_result_of_an_expired_probe_is_ignored():
    """After its lease, the old probe's success neither closes nor frees the new probe."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    old = breaker.acquire()
    assert old is not None
    clock.advance(LEASE_S + 5.0)
    new = breaker.acquire()
    assert new is not None
    breaker.record(old, Verdict.SUCCESS)
    assert breaker.state == HALF_OPEN
    assert breaker.acquire() is None  # the new probe still holds the slot


def test_a_released_probe_frees_the_slot_for_the_next_caller():
    """A probe that never reached the backend (rejected, expired) lets another probe go."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.release(probe)
    assert breaker.state == HALF_OPEN
    assert breaker.acquire() is not None


def test_a_neutral_probe_frees_the_slot_without_deciding():
    """A probe answered 404 says nothing about health: still half-open, next caller probes."""
    clock = ManualClock()
    breaker = _breaker(clock)
    _open(breaker)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, Verdict.NEUTRAL)
    assert breaker.state == HALF_OPEN
    assert breaker.acquire() is not None


def test_results_of_calls_admitted_before_it_opened_are_ignored():
    """A success from before the trip does not close it; a failure from before a close
    does not count against the new closed state."""
    clock = ManualClock()
    breaker = _breaker(clock)
    early = [breaker.acquire() for _ in range(2)]
    _open(breaker)
    assert early[0] is not None
    breaker.record(early[0], Verdict.SUCCESS)
    assert breaker.state == OPEN
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, Verdict.SUCCESS)
    assert early[1] is not None
    breaker.record(early[1], Verdict.FAILURE)
    assert breaker.window() == (0, 0)


def test_valid_says_whether_a_ticket_belongs_to_the_current_state():
    """A ticket from before a trip is no longer valid; a fresh one is."""
    breaker = _breaker(ManualClock())
    ticket = breaker.acquire()
    assert ticket is not None
    assert breaker.valid(ticket)
    _open(breaker)
    assert not breaker.valid(ticket)


def test_forced_open_refuses_and_forced_closed_admits_without_counting():
    """Operators override it; while forced nothing is recorded; clearing starts closed."""
    clock = ManualClock()
    changes = Changes()
    breaker = _breaker(clock, changes)
    breaker.force(Override.FORCE_OPEN)
    assert (breaker.state, breaker.acquire()) == (OPEN, None)
    breaker.force(Override.FORCE_CLOSED)
    _calls(breaker, [Verdict.FAILURE] * 50)
    assert (breaker.state, breaker.window()) == (CLOSED, (0, 0))
    assert breaker.acquire() == FORCED_TICKET
    breaker.force(None)
    assert (breaker.state, breaker.forced) == (CLOSED, None)
    assert changes.seen == [(CLOSED, OPEN), (OPEN, CLOSED)]


def test_clearing_an_override_of_an_open_breaker_starts_closed():
    """Back to automatic means closed with an empty window."""
    breaker = _breaker(ManualClock())
    _open(breaker)
    breaker.force(Override.FORCE_OPEN)
    breaker.force(None)
    assert breaker.state == CLOSED
    assert breaker.window() == (0, 0)


def test_a_failing_listener_does_not_stop_the_state_change():
    """Reporting is best effort: an exception in the listener is logged and swallowed."""

    def broken(_before: str, _after: str) -> None:
        raise RuntimeError

    breaker = CircuitBreaker(
        BreakerSettings(), probe_lease_s=LEASE_S, clock=ManualClock(), on_change=broken
    )
    _open(breaker)
    assert breaker.acquire() is None


def test_settings_are_per_backend():
    """Volume, percentage and open time come from BreakerSettings."""
    clock = ManualClock()
    breaker = _breaker(clock, request_volume=4, error_percent=75.0, open_ms=100)
    _calls(breaker, [Verdict.FAILURE, Verdict.FAILURE, Verdict.SUCCESS, Verdict.FAILURE])
    assert breaker.state == OPEN
    clock.advance(0.1)
    assert breaker.state == HALF_OPEN


def test_rejects_a_non_positive_lease():
    """A probe must hold its slot for some time."""
    with pytest.raises(ValueError, match="probe_lease_s"):
        CircuitBreaker(BreakerSettings(), probe_lease_s=0, clock=ManualClock())


_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.none()),
        st.tuples(st.just("finish"), st.sampled_from(list(Verdict))),
        st.tuples(st.just("advance"), st.floats(min_value=0.0, max_value=6.0)),
    ),
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(_STEPS)
def test_never_more_than_one_probe_out_and_never_wedged(steps):
    """Whatever happens, half-open has at most one probe out, and time alone always
    brings a probe back (the breaker cannot stay shut for ever)."""
    clock = ManualClock()
    breaker = _breaker(clock, request_volume=3, open_ms=1_000)
    tickets: list[int] = []
    for action, arg in steps:
        if action == "acquire":
            ticket = breaker.acquire()
            if ticket is not None:
                tickets.append(ticket)
        elif action == "finish" and tickets:
            breaker.record(tickets.pop(0), arg)
        elif action == "advance":
            clock.advance(arg)
        if breaker.state == HALF_OPEN:
            probes_out = sum(1 for ticket in tickets if breaker.valid(ticket))
            assert probes_out <= 1
    clock.advance(1.0 + LEASE_S + 1.0)
    assert breaker.acquire() is not None


def test_changed_at_dates_each_change_when_it_happened():
    """Time-driven changes are dated at the moment they became due, not when noticed."""
    clock = ManualClock(100.0)
    breaker = _breaker(clock)
    assert breaker.changed_at is None
    _open(breaker)
    assert breaker.changed_at == 100.0
    clock.advance(7.0)  # half-open became due at 105, noticed at 107
    assert breaker.state == HALF_OPEN
    assert breaker.changed_at == 105.0


def test_time_does_not_move_a_forced_breaker():
    """While forced open, an underlying open breaker does not drift to half-open."""
    clock = ManualClock()
    changes = Changes()
    breaker = _breaker(clock, changes)
    _open(breaker)
    breaker.force(Override.FORCE_OPEN)
    clock.advance(60.0)
    assert breaker.state == OPEN
    assert changes.seen == [(CLOSED, OPEN)]


# -- a run of timeouts ---------------------------------------------------------------------


def _timeouts(breaker: CircuitBreaker, clock: ManualClock, count: int, every_s: float) -> None:
    """``count`` timeouts, the clock moving ``every_s`` before each."""
    for _ in range(count):
        clock.advance(every_s)
        _calls(breaker, [Verdict.TIMEOUT])


#: The run these tests count: five timeouts over at least 0.25 s.
RUN = {"consecutive_timeouts": 5, "consecutive_timeouts_span_ms": 250}


def test_the_shipped_run_is_three_timeouts_over_a_tenth_of_a_second():
    """The defaults: on, and short enough to trip within a second of a hang's first timeout
    at 10 calls a second."""
    settings = BreakerSettings()
    assert (settings.consecutive_timeouts, settings.consecutive_timeouts_span_ms) == (3, 100)


def test_a_run_of_timeouts_opens_it_before_the_window_would():
    """Five timeouts in a row 0.1 s apart (a hang at 10 calls a second) open it at the fifth,
    0.4 s after the first, with 100 successes in the window and under its volume."""
    clock = ManualClock()
    changes = Changes()
    breaker = _breaker(clock, changes, **RUN)
    _calls(breaker, [Verdict.SUCCESS] * 100)
    _timeouts(breaker, clock, 4, every_s=0.1)
    assert breaker.state == CLOSED
    _timeouts(breaker, clock, 1, every_s=0.1)
    assert (breaker.state, changes.seen) == (OPEN, [(CLOSED, OPEN)])


def test_a_burst_of_timeouts_at_one_instant_is_a_stall_not_a_hang():
    """Fifty calls that all time out at the same instant (this process got no CPU while they
    were in flight) do not open it, and the answers after the burst end the run; a run that
    goes on past the span opens it at the first timeout that reaches it."""
    clock = ManualClock()
    breaker = _breaker(clock, request_volume=1_000, **RUN)
    _calls(breaker, [Verdict.TIMEOUT] * 50)
    _timeouts(breaker, clock, 1, every_s=0.249)
    assert breaker.state == CLOSED
    _calls(breaker, [Verdict.SUCCESS])
    _calls(breaker, [Verdict.TIMEOUT] * 50)
    _timeouts(breaker, clock, 1, every_s=0.25)
    assert breaker.state == OPEN


def test_the_span_only_adds_to_the_count():
    """However long the run lasts, it needs its five timeouts."""
    clock = ManualClock()
    breaker = _breaker(clock, request_volume=1_000, **RUN)
    _timeouts(breaker, clock, 4, every_s=10.0)
    assert breaker.state == CLOSED
    _timeouts(breaker, clock, 1, every_s=10.0)
    assert breaker.state == OPEN


@pytest.mark.parametrize(
    "between",
    [Verdict.SUCCESS, Verdict.FAILURE],
    ids=["a-success", "an-error-answer"],
)
def test_any_answer_breaks_the_run(between):
    """A success or an error status between timeouts (the backend answered: not a hang)
    starts the run again."""
    clock = ManualClock()
    breaker = _breaker(clock, request_volume=1_000, **RUN)
    _timeouts(breaker, clock, 4, every_s=0.1)
    _calls(breaker, [between])
    _timeouts(breaker, clock, 4, every_s=0.1)
    assert breaker.state == CLOSED
    _timeouts(breaker, clock, 1, every_s=0.1)
    assert breaker.state == OPEN


def test_a_neutral_result_neither_counts_nor_breaks_the_run():
    """A call never sent (its deadline) or a bad request says nothing either way."""
    clock = ManualClock()
    breaker = _breaker(clock, request_volume=1_000, **RUN)
    _timeouts(breaker, clock, 4, every_s=0.1)
    _calls(breaker, [Verdict.NEUTRAL] * 3)
    assert breaker.state == CLOSED
    _timeouts(breaker, clock, 1, every_s=0.1)
    assert breaker.state == OPEN


def test_zero_turns_the_run_off_and_timeouts_still_count_in_the_window():
    """With ``consecutive_timeouts = 0`` only the window decides, where a timeout is a
    failure like any other."""
    clock = ManualClock()
    breaker = _breaker(clock, consecutive_timeouts=0)
    _timeouts(breaker, clock, 19, every_s=0.1)
    assert (breaker.state, breaker.window()) == (CLOSED, (19, 19))
    _timeouts(breaker, clock, 1, every_s=0.1)
    assert breaker.state == OPEN


def test_a_timed_out_probe_reopens_it_and_a_closed_breaker_starts_a_new_run():
    """Half-open, a timeout is a failed probe; closed again after a success, the timeouts
    from before the opening do not count toward a new run."""
    clock = ManualClock()
    breaker = _breaker(clock, **RUN)
    _timeouts(breaker, clock, 5, every_s=0.1)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    assert breaker.state == HALF_OPEN
    breaker.record(probe, Verdict.TIMEOUT)
    assert breaker.state == OPEN
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, Verdict.SUCCESS)
    _timeouts(breaker, clock, 4, every_s=0.1)
    assert breaker.state == CLOSED


def test_late_timeouts_from_before_it_opened_do_not_start_a_new_run():
    """Calls admitted before the opening that time out after it carry an old ticket: they
    count neither in the open state nor in the run after it closes."""
    clock = ManualClock()
    breaker = _breaker(clock, **RUN)
    old = [breaker.acquire() for _ in range(5)]
    _timeouts(breaker, clock, 5, every_s=0.1)
    clock.advance(5.0)
    probe = breaker.acquire()
    assert probe is not None
    breaker.record(probe, Verdict.SUCCESS)
    for ticket in old:
        assert ticket is not None
        clock.advance(0.1)
        breaker.record(ticket, Verdict.TIMEOUT)
    _timeouts(breaker, clock, 4, every_s=0.1)
    assert breaker.state == CLOSED
