"""Synthetic reports for the HTML and compare tests: a recorder fed seeded latencies, a
fault timeline, thresholds judged, as ``bin/loadtest --json`` would write them."""

from __future__ import annotations

import random

from run_info import run_info

from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.report import AppliedFault, build_report
from orchestrator.loadtest.stats import Recorder
from orchestrator.loadtest.threshold import evaluate, parse_threshold

#: 2 s warmup, 10 s measured; licensing hangs from 5 s to 8 s.
WARMUP_S, END_S = 2.0, 12.0
HANG = {"hang": True}


def synthetic_report(
    seed: int = 1,
    *,
    rate: int = 100,
    slower: float = 1.0,
    error_share: float = 0.0,
    faults: bool = True,
    thresholds: tuple[str, ...] = ("all.errors<1%", "play@fault.p99<1ms"),
) -> dict:
    """``rate`` req/s of home (log-normal latency, median ~60 ms x ``slower``) and play (the
    same, but 5xx during the hang); ``error_share`` of home answers are 503s."""
    events = [FaultEvent(5, "licensing", HANG), FaultEvent(8, "licensing")] if faults else []
    recorder = Recorder(PhaseMap.from_timeline(events, WARMUP_S, END_S), warmup_s=WARMUP_S)
    rng = random.Random(seed)
    for index in range(int(rate * END_S)):
        at = index / rate
        endpoint = "home" if index % 4 else "play"
        latency = rng.lognormvariate(-2.8, 0.4) * slower
        hanging = faults and endpoint == "play" and 5 <= at < 8
        status = 503 if hanging or (endpoint == "home" and rng.random() < error_share) else 200
        degraded = ("ratings",) if endpoint == "home" and index % 10 == 1 else ()
        if hanging:
            latency = 1.5
        recorder.record(endpoint, at, at + latency, latency, status=status, degraded=degraded)
    recorder.not_sent("home", 9.5)
    applied = (
        (AppliedFault(5, 5.01, "licensing", HANG), AppliedFault(8, 8.01, "licensing", None))
        if faults
        else ()
    )
    info = run_info(
        warmup_s=WARMUP_S, duration_s=END_S - WARMUP_S, ended_s=END_S, scenario="synthetic",
        faults=applied,
    )  # fmt: skip
    report = build_report(recorder, info)
    report["thresholds"] = evaluate([parse_threshold(text) for text in thresholds], report)
    failed = sum(not result["passed"] for result in report["thresholds"])
    report["verdict"] = {
        "exit_code": 99 if failed else 0,
        "passed": not failed,
        "thresholds_failed": failed,
        "invalid_phases": [],
        "aborted": None,
    }
    return report
