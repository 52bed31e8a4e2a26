"""Frontdoor's configuration: built-in defaults, then a TOML file, then ``FRONTDOOR_*`` variables.

Loaded once by the entry point (``load_settings``) and passed explicitly; nothing here is a
global, and this is the only module that reads the environment (through a parameter, so
tests pass their own mapping).

Every setting is one row of ``_LEAVES``: a dotted name (the TOML table path), a default, a
check, and a one-line description. ``describe_settings`` lists them with their environment
keys, after gevent's ``_config.py``. The environment key is the dotted name upper-cased with
``.`` turned into ``_`` behind ``FRONTDOOR_``: ``server.port`` is ``FRONTDOOR_SERVER_PORT``,
``backends.catalog.breaker.open_ms`` is ``FRONTDOOR_BACKENDS_CATALOG_BREAKER_OPEN_MS``.

Precedence. For one key, the environment beats the file, which beats the built-in default.
Across keys, the most specific wins: a backend's own key (``backends.catalog.timeout_ms``)
given anywhere beats ``backends.defaults.timeout_ms`` given anywhere, which beats the
built-in per-backend tuning, which beats the built-in defaults of ``backends.specs``. In the
same way ``backends.catalog.url`` and ``backends.catalog.transport`` beat ``backends.base_url``
and ``backends.transport``.

Backends. Any name is a backend: ``[backends.kids_catalog]`` with a ``url`` configures one
(environment: ``FRONTDOOR_BACKENDS_KIDS_CATALOG_URL``). ``backends.base_url`` is where the
simulated microservices live (``backends/simulated/``, one per name of its ``SERVICES``, each
at ``/<name>``, with its own built-in timeout): with it set, those names need no table.

API packages. ``server.apis`` names the packages a process serves and ``server.passthrough``
those it passes on to ``server.playback_upstream``; ``server.topology`` is a named preset of
both (``TOPOLOGY_PACKAGES``), used for whichever of the two is not set.

Any mistake raises one ``ConfigError`` naming the key, the expectation, the offending value
(never a secret's) and where it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
import ipaddress
import json
import math
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from backends.simulated.reference import SERVICE_TIMEOUT_MS, SERVICES
from backends.specs import (
    DEFAULT_TRANSPORT,
    TRANSPORT_NAMES,
    BackendSpec,
    BreakerSettings,
    CollapseSettings,
    HedgeSettings,
    LimitSettings,
    RetrySettings,
)

__all__ = [
    "CONFIG_ENV_KEY",
    "DEMO_ADMIN_TOKEN",
    "DEMO_TOKEN_SECRET",
    "ENV_PREFIX",
    "TOPOLOGY_PACKAGES",
    "AuthSettings",
    "BackendsSettings",
    "ConfigError",
    "LimitsSettings",
    "LoggingSettings",
    "MultipleConfigError",
    "ServerSettings",
    "SettingInfo",
    "Settings",
    "StatsdSettings",
    "Topology",
    "describe_settings",
    "load_settings",
    "require_secrets",
]

ENV_PREFIX: Final = "FRONTDOOR_"
#: The configuration file's path, when ``--config`` does not give one.
CONFIG_ENV_KEY: Final = "FRONTDOOR_CONFIG"

#: Public, well-known values: served only by the embedded demo, or where ``auth.demo`` opts
#: in (``require_secrets``); always warned about.
DEMO_TOKEN_SECRET: Final = "frontdoor-demo-token-secret-never-use-in-production"  # noqa: S105 - public by design
DEMO_ADMIN_TOKEN: Final = "frontdoor-demo-admin-token"  # noqa: S105 - public by design

# Token keys shorter than the HMAC-SHA256 output weaken it (RFC 7518 section 3.2).
_MIN_SECRET_CHARS: Final = 32
_MIN_ADMIN_TOKEN_CHARS: Final = 16
_MAX_SHOWN_CHARS: Final = 80


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key, the problem and the source."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        suffix = f" (from {source})" if source else ""
        super().__init__(f"{key}: {problem}{suffix}")
        self.key = key
        self.problem = problem
        self.source = source


class MultipleConfigError(ConfigError):
    """Several settings are wrong at once: every one of them is reported, not the first.

    ``key``, ``problem`` and ``source`` are the first error's; ``errors`` holds them all.
    """

    def __init__(self, errors: list[ConfigError]) -> None:
        first = errors[0]
        super().__init__(first.key, first.problem, first.source)
        self.errors = errors

    @staticmethod
    def raise_any(errors: list[ConfigError]) -> None:
        """Raise nothing for no error, the error itself for one, all of them for more."""
        if len(errors) == 1:
            raise errors[0]
        if errors:
            raise MultipleConfigError(errors)

    def __str__(self) -> str:
        return f"{len(self.errors)} settings are wrong:" + "".join(
            f"\n  {error}" for error in self.errors
        )


class Topology(enum.StrEnum):
    """A named preset of the API packages this process serves (docs/topologies.md)."""

    ONE = "one"  # every family in one service
    DISCOVERY = "discovery"  # discovery and non-member, no playback
    PLAYBACK = "playback"  # playback alone
    # discovery and non-member; playback enriched, then passed to server.playback_upstream
    EDGE = "edge"


_NONMEMBER: Final = "orchestrator.apis.nonmember"
_DISCOVERY: Final = "orchestrator.apis.discovery"
_PLAYBACK: Final = "orchestrator.apis.playback"

#: Each topology as (the packages served here, the packages passed through to
#: ``server.playback_upstream``): the defaults of ``server.apis`` and ``server.passthrough``.
TOPOLOGY_PACKAGES: Final[Mapping[Topology, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    Topology.ONE: ((_NONMEMBER, _DISCOVERY, _PLAYBACK), ()),
    Topology.DISCOVERY: ((_NONMEMBER, _DISCOVERY), ()),
    Topology.PLAYBACK: ((_PLAYBACK,), ()),
    Topology.EDGE: ((_NONMEMBER, _DISCOVERY), (_PLAYBACK,)),
}


@dataclass(frozen=True, slots=True)
class SettingInfo:
    """One setting as a CLI lists it."""

    name: str
    default: object
    env_key: str
    expected: str
    description: str
    secret: bool


# ---------------------------------------------------------------------------------------
# Value checks. Each knows what it expects (for messages) and reads both TOML values, which
# are already typed, and environment text.


class _BadValueError(Exception):
    """A value failed its check; the loader adds the key and the source."""


def _show(value: object) -> str:
    """A value as it appears in an error message: short, quoted, TOML-flavoured."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        clipped = json.dumps(value[:_MAX_SHOWN_CHARS], ensure_ascii=False)
        return clipped + ("..." if len(value) > _MAX_SHOWN_CHARS else "")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"  # TOML dates and times


def _describe(value: object) -> str:
    """What a value is, without showing it."""
    if isinstance(value, str):
        return f"{len(value)} characters"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    return _show(value) if isinstance(value, dict | list) else f"a {type(value).__name__}"


class _Kind:
    """How values of one setting are checked and converted."""

    expected = "a value"
    secret = False

    def from_toml(self, value: object) -> object:
        """Check a value read from the TOML file."""
        raise NotImplementedError

    def from_text(self, text: str) -> object:
        """Check a value read from an environment variable."""
        return self.from_toml(text)


class _Int(_Kind):
    def __init__(self, low: int, high: int | None = None) -> None:
        self.low = low
        self.high = high
        self.expected = f"an integer {low}-{high}" if high is not None else f"an integer >= {low}"

    def from_toml(self, value: object) -> object:
        # bool is an int subclass: `port = true` must not become port 1.
        if isinstance(value, bool) or not isinstance(value, int):
            raise _BadValueError
        if value < self.low or (self.high is not None and value > self.high):
            raise _BadValueError
        return value

    def from_text(self, text: str) -> object:
        # A bounded digit count keeps int() clear of its 4300-digit ValueError and of
        # its leniency for underscores.
        if not re.fullmatch(r"[+-]?[0-9]{1,18}", text.strip()):
            raise _BadValueError
        return self.from_toml(int(text))


class _Float(_Kind):
    def __init__(
        self, low: float, high: float | None = None, *, low_inclusive: bool = True
    ) -> None:
        self.low = low
        self.high = high
        self.low_inclusive = low_inclusive
        if high is not None:
            self.expected = f"a number {low:g}-{high:g}"
        else:
            self.expected = f"a number {'>=' if low_inclusive else '>'} {low:g}"

    def from_toml(self, value: object) -> object:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _BadValueError
        number = float(value)
        if not math.isfinite(number):
            raise _BadValueError
        too_low = number < self.low if self.low_inclusive else number <= self.low
        if too_low or (self.high is not None and number > self.high):
            raise _BadValueError
        return number

    def from_text(self, text: str) -> object:
        try:
            number = float(text)
        except ValueError:
            raise _BadValueError from None
        return self.from_toml(number)


class _Bool(_Kind):
    expected = "true or false"
    _TRUE = frozenset({"1", "true", "yes", "on"})
    _FALSE = frozenset({"0", "false", "no", "off"})

    def from_toml(self, value: object) -> object:
        if not isinstance(value, bool):
            raise _BadValueError
        return value

    def from_text(self, text: str) -> object:
        word = text.strip().lower()
        if word in self._TRUE:
            return True
        if word in self._FALSE:
            return False
        raise _BadValueError


class _Pattern(_Kind):
    def __init__(self, pattern: str, expected: str) -> None:
        self.pattern = re.compile(pattern)
        self.expected = expected

    def from_toml(self, value: object) -> object:
        if not isinstance(value, str) or not self.pattern.fullmatch(value):
            raise _BadValueError
        return value


class _Choice(_Kind):
    def __init__(self, choices: tuple[str, ...], *, upper: bool = False) -> None:
        self.choices = choices
        self.upper = upper
        self.expected = "one of " + ", ".join(f'"{choice}"' for choice in choices)

    def from_toml(self, value: object) -> object:
        return self.word(value)

    def word(self, value: object) -> str:
        """The chosen word, normalised."""
        if not isinstance(value, str):
            raise _BadValueError
        word = value.strip().upper() if self.upper else value.strip()
        if word not in self.choices:
            raise _BadValueError
        return word


class _TopologyKind(_Choice):
    def __init__(self) -> None:
        super().__init__(tuple(Topology))

    def from_toml(self, value: object) -> object:
        return Topology(self.word(value))


class _Modules(_Kind):
    """Importable module names: a TOML array of strings, or comma-separated text."""

    expected = "a list of module names (dotted Python identifiers)"
    _NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

    def from_toml(self, value: object) -> object:
        if not isinstance(value, list):
            raise _BadValueError
        names = tuple(item.strip() if isinstance(item, str) else item for item in value)
        if not all(isinstance(name, str) and self._NAME.fullmatch(name) for name in names):
            raise _BadValueError
        if len(set(names)) != len(names):
            raise _BadValueError
        return names

    def from_text(self, text: str) -> object:
        return self.from_toml([part for part in text.split(",") if part.strip()])


class _Url(_Kind):
    def __init__(self, *, allow_empty: bool = False) -> None:
        self.allow_empty = allow_empty
        self.expected = "an http(s) URL without query" + (" or empty" if allow_empty else "")

    def from_toml(self, value: object) -> object:
        if not isinstance(value, str):
            raise _BadValueError
        if self.allow_empty and not value:
            return value
        try:
            parts = urlsplit(value)
            port = parts.port  # raises ValueError when out of range or not a number
        except ValueError:
            raise _BadValueError from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _BadValueError
        # Credentials in a URL end up in logs; a query or fragment would be silently lost.
        if parts.username is not None or parts.query or parts.fragment or port == 0:
            raise _BadValueError
        # Paths are appended as "/name": normalise away the trailing slash once, here.
        return value.rstrip("/")


class _LoopbackAddress(_Kind):
    """An IP literal on the loopback interface: names could resolve anywhere."""

    expected = "a loopback IP address (127.0.0.0/8 or ::1)"

    def from_toml(self, value: object) -> object:
        if not isinstance(value, str):
            raise _BadValueError
        try:
            address = ipaddress.ip_address(value.strip())
        except ValueError:
            raise _BadValueError from None
        if not address.is_loopback:
            raise _BadValueError
        return str(address)


class _Secret(_Kind):
    secret = True

    def __init__(self, min_chars: int) -> None:
        self.min_chars = min_chars
        self.expected = f"a string of at least {min_chars} characters"

    def from_toml(self, value: object) -> object:
        if not isinstance(value, str) or len(value) < self.min_chars:
            raise _BadValueError
        return value


_BOOL: Final = _Bool()
_PORT: Final = _Int(1, 65_535)
_POSITIVE: Final = _Int(1)
_NON_NEGATIVE: Final = _Int(0)
_PERCENT: Final = _Float(0, 100)
_HOST: Final = _Pattern(r"[A-Za-z0-9._:-]{1,253}", "a host name or IP address")
# statsd's wire format uses ':', '|', '@' and newlines: a prefix must not contain them.
_STATSD_PREFIX: Final = _Pattern(
    r"[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){0,7}", "dot-separated words of [A-Za-z0-9_-]"
)
_LOG_LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRANSPORT: Final = _Choice(TRANSPORT_NAMES)
_DEFAULT_BASE_URL: Final = "http://127.0.0.1:9090"


# ---------------------------------------------------------------------------------------
# The settings table.


@dataclass(frozen=True, slots=True)
class _Leaf:
    """One setting: its dotted name, built-in default, check and description."""

    name: str
    default: object
    kind: _Kind
    description: str

    @property
    def env_key(self) -> str:
        return ENV_PREFIX + self.name.replace(".", "_").upper()


_GENERAL: Final = (
    _Leaf("server.host", "127.0.0.1", _HOST, "address the device-facing HTTP server binds to"),
    _Leaf("server.port", 8080, _PORT, "TCP port of the device-facing HTTP server"),
    _Leaf(
        "server.admin_port",
        0,
        _Int(0, 65_535),
        "TCP port of a loopback-only listener serving /_admin/* alone (then 404 on "
        "server.port); 0 serves admin routes on server.port",
    ),
    _Leaf(
        "server.admin_host",
        "127.0.0.1",
        _LoopbackAddress(),
        "loopback address the admin listener binds to when server.admin_port is set",
    ),
    _Leaf(
        "server.trust_request_id",
        default=False,
        kind=_BOOL,
        description="pass a device's X-Request-Id on to backends as theirs; false: backends "
        "get a fresh id (the device's is still echoed and logged beside it)",
    ),
    _Leaf(
        "server.max_inflight",
        32,
        _POSITIVE,
        "requests served at once by this process (one core); beyond it new requests are shed "
        "with 503. About capacity x acceptable latency: 32 measured best on this mix",
    ),
    _Leaf(
        "server.max_connections",
        10_000,
        _POSITIVE,
        "device connections open at once in this process; when full, the oldest that has sent "
        "no request for 1 s is closed for a newcomer, else the newcomer gets 503. Lowered at "
        "start-up to what the descriptor limit leaves after backend calls' reserve "
        "(orchestrator/ops/descriptors.py)",
    ),
    _Leaf(
        "server.max_connections_per_ip",
        256,
        _POSITIVE,
        "device connections open at once from one client address; beyond it new ones get 429 "
        "and are closed. Behind a proxy every client shares its address: raise it",
    ),
    _Leaf("server.max_body_bytes", 65_536, _POSITIVE, "largest request body accepted (else 413)"),
    _Leaf(
        "server.header_timeout_s",
        10.0,
        _Float(0, low_inclusive=False),
        "seconds from a request's start (a connection's accept, or a kept-alive connection's "
        "first byte) to the end of its headers; past it, 408 and the connection is closed",
    ),
    _Leaf(
        "server.idle_timeout_s",
        60.0,
        _Float(0, low_inclusive=False),
        "seconds a kept-alive connection may wait for its next request before it is closed",
    ),
    _Leaf(
        "server.max_header_bytes",
        32_768,
        _Int(1024, 1_048_576),
        "largest request header block read (else 431); the request line has its own 8 KiB "
        "(else 414), and a header line 8 KiB",
    ),
    _Leaf("server.drain_s", 10.0, _Float(0), "seconds in-flight requests get to finish on SIGTERM"),
    _Leaf(
        "server.drain_grace_s",
        0.0,
        _Float(0, 60),
        "seconds the device listener keeps accepting after SIGTERM, /readyz already 503, so a "
        "load balancer's health checks take the instance out before connections are refused "
        "(docs/load-balancer.md); 0 closes it at once",
    ),
    _Leaf(
        "server.gc_young_threshold",
        20_000,
        _Int(0, 10_000_000),
        "allocations between young garbage collections; the start-up heap is frozen "
        "(orchestrator/ops/gc_tuning.py); 0 keeps Python's defaults",
    ),
    _Leaf(
        "server.topology",
        Topology.ONE,
        _TopologyKind(),
        "families this process serves: one (all), discovery, playback, or edge",
    ),
    _Leaf(
        "server.apis",
        TOPOLOGY_PACKAGES[Topology.ONE][0],
        _Modules(),
        "API packages this process serves (modules exposing PACKAGE, an ApiPackage); "
        "default: those of server.topology",
    ),
    _Leaf(
        "server.passthrough",
        (),
        _Modules(),
        "API packages passed through to server.playback_upstream after running their shared "
        "steps here; default: those of server.topology",
    ),
    _Leaf(
        "server.playback_upstream",
        "",
        _Url(allow_empty=True),
        "URL of the layer serving the server.passthrough packages (the edge topology's "
        "playback layer)",
    ),
    _Leaf(
        "server.body_timeout_s",
        1.0,
        _Float(0, 60, low_inclusive=False),
        "seconds a request body may take to arrive once its headers are in (never past the "
        "deadline; else 408); bodies are read before admission, so a slow one holds no slot",
    ),
    _Leaf(
        "limits.enabled",
        default=True,
        kind=_BOOL,
        description="per-client rate limits (429) and fair admission; false: neither",
    ),
    _Leaf(
        "limits.member_rate",
        20.0,
        _Float(0, low_inclusive=False),
        "requests per second a member may sustain (a batch costs its number of calls)",
    ),
    _Leaf(
        "limits.member_burst",
        60,
        _Int(1),
        "most requests a member may send at once (its bucket's size; refilled at "
        "limits.member_rate)",
    ),
    _Leaf(
        "limits.address_rate",
        250.0,
        _Float(0, low_inclusive=False),
        "requests per second from one client address without a member (public endpoints, "
        "unauthenticated batches)",
    ),
    _Leaf(
        "limits.address_burst",
        500,
        _Int(1),
        "most requests one address may send at once (its bucket's size; refilled at "
        "limits.address_rate)",
    ),
    _Leaf(
        "auth.demo",
        default=False,
        kind=_BOOL,
        description="accept the public demo secrets outside the embedded demo (warned); "
        "without it only `frontdoor serve` with embedded services runs without secrets",
    ),
    _Leaf(
        "auth.token_secret",
        None,
        _Secret(_MIN_SECRET_CHARS),
        "HMAC-SHA256 key for member tokens (and edge enrichments); required outside the "
        "embedded demo unless auth.demo",
    ),
    _Leaf("auth.token_ttl_s", 86_400, _POSITIVE, "lifetime of an issued member token, in seconds"),
    _Leaf(
        "auth.admin_token",
        None,
        _Secret(_MIN_ADMIN_TOKEN_CHARS),
        "bearer token for admin routes; required outside the embedded demo unless auth.demo",
    ),
    _Leaf("statsd.host", "127.0.0.1", _HOST, "statsd server host"),
    _Leaf("statsd.port", 8125, _PORT, "statsd server UDP port"),
    _Leaf("statsd.prefix", "frontdoor", _STATSD_PREFIX, "prefix of every metric name"),
    _Leaf("statsd.enabled", default=True, kind=_BOOL, description="send metrics; false drops them"),
    _Leaf(
        "statsd.gauge_interval_s",
        1.0,
        _Float(0, low_inclusive=False),
        "seconds between gauge reports",
    ),
    _Leaf(
        "backends.base_url",
        _DEFAULT_BASE_URL,
        _Url(allow_empty=True),
        "URL of the simulated microservices: each of their services lives there as /<name> "
        "unless its url is set; empty: every backend needs its own url",
    ),
    _Leaf(
        "backends.transport",
        DEFAULT_TRANSPORT,
        _TRANSPORT,
        "HTTP client library of backend calls unless a backend's transport is set: gevent "
        "(geventhttpclient's C parser, ~4x less CPU per call) or requests",
    ),
    _Leaf(
        "backends.embedded",
        default=True,
        kind=_BOOL,
        description="run the simulated microservices in this process (demo)",
    ),
    _Leaf("logging.level", "INFO", _Choice(_LOG_LEVELS, upper=True), "lowest log level written"),
    _Leaf(
        "logging.slow_request_ms",
        1_000,
        _NON_NEGATIVE,
        "requests slower than this are logged as slow; 0 logs every request",
    ),
)

# Per-backend settings, as paths inside a backend's table. The defaults are those of
# backends.specs, so that module stays the one source of them.
_BACKEND_FIELDS: Final = (
    ("timeout_ms", _POSITIVE, "total time budget of one call, in ms"),
    ("max_concurrent", _POSITIVE, "calls running at once (bulkhead size)"),
    ("max_queue", _NON_NEGATIVE, "calls waiting for a slot; beyond it calls are rejected"),
    ("max_body_bytes", _POSITIVE, "largest reply body read"),
    ("breaker.request_volume", _POSITIVE, "calls in the window before the breaker may open"),
    ("breaker.error_percent", _PERCENT, "failure percentage in the window that opens the breaker"),
    ("breaker.window_ms", _POSITIVE, "rolling window of the breaker, in ms"),
    ("breaker.open_ms", _POSITIVE, "time the breaker stays open before one trial call, in ms"),
    (
        "breaker.consecutive_timeouts",
        _NON_NEGATIVE,
        "timeouts in a row (no answer between them) that open the breaker at once; 0: off",
    ),
    (
        "breaker.consecutive_timeouts_span_ms",
        _NON_NEGATIVE,
        "least time from the run's first timeout to its last, in ms (a burst is a stall here)",
    ),
    ("retry.max_attempts", _Int(1, 10), "attempts per idempotent call, the first included"),
    ("retry.backoff_base_ms", _NON_NEGATIVE, "first backoff before a retry, in ms"),
    ("retry.backoff_max_ms", _NON_NEGATIVE, "largest backoff before a retry, in ms"),
    ("retry.budget_percent", _PERCENT, "retries allowed as a percentage of calls in the window"),
    ("retry.budget_floor", _NON_NEGATIVE, "retries always allowed per window, whatever the ratio"),
    ("retry.budget_window_ms", _POSITIVE, "window of the retry budget, in ms"),
    (
        "hedge.enabled",
        _BOOL,
        "hedged reads: a second attempt of an idempotent call slower than the p95",
    ),
    ("hedge.min_ms", _NON_NEGATIVE, "shortest wait before a hedge, whatever the p95, in ms"),
    ("hedge.max_ms", _POSITIVE, "longest wait before a hedge, whatever the p95, in ms"),
    (
        "collapse.window_ms",
        _Float(0, 1000),
        "by-ids reads of concurrent requests within this window go out as one call; 0: off",
    ),
    ("collapse.max_ids", _POSITIVE, "most distinct ids in one collapsed call"),
    (
        "limit.adaptive",
        _BOOL,
        "adaptive concurrency limit under max_concurrent; calls beyond it rejected (fallback)",
    ),
    ("limit.initial_limit", _POSITIVE, "adaptive limit before any call (capped by max_concurrent)"),
    ("limit.min_limit", _POSITIVE, "lowest adaptive limit (capped by max_concurrent)"),
    ("limit.max_limit", _POSITIVE, "highest adaptive limit (max_concurrent caps it too)"),
    (
        "limit.rtt_tolerance",
        _Float(1),
        "latency up to this multiple of the no-load latency is not queueing",
    ),
    ("limit.queue_size", _NON_NEGATIVE, "headroom by which the limit probes upward"),
    (
        "limit.smoothing",
        _Float(0, 1, low_inclusive=False),
        "share of the distance to its target the limit moves per round trip",
    ),
    ("limit.noload_window_ms", _POSITIVE, "how long the lowest latency seen stays the no-load one"),
    (
        "limit.drop_threshold",
        _Float(0, 0.99),
        "share of calls dropped (timeout, 503/429, unreachable) above which drops cut the limit",
    ),
)

_SPEC_DEFAULTS: Final = BackendSpec(name="defaults", base_url=_DEFAULT_BASE_URL)
#: A backend's name: its table under ``[backends]``, its metric and log name.
_BACKEND_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")
#: Keys of ``[backends]`` that are not backends.
_NOT_BACKENDS: Final = frozenset({"defaults", "base_url", "transport", "embedded"})


def _spec_default(path: str) -> object:
    value: object = _SPEC_DEFAULTS
    for part in path.split("."):
        value = getattr(value, part)
    return value


def _is_backend(name: str) -> bool:
    return name not in _NOT_BACKENDS and _BACKEND_NAME.fullmatch(name) is not None


@functools.cache
def _backend_leaves(name: str) -> Mapping[str, _Leaf]:
    """Backend ``name``'s settings by path (``url``, ``breaker.open_ms``...)."""
    simulated = name in SERVICE_TIMEOUT_MS
    url_default = f"{_DEFAULT_BASE_URL}/{name}" if simulated else ""
    url_help = "default: backends.base_url + /" + name if simulated else "required"
    leaves = {
        "url": _Leaf(
            f"backends.{name}.url", url_default, _Url(), f"{name}: URL of the service ({url_help})"
        ),
        "transport": _Leaf(
            f"backends.{name}.transport",
            DEFAULT_TRANSPORT,
            _TRANSPORT,
            f"{name}: HTTP client library of its calls (default: backends.transport)",
        ),
    }
    for path, kind, description in _BACKEND_FIELDS:
        default = _spec_default(path)
        if path == "timeout_ms" and simulated:
            default = SERVICE_TIMEOUT_MS[name]
        leaves[path] = _Leaf(f"backends.{name}.{path}", default, kind, f"{name}: {description}")
    return leaves


def _defaults_leaves() -> tuple[_Leaf, ...]:
    return tuple(
        _Leaf(
            f"backends.defaults.{path}", _spec_default(path), kind, f"every backend: {description}"
        )
        for path, kind, description in _BACKEND_FIELDS
    )


def _backend_env_leaf(key: str) -> _Leaf | None:
    """The leaf of ``FRONTDOOR_BACKENDS_<NAME>_<PATH>`` for a backend of any name."""
    rest = key.removeprefix(ENV_PREFIX + "BACKENDS_")
    if rest == key:
        return None
    for path in _ENV_PATHS:
        suffix = "_" + path.replace(".", "_").upper()
        name = rest.removesuffix(suffix).lower()
        if rest.endswith(suffix) and _is_backend(name):
            return _backend_leaves(name)[path]
    return None


# Longest first: ``..._MAX_QUEUE`` is the path ``max_queue``, not a backend named ``..._max``.
_ENV_PATHS: Final = sorted(
    ("url", "transport", *(path for path, _kind, _description in _BACKEND_FIELDS)),
    key=len,
    reverse=True,
)


def _leaf(name: str) -> _Leaf | None:
    """The setting called ``name``, including any backend's; None when there is none."""
    leaf = _BY_NAME.get(name)
    if leaf is None and name.startswith("backends."):
        backend, _, path = name.removeprefix("backends.").partition(".")
        if _is_backend(backend):
            leaf = _backend_leaves(backend).get(path)
    return leaf


# Listed by ``describe_settings``: the simulated services' backends stand for every backend.
_LEAVES: Final = (
    _GENERAL
    + _defaults_leaves()
    + tuple(leaf for name in SERVICES for leaf in _backend_leaves(name).values())
)
_BY_NAME: Final = {leaf.name: leaf for leaf in _LEAVES}
_BY_ENV_KEY: Final = {leaf.env_key: leaf for leaf in _LEAVES}


def _known(name: str) -> _Leaf:
    leaf = _leaf(name)
    assert leaf is not None  # noqa: S101 - only names read through _leaf get here
    return leaf


# The TOML shape: nested tables whose leaves are settings; unknown keys are errors.
_Tree: TypeAlias = dict[str, "_Tree | _Leaf"]


def _build_tree(leaves: Iterable[_Leaf], prefix: str = "") -> _Tree:
    root: _Tree = {}
    for leaf in leaves:
        *tables, key = leaf.name.removeprefix(prefix).split(".")
        node = root
        for table in tables:
            child = node.setdefault(table, {})
            assert isinstance(child, dict)  # noqa: S101 - table names never collide with keys
            node = child
        node[key] = leaf
    return root


_TREE: Final = _build_tree(_LEAVES)


def describe_settings() -> list[SettingInfo]:
    """Every setting with its default, environment key, expectation and description."""
    return [
        SettingInfo(
            name=leaf.name,
            default=leaf.default,
            env_key=leaf.env_key,
            expected=leaf.kind.expected,
            description=leaf.description,
            secret=leaf.kind.secret,
        )
        for leaf in _LEAVES
    ]


# ---------------------------------------------------------------------------------------
# The settings objects. No defaults of their own: the table above is the single source,
# and ``load_settings(environ={})`` builds the defaults cheaply for tests.


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSettings:
    """The device-facing HTTP server (``[server]``)."""

    host: str
    port: int
    #: 0: admin routes are served on ``port``; else only on ``admin_host:admin_port``.
    admin_port: int
    admin_host: str
    #: Whether a device's ``X-Request-Id`` is also the id its backend calls carry.
    trust_request_id: bool
    max_inflight: int
    #: Caps on open device connections, in all (before the descriptor budget lowers it)
    #: and per client address (``orchestrator/frontend/connections.py``).
    max_connections: int
    max_connections_per_ip: int
    max_body_bytes: int
    #: The request head's deadline and size, and keep-alive's idle limit
    #: (``orchestrator/frontend/httpserver.py``, ``ProtocolLimits``).
    header_timeout_s: float
    idle_timeout_s: float
    max_header_bytes: int
    drain_s: float
    drain_grace_s: float
    gc_young_threshold: int
    topology: Topology
    #: The API packages served here, and those passed through to ``playback_upstream``.
    apis: tuple[str, ...]
    passthrough: tuple[str, ...]
    playback_upstream: str
    body_timeout_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsSettings:
    """Per-client rate limits and fair admission (``[limits]``)."""

    enabled: bool
    member_rate: float
    member_burst: int
    address_rate: float
    address_burst: int


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """Member tokens and the admin token (``[auth]``); secrets stay out of ``repr``."""

    demo: bool
    token_secret: str = dataclasses.field(repr=False)
    token_ttl_s: int
    admin_token: str = dataclasses.field(repr=False)
    #: The secrets left at their public demo value (none set): ``require_secrets`` refuses
    #: them outside the embedded demo unless ``demo`` opts in.
    demo_secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class StatsdSettings:
    """Where metrics go (``[statsd]``)."""

    host: str
    port: int
    prefix: str
    enabled: bool
    gauge_interval_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendsSettings:
    """The microservices Frontdoor calls (``[backends]``), one spec per configured name."""

    base_url: str
    #: The transport of every backend that does not name its own.
    transport: str
    embedded: bool
    #: The simulated services' (when ``base_url`` is set), then the operator's other backends.
    specs: tuple[BackendSpec, ...]
    #: The backends the operator configured by name (a table or a variable of their own).
    configured: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    def spec(self, name: str) -> BackendSpec:
        """The spec of backend ``name``; ``KeyError`` when it is not a known backend."""
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggingSettings:
    """Log output (``[logging]``)."""

    level: str
    slow_request_ms: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """The whole configuration of one process, loaded once and passed explicitly."""

    server: ServerSettings
    auth: AuthSettings
    statsd: StatsdSettings
    backends: BackendsSettings
    logging: LoggingSettings
    limits: LimitsSettings
    #: Things an operator should fix but that do not stop the process (demo secrets...).
    warnings: tuple[str, ...] = ()

    def backend_specs(self) -> tuple[BackendSpec, ...]:
        """Every configured backend's spec (``BackendsSettings.specs``)."""
        return self.backends.specs


# ---------------------------------------------------------------------------------------
# Loading.


@dataclass(frozen=True, slots=True)
class _Given:
    """A value set by the operator, before its check."""

    value: object
    source: str  # the file path or the environment variable
    from_env: bool


def _did_you_mean(word: str, candidates: list[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(word, candidates, n=1)
    return f"; did you mean {prefix}{match[0]}?" if match else ""


def _flatten(
    table: Mapping[str, object], tree: _Tree, prefix: str, source: str, out: dict[str, _Given]
) -> None:
    for key, value in table.items():
        name = prefix + key
        node = tree.get(key)
        if node is None and prefix == "backends." and isinstance(value, dict) and _is_backend(key):
            node = _build_tree(_backend_leaves(key).values(), name + ".")
        if node is None:
            what = "section" if not prefix else "key"
            raise ConfigError(
                name, f"unknown {what}{_did_you_mean(key, list(tree), prefix)}", source
            )
        if isinstance(node, _Leaf):
            out[name] = _Given(value, source, from_env=False)
        elif isinstance(value, dict):
            _flatten(value, node, name + ".", source, out)
        else:
            raise ConfigError(name, f"expected a table, got {_show(value)}", source)


def _read_file(path: str) -> dict[str, _Given]:
    try:
        with Path(path).open("rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(path, f"cannot read the config file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(path, "invalid TOML: the file is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        # The message carries the position, e.g. "Invalid value (at line 3, column 8)".
        raise ConfigError(path, f"invalid TOML: {exc}") from exc
    given: dict[str, _Given] = {}
    _flatten(document, _TREE, "", path, given)
    return given


def _read_environ(environ: Mapping[str, str], warnings: list[str]) -> dict[str, _Given]:
    given: dict[str, _Given] = {}
    for key in sorted(environ):
        if not key.startswith(ENV_PREFIX):
            continue
        if key == CONFIG_ENV_KEY:
            continue  # the configuration file's path, read by load_settings
        leaf = _BY_ENV_KEY.get(key) or _backend_env_leaf(key)
        if leaf is None:
            # Not an error: the environment is shared with tools that may use the prefix.
            hint = _did_you_mean(key, list(_BY_ENV_KEY))
            warnings.append(f"ignoring unknown environment variable {key}{hint}")
            continue
        given[leaf.name] = _Given(environ[key], key, from_env=True)
    return given


def _check(leaf: _Leaf, given: _Given) -> object:
    try:
        if given.from_env:
            assert isinstance(given.value, str)  # noqa: S101 - environment values are text
            return leaf.kind.from_text(given.value)
        return leaf.kind.from_toml(given.value)
    except _BadValueError:
        # Never echo a secret, not even a wrong one: say only what kind of value it was.
        shown = _show(given.value) if not leaf.kind.secret else _describe(given.value)
        raise ConfigError(
            leaf.name, f"expected {leaf.kind.expected}, got {shown}", given.source
        ) from None


class _Resolver:
    """Checked operator values over built-in defaults, with where each one came from."""

    def __init__(self, given: Mapping[str, _Given]) -> None:
        """Check every given value; all the wrong ones are reported together."""
        self.values: dict[str, Any] = {}
        errors: list[ConfigError] = []
        for name, item in given.items():
            try:
                self.values[name] = _check(_known(name), item)
            except ConfigError as exc:
                errors.append(exc)
        MultipleConfigError.raise_any(errors)
        self.sources = {name: item.source for name, item in given.items()}

    def get(self, name: str) -> Any:
        return self.values[name] if name in self.values else _known(name).default

    def section(self, section: str) -> dict[str, Any]:
        prefix = section + "."
        return {
            leaf.name.removeprefix(prefix): self.get(leaf.name)
            for leaf in _GENERAL
            if leaf.name.startswith(prefix)
        }

    def backend_value(self, backend: str, path: str) -> tuple[Any, str | None]:
        """The most specific operator value, else the built-in one (see module docstring)."""
        for name in (f"backends.{backend}.{path}", f"backends.defaults.{path}"):
            if name in self.values:
                return self.values[name], self.sources[name]
        return _known(f"backends.{backend}.{path}").default, None

    def backends(self) -> tuple[str, ...]:
        """The backends the operator configured (gave any key of their own), sorted."""
        named = {name.split(".")[1] for name in self.values if name.startswith("backends.")}
        return tuple(sorted(name for name in named if _is_backend(name)))


def _backend_spec(resolver: _Resolver, name: str, base_url: str, transport: str) -> BackendSpec:
    top: dict[str, Any] = {}
    breaker: dict[str, Any] = {}
    retry: dict[str, Any] = {}
    limit: dict[str, Any] = {}
    hedge: dict[str, Any] = {}
    collapse: dict[str, Any] = {}
    sources: dict[str, str | None] = {}
    for path, _kind, _description in _BACKEND_FIELDS:
        value, sources[path] = resolver.backend_value(name, path)
        table, _, key = path.rpartition(".")
        {
            "": top,
            "breaker": breaker,
            "retry": retry,
            "limit": limit,
            "hedge": hedge,
            "collapse": collapse,
        }[table][key] = value
    if retry["backoff_max_ms"] < retry["backoff_base_ms"]:
        raise ConfigError(
            f"backends.{name}.retry.backoff_max_ms",
            f"must be >= retry.backoff_base_ms ({retry['backoff_base_ms']}), "
            f"got {retry['backoff_max_ms']}",
            sources["retry.backoff_max_ms"] or sources["retry.backoff_base_ms"],
        )
    if not limit["min_limit"] <= limit["initial_limit"] <= limit["max_limit"]:
        raise ConfigError(
            f"backends.{name}.limit.initial_limit",
            f"must satisfy min_limit ({limit['min_limit']}) <= initial_limit "
            f"({limit['initial_limit']}) <= max_limit ({limit['max_limit']})",
            sources["limit.initial_limit"]
            or sources["limit.min_limit"]
            or sources["limit.max_limit"],
        )
    url_key = f"backends.{name}.url"
    if url_key not in resolver.values and not (base_url and name in SERVICES):
        raise ConfigError(
            url_key,
            (
                "required: backends.base_url only serves the simulated services"
                if base_url
                else "required: backends.base_url is empty"
            )
            + _did_you_mean(name, list(SERVICES), "backends."),
            next(
                (s for k, s in resolver.sources.items() if k.startswith(f"backends.{name}.")), None
            ),
        )
    url = resolver.values.get(url_key, f"{base_url}/{name}")
    return BackendSpec(
        name=name,
        base_url=url,
        transport=resolver.values.get(f"backends.{name}.transport", transport),
        breaker=BreakerSettings(**breaker),
        retry=RetrySettings(**retry),
        limit=LimitSettings(**limit),
        hedge=HedgeSettings(**hedge),
        collapse=CollapseSettings(**collapse),
        **top,
    )


def _demo_or_given(
    resolver: _Resolver, name: str, demo_value: str, what: str, warnings: list[str]
) -> str:
    """A secret the operator set, or the public demo one (``require_secrets`` decides where
    that may serve). Set explicitly, the public value needs ``auth.demo``."""
    env_key = _BY_NAME[name].env_key
    if name in resolver.values:
        value = str(resolver.values[name])
        if value != demo_value:
            return value
        if not resolver.get("auth.demo"):
            raise ConfigError(
                name,
                "the public demo value is not allowed when auth.demo is false",
                resolver.sources[name],
            )
    warnings.append(f"using the demo {what}; set {env_key}")
    return demo_value


def require_secrets(settings: Settings, *, embedded_demo: bool) -> None:
    """Refuse the public demo secrets, unless this start is the embedded demo (``frontdoor
    serve`` with its simulated services in-process) or ``auth.demo`` opts in.

    One ``ConfigError`` naming every secret still at its demo value and how to set it.
    """
    missing = settings.auth.demo_secrets
    if not missing or embedded_demo or settings.auth.demo:
        return
    keys = " and ".join(_BY_NAME[name].env_key for name in missing)
    raise ConfigError(
        ", ".join(missing),
        f"required outside the embedded demo (bin/serve); set {keys}, or "
        "FRONTDOOR_AUTH_DEMO=true to serve with the public demo secrets",
    )


def _server(resolver: _Resolver, warnings: list[str]) -> ServerSettings:
    """``[server]``, its API packages defaulting to those of its topology."""
    server_values = resolver.section("server")
    served, passed = TOPOLOGY_PACKAGES[server_values["topology"]]
    if "server.apis" not in resolver.values:
        server_values["apis"] = served
    if "server.passthrough" not in resolver.values:
        server_values["passthrough"] = passed
    server = ServerSettings(**server_values)
    if server.admin_port and server.admin_port == server.port:
        raise ConfigError(
            "server.admin_port",
            f"must differ from server.port ({server.port}), or be 0 to serve admin routes there",
            resolver.sources.get("server.admin_port") or resolver.sources.get("server.port"),
        )
    if server.passthrough and not server.playback_upstream:
        raise ConfigError(
            "server.playback_upstream",
            'required when server.topology is "edge"'
            if "server.passthrough" not in resolver.values
            else "required when server.passthrough names packages",
            resolver.sources.get("server.passthrough") or resolver.sources.get("server.topology"),
        )
    if not server.passthrough and server.playback_upstream:
        warnings.append(
            f'server.playback_upstream is ignored: server.topology is "{server.topology}"'
            if "server.passthrough" not in resolver.values
            else "server.playback_upstream is ignored: server.passthrough is empty"
        )
    if overlap := set(server.apis) & set(server.passthrough):
        raise ConfigError(
            "server.passthrough",
            f"{', '.join(sorted(overlap))}: served here (server.apis) and passed through at once",
            resolver.sources.get("server.passthrough") or resolver.sources.get("server.apis"),
        )
    return server


def _backends(resolver: _Resolver) -> BackendsSettings:
    """``[backends]``: the simulated services' (under ``base_url``) and every named one."""
    base_url = resolver.get("backends.base_url")
    transport = resolver.get("backends.transport")
    configured = resolver.backends()
    names = (*SERVICES, *(n for n in configured if n not in SERVICES)) if base_url else configured
    errors: list[ConfigError] = []
    specs: list[BackendSpec] = []
    for name in names:
        try:
            specs.append(_backend_spec(resolver, name, base_url, transport))
        except ConfigError as exc:
            errors.append(exc)
    MultipleConfigError.raise_any(errors)
    return BackendsSettings(
        base_url=base_url,
        transport=transport,
        embedded=resolver.get("backends.embedded"),
        specs=tuple(specs),
        configured=configured,
    )


def load_settings(path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings: built-in defaults, then the TOML file at ``path`` (default: the
    one ``FRONTDOOR_CONFIG`` names, if any), then ``environ``.

    ``environ`` defaults to ``os.environ``; tests pass their own mapping. Raises one
    ``ConfigError`` naming the offending key (or file) and where its value came from.
    """
    warnings: list[str] = []
    environ = os.environ if environ is None else environ
    if path is None:
        path = environ.get(CONFIG_ENV_KEY) or None
    given = _read_file(path) if path is not None else {}
    given.update(_read_environ(environ, warnings))
    resolver = _Resolver(given)

    server = _server(resolver, warnings)
    token_secret = _demo_or_given(
        resolver, "auth.token_secret", DEMO_TOKEN_SECRET, "token secret", warnings
    )
    admin_token = _demo_or_given(
        resolver, "auth.admin_token", DEMO_ADMIN_TOKEN, "admin token", warnings
    )
    auth = AuthSettings(
        demo=resolver.get("auth.demo"),
        token_secret=token_secret,
        token_ttl_s=resolver.get("auth.token_ttl_s"),
        admin_token=admin_token,
        demo_secrets=tuple(
            name
            for name, value, demo in (
                ("auth.token_secret", token_secret, DEMO_TOKEN_SECRET),
                ("auth.admin_token", admin_token, DEMO_ADMIN_TOKEN),
            )
            if value == demo
        ),
    )

    return Settings(
        server=server,
        auth=auth,
        statsd=StatsdSettings(**resolver.section("statsd")),
        backends=_backends(resolver),
        logging=LoggingSettings(**resolver.section("logging")),
        limits=LimitsSettings(**resolver.section("limits")),
        warnings=tuple(warnings),
    )
