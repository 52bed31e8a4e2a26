"""How long gunicorn with Frontdoor's worker class takes to stop on SIGTERM.

Starts the simulated services in this process and gunicorn (``-w 2``, Frontdoor's worker
class, README's command with secrets set and ``server.drain_s`` 3) on free loopback ports;
then, per case, opens keep-alive connections that each made one request and stay idle,
optionally leaves requests in flight (a 1.2 s backend), sends SIGTERM to the master and
times its exit. Every gunicorn is killed after ``--limit-s`` at most. Run with
``PYTHONPATH`` and ``--root`` at an older checkout for its numbers.

    .venv/bin/python benchmarks/gunicorn_stop.py [--idle 4] [--limit-s 45]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import http.client  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402
import requests  # noqa: E402

from backends.simulated import Fault, SimulatedBackends  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gunicorn(root: Path, backends_url: str, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    env.update(
        FRONTDOOR_BACKENDS_BASE_URL=backends_url,
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_SERVER_DRAIN_S="3",
        FRONTDOOR_BACKENDS_ACCOUNTS_TIMEOUT_MS="1900",
        FRONTDOOR_AUTH_TOKEN_SECRET="gunicorn-stop-benchmark-secret-0123456789",  # noqa: S106
        FRONTDOOR_AUTH_ADMIN_TOKEN="gunicorn-stop-admin-0123456789",  # noqa: S106
    )
    return subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-m", "gunicorn",
         "-k", "orchestrator.frontend.gunicorn_worker.FrontdoorWorker", "-w", "2",
         "-b", f"127.0.0.1:{port}", "--no-control-socket", "orchestrator.wsgi:application"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _serving(port: int, limit_s: float) -> None:
    """Both workers answer: every one of 20 fresh connections gets /healthz."""
    deadline = time.monotonic() + limit_s
    answered = 0
    while answered < 20:
        try:
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).raise_for_status()
            answered += 1
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)  # another process's port: nothing to wait on
    time.sleep(2)  # both workers past their boot (a SIGTERM during a worker's fork is lost)


def _case(args: argparse.Namespace, backends: SimulatedBackends, in_flight: int) -> str:
    port = _free_port()
    process = _gunicorn(args.root, backends.url, port)
    try:
        _serving(port, args.limit_s)
        idle = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(args.idle)]
        for connection in idle:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
        flights = []
        if in_flight:
            backends.set_fault("accounts", Fault(latency_ms=1200))
            body = {"country": "US", "plan_id": "standard", "card_last4": "4242"}
            flights = [
                gevent.spawn(
                    requests.post,
                    f"http://127.0.0.1:{port}/v1/nonmember/signup",
                    json={**body, "email": f"stop{i}-{time.time_ns()}@example.com"},
                    timeout=30,
                )
                for i in range(in_flight)
            ]
            backends.wait_held("accounts", 10)
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=args.limit_s)
            took = f"{time.monotonic() - started:.2f} s (exit {code})"
        except subprocess.TimeoutExpired:
            took = f"> {args.limit_s:.0f} s"
        statuses = [
            g.value.status_code if g.successful() else "error"
            for g in gevent.joinall(flights, timeout=10) or flights
        ]
        for connection in idle:
            connection.close()
        backends.heal()
        shown = f", in-flight answers {statuses}" if flights else ""
        return f"{args.idle} idle keep-alive, {in_flight} in flight: stopped in {took}{shown}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--idle", type=int, default=4)
    parser.add_argument("--limit-s", type=float, default=45.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout gunicorn runs from")
    args = parser.parse_args()
    backends = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    try:
        for in_flight in (0, 4):
            print(_case(args, backends, in_flight), flush=True)
    finally:
        backends.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
