"""The gunicorn worker class under the real gunicorn: serves, parses strictly, drains."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from backends.simulated import SimulatedBackends

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            # Polling another process's port: it offers no event to wait on.
            time.sleep(0.1)
        else:
            return
    raise AssertionError("gunicorn did not listen within 60 s")


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """One FrontdoorWorker under gunicorn, calling in-process simulated services."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    port = _free_port()
    environ = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    environ.update(FRONTDOOR_BACKENDS_BASE_URL=backends.url, FRONTDOOR_STATSD_ENABLED="false")
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("wb")
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn",
         "-k", "orchestrator.frontend.gunicorn_worker.FrontdoorWorker", "-w", "1",
         "-b", f"127.0.0.1:{port}", "--no-control-socket",
         "orchestrator.wsgi:application"],
        cwd=ROOT, env=environ, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    try:
        _wait_listening(port, process)
        yield f"http://127.0.0.1:{port}", process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT_S)
        log.close()
        backends.stop()


def test_the_worker_serves_parses_strictly_and_drains(gunicorn):
    """A real request answers 200 with one Date header and the request id; an obs-fold
    header block is a 400 from the strict parser; SIGTERM stops gunicorn cleanly, and
    gunicorn's own log lines format (Frontdoor's logging set-up leaves their fields)."""
    url, process, log_path = gunicorn
    http = requests.Session()
    http.trust_env = False
    # Connection: close, so that no kept-alive connection of ours holds up the drain.
    reply = http.get(f"{url}/v1/nonmember/plans?country=US", timeout=TIMEOUT_S,
                     headers={"X-Request-Id": "gunicorn-1", "Connection": "close"})  # fmt: skip
    assert reply.status_code == 200
    assert reply.headers["X-Request-Id"] == "gunicorn-1"
    assert reply.json()["plans"]
    http.close()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    log = log_path.read_text()
    assert "Worker exiting" in log
    assert "Logging error" not in log
    assert "Traceback" not in log
