"""Thresholds: the expression parser, the scenario table, the pre-run check and the
evaluator over a report built from recorded requests."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from run_info import run_info

from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.report import build_report, render_tables
from orchestrator.loadtest.stats import Recorder
from orchestrator.loadtest.threshold import (
    METRICS,
    Threshold,
    ThresholdError,
    check_applicable,
    evaluate,
    parse_table,
    parse_threshold,
)

# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "selector", "phase", "metric", "op", "bound"),
    [
        ("home.p99<250ms", "home", None, "p99", "<", 250.0),
        ("all.errors<1%", "all", None, "errors", "<", 0.01),
        ("play.degraded<5%", "play", None, "degraded", "<", 0.05),
        ("home@fault.p99<400ms", "home", "fault", "p99", "<", 400.0),
        ("all.p99.9 <= 1.5s", "all", None, "p99.9", "<=", 1500.0),
        ("all@3.shed>0.1", "all", "3", "shed", ">", 0.1),
        ("device.success>=99%", "device", None, "success", ">=", 0.99),
        ("device:home.max<2s", "device:home", None, "max", "<", 2000.0),
        ('all@"500 req/s".rps>400/s', "all", '"500 req/s"', "rps", ">", 400.0),
        ("all@'licensing hang'.count>=100", "all", '"licensing hang"', "count", ">=", 100.0),
        ("home.p50<900us", "home", None, "p50", "<", 0.9),
        ("  home.mean < 80  ", "home", None, "mean", "<", 80.0),
    ],
)
def test_a_threshold_parses_into_its_parts(text, selector, phase, metric, op, bound):
    """Selector, phase, metric, operator and the bound in the metric's base unit."""
    threshold = parse_threshold(text)
    assert (threshold.selector, threshold.phase, threshold.metric, threshold.op) == (
        selector,
        phase,
        metric,
        op,
    )
    assert threshold.bound == pytest.approx(bound)
    assert threshold.expression == text.strip()


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("home.p99 250ms", "no comparison"),
        ("home.p99=250ms", "'=' is not supported"),
        ("home.p99==250ms", "'==' is not supported"),
        ("home.p95<250ms", "unknown metric 'p95'"),
        ("p99<250ms", "expected SELECTOR.METRIC"),
        ("Home.p99<250ms", "is not an endpoint"),
        ("home@during.p99<250ms", "phase 'during'"),
        ("home@0.p99<250ms", "phase '0'"),
        ("home.p99<250%", "its bound takes unit ms, s, us, not '%'"),
        ("all.errors<1ms", "its bound takes unit %, not 'ms'"),
        ("all.errors<150%", "a share is from 0 to 1"),
        ("all.errors<2", "a share is from 0 to 1"),
        ("all.count>10/s", "its bound takes unit none"),
        ("home.p99<fast", "not a number"),
        ("home.p99<-5ms", "not a number"),
        ("home.p99<1<2", "one comparison"),
    ],
)
def test_a_bad_expression_says_what_is_wrong(text, problem):
    """Every mistake is a ThresholdError that quotes the expression and names the problem."""
    with pytest.raises(ThresholdError) as caught:
        parse_threshold(text)
    assert problem in str(caught.value)
    assert repr(text.strip())[1:-1].split("<")[0] in str(caught.value)


@given(
    metric=st.sampled_from(sorted(METRICS)),
    op=st.sampled_from(["<", "<=", ">", ">="]),
    value=st.integers(min_value=0, max_value=100),
)
def test_what_it_parses_it_judges_consistently(metric, op, value):
    """For any metric and operator, the bound holds exactly as the operator says."""
    unit = "%" if METRICS[metric][0] == "share" else ""
    threshold = parse_threshold(f"all.{metric}{op}{value}{unit}")
    bound = threshold.bound
    assert threshold.holds(bound) == (op in ("<=", ">="))
    assert threshold.holds(bound - 1) == (op in ("<", "<="))
    assert threshold.holds(bound + 1) == (op in (">", ">="))


@given(st.text(alphabet="abhlmoprsu019.@<>=%'\" ", max_size=30))
def test_any_text_parses_or_fails_with_a_threshold_error(text):
    """The parser never fails any other way, whatever it is given."""
    with contextlib.suppress(ThresholdError):
        parse_threshold(text)


def test_a_scenario_table_reads_selectors_and_lists():
    """Keys are selectors (with @phase), values one string or a list of them."""
    parsed = parse_table(
        {"all": "errors<1%", "play@fault": ["p99<1500ms", "errors<100%"]}, source="s.toml"
    )
    assert [t.expression for t in parsed] == [
        "all.errors<1%",
        "play@fault.p99<1500ms",
        "play@fault.errors<100%",
    ]
    assert {t.source for t in parsed} == {"s.toml"}


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ({"home": ["p99<250ms", "p95<1s"]}, "thresholds.home[1]: 'home.p95<1s': unknown metric"),
        ({"home": []}, "thresholds.home: must be a string or a non-empty list"),
        ({"home": [250]}, "thresholds.home[0]: must be a string"),
        ({"play@fault": "p99"}, "thresholds.'play@fault': 'play@fault.p99': no comparison"),
    ],
)
def test_a_bad_table_entry_names_its_key(table, problem):
    """The error says which key and item of [thresholds] is wrong."""
    with pytest.raises(ThresholdError) as caught:
        parse_table(table, source="s.toml")
    assert problem in str(caught.value)


# -- before the run ---------------------------------------------------------------------------

PHASES = [
    {"name": "before", "faults": []},
    {"name": "licensing hang", "faults": ["licensing hang"]},
    {"name": "after licensing hang", "faults": []},
]


def test_a_threshold_the_run_can_produce_is_accepted():
    """Endpoints of the mix, all, client groups, and phases by role, position and name."""
    thresholds = [
        parse_threshold(text)
        for text in (
            "home.p99<1s",
            "all@before.errors<1%",
            "play@fault.p99<2s",
            "all@after.p99<1s",
            "all@3.count>1",
            'home@"licensing hang".p50<1s',
        )
    ]
    check_applicable(thresholds, {"home", "play"}, PHASES)
    check_applicable([parse_threshold("device.success>99%")], {"device:home"}, PHASES)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("search.p99<1s", "this run sends no 'search'; expected one of all, home, play"),
        ("home@4.p99<1s", "this run has no phase 4"),
        ('home@"hang".p99<1s', 'no phase "hang"'),
    ],
)
def test_a_threshold_on_what_the_run_lacks_is_refused_before_it(text, problem):
    """A typo in an endpoint or phase fails before any load, not as a vacuous pass."""
    with pytest.raises(ThresholdError) as caught:
        check_applicable([parse_threshold(text)], {"home", "play"}, PHASES)
    assert problem in str(caught.value)


def test_fault_phases_exist_only_in_a_run_with_faults():
    """A ramp (phases without faults) has no @fault, @before or @after."""
    ramp = [{"name": "125 req/s", "faults": []}, {"name": "250 req/s", "faults": []}]
    for role in ("fault", "before", "after"):
        with pytest.raises(ThresholdError, match=f"no phase {role}"):
            check_applicable([parse_threshold(f"all@{role}.p99<1s")], {"home"}, ramp)


# -- after the run ----------------------------------------------------------------------------


def _report(*, invalid=None):
    """10 s: before [0-4), ratings errors [4-8), after [8-10). home: 10 fast 200s before,
    10 slower degraded 200s and 2 503s during; play: 5 200s before and 5 during."""
    timeline = [
        FaultEvent(4.0, "ratings", {"error_rate": 0.5}),
        FaultEvent(8.0, "ratings"),
    ]
    recorder = Recorder(PhaseMap.from_timeline(timeline, 0, 10), warmup_s=0)
    for i in range(10):
        recorder.record("home", 1 + i * 0.1, 1.1, 0.010 + i * 0.001, status=200)
        recorder.record("home", 5 + i * 0.1, 5.2, 0.100, status=200, degraded=("ratings",))
    for _ in range(2):
        recorder.record("home", 6, 6.2, 0.200, status=503, retry_after="503 overloaded")
    for i in range(5):
        recorder.record("play", 2, 2.05, 0.050, status=200)
        recorder.record("play", 6 + i * 0.1, 6.5, 0.400, status=200)
    return build_report(recorder, run_info(invalid_phases=invalid or {}))


def _results(*texts, report=None):
    return evaluate([parse_threshold(text) for text in texts], report or _report())


def test_latency_is_read_per_endpoint_phase_and_overall():
    """p99 of home overall is the 503s' 200 ms; before the fault its slowest was 19 ms."""
    overall, before, during = _results(
        "home.p99<250ms", "home@before.max<20ms", "home@fault.p50<50"
    )
    # HDR histograms keep three significant digits: 200 ms reads back as 200.063.
    assert (overall["value"], overall["passed"]) == (pytest.approx(200, rel=1e-3), True)
    assert (before["value"], before["passed"]) == (pytest.approx(19.0, rel=1e-3), True)
    assert (during["value"], during["passed"]) == (pytest.approx(100, rel=1e-3), False)
    assert during["phases"] == ["ratings 50% errors"]
    assert during["count"] == 12


def test_shares_are_of_scheduled_requests():
    """2 of home's 22 were 5xx (and shed), 10 degraded; all.errors counts over all 32."""
    errors, shed, degraded, success, overall = _results(
        "home.errors<5%", "home.shed<=10%", "home.degraded<5%", "home.success>=90%", "all.errors<1%"
    )
    assert errors["value"] == pytest.approx(2 / 22)
    assert not errors["passed"]
    assert shed["value"] == pytest.approx(2 / 22)
    assert shed["passed"]
    assert degraded["value"] == pytest.approx(10 / 22)
    assert success["value"] == pytest.approx(20 / 22)
    assert success["passed"]
    assert overall["value"] == pytest.approx(2 / 32)


def test_phases_of_a_role_merge_and_throughput_uses_their_length():
    """@fault over all: 12 home + 5 play in the 4 s of the fault; the merged p50 comes from
    both endpoints' histograms."""
    count, rps, p50 = _results("all@fault.count>=17", "all@fault.rps>4", "all@fault.p50<150ms")
    assert count["value"] == 17
    assert rps["value"] == pytest.approx(17 / 4)
    assert rps["passed"]
    assert p50["value"] == pytest.approx(100, rel=1e-3)


def test_a_client_group_merges_its_endpoints():
    """``device`` reads device:home and device:play together."""
    recorder = Recorder(PhaseMap.from_timeline([], 0, 10), warmup_s=0)
    recorder.record("device:home", 1, 1.1, 0.010, status=200)
    recorder.record("device:play", 1, 1.1, 0.300, status=503)
    recorder.record("flooder:home", 1, 1.1, 0.010, status=429, retry_after="429 rate_limited")
    report = build_report(recorder, run_info())
    device, flooder = _results("device.success>=99%", "flooder.limited>90%", report=report)
    assert (device["value"], device["count"], device["passed"]) == (0.5, 2, False)
    assert (flooder["value"], flooder["passed"]) == (1.0, True)


def test_a_selection_without_requests_fails():
    """A gate that measured nothing does not pass: an endpoint absent from the report, a
    phase with no request of it."""
    recorder = Recorder(
        PhaseMap.from_timeline([FaultEvent(5, "ratings", {"hang": True})], 0, 10), 0
    )
    recorder.record("home", 1, 1.1, 0.010, status=200)
    report = build_report(recorder, run_info())
    absent, empty, rate = _results(
        "play.p99<1s", "home@fault.p99<1s", "home@fault.errors<1%", report=report
    )
    assert (absent["passed"], absent["reason"]) == (False, "nothing in this run matches it")
    assert (empty["passed"], empty["value"], empty["reason"]) == (
        False,
        None,
        "no requests were sent",
    )
    assert not rate["passed"]


def test_a_threshold_over_an_invalid_phase_fails_with_the_reason():
    """The phase whose fault was not applied cannot pass a threshold, nor can the whole run."""
    invalid = {"ratings 50% errors": "the fault at 4 s was not applied"}
    during, overall, before = _results(
        "all@fault.errors<100%",
        "all.errors<100%",
        "all@before.errors<1%",
        report=_report(invalid=invalid),
    )
    assert not during["passed"]
    assert "phase not valid: ratings 50% errors" in during["reason"]
    assert not overall["passed"]
    assert before["passed"]


def test_the_results_carry_what_a_later_reader_needs():
    """JSON fields: the threshold's parts, the measured value, its basis and the verdict."""
    (result,) = _results("home@fault.p99<250ms")
    assert result == {
        "expression": "home@fault.p99<250ms",
        "selector": "home",
        "phase": "fault",
        "metric": "p99",
        "op": "<",
        "bound": 250.0,
        "unit": "ms",
        "source": "--threshold",
        "phases": ["ratings 50% errors"],
        "count": 12,
        "value": pytest.approx(200, rel=1e-3),
        "passed": True,
        "reason": None,
    }


def test_the_report_lists_each_threshold_with_its_value_and_verdict():
    """PASS/FAIL, the expression, the measured value with its unit and its request count."""
    report = _report()
    report["thresholds"] = _results("home.p99<250ms", "all.errors<1%", "play.p99<1s", report=report)
    lines = render_tables(report).splitlines()
    assert "  PASS  home.p99<250ms  measured 200.1 ms (n=22)" in lines
    assert "  FAIL  all.errors<1%   measured 6.25% (n=32)" in lines
    assert lines[-1] == "thresholds: 2 passed, 1 failed"


def test_parsed_thresholds_are_values():
    """Frozen, comparable: the same text gives the same threshold."""
    assert parse_threshold("home.p99<250ms") == Threshold(
        "home.p99<250ms", "home", None, "p99", "<", 250.0
    )
