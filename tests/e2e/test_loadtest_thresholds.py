"""bin/loadtest as a release gate: the real process against a real ``frontdoor serve`` (with
its embedded simulated microservices) on 127.0.0.1, a couple of seconds of load per run.
Thresholds that hold exit 0, one that fails on purpose exits 99, and a fault API that does
not work stops the run before any load with exit 1."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import gevent.event
import pytest
import requests

from orchestrator.loadtest.cli import EXIT_OK, EXIT_THRESHOLDS, EXIT_TOOL

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: What bin/loadtest execs once its virtualenv is in place.
LOADTEST = (
    "from gevent import monkey; monkey.patch_all(); "
    "from orchestrator.loadtest.cli import main; raise SystemExit(main())"
)
#: What the ``frontdoor`` console script runs (its main() patches gevent first).
FRONTDOOR = "from orchestrator.cli import main; raise SystemExit(main())"
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 60.0

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


@dataclass
class Serve:
    """``frontdoor serve`` in a child process, its stdout read line by line as it comes."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    changed: gevent.event.Event = field(default_factory=gevent.event.Event)

    def read(self) -> None:
        """Collect stdout lines until the process closes it (a greenlet)."""
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))
            self.changed.set()
        self.changed.set()

    def url_after(self, text: str) -> str:
        """The URL printed after ``text``, waiting (on each new line, no polling) for it."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for line in self.lines:
                found = re.search(re.escape(text) + r" (http://127\.0\.0\.1:\d+)", line)
                if found:
                    return found.group(1)
            self.changed.clear()
            if self.process.poll() is not None:
                raise AssertionError(f"frontdoor serve exited:\n{''.join(self.lines)}")
            if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"no {text!r} within {START_TIMEOUT_S:g} s")


def _environ() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    environ["FRONTDOOR_STATSD_ENABLED"] = "false"
    return environ


@pytest.fixture(scope="module")
def serve() -> Iterator[tuple[str, str]]:
    """``frontdoor serve`` on free loopback ports, no added backend latency: its URL and its
    embedded simulated microservices' URL."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", FRONTDOOR, "serve", "--port", "0",
         "--backends-port", "0", "--latency-profile", "none"],
        cwd=ROOT, env=_environ(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Serve(process)
    reader = gevent.spawn(server.read)
    try:
        yield (
            server.url_after("Frontdoor is listening on"),
            server.url_after("Simulated microservices on"),
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=5)


def _loadtest(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", LOADTEST, *argv, "--no-progress"],
        cwd=ROOT, env=_environ(), capture_output=True, text=True, check=False,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip


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
