"""orchestrator.ops.peers and instance: workers of one instance over real Unix sockets.

Three ``LocalWorker``s in this process stand for three worker processes (each with its own
pid, backends and windows); each has a real ``PeerChannel`` in one ``WorkerDirectory``.
What one worker answers must be the instance: every worker's numbers added up, the worst
breaker, and each worker named; a force must reach every worker, and a worker that joins
later.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from view_fakes import Decl, FakeBackend, FakeSystem

from actors.outcomes import Outcome
from actors.system import AdaptiveTotals
from orchestrator.ops.instance import FrontendGauges, Instance, LocalWorker
from orchestrator.ops.metrics import GaugeSnapshot
from orchestrator.ops.peers import PeerChannel, WorkerDirectory
from orchestrator.ops.views import EndpointWindows, gauge_snapshot

pytestmark = pytest.mark.integration

#: Beyond Linux's default pid_max (2**22): no process has it.
DEAD_PID = 2**22 + 17


#: A worker's backends: a bulkhead of 8 with a queue of 2.
Backend = functools.partial(FakeBackend, max_concurrent=8, max_queue=2)


@dataclass
class Worker:
    """One stand-in worker process: its backends, its instance view, its channel."""

    pid: int
    backends: dict[str, FakeBackend]
    windows: EndpointWindows
    instance: Instance
    channel: PeerChannel


PLAY = Decl("playback", "play", "playback", "POST", "/v1/playback/play")


@pytest.fixture
def directory(tmp_path: Path) -> WorkerDirectory:
    """A fresh instance directory (short path: Unix socket paths are limited to 107 bytes)."""
    return WorkerDirectory(tmp_path / "i")


@pytest.fixture
def join(directory: WorkerDirectory) -> Iterator[Callable[..., Worker]]:
    """Start a worker with ``pid`` in the directory; every worker is closed afterwards."""
    started: list[Worker] = []

    def start(pid: int, inflight: int = 0) -> Worker:
        backends = {name: Backend(name) for name in ("licensing", "ratings")}
        windows = EndpointWindows((PLAY,))
        local = LocalWorker(FakeSystem(backends), windows, pid=lambda: pid)
        local.bind_frontend(lambda: FrontendGauges(inflight, 1))
        channel = PeerChannel(directory, local, timeout_s=0.5, pid=lambda: pid)
        channel.start()
        instance = Instance(local, channel)
        worker = Worker(pid, backends, windows, instance, channel)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.channel.close()


def test_one_worker_answers_for_every_worker(join):
    first, second = join(101, inflight=2), join(102, inflight=3)
    for _ in range(30):
        first.backends["ratings"].stats.record(Outcome.SUCCESS, 4.0)
    for _ in range(10):
        second.backends["ratings"].stats.record(Outcome.FAILURE, 400.0)
    second.backends["licensing"].breaker_state = "open"
    second.backends["ratings"].inflight = 5
    second.windows.record("playback.play", 200, 20.0)

    for asked in (first, second):
        report = asked.instance.report()
        assert report.pids == [101, 102]
        assert report.served_by == asked.pid
        assert report.missing == ()
        assert report.frontend() == FrontendGauges(5, 2)
        licensing, ratings = report.backends()
        assert licensing.breaker.state == "open"  # the worst worker's
        assert dict(licensing.states) == {"closed": 1, "open": 1}
        window = ratings.window.snapshot()
        assert (window["calls"], window["successes"], window["failures"]) == (40, 30, 10)
        # The instance's p99 comes from every call: 10 of 40 took 400 ms.
        assert window["latency_ms"]["p99"] == 400.0
        assert window["latency_ms"]["p50"] == 5.0  # 4 ms calls, in the bucket up to 5 ms
        assert (ratings.inflight, ratings.max_concurrent, ratings.max_queue) == (5, 16, 4)
        assert [pid for pid, _ in ratings.workers] == [101, 102]
        (play,) = report.endpoints()
        assert play.window.snapshot()["calls"] == 1


def test_hedging_and_collapsing_counts_add_up_over_the_workers(join):
    """Each worker's counts cross the socket; the instance's are their sums, each worker's
    kept beside them; a backend no worker adapts stays None."""
    first, second = join(701), join(702)
    first.backends["licensing"].adaptive = AdaptiveTotals(5, 3, 40, 10)
    second.backends["licensing"].adaptive = AdaptiveTotals(7, 6, 60, 20)

    licensing, ratings = second.instance.report().backends()

    assert licensing.adaptive == AdaptiveTotals(12, 9, 100, 30)
    assert [part.adaptive for _, part in licensing.workers] == [
        AdaptiveTotals(5, 3, 40, 10),
        AdaptiveTotals(7, 6, 60, 20),
    ]
    assert ratings.adaptive is None


def test_one_worker_sends_the_instances_gauges_the_others_none(join):
    first, second = join(601, inflight=2), join(602, inflight=3)
    second.backends["ratings"].breaker_state = "open"
    first.backends["licensing"].queued = 4
    second.backends["licensing"].queued = 1

    def local(worker: Worker) -> GaugeSnapshot:
        return gauge_snapshot(worker.backends.values(), frontend_inflight=9, shed_total=7)

    sent = first.instance.gauges(local(first))  # the lowest pid: the instance's gauges
    assert sent.send_gauges
    assert (sent.frontend_inflight, sent.shed_total) == (5, 7)  # sheds stay its own
    assert sent.backends["ratings"].breaker_open
    assert sent.backends["licensing"].queued == 5
    quiet = second.instance.gauges(local(second))
    assert not quiet.send_gauges
    assert quiet.shed_total == 7


def test_a_force_reaches_every_worker_and_workers_started_later(join, directory):
    first, second = join(201), join(202)

    result = second.instance.force("licensing", "open")

    assert result is not None
    assert [pid for pid, part in result.applied if part is not None] == [201, 202]
    assert result.missing == []
    assert result.after.breaker.state == "open"
    assert dict(result.after.states) == {"open": 2}
    for worker in (first, second):
        assert worker.backends["licensing"].breaker_override == "open"
    assert directory.forces() == {"licensing": "open"}

    # A worker that starts afterwards (gunicorn replacing one) comes up forced too.
    later = join(203)
    assert later.backends["licensing"].breaker_override == "open"
    assert later.backends["ratings"].breaker_override is None

    first.instance.force("licensing", "clear")
    assert directory.forces() == {}
    for worker in (first, second, later):
        assert worker.backends["licensing"].breaker_override is None
    assert join(204).backends["licensing"].breaker_override is None


def test_an_unknown_backend_is_not_forced_anywhere(join, directory):
    first, _ = join(301), join(302)
    assert first.instance.force("nosuch", "open") is None
    assert directory.forces() == {}


def test_a_dead_workers_socket_is_removed_and_not_reported(join, directory):
    first = join(401)
    stale = directory.socket_path(DEAD_PID)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # bound, never listening: what a killed worker leaves
    report = first.instance.report()
    assert report.pids == [401]
    assert report.missing == ()
    assert not stale.exists()


def test_a_worker_that_does_not_answer_is_named_missing_within_the_timeout(join, directory):
    first = join(os.getpid())  # a live pid, so its silent peer below is not judged dead
    silent = socket.socket(socket.AF_UNIX)
    silent.bind(str(directory.socket_path(1)))  # pid 1 is alive: init
    silent.listen(1)
    try:
        report = first.instance.report()
    finally:
        silent.close()
    assert report.pids == [os.getpid()]
    assert report.missing == (1,)


def test_a_peer_refuses_oversized_or_unknown_requests(join, directory):
    join(501)
    path = str(directory.socket_path(501))
    for payload in (b'{"op": "drop tables"}\n', b"x" * 5000 + b"\n", b"not json\n"):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            sock.sendall(payload)
            reply = json.loads(sock.makefile("rb").readline())
        assert "error" in reply


def test_a_socket_path_too_long_is_refused_with_the_cure(tmp_path):
    deep = WorkerDirectory(tmp_path / ("d" * 120))
    with pytest.raises(OSError, match=r"longer than a Unix socket path may be.*TMPDIR"):
        deep.socket_path(1234)


def test_the_directory_must_be_private(tmp_path):
    shared = tmp_path / "open"
    shared.mkdir(mode=0o755)
    (shared / "i").mkdir(mode=0o700)
    shared.chmod(0o755)
    with pytest.raises(PermissionError, match="open to other users"):
        WorkerDirectory(shared / "i").prepare()
    link = tmp_path / "link"
    link.mkdir(mode=0o700)
    (link / "i").symlink_to(tmp_path)
    with pytest.raises(PermissionError, match="not a directory of this user's own"):
        WorkerDirectory(link / "i").prepare()


def test_an_instance_is_its_master_pid_and_start_and_gone_instances_are_removed(tmp_path):
    parent = tmp_path / f"frontdoor-{os.getuid()}"
    parent.mkdir(mode=0o700)
    gone = parent / f"gunicorn-{DEAD_PID}-123"  # its master died
    reused = parent / f"gunicorn-{os.getpid()}-1"  # this pid, an earlier process's
    for path in (gone, reused):
        path.mkdir(mode=0o700)
        (path / "forces.json").write_text('{"licensing": "open"}')

    directory = WorkerDirectory.for_master(os.getpid(), root=tmp_path)
    directory.prepare()

    assert directory.path.parent == parent
    assert directory.path.name.startswith(f"gunicorn-{os.getpid()}-")
    assert directory.path != reused
    assert (directory.path.stat().st_mode & 0o777) == 0o700
    assert directory.forces() == {}  # nothing inherited
    assert sorted(p.name for p in parent.iterdir()) == [directory.path.name]
