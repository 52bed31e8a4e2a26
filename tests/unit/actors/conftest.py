"""Actor-system fixtures built on shipped fakes (no HTTP): backends the test drives."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actors.plan import Plan, RunResult
from actors.system import ActorSystem
from backends.specs import BackendSpec
from backends.testing import EventLog, FakeBackend

SystemFactory = Callable[..., ActorSystem]


@pytest.fixture
def event_log() -> EventLog:
    """One ordered log shared by every fake backend of a test."""
    return EventLog()


@pytest.fixture
def make_system() -> Iterator[SystemFactory]:
    """Build and start an ActorSystem over fake backends; stopped after the test."""
    systems: list[ActorSystem] = []

    def factory(*fakes: FakeBackend, **spec_fields: Any) -> ActorSystem:
        by_name = {fake.name: fake for fake in fakes}
        specs = [BackendSpec(name, f"http://127.0.0.1:1/{name}", **spec_fields) for name in by_name]
        system = ActorSystem(specs, lambda spec: by_name[spec.name])
        system.start()
        systems.append(system)
        return system

    yield factory
    for system in systems:
        system.stop()


def run(system: ActorSystem, plan: Plan, deadline_s: float = 2.0, **params: Any) -> RunResult:
    """Execute a plan with a deadline relative to now."""
    return system.execute(
        plan,
        params=params,
        member_id="m1",
        deadline=time.monotonic() + deadline_s,
        request_id="req-test",
    )
