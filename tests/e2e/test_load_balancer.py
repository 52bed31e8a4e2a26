"""Behind a load balancer: a rolling restart of two instances under load loses no request.

The recipe of docs/load-balancer.md, smaller: HAProxy (``examples/haproxy/frontdoor.cfg``)
in front of two ``frontdoor serve --no-embedded`` processes, ``bin/loadtest``'s engine at
100 req/s through it, and each instance restarted in turn while the load runs. Every step
waits on an event a process announces (HAProxy's "Server ... is DOWN/UP" log lines,
Frontdoor's ``listening`` log line, a process's exit), never on a sleep. Skipped, with the
reason, only where HAProxy is not installed (``.ci/run`` installs it where it may).

And the drain grace that makes it lossless (``server.drain_grace_s``), in-process: while it
runs, a new connection is still served (``/readyz`` 503, everything with ``Connection:
close``); only after it are connections refused.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import gevent
import gevent.event
import pytest
import requests

from backends.simulated import SimulatedBackends
from orchestrator.config import ConfigError, load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
HAPROXY_CONFIG = ROOT / "examples" / "haproxy" / "frontdoor.cfg"
HAPROXY = shutil.which("haproxy") or next(
    (path for path in ("/usr/sbin/haproxy",) if Path(path).exists()), None
)
FRONTDOOR = str(Path(sys.executable).with_name("frontdoor"))
LOADTEST = (
    "from gevent import monkey; monkey.patch_all();"
    "from orchestrator.loadtest.cli import main; raise SystemExit(main())"
)
RATE = 100
DURATION_S = 24
#: Each step of a restart normally takes well under a second; these only bound a hang.
STEP_TIMEOUT_S = 20
#: The recipe's environment for every instance (and the generator, which mints tokens with
#: the same secret): real secrets, no statsd, and no per-client limits, since every request
#: arrives from HAProxy's one address. The grace outlasts HAProxy's detection (~0.75 s).
#: This test counts requests lost to the restarts, not shed ones: while one instance
#: restarts the other carries everything, and on a busy CI machine a stall of its core
#: could briefly hold more than the default 32 in flight, so the bound is raised.
INSTANCE_ENV = {
    "FRONTDOOR_AUTH_DEMO": "false",
    "FRONTDOOR_AUTH_TOKEN_SECRET": "load-balancer-test-token-secret-0123456789",
    "FRONTDOOR_AUTH_ADMIN_TOKEN": "load-balancer-test-admin-token",
    "FRONTDOOR_STATSD_ENABLED": "false",
    "FRONTDOOR_LIMITS_ENABLED": "false",
    "FRONTDOOR_SERVER_DRAIN_GRACE_S": "2",
    "FRONTDOOR_SERVER_MAX_INFLIGHT": "256",
}


class Output:
    """A child process's output, read line by line on a greenlet; ``wait_for`` a line."""

    def __init__(self, name: str, stream: IO[bytes]) -> None:
        self.name = name
        self.lines: list[str] = []
        self.ended = False
        self._new_line = gevent.event.Event()
        self._reader = gevent.spawn(self._read, stream)

    def _read(self, stream: IO[bytes]) -> None:
        for raw in stream:
            self.lines.append(raw.decode("utf-8", "replace").rstrip())
            arrived, self._new_line = self._new_line, gevent.event.Event()
            arrived.set()
        self.ended = True  # the process closed its output: it has exited
        self._new_line.set()

    def mark(self) -> int:
        """Where the output is now: ``wait_for(..., since=mark)`` ignores earlier lines."""
        return len(self.lines)

    def wait_for(self, text: str, since: int, timeout_s: float = STEP_TIMEOUT_S) -> None:
        """Return once a line from ``since`` on contains ``text``."""
        deadline = time.monotonic() + timeout_s
        while not any(text in line for line in self.lines[since:]):
            since = len(self.lines)
            if self.ended or not self._new_line.wait(max(0.0, deadline - time.monotonic())):
                tail = "\n".join(self.lines[-15:])
                why = "its output ended" if self.ended else f"{timeout_s} s passed"
                raise AssertionError(f"{self.name}: {why} before a line with {text!r}:\n{tail}")


class Children:
    """Every process a test starts; ``stop_all`` (the fixture's finalizer) ends them."""

    def __init__(self) -> None:
        self._processes: list[subprocess.Popen[bytes]] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str]
    ) -> tuple[subprocess.Popen[bytes], Output]:
        """Start ``args`` with stdout and stderr read by an ``Output``."""
        process = subprocess.Popen(  # noqa: S603 - our interpreter and scripts, and haproxy
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        self._processes.append(process)
        assert process.stdout is not None
        return process, Output(name, process.stdout)

    def stop_all(self) -> None:
        """SIGTERM what still runs, then wait; kill what has not exited within 15 s."""
        running = [process for process in self._processes if process.poll() is None]
        for process in running:
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture
def children() -> Iterator[Children]:
    """Processes started by the test, stopped (or killed) however it ends."""
    started = Children()
    try:
        yield started
    finally:
        started.stop_all()


@pytest.fixture
def backends() -> Iterator[SimulatedBackends]:
    """The simulated microservices, with their fast latency profile (1-20 ms)."""
    sim = SimulatedBackends(latency_profile="fast").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_environ() -> dict[str, str]:
    """This process's environment without any FRONTDOOR_ setting it may carry."""
    return {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}


class Instance:
    """One ``frontdoor serve --no-embedded`` process behind HAProxy as ``name``."""

    def __init__(self, name: str, env: dict[str, str], children: Children) -> None:
        self.name = name
        self.port = _free_port()
        self._env = env
        self._children = children
        self.process: subprocess.Popen[bytes] | None = None
        self.output: Output | None = None

    def start(self) -> None:
        """Start it; returns once it listens with its actors running (``/readyz`` 200)."""
        args = [FRONTDOOR, "serve", "--no-embedded", "--port", str(self.port)]
        self.process, self.output = self._children.start(self.name, args, self._env)
        self.output.wait_for('"event":"listening"', since=0)


@pytest.mark.skipif(
    HAPROXY is None,
    reason="haproxy is not installed (apt-get install haproxy; .ci/run does so where it may)",
)
def test_a_rolling_restart_of_both_instances_under_load_loses_no_request(
    children, backends, tmp_path
):
    """100 req/s through HAProxy for 24 s while instance 1, then 2, is restarted: every
    request is answered 2xx, none fails to connect, none goes unsent."""
    env = {
        **_clean_environ(),
        **INSTANCE_ENV,
        "FRONTDOOR_BACKENDS_BASE_URL": backends.url,
    }
    instances = [Instance(name, env, children) for name in ("fd1", "fd2")]
    lb_port = _free_port()
    lb_env = {
        **_clean_environ(),
        "FRONTDOOR_LB_BIND": f"127.0.0.1:{lb_port}",
        "FRONTDOOR_LB_STATS": f"127.0.0.1:{_free_port()}",
        "FRONTDOOR_1": f"127.0.0.1:{instances[0].port}",
        "FRONTDOOR_2": f"127.0.0.1:{instances[1].port}",
    }
    assert HAPROXY is not None
    # HAProxy first: with nothing behind it yet it marks both servers DOWN, which proves its
    # checks run; then each instance's start is seen as "is UP".
    _, balancer = children.start("haproxy", [HAPROXY, "-db", "-f", str(HAPROXY_CONFIG)], lb_env)
    for instance in instances:
        balancer.wait_for(f"Server frontdoor/{instance.name} is DOWN", since=0)
    mark = balancer.mark()
    for instance in instances:
        instance.start()
    for instance in instances:
        balancer.wait_for(f"Server frontdoor/{instance.name} is UP", since=mark)

    report_path = tmp_path / "report.json"
    load, load_output = children.start(
        "loadtest",
        [sys.executable, "-c", LOADTEST, "--target", f"http://127.0.0.1:{lb_port}",
         "--rate", str(RATE), "--duration", str(DURATION_S), "--warmup", "0",
         "--timeout", "5", "--seed", "13", "--json", str(report_path), "--no-progress"],
        env,
    )  # fmt: skip
    first = instances[0]
    assert first.output is not None
    first.output.wait_for('"event":"access"', since=first.output.mark())  # the load flows

    for instance in instances:
        assert instance.process is not None
        mark = balancer.mark()
        instance.process.send_signal(signal.SIGTERM)
        balancer.wait_for(f"Server frontdoor/{instance.name} is DOWN", since=mark)
        assert instance.process.wait(timeout=STEP_TIMEOUT_S) == 0
        instance.start()
        balancer.wait_for(f"Server frontdoor/{instance.name} is UP", since=mark)
    assert load.poll() is None, "the restarts outlasted the load: raise DURATION_S"

    assert load.wait(timeout=DURATION_S + 30) == 0, "\n".join(load_output.lines)
    report = json.loads(report_path.read_text())
    total = report["all"]["total"]
    lost = (total["status"], total["failures"], total["not_sent"], report["error_samples"])
    assert total["count"] >= RATE * DURATION_S - 1, total["count"]
    assert total["status"] == {"2xx": total["count"]}, lost
    assert total["failures"] == {}, lost
    assert total["not_sent"] == 0, lost


# -- the drain grace, in-process ---------------------------------------------------------------

#: Far longer than any test waits: the grace ends by a second stop, never by running out.
LONG_S = 3600


@pytest.fixture
def graceful(backends: SimulatedBackends) -> Iterator[tuple[HttpServer, gevent.Greenlet]]:
    """Frontdoor with a drain grace longer than the test, told to stop: the server and the
    greenlet running ``stop``, which waits in the grace."""
    settings = load_settings(environ={})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=LONG_S, drain_grace_s=LONG_S)
    server.start()
    stopping = gevent.spawn(server.stop)
    try:
        # The stop greenlet runs before this request is accepted: the drain has begun.
        assert _get(server, "/readyz")[0] == 503
        yield server, stopping
    finally:
        server.stop()  # the second call: ends the grace if it still runs
        stopping.get(timeout=10)


def _get(server: HttpServer, path: str) -> tuple[int, str | None, object]:
    """GET on a new connection: status, ``Connection`` header, JSON body."""
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", path)
        reply = connection.getresponse()
        return reply.status, reply.getheader("Connection"), json.loads(reply.read())
    finally:
        connection.close()


def test_during_the_grace_new_connections_are_served_and_told_to_close(graceful):
    """Draining with a grace: /readyz is 503 on a new connection (a balancer's check), a
    request on a new connection still gets its 200; both say Connection: close."""
    server, stopping = graceful
    assert _get(server, "/readyz") == (503, "close", {"ready": False, "draining": True})
    status, connection, body = _get(server, "/v1/nonmember/plans?country=US")
    assert (status, connection) == (200, "close")
    assert body["plans"]
    assert not stopping.ready()
    assert server.frontdoor.system.running


def test_a_second_stop_ends_the_grace_then_connections_are_refused(graceful):
    """A second stop (a second SIGTERM) ends the grace at once: the first stop completes and
    nothing listens any more."""
    server, stopping = graceful
    server.stop()
    stopping.get(timeout=10)
    assert not server.frontdoor.system.running
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/healthz", timeout=10)


def test_the_grace_is_a_setting_off_by_default():
    """server.drain_grace_s: 0 unless set; a negative value stops start-up, naming it."""
    assert load_settings(environ={}).server.drain_grace_s == 0
    env = {"FRONTDOOR_SERVER_DRAIN_GRACE_S": "2.5"}
    assert load_settings(environ=env).server.drain_grace_s == 2.5
    with pytest.raises(ConfigError, match="drain_grace_s"):
        load_settings(environ={"FRONTDOOR_SERVER_DRAIN_GRACE_S": "-1"})
