"""The recorder: warmup exclusion, phase attribution, status classes, per-second bins."""

from __future__ import annotations

from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.stats import Cell, Recorder, status_class


def _recorder():
    events = [FaultEvent(10, "licensing", {"hang": True}), FaultEvent(20, "licensing")]
    return Recorder(PhaseMap.from_timeline(events, 5, 30), warmup_s=5)


def test_requests_scheduled_in_warmup_are_excluded():
    """Only a count of warmup requests is kept; no cell or bin sees them."""
    recorder = _recorder()
    recorder.record("home", 4.99, 5.5, 0.51, status=200)
    recorder.not_sent("home", 1.0)
    assert recorder.warmup_requests == 2
    assert recorder.cells == {}
    assert recorder.series == {}


def test_requests_count_in_the_phase_they_were_scheduled_in():
    """A request scheduled before the fault but finished during it counts as 'before'."""
    recorder = _recorder()
    recorder.record("play", 9.9, 11.4, 1.5, status=504)
    recorder.record("play", 10.0, 11.5, 1.5, status=504)
    before, during = recorder.cells[(0, "play")], recorder.cells[(1, "play")]
    assert (before.statuses["5xx"], during.statuses["5xx"]) == (1, 1)


def test_failures_unsent_and_degraded_are_counted_apart():
    """Transport failures, unsent requests and degraded answers each have their own count."""
    recorder = _recorder()
    recorder.record("home", 6, 6.1, 0.1, status=200, degraded=("ratings",))
    recorder.record("home", 6, 16, 10, status=None, failure="timeout")
    recorder.not_sent("home", 6.5)
    cell = recorder.cells[(0, "home")]
    assert (cell.responses, cell.sent, cell.count) == (1, 2, 3)
    assert cell.failures == {"timeout": 1}
    assert (cell.degraded, cell.degraded_by) == (1, {"ratings": 1})
    assert cell.latency.count == 2


def test_seconds_bin_latency_by_schedule_and_throughput_by_completion():
    """A stalled request's latency lands in its scheduled second, its response in its last."""
    recorder = _recorder()
    recorder.record("home", 6.2, 8.7, 2.5, status=503)
    assert recorder.series[6].latency.count == 1
    assert recorder.series[6].scheduled == 1
    assert (recorder.series[8].completed, recorder.series[8].errors_5xx) == (1, 1)


def test_samples_keep_the_first_detail_per_endpoint_and_status():
    """Why errors happened: the first body per (endpoint, status) is kept, later ones not."""
    recorder = _recorder()
    recorder.sample("play", "503", "first")
    recorder.sample("play", "503", "second")
    assert recorder.samples == {"play 503": "first"}


def test_status_classes():
    """Statuses map to their class; nonsense maps to 'other'."""
    assert [status_class(s) for s in (200, 302, 404, 503, 999)] == [
        "2xx",
        "3xx",
        "4xx",
        "5xx",
        "other",
    ]


def test_answers_with_retry_after_are_counted_by_name_and_merged():
    """Shed and dependency 503s are counted apart, in the cell and across merged cells."""
    recorder = _recorder()
    recorder.record("play", 6, 6.001, 0.001, status=503, retry_after="503 overloaded")
    recorder.record("play", 6, 6.1, 0.1, status=503, retry_after="503 dependency_unavailable")
    recorder.record("play", 6, 6.2, 0.2, status=504)
    cell = recorder.cells[(0, "play")]
    assert cell.retry_after == {"503 overloaded": 1, "503 dependency_unavailable": 1}
    merged = Cell()
    merged.merge(cell)
    merged.merge(cell)
    assert merged.retry_after == {"503 overloaded": 2, "503 dependency_unavailable": 2}
