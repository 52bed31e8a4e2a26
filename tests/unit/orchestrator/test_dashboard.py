"""orchestrator.ops.dashboard: the dashboard document (ordering, rates, percentages) and
its Server-Sent Events framing."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from view_fakes import Clock, Decl, FakeBackend, FakeSystem

from actors.outcomes import Outcome
from actors.stats import WindowStats
from actors.system import AdaptiveTotals
from orchestrator.ops.admin import EndpointWindows
from orchestrator.ops.dashboard import DashboardSnapshot, FrontendGauges, comment, event
from orchestrator.ops.instance import Instance, LocalWorker
from orchestrator.ops.metrics import MetricNames

WALL = 1_700_000_000.25  # 2023-11-14T22:13:20.250Z
PID = 4242


#: The dashboard's backends: a queue of 5 behind a bulkhead of 10.
Backend = functools.partial(FakeBackend, max_queue=5)
System = FakeSystem


def _record(stats: WindowStats, outcome: Outcome, times: int, latency_ms: float = 10.0) -> None:
    for _ in range(times):
        stats.record(outcome, latency_ms)


def _snapshot(backends: list[Backend], windows: EndpointWindows) -> dict[str, Any]:
    local = LocalWorker(System(backends), windows, wall_clock=lambda: WALL, pid=lambda: PID)
    local.bind_frontend(lambda: FrontendGauges(inflight=3, shed_total=7))
    return DashboardSnapshot(Instance(local), wall_clock=lambda: WALL).snapshot()


@pytest.fixture
def clock() -> Clock:
    """The shared monotonic clock."""
    return Clock()


@pytest.fixture
def windows(clock: Clock) -> EndpointWindows:
    """Two endpoints' windows."""
    return EndpointWindows(
        (
            Decl("playback", "play", "playback", "POST", "/v1/playback/play"),
            Decl("discovery", "home", "discovery", "GET", "/v1/discovery/home"),
        ),
        clock=clock,
    )


def test_backends_come_open_breakers_first_then_by_error_percentage(clock, windows):
    healthy, flaky, failing, forced, probing = (
        Backend(name, WindowStats(clock=clock))
        for name in ("a_healthy", "b_flaky", "c_failing", "d_forced", "e_probing")
    )
    _record(healthy.stats, Outcome.SUCCESS, 10)
    _record(flaky.stats, Outcome.SUCCESS, 8)
    _record(flaky.stats, Outcome.TIMEOUT, 2)
    _record(failing.stats, Outcome.FAILURE, 9)
    _record(failing.stats, Outcome.SUCCESS, 1)
    forced.breaker_state, forced.breaker_override = "open", "open"  # no traffic, but open
    probing.breaker_state = "half_open"
    _record(probing.stats, Outcome.SUCCESS, 1)

    doc = _snapshot([healthy, flaky, failing, forced, probing], windows)

    names = [b["name"] for b in doc["backends"]]
    assert names == ["d_forced", "e_probing", "c_failing", "b_flaky", "a_healthy"]
    by_name = {b["name"]: b for b in doc["backends"]}
    assert by_name["c_failing"]["error_pct"] == 90.0
    assert by_name["b_flaky"]["error_pct"] == 20.0
    assert by_name["d_forced"]["breaker"] == {
        "state": "open",
        "override": "open",
        "workers": {"open": 1},
    }
    assert by_name["d_forced"]["error_pct"] == 0.0  # no calls: no division by zero


def test_a_backend_row_carries_rates_counts_bulkhead_and_latency(clock, windows):
    ratings = Backend("ratings", WindowStats(clock=clock), inflight=4, queued=1)
    _record(ratings.stats, Outcome.SUCCESS, 10, latency_ms=20.0)
    _record(ratings.stats, Outcome.FAILURE, 2)
    _record(ratings.stats, Outcome.TIMEOUT, 3)
    _record(ratings.stats, Outcome.REJECTED, 1)
    _record(ratings.stats, Outcome.SHORT_CIRCUITED, 2)
    _record(ratings.stats, Outcome.CLIENT_ERROR, 2)  # a device's 4xx: not an error
    ratings.stats.record(Outcome.FALLBACK)  # a step that fell back: not a call

    row = _snapshot([ratings], windows)["backends"][0]

    assert row["calls"] == 20
    assert row["calls_per_s"] == 2.0  # over the 10 s window
    assert row["error_pct"] == 40.0  # (2 + 3 + 1 + 2) / 20
    assert (row["failures"], row["timeouts"], row["rejections"]) == (2, 3, 1)
    assert (row["short_circuits"], row["fallbacks"]) == (2, 1)
    assert row["bulkhead"] == {
        "in_use": 4,
        "capacity": 10,
        "limit": None,  # no adaptive limit
        "queued": 1,
        "queue_capacity": 5,
    }
    assert row["latency_ms"]["p50"] is not None
    assert row["latency_ms"]["p99"] >= row["latency_ms"]["p50"]
    assert set(row["latency_ms"]) == {"p50", "p99"}
    assert row["workers"] == [
        {
            "pid": PID,
            "state": "closed",
            "override": None,
            "calls_per_s": 2.0,
            "error_pct": 40.0,
            "in_use": 4,
        }
    ]


def test_a_backend_row_carries_its_hedging_and_collapsing_counts(clock, windows):
    """The card's ``adaptive`` block: the counts of a backend that collapses; null for one
    with neither mechanism on."""
    catalog = Backend("catalog", WindowStats(clock=clock))
    catalog.adaptive = AdaptiveTotals(collapse_calls_in_total=340, collapse_calls_out_total=120)
    ratings = Backend("ratings", WindowStats(clock=clock))

    rows = {row["name"]: row for row in _snapshot([catalog, ratings], windows)["backends"]}

    assert rows["catalog"]["adaptive"] == {
        "hedges_sent_total": None,
        "hedges_won_total": None,
        "collapse_calls_in_total": 340,
        "collapse_calls_out_total": 120,
    }
    assert rows["ratings"]["adaptive"] is None


def test_endpoints_show_status_mix_degraded_share_and_come_worst_first(clock, windows):
    for _ in range(3):
        windows.record("discovery.home", 200, 30.0, degraded=True)
    windows.record("discovery.home", 200, 30.0)
    for _ in range(6):
        windows.record("playback.play", 200, 50.0)
    windows.record("playback.play", 400, 5.0)
    windows.record("playback.play", 503, 5.0)
    windows.record("playback.play", 504, 900.0)
    windows.record("playback.play", 504, 900.0)

    doc = _snapshot([], windows)

    assert [e["name"] for e in doc["endpoints"]] == ["playback.play", "discovery.home"]
    play, home = doc["endpoints"]
    assert play["status"] == {"2xx": 6, "4xx": 1, "5xx": 1, "504": 2}
    assert play["calls"] == 10
    assert play["calls_per_s"] == 1.0
    assert play["error_pct"] == 30.0  # 503 and both 504s; the 400 is the device's
    assert (play["team"], play["method"], play["path"]) == ("playback", "POST", "/v1/playback/play")
    assert home["degraded_pct"] == 75.0  # 3 of 4 successes
    assert home["error_pct"] == 0.0
    assert home["latency_ms"]["p99"] is not None


def test_the_document_has_frontend_gauges_and_a_server_timestamp(windows):
    doc = _snapshot([], windows)
    assert doc["frontend"] == {"inflight": 3, "shed_total": 7}
    assert doc["generated_at"] == "2023-11-14T22:13:20.250Z"
    assert doc["server_time_ms"] == 1_700_000_000_250
    assert doc["instance"] == {
        "served_by": PID,
        "workers": [{"pid": PID, "started_at": WALL}],
        "missing": [],
    }
    json.dumps(doc)  # plain JSON all the way down


def test_an_event_is_its_fields_then_one_data_line_per_line_then_a_blank_line():
    assert event('{"a":1}') == b'data: {"a":1}\n\n'
    assert event(b"x", name="snapshot", event_id="7", retry_ms=2000) == (
        b"retry: 2000\nevent: snapshot\nid: 7\ndata: x\n\n"
    )
    # Every kind of line break in the payload starts a new data line, never a new field.
    assert event("one\ntwo\r\nthree\rfour") == (
        b"data: one\ndata: two\ndata: three\ndata: four\n\n"
    )
    assert event("") == b"data: \n\n"
    assert event("caf\u00e9") == "data: caf\u00e9\n\n".encode()


@pytest.mark.parametrize(
    "bad",
    [
        {"name": "snap\nshot"},
        {"name": "x\r"},
        {"event_id": "1\n2"},
        {"event_id": "1\x002"},
        {"retry_ms": -1},
    ],
)
def test_single_line_fields_refuse_a_line_break(bad):
    with pytest.raises(ValueError, match=r"single line|NUL|>= 0"):
        event("x", **bad)


def test_a_comment_is_ignored_by_clients_and_keeps_the_connection_alive():
    assert comment("keep-alive") == b": keep-alive\n\n"
    assert comment() == b": \n\n"
    with pytest.raises(ValueError, match="single line"):
        comment("a\nb")


def test_each_backend_and_endpoint_is_labelled_with_its_statsd_name(clock, windows):
    names = MetricNames("fd", [Decl("playback", "play", "playback", "POST", "/p")], ["ratings"])
    local = LocalWorker(
        System([Backend("ratings", WindowStats(clock=clock)), Backend("x", WindowStats())]),
        windows,
        wall_clock=lambda: WALL,
        pid=lambda: PID,
    )
    doc = DashboardSnapshot(Instance(local), names, wall_clock=lambda: WALL).snapshot()
    statsd = {b["name"]: b["statsd"] for b in doc["backends"]}
    assert statsd == {"ratings": "fd.backend.ratings", "x": None}  # x: not a known backend
    assert names.backends["ratings"].latency.startswith(statsd["ratings"] + ".")
    by_name = {e["name"]: e["statsd"] for e in doc["endpoints"]}
    assert by_name == {"playback.play": "fd.endpoint.playback.play", "discovery.home": None}


def test_the_bulkhead_row_carries_the_adaptive_limit(clock, windows):
    """A backend with ``limit.adaptive`` shows its limit now beside the bulkhead's size."""
    licensing = Backend("licensing", WindowStats(clock=clock), inflight=3, limit=4)
    row = _snapshot([licensing], windows)["backends"][0]
    assert (row["bulkhead"]["in_use"], row["bulkhead"]["limit"]) == (3, 4)
