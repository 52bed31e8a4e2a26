"""Backend definitions: what Frontdoor knows about each microservice it calls.

Specs are immutable value objects built once from configuration; request data can
never choose a backend host (only the path below ``base_url``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

#: The HTTP client libraries a backend's calls can go through (``backends/transports.py``).
TRANSPORT_NAMES: Final = ("gevent", "requests")
#: geventhttpclient: its C parser costs about a quarter of the CPU of ``requests`` per call.
DEFAULT_TRANSPORT: Final = "gevent"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """Hystrix-style tripping: error percentage over a rolling window, with a minimum volume;
    and a fast trip on a hang: ``consecutive_timeouts`` timeouts in a row (0: off) over at
    least ``consecutive_timeouts_span_ms`` (``actors/breaker.py``)."""

    request_volume: int = 20
    error_percent: float = 50.0
    window_ms: int = 10_000
    open_ms: int = 5_000
    consecutive_timeouts: int = 3
    consecutive_timeouts_span_ms: int = 100


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """Retries for idempotent calls: capped exponential backoff, full jitter, within a budget."""

    max_attempts: int = 2
    backoff_base_ms: int = 10
    backoff_max_ms: int = 200
    budget_percent: float = 10.0
    budget_floor: int = 3
    budget_window_ms: int = 10_000


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """An adaptive concurrency limit (``actors/limiter.py``), off unless ``adaptive``.

    The defaults are ``actors.limiter.LimiterSettings``'; ``max_limit`` is further capped by
    the backend's ``max_concurrent`` (the bulkhead stays the hard cap), and ``initial_limit``
    and ``min_limit`` by that cap.
    """

    adaptive: bool = False
    initial_limit: int = 20
    min_limit: int = 2
    max_limit: int = 200
    rtt_tolerance: float = 1.5
    queue_size: int = 4
    smoothing: float = 0.2
    noload_window_ms: int = 30_000
    drop_threshold: float = 0.25


@dataclass(frozen=True, slots=True)
class HedgeSettings:
    """Hedged reads: an idempotent call still unanswered after the backend's observed p95
    (bounded by ``min_ms`` and ``max_ms``) gets a second attempt; the first answer wins.
    Hedges spend the retry budget (``actors/hedging.py``)."""

    enabled: bool = False
    min_ms: int = 10
    max_ms: int = 500


@dataclass(frozen=True, slots=True)
class CollapseSettings:
    """Request collapsing: by-ids reads from concurrent requests within ``window_ms`` go out
    as one call of at most ``max_ids`` ids (0 ms: off; ``actors/collapser.py``).

    The reply is split by the backend's contract: the ids travel comma-separated in the
    query parameter ``ids_param``; the reply is an object whose ``items_key`` lists items
    named by their ``id_key`` (the catalog's ``GET /titles?ids=`` by default)."""

    window_ms: float = 0.0
    max_ids: int = 500
    ids_param: str = "ids"
    items_key: str = "titles"
    id_key: str = "id"


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """One microservice: where it lives and how hard Frontdoor may lean on it."""

    name: str
    base_url: str
    timeout_ms: int = 1_000
    max_concurrent: int = 10
    max_queue: int = 10
    max_body_bytes: int = 1_048_576
    #: Which HTTP client library moves this backend's calls: one of ``TRANSPORT_NAMES``.
    transport: str = DEFAULT_TRANSPORT
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)
    hedge: HedgeSettings = field(default_factory=HedgeSettings)
    collapse: CollapseSettings = field(default_factory=CollapseSettings)
    limit: LimitSettings = field(default_factory=LimitSettings)
