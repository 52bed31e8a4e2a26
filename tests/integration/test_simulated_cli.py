"""fake-backends: fault/heal/status against a running instance, usage errors, serve + SIGTERM."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import gevent
import pytest
import requests

from backends.simulated import Fault
from backends.simulated.cli import main

pytestmark = pytest.mark.integration

TIMEOUT_S = 5
ROOT = Path(__file__).resolve().parents[2]
SHIM = (
    "from gevent import monkey; monkey.patch_all(); "
    "from backends.simulated.cli import main; raise SystemExit(main())"
)


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ=env or {}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_fault_then_heal_one_service(backends):
    """fault puts a fault in force and prints it; heal SERVICE removes it."""
    code, out, err = run("fault", "catalog", "--url", backends.url, "--error-rate", "1")
    assert (code, err) == (0, "")
    assert json.loads(out)["fault"]["error_rate"] == 1.0
    assert requests.get(backends.url + "/catalog/titles/t1", timeout=TIMEOUT_S).status_code == 503
    code, out, _ = run("heal", "catalog", "--url", backends.url)
    assert code == 0
    assert json.loads(out) == {"service": "catalog", "fault": None}
    assert requests.get(backends.url + "/catalog/titles/t1", timeout=TIMEOUT_S).status_code == 200


def test_fault_combines_options_and_heal_all(backends):
    """Several options make one fault; heal without a service heals everything."""
    code, _, _ = run(
        "fault",
        "search",
        "--url",
        backends.url,
        "--latency-ms",
        "5",
        "--malformed",
        "--drip-ms",
        "1",
    )
    assert code == 0
    assert backends.faults() == {"search": Fault(latency_ms=5, malformed=True, drip_ms=1)}
    run("fault", "plans", "--url", backends.url, "--refuse")
    run("fault", "ratings", "--url", backends.url, "--hang")
    assert set(backends.faults()) == {"search", "plans", "ratings"}
    code, out, _ = run("heal", "--url", backends.url)
    assert code == 0
    assert json.loads(out) == {"faults": {}}
    assert backends.faults() == {}


def test_status_reads_the_url_from_the_environment(backends):
    """FRONTDOOR_BACKENDS_URL is the default target; status shows faults and counts."""
    backends.set_fault("device", Fault(latency_ms=1))
    requests.get(backends.url + "/device/devices/ps5", timeout=TIMEOUT_S)
    code, out, _ = run("status", env={"FRONTDOOR_BACKENDS_URL": backends.url})
    assert code == 0
    status = json.loads(out)
    assert set(status["faults"]) == {"device"}
    assert status["requests"]["device"] == 1


@pytest.mark.parametrize(
    "argv",
    [
        ("fault", "payments", "--hang"),
        ("fault", "catalog"),
        ("fault", "catalog", "--error-rate", "-1"),
        ("fault", "catalog", "--error-rate", "lots"),
        ("heal", "catalog", "--url", "ftp://example.invalid"),
        ("serve", "--port", "70000"),
        ("serve", "--latency-profile", "glacial"),
        ("frobnicate",),
    ],
)
def test_bad_usage_exits_2_without_a_traceback(argv, capsys):
    """Argument mistakes give a one-line reason and exit code 2."""
    code, _, err = run(*argv)
    assert code == 2
    assert "Traceback" not in err + capsys.readouterr().err


def test_server_side_validation_errors_exit_2(backends):
    """A fault the server refuses is reported with its reason."""
    code, _, err = run("fault", "catalog", "--url", backends.url, "--error-rate", "2")
    assert code == 2
    assert "error_rate" in err
    assert backends.faults() == {}


def test_unreachable_server_exits_2():
    """Nothing listening: a clear message, exit code 2."""
    url = f"http://127.0.0.1:{closed_port()}"
    code, out, err = run("heal", "--url", url)
    assert code == 2
    assert out == ""
    assert err.startswith(f"fake-backends: cannot reach fake backends at {url}")
    assert "Traceback" not in err


def test_serve_runs_until_sigterm():
    """serve listens, answers, and shuts down cleanly with exit 0 on SIGTERM."""
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", SHIM, "--port", "0", "--latency-profile", "fast", "--seed", "3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with gevent.Timeout(30):
            banner = process.stdout.readline() if process.stdout else ""
        assert banner.startswith("fake backends listening on http://127.0.0.1:"), banner
        url = banner.split()[4]
        assert requests.get(url + "/_health", timeout=TIMEOUT_S).status_code == 200
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "stopped" in stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)
