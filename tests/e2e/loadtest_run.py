"""A real ``frontdoor serve`` and real ``bin/loadtest`` runs, for the load-test e2e tests.

``serving(profile)`` starts ``frontdoor serve`` on free loopback ports with its embedded
simulated microservices and yields its URL and the services' URL, read from its banner as
the lines come (an event per line, no polling); ``loadtest(*argv)`` runs what
``bin/loadtest`` execs, in a child process, bounded in time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gevent
import gevent.event

ROOT = Path(__file__).resolve().parents[2]
#: What bin/loadtest execs once its virtualenv is in place.
LOADTEST = (
    "from gevent import monkey; monkey.patch_all(); "
    "from orchestrator.loadtest.cli import main; raise SystemExit(main())"
)
#: What the ``frontdoor`` console script runs (its main() patches gevent first).
FRONTDOOR = "from orchestrator.cli import main; raise SystemExit(main())"
START_TIMEOUT_S = 60.0
RUN_TIMEOUT_S = 60.0


@dataclass
class Child:
    """A child process (``frontdoor serve``, ``bin/fake-backends``...), its stdout read line
    by line as it comes."""

    process: subprocess.Popen[bytes]
    lines: list[str] = field(default_factory=list)
    changed: gevent.event.Event = field(default_factory=gevent.event.Event)

    def read(self) -> None:
        """Collect stdout lines until the process closes it (a greenlet)."""
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            self.lines.append(raw.decode("utf-8", "replace"))
            self.changed.set()
        self.changed.set()

    def url_after(self, text: str) -> str:
        """The URL printed after ``text``, waiting (on each new line, no polling) for it."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for line in self.lines:
                found = re.search(re.escape(text) + r" (http://127\.0\.0\.1:\d+)", line)
                if found:
                    return found.group(1)
            self.changed.clear()
            if self.process.poll() is not None:
                raise AssertionError(f"exited before {text!r}:\n{''.join(self.lines)}")
            if not self.changed.wait(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"no {text!r} within {START_TIMEOUT_S:g} s")


def environ() -> dict[str, str]:
    """This process's environment without Frontdoor's settings, statsd off."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    env["FRONTDOOR_STATSD_ENABLED"] = "false"
    return env


@contextmanager
def serving(latency_profile: str = "none") -> Iterator[tuple[str, str]]:
    """``frontdoor serve`` on free loopback ports: its URL and its simulated
    microservices' URL; stopped (SIGTERM) on exit."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", FRONTDOOR, "serve", "--port", "0",
         "--backends-port", "0", "--latency-profile", latency_profile],
        cwd=ROOT, env=environ(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    server = Child(process)
    reader = gevent.spawn(server.read)
    try:
        yield (
            server.url_after("Frontdoor is listening on"),
            server.url_after("Simulated microservices on"),
        )
    finally:
        process.terminate()
        process.wait(timeout=30)
        reader.join(timeout=5)


def loadtest(*argv: str) -> subprocess.CompletedProcess[str]:
    """One ``bin/loadtest`` run (what the script execs), its output captured."""
    return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", LOADTEST, *argv],
        cwd=ROOT, env=environ(), capture_output=True, text=True, check=False,
        timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
