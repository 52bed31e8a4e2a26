"""The report's JSON and text notes for answers that carried Retry-After."""

from __future__ import annotations

from run_info import run_info

from orchestrator.loadtest.phase import PhaseMap
from orchestrator.loadtest.report import AppliedFault, build_report, render_tables
from orchestrator.loadtest.stats import Recorder


def _report():
    recorder = Recorder(PhaseMap.from_timeline([], 0, 10), warmup_s=0)
    for _ in range(3):
        recorder.record("home", 1, 1.001, 0.001, status=503, retry_after="503 overloaded")
    recorder.record("play", 1, 1.1, 0.1, status=503, retry_after="503 dependency_unavailable")
    recorder.record("play", 1, 1.2, 0.2, status=503, retry_after="503 overloaded")
    recorder.record("play", 1, 2.5, 1.5, status=504)
    return build_report(recorder, run_info())


def test_each_cell_counts_its_retry_after_answers():
    """Per endpoint and overall, by status and problem code."""
    report = _report()
    assert report["endpoints"]["play"]["total"]["retry_after"] == {
        "503 dependency_unavailable": 1,
        "503 overloaded": 1,
    }
    assert report["all"]["total"]["retry_after"] == {
        "503 dependency_unavailable": 1,
        "503 overloaded": 4,
    }


def test_the_notes_sum_them_over_endpoints():
    """One line tells shed 503s from dependency 503s (the 504 had none)."""
    text = render_tables(_report())
    assert (
        "with Retry-After (counted, not obeyed): 503 dependency_unavailable 1, 503 overloaded 4"
        in text.splitlines()
    )


def test_a_fault_line_names_the_service_once():
    """ "fault at 25 s: licensing hang applied ...", "heal licensing", "heal all"."""
    recorder = Recorder(PhaseMap.from_timeline([], 0, 10), warmup_s=0)
    faults = (
        AppliedFault(25, 25.002, "licensing", {"hang": True}),
        AppliedFault(45, 45.001, "licensing", None),
        AppliedFault(50, None, None, None, "connect: refused"),
    )
    lines = render_tables(build_report(recorder, run_info(faults=faults))).splitlines()
    assert "fault at 25 s: licensing hang applied at 25.002 s" in lines
    assert "fault at 45 s: heal licensing applied at 45.001 s" in lines
    assert "fault at 50 s: heal all FAILED (connect: refused)" in lines
