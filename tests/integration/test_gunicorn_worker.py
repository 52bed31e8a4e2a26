"""The gunicorn worker class under the real gunicorn: serves, parses strictly, drains; the
gunicorn target refuses the public demo secrets and logs configuration warnings."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from gunicorn_run import free_port, start_gunicorn, wait_listening

from backends.simulated import SimulatedBackends

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 10
DRAIN_S = 2.0
SECRETS = {
    "FRONTDOOR_AUTH_TOKEN_SECRET": "gunicorn-worker-test-token-secret-0123456789",
    "FRONTDOOR_AUTH_ADMIN_TOKEN": "gunicorn-worker-test-admin-0123",
}


def _gunicorn(
    port: int, log: Any, backends_url: str, environ: dict[str, str]
) -> subprocess.Popen[bytes]:
    return start_gunicorn(
        port,
        log,
        {
            "FRONTDOOR_BACKENDS_BASE_URL": backends_url,
            "FRONTDOOR_STATSD_ENABLED": "false",
            "FRONTDOOR_SERVER_DRAIN_S": str(DRAIN_S),
            **environ,
        },
    )


@pytest.fixture
def backends() -> Iterator[SimulatedBackends]:
    """The simulated services, in this process."""
    sim = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


@pytest.fixture
def gunicorn(
    tmp_path: Path, backends: SimulatedBackends
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """One FrontdoorWorker under gunicorn, with secrets, calling in-process simulated services."""
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    log = log_path.open("wb")
    process = _gunicorn(port, log, backends.url, SECRETS)
    try:
        wait_listening(port, process)
        yield f"http://127.0.0.1:{port}", process, log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=TIMEOUT_S)
        log.close()


def test_the_worker_serves_parses_strictly_and_drains(gunicorn):
    """A real request answers 200 with one Date header and the request id; an obs-fold
    header block is a 400 from the strict parser; SIGTERM stops gunicorn cleanly within
    drain_s + 1 s although our keep-alive connection stays open (it was gunicorn's graceful
    timeout, 30 s), and gunicorn's own log lines format (Frontdoor's logging set-up leaves
    their fields)."""
    url, process, log_path = gunicorn
    http = requests.Session()
    http.trust_env = False
    reply = http.get(f"{url}/v1/nonmember/plans?country=US", timeout=TIMEOUT_S,
                     headers={"X-Request-Id": "gunicorn-1"})  # fmt: skip
    assert reply.status_code == 200
    assert reply.headers["X-Request-Id"] == "gunicorn-1"
    assert reply.json()["plans"]
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n folded\r\n\r\n")
        assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    stopping_at = time.monotonic()
    process.send_signal(signal.SIGTERM)  # the session's connection is still open, idle
    assert process.wait(timeout=30) == 0
    assert time.monotonic() - stopping_at < DRAIN_S + 1
    http.close()
    log = log_path.read_text()
    assert "Worker exiting" in log
    assert "drained in" in log
    assert "Logging error" not in log
    assert "Traceback" not in log


def _run_to_exit(tmp_path: Path, backends_url: str, environ: dict[str, str]) -> tuple[int, str]:
    log_path = tmp_path / "refused.log"
    with log_path.open("wb") as log:
        process = _gunicorn(free_port(), log, backends_url, environ)
        try:
            code = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=TIMEOUT_S)
    return code, log_path.read_text()


def test_the_gunicorn_target_refuses_to_start_without_secrets(tmp_path, backends):
    """No secrets configured (a bare gunicorn deployment): one clear configuration error, no
    traceback, and gunicorn stops ("App failed to load", exit 4) instead of serving tokens
    signed with the public demo secret."""
    code, log = _run_to_exit(tmp_path, backends.url, {})
    assert code == 4
    errors = [line for line in log.splitlines() if line.startswith("frontdoor: configuration")]
    assert errors == [
        (
            "frontdoor: configuration error: auth.token_secret, auth.admin_token: required "
            "outside the embedded demo (bin/serve); set FRONTDOOR_AUTH_TOKEN_SECRET and "
            "FRONTDOOR_AUTH_ADMIN_TOKEN, or FRONTDOOR_AUTH_DEMO=true to serve with the public "
            "demo secrets"
        )
    ]
    assert "App failed to load" in log
    assert "Traceback" not in log


def test_the_gunicorn_target_logs_configuration_warnings(tmp_path, backends):
    """The demo-secret and unknown-variable warnings are JSON lines under gunicorn too."""
    port = free_port()
    log_path = tmp_path / "warned.log"
    with log_path.open("wb") as log:
        environ = {"FRONTDOOR_AUTH_DEMO": "true", "FRONTDOOR_SERVER_PROT": "1"}
        process = _gunicorn(port, log, backends.url, environ)
        try:
            wait_listening(port, process)
            reply = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT_S)
            assert reply.status_code == 200  # served: it loaded the app, warnings first
        finally:
            process.kill()
            process.wait(timeout=TIMEOUT_S)
    warnings = [
        json.loads(line)["message"]
        for line in log_path.read_text().splitlines()
        if line.startswith("{") and '"level":"WARNING"' in line
    ]
    assert "using the demo token secret; set FRONTDOOR_AUTH_TOKEN_SECRET" in warnings
    assert "using the demo admin token; set FRONTDOOR_AUTH_ADMIN_TOKEN" in warnings
    assert any(
        w.startswith("ignoring unknown environment variable FRONTDOOR_SERVER_PROT")
        for w in warnings
    )
