"""The runner on a fake clock: open-loop timing, no coordinated omission, bounds, stop."""

from __future__ import annotations

import gevent
import gevent.event
import pytest

from orchestrator.loadtest.client import FailureKind, RequestError, Response
from orchestrator.loadtest.mix import PlannedRequest
from orchestrator.loadtest.phase import PhaseMap
from orchestrator.loadtest.runner import Runner, RunPlan, degraded_of, retry_after_of
from orchestrator.loadtest.schedule import ClosedLoop, OpenLoop
from orchestrator.loadtest.stats import Recorder

OK = Response(200, "application/json", b'{"meta":{"degraded":[]}}')


class FakeClock:
    """Time moves only when the runner waits or a fake request says it took time."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def wait(self, seconds):
        gevent.sleep(0)  # spawned requests run first, as they would during a real wait
        self.now += seconds
        return False


def _requests():
    return PlannedRequest("home", "GET", "/v1/discovery/home", ())


def _runner(plan, send, clock, warmup_s=0.0):
    recorder = Recorder(PhaseMap.from_timeline([], warmup_s, plan.end_s), warmup_s)
    return Runner(plan, _requests, send, recorder, clock=clock, wait=clock.wait), recorder


def test_open_loop_sends_on_schedule_and_records_each_request():
    """10 req/s for 2 s: 20 requests, each answered at once, zero latency."""
    clock = FakeClock()
    sent_at = []

    def send(_request):
        sent_at.append(round(clock() - 1000.0, 6))
        return OK

    runner, recorder = _runner(RunPlan(OpenLoop.constant(10), 0, 2), send, clock)
    assert runner.run() == 2.0
    assert sent_at == [round(i / 10, 6) for i in range(20)]
    cell = recorder.cells[(0, "home")]
    assert (cell.count, cell.statuses["2xx"]) == (20, 20)
    assert cell.latency.max_ms() <= 0.001  # the histogram's floor is 1 µs


def test_a_stall_counts_against_every_request_it_delayed():
    """One 1 s stall at 10 req/s: the ten requests due during it carry their lateness."""
    clock = FakeClock()
    calls = 0

    def send(_request):
        nonlocal calls
        calls += 1
        if calls == 5:
            clock.now += 1.0  # the server (and so this single-threaded test) stalls for 1 s
        return OK

    runner, recorder = _runner(RunPlan(OpenLoop.constant(10), 0, 3), send, clock)
    runner.run()
    latency = recorder.cells[(0, "home")].latency
    assert latency.count == 30
    assert latency.max_ms() == pytest.approx(1000.0, rel=1e-3)  # the stalled request
    # The 10 requests scheduled during the stall were sent late; a closed-loop tool would
    # have recorded one slow request and 9 fast ones.
    assert latency.percentile_ms(70) >= 99.0
    assert recorder.send_lag.max_ms() >= 900.0


def test_warmup_requests_are_sent_but_not_reported():
    """Requests scheduled in the first second of warmup are counted apart."""
    clock = FakeClock()
    runner, recorder = _runner(RunPlan(OpenLoop.constant(10), 1, 1), lambda _r: OK, clock, 1)
    runner.run()
    assert recorder.warmup_requests == 10
    assert recorder.cells[(0, "home")].count == 10


def test_beyond_max_inflight_requests_are_counted_unsent():
    """With 3 requests hanging, the other 7 are recorded as not sent, never hidden."""
    clock = FakeClock()
    release = gevent.event.Event()

    def send(_request):
        release.wait()
        return OK

    plan = RunPlan(OpenLoop.constant(10), 0, 1, max_inflight=3, drain_s=5)
    runner, recorder = _runner(plan, send, clock)
    waiter = gevent.spawn(runner.run)
    gevent.idle()
    release.set()
    waiter.get(timeout=5)
    cell = recorder.cells[(0, "home")]
    assert (cell.sent, cell.not_sent, cell.count) == (3, 7, 10)


def test_transport_failures_and_server_errors_are_recorded_as_such():
    """A timeout is a failure of its kind; a 503 is a response of class 5xx."""
    clock = FakeClock()
    answers = iter([RequestError(FailureKind.TIMEOUT, "slow"), Response(503, "text/plain", b"x")])

    def send(_request):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    runner, recorder = _runner(RunPlan(OpenLoop.constant(2), 0, 1), send, clock)
    runner.run()
    cell = recorder.cells[(0, "home")]
    assert (cell.failures["timeout"], cell.statuses["5xx"]) == (1, 1)
    assert runner.errors == 2
    assert recorder.samples == {"home timeout": "timeout: slow", "home 503": "x"}


def test_max_requests_caps_the_run():
    """The request cap ends the schedule early."""
    clock = FakeClock()
    plan = RunPlan(OpenLoop.constant(100), 0, 10, max_requests=7)
    runner, recorder = _runner(plan, lambda _r: OK, clock)
    runner.run()
    assert recorder.cells[(0, "home")].count == 7


def test_stop_ends_the_run_with_what_was_recorded():
    """stop() during a run ends scheduling; the partial results stay consistent."""
    clock = FakeClock()
    runner_box = []

    def send(_request):
        if runner_box[0].issued == 5:
            runner_box[0].stop()
        return OK

    runner, recorder = _runner(RunPlan(OpenLoop.constant(10), 0, 10), send, clock)
    runner_box.append(runner)
    ended = runner.run()
    assert runner.stopped_early
    assert ended < 1.0
    assert recorder.cells[(0, "home")].count == 5


def test_closed_loop_users_send_back_to_back():
    """Each request moves the shared fake clock 100 ms: ~10 in 1 s, each 100 ms from its send."""
    clock = FakeClock()

    def send(_request):
        clock.now += 0.1
        return OK

    runner, recorder = _runner(RunPlan(ClosedLoop(2), 0, 1), send, clock)
    runner.run()
    cell = recorder.cells[(0, "home")]
    assert 9 <= cell.count <= 12
    assert cell.latency.percentile_ms(50) == pytest.approx(100.0, rel=1e-2)


def test_degraded_of_reads_meta_degraded_from_json_successes_only():
    """Degraded names come from 2xx JSON bodies; errors and other types are not degraded."""
    degraded = Response(200, "application/json", b'{"meta":{"degraded":["ratings"]}}')
    assert degraded_of(degraded) == ("ratings",)
    assert degraded_of(OK) == ()
    assert degraded_of(Response(503, "application/json", b'{"meta":{"degraded":["x"]}}')) == ()
    assert degraded_of(Response(200, "text/html", b"<html>")) == ()
    assert degraded_of(Response(200, "application/json", b"{nope")) == ("<invalid JSON>",)


SHED = Response(
    503, "application/problem+json", b'{"code":"overloaded","status":503}', retry_after_s=1.0
)
OPEN_BREAKER = Response(
    503,
    "application/problem+json",
    b'{"code":"dependency_unavailable","status":503}',
    retry_after_s=1.0,
)


def test_retry_after_of_names_status_and_problem_code_of_answers_that_carry_it():
    """Shed and dependency 503s are told apart by their code; no Retry-After, no name."""
    assert retry_after_of(SHED) == "503 overloaded"
    assert retry_after_of(OPEN_BREAKER) == "503 dependency_unavailable"
    assert retry_after_of(Response(429, "text/plain", b"slow down", retry_after_s=2.0)) == "429"
    assert retry_after_of(Response(503, "application/json", b"{nope", retry_after_s=0.0)) == "503"
    assert retry_after_of(Response(503, "application/problem+json", b'{"code":"x"}')) is None


def test_open_loop_counts_retry_after_answers_and_never_backs_off():
    """Every answer says Retry-After: 1, and the schedule still sends 10 a second on time."""
    clock = FakeClock()
    sent_at = []
    answers = iter([SHED, OPEN_BREAKER] * 10)

    def send(_request):
        sent_at.append(round(clock() - 1000.0, 6))
        return next(answers)

    runner, recorder = _runner(RunPlan(OpenLoop.constant(10), 0, 2), send, clock)
    runner.run()
    assert sent_at == [round(i / 10, 6) for i in range(20)]
    cell = recorder.cells[(0, "home")]
    assert cell.retry_after == {"503 overloaded": 10, "503 dependency_unavailable": 10}


def test_progress_p99_covers_the_last_interval_and_is_none_without_samples():
    """The progress line's p99 is of the requests since the last snapshot; a second with no
    completed request has none (shown as a dash), not 0.0 ms."""
    clock = FakeClock()
    runner, recorder = _runner(RunPlan(OpenLoop.constant(10), 0, 1), lambda _r: OK, clock)
    runner.start = clock()
    recorder.record("home", 0.1, 0.3, 0.2, status=200)
    assert runner.progress().p99_ms == pytest.approx(200, rel=1e-3)
    assert runner.progress().p99_ms is None
