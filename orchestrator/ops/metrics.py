"""Metrics: the only place statsd names are built, and a typed facade over ``statsd``.

Names (also listed, with alert rules, in docs/alerts.md), with ``{p}`` the configured prefix:

==============================================  =======  ==================================
name                                            type     when
==============================================  =======  ==================================
``{p}.endpoint.{api}.{endpoint}.latency``       timer    every routed request whose plan
                                                         ran (its parameters valid), ms
``{p}.endpoint.{api}.{endpoint}.rejected``      counter  routed request answered before
                                                         its plan ran (invalid parameter,
                                                         unauthorized, rate limited, shed)
``{p}.endpoint.{api}.{endpoint}.status.2xx``    counter  routed request answered < 400
``...status.4xx`` / ``...status.5xx``           counter  400-499 / 500 and above
``{p}.endpoint.{api}.{endpoint}.degraded``      counter  a 2xx where some part fell back
``{p}.backend.{b}.{outcome}``                   counter  per step: success, failure,
                                                         timeout, rejected, short_circuited
``{p}.backend.{b}.fallback``                    counter  per step that fell back
``{p}.backend.{b}.latency``                     timer    per step whose call ran (success,
                                                         failure, timeout with attempts)
``{p}.backend.{b}.inflight`` / ``.queued``      gauge    every ``gauge_interval_s``
``{p}.backend.{b}.breaker_open``                gauge    1 unless the breaker is closed
``{p}.backend.{b}.limit``                       gauge    the adaptive concurrency limit,
                                                         for a backend with
                                                         ``limit.adaptive`` only
``{p}.team.{team}.errors``                      counter  a routed request of the team's
                                                         endpoints answered 5xx (500, 503
                                                         dependency unavailable, 504
                                                         deadline exceeded)
``{p}.frontend.inflight``                       gauge    every ``gauge_interval_s``
``{p}.frontend.shed``                           counter  requests shed (503 before routing),
                                                         sent as a delta each interval
``{p}.frontend.refused.{code}``                 counter  requests the HTTP server refused
                                                         before the app ran, by problem
                                                         code (``REFUSED_CODES``: framing,
                                                         head size, head timeout)
==============================================  =======  ==================================

A team's errors are the 5xx of its own endpoints only: 4xx are the device's doing, and a
request shed before routing belongs to no endpoint (it shows in ``frontend.shed``). A
degraded 200 is not an error (it shows in ``.degraded`` and ``backend.{b}.fallback``).
Backend counters are what requests saw, one per step: a retried step counts once.

Safety. Every name is built here, once, at start-up, from a fixed vocabulary (endpoint
declarations and configured backend names, each checked against ``^[a-z0-9_]+$``);
nothing derived from a request ever reaches the wire, because ``:``, ``|`` or a newline
would forge metrics. A name asked for at run time that is not in the vocabulary is
dropped and counted in ``Metrics.unknown_names``.

Cost. Stats are packed across requests into datagrams of up to ``max_udp_bytes`` by one
long-lived pystatsd pipeline (``StatsdSink``), sent when full or 100 ms after the first
unsent stat: about one ``sendto`` per two or three requests instead of one each.
Emission never raises and never waits: the statsd address is resolved once, by
``StatsdSink.connect``, with a bounded wait (an unresolvable host gives a ``NullSink`` and
a warning); the socket is non-blocking and errors are counted in
``StatsdSink.send_errors``, not raised. Gauges go out from one
greenlet (``GaugeReporter``), never per call.
"""

from __future__ import annotations

import enum
import ipaddress
import logging
import math
import re
import socket
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, NamedTuple, Protocol

import gevent
import gevent.event
import statsd

from actors.outcomes import CALLS, COUNTERS, TIMED, Outcome
from actors.plan import StepRecord
from orchestrator.config import StatsdSettings
from orchestrator.frontend import problems

__all__ = [
    "DEFAULT_FLUSH_INTERVAL_S",
    "DEFAULT_MAX_UDP_BYTES",
    "NAME_PATTERN",
    "REFUSED_CODES",
    "BackendGauges",
    "BackendNames",
    "CapturingSink",
    "EndpointLike",
    "EndpointNames",
    "GaugeReporter",
    "GaugeSnapshot",
    "MetricNameError",
    "MetricNames",
    "Metrics",
    "MetricsSink",
    "NullSink",
    "RequestMetrics",
    "Stat",
    "StatKind",
    "StatsdSink",
    "status_class",
]

log = logging.getLogger("frontdoor.metrics")

#: Every name part that comes from a declaration: lower-case words, digits, underscores.
NAME_PATTERN: Final = re.compile(r"[a-z0-9_]+")
# The same rule as orchestrator.config's statsd.prefix check: wire-format characters never.
_PREFIX_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}")

_STATUS_CLASSES: Final = ("2xx", "4xx", "5xx")
#: The problem codes of requests the HTTP server refuses before the app runs.
REFUSED_CODES: Final = problems.REFUSALS
# Looked up once, for ``RequestMetrics.steps``: on Python 3.11 naming an enum member costs
# a class look-up of ~70 ns.
_FALLBACK: Final = Outcome.FALLBACK
_SERVER_ERROR: Final = 500
_CLIENT_ERROR: Final = 400

#: 1500-byte Ethernet MTU less IP and UDP headers, the statsd project's advice for LANs;
#: one request's stats (about 15 lines) then fit in one or two datagrams.
DEFAULT_MAX_UDP_BYTES: Final = 1432
#: The longest a stat waits in ``StatsdSink`` for its datagram to fill.
DEFAULT_FLUSH_INTERVAL_S: Final = 0.1
# What a stat's line adds to its name on the wire, at most: ":", the value, "|ms", "\n".
_LINE_OVERHEAD_BYTES: Final = 20
#: Start-up must not hang on a broken resolver: past this, metrics are off (with a warning).
DEFAULT_RESOLVE_TIMEOUT_S: Final = 2.0


class MetricNameError(ValueError):
    """A declared name cannot be a statsd name part (raised at start-up, never per request)."""


class StatKind(enum.Enum):
    """statsd types, by their wire suffix."""

    COUNTER = "c"
    TIMER = "ms"
    GAUGE = "g"


class Stat(NamedTuple):
    """One stat as a sink receives it: a full name (prefix included) and its value."""

    kind: StatKind
    name: str
    value: float


def status_class(status: int) -> str:
    """``2xx``, ``4xx`` or ``5xx``. Frontdoor sends no 1xx or 3xx: below 400 counts as 2xx."""
    if status >= _SERVER_ERROR:
        return "5xx"
    if status >= _CLIENT_ERROR:
        return "4xx"
    return "2xx"


# ---------------------------------------------------------------------------------------
# The vocabulary.


class EndpointLike(Protocol):
    """What naming needs of an endpoint declaration (``orchestrator.plans.Endpoint``)."""

    @property
    def api(self) -> str:
        """The API family, e.g. ``playback``."""
        ...

    @property
    def name(self) -> str:
        """The endpoint's name within its family, e.g. ``play``."""
        ...

    @property
    def team(self) -> str:
        """The owning team, e.g. ``playback``."""
        ...


@dataclass(frozen=True, slots=True)
class EndpointNames:
    """The names of one endpoint's stats."""

    #: What every name of the endpoint starts with (the live page labels it with this).
    base: str
    latency: str
    #: Routed requests answered before their plan ran: kept out of ``latency``.
    rejected: str
    status: Mapping[str, str]
    degraded: str
    team_errors: str


@dataclass(frozen=True, slots=True)
class BackendNames:
    """The names of one backend's stats."""

    #: What every name of the backend starts with (the live page labels it with this).
    base: str
    #: Counter name by leaf (``actors.outcomes.COUNTERS``).
    outcomes: Mapping[Outcome, str]
    latency: str
    inflight: str
    queued: str
    breaker_open: str
    #: The adaptive concurrency limit (sent only for backends that have one).
    limit: str


def _part(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise MetricNameError(f"{what} {value!r} is not a metric name part ([a-z0-9_]+)")
    return value


class MetricNames:
    """Every name this process may send, built and checked once from declarations.

    Endpoints are keyed ``"{api}.{endpoint}"`` (``Endpoint.metric_name``).
    """

    def __init__(
        self, prefix: str, endpoints: Iterable[EndpointLike], backends: Iterable[str]
    ) -> None:
        if not _PREFIX_PATTERN.fullmatch(prefix):
            raise MetricNameError(f"prefix {prefix!r} is not dot-separated [A-Za-z0-9_-] words")
        self.prefix = prefix
        endpoint_names: dict[str, EndpointNames] = {}
        team_errors: dict[str, str] = {}
        for endpoint in endpoints:
            api = _part(endpoint.api, "api")
            name = _part(endpoint.name, "endpoint")
            team = _part(endpoint.team, "team")
            base = f"{prefix}.endpoint.{api}.{name}"
            team_errors[team] = f"{prefix}.team.{team}.errors"
            endpoint_names[f"{api}.{name}"] = EndpointNames(
                base=base,
                latency=f"{base}.latency",
                rejected=f"{base}.rejected",
                status=MappingProxyType({c: f"{base}.status.{c}" for c in _STATUS_CLASSES}),
                degraded=f"{base}.degraded",
                team_errors=team_errors[team],
            )
        backend_names: dict[str, BackendNames] = {}
        for backend in backends:
            base = f"{prefix}.backend.{_part(backend, 'backend')}"
            backend_names[backend] = BackendNames(
                base=base,
                outcomes=MappingProxyType({o: f"{base}.{o}" for o in COUNTERS}),
                latency=f"{base}.latency",
                inflight=f"{base}.inflight",
                queued=f"{base}.queued",
                breaker_open=f"{base}.breaker_open",
                limit=f"{base}.limit",
            )
        self.endpoints: Mapping[str, EndpointNames] = MappingProxyType(endpoint_names)
        self.backends: Mapping[str, BackendNames] = MappingProxyType(backend_names)
        self.teams: Mapping[str, str] = MappingProxyType(team_errors)
        self.frontend_inflight = f"{prefix}.frontend.inflight"
        self.frontend_shed = f"{prefix}.frontend.shed"
        self.frontend_refused: Mapping[str, str] = MappingProxyType(
            {code: f"{prefix}.frontend.refused.{_part(code, 'code')}" for code in REFUSED_CODES}
        )

    def catalogue(self) -> dict[str, StatKind]:
        """Every name with its type: for docs, dashboards and tests."""
        names: dict[str, StatKind] = {
            self.frontend_inflight: StatKind.GAUGE,
            self.frontend_shed: StatKind.COUNTER,
        }
        names.update(dict.fromkeys(self.frontend_refused.values(), StatKind.COUNTER))
        for endpoint in self.endpoints.values():
            names[endpoint.latency] = StatKind.TIMER
            names[endpoint.rejected] = StatKind.COUNTER
            names[endpoint.degraded] = StatKind.COUNTER
            names[endpoint.team_errors] = StatKind.COUNTER
            names.update(dict.fromkeys(endpoint.status.values(), StatKind.COUNTER))
        for backend in self.backends.values():
            names.update(dict.fromkeys(backend.outcomes.values(), StatKind.COUNTER))
            names[backend.latency] = StatKind.TIMER
            for gauge in (backend.inflight, backend.queued, backend.breaker_open, backend.limit):
                names[gauge] = StatKind.GAUGE
        return names


# ---------------------------------------------------------------------------------------
# Sinks: where a batch of stats goes. Each ``send`` is one request's (or one interval's)
# stats, and never raises.


class MetricsSink(Protocol):
    """Receives batches of stats; must never raise or block."""

    def send(self, stats: Sequence[Stat]) -> None:
        """Deliver one batch (one request's stats, or one gauge report)."""
        ...

    def flush(self) -> None:
        """Send whatever is pending now (a sink may hold stats briefly to pack them)."""
        ...

    def close(self) -> None:
        """Send what is pending and release resources; later sends are dropped."""
        ...


class NullSink:
    """Drops everything (``statsd.enabled = false``, or no usable statsd address)."""

    def __init__(self, reason: str = "disabled") -> None:
        self.reason = reason
        self.dropped_batches = 0

    def send(self, stats: Sequence[Stat]) -> None:
        """Count and drop."""
        del stats
        self.dropped_batches += 1

    def flush(self) -> None:
        """Nothing is pending."""

    def close(self) -> None:
        """Nothing to release."""


class CapturingSink:
    """A fake for tests: keeps every batch, and sums them the way a statsd daemon would."""

    def __init__(self) -> None:
        self.batches: list[tuple[Stat, ...]] = []
        self.closed = False

    def send(self, stats: Sequence[Stat]) -> None:
        """Keep the batch."""
        self.batches.append(tuple(stats))

    def flush(self) -> None:
        """Nothing is pending: batches are kept as they come."""

    def close(self) -> None:
        """Remember that it was closed."""
        self.closed = True

    @property
    def stats(self) -> list[Stat]:
        """Every stat sent, in order."""
        return [stat for batch in self.batches for stat in batch]

    def counters(self) -> dict[str, float]:
        """Counter totals by name."""
        totals: dict[str, float] = {}
        for stat in self.stats:
            if stat.kind is StatKind.COUNTER:
                totals[stat.name] = totals.get(stat.name, 0) + stat.value
        return totals

    def timers(self) -> dict[str, list[float]]:
        """Timer samples by name."""
        samples: dict[str, list[float]] = {}
        for stat in self.stats:
            if stat.kind is StatKind.TIMER:
                samples.setdefault(stat.name, []).append(stat.value)
        return samples

    def gauges(self) -> dict[str, float]:
        """Last gauge value by name."""
        return {stat.name: stat.value for stat in self.stats if stat.kind is StatKind.GAUGE}


class _CountingStatsClient(statsd.StatsClient):  # type: ignore[misc]  # statsd is untyped
    """pystatsd's UDP client whose ``_send`` (the base class's abstract hook) counts errors.

    pystatsd already swallows socket errors; we also count them, so an operator can see
    that metrics are being lost without the request path ever noticing.
    """

    def __init__(self, host: str, port: int, max_udp_bytes: int, ipv6: bool) -> None:
        super().__init__(host, port, prefix=None, maxudpsize=max_udp_bytes, ipv6=ipv6)
        # Non-blocking: under gevent a full send buffer would otherwise park the request's
        # greenlet; with timeout 0 it raises at once and the datagram is counted as lost.
        self._sock.settimeout(0.0)
        self.sent_packets = 0
        self.send_errors = 0

    def _send(self, data: str) -> None:
        try:
            self._sock.sendto(data.encode("ascii"), self._addr)
        except (OSError, UnicodeError, AttributeError) as exc:  # AttributeError: closed
            self.send_errors += 1
            if self.send_errors == 1:
                log.warning("statsd send failed (%s); further failures are only counted", exc)
        else:
            self.sent_packets += 1


class StatsdSink:
    """Packs stats into datagrams with one long-lived pystatsd pipeline and sends them when
    a datagram is full or ``flush_interval_s`` after the first unsent stat, whichever comes
    first. Build it with ``connect``.

    A request's stats are a dozen short lines; sent alone they made one ``sendto`` per
    request, about a third of what metrics cost a request (benchmarks/breakdown.py). Packed
    across requests, a 1,432-byte datagram carries two or three requests' stats. The delay
    is immaterial to statsd, which aggregates over its own flush interval (10 s by default).
    ``flush`` sends what is pending now; ``close`` flushes first.
    """

    def __init__(
        self,
        client: _CountingStatsClient,
        address: tuple[str, int],
        *,
        max_udp_bytes: int = DEFAULT_MAX_UDP_BYTES,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
    ) -> None:
        self._client = client
        self.address = address
        self.failed_batches = 0
        self._pipe = client.pipeline()
        self._max_udp_bytes = max_udp_bytes
        self._flush_interval_s = flush_interval_s
        #: Bytes of the lines the pipeline holds (an estimate a few bytes high per line).
        self._pending_bytes = 0
        self._timer: Any = None

    @classmethod
    def connect(
        cls,
        host: str,
        port: int,
        *,
        max_udp_bytes: int = DEFAULT_MAX_UDP_BYTES,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        resolve_timeout_s: float = DEFAULT_RESOLVE_TIMEOUT_S,
        resolve: Callable[..., list[tuple[Any, ...]]] | None = None,
    ) -> StatsdSink | NullSink:
        """Resolve ``host`` once, now, and open the socket; a ``NullSink`` if that fails.

        ``resolve`` defaults to ``socket.getaddrinfo`` looked up at call time (so the
        gevent-patched one is used); tests pass a fake.
        """
        resolver = socket.getaddrinfo if resolve is None else resolve
        try:
            literal = _ip_literal(host)
            if literal is not None:
                # An address needs no resolver (under gevent, a thread pool) at all.
                numeric_host, ipv6 = literal
            else:
                with gevent.Timeout(resolve_timeout_s, _ResolveTimeoutError):
                    infos = resolver(host, port, 0, socket.SOCK_DGRAM)
                family, _type, _proto, _name, sockaddr = infos[0]
                numeric_host, ipv6 = str(sockaddr[0]), family == socket.AF_INET6
            client = _CountingStatsClient(numeric_host, port, max_udp_bytes, ipv6=ipv6)
        except (OSError, UnicodeError, IndexError, _ResolveTimeoutError) as exc:
            log.warning("statsd %s:%s unusable (%s): metrics are off", host, port, exc)
            return NullSink(reason=f"statsd {host}:{port} unusable")
        return cls(
            client,
            (numeric_host, port),
            max_udp_bytes=max_udp_bytes,
            flush_interval_s=flush_interval_s,
        )

    @property
    def sent_packets(self) -> int:
        """Datagrams handed to the kernel."""
        return int(self._client.sent_packets)

    @property
    def send_errors(self) -> int:
        """Datagrams lost to socket errors (counted, never raised)."""
        return int(self._client.send_errors)

    def send(self, stats: Sequence[Stat]) -> None:
        """Add the batch to the pipeline; send once a datagram is full, else arm the timer."""
        if not stats:
            return
        try:
            pipe = self._pipe
            for stat in stats:
                if stat.kind is StatKind.COUNTER:
                    pipe.incr(stat.name, stat.value)
                elif stat.kind is StatKind.TIMER:
                    pipe.timing(stat.name, stat.value)
                else:
                    pipe.gauge(stat.name, stat.value)
                # name, ":", a value of up to ~14 characters, "|ms", "\n"
                self._pending_bytes += len(stat.name) + _LINE_OVERHEAD_BYTES
            if self._pending_bytes >= self._max_udp_bytes:
                self.flush()
            elif self._timer is None:
                self._timer = gevent.get_hub().loop.timer(self._flush_interval_s)
                # The callback runs in the hub: flush never blocks (non-blocking socket).
                self._timer.start(self.flush)
        except Exception:  # noqa: BLE001 - metrics must never fail a request
            self.failed_batches += 1

    def flush(self) -> None:
        """Send every pending stat now, packed into as few datagrams as fit."""
        if self._timer is not None:
            self._timer.close()
            self._timer = None
        self._pending_bytes = 0
        try:
            self._pipe.send()
        except Exception:  # noqa: BLE001 - metrics must never fail a request
            self.failed_batches += 1

    def close(self) -> None:
        """Send what is pending, then close the socket; later sends are counted as errors."""
        self.flush()
        self._client.close()


def _ip_literal(host: str) -> tuple[str, bool] | None:
    """``(address, is_ipv6)`` if ``host`` is an IP address (``[::1]`` too), else None."""
    try:
        address = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
    return str(address), address.version == 6  # noqa: PLR2004 - the IP version number


class _ResolveTimeoutError(Exception):
    """Resolving the statsd host took longer than start-up can wait."""


# ---------------------------------------------------------------------------------------
# The facade.


@dataclass(frozen=True, slots=True)
class BackendGauges:
    """One backend's gauges at one instant."""

    inflight: int
    queued: int
    breaker_open: bool
    #: The adaptive concurrency limit; None for a backend without one (nothing is sent).
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class GaugeSnapshot:
    """What ``GaugeReporter`` reads each interval."""

    backends: Mapping[str, BackendGauges]
    frontend_inflight: int
    #: Requests shed since the process started (``Admission.shed``); sent as a delta.
    shed_total: int
    #: Whether to send the gauges: under gunicorn one worker sends the instance's, the
    #: others only their shed counts (``orchestrator/ops/instance.py``).
    send_gauges: bool = True


class Metrics:
    """Frontdoor's metrics: built once per process, handed to the app and the reporter."""

    def __init__(self, names: MetricNames, sink: MetricsSink) -> None:
        self.names = names
        self.sink = sink
        #: Names asked for at run time that are not in the vocabulary (dropped).
        self.unknown_names = 0

    @classmethod
    def from_settings(
        cls,
        settings: StatsdSettings,
        endpoints: Iterable[EndpointLike],
        backends: Iterable[str],
        *,
        resolve: Callable[..., list[tuple[Any, ...]]] | None = None,
    ) -> Metrics:
        """Names from the declarations; a UDP sink to ``settings`` (or a ``NullSink``)."""
        names = MetricNames(settings.prefix, endpoints, backends)
        sink: MetricsSink
        if settings.enabled:
            sink = StatsdSink.connect(settings.host, settings.port, resolve=resolve)
        else:
            sink = NullSink()
        return cls(names, sink)

    def request(self) -> RequestMetrics:
        """A collector for one request's stats, flushed by its ``finish``."""
        return RequestMetrics(self)

    def refused(self, code: str) -> None:
        """A request the HTTP server refused before the app ran, by its problem code."""
        name = self.names.frontend_refused.get(code)
        if name is None:
            self.unknown_names += 1
            return
        self.sink.send([Stat(StatKind.COUNTER, name, 1)])

    def report_gauges(self, snapshot: GaugeSnapshot, shed_delta: int) -> None:
        """Send every gauge (unless ``send_gauges`` is off), and the shed count since the last
        report, in one pipeline."""
        names = self.names
        stats = []
        if shed_delta > 0:
            stats.append(Stat(StatKind.COUNTER, names.frontend_shed, shed_delta))
        if not snapshot.send_gauges:
            if stats:
                self.sink.send(stats)
            return
        stats.append(
            Stat(StatKind.GAUGE, names.frontend_inflight, _gauge(snapshot.frontend_inflight))
        )
        for backend, gauges in snapshot.backends.items():
            backend_names = names.backends.get(backend)
            if backend_names is None:
                self.unknown_names += 1
                continue
            stats.append(Stat(StatKind.GAUGE, backend_names.inflight, _gauge(gauges.inflight)))
            stats.append(Stat(StatKind.GAUGE, backend_names.queued, _gauge(gauges.queued)))
            stats.append(
                Stat(StatKind.GAUGE, backend_names.breaker_open, 1 if gauges.breaker_open else 0)
            )
            if gauges.limit is not None:
                stats.append(Stat(StatKind.GAUGE, backend_names.limit, _gauge(gauges.limit)))
        self.sink.send(stats)

    def close(self) -> None:
        """Close the sink (after the last request)."""
        self.sink.close()


def _gauge(value: float) -> float:
    # pystatsd sends a negative gauge as two datagrams ("0" then the value); ours are
    # counts, so a negative one is a bookkeeping glitch: report 0 rather than pay for it.
    return max(0, value)


class RequestMetrics:
    """One request's stats, collected as it runs and sent by ``finish`` in one pipeline.

    Usage in the app: ``rm = metrics.request()``; after routing ``rm.endpoint(key)``;
    after the plan ran ``rm.steps(result.records)``; when the response status is known
    ``rm.finish(status, latency_ms, degraded=bool(result.degraded))``. A batch collects
    each of its calls with ``rm.steps(...)`` and ``rm.endpoint_result(key, status, ...)``
    and sends them all with the batch's own ``finish``. Every method is O(stats) and
    never raises; ``finish`` sends at most once.
    """

    __slots__ = ("_counters", "_endpoint", "_metrics", "_timers", "finished")

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._endpoint: EndpointNames | None = None
        # Counters are summed within the request (one line per name); timers are samples.
        self._counters: dict[str, int] = {}
        self._timers: list[Stat] = []
        self.finished = False

    def endpoint(self, key: str) -> None:
        """The routed endpoint, by ``Endpoint.metric_name`` (``"{api}.{endpoint}"``)."""
        self._endpoint = self._endpoint_names(key)

    def endpoint_result(
        self,
        key: str,
        status: int,
        latency_ms: float,
        *,
        degraded: bool = False,
        planned: bool = True,
    ) -> None:
        """One finished call of endpoint ``key`` that is not the request itself (a batch's);
        ``planned``: whether its plan ran (else it is counted as rejected, not timed)."""
        names = self._endpoint_names(key)
        if names is not None:
            self._add_endpoint(names, status, latency_ms, degraded=degraded, planned=planned)

    def backend_call(self, backend: str, outcome: Outcome, latency_ms: float | None = None) -> None:
        """One step's outcome on ``backend``; ``latency_ms`` for a call that ran."""
        names = self._metrics.names.backends.get(backend)
        name = None if names is None else names.outcomes.get(outcome)
        if names is None or name is None:
            self._metrics.unknown_names += 1
            return
        self._count(name)
        if latency_ms is not None and 0.0 <= latency_ms < math.inf:
            self._timers.append(Stat(StatKind.TIMER, names.latency, latency_ms))

    def steps(self, records: Iterable[StepRecord]) -> None:
        """Every step of the run: its outcome, its call's latency, and a fallback if used.

        Steps that made no call (``skipped``, ``preset``, unfinished...) have no outcome
        counter (``actors.outcomes.CALLS``). The latency is ``finished_at - started_at`` of
        steps whose call ran (``attempts > 0``).
        """
        for record in records:
            if record.outcome in CALLS:
                self.backend_call(record.step.backend, record.outcome, _call_latency_ms(record))
            if record.degraded:
                self.backend_call(record.step.backend, _FALLBACK)

    def finish(
        self, status: int, latency_ms: float, *, degraded: bool = False, planned: bool = True
    ) -> None:
        """Add the endpoint's stats and send everything in one pipeline; later calls no-op.

        ``planned``: whether the request's plan ran; one answered before (its parameters
        invalid, say, in a fraction of a millisecond) counts in ``rejected``, not in
        ``latency``, which would otherwise flatter the endpoint's percentiles.
        """
        if self.finished:
            return
        self.finished = True
        if self._endpoint is not None:
            self._add_endpoint(
                self._endpoint, status, latency_ms, degraded=degraded, planned=planned
            )
        stats = [Stat(StatKind.COUNTER, name, n) for name, n in self._counters.items()]
        stats.extend(self._timers)
        if stats:
            self._metrics.sink.send(stats)

    def _endpoint_names(self, key: str) -> EndpointNames | None:
        names = self._metrics.names.endpoints.get(key)
        if names is None:
            self._metrics.unknown_names += 1
        return names

    def _count(self, name: str) -> None:
        self._counters[name] = self._counters.get(name, 0) + 1

    def _add_endpoint(
        self,
        names: EndpointNames,
        status: int,
        latency_ms: float,
        *,
        degraded: bool,
        planned: bool,
    ) -> None:
        if not planned:
            self._count(names.rejected)
        elif 0.0 <= latency_ms < math.inf:
            self._timers.append(Stat(StatKind.TIMER, names.latency, latency_ms))
        self._count(names.status[status_class(status)])
        if degraded and status < _CLIENT_ERROR:
            self._count(names.degraded)
        if status >= _SERVER_ERROR:
            self._count(names.team_errors)


def _call_latency_ms(record: StepRecord) -> float | None:
    """How long the step's call ran, if it ran: rejections and short-circuits never reach
    the backend (``actors.outcomes.TIMED``), deadline expiries never started a call
    (``attempts == 0``), and their zero would flatter p50."""
    if (
        record.outcome in TIMED
        and record.attempts > 0
        and record.started_at > 0
        and record.finished_at >= record.started_at
    ):
        return (record.finished_at - record.started_at) * 1000.0
    return None


# ---------------------------------------------------------------------------------------
# Gauges on an interval.


class GaugeReporter:
    """Sends gauges (and the shed delta) every ``interval_s`` from one greenlet.

    ``read`` returns the current ``GaugeSnapshot`` (the actor system's backend gauges and
    the admission counters). ``observers`` see each snapshot too (e.g. the shedding
    onset/recovery logger). A failing ``read`` or observer is logged once and counted;
    the loop never dies of it.
    """

    def __init__(
        self,
        metrics: Metrics,
        read: Callable[[], GaugeSnapshot],
        interval_s: float,
        *,
        observers: Sequence[Callable[[GaugeSnapshot], None]] = (),
    ) -> None:
        if not (interval_s > 0 and math.isfinite(interval_s)):
            raise ValueError("interval_s must be a positive number")
        self.metrics = metrics
        self.interval_s = interval_s
        self._read = read
        self._observers = tuple(observers)
        self._stopping = gevent.event.Event()
        self._greenlet: gevent.Greenlet | None = None
        self._last_shed: int | None = None
        self.reports = 0
        self.errors = 0

    @property
    def running(self) -> bool:
        """Its greenlet is alive."""
        return self._greenlet is not None and not self._greenlet.dead

    def start(self) -> None:
        """Report now, then every interval, until ``stop``. Idempotent."""
        if self.running:
            return
        self._stopping.clear()
        self._greenlet = gevent.spawn(self._run)

    def stop(self, timeout_s: float = 1.0) -> None:
        """Stop the loop and wait (bounded) for its greenlet to end."""
        greenlet, self._greenlet = self._greenlet, None
        self._stopping.set()
        if greenlet is not None:
            greenlet.join(timeout_s)
            if not greenlet.dead:  # pragma: no cover - a read that hangs; do not leak it
                greenlet.kill(block=False)

    def report_once(self) -> None:
        """Read, send and notify once; never raises."""
        try:
            snapshot = self._read()
            shed_total = snapshot.shed_total
            last = self._last_shed
            # First report: the process's sheds so far. A smaller total means a restarted
            # counter: everything it holds is new.
            shed_delta = shed_total if last is None or shed_total < last else shed_total - last
            self._last_shed = shed_total
            self.metrics.report_gauges(snapshot, shed_delta)
            self.reports += 1
            for observer in self._observers:
                observer(snapshot)
        except Exception:
            self.errors += 1
            if self.errors == 1:
                log.exception("gauge report failed; further failures are only counted")

    def _run(self) -> None:
        while True:
            self.report_once()
            if self._stopping.wait(self.interval_s):
                return
