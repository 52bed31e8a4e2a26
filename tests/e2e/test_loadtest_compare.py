"""``bin/loadtest compare`` on real runs: three short runs against a real ``frontdoor serve``
(realistic backend latency). Two of the same load show no change beyond noise (exit 0);
against one with catalog 100 ms slower throughout (a scenario fault), home's median is
flagged worse and the exit code is 99."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loadtest_run import loadtest, serving

from orchestrator.loadtest.cli import EXIT_OK, EXIT_REGRESSION

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: 5 s at 40 req/s: about 120 home requests a run, so the intervals are wide enough that
#: this machine's run-to-run drift stays inside them, and a 100 ms slowdown is far outside.
LOAD = """
[load]
rate = 40
duration_s = 5
warmup_s = 1
[mix]
home = 60
search = 15
title = 10
play = 15
"""
SAME = 'description = "healthy"\n' + LOAD
#: Catalog (home, search and title call it) 100 ms slower from the start.
SLOWER = (
    'description = "catalog +100 ms"\n'
    + LOAD
    + '[[faults]]\nat_s = 0\nservice = "catalog"\nlatency_ms = 100\n'
)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """``frontdoor serve`` with realistic backend latency on free loopback ports: its URL and
    its simulated microservices' URL."""
    with serving("realistic") as urls:
        yield urls


_loadtest = loadtest


@pytest.fixture(scope="module")
def runs(served, tmp_path_factory) -> dict[str, Path]:
    """The three saved runs: ``a`` and ``a2`` (same load, other seeds) and ``slower``."""
    target, backends = served
    where = tmp_path_factory.mktemp("compare")
    saved = {}
    for name, scenario, seed in (("a", SAME, 1), ("a2", SAME, 2), ("slower", SLOWER, 3)):
        toml = where / f"{name}.toml"
        toml.write_text(scenario)
        saved[name] = where / f"{name}.json"
        done = _loadtest(
            "--scenario", str(toml), "--target", target, "--backends", backends,
            "--seed", str(seed), "--json", str(saved[name]), "--no-progress",
            "--threshold", "all.count>=1",
        )  # fmt: skip
        assert done.returncode == EXIT_OK, done.stdout + done.stderr
    return saved


def test_two_runs_of_the_same_load_show_no_change(runs):
    """Every endpoint compared, nothing flagged, exit 0."""
    done = _loadtest("compare", str(runs["a"]), str(runs["a2"]))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[-1] == "compare: no change beyond noise"
    rows = [line.split()[0] for line in lines if "whole run" in line]
    assert rows == ["home", "search", "title", "play", "all"]
    assert not [line for line in lines if line.startswith(("WORSE", "BETTER"))]


def test_a_slower_catalog_is_flagged_as_a_regression(runs):
    """home's p50 (a catalog call on its critical path) is WORSE with both intervals shown,
    play's (no catalog call) is not; exit 99."""
    done = _loadtest("compare", str(runs["a"]), str(runs["slower"]))
    assert done.returncode == EXIT_REGRESSION == 99, done.stdout + done.stderr
    worse = [line for line in done.stdout.splitlines() if line.startswith("WORSE")]
    assert any(line.startswith("WORSE  home whole run p50: ") for line in worse), worse
    assert not any(line.startswith("WORSE  play whole run p50") for line in worse), worse
    assert "note: the runs differ in scenario" in done.stdout
    assert "regression(s)" in done.stdout.splitlines()[-1]
