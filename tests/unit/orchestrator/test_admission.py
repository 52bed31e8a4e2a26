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
