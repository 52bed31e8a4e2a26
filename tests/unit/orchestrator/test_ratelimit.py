"""Per-client rate limits (finding 4): token buckets per member and per address, a batch
costing its calls, 429 with Retry-After and the IETF RateLimit fields, bounded memory."""

from __future__ import annotations

import pytest
from stage_kit import Clock, scope

from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.problems import Problem
from orchestrator.frontend.ratelimit import Buckets, Policy, RateLimiter, scope_member

SIGNER = TokenSigner(b"k" * 32, 3600)


def limiter(clock: Clock, **sizes: int) -> RateLimiter:
    return RateLimiter(
        Policy("member", 2.0, sizes.get("member_burst", 4)),
        Policy("address", 10.0, sizes.get("address_burst", 20)),
        clock,
        max_clients=sizes.get("max_clients", 100),
    )


def refused(limits: RateLimiter, member: str | None, address: str, cost: int = 1) -> Problem:
    with pytest.raises(Problem) as caught:
        limits.charge(member, address, cost)
    return caught.value


def test_a_member_gets_its_burst_then_429_until_the_bucket_refills():
    clock = Clock()
    limits = limiter(clock)
    assert [limits.charge("m1", "10.0.0.1") for _ in range(4)] == [("member", "m1")] * 4
    problem = refused(limits, "m1", "10.0.0.1")
    assert (problem.status, problem.code) == (429, "rate_limited")
    clock.now += 0.5  # 2 a second: one token back
    assert limits.charge("m1", "10.0.0.1") == ("member", "m1")
    refused(limits, "m1", "10.0.0.1")


def test_429_carries_retry_after_and_the_ratelimit_fields():
    clock = Clock()
    limits = limiter(clock)
    for _ in range(4):
        limits.charge("m1", "10.0.0.1")
    headers = refused(limits, "m1", "10.0.0.1").headers
    assert headers["Retry-After"] == "1"
    # burst 4 at 2/s: a quota of 4 per the 2 s an empty bucket takes to refill
    assert headers["RateLimit-Policy"] == '"member";q=4;w=2'
    assert headers["RateLimit"] == '"member";r=0;t=1'


def test_members_and_addresses_have_buckets_of_their_own():
    clock = Clock()
    limits = limiter(clock)
    for _ in range(4):
        limits.charge("m1", "10.0.0.1")
    refused(limits, "m1", "10.0.0.1")
    assert limits.charge("m2", "10.0.0.1") == ("member", "m2")  # same address, other member
    # no member (a public endpoint): the address's bucket, untouched by member requests
    assert limits.charge(None, "10.0.0.1") == ("address", "10.0.0.1")
    for _ in range(19):
        limits.charge(None, "10.0.0.1")
    problem = refused(limits, None, "10.0.0.1")
    assert problem.headers["RateLimit-Policy"] == '"address";q=20;w=2'
    assert limits.charge(None, "10.0.0.2") == ("address", "10.0.0.2")


def test_a_batch_costs_its_number_of_calls():
    clock = Clock()
    limits = limiter(clock)
    limits.charge("m1", "10.0.0.1", cost=3)
    problem = refused(limits, "m1", "10.0.0.1", cost=2)
    assert problem.headers["RateLimit"] == '"member";r=1;t=1'
    limits.charge("m1", "10.0.0.1", cost=1)


def test_a_batch_larger_than_the_burst_costs_the_whole_burst():
    clock = Clock()
    limits = limiter(clock)
    limits.charge("m1", "10.0.0.1", cost=20)  # a full bucket admits a full batch
    refused(limits, "m1", "10.0.0.1")


def test_a_refused_request_takes_no_tokens():
    clock = Clock()
    limits = limiter(clock)
    for _ in range(4):
        limits.charge("m1", "10.0.0.1")
    for _ in range(100):
        refused(limits, "m1", "10.0.0.1")
    clock.now += 0.5
    limits.charge("m1", "10.0.0.1")


def test_a_flood_of_distinct_clients_keeps_memory_bounded():
    clock = Clock()
    buckets = Buckets(Policy("address", 1.0, 2), clock, max_clients=3)
    buckets.take("busy", 2)
    for index in range(1000):
        buckets.take(f"10.1.{index // 256}.{index % 256}")
        buckets.take("busy", 1)  # recently used: never the one evicted
        assert len(buckets) <= 3
    wait_s, _left = buckets.take("busy")
    assert wait_s > 0  # still drained: its bucket survived the flood


def test_policies_need_a_positive_rate_and_burst():
    with pytest.raises(ValueError, match="rate"):
        Policy("member", 0.0, 1)
    with pytest.raises(ValueError, match="burst"):
        Policy("member", 1.0, 0)


def test_a_scope_is_charged_to_its_valid_tokens_member_verified_once():
    valid = scope(authorization=f"Bearer {SIGNER.issue('m7')}")
    assert scope_member(valid, SIGNER) == "m7"
    assert valid.verified
    assert valid.claims is not None
    assert scope_member(scope(authorization="Bearer nope"), SIGNER) is None
    assert scope_member(scope(authorization=None), SIGNER) is None
    assert scope_member(scope(enriched_member="m9"), SIGNER) == "m9"
