"""``bin/loadtest --html`` in a real browser: a short real run (a real ``frontdoor serve``
with realistic backend latency, licensing hanging for 4 s of it) writes the HTML report, and
``bin/loadtest report RUN.json --html`` renders the same page from the saved JSON. Headless
Chromium (``tests/e2e/browser.py``) opens it from ``file://`` and finds the thresholds
table, the SVG charts and the fault window shaded, with no SEVERE console message. The
full-page screenshot is ``docs/images/loadtest-report.png`` (made with
``FRONTDOOR_SCREENSHOT_DIR=docs/images``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import headless_chromium, severe_console_messages
from loadtest_run import loadtest, serving

from orchestrator.loadtest.cli import EXIT_OK

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: The shipped licensing-hang scenario, shortened: 10 s measured at 50 req/s, licensing
#: hanging from 4 s to 8 s (play answers by its 1.5 s deadline meanwhile).
SCENARIO = """
description = "licensing-hang, shortened: licensing hangs from 4 s to 8 s"
[load]
rate = 50
duration_s = 10
warmup_s = 1
timeout_s = 5
[mix]
home = 60
search = 15
title = 10
play = 15
[[faults]]
at_s = 4
service = "licensing"
hang = true
[[faults]]
at_s = 8
service = "licensing"
heal = true
[thresholds]
"play@fault" = ["max<1750ms", "failed<1%"]
"home@fault" = ["errors<1%"]
"all@before" = ["errors<1%"]
"""
#: The page's full height is captured, up to this many pixels.
MAX_SHOT_HEIGHT = 8000


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """``frontdoor serve`` with realistic backend latency on free loopback ports: its URL and
    its simulated microservices' URL."""
    with serving("realistic") as urls:
        yield urls


_loadtest = loadtest


@pytest.fixture(scope="module")
def run(served, tmp_path_factory) -> Path:
    """One short real run with ``--json`` and ``--html``; the directory holding both."""
    target, backends = served
    where = tmp_path_factory.mktemp("report")
    scenario = where / "licensing-hang-short.toml"
    scenario.write_text(SCENARIO)
    done = _loadtest(
        "--scenario", str(scenario), "--target", target, "--backends", backends, "--seed", "11",
        "--json", str(where / "run.json"), "--html", str(where / "run.html"), "--no-progress",
    )  # fmt: skip
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    return where


def _screenshot_dir(tmp_path: Path) -> Path:
    named = os.environ.get("FRONTDOOR_SCREENSHOT_DIR")
    return Path(named) if named else tmp_path


def test_a_saved_report_renders_the_same_page(run, tmp_path):
    """``report RUN.json --html`` gives byte for byte the page the run itself wrote."""
    again = tmp_path / "again.html"
    done = _loadtest("report", str(run / "run.json"), "--html", str(again))
    assert done.returncode == EXIT_OK, done.stderr
    assert again.read_text() == (run / "run.html").read_text()


def test_the_json_has_per_endpoint_seconds_that_add_up(run):
    """Each endpoint's per-second series counts exactly its scheduled requests."""
    report = json.loads((run / "run.json").read_text())
    for name, data in report["endpoints"].items():
        seconds = report["endpoint_series"][name]
        assert sum(point["scheduled"] for point in seconds) == data["total"]["count"]
        assert {point["t"] for point in seconds} <= set(range(1, 12))


def test_the_page_renders_thresholds_charts_and_the_fault_window(run, tmp_path):
    """Offline, from file://: the thresholds table with PASS rows and measured values, an
    SVG chart per endpoint and kind, the licensing hang shaded, no console error."""
    page = run / "run.html"
    text = page.read_text()
    # Self-contained: no script, and nothing loaded from anywhere (only the empty icon).
    assert "<script" not in text
    assert "@import" not in text
    assert re.findall(r"""(?:src|href)=["']([^"']*)""", text) == ["data:,"]
    with headless_chromium(tmp_path / "chromedriver.log") as driver:
        driver.get(page.as_uri())
        rows = driver.find_elements("css selector", "table.thresholds tr")
        verdicts = [row.find_elements("css selector", "td")[0].text for row in rows[1:]]
        assert verdicts == ["PASS"] * 4
        assert "play@fault.max<1750ms" in rows[1].text
        assert " ms" in rows[1].text  # the measured value
        charts = driver.find_elements("css selector", "svg.chart")
        kinds = [chart.get_attribute("class") for chart in charts]
        # home, search, title, play and all: latency and outcomes; one percentile chart.
        assert kinds.count("chart lines") == kinds.count("chart bars") == 5
        assert kinds.count("chart percentiles") == 1
        faults = driver.find_elements("css selector", "svg.chart rect.band.fault")
        assert faults
        assert {band.get_attribute("data-label") for band in faults} == {"licensing hang"}
        shaded = faults[0].rect
        assert shaded["width"] > 20
        assert shaded["height"] > 100
        assert driver.find_elements("css selector", "svg.chart polyline.series")
        assert severe_console_messages(driver) == []
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, min(int(height) + 40, MAX_SHOT_HEIGHT))
        shot = _screenshot_dir(tmp_path) / "loadtest-report.png"
        assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
