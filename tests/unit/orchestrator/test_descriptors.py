"""orchestrator.ops.descriptors: device connections get what backend calls leave."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest

from orchestrator.config import ConfigError
from orchestrator.ops.descriptors import (
    FIXED_RESERVE,
    DescriptorBudgetError,
    apply,
    backend_reserve,
    plan,
)


def test_the_reserve_is_one_descriptor_per_bulkhead_slot_plus_the_fixed_part():
    """Backends pool one connection per slot; embedded services hold the other end too."""
    assert backend_reserve([10, 10, 5], embedded=False) == FIXED_RESERVE + 25
    assert backend_reserve([10, 10, 5], embedded=True) == FIXED_RESERVE + 50
    assert backend_reserve([], embedded=False) == FIXED_RESERVE


def test_a_limit_with_room_is_left_alone_and_the_cap_is_the_configured_one():
    budget = plan(configured=1000, reserve=200, minimum=32, soft=4096, hard=4096)
    assert (budget.soft, budget.max_connections) == (4096, 1000)
    assert not budget.raised
    assert not budget.clamped


def test_the_soft_limit_is_raised_toward_the_hard_one_and_the_cap_clamped_to_what_is_left():
    """The tester's machine: ulimit -n 1024 with a higher hard limit."""
    budget = plan(configured=10_000, reserve=204, minimum=32, soft=1024, hard=4096)
    assert budget.raised
    assert budget.soft == 4096
    assert budget.max_connections == 4096 - 204
    assert budget.clamped


def test_the_soft_limit_is_raised_only_as_far_as_needed():
    budget = plan(configured=10_000, reserve=200, minimum=32, soft=1024, hard=1_000_000)
    assert (budget.soft, budget.max_connections) == (10_200, 10_000)
    infinite = plan(10_000, 200, 32, soft=1024, hard=resource.RLIM_INFINITY)
    assert (infinite.soft, infinite.max_connections) == (10_200, 10_000)


def test_a_limit_without_room_for_the_minimum_is_one_clear_config_error():
    """The hard limit leaves fewer device connections than server.max_inflight: refuse to
    start, naming the setting, the limits and what to do."""
    with pytest.raises(DescriptorBudgetError) as caught:
        plan(configured=10_000, reserve=344, minimum=32, soft=256, hard=256)
    assert isinstance(caught.value, ConfigError)
    assert caught.value.key == "server.max_connections"
    message = str(caught.value)
    assert "soft 256, hard 256" in message
    assert "344 kept for backend calls" in message
    assert "ulimit -n 376" in message


def test_apply_raises_the_soft_limit_through_setrlimit():
    calls: list[tuple[int, tuple[int, int]]] = []
    budget = apply(
        10_000,
        200,
        32,
        getrlimit=lambda _which: (1024, 8192),
        setrlimit=lambda which, limits: calls.append((which, limits)),
    )
    assert calls == [(resource.RLIMIT_NOFILE, (8192, 8192))]
    assert budget.max_connections == 8192 - 200


def test_apply_does_not_touch_a_limit_with_room():
    def refuse(_which: int, _limits: tuple[int, int]) -> None:
        raise AssertionError("setrlimit called")

    budget = apply(100, 200, 32, getrlimit=lambda _which: (1024, 1024), setrlimit=refuse)
    assert budget.max_connections == 100


def test_apply_falls_back_to_the_soft_limit_when_the_kernel_refuses_the_raise():
    """Above fs.nr_open setrlimit fails: the budget is then planned within the soft limit."""

    def refuse(_which: int, _limits: tuple[int, int]) -> None:
        raise OSError(1, "Operation not permitted")

    budget = apply(
        10_000, 200, 32, getrlimit=lambda _which: (1024, resource.RLIM_INFINITY), setrlimit=refuse
    )
    assert (budget.soft, budget.max_connections) == (1024, 1024 - 200)


def test_apply_raises_the_real_limit_of_a_process():
    """In a child process whose soft limit is 300 (hard unchanged): apply raises it."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1000:
        pytest.skip(f"hard descriptor limit {hard} is too low for this test")
    program = (
        "import resource\n"
        "from orchestrator.ops.descriptors import apply\n"
        "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))\n"
        "budget = apply(600, 200, 32)\n"
        "print(budget.max_connections, resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    done = subprocess.run(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=True
    )
    assert done.stdout.split() == ["600", "800"]
