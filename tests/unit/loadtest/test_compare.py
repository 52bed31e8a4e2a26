"""Comparing two runs: percentile intervals from HDR ranks, rate tests, and the verdicts on
a synthetic pair that differs and one that does not."""

from __future__ import annotations

import math
import random

import pytest
from synthetic_run import synthetic_report

from orchestrator.loadtest.compare import (
    WHOLE_RUN,
    compare_reports,
    percentile_interval,
    poisson_rate_z,
    render_comparison,
    two_proportion_z,
)
from orchestrator.loadtest.histogram import LatencyHistogram


def _histogram(values_ms):
    histogram = LatencyHistogram()
    for value in values_ms:
        histogram.record(value / 1000.0)
    return histogram


def test_a_percentile_interval_is_read_at_the_binomial_rank_bounds():
    """1..10000 ms: p50's ranks are 5000 -/+ 3*sqrt(2500) = 4850..5150."""
    low, high = percentile_interval(_histogram(range(1, 10_001)), 50.0, z=3.0)
    assert low == pytest.approx(4850, rel=1e-3)
    assert high == pytest.approx(5150, rel=1e-3)


def test_an_interval_narrows_with_more_samples_and_opens_without_enough():
    """Four times the samples halve the relative width; a p99.9 of 100 samples is unbounded
    above (its upper rank is past the largest value)."""
    rng = random.Random(3)
    small = _histogram(rng.lognormvariate(4, 0.5) for _ in range(1000))
    large = _histogram(rng.lognormvariate(4, 0.5) for _ in range(4000))
    width_small = percentile_interval(small, 90.0)[1] - percentile_interval(small, 90.0)[0]
    width_large = percentile_interval(large, 90.0)[1] - percentile_interval(large, 90.0)[0]
    assert width_large < 0.7 * width_small
    assert percentile_interval(_histogram(range(1, 101)), 99.9)[1] == math.inf


def test_two_proportion_and_poisson_z():
    """Known values: 10/1000 against 30/1000 is z = 0.02 / sqrt(0.02 * 0.98 * 0.002) = 3.19;
    equal rates are z = 0."""
    assert two_proportion_z(10, 1000, 30, 1000) == pytest.approx(3.19, abs=0.01)
    assert two_proportion_z(0, 1000, 0, 1000) == 0.0
    assert poisson_rate_z(1000, 10, 1000, 10) == 0.0
    assert poisson_rate_z(1000, 10, 800, 10) == pytest.approx(-4.71, abs=0.01)


def test_two_runs_of_the_same_service_show_no_change():
    """Same load, latencies drawn from the same distribution with other seeds: nothing is
    flagged, in any endpoint or phase."""
    comparison = compare_reports(synthetic_report(1), synthetic_report(2))
    assert comparison.regressions == ()
    assert comparison.improvements == ()
    phases = {change.phase for change in comparison.changes}
    assert phases == {WHOLE_RUN, "before", "licensing hang", "after licensing hang"}
    assert render_comparison(comparison).endswith("compare: no change beyond noise")


def test_a_slower_run_with_errors_is_flagged_worse():
    """Latency x1.5 and 5% home errors: p50 worse for home over the whole run, the error
    rate too; home's p99 is not flagged, its upper bound being open with 751 requests (the
    rank bound 743.5 + 3 * 2.7 is past n). Reversed: improvements, no regression."""
    before, after = synthetic_report(1), synthetic_report(2, slower=1.5, error_share=0.05)
    comparison = compare_reports(before, after)
    worse = {(c.endpoint, c.phase, c.metric) for c in comparison.regressions}
    assert {("home", WHOLE_RUN, "p50"), ("home", WHOLE_RUN, "errors"),
            ("all", WHOLE_RUN, "p50")} <= worse  # fmt: skip
    p99 = next(
        c
        for c in comparison.changes
        if (c.endpoint, c.phase, c.metric) == ("home", WHOLE_RUN, "p99")
    )
    assert (p99.verdict, p99.a_ci[1], p99.relative > 0.3) == ("same", math.inf, True)
    p50 = next(c for c in comparison.regressions if c.metric == "p50" and c.endpoint == "home")
    assert p50.a_ci[1] < p50.b_ci[0]
    assert p50.relative == pytest.approx(0.5, abs=0.1)
    text = render_comparison(comparison)
    assert "WORSE  home whole run p50: " in text
    assert text.splitlines()[-1].startswith("compare: ")
    assert "regression(s)" in text.splitlines()[-1]
    reverse = compare_reports(after, before)
    assert reverse.regressions == ()
    assert {(c.endpoint, c.metric) for c in reverse.improvements} >= {("home", "p50")}


def test_a_small_change_beyond_sampling_noise_is_not_flagged_under_min_change():
    """x1.08 on 4,800 requests is outside sampling noise at p50 but under the 10% floor."""
    before, after = synthetic_report(1, rate=400), synthetic_report(1, rate=400, slower=1.08)
    assert compare_reports(before, after).regressions == ()
    strict = compare_reports(before, after, min_change=0)
    assert ("home", WHOLE_RUN, "p50") in {
        (c.endpoint, c.phase, c.metric) for c in strict.regressions
    }


def test_runs_that_differ_in_shape_say_so():
    """Different phases are compared over the whole run only, with a note."""
    comparison = compare_reports(synthetic_report(1), synthetic_report(1, faults=False))
    assert {change.phase for change in comparison.changes} == {WHOLE_RUN}
    assert any(note.startswith("phases differ") for note in comparison.notes)
