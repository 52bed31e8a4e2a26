"""Per-endpoint per-second series: by scheduled second, adding up to the phase cells."""

from __future__ import annotations

from run_info import run_info

from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.report import build_report
from orchestrator.loadtest.stats import Recorder


def _recorder():
    events = [FaultEvent(4, "licensing", {"hang": True}), FaultEvent(6, "licensing")]
    return Recorder(PhaseMap.from_timeline(events, 1, 8), warmup_s=1)


def test_each_second_counts_what_became_of_the_requests_scheduled_in_it():
    """A request scheduled at 2.9 s that took 2 s counts in second 2; statuses, failures,
    unsent and degraded answers each have their count; warmup is left out."""
    recorder = _recorder()
    recorder.record("play", 0.5, 0.6, 0.1, status=200)  # warmup
    recorder.record("play", 2.9, 4.9, 2.0, status=504)
    recorder.record("play", 2.1, 2.2, 0.1, status=200, degraded=("bookmarks",))
    recorder.record("play", 2.5, 7.5, 5.0, status=None, failure="timeout")
    recorder.not_sent("play", 2.6)
    second = recorder.endpoint_series[(2, "play")]
    assert second.scheduled == 4
    assert second.statuses == {"5xx": 1, "2xx": 1}
    assert (second.failed, second.not_sent, second.degraded) == (1, 1, 1)
    assert second.latency.count == 3
    assert second.latency.summary_ms()["max"] == 5000.0
    assert list(recorder.endpoint_series) == [(2, "play")]


def test_the_report_lists_them_per_endpoint_and_they_add_up_to_the_totals():
    """Every endpoint's seconds sum to its whole-run count and statuses."""
    recorder = _recorder()
    for tenth in range(10, 80):
        at = tenth / 10
        recorder.record("home", at, at + 0.05, 0.05, status=200 if tenth % 7 else 503)
        if tenth % 3 == 0:
            recorder.record("play", at, at + 1.5, 1.5, status=504)
    report = build_report(recorder, run_info(warmup_s=1, duration_s=7, ended_s=8))
    series = report["endpoint_series"]
    assert list(series) == ["home", "play"]
    for name, seconds in series.items():
        total = report["endpoints"][name]["total"]
        assert sum(point["scheduled"] for point in seconds) == total["count"]
        for status in ("2xx", "5xx"):
            got = sum(point["status"].get(status, 0) for point in seconds)
            assert got == total["status"].get(status, 0)
    assert [point["t"] for point in series["home"]] == list(range(1, 8))
    assert series["play"][0]["latency_ms"]["p50"] == 1500.0
