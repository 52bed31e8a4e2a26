"""The HTML report: self-contained, every part present, rendered from the report dict."""

from __future__ import annotations

import re

from synthetic_run import synthetic_report

from orchestrator.loadtest.html_report import render_html


def test_the_page_is_self_contained():
    """No script, no stylesheet or font from anywhere: only the empty inline icon."""
    page = render_html(synthetic_report())
    assert "<script" not in page
    assert "@import" not in page
    assert re.findall(r"""(?:src|href)=["']([^"']*)""", page) == ["data:,"]


def test_thresholds_are_listed_with_verdicts_and_measured_values():
    """One row per threshold; the page's badge says FAIL with the exit code."""
    page = render_html(synthetic_report(thresholds=("home.errors<1%", "play@fault.p99<1ms")))
    rows = re.findall(r'<tr><td class="(pass|fail)">(PASS|FAIL)</td><td><code>([^<]+)</code>'
                      r'</td><td class="num">([^<]+)</td>', page)  # fmt: skip
    assert rows == [
        ("pass", "PASS", "home.errors&lt;1%", "0.00%"),
        ("fail", "FAIL", "play@fault.p99&lt;1ms", "1500.2 ms"),
    ]
    assert '<span class="verdict fail">FAIL (exit 99)</span>' in page


def test_each_endpoint_has_latency_and_outcome_charts_with_the_fault_shaded():
    """home, play and all: a latency chart and an outcome chart each, the hang shaded in
    every one, the warmup too, and one percentile chart."""
    page = render_html(synthetic_report())
    assert page.count('<svg class="chart lines"') == 3
    assert page.count('<svg class="chart bars"') == 3
    assert page.count('<svg class="chart percentiles"') == 1
    assert page.count('class="band fault" data-label="licensing hang"') == 6
    assert page.count('class="band warmup"') == 6
    # play's 5xx during the hang are drawn (red), and home's degraded answers (amber).
    assert "5xx 25 at 6 s" in page
    assert "2xx degraded 10 at 3 s" in page


def test_phase_tables_and_the_text_report_are_included():
    """Every phase of every endpoint is a row; the text report is kept, escaped."""
    report = synthetic_report()
    report["error_samples"] = {"play 503": '<script>alert("x")</script>'}
    page = render_html(report)
    for phase in ("before [2-5 s)", "licensing hang [5-8 s)", "after licensing hang [8-12 s)"):
        assert page.count(f"<td>{phase}</td>") == 3
    assert "first play 503: &lt;script&gt;" in page
    assert "<script>" not in page


def test_a_report_without_per_endpoint_series_still_renders():
    """Written before endpoint_series existed: tables and the percentile chart, and a
    note instead of the per-second charts."""
    report = synthetic_report()
    del report["endpoint_series"]
    page = render_html(report)
    assert "no per-endpoint series" in page
    assert '<svg class="chart lines"' not in page
    assert '<svg class="chart percentiles"' in page
