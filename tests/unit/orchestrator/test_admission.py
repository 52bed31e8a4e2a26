"""The admission stage: a bound on requests in flight; beyond it, requests are shed."""

from __future__ import annotations

import pytest

from orchestrator.frontend.admission import Admission


def test_requests_are_admitted_up_to_the_bound_and_shed_beyond_it():
    admission = Admission(2)
    assert [admission.try_enter() for _ in range(3)] == [True, True, False]
    assert (admission.inflight, admission.shed) == (2, 1)
    admission.leave()
    assert admission.try_enter()
    assert (admission.inflight, admission.shed) == (2, 1)


def test_the_bound_admits_at_least_one():
    with pytest.raises(ValueError, match="max_inflight"):
        Admission(0)


def test_a_flooding_client_is_held_to_its_share_and_others_still_get_in():
    """Finding 4: one client at any rate keeps the last quarter of the bound for others."""
    admission = Admission(8)  # busy from 6 in flight on
    flooder, other = ("member", "m1"), ("member", "m2")
    assert [admission.try_enter(flooder) for _ in range(8)] == [True] * 6 + [False] * 2
    assert admission.try_enter(other)
    assert admission.try_enter(other)
    assert not admission.try_enter(flooder)
    assert (admission.held(flooder), admission.held(other)) == (6, 2)
    assert (admission.shed, admission.shed_unfair) == (3, 2)  # the last: the bound itself
    assert not admission.try_enter(other)
    assert (admission.shed, admission.shed_unfair) == (4, 2)


def test_below_the_headroom_every_client_is_admitted_whatever_it_holds():
    admission = Admission(8)
    client = ("address", "10.0.0.1")
    for _ in range(5):
        assert admission.try_enter(client)
    admission.leave(client)
    assert admission.try_enter(client)
    assert admission.shed == 0


def test_a_client_over_its_share_is_admitted_again_once_below_the_headroom():
    admission = Admission(8)
    flooder, other = ("member", "m1"), ("member", "m2")
    for _ in range(6):
        admission.try_enter(flooder)
    admission.try_enter(other)
    assert not admission.try_enter(flooder)
    admission.leave(other)
    admission.leave(flooder)  # 5 in flight: below the headroom
    assert admission.try_enter(flooder)


def test_per_client_counts_only_exist_while_requests_are_in_flight():
    admission = Admission(4)
    for index in range(100):
        client = ("address", f"10.0.0.{index}")
        assert admission.try_enter(client)
        admission.leave(client)
    assert admission.inflight == 0
    assert admission.held(("address", "10.0.0.1")) == 0
    assert len(admission._held or {}) == 0  # the bound on memory


def test_without_fairness_or_a_client_only_the_bound_applies():
    unfair = Admission(4, fair=False)
    assert [unfair.try_enter(("member", "m1")) for _ in range(5)] == [True] * 4 + [False]
    anonymous = Admission(4)
    assert [anonymous.try_enter() for _ in range(5)] == [True] * 4 + [False]
    assert anonymous.shed_unfair == 0
