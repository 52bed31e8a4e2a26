"""Metrics: the name vocabulary, one pipeline per request, sinks that never raise."""

from __future__ import annotations

import dataclasses
import logging
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import gevent
import gevent.event
import pytest

from actors.outcomes import COUNTERS
from actors.plan import Step, StepRecord, StepState
from orchestrator.config import load_settings
from orchestrator.ops.metrics import (
    BackendGauges,
    CapturingSink,
    GaugeReporter,
    GaugeSnapshot,
    MetricNameError,
    MetricNames,
    Metrics,
    NullSink,
    Stat,
    StatKind,
    StatsdSink,
    status_class,
)

BACKENDS = ("subscriber", "catalog", "ratings")
C, T, G = StatKind.COUNTER, StatKind.TIMER, StatKind.GAUGE


@dataclass(frozen=True)
class Decl:
    """A stand-in endpoint declaration (api, name, team)."""

    api: str
    name: str
    team: str


ENDPOINTS = (Decl("discovery", "home", "discovery"), Decl("nonmember", "plans", "growth"))


def record(
    backend: str,
    outcome: str,
    *,
    ms: float = 12.0,
    attempts: int = 1,
    degraded: bool = False,
) -> StepRecord:
    """A finished step on ``backend`` whose call ran ``ms`` milliseconds."""
    item = StepRecord(Step(f"{backend}_step", backend, lambda _ctx: None))
    item.state = StepState.DONE
    item.outcome = outcome
    item.started_at = 100.0
    item.finished_at = 100.0 + ms / 1000.0
    item.attempts = attempts
    item.degraded = degraded
    return item


@pytest.fixture
def sink() -> CapturingSink:
    """A capturing sink."""
    return CapturingSink()


@pytest.fixture
def metrics(sink: CapturingSink) -> Metrics:
    """Metrics over the capturing sink with prefix ``fd``."""
    return Metrics(MetricNames("fd", ENDPOINTS, BACKENDS), sink)


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    """A UDP socket on a free loopback port, standing in for statsd."""
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(2.0)
    yield receiver
    receiver.close()


def closed_udp_port() -> int:
    """A loopback UDP port nothing listens on."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return int(port)


# -- names ----------------------------------------------------------------------------


def test_catalogue_holds_exactly_the_design_names():
    """Every name follows the documented table (orchestrator/ops/metrics.py), with its type."""
    catalogue = MetricNames("fd", ENDPOINTS, ("catalog",)).catalogue()
    assert catalogue == {
        "fd.frontend.inflight": G,
        "fd.frontend.shed": C,
        "fd.frontend.refused.bad_request": C,
        "fd.frontend.refused.malformed_body": C,
        "fd.frontend.refused.request_timeout": C,
        "fd.frontend.refused.uri_too_long": C,
        "fd.frontend.refused.headers_too_large": C,
        "fd.frontend.refused.unsupported_transfer_coding": C,
        "fd.frontend.refused.internal_error": C,
        "fd.endpoint.discovery.home.latency": T,
        "fd.endpoint.discovery.home.rejected": C,
        "fd.endpoint.discovery.home.status.2xx": C,
        "fd.endpoint.discovery.home.status.4xx": C,
        "fd.endpoint.discovery.home.status.5xx": C,
        "fd.endpoint.discovery.home.degraded": C,
        "fd.endpoint.nonmember.plans.latency": T,
        "fd.endpoint.nonmember.plans.rejected": C,
        "fd.endpoint.nonmember.plans.status.2xx": C,
        "fd.endpoint.nonmember.plans.status.4xx": C,
        "fd.endpoint.nonmember.plans.status.5xx": C,
        "fd.endpoint.nonmember.plans.degraded": C,
        "fd.team.discovery.errors": C,
        "fd.team.growth.errors": C,
        "fd.backend.catalog.success": C,
        "fd.backend.catalog.failure": C,
        "fd.backend.catalog.timeout": C,
        "fd.backend.catalog.rejected": C,
        "fd.backend.catalog.short_circuited": C,
        "fd.backend.catalog.fallback": C,
        "fd.backend.catalog.latency": T,
        "fd.backend.catalog.inflight": G,
        "fd.backend.catalog.queued": G,
        "fd.backend.catalog.breaker_open": G,
        "fd.backend.catalog.limit": G,
    }


def test_backend_counters_are_the_counted_outcomes_as_plain_names():
    """One counter per ``actors.outcomes.COUNTERS`` leaf, in order, as a plain ``str``."""
    outcomes = MetricNames("fd", ENDPOINTS, ("catalog",)).backends["catalog"].outcomes
    assert list(outcomes) == list(COUNTERS)
    assert list(outcomes.values()) == [f"fd.backend.catalog.{o.value}" for o in COUNTERS]
    assert all(type(name) is str for name in outcomes.values())


def test_real_declarations_make_valid_names():
    """Every shipped endpoint, team and backend is a valid name part."""
    from backends.simulated.reference import SERVICES as BACKEND_NAMES
    from orchestrator.runtime import endpoints_for

    settings = load_settings(environ={})
    names = MetricNames("frontdoor", endpoints_for(settings.server), BACKEND_NAMES)
    assert set(names.teams) == {"growth", "discovery", "playback"}
    wire_safe = re.compile(r"[A-Za-z0-9_.-]+")
    assert all(wire_safe.fullmatch(name) for name in names.catalogue())


@pytest.mark.parametrize(
    "bad", ["a:b", "a|c", "x\ny", "Upper", "dot.ted", "", "sp ace", "é", "at@1"]
)
def test_names_that_could_forge_metrics_are_refused_at_construction(bad):
    """A name part outside [a-z0-9_] fails at start-up, never on the wire."""
    with pytest.raises(MetricNameError):
        MetricNames("fd", [Decl("api", bad, "team")], ())
    with pytest.raises(MetricNameError):
        MetricNames("fd", [Decl("api", "ep", bad)], ())
    with pytest.raises(MetricNameError):
        MetricNames("fd", (), [bad])


@pytest.mark.parametrize("prefix", ["", "a:b", "a..b", ".a", "a|b", "a\nb"])
def test_bad_prefix_is_refused(prefix):
    """The prefix obeys the same rule as the statsd.prefix setting."""
    with pytest.raises(MetricNameError):
        MetricNames(prefix, (), ())


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (201, "2xx"), (399, "2xx"), (400, "4xx"), (499, "4xx"), (500, "5xx")],
)
def test_status_class(status, expected):
    """Statuses fold into the three documented classes."""
    assert status_class(status) == expected


# -- one request, one pipeline ----------------------------------------------------------


def test_a_request_sends_one_batch_with_every_stat(metrics, sink):
    """Endpoint timer and status, backend outcomes, latencies and fallbacks: one send."""
    request = metrics.request()
    request.endpoint("discovery.home")
    request.steps(
        [
            record("subscriber", "success", ms=5),
            record("catalog", "success", ms=20),
            record("catalog", "success", ms=30),
            record("ratings", "timeout", ms=300, degraded=True),
        ]
    )
    request.finish(200, 341.5, degraded=True)
    assert len(sink.batches) == 1
    assert sink.counters() == {
        "fd.backend.subscriber.success": 1,
        "fd.backend.catalog.success": 2,
        "fd.backend.ratings.timeout": 1,
        "fd.backend.ratings.fallback": 1,
        "fd.endpoint.discovery.home.status.2xx": 1,
        "fd.endpoint.discovery.home.degraded": 1,
    }
    timers = {name: [round(v, 3) for v in values] for name, values in sink.timers().items()}
    assert timers == {
        "fd.backend.subscriber.latency": [5.0],
        "fd.backend.catalog.latency": [20.0, 30.0],
        "fd.backend.ratings.latency": [300.0],
        "fd.endpoint.discovery.home.latency": [341.5],
    }
    assert sink.gauges() == {}


def test_counters_are_summed_within_a_request(metrics, sink):
    """Two successes on one backend travel as one line with value 2."""
    request = metrics.request()
    request.steps([record("catalog", "success"), record("catalog", "success")])
    request.finish(200, 1.0)
    counters = [stat for stat in sink.stats if stat.kind is C]
    assert counters == [Stat(C, "fd.backend.catalog.success", 2)]


@pytest.mark.parametrize("status", [500, 503, 504])
def test_server_errors_count_as_the_teams_errors(metrics, sink, status):
    """500, 503 (dependency) and 504 (deadline) all page the owning team."""
    request = metrics.request()
    request.endpoint("nonmember.plans")
    request.finish(status, 3.0)
    counters = sink.counters()
    assert counters["fd.team.growth.errors"] == 1
    assert counters["fd.endpoint.nonmember.plans.status.5xx"] == 1
    assert "fd.team.discovery.errors" not in counters


@pytest.mark.parametrize("status", [400, 401, 404, 429])
def test_client_errors_are_not_team_errors(metrics, sink, status):
    """A device's mistake is counted as 4xx and pages nobody."""
    request = metrics.request()
    request.endpoint("nonmember.plans")
    request.finish(status, 1.0, degraded=True)
    assert sink.counters() == {"fd.endpoint.nonmember.plans.status.4xx": 1}


def test_instant_outcomes_have_no_latency_sample(metrics, sink):
    """Rejections, short-circuits and unstarted timeouts count but add no latency."""
    request = metrics.request()
    request.steps(
        [
            record("catalog", "rejected", ms=0, attempts=0),
            record("catalog", "short_circuited", ms=0, attempts=0),
            record("ratings", "timeout", attempts=0, degraded=True),
        ]
    )
    request.finish(200, 5.0)
    assert sink.counters() == {
        "fd.backend.catalog.rejected": 1,
        "fd.backend.catalog.short_circuited": 1,
        "fd.backend.ratings.timeout": 1,
        "fd.backend.ratings.fallback": 1,
    }
    assert sink.timers() == {}


def test_steps_without_a_call_have_no_outcome(metrics, sink):
    """A skipped or unfinished step is no backend call; a skipped one may still fall back."""
    request = metrics.request()
    skipped = record("catalog", "skipped", degraded=True)
    unfinished = record("ratings", "")
    request.steps([skipped, unfinished])
    request.finish(200, 5.0)
    assert sink.counters() == {"fd.backend.catalog.fallback": 1}


def test_unknown_names_are_dropped_and_counted_never_raised(metrics, sink):
    """Names outside the vocabulary never reach the wire; the facade counts them."""
    request = metrics.request()
    request.endpoint("discovery.home:1|c")
    request.backend_call("evil\nfd.x", "success", 1.0)
    request.backend_call("catalog", "exploded")
    request.finish(200, 1.0)
    assert metrics.unknown_names == 3
    assert sink.batches == []


def test_finish_sends_once(metrics, sink):
    """A second finish (e.g. from an error path) sends nothing more."""
    request = metrics.request()
    request.endpoint("discovery.home")
    request.finish(200, 1.0)
    request.finish(500, 1.0)
    assert len(sink.batches) == 1
    assert sink.counters() == {"fd.endpoint.discovery.home.status.2xx": 1}


def test_a_batch_sends_its_calls_in_one_batch(metrics, sink):
    """Each call of a batch adds its endpoint's stats; the batch's finish sends them once."""
    batch = metrics.request()
    batch.steps([record("catalog", "success", ms=10)])
    batch.endpoint_result("discovery.home", 200, 12.0)
    batch.endpoint_result("nonmember.plans", 504, 800.0)
    batch.endpoint_result("discovery.home", 200, 14.0, degraded=True)
    batch.endpoint_result("no.such", 200, 1.0)
    batch.finish(200, 820.0)  # the batch itself is no endpoint
    assert len(sink.batches) == 1
    assert sink.counters() == {
        "fd.backend.catalog.success": 1,
        "fd.endpoint.discovery.home.status.2xx": 2,
        "fd.endpoint.discovery.home.degraded": 1,
        "fd.endpoint.nonmember.plans.status.5xx": 1,
        "fd.team.growth.errors": 1,
    }
    assert sink.timers()["fd.endpoint.discovery.home.latency"] == [12.0, 14.0]
    assert metrics.unknown_names == 1


def test_nonsense_latencies_are_not_sent(metrics, sink):
    """A negative or infinite latency (a clock glitch) is dropped, the counters stay."""
    request = metrics.request()
    request.endpoint("discovery.home")
    request.backend_call("catalog", "success", -3.0)
    request.finish(200, float("inf"))
    assert sink.timers() == {}
    assert sink.counters()["fd.backend.catalog.success"] == 1


# -- the statsd sink -------------------------------------------------------------------


def test_statsd_sink_packs_a_request_into_one_datagram(metrics, udp_receiver):
    """One request's stats arrive as one datagram in statsd's line format."""
    sink = StatsdSink.connect(*udp_receiver.getsockname())
    assert isinstance(sink, StatsdSink)
    metrics.sink = sink
    request = metrics.request()
    request.endpoint("discovery.home")
    request.steps([record("catalog", "success", ms=20)])
    request.finish(200, 25.0)
    lines = udp_receiver.recv(65_536).decode("ascii").split("\n")
    assert lines == [
        "fd.backend.catalog.success:1|c",
        "fd.endpoint.discovery.home.status.2xx:1|c",
        "fd.backend.catalog.latency:20.000000|ms",
        "fd.endpoint.discovery.home.latency:25.000000|ms",
    ]
    assert (sink.sent_packets, sink.send_errors) == (1, 0)
    sink.close()


def test_statsd_sink_splits_a_large_batch_at_max_udp_bytes(udp_receiver):
    """A batch larger than one datagram still goes out in one send, as few packets."""
    sink = StatsdSink.connect(*udp_receiver.getsockname(), max_udp_bytes=100)
    assert isinstance(sink, StatsdSink)
    sink.send([Stat(C, f"fd.backend.b{i}.success", 1) for i in range(10)])
    packets = [udp_receiver.recv(65_536) for _ in range(sink.sent_packets)]
    assert all(len(packet) < 100 for packet in packets)
    assert sum(packet.count(b"|c") for packet in packets) == 10
    assert 1 < sink.sent_packets < 10
    sink.close()


def test_statsd_sink_sends_gauges(udp_receiver):
    """Gauges use statsd's ``|g`` type."""
    sink = StatsdSink.connect(*udp_receiver.getsockname())
    assert isinstance(sink, StatsdSink)
    sink.send([Stat(G, "fd.frontend.inflight", 3)])
    assert udp_receiver.recv(65_536) == b"fd.frontend.inflight:3|g"
    sink.close()


def test_a_closed_port_costs_nothing_visible():
    """Nobody listening: sends succeed locally, nothing is raised or counted as an error."""
    sink = StatsdSink.connect("127.0.0.1", closed_udp_port())
    assert isinstance(sink, StatsdSink)
    for _ in range(200):
        sink.send([Stat(C, "fd.frontend.shed", 1)])
    sink.flush()
    assert sink.send_errors == 0
    assert 0 < sink.sent_packets < 20  # packed: many stats per datagram
    sink.close()


def test_socket_errors_are_counted_not_raised(udp_receiver, caplog):
    """A datagram the kernel refuses (too large) is counted and logged once."""
    sink = StatsdSink.connect(*udp_receiver.getsockname(), max_udp_bytes=1_000_000)
    assert isinstance(sink, StatsdSink)
    huge = [Stat(C, f"fd.backend.b{i:05d}.success", 1) for i in range(4_000)]
    with caplog.at_level(logging.WARNING, logger="frontdoor.metrics"):
        sink.send(huge)
        sink.flush()
        sink.send(huge)
        sink.flush()
    assert (sink.sent_packets, sink.send_errors) == (0, 2)
    assert len([r for r in caplog.records if "statsd send failed" in r.message]) == 1
    sink.close()
    sink.send([Stat(C, "fd.frontend.shed", 1)])  # after close: counted, not raised
    sink.flush()
    assert sink.send_errors == 3


def test_requests_share_datagrams_sent_within_the_flush_interval(metrics, udp_receiver):
    """Several requests' stats travel together, once the (short) flush interval is up."""
    sink = StatsdSink.connect(*udp_receiver.getsockname(), flush_interval_s=0.05)
    assert isinstance(sink, StatsdSink)
    metrics.sink = sink
    for _ in range(3):
        request = metrics.request()
        request.endpoint("discovery.home")
        request.finish(200, 5.0)
    assert sink.sent_packets == 0  # nothing sent per request
    lines = udp_receiver.recv(65_536).decode("ascii").split("\n")  # waits for the timer
    assert lines.count("fd.endpoint.discovery.home.status.2xx:1|c") == 3
    assert sink.sent_packets == 1
    sink.close()


def test_a_full_datagram_goes_out_at_once(udp_receiver):
    """Stats that fill a datagram are sent without waiting for the timer."""
    sink = StatsdSink.connect(*udp_receiver.getsockname(), max_udp_bytes=200, flush_interval_s=3600)
    assert isinstance(sink, StatsdSink)
    sink.send([Stat(C, f"fd.backend.b{i}.success", 1) for i in range(10)])
    assert sink.sent_packets >= 1
    assert b"|c" in udp_receiver.recv(65_536)
    sink.close()


def test_close_sends_what_is_pending(udp_receiver):
    """Stopping the process loses no stat that was already handed to the sink."""
    sink = StatsdSink.connect(*udp_receiver.getsockname(), flush_interval_s=3600)
    assert isinstance(sink, StatsdSink)
    sink.send([Stat(C, "fd.frontend.shed", 2)])
    sink.close()
    assert udp_receiver.recv(65_536) == b"fd.frontend.shed:2|c"


def test_resolution_happens_once_at_connect(udp_receiver):
    """The statsd host is resolved at start-up only, never per send."""
    calls: list[str] = []

    def resolver(host: str, port: int, *args: object) -> list[tuple[object, ...]]:
        calls.append(host)
        return socket.getaddrinfo("127.0.0.1", port, *args)

    sink = StatsdSink.connect("statsd.example", udp_receiver.getsockname()[1], resolve=resolver)
    assert isinstance(sink, StatsdSink)
    for _ in range(50):
        sink.send([Stat(C, "fd.frontend.shed", 1)])
    assert calls == ["statsd.example"]
    assert sink.address == ("127.0.0.1", udp_receiver.getsockname()[1])
    sink.close()


def test_an_ip_address_needs_no_resolver(udp_receiver):
    """A literal address (the default 127.0.0.1) never touches the resolver's thread pool."""

    def resolver(*_args: object) -> list[tuple[object, ...]]:
        raise AssertionError("resolver called for an IP literal")

    port = udp_receiver.getsockname()[1]
    sink = StatsdSink.connect("127.0.0.1", port, resolve=resolver)
    assert isinstance(sink, StatsdSink)
    sink.send([Stat(C, "fd.frontend.shed", 1)])
    assert udp_receiver.recv(100) == b"fd.frontend.shed:1|c"
    sink.close()
    for literal in ("::1", "[::1]"):
        sink = StatsdSink.connect(literal, port, resolve=resolver)
        assert isinstance(sink, StatsdSink)
        assert sink.address == ("::1", port)
        sink.close()


def test_unresolvable_host_gives_a_null_sink_and_a_warning(caplog):
    """A name that does not resolve turns metrics off with one warning, not a crash."""

    def resolver(*_args: object) -> list[tuple[object, ...]]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with caplog.at_level(logging.WARNING, logger="frontdoor.metrics"):
        sink = StatsdSink.connect("nowhere.invalid", 8125, resolve=resolver)
    assert isinstance(sink, NullSink)
    assert "metrics are off" in caplog.text
    sink.send([Stat(C, "fd.frontend.shed", 1)])
    assert sink.dropped_batches == 1


def test_a_hanging_resolver_is_bounded():
    """A resolver that never answers cannot hold start-up past resolve_timeout_s."""
    never = gevent.event.Event()

    def resolver(*_args: object) -> list[tuple[object, ...]]:
        never.wait()
        return []  # pragma: no cover - never reached

    sink = StatsdSink.connect("slow.invalid", 8125, resolve=resolver, resolve_timeout_s=0.05)
    assert isinstance(sink, NullSink)


def test_from_settings_disabled_drops_everything():
    """``statsd.enabled = false`` gives a NullSink and resolves nothing."""
    settings = load_settings(environ={"FRONTDOOR_STATSD_ENABLED": "false"})
    metrics = Metrics.from_settings(settings.statsd, ENDPOINTS, BACKENDS)
    assert isinstance(metrics.sink, NullSink)
    assert metrics.names.prefix == "frontdoor"


def test_from_settings_uses_host_port_and_prefix(udp_receiver):
    """Host, port and prefix come from the settings."""
    host, port = udp_receiver.getsockname()
    environ = {
        "FRONTDOOR_STATSD_HOST": host,
        "FRONTDOOR_STATSD_PORT": str(port),
        "FRONTDOOR_STATSD_PREFIX": "fd.canary",
    }
    metrics = Metrics.from_settings(load_settings(environ=environ).statsd, ENDPOINTS, BACKENDS)
    request = metrics.request()
    request.endpoint("nonmember.plans")
    request.finish(503, 2.0)
    received = udp_receiver.recv(65_536).decode()
    assert "fd.canary.team.growth.errors:1|c" in received.split("\n")
    metrics.close()


# -- gauges ----------------------------------------------------------------------------


def snapshot(shed: int = 0, *, open_breaker: bool = False) -> GaugeSnapshot:
    """Gauges for two backends and the frontend."""
    return GaugeSnapshot(
        backends={
            "catalog": BackendGauges(inflight=4, queued=2, breaker_open=open_breaker),
            "ratings": BackendGauges(inflight=0, queued=0, breaker_open=False),
        },
        frontend_inflight=7,
        shed_total=shed,
    )


def test_report_sends_every_gauge_in_one_batch(metrics, sink):
    """One pipeline per interval: frontend and per-backend gauges."""
    GaugeReporter(metrics, lambda: snapshot(open_breaker=True), 1.0).report_once()
    assert len(sink.batches) == 1
    assert sink.gauges() == {
        "fd.frontend.inflight": 7,
        "fd.backend.catalog.inflight": 4,
        "fd.backend.catalog.queued": 2,
        "fd.backend.catalog.breaker_open": 1,
        "fd.backend.ratings.inflight": 0,
        "fd.backend.ratings.queued": 0,
        "fd.backend.ratings.breaker_open": 0,
    }
    assert sink.counters() == {}


def test_an_adaptive_limit_is_sent_as_a_gauge_of_its_backend_only(metrics, sink):
    """``backend.{b}.limit`` goes out for a backend with an adaptive limit, and only then."""
    limited = GaugeSnapshot(
        {
            "catalog": BackendGauges(2, 0, breaker_open=False, limit=6),
            "ratings": BackendGauges(0, 0, breaker_open=False),
        },
        0,
        0,
    )
    GaugeReporter(metrics, lambda: limited, 1.0).report_once()
    gauges = sink.gauges()
    assert gauges["fd.backend.catalog.limit"] == 6
    assert "fd.backend.ratings.limit" not in gauges
    assert metrics.names.catalogue()["fd.backend.ratings.limit"] is StatKind.GAUGE


def test_shed_is_sent_as_the_delta_since_the_last_report(metrics, sink):
    """The shed counter carries only new sheds; a counter restart is all new."""
    totals = iter([3, 3, 10, 2])
    reporter = GaugeReporter(metrics, lambda: snapshot(next(totals)), 1.0)
    sent = []
    for _ in range(4):
        reporter.report_once()
        sent.append(sink.counters().get("fd.frontend.shed", 0))
        sink.batches.clear()
    assert sent == [3, 0, 7, 2]


def test_a_worker_that_does_not_send_gauges_still_sends_its_sheds(metrics, sink):
    """Under gunicorn one worker sends the instance's gauges; the others their sheds only."""
    quiet = dataclasses.replace(snapshot(5, open_breaker=True), send_gauges=False)
    totals = iter([quiet, dataclasses.replace(quiet, shed_total=5)])
    reporter = GaugeReporter(metrics, lambda: next(totals), 1.0)
    reporter.report_once()
    assert (sink.gauges(), sink.counters()) == ({}, {"fd.frontend.shed": 5})
    sink.batches.clear()
    reporter.report_once()  # nothing new: nothing sent
    assert sink.batches == []


def test_negative_gauges_are_clamped(metrics, sink):
    """A bookkeeping glitch never makes pystatsd send two datagrams for one gauge."""
    bad = GaugeSnapshot({"catalog": BackendGauges(-1, -2, breaker_open=False)}, -3, 0)
    GaugeReporter(metrics, lambda: bad, 1.0).report_once()
    assert set(sink.gauges().values()) == {0}


def test_unknown_backend_gauges_are_dropped(metrics, sink):
    """A backend outside the vocabulary is counted, not sent."""
    odd = GaugeSnapshot({"nope:1|c": BackendGauges(1, 1, breaker_open=True)}, 0, 0)
    GaugeReporter(metrics, lambda: odd, 1.0).report_once()
    assert metrics.unknown_names == 1
    assert sink.gauges() == {"fd.frontend.inflight": 0}


def test_a_failing_read_or_observer_never_escapes(metrics, caplog):
    """Errors are logged once and counted; the reporter keeps going."""

    def broken() -> GaugeSnapshot:
        raise RuntimeError("boom")

    reporter = GaugeReporter(metrics, broken, 1.0)
    with caplog.at_level(logging.ERROR, logger="frontdoor.metrics"):
        reporter.report_once()
        reporter.report_once()
    assert reporter.errors == 2
    assert len(caplog.records) == 1

    def bad_observer(_snapshot: GaugeSnapshot) -> None:
        raise ValueError("observer bug")

    reporter = GaugeReporter(metrics, snapshot, 1.0, observers=[bad_observer])
    reporter.report_once()
    assert (reporter.reports, reporter.errors) == (1, 1)


def test_reporter_runs_on_its_interval_in_one_greenlet_until_stopped(metrics, sink):
    """start reports at once and then every interval; stop ends the greenlet."""
    seen: list[GaugeSnapshot] = []
    third = gevent.event.Event()

    def observe(snap: GaugeSnapshot) -> None:
        seen.append(snap)
        if len(seen) == 3:
            third.set()

    reporter = GaugeReporter(metrics, snapshot, 0.01, observers=[observe])
    reporter.start()
    reporter.start()  # idempotent: still one greenlet
    assert third.wait(timeout=5)
    reporter.stop()
    assert not reporter.running
    count = len(sink.batches)
    assert count >= 3
    gevent.idle()
    assert len(sink.batches) == count  # nothing after stop


def test_reporter_rejects_a_nonsense_interval(metrics):
    """A zero interval would spin; refused at construction."""
    with pytest.raises(ValueError, match="interval_s"):
        GaugeReporter(metrics, snapshot, 0)
