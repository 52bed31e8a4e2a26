"""Against the real statsd daemon: every documented metric arrives with its value and type;
an unreachable statsd costs nothing visible; the management replies parse."""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass

import gevent.event
import pytest
from statsd_daemon import JsParseError, StatsdDaemon, TimerSamples, parse_js_literal

from actors.plan import Step, StepRecord, StepState
from backends.simulated.reference import SERVICES as BACKEND_NAMES
from orchestrator.config import load_settings
from orchestrator.ops.metrics import (
    BackendGauges,
    GaugeReporter,
    GaugeSnapshot,
    MetricNames,
    Metrics,
    NullSink,
    StatsdSink,
)

pytestmark = pytest.mark.integration

_prefixes = itertools.count()


@dataclass(frozen=True)
class Decl:
    """An endpoint declaration of each team (the names the real families use)."""

    api: str
    name: str
    team: str


ENDPOINTS = (
    Decl("nonmember", "plans", "growth"),
    Decl("discovery", "home", "discovery"),
    Decl("playback", "play", "playback"),
)

#: Every name shape of orchestrator/ops/metrics.py (and docs/alerts.md), with its statsd type.
DESIGN_SHAPES = {
    ("{p}.endpoint.{api}.{endpoint}.latency", "timer"),
    ("{p}.endpoint.{api}.{endpoint}.rejected", "counter"),
    ("{p}.endpoint.{api}.{endpoint}.status.2xx", "counter"),
    ("{p}.endpoint.{api}.{endpoint}.status.4xx", "counter"),
    ("{p}.endpoint.{api}.{endpoint}.status.5xx", "counter"),
    ("{p}.endpoint.{api}.{endpoint}.degraded", "counter"),
    ("{p}.backend.{backend}.success", "counter"),
    ("{p}.backend.{backend}.failure", "counter"),
    ("{p}.backend.{backend}.timeout", "counter"),
    ("{p}.backend.{backend}.rejected", "counter"),
    ("{p}.backend.{backend}.short_circuited", "counter"),
    ("{p}.backend.{backend}.fallback", "counter"),
    ("{p}.backend.{backend}.latency", "timer"),
    ("{p}.backend.{backend}.inflight", "gauge"),
    ("{p}.backend.{backend}.queued", "gauge"),
    ("{p}.backend.{backend}.breaker_open", "gauge"),
    ("{p}.team.{team}.errors", "counter"),
    ("{p}.frontend.inflight", "gauge"),
    ("{p}.frontend.shed", "counter"),
}


def fresh_prefix() -> str:
    """A prefix no other test uses, so the session's daemon needs no reset."""
    return f"it{next(_prefixes)}.frontdoor"


def step(backend: str, outcome: str, ms: float, *, attempts: int = 1, degraded: bool = False):
    """A finished step whose call ran ``ms`` milliseconds (none when ``attempts`` is 0)."""
    record = StepRecord(Step(f"{backend}_step", backend, lambda _ctx: None))
    record.state = StepState.DONE
    record.outcome = outcome
    record.attempts = attempts
    record.started_at = 50.0
    record.finished_at = 50.0 + ms / 1000.0
    record.degraded = degraded
    return record


def shape(name: str, prefix: str) -> str:
    """A received name with its vocabulary parts replaced by placeholders."""
    rest = name.removeprefix(prefix + ".")
    parts = rest.split(".")
    if parts[0] == "endpoint":
        parts[1:3] = ["{api}", "{endpoint}"]
    elif parts[0] == "backend":
        parts[1] = "{backend}"
    elif parts[0] == "team":
        parts[1] = "{team}"
    return "{p}." + ".".join(parts)


def only(prefix: str, values: dict) -> dict:
    """The entries under ``prefix``."""
    return {name: value for name, value in values.items() if name.startswith(prefix + ".")}


def sink_to(daemon: StatsdDaemon) -> StatsdSink:
    """A UDP sink aimed at the daemon."""
    sink = StatsdSink.connect(daemon.host, daemon.port)
    assert isinstance(sink, StatsdSink)
    return sink


# -- every metric, for real --------------------------------------------------------------


def test_every_documented_metric_arrives_with_its_value(statsd_daemon):
    """Scripted requests (success, degraded, faults, client error) and gauge reports:
    the daemon holds exactly the expected counters, timers and gauges."""
    prefix = fresh_prefix()
    sink = sink_to(statsd_daemon)
    metrics = Metrics(MetricNames(prefix, ENDPOINTS, BACKEND_NAMES), sink)

    def request(endpoint: str, status: int, latency_ms: float, steps, degraded=False, planned=True):
        collected = metrics.request()
        collected.endpoint(endpoint)
        collected.steps(steps)
        collected.finish(status, latency_ms, degraded=degraded, planned=planned)

    packets_before = statsd_daemon.counters()["statsd.packets_received"]
    # Home page with a slow ratings backend: 200, degraded.
    request(
        "discovery.home",
        200,
        321.5,
        [
            step("subscriber", "success", 5),
            step("recommendations", "success", 20),
            step("catalog", "success", 15),
            step("ratings", "timeout", 300, degraded=True),
        ],
        degraded=True,
    )
    # Play while playback's breaker is open and device's bulkhead is full: 503.
    request(
        "playback.play",
        503,
        8.25,
        [
            step("subscriber", "success", 4),
            step("device", "rejected", 0, attempts=0),
            step("playback", "short_circuited", 0, attempts=0),
        ],
    )
    # Play whose licensing call outlives the deadline: 504.
    request(
        "playback.play",
        504,
        2000.0,
        [step("subscriber", "success", 6), step("licensing", "timeout", 1990)],
    )
    # A home page whose catalog fails into its fallback: 200, degraded.
    request(
        "discovery.home",
        200,
        40.0,
        [step("catalog", "failure", 12, degraded=True)],
        degraded=True,
    )
    # A device's bad country code: 400 before the plan ran, counted apart from latency.
    request("nonmember.plans", 400, 0.5, [], planned=False)
    # Plans answered: the endpoint's latency holds this one only.
    request("nonmember.plans", 200, 7.5, [])

    reporter = GaugeReporter(
        metrics,
        iter(
            [
                GaugeSnapshot({"catalog": BackendGauges(3, 1, breaker_open=True)}, 7, 5),
                GaugeSnapshot({"catalog": BackendGauges(2, 0, breaker_open=True)}, 6, 8),
            ]
        ).__next__,
        interval_s=1.0,
    )
    reporter.report_once()
    reporter.report_once()
    sink.flush()
    statsd_daemon.sync()

    counters = only(prefix, statsd_daemon.counters())
    assert counters == {
        f"{prefix}.endpoint.discovery.home.status.2xx": 2,
        f"{prefix}.endpoint.discovery.home.degraded": 2,
        f"{prefix}.endpoint.playback.play.status.5xx": 2,
        f"{prefix}.endpoint.nonmember.plans.status.4xx": 1,
        f"{prefix}.endpoint.nonmember.plans.status.2xx": 1,
        f"{prefix}.endpoint.nonmember.plans.rejected": 1,
        f"{prefix}.team.playback.errors": 2,
        f"{prefix}.backend.subscriber.success": 3,
        f"{prefix}.backend.recommendations.success": 1,
        f"{prefix}.backend.catalog.success": 1,
        f"{prefix}.backend.catalog.failure": 1,
        f"{prefix}.backend.catalog.fallback": 1,
        f"{prefix}.backend.ratings.timeout": 1,
        f"{prefix}.backend.ratings.fallback": 1,
        f"{prefix}.backend.device.rejected": 1,
        f"{prefix}.backend.playback.short_circuited": 1,
        f"{prefix}.backend.licensing.timeout": 1,
        f"{prefix}.frontend.shed": 8,  # 5, then the delta 3
    }
    timers = {
        name: sorted(round(v, 3) for v in samples.values)
        for name, samples in only(prefix, statsd_daemon.timers()).items()
    }
    assert timers == {
        f"{prefix}.endpoint.discovery.home.latency": [40.0, 321.5],
        f"{prefix}.endpoint.playback.play.latency": [8.25, 2000.0],
        f"{prefix}.endpoint.nonmember.plans.latency": [7.5],
        f"{prefix}.backend.subscriber.latency": [4.0, 5.0, 6.0],
        f"{prefix}.backend.recommendations.latency": [20.0],
        f"{prefix}.backend.catalog.latency": [12.0, 15.0],
        f"{prefix}.backend.ratings.latency": [300.0],
        f"{prefix}.backend.licensing.latency": [1990.0],
    }
    assert only(prefix, statsd_daemon.gauges()) == {
        f"{prefix}.frontend.inflight": 6,
        f"{prefix}.backend.catalog.inflight": 2,
        f"{prefix}.backend.catalog.queued": 0,
        f"{prefix}.backend.catalog.breaker_open": 1,
    }
    # Packed across requests: fewer datagrams than requests and reports (6 + 2), plus the
    # sync marker.
    packets = statsd_daemon.counters()["statsd.packets_received"] - packets_before
    assert 1 + 1 <= packets < 6 + 2 + 1
    assert statsd_daemon.counters()["statsd.bad_lines_seen"] == 0
    # Every documented shape arrived, as its documented type.
    kinds = {"counter": counters, "timer": timers, "gauge": only(prefix, statsd_daemon.gauges())}
    received = {(shape(name, prefix), kind) for kind, names in kinds.items() for name in names}
    assert received == DESIGN_SHAPES
    sink.close()


def test_gauge_reporter_loop_reaches_the_daemon(statsd_daemon):
    """The reporter's own greenlet delivers gauges until stopped."""
    prefix = fresh_prefix()
    metrics = Metrics(MetricNames(prefix, (), ("search",)), sink_to(statsd_daemon))
    reported = gevent.event.Event()
    snapshot = GaugeSnapshot({"search": BackendGauges(4, 2, breaker_open=False)}, 11, 0)
    reporter = GaugeReporter(
        metrics, lambda: snapshot, 0.01, observers=[lambda _snapshot: reported.set()]
    )
    reporter.start()
    assert reported.wait(timeout=5)
    reporter.stop()
    metrics.sink.flush()
    statsd_daemon.sync()
    assert only(prefix, statsd_daemon.gauges()) == {
        f"{prefix}.frontend.inflight": 11,
        f"{prefix}.backend.search.inflight": 4,
        f"{prefix}.backend.search.queued": 2,
        f"{prefix}.backend.search.breaker_open": 0,
    }
    metrics.close()


def test_prefix_host_and_port_come_from_settings(statsd_daemon):
    """``FRONTDOOR_STATSD_*`` settings aim the real sink."""
    environ = {
        "FRONTDOOR_STATSD_HOST": "localhost",
        "FRONTDOOR_STATSD_PORT": str(statsd_daemon.port),
        "FRONTDOOR_STATSD_PREFIX": "it.settings",
    }
    settings = load_settings(environ=environ).statsd
    metrics = Metrics.from_settings(settings, ENDPOINTS, ("plans",))
    collected = metrics.request()
    collected.endpoint("nonmember.plans")
    collected.finish(500, 3.0)
    metrics.sink.flush()
    statsd_daemon.sync()
    counters = only("it.settings", statsd_daemon.counters())
    assert counters["it.settings.team.growth.errors"] >= 1
    metrics.close()


# -- statsd unreachable ---------------------------------------------------------------------


def flush_cost_us(metrics: Metrics, rounds: int = 2_000) -> float:
    """Mean microseconds of one realistic request's metrics (six steps) and its flush."""
    steps = [step(b, "success", 10) for b in ("subscriber", "device", "playback")] + [
        step("bookmarks", "timeout", 300, degraded=True),
        step("licensing", "success", 40),
        step("history", "failure", 5, degraded=True),
    ]
    started = time.perf_counter()
    for _ in range(rounds):
        collected = metrics.request()
        collected.endpoint("playback.play")
        collected.steps(steps)
        collected.finish(200, 55.0, degraded=True)
    return (time.perf_counter() - started) / rounds * 1e6


def closed_udp_port() -> int:
    """A loopback UDP port nothing listens on."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = int(probe.getsockname()[1])
    probe.close()
    return port


def test_a_closed_port_costs_nothing_visible(statsd_daemon):
    """Nobody listening: no exception, no error, and the same cost as a live daemon."""
    names = MetricNames("it.closed", ENDPOINTS, BACKEND_NAMES)
    dead = StatsdSink.connect("127.0.0.1", closed_udp_port())
    assert isinstance(dead, StatsdSink)
    live = sink_to(statsd_daemon)
    dead_us = min(flush_cost_us(Metrics(names, dead)) for _ in range(3))
    live_us = min(flush_cost_us(Metrics(names, live)) for _ in range(3))
    assert dead.send_errors == 0
    assert dead.sent_packets == 6_000
    # Both are tens of microseconds; the bound only catches a blocking send or a lookup.
    assert dead_us < max(3 * live_us, 200.0)
    dead.close()
    live.close()


def test_an_unresolvable_host_costs_nothing_visible():
    """A name that does not resolve: metrics turn off at start-up; requests never notice."""
    environ = {"FRONTDOOR_STATSD_HOST": "statsd.invalid"}  # RFC 6761: never resolves
    settings = load_settings(environ=environ).statsd
    started = time.monotonic()
    metrics = Metrics.from_settings(settings, ENDPOINTS, BACKEND_NAMES)
    assert time.monotonic() - started < 5.0  # bounded by the resolve timeout
    assert isinstance(metrics.sink, NullSink)
    assert flush_cost_us(metrics) < 200.0
    assert metrics.sink.dropped_batches == 2_000


def test_a_stopped_daemon_costs_nothing_visible(own_statsd_daemon):
    """The daemon dies mid-run: later flushes still return at once, without errors."""
    daemon = own_statsd_daemon
    sink = StatsdSink.connect(daemon.host, daemon.port)
    assert isinstance(sink, StatsdSink)
    metrics = Metrics(MetricNames("it.stopped", ENDPOINTS, BACKEND_NAMES), sink)
    flush_cost_us(metrics, rounds=10)
    daemon.stop()
    assert flush_cost_us(metrics, rounds=500) < 200.0
    assert sink.send_errors == 0
    sink.close()


# -- the management replies -------------------------------------------------------------------


def test_parses_the_shapes_the_daemon_prints():
    """Single-quoted keys, bare keys, exponents, NaN, truncated arrays, nesting."""
    text = """{
  'statsd.bad_lines_seen': 0,
  bare_key: -2.5,
  'a.big': 1e+21,
  "dq": NaN,
  'inf': -Infinity,
  'x.latency': [
     0.5,  1.5,
    ... 118 more items
  ],
  'esc\\'aped': 'it\\'s',
  empty: [],
  obj: { t: true, f: false, n: null, u: undefined },
}"""
    value = parse_js_literal(text)
    assert value["statsd.bad_lines_seen"] == 0
    assert value["bare_key"] == -2.5
    assert value["a.big"] == 1e21
    assert value["dq"] != value["dq"]  # NaN
    assert value["inf"] == float("-inf")
    assert list(value["x.latency"]) == [0.5, 1.5]
    assert value["x.latency"].omitted == 118
    assert value["esc'aped"] == "it's"
    assert value["empty"] == []
    assert value["obj"] == {"t": True, "f": False, "n": None, "u": None}
    assert TimerSamples((0.5, 1.5), 118).count == 120


@pytest.mark.parametrize(
    "text", ["{ a: [Object] }", "{ a: 1 } x", "{ a 1 }", "{ 'a': }", "[1, 2", "@"]
)
def test_refuses_what_it_does_not_understand(text):
    """Hidden values and broken text raise rather than read as something else."""
    with pytest.raises(JsParseError):
        parse_js_literal(text)


def test_parser_reads_node_util_inspect_output(statsd_daemon):
    """A seeded corpus rendered by Node's own util.inspect parses back to the same data."""
    # The fixture brings the CI rule (fail, never skip) for a machine without node.
    node = shutil.which("node")
    assert node is not None
    rng = random.Random(7)
    words = ["frontdoor", "backend", "catalog", "it's", "x-y", "a b", "_", "é", "9lives"]

    def number() -> float:
        choice = rng.random()
        if choice < 0.3:
            return rng.randint(-(10**6), 10**6)
        if choice < 0.6:
            return round(rng.uniform(0, 5000), rng.randint(0, 6))
        return rng.choice([1e21, 1e-7, 123456789.125, 0.1, -0.5])

    corpus = [
        {
            ".".join(rng.sample(words, rng.randint(1, 3))): (
                [number() for _ in range(rng.randint(0, 130))] if rng.random() < 0.4 else number()
            )
            for _ in range(rng.randint(0, 12))
        }
        for _ in range(60)
    ]
    script = (
        "const util = require('util');"
        "const data = JSON.parse(require('fs').readFileSync(0, 'utf8'));"
        "for (const item of data) { console.log(util.inspect(item)); console.log('\\u0001'); }"
    )
    rendered = subprocess.run(  # noqa: S603 - node with a fixed script
        [node, "-e", script],
        input=json.dumps(corpus),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split("\x01\n")
    for expected, text in zip(corpus, rendered, strict=False):
        parsed = parse_js_literal(text)
        assert parsed.keys() == expected.keys()
        for key, value in expected.items():
            if isinstance(value, list):
                shown = list(parsed[key])
                assert shown == value[: len(shown)]
                assert len(shown) + getattr(parsed[key], "omitted", 0) == len(value)
            else:
                assert parsed[key] == value
    assert len(rendered) - 1 == len(corpus)
    assert re.search(r"more items", "".join(rendered))  # the corpus exercised truncation
