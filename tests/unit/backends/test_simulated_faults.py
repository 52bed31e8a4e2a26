"""The fault model's validation and the latency model's distribution (seeded, no clock)."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.simulated import HEALTHY, LATENCY_PROFILES, SERVICES, Fault, FaultError, LatencyModel


def test_the_default_fault_is_healthy():
    """A fault with no settings changes nothing."""
    assert not Fault().active
    assert Fault() == HEALTHY
    assert Fault(error_rate=0.1).active


def test_from_json_accepts_every_documented_key():
    """All six keys together make one fault."""
    fault = Fault.from_json(
        {
            "latency_ms": 250,
            "error_rate": 0.5,
            "hang": True,
            "refuse": False,
            "malformed": True,
            "drip_ms": 20.5,
        }
    )
    assert fault == Fault(250, 0.5, hang=True, refuse=False, malformed=True, drip_ms=20.5)


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"latency": 5}, "latency"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": -0.1}, "error_rate"),
        ({"error_rate": "0.5"}, "error_rate"),
        ({"error_rate": True}, "error_rate"),
        ({"latency_ms": -1}, "latency_ms"),
        ({"latency_ms": math.inf}, "latency_ms"),
        ({"latency_ms": math.nan}, "latency_ms"),
        ({"latency_ms": 10_000_000}, "latency_ms"),
        ({"latency_ms": None}, "latency_ms"),
        ({"drip_ms": 120_000}, "drip_ms"),
        ({"hang": 1}, "hang"),
        ({"refuse": "yes"}, "refuse"),
        ({"malformed": None}, "malformed"),
        ([], "fault"),
        ("hang", "fault"),
    ],
)
def test_from_json_names_the_offending_key(body, key):
    """Unknown keys and bad types or ranges are refused, naming the key."""
    with pytest.raises(FaultError) as caught:
        Fault.from_json(body)
    assert caught.value.key == key
    assert key in str(caught.value)


fault_objects = st.fixed_dictionaries(
    {},
    optional={
        "latency_ms": st.floats(0, 300_000),
        "error_rate": st.floats(0, 1),
        "hang": st.booleans(),
        "refuse": st.booleans(),
        "malformed": st.booleans(),
        "drip_ms": st.integers(0, 60_000),
    },
)


@given(fault_objects)
def test_valid_faults_round_trip_through_json(body):
    """Whatever validates comes back unchanged from its JSON form."""
    fault = Fault.from_json(body)
    assert Fault.from_json(fault.to_json()) == fault
    assert fault.active == any(bool(value) for value in body.values())


def test_the_none_profile_never_waits():
    """Tests run with zero latency."""
    model = LatencyModel.from_profile("none")
    rng = random.Random(1)
    assert all(model.sample_ms(service, rng) == 0.0 for service in SERVICES)


def _quantiles(model: LatencyModel, service: str, count: int = 20_000) -> tuple[float, float]:
    rng = random.Random(42)
    draws = sorted(model.sample_ms(service, rng) for _ in range(count))
    return statistics.median(draws), draws[int(count * 0.99)]


@pytest.mark.parametrize(("service", "median_ms"), [("catalog", 15), ("recommendations", 30)])
def test_realistic_latency_has_its_median_and_a_long_tail(service, median_ms):
    """The median lands near the profile's, and p99 is about 4-5 times it."""
    model = LatencyModel.from_profile("realistic")
    median, p99 = _quantiles(model, service)
    assert median_ms * 0.9 < median < median_ms * 1.1
    assert 3.5 < p99 / median < 5.5


def test_scale_multiplies_latency():
    """latency_scale stretches the whole distribution."""
    base = _quantiles(LatencyModel.from_profile("realistic"), "ratings")[0]
    doubled = _quantiles(LatencyModel.from_profile("realistic", 2.0), "ratings")[0]
    assert doubled == pytest.approx(2 * base, rel=0.01)


def test_fast_profile_stays_within_a_few_milliseconds():
    """Every service's fast median is 1-3 ms."""
    model = LatencyModel.from_profile("fast")
    assert all(1.0 <= model.median_ms(service) <= 3.0 for service in SERVICES)
    assert set(LATENCY_PROFILES["realistic"]) == set(SERVICES)


def test_draws_are_clipped_far_out_in_the_tail():
    """No draw exceeds 15 medians, so one unlucky sample cannot stall a load test."""
    model = LatencyModel.from_profile("realistic")
    rng = random.Random(3)
    assert max(model.sample_ms("billing", rng) for _ in range(50_000)) <= 35 * 15


@pytest.mark.parametrize(("profile", "scale"), [("slow", 1.0), ("fast", -1.0), ("fast", math.nan)])
def test_bad_profiles_and_scales_are_refused(profile, scale):
    """Only the named profiles and non-negative scales exist."""
    with pytest.raises(ValueError, match="latency"):
        LatencyModel.from_profile(profile, scale)
