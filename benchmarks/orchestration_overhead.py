"""Orchestration overhead: what Frontdoor adds on top of its backends, for home and play.

Starts ``frontdoor serve`` (embedded simulated microservices, ``realistic`` latency) on free
loopback ports and sends requests one at a time (so nothing queues) with the engineers'
trace (``X-Frontdoor-Trace: 1`` + the admin token). For each response, the critical path of
backend time is rebuilt from ``meta.trace``: start from the step that finished last, add
its ``finished_ms - started_ms``, step back to the step that finished last before it was
queued, and repeat. The sum of every call's backend time is printed beside it: what a
client calling the services one after another would wait. Overhead = latency seen by this
client - that critical path: parsing, auth, actor messages, bulkhead queueing, composing,
serialising, and the loopback hop. A backend call's own HTTP client cost counts as backend
time (it sits between started_ms and finished_ms). Prints one table of per-request percentiles.

    .venv/bin/python benchmarks/orchestration_overhead.py [--requests 300]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from _processes import ROOT, free_port  # noqa: E402

from orchestrator.config import load_settings  # noqa: E402
from orchestrator.frontend.auth import TokenSigner  # noqa: E402
from orchestrator.loadtest.client import HttpClient  # noqa: E402
from orchestrator.loadtest.target import parse_target  # noqa: E402

_EPSILON_MS = 0.001


def _timed(trace: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        step
        for step in trace
        if step.get("started_ms") is not None and step.get("finished_ms") is not None
    ]


def sum_ms(trace: list[dict[str, Any]]) -> float:
    """Backend time of every call added up: what the request would cost run in sequence."""
    return sum(step["finished_ms"] - step["started_ms"] for step in _timed(trace))


def critical_path_ms(trace: list[dict[str, Any]]) -> float:
    """Backend time on the longest dependency chain, rebuilt from start/finish times."""
    steps = _timed(trace)
    total = 0.0
    current = max(steps, key=lambda step: step["finished_ms"], default=None)
    while current is not None:
        total += current["finished_ms"] - current["started_ms"]
        queued = current["queued_ms"] if current.get("queued_ms") is not None else 0.0
        before = [step for step in steps if step["finished_ms"] <= queued + _EPSILON_MS]
        current = max(before, key=lambda step: step["finished_ms"], default=None)
    return total


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _start_frontdoor(port: int, backends_port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(  # noqa: S603 - our own console script
        [
            str(Path(sys.executable).with_name("frontdoor")), "serve", "--port", str(port),
            "--backends-port", str(backends_port), "--latency-profile", "realistic",
        ],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        except OSError:
            time.sleep(0.1)  # polling a child's port: there is nothing to wait on instead
        else:
            return process
    process.terminate()
    raise RuntimeError("frontdoor did not start")


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300, help="per endpoint")
    args = parser.parse_args()
    settings = load_settings(environ=dict(os.environ))
    signer = TokenSigner(settings.auth.token_secret.encode(), settings.auth.token_ttl_s)
    port, backends_port = free_port(), free_port()
    process = _start_frontdoor(port, backends_port)
    client = HttpClient(parse_target(f"http://127.0.0.1:{port}"), timeout_s=10)
    trace = (("X-Frontdoor-Trace", "1"), ("X-Frontdoor-Admin-Token", settings.auth.admin_token))
    json_type = (("Content-Type", "application/json"),)
    try:
        print(f"Frontdoor overhead over the backend critical path; {args.requests} sequential "
              "requests per endpoint, realistic backend latency")  # fmt: skip
        print(f"{'endpoint':10} {'observed p50':>12} {'p99':>7} {'sum p50':>8} {'p99':>7} "
              f"{'critical p50':>12} {'p99':>7} {'overhead p50':>12} {'p99':>7}  (ms)")  # fmt: skip
        for name in ("home", "play"):
            observed, summed, critical, overhead = [], [], [], []
            for index in range(args.requests + 20):
                member = (("Authorization", f"Bearer {signer.issue(f'm{index + 1}')}"),)
                if name == "home":
                    request = ("GET", "/v1/discovery/home?rows=10&per_row=20", member + trace, None)
                else:
                    body = json.dumps({"title_id": f"t{index % 50 + 1}", "device_type": "ps5"})
                    request = ("POST", "/v1/playback/play", member + trace + json_type,
                               body.encode())  # fmt: skip
                payload = client.encode(*request)
                started = time.perf_counter()
                response = client.send(payload)
                elapsed_ms = (time.perf_counter() - started) * 1000
                if index < 20 or response.status != 200:
                    continue
                steps = json.loads(response.body)["meta"]["trace"]
                path_ms = critical_path_ms(steps)
                observed.append(elapsed_ms)
                summed.append(sum_ms(steps))
                critical.append(path_ms)
                overhead.append(elapsed_ms - path_ms)
            figures = [_percentile(values, q)
                       for values in (observed, summed, critical, overhead)
                       for q in (0.5, 0.99)]  # fmt: skip
            print(f"{name:10} " + " ".join(f"{value:{w}.1f}" for value, w in
                  zip(figures, (12, 7, 8, 7, 12, 7, 12, 7), strict=True))
                  + f"  n={len(observed)}")  # fmt: skip
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=15)


if __name__ == "__main__":
    main()
