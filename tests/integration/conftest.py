"""Integration fixtures: the real statsd daemon, the seeded simulated backends, and raw
HTTP test servers with a hang guard (``raw_http``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import gevent
import pytest
from raw_http import HangGuardError, Servers
from statsd_daemon import DaemonUnavailableError, StatsdDaemon

from backends.simulated import SimulatedBackends, World


def _launch(workdir: Path) -> StatsdDaemon:
    """Start a daemon; without node/npm or a working install, skip on a developer's machine
    and FAIL in CI (``CI=true``): a metrics test that silently skipped would prove nothing."""
    try:
        return StatsdDaemon.launch(workdir)
    except DaemonUnavailableError as exc:
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(f"statsd daemon unavailable in CI: {exc}", pytrace=False)
        pytest.skip(f"statsd daemon unavailable ({exc}); run bin/_statsd")


@pytest.fixture(scope="session")
def statsd_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StatsdDaemon]:
    """The reference statsd daemon on free loopback ports, shared by the session."""
    daemon = _launch(tmp_path_factory.mktemp("statsd"))
    yield daemon
    daemon.stop()


@pytest.fixture
def own_statsd_daemon(tmp_path: Path) -> Iterator[StatsdDaemon]:
    """A daemon of the test's own, which the test may stop."""
    daemon = _launch(tmp_path)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="module")
def world() -> World:
    """The seeded world the simulated backends serve, shared by a test module."""
    return World(7)


@pytest.fixture
def backends(world: World) -> Iterator[SimulatedBackends]:
    """The simulated backends on a free loopback port, stopped after the test."""
    sim = SimulatedBackends(world=world).start()
    yield sim
    sim.stop()


@pytest.fixture
def raw_servers() -> Iterator[Servers]:
    """Raw HTTP test servers on 127.0.0.1 (``raw_http.Servers``), stopped at teardown."""
    running = Servers()
    yield running
    running.stop()


@pytest.fixture
def raw_hang_guard() -> Iterator[None]:
    """Fail a test still running after 15 s (an Exception: gevent.Timeout is not one)."""
    with gevent.Timeout(15, HangGuardError("test hung")):
        yield
