"""actors.outcomes: one vocabulary, written as plain words, and every consumer's view of it
derived from it (the metrics and admin views are checked in tests/unit/orchestrator)."""

from __future__ import annotations

import json
import subprocess
import sys

import circuitbreaker
import orjson

from actors.breaker import CLOSED, HALF_OPEN, OPEN
from actors.messages import Outcome as ReplyOutcome
from actors.outcomes import (
    CALLS,
    COUNTERS,
    REFUSED_HERE,
    TIMED,
    WINDOW_COLUMNS,
    BreakerState,
    Outcome,
)
from actors.plan import Step, StepRecord
from actors.stats import WindowStats


def test_an_outcome_is_written_as_its_value():
    """Traces (orjson), log lines (json), statsd names (f-strings) all see the bare word."""
    for outcome in Outcome:
        assert orjson.loads(orjson.dumps({"outcome": outcome})) == {"outcome": outcome.value}
        assert json.loads(json.dumps({"outcome": outcome})) == {"outcome": outcome.value}
        assert f"{outcome}" == str(outcome) == outcome.value
        assert outcome == outcome.value
        assert hash(outcome) == hash(outcome.value)


def test_the_views_agree_with_each_other():
    """Refused here is a kind of call; timed calls are the rest; only calls and fallbacks
    have counters; every counter is a window column, and so is client_error."""
    assert REFUSED_HERE < CALLS
    assert TIMED == CALLS - REFUSED_HERE == {Outcome.SUCCESS, Outcome.FAILURE, Outcome.TIMEOUT}
    assert set(COUNTERS) == CALLS | {Outcome.FALLBACK}
    assert set(COUNTERS) | {Outcome.CLIENT_ERROR} == set(WINDOW_COLUMNS)
    assert [o for o in Outcome if o in WINDOW_COLUMNS] == list(WINDOW_COLUMNS)  # in order
    assert [o for o in Outcome if o.ok] == [Outcome.SUCCESS]


def test_messages_carry_the_same_enum():
    """``actors.messages.Outcome`` is the one enum, not a copy."""
    assert ReplyOutcome is Outcome


def test_a_step_record_is_unfinished_until_its_step_ends():
    """The trace's ``unfinished`` is the record's own default, not a word of the app's."""
    record = StepRecord(Step("s", "b", lambda _c: None))
    assert record.outcome is Outcome.UNFINISHED
    assert record.outcome not in CALLS


def test_window_columns_are_the_snapshot_keys():
    """A snapshot has ``calls``, then one key per column, in the columns' order."""
    keys = list(WindowStats().snapshot())
    assert keys == ["window_s", "calls", *WINDOW_COLUMNS.values(), "latency_ms"]


def test_breaker_states_are_one_enum_seen_everywhere():
    """The breaker's short names are the members, and the members are the package's words."""
    assert tuple(BreakerState) == (CLOSED, OPEN, HALF_OPEN)
    assert CLOSED is BreakerState.CLOSED
    assert tuple(BreakerState) == (
        circuitbreaker.STATE_CLOSED,
        circuitbreaker.STATE_OPEN,
        circuitbreaker.STATE_HALF_OPEN,
    )


def test_importing_the_vocabulary_imports_nothing_gevent_must_patch_first():
    """The logging and admin modules name these words: that must not bring in ssl (asyncio,
    through the ``circuitbreaker`` package), sockets, gevent or pykka."""
    probe = (
        "import json, sys; before = set(sys.modules); import actors.outcomes; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter on a fixed snippet
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(result.stdout))
    assert "actors.outcomes" in loaded
    assert not loaded & {"ssl", "asyncio", "socket", "gevent", "pykka", "circuitbreaker"}
