"""``frontdoor serve`` as operators run it: JSON log lines only on stderr, no secret in its
output, admin routes on their loopback port, and a clean drain on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import gevent
import pytest
import requests

from orchestrator.config import DEMO_ADMIN_TOKEN
from orchestrator.frontend.auth import TokenSigner

pytestmark = pytest.mark.integration

TIMEOUT_S = 30
ROOT = Path(__file__).resolve().parents[2]
# cli.main patches gevent itself, before anything else is imported.
SHIM = "from orchestrator.cli import main; raise SystemExit(main())"
ADMIN_TOKEN = "operators-admin-token-for-cli-tests"  # noqa: S105 - a test value
TOKEN_SECRET = "token-secret-for-cli-tests-0123456789"  # noqa: S105 - a test value


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _banner_value(process: subprocess.Popen[str], prefix: str) -> str:
    """Read stdout up to the banner line starting with ``prefix``; the rest of that line."""
    assert process.stdout is not None
    with gevent.Timeout(TIMEOUT_S, AssertionError(f"no {prefix!r} line")):
        while True:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"stdout ended before {prefix!r}")
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()


def test_serve_logs_json_lines_without_secrets_and_drains_on_sigterm():
    """Every stderr line is a JSON object; the access line of a real request is there; no
    token or secret is printed; admin answers only on its port; SIGTERM exits 0."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    environ.update(
        FRONTDOOR_AUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        FRONTDOOR_AUTH_TOKEN_SECRET=TOKEN_SECRET,
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_SERVER_ADMIN_PORT=str(_free_port()),
    )
    argv = ["serve", "--port", "0", "--backends-port", "0", "--latency-profile", "none"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", SHIM, *argv],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    member = TokenSigner(TOKEN_SECRET.encode(), 3600).issue("m1")
    try:
        url = _banner_value(process, "Frontdoor is listening on ")
        admin_url = _banner_value(process, "Admin routes (/_admin/*) on ")
        assert admin_url.startswith("http://127.0.0.1:")
        http = requests.Session()
        http.trust_env = False
        home = http.get(
            url + "/v2/discovery/home?rows=1&per_row=1",
            headers={
                "Authorization": f"Bearer {member}",
                "X-Request-Id": "cli-1",
                "X-Device-Type": "web-chrome",
            },
            timeout=TIMEOUT_S,
        )
        assert home.status_code == 200
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        on_admin_port = http.get(admin_url + "/_admin/backends", headers=admin, timeout=TIMEOUT_S)
        assert on_admin_port.status_code == 200
        on_device_port = http.get(url + "/_admin/backends", headers=admin, timeout=TIMEOUT_S)
        assert on_device_port.status_code == 404
        http.close()
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr

    lines = [json.loads(text) for text in stderr.splitlines()]  # each one JSON, or it fails
    assert lines
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    (listening,) = [line for line in lines if line.get("event") == "listening"]
    assert (listening["url"], listening["admin_url"]) == (url, admin_url)
    (access,) = [line for line in lines if line.get("request_id") == "cli-1"]
    assert (access["event"], access["endpoint"], access["team"]) == (
        "access",
        "discovery.home_v2",
        "discovery",
    )
    assert (access["status"], access["client"], access["device_type"]) == (
        200,
        "127.0.0.1",
        "web-chrome",
    )
    messages = [line["message"] for line in lines]
    assert any(message.startswith("draining") for message in messages)
    # One family of logger names: "frontdoor" and "frontdoor.*", the drain's included.
    assert {line["logger"].partition(".")[0] for line in lines} == {"frontdoor"}
    draining = [line for line in lines if line["message"].startswith("draining")]
    assert {line["logger"] for line in draining} == {"frontdoor.server"}
    assert messages[-1] == "stopped"
    for secret in (ADMIN_TOKEN, TOKEN_SECRET, member):
        assert secret not in stdout
        assert secret not in stderr
    assert "export TOKEN=$(bin/frontdoor token m1)" in stdout  # not a signed token
    assert "export ADMIN_TOKEN=$(bin/frontdoor token --admin ops)" in stdout


def test_the_demo_banner_prints_the_public_demo_admin_token_which_opens_admin_and_traces():
    """With the public demo secrets (and only then) the banner prints the admin token
    too; it opens ``/_admin/*`` and ``X-Frontdoor-Trace``."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    environ["FRONTDOOR_STATSD_ENABLED"] = "false"
    argv = ["serve", "--port", "0", "--backends-port", "0", "--latency-profile", "none"]
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", SHIM, *argv],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _banner_value(process, "Frontdoor is listening on ")
        member = _banner_value(process, "  export TOKEN=")
        admin_token = _banner_value(process, "  export ADMIN_TOKEN=")
        assert admin_token == DEMO_ADMIN_TOKEN
        http = requests.Session()
        http.trust_env = False
        admin = {"Authorization": f"Bearer {admin_token}"}
        assert http.get(url + "/_admin/backends", headers=admin, timeout=TIMEOUT_S).ok
        traced = http.get(
            url + "/v1/discovery/home?rows=1&per_row=1",
            headers={
                "Authorization": f"Bearer {member}",
                "X-Frontdoor-Trace": "1",
                "X-Frontdoor-Admin-Token": admin_token,
            },
            timeout=TIMEOUT_S,
        )
        assert traced.json()["meta"]["trace"]
        http.close()
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr
