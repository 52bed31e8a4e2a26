"""bin/loadtest as a release gate: the real process against a real ``frontdoor serve`` (with
its embedded simulated microservices) on 127.0.0.1, a couple of seconds of load per run.
Thresholds that hold exit 0, one that fails on purpose exits 99, and a fault API that does
not work stops the run before any load with exit 1."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from loadtest_run import loadtest, serving

from orchestrator.loadtest.cli import EXIT_OK, EXIT_THRESHOLDS, EXIT_TOOL

pytestmark = pytest.mark.e2e


#: 2.5 s measured at 40 req/s; ratings fails half its calls from 1.5 s to 2.5 s, which home
#: survives degraded (no added latency, so every bound has a wide margin).
SCENARIO = """
description = "3 s: ratings fails half its calls from 1.5 s to 2.5 s"
[load]
rate = 40
duration_s = 2.5
warmup_s = 0.5
timeout_s = 5
[mix]
home = 6
title = 2
heartbeat = 2
[[faults]]
at_s = 1.5
service = "ratings"
error_rate = 0.5
[[faults]]
at_s = 2.5
service = "ratings"
heal = true
[thresholds]
all = ["errors<1%", "count>=90"]
home = ["p99<2s"]
"home@fault" = ["degraded>5%"]
"""


@pytest.fixture(scope="module")
def serve() -> Iterator[tuple[str, str]]:
    """``frontdoor serve`` on free loopback ports, no added backend latency: its URL and its
    embedded simulated microservices' URL."""
    with serving("none") as urls:
        yield urls


def _loadtest(*argv: str) -> subprocess.CompletedProcess[str]:
    return loadtest(*argv, "--no-progress")


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    """The short fault scenario with its thresholds, as a file."""
    path = tmp_path / "gate.toml"
    path.write_text(SCENARIO)
    return path


def test_thresholds_that_hold_exit_0_and_are_listed(serve, scenario, tmp_path):
    """Every threshold (the scenario's and --threshold's) is printed PASS with its value."""
    target, backends = serve
    report_path = tmp_path / "pass.json"
    done = _loadtest(
        "--scenario", str(scenario), "--target", target, "--backends", backends,
        "--threshold", "title.success>=99%", "--json", str(report_path),
    )  # fmt: skip
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    passed = [line.split()[1] for line in lines if line.startswith("  PASS  ")]
    assert passed == [
        "all.errors<1%",
        "all.count>=90",
        "home.p99<2s",
        "home@fault.degraded>5%",
        "title.success>=99%",
    ]
    assert lines[-1] == "thresholds: all 5 passed"
    report = json.loads(report_path.read_text())
    assert report["verdict"] == {
        "exit_code": 0,
        "passed": True,
        "thresholds_failed": 0,
        "invalid_phases": [],
        "aborted": None,
    }
    degraded = next(r for r in report["thresholds"] if r["metric"] == "degraded")
    assert degraded["phases"] == ["ratings 50% errors"]
    assert degraded["value"] > 0.05


def test_a_threshold_that_fails_exits_99_and_says_which(serve, scenario, tmp_path):
    """A 10 µs median is out of reach: that threshold is FAIL with its measured value, the
    others still PASS, and the exit code is the threshold code, not a tool error."""
    target, backends = serve
    report_path = tmp_path / "fail.json"
    done = _loadtest(
        "--scenario", str(scenario), "--target", target, "--backends", backends,
        "--threshold", "home.p50<0.01ms", "--json", str(report_path),
    )  # fmt: skip
    assert done.returncode == EXIT_THRESHOLDS == 99, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    failed = [line for line in lines if line.startswith("  FAIL  ")]
    assert len(failed) == 1
    assert re.fullmatch(r"  FAIL  home\.p50<0\.01ms\s+measured \d+\.\d ms \(n=\d+\)", failed[0])
    assert lines[-1] == "thresholds: 4 passed, 1 failed"
    report = json.loads(report_path.read_text())
    assert report["verdict"]["exit_code"] == 99
    assert report["verdict"]["thresholds_failed"] == 1


def test_a_wrong_fault_api_url_stops_the_run_before_any_load(serve, scenario):
    """--backends pointing at Frontdoor itself (no /_faults there): exit 1, a clear error,
    no report, and not one request reached the simulated services."""
    target, backends = serve
    with requests.Session() as http:
        http.trust_env = False
        http.delete(f"{backends}/_stats", timeout=5).raise_for_status()
        done = _loadtest("--scenario", str(scenario), "--target", target, "--backends", target)
        counts = http.get(f"{backends}/_stats", timeout=5).json()["requests"]
    assert done.returncode == EXIT_TOOL == 1, done.stdout + done.stderr
    assert f"loadtest: the fault API at {target} (--backends) does not work" in done.stderr
    assert "nothing was sent" in done.stderr
    assert done.stdout == ""
    assert sum(counts.values()) == 0
