"""Graphite's carbon-cache (PyPI ``carbon``, installed by ``bin/_graphite``) on loopback.

``CarbonCache.launch`` writes a ``carbon.conf`` whose line receiver (TCP) and cache-query
port are free loopback ports (pickle receiver and UDP off), with storage, PID and log
under the test's directory and a ``storage-schemas.conf`` of one archive, ``1s:30m``: one
point a second, so each 1 s statsd flush is a point of its own and no rollup ever
aggregates it. It starts ``carbon-cache.py --nodaemon start`` from the tools venv and
returns once both ports are announced in its log and the line receiver accepts.

Reading is from the whisper files themselves, as graphite-web reads them: ``fetch`` runs
the tools venv's python with ``whisper.fetch`` in a subprocess (whisper is not a project
dependency) and returns each series' non-empty points. Carbon writes a point some time
after it arrives (its cache is drained by a writer thread), so a test polls with
``wait_for``, bounded, until the files hold what it expects.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import gevent

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "graphite"
PYTHON = TOOLS / "bin" / "python"
CARBON_CACHE = TOOLS / "bin" / "carbon-cache.py"
INSTALLER = ROOT / "bin" / "_graphite"
#: One archive: a point a second for 30 minutes (a 1 s statsd flush is one point).
RETENTIONS = "1s:30m"

# Run by the tools venv's python: every named series' points, as JSON on stdout.
_FETCH = """
import json, os, sys, time
import whisper
root, names = sys.argv[1], json.loads(sys.stdin.read())
# statsd rounds its flush time to the second, up to half a second ahead of the clock.
now = int(time.time()) + 2
found = {}
for name in names:
    path = os.path.join(root, *name.split(".")) + ".wsp"
    if os.path.exists(path):
        (start, _, step), values = whisper.fetch(path, 0, now, now=now)
        found[name] = [[start + i * step, v] for i, v in enumerate(values) if v is not None]
json.dump(found, sys.stdout)
"""


class CarbonUnavailableError(RuntimeError):
    """carbon could not be installed or started (the message says why)."""


@dataclass(frozen=True)
class Series:
    """A whisper series' points that hold a value: ``(timestamp, value)``, oldest first."""

    points: tuple[tuple[int, float], ...]

    @property
    def values(self) -> tuple[float, ...]:
        """The values, oldest first."""
        return tuple(value for _, value in self.points)

    @property
    def total(self) -> float:
        """The sum of the values (a counter's ``stats_counts`` series: its count)."""
        return math.fsum(self.values)

    @property
    def last(self) -> float | None:
        """The newest value, if any."""
        return self.points[-1][1] if self.points else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_installed() -> Path:
    """The tools venv's python, after ``bin/_graphite`` (a no-op once installed)."""
    try:
        result = subprocess.run(  # noqa: S603 - our own script, fixed arguments
            [str(INSTALLER)], capture_output=True, text=True, timeout=600, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CarbonUnavailableError(f"bin/_graphite did not run: {exc}") from exc
    if result.returncode != 0 or not CARBON_CACHE.is_file():
        raise CarbonUnavailableError(f"bin/_graphite failed: {result.stderr.strip()[-2000:]}")
    return PYTHON


def _carbon_conf(workdir: Path, line_port: int, query_port: int) -> str:
    storage = workdir / "storage"
    return "\n".join(
        [
            "[cache]",
            f"STORAGE_DIR = {storage}",
            f"LOCAL_DATA_DIR = {storage / 'whisper'}",
            f"WHITELISTS_DIR = {storage / 'lists'}",
            f"LOG_DIR = {workdir / 'log'}",
            f"PID_DIR = {workdir}",
            "LINE_RECEIVER_INTERFACE = 127.0.0.1",
            f"LINE_RECEIVER_PORT = {line_port}",
            "ENABLE_UDP_LISTENER = False",
            # Port 0 disables a receiver (carbon.protocols.CarbonServerProtocol.build).
            "PICKLE_RECEIVER_PORT = 0",
            "CACHE_QUERY_INTERFACE = 127.0.0.1",
            f"CACHE_QUERY_PORT = {query_port}",
            "MAX_CACHE_SIZE = inf",
            "MAX_UPDATES_PER_SECOND = inf",
            "MAX_CREATES_PER_MINUTE = inf",
            "ENABLE_TAGS = False",
            # No carbon.agents.* self-metrics, and a quiet log: statsd connects each flush.
            "CARBON_METRIC_INTERVAL = 0",
            "LOG_UPDATES = False",
            "LOG_CACHE_HITS = False",
            "LOG_CREATES = False",
            "LOG_LISTENER_CONN_SUCCESS = False",
            "",
        ]
    )


class CarbonCache:
    """A running carbon-cache: its line receiver ``port``, whisper ``storage`` and log."""

    def __init__(
        self, process: subprocess.Popen[bytes], port: int, query_port: int, workdir: Path
    ) -> None:
        self.process = process
        self.host = "127.0.0.1"
        self.port = port
        self.query_port = query_port
        self.storage = workdir / "storage" / "whisper"
        self.log = workdir / "carbon.log"

    @classmethod
    def launch(cls, workdir: Path, *, timeout_s: float = 20.0, tries: int = 3) -> CarbonCache:
        """Install if needed, start on free loopback ports, wait until it listens."""
        python = ensure_installed()
        problem = "not started"
        for attempt in range(tries):
            # A free port can be taken between the probe and carbon's bind: retry.
            line_port, query_port = _free_port(), _free_port()
            home = workdir / f"carbon-{attempt}"
            conf = home / "conf"
            conf.mkdir(parents=True)
            (conf / "carbon.conf").write_text(_carbon_conf(home, line_port, query_port))
            (conf / "storage-schemas.conf").write_text(
                f"[everything]\npattern = .*\nretentions = {RETENTIONS}\n"
            )
            with (home / "carbon.log").open("wb") as out:
                process = subprocess.Popen(  # noqa: S603 - the tools venv and our paths
                    [
                        str(python),
                        str(CARBON_CACHE),
                        f"--config={conf / 'carbon.conf'}",
                        "--nodaemon",
                        "start",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=home,
                )
            carbon = cls(process, line_port, query_port, home)
            try:
                carbon._wait_ready(timeout_s)
            except CarbonUnavailableError as exc:
                problem = str(exc)
                carbon.stop()
                continue
            return carbon
        raise CarbonUnavailableError(problem)

    def stop(self) -> None:
        """SIGTERM (carbon writes out its cache and exits), bounded; then kill."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    # -- reading ------------------------------------------------------------------------

    def fetch(self, names: Iterable[str]) -> dict[str, Series]:
        """Each named series that has a whisper file, with the points that hold a value."""
        wanted = sorted(set(names))
        try:
            result = subprocess.run(  # noqa: S603 - the tools venv, a script of ours
                [str(PYTHON), "-c", _FETCH, str(self.storage)],
                input=json.dumps(wanted),
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise CarbonUnavailableError("whisper fetch took over 30 s") from exc
        if result.returncode != 0:
            raise CarbonUnavailableError(f"whisper fetch failed: {result.stderr[-2000:]}")
        raw: dict[str, list[list[float]]] = json.loads(result.stdout)
        return {
            name: Series(tuple((int(at), float(value)) for at, value in points))
            for name, points in raw.items()
        }

    def stored(self) -> list[str]:
        """Every series carbon has created a whisper file for, by its dotted name."""
        return sorted(
            ".".join(path.relative_to(self.storage).with_suffix("").parts)
            for path in self.storage.rglob("*.wsp")
        )

    def wait_for(
        self,
        names: Iterable[str],
        condition: Callable[[Mapping[str, Series]], bool],
        timeout_s: float,
        what: str,
    ) -> dict[str, Series]:
        """Fetch ``names`` until ``condition`` holds of them (bounded); the last fetch."""
        wanted = tuple(names)
        deadline = time.monotonic() + timeout_s
        delay = 0.05
        while True:
            series = self.fetch(wanted)
            if condition(series):
                return series
            if self.process.poll() is not None:
                raise CarbonUnavailableError(f"carbon exited: {self.log_tail()}")
            if time.monotonic() >= deadline:
                shown = {name: s.points[-5:] for name, s in series.items()}
                raise AssertionError(f"whisper: no {what} after {timeout_s} s; last: {shown}")
            # Waiting on external processes (statsd flushes, carbon's writer): a bounded poll.
            gevent.sleep(delay)
            delay = min(delay * 2, 0.5)

    def log_tail(self) -> str:
        """The end of carbon's console log (for failure messages)."""
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return "(no log)"

    def _wait_ready(self, timeout_s: float) -> None:
        announced = (
            f"CarbonReceiverFactory starting on {self.port}",
            f"ServerFactory starting on {self.query_port}",
        )

        def listening() -> bool:
            with contextlib.suppress(OSError):
                log = self.log.read_text(errors="replace")
                if not all(line in log for line in announced):
                    return False
                socket.create_connection((self.host, self.port), timeout=1).close()
                return True
            return False

        deadline = time.monotonic() + timeout_s
        delay = 0.02
        while not listening():
            if self.process.poll() is not None:
                raise CarbonUnavailableError(f"carbon exited: {self.log_tail()}")
            if time.monotonic() >= deadline:
                raise CarbonUnavailableError(f"carbon not listening after {timeout_s} s")
            # Waiting on an external process: a bounded poll is the only event we have.
            gevent.sleep(delay)
            delay = min(delay * 2, 0.2)
