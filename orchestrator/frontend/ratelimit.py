"""Per-client rate limits: a token bucket per member, and per client address without one.

A request is charged to its member (the verified token's subject, or a trusted edge's
member) and, when it has none (public endpoints, a batch without a valid token), to its
client address (``REMOTE_ADDR``; behind a proxy that is the proxy's, and
``X-Forwarded-For`` is not read). A bucket holds up to ``burst`` tokens and refills at
``rate`` a second; a request costs one, a batch its number of calls (at most the burst, so
that a full bucket always admits a full batch). Over the limit the request is refused
before any work, and before its body is read (a batch: once read, its calls counted): 429
``rate_limited`` with ``Retry-After`` and the two fields of
draft-ietf-httpapi-ratelimit-headers-11 ("RateLimit header fields for HTTP",
https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/): each a Structured
Field List of a quoted policy name with parameters, ``q`` (quota) and ``w`` (window, s) for
the policy, ``r`` (remaining) and ``t`` (reset, s) for its state, e.g.::

    RateLimit-Policy: "member";q=60;w=3
    RateLimit: "member";r=0;t=1

The policy's quota ``q`` is the bucket size and its window ``w`` the seconds an empty
bucket takes to refill (burst / rate, rounded up), the nearest a quota-per-window policy
comes to a token bucket. ``r`` is what is left, ``t`` the seconds
until the refused request would fit (the same as ``Retry-After``). Accepted responses
carry no such fields: nothing is added to the hot path of a request within its limits.

Memory is bounded: each policy keeps at most ``max_clients`` buckets, least recently used
out first (an ``OrderedDict``: O(1) a request). An evicted bucket comes back full, so a
flood of distinct keys can only forget idle clients, never grow the table.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from orchestrator.frontend import problems
from orchestrator.frontend.auth import InvalidTokenError, TokenSigner, bearer_token
from orchestrator.frontend.request import Scope

__all__ = ["MAX_CLIENTS", "Buckets", "Client", "Policy", "RateLimiter", "scope_member"]

#: Buckets kept per policy (~200 bytes each): ~10 MB for members and addresses together.
MAX_CLIENTS: Final = 25_000

#: Whom a request is charged to: ("member", id) or ("address", ip). Also the key of fair
#: admission (``admission.Admission``).
Client = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Policy:
    """One kind of client's limit: ``rate`` requests a second, ``burst`` at once."""

    name: str
    rate: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.rate > 0 and math.isfinite(self.rate)) or self.burst < 1:
            raise ValueError("a rate limit needs rate > 0 and burst >= 1")

    @property
    def header(self) -> str:
        """The ``RateLimit-Policy`` field value."""
        window = max(1, math.ceil(self.burst / self.rate))
        return f'"{self.name}";q={self.burst};w={window}'


class Buckets:
    """The token buckets of one policy, by key, on ``clock``'s time."""

    __slots__ = ("_clock", "_max_clients", "_table", "policy")

    def __init__(
        self, policy: Policy, clock: Callable[[], float], max_clients: int = MAX_CLIENTS
    ) -> None:
        if max_clients < 1:
            raise ValueError("max_clients must be >= 1")
        self.policy = policy
        self._clock = clock
        self._max_clients = max_clients
        #: key -> [tokens, when they were counted]
        self._table: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._table)

    def take(self, key: str, cost: int = 1) -> tuple[float, float]:
        """Take ``cost`` tokens from ``key``'s bucket: (0, tokens left) when they were
        there, else (seconds until they will be, tokens there now), taking none."""
        now = self._clock()
        policy = self.policy
        table = self._table
        entry = table.get(key)
        if entry is None:
            if len(table) >= self._max_clients:
                table.popitem(last=False)  # the least recently seen client
            entry = table[key] = [float(policy.burst), now]
            tokens = entry[0]
        else:
            table.move_to_end(key)
            tokens = min(float(policy.burst), entry[0] + (now - entry[1]) * policy.rate)
        entry[1] = now
        needed = min(cost, policy.burst)
        if tokens >= needed:
            entry[0] = tokens - needed
            return 0.0, entry[0]
        entry[0] = tokens
        return (needed - tokens) / policy.rate, tokens


class RateLimiter:
    """Charges requests to their member's bucket, or their address's without one."""

    __slots__ = ("address", "member")

    def __init__(
        self,
        member: Policy,
        address: Policy,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.member = Buckets(member, clock, max_clients)
        self.address = Buckets(address, clock, max_clients)

    def charge(self, member: str | None, address: str, cost: int = 1) -> Client:
        """The client a request of ``cost`` is charged to; raises the 429 problem when its
        bucket does not hold ``cost`` tokens."""
        if member is not None:
            buckets, client = self.member, ("member", member)
        else:
            buckets, client = self.address, ("address", address)
        wait_s, left = buckets.take(client[1], cost)
        if wait_s > 0:
            raise _refused(buckets.policy, wait_s, left)
        return client


def _refused(policy: Policy, wait_s: float, left: float) -> problems.Problem:
    reset_s = max(1, math.ceil(wait_s))
    return problems.Problem(
        "rate_limited",
        "Too many requests from this client; retry later.",
        headers={
            "Retry-After": str(reset_s),
            "RateLimit-Policy": policy.header,
            "RateLimit": f'"{policy.name}";r={int(left)};t={reset_s}',
        },
    )


def scope_member(scope: Scope, signer: TokenSigner) -> str | None:
    """The member a scope's credentials name (a trusted edge's, else a valid member token's),
    or None; verifies the Authorization at most once per scope, as authentication does."""
    if scope.enriched_member is not None:
        return scope.enriched_member
    if not scope.verified:
        token = bearer_token(scope.authorization)
        claims = None
        if token is not None:
            try:
                claims = signer.verify(token)
            except InvalidTokenError:
                return None  # left unverified: authentication logs why, if a call needs it
        scope.claims, scope.verified = claims, True
    return None if scope.claims is None else scope.claims.sub
