"""Slowloris against a real ``frontdoor serve``: do N half-sent requests hurt other clients?

Frontdoor runs in its own process (embedded simulated services, ``--latency-profile``
fast), optionally under a lower descriptor limit (``--nofile``: soft and hard, as
``ulimit -n`` sets them, so the server cannot raise it). A
well-behaved client (this process, threads) asks ``GET /v1/nonmember/plans?country=US`` at
``--rate`` requests a second, a new connection each, open loop (latency counted from each
request's scheduled send time); first with no attack ("before"), then while an attacker
process (this script with ``--attack``, gevent) holds ``--connections`` slowloris
connections: each sends part of a request head, then one more header line every
``--trickle-s`` seconds, never the empty line that ends it. The attacker's connections
come from ``--source-ips`` loopback addresses (127.0.1.x: Linux routes all of 127/8 to lo)
so that a per-IP cap alone does not stop them.

Reported: p50/p99/max and errors of the well-behaved client before and during, the server's
open descriptors and RSS, how many attack connections the server held or refused, and
whether the server's log says "Too many open files" (with its ERROR lines and tracebacks).

Bounded: one server, one attacker (which exits by itself after ``--hold-s``), about
``2 x --phase-s`` + 20 s in all; 127.0.0.1 only.

    .venv/bin/python benchmarks/hostile_slowloris.py [--connections 5000] [--nofile 1024]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _processes import PYTHON, ROOT, free_port, rss_mb

PATH = "/v1/nonmember/plans?country=US"
HTTP_OK = 200


# ---------------------------------------------------------------------------------------
# The attacker (a process of its own, gevent).


def _attack(args: argparse.Namespace) -> int:
    from gevent import monkey

    monkey.patch_all()
    import gevent
    import gevent.lock

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    stats = {"opened": 0, "connect_failed": 0, "closed_by_server": 0, "answered": 0}
    head = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    stop_at = time.monotonic() + args.hold_s
    # Connects at once: more would overflow the server's listen backlog.
    connecting = gevent.lock.BoundedSemaphore(100)

    def one(index: int) -> None:
        source = f"127.0.1.{1 + index % args.source_ips}"
        try:
            with connecting:
                sock = socket.create_connection(
                    ("127.0.0.1", args.port), timeout=10, source_address=(source, 0)
                )
        except OSError:
            stats["connect_failed"] += 1
            return
        stats["opened"] += 1
        try:
            sock.sendall(head)
            while time.monotonic() < stop_at:
                sock.settimeout(min(args.trickle_s, max(0.01, stop_at - time.monotonic())))
                try:
                    data = sock.recv(4096)
                except TimeoutError:
                    sock.sendall(b"X-Slow: 1\r\n")
                    continue
                stats["answered" if data else "closed_by_server"] += 1
                return
        except OSError:
            stats["closed_by_server"] += 1
        finally:
            sock.close()

    greenlets = [gevent.spawn(one, index) for index in range(args.connections)]
    # Report once every connect was tried (the connections then keep trickling).
    while (
        any(not g.dead for g in greenlets)
        and sum((stats["opened"], stats["connect_failed"])) < args.connections
    ):
        gevent.sleep(0.05)
    gevent.sleep(0.5)  # let the server's refusals (if any) arrive
    print(json.dumps({"ready": True, **stats}), flush=True)
    gevent.joinall(greenlets, timeout=args.hold_s + 5)
    print(json.dumps({"done": True, **stats}), flush=True)
    return 0


# ---------------------------------------------------------------------------------------
# The well-behaved client.


def _one_request(port: int, scheduled: float) -> tuple[float, str]:
    """Latency (s) from the scheduled time, and "ok" or what went wrong."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", PATH)
        response = conn.getresponse()
        response.read()
        conn.close()
        outcome = "ok" if response.status == HTTP_OK else f"http {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        outcome = type(exc).__name__
    return time.monotonic() - scheduled, outcome


def _phase(port: int, rate: float, seconds: float) -> list[tuple[float, str]]:
    """``rate`` requests a second for ``seconds``, open loop; their (latency, outcome)."""
    count = int(rate * seconds)
    start = time.monotonic() + 0.1
    with ThreadPoolExecutor(max_workers=64) as pool:
        futures = []
        for index in range(count):
            scheduled = start + index / rate
            delay = scheduled - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # pacing an open-loop generator, not synchronisation
            futures.append(pool.submit(_one_request, port, scheduled))
        return [future.result() for future in futures]


def _summary(results: list[tuple[float, str]]) -> dict[str, float | int | str]:
    latencies = sorted(latency for latency, outcome in results if outcome == "ok")
    errors = sum(1 for _latency, outcome in results if outcome != "ok")

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    slowest = sorted(range(len(results)), key=lambda index: -results[index][0])[:3]
    return {
        "error_kinds": str(
            dict(Counter(outcome for _latency, outcome in results if outcome != "ok"))
        ),
        "slowest": ", ".join(f"#{index} {results[index][0] * 1000:.0f} ms" for index in slowest),
        "requests": len(results),
        "ok": len(latencies),
        "errors": errors,
        "p50_ms": pct(50),
        "p99_ms": pct(99),
        "max_ms": latencies[-1] * 1000 if latencies else float("nan"),
    }


# ---------------------------------------------------------------------------------------
# The run.


def _open_fds(pid: int) -> int:
    return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())


def _wait_ready(port: int, server: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("frontdoor serve exited at start-up; see its log")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == HTTP_OK:
                return
        except OSError:
            pass
        time.sleep(0.2)  # polling a child process's port: nothing to wait on instead
    raise RuntimeError("frontdoor serve did not become ready")


def _run(args: argparse.Namespace) -> int:
    port, backends_port = free_port(), free_port()
    log_file = Path(tempfile.mkstemp(prefix="slowloris-server-", suffix=".log")[1])
    env = {
        **os.environ,
        "FRONTDOOR_STATSD_ENABLED": "false",
        "FRONTDOOR_SERVER_DRAIN_S": "1",
        "FRONTDOOR_LOGGING_SLOW_REQUEST_MS": "100000",
    }
    if args.server_env:
        env.update(item.split("=", 1) for item in args.server_env)
    nofile = args.nofile

    def limit() -> None:
        if nofile:  # as `ulimit -n N`: soft and hard, so the server cannot raise it
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    with log_file.open("wb") as log:
        server = subprocess.Popen(  # noqa: S603 - our own console script
            [
                str(ROOT / ".venv/bin/frontdoor"),
                "serve",
                "--port",
                str(port),
                "--backends-port",
                str(backends_port),
                "--latency-profile",
                "fast",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=limit,  # noqa: PLW1509 - only setrlimit, before exec
        )
    attacker = None
    try:
        _wait_ready(port, server)
        _phase(port, args.rate, 2)  # warm-up, not reported
        idle = {"fds": _open_fds(server.pid), "rss_mb": rss_mb(server.pid)}
        before = _summary(_phase(port, args.rate, args.phase_s))
        attacker = subprocess.Popen(  # noqa: S603 - this script
            [
                PYTHON,
                __file__,
                "--attack",
                "--port",
                str(port),
                "--connections",
                str(args.connections),
                "--source-ips",
                str(args.source_ips),
                "--trickle-s",
                str(args.trickle_s),
                "--hold-s",
                str(args.phase_s + 40),
            ],
            cwd=ROOT / "benchmarks",
            stdout=subprocess.PIPE,
            text=True,
        )
        assert attacker.stdout is not None  # noqa: S101
        ready = json.loads(attacker.stdout.readline() or "{}")
        attacked = {"fds": _open_fds(server.pid), "rss_mb": rss_mb(server.pid)}
        during = _summary(_phase(port, args.rate, args.phase_s))
        after_fds = _open_fds(server.pid)
    finally:
        if attacker is not None:
            attacker.send_signal(signal.SIGTERM)
            attacker.wait(timeout=10)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
    text = log_file.read_text(errors="replace")
    emfile = text.count("Too many open files")
    error_lines = sum(1 for line in text.splitlines() if '"level":"ERROR"' in line)
    emfile_by_logger = Counter(
        json.loads(line).get("logger", "?") if line.startswith("{") else "stderr"
        for line in text.splitlines()
        if "Too many open files" in line
    )
    tracebacks = text.count("Traceback")

    print(
        f"frontdoor serve, nofile={nofile or resource.getrlimit(resource.RLIMIT_NOFILE)[0]}, "
        f"{args.connections} slowloris connections from {args.source_ips} source IPs, "
        f"well-behaved client {args.rate:g} req/s x {args.phase_s:g} s per phase"
    )
    print(f"{'phase':8} {'requests':>8} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, row in (("before", before), ("during", during)):
        print(
            f"{name:8} {row['requests']:8} {row['errors']:7} {row['p50_ms']:8.2f} "
            f"{row['p99_ms']:8.2f} {row['max_ms']:8.2f}"
        )
    print(f"slowest during (request #, of {during['requests']}): {during['slowest']}")
    print(
        f"p99 moved by {during['p99_ms'] - before['p99_ms']:+.2f} ms; errors during: "
        f"{during['errors']} {during['error_kinds'] if during['errors'] else ''}"
    )
    refused = ready.get("closed_by_server", 0) + ready.get("answered", 0)
    print(
        f"attack: opened {ready.get('opened')}, connect failed {ready.get('connect_failed')}, "
        f"closed/answered by the server at once {refused}"
    )
    print(
        f"server fds: idle {idle['fds']}, attacked {attacked['fds']}, end {after_fds}; "
        f"RSS MB: idle {idle['rss_mb']:.1f}, attacked {attacked['rss_mb']:.1f}"
    )
    print(
        f'server log: "Too many open files" x{emfile}, ERROR lines {error_lines}, '
        f"tracebacks {tracebacks} ({log_file})"
    )
    if emfile_by_logger:
        print(f'"Too many open files" by logger: {dict(emfile_by_logger)}')
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=5000)
    parser.add_argument(
        "--nofile", type=int, default=0, help="server's RLIMIT_NOFILE, soft and hard (ulimit -n)"
    )
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--phase-s", type=float, default=10.0)
    parser.add_argument("--source-ips", type=int, default=20)
    parser.add_argument("--trickle-s", type=float, default=5.0)
    parser.add_argument("--server-env", action="append", help="NAME=value for the server")
    parser.add_argument("--attack", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--hold-s", type=float, default=60.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:
        return _attack(args)
    return _run(args)


if __name__ == "__main__":
    sys.exit(main())
