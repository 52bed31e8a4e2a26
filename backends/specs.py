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
    """Hystrix-style tripping: error percentage over a rolling window, with a minimum volume."""

    request_volume: int = 20
    error_percent: float = 50.0
    window_ms: int = 10_000
    open_ms: int = 5_000


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
