"""Bulkhead admission: bounded running, bounded waiting, slots handed on in order."""

from __future__ import annotations

import pytest

from actors.bulkhead import Admission, Bulkhead


def test_admits_up_to_max_concurrent_then_queues_then_rejects():
    """Calls run while slots are free, wait while the queue has room, else are rejected."""
    bulkhead: Bulkhead[str] = Bulkhead(max_concurrent=2, max_queue=1)
    assert [bulkhead.admit(x) for x in "abcd"] == [
        Admission.RUN,
        Admission.RUN,
        Admission.QUEUE,
        Admission.REJECT,
    ]
    assert (bulkhead.running, bulkhead.queued) == (2, 1)


def test_release_hands_the_slot_to_the_oldest_waiting_call():
    """A released slot goes straight to the first waiter, so running stays at the bound."""
    bulkhead: Bulkhead[str] = Bulkhead(max_concurrent=1, max_queue=2)
    for item in "abc":
        bulkhead.admit(item)
    assert bulkhead.release() == "b"
    assert bulkhead.running == 1
    assert bulkhead.release() == "c"
    assert bulkhead.release() is None
    assert bulkhead.running == 0


def test_zero_queue_rejects_at_once_when_full():
    """With max_queue 0 (the Hystrix default) a full bulkhead never queues."""
    bulkhead: Bulkhead[int] = Bulkhead(max_concurrent=1, max_queue=0)
    assert bulkhead.admit(1) is Admission.RUN
    assert bulkhead.admit(2) is Admission.REJECT


def test_drain_empties_the_queue():
    """drain returns every waiting call and leaves none."""
    bulkhead: Bulkhead[int] = Bulkhead(max_concurrent=1, max_queue=3)
    for item in range(4):
        bulkhead.admit(item)
    assert bulkhead.drain() == [1, 2, 3]
    assert bulkhead.queued == 0


def test_rejects_nonsense_bounds():
    """A bulkhead with no slots is a configuration error."""
    with pytest.raises(ValueError, match="max_concurrent"):
        Bulkhead(max_concurrent=0, max_queue=0)
