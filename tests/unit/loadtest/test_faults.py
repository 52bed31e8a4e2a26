"""The fault timeline against a fake admin API: the preflight check, a refused fault
reported at once, and what the run does about it (abort, or mark the phase invalid)."""

from __future__ import annotations

import pytest

from orchestrator.loadtest.client import FailureKind, RequestError, Response
from orchestrator.loadtest.faults import FaultApiError, FaultTimeline, FaultWatch, check_fault_api
from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.report import AppliedFault


class FakeAdmin:
    """Answers each request with the next of ``answers`` (a Response, or an error raised)."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.requests = []

    def request(self, method, path, headers=(), body=None):
        self.requests.append((method, path, dict(headers), body))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def _json(status, body):
    return Response(status, "application/json", body.encode())


def test_the_fault_api_answers_its_listing():
    """GET /_faults with {"faults": {...}} passes the preflight."""
    admin = FakeAdmin(_json(200, '{"faults": {}}'))
    check_fault_api(admin)
    assert admin.requests == [("GET", "/_faults", {}, None)]


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (_json(404, '{"type": "not_found"}'), "HTTP 404"),
        (_json(200, '{"status": "ok"}'), "is not the simulated services' fault API"),
        (Response(200, "text/html", b"<html>"), "HTTP 200"),
        (RequestError(FailureKind.CONNECT, "refused"), "connect: refused"),
    ],
)
def test_anything_else_fails_the_preflight(answer, problem):
    """A wrong URL (Frontdoor itself, another server, nothing) is a FaultApiError."""
    with pytest.raises(FaultApiError) as caught:
        check_fault_api(FakeAdmin(answer))
    assert problem in str(caught.value)


def _timeline(admin, failures):
    events = [FaultEvent(2.0, "ratings", {"error_rate": 0.5}), FaultEvent(4.0, "ratings")]
    clock = iter([0.0, 2.0, 2.0, 4.0, 4.0])
    return FaultTimeline(admin, events, lambda: next(clock), lambda _s: None, failures.append)


def test_a_refused_fault_is_reported_at_once_and_the_timeline_goes_on():
    """on_error gets the failed event; the heal after it is still applied."""
    failures = []
    admin = FakeAdmin(_json(500, '{"error": "boom"}'), _json(200, '{"faults": {}}'))
    timeline = _timeline(admin, failures)
    timeline.run(0.0)
    assert [f.at_s for f in failures] == [2.0]
    assert "PUT /_faults/ratings: HTTP 500" in failures[0].error
    assert [f.applied_s for f in timeline.applied] == [None, 2.0]
    assert [(method, path, body) for method, path, _, body in admin.requests] == [
        ("PUT", "/_faults/ratings", b'{"error_rate": 0.5}'),
        ("DELETE", "/_faults/ratings", None),
    ]


class FakeRunner:
    """Counts stop() calls."""

    def __init__(self):
        self.stopped = 0

    def stop(self):
        self.stopped += 1


def _phases():
    events = [FaultEvent(2.0, "ratings", {"error_rate": 0.5}), FaultEvent(4.0, "ratings")]
    return PhaseMap.from_timeline(events, 1.0, 6.0)


def test_abort_stops_the_run_and_marks_the_phase():
    """The first failure stops the runner once and names the fault."""
    runner = FakeRunner()
    watch = FaultWatch(_phases(), 1.0, runner.stop, abort=True)
    watch.failed(AppliedFault(2.0, None, "ratings", {"error_rate": 0.5}, "HTTP 500"))
    watch.failed(AppliedFault(4.0, None, "ratings", None, "HTTP 500"))
    assert runner.stopped == 1
    assert watch.aborted == "the fault at 2 s was not applied"
    assert watch.invalid == {
        "ratings 50% errors": "the fault at 2 s was not applied",
        "after ratings 50% errors": "the fault at 4 s was not applied",
    }


def test_mark_lets_the_run_go_on_with_the_phase_invalid():
    """--invalid-phase=mark: no stop; a fault in the warmup invalidates the first phase."""
    runner = FakeRunner()
    watch = FaultWatch(_phases(), 1.0, runner.stop, abort=False)
    watch.failed(AppliedFault(0.5, None, "ratings", {"hang": True}, "timeout"))
    assert runner.stopped == 0
    assert watch.aborted is None
    assert watch.invalid == {"before": "the fault at 0.5 s was not applied"}
