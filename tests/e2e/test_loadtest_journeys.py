"""Device journeys end to end: bin/loadtest starts trips against a real ``frontdoor serve``
(its embedded simulated microservices), each carrying what it learnt: a newcomer's
sign-up token opens its home page and plays, a title opened is one the home page listed;
the report breaks the run down per step, and step thresholds judge it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from loadtest_run import loadtest, serving

pytestmark = pytest.mark.e2e

#: 4 s of trips; think times short enough that most trips finish within the run.
SCENARIO = """
description = "journeys, short"
[load]
duration_s = 4
warmup_s = 0  # every step counted, so no later step outnumbers an earlier one
timeout_s = 5
[[journeys]]
name = "watch"
rate = 6
steps = [
  { endpoint = "home", think_s = 0.2 },
  { endpoint = "title", think_s = 0.2 },
  { endpoint = "play", think_s = 0.2 },
  { endpoint = "heartbeat", repeat = 2, think_s = 0.2 },
]
[[journeys]]
name = "join"
rate = 3
member = false
steps = [
  { endpoint = "plans", think_s = 0.2 },
  { endpoint = "signup", think_s = 0.2 },
  { endpoint = "home", think_s = 0.2 },
  { endpoint = "title", think_s = 0.2 },
  { endpoint = "play" },
]
[thresholds]
all = ["errors<1%"]
"join:home" = ["success>=99%"]
"watch:play" = ["count>=10"]
"""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    with serving("none") as urls:
        yield urls


def test_trips_carry_what_they_learn_and_the_report_is_per_step(served, tmp_path: Path):
    target, backends = served
    scenario = tmp_path / "journeys.toml"
    scenario.write_text(SCENARIO)
    report_path = tmp_path / "run.json"
    done = loadtest(
        "--scenario", str(scenario), "--target", target, "--backends", backends,
        "--json", str(report_path), "--seed", "5", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    endpoints = report["endpoints"]
    counts = {name: data["total"]["count"] for name, data in endpoints.items()}
    assert set(counts) == {
        "watch:home", "watch:title", "watch:play", "watch:heartbeat",
        "join:plans", "join:signup", "join:home", "join:title", "join:play",
    }  # fmt: skip
    # Each step follows the one before it: never more of a later step than of an earlier one.
    assert counts["watch:home"] >= counts["watch:title"] >= counts["watch:play"] > 0
    assert counts["watch:heartbeat"] <= 2 * counts["watch:play"]
    assert counts["join:plans"] >= counts["join:signup"] >= counts["join:home"] > 0
    # A newcomer's home page is served with the token its own sign-up returned (no other
    # token is sent before sign-up): every one of them succeeded.
    for name in ("join:signup", "join:home", "join:title", "join:play"):
        statuses = endpoints[name]["total"]["status"]
        assert statuses.get("2xx", 0) == counts[name], (name, statuses)
    # And one row per journey, as for client groups.
    assert set(report["clients"]) == {"watch", "join"}
    assert report["clients"]["join"]["success_percent"] == 100.0
    assert "watch:play.count>=10" in done.stdout
    assert "thresholds: all 3 passed" in done.stdout
