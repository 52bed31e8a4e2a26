"""The fault model and the latency model of the simulated services: pure values, no I/O.

A ``Fault`` says how one service misbehaves; ``Fault.from_json`` validates what the admin
API receives. ``capacity`` is the one fault that keeps state between faults: requests queued
under it stay queued when the fault is replaced, and are served by the new capacity
(``control.CapacityGate``). A ``LatencyModel`` samples per-service response times from a
log-normal distribution whose 99th percentile is about 4.5 times its median, like real
services.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Upper bounds that keep a scripted fault from tying up a greenlet for ever.
MAX_LATENCY_MS = 300_000.0
MAX_DRIP_MS = 60_000.0
#: Largest capacity and queue a fault may set; the queue's bound is also its default, so
#: "unbounded" is still a bound on the greenlets and connections a fault can pile up.
MAX_CAPACITY = 10_000
MAX_QUEUE = 10_000


class FaultError(ValueError):
    """A fault description was invalid; ``key`` names the offending key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def _is_number(value: object) -> bool:
    # bool is an int subclass, but `"latency_ms": true` is a mistake, not 1 ms.
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


@dataclass(frozen=True, slots=True)
class Fault:
    """How one service misbehaves; the default value is a healthy service.

    - ``latency_ms``: added to every response's latency.
    - ``error_rate``: share of requests answered 503 ``{"error": "injected"}``.
    - ``hang``: accept, never answer until healed, the client leaves, or a cap.
    - ``refuse``: drop the connection without a response (reset).
    - ``malformed``: 200 with a truncated, invalid JSON body.
    - ``drip_ms``: send the body one small chunk every ``drip_ms``.
    - ``capacity``: serve at most this many requests at once (0: no cap); the others wait in
      arrival order, then are served (with the service's latency, faults and all). A request
      holds its place from arrival until its response is built (a drip runs outside it).
    - ``queue_limit``: at most this many wait (default ``MAX_QUEUE``); beyond it a request is
      answered at once ``503 {"error": "overloaded"}`` with ``Retry-After: 1``. Needs a
      ``capacity``.
    - ``tail_percent`` and ``tail_ms``: a latency tail, ``tail_ms`` added to that percentage
      of requests, drawn independently (a slow disk, a GC pause): what hedged reads cut.
    """

    latency_ms: float = 0.0
    error_rate: float = 0.0
    hang: bool = False
    refuse: bool = False
    malformed: bool = False
    drip_ms: float = 0.0
    capacity: int = 0
    queue_limit: int = MAX_QUEUE
    tail_percent: float = 0.0
    tail_ms: float = 0.0

    def __post_init__(self) -> None:
        _check_number("latency_ms", self.latency_ms, 0.0, MAX_LATENCY_MS)
        _check_number("error_rate", self.error_rate, 0.0, 1.0)
        _check_number("drip_ms", self.drip_ms, 0.0, MAX_DRIP_MS)
        _check_number("tail_percent", self.tail_percent, 0.0, 100.0)
        _check_number("tail_ms", self.tail_ms, 0.0, MAX_LATENCY_MS)
        for key in ("hang", "refuse", "malformed"):
            if not isinstance(getattr(self, key), bool):
                raise FaultError(key, "must be true or false")
        _check_integer("capacity", self.capacity, 0, MAX_CAPACITY)
        _check_integer("queue_limit", self.queue_limit, 0, MAX_QUEUE)
        if self.queue_limit != MAX_QUEUE and not self.capacity:
            raise FaultError("queue_limit", "bounds the queue of a capacity; set capacity too")

    @property
    def active(self) -> bool:
        """Whether this fault changes anything."""
        return self != HEALTHY

    @classmethod
    def from_json(cls, value: Any) -> Fault:
        """Validate a decoded JSON object; ``FaultError`` names the first bad key."""
        if not isinstance(value, Mapping):
            raise FaultError("fault", "must be a JSON object")
        known = {f.name for f in fields(cls)}
        for key in value:
            if key not in known:
                raise FaultError(
                    str(key)[:40], f"unknown key; expected one of {', '.join(sorted(known))}"
                )
        return cls(**value)

    def to_json(self) -> dict[str, Any]:
        """The fault as the admin API shows it."""
        return asdict(self)


def _check_number(key: str, value: object, low: float, high: float) -> None:
    if not _is_number(value) or not low <= float(value) <= high:  # type: ignore[arg-type]
        raise FaultError(key, f"must be a number from {low:g} to {high:g}")


def _check_integer(key: str, value: object, low: int, high: int) -> None:
    # A capacity is a count of requests: 2.5 is a mistake, not 2.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(key, f"must be an integer from {low} to {high}")


#: A healthy service.
HEALTHY = Fault()

#: p99 / median of the latency distribution: real services' tails are 4-5 times the median.
TAIL_RATIO = 4.5
_Z99 = 2.3263  # the standard normal's 99th percentile
_SIGMA = math.log(TAIL_RATIO) / _Z99
# Draws beyond this many medians are clipped: a sample from the extreme tail would otherwise
# stall a load test for seconds without saying anything a p99.9 does not already say.
_CLIP_MEDIANS = 15.0

_REALISTIC_MS: dict[str, float] = {
    "plans": 8,
    "trial": 5,
    "accounts": 20,
    "billing": 35,
    "subscriber": 8,
    "recommendations": 30,
    "catalog": 15,
    "ratings": 10,
    "search": 20,
    "device": 5,
    "playback": 25,
    "bookmarks": 6,
    "licensing": 25,
    "history": 12,
}

#: Median latency per service, per profile name.
LATENCY_PROFILES: dict[str, dict[str, float]] = {
    "none": {},
    # A tenth of realistic, kept within 1-3 ms: quick, but still a real scheduling point.
    "fast": {name: min(3.0, max(1.0, median / 10)) for name, median in _REALISTIC_MS.items()},
    "realistic": dict(_REALISTIC_MS),
}


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Per-service latency: log-normal around each median, scaled."""

    medians_ms: Mapping[str, float] = field(default_factory=dict)
    scale: float = 1.0

    @classmethod
    def from_profile(cls, profile: str, scale: float = 1.0) -> LatencyModel:
        """The model of a named profile (``none``, ``fast``, ``realistic``)."""
        if profile not in LATENCY_PROFILES:
            raise ValueError(
                f"unknown latency profile {profile!r}; use one of {', '.join(LATENCY_PROFILES)}"
            )
        if not _is_number(scale) or scale < 0:
            raise ValueError("latency scale must be a non-negative number")
        return cls(LATENCY_PROFILES[profile], float(scale))

    def median_ms(self, service: str) -> float:
        """The service's median latency after scaling (0 when it has none)."""
        return self.medians_ms.get(service, 0.0) * self.scale

    def sample_ms(self, service: str, rng: random.Random) -> float:
        """One latency draw for ``service``, in milliseconds."""
        median = self.median_ms(service)
        if median <= 0:
            return 0.0
        return median * min(math.exp(_SIGMA * rng.gauss(0.0, 1.0)), _CLIP_MEDIANS)
