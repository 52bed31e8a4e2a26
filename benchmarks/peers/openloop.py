"""The open-loop generator of benchmarks/peers.py: one request, sent at a constant rate.

Request ``i`` is due at ``start + i / rate`` whatever happened to the earlier ones (open
loop: a slow server gets no breathing space), and its latency is measured from that due
time, not from when it was actually sent, so the generator's own lateness counts against
the server rather than hiding it. Keep-alive connections come from a geventhttpclient pool
(opened as needed, up to --connections); a request waiting for a free connection is still
timed from its due time. Requests due in the first --warmup seconds are sent but not
counted. A reply counts as good only if it is a 200 whose body contains --expect.

Prints one JSON object: counts, latency percentiles (ms) and the send lag (how late the
generator itself sent, ms). bin/loadtest's engine is not used because it draws random
members, titles and page shapes from a weighted mix, whereas this benchmark needs the one
request the fixed nginx bodies answer.

    .venv/bin/python benchmarks/peers/openloop.py URL --rate 100 --duration 6 --warmup 1 \
        [--method POST --body '{...}'] [--header 'Authorization: Bearer ...'] [--expect TEXT]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - gevent patches first
import json  # noqa: E402
import math  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402

MAX_REQUESTS = 100_000


def percentile(values: list[float], share: float) -> float | None:
    """The nearest-rank percentile of ``values`` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class Tally:
    """What the measured requests got."""

    def __init__(self, expect: bytes) -> None:
        self.expect = expect
        self.latencies: list[float] = []
        self.counts = {"good": 0, "bad_status": 0, "bad_body": 0, "failed": 0}

    def record(self, status: int | None, data: bytes, latency_s: float) -> None:
        """One reply (``status`` None: the request failed)."""
        if status is None:
            self.counts["failed"] += 1
        elif status != 200:
            self.counts["bad_status"] += 1
        elif self.expect not in data:
            self.counts["bad_body"] += 1
        else:
            self.counts["good"] += 1
            self.latencies.append(latency_s * 1000)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Send the schedule, wait for the stragglers (bounded), summarise."""
    url = urlsplit(args.url)
    path = url.path + (f"?{url.query}" if url.query else "")
    headers = dict(h.split(": ", 1) for h in args.header)
    body = args.body.encode() if args.body is not None else None
    if body is not None:
        headers.setdefault("Content-Type", "application/json")
    client = HTTPClient(
        url.hostname or "127.0.0.1",
        url.port,
        concurrency=args.connections,
        connection_timeout=args.timeout,
        network_timeout=args.timeout,
    )
    tally = Tally(args.expect.encode())
    lags: list[float] = []

    def send(due: float, counted: bool) -> None:
        try:
            response = client.request(args.method, path, body=body, headers=headers)
            status, data = response.status_code, response.read()
        except Exception:  # noqa: BLE001 - any failure is one failed request
            status, data = None, b""
        if counted:
            tally.record(status, data, time.perf_counter() - due)

    total = min(MAX_REQUESTS, int(args.rate * (args.warmup + args.duration)))
    start = time.perf_counter() + 0.05
    group = gevent.pool.Group()
    for i in range(total):
        due = start + i / args.rate
        wait = due - time.perf_counter()
        if wait > 0:
            gevent.sleep(wait)
        counted = due >= start + args.warmup
        if counted:
            lags.append((time.perf_counter() - due) * 1000)
        group.spawn(send, due, counted)
    group.join(timeout=args.timeout + 1)
    unfinished = len(group)
    group.kill(block=False)
    client.close()
    return {
        "rate": args.rate,
        "duration_s": args.duration,
        "sent": len(lags),
        **tally.counts,
        "unfinished": unfinished,
        "latency_ms": {
            name: percentile(tally.latencies, share)
            for name, share in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0))
        },
        "send_lag_ms": {"p50": percentile(lags, 0.5), "p99": percentile(lags, 0.99)},
    }


def main() -> None:
    """Parse the arguments, run, print the JSON summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds sent, not counted")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body", help="request body (JSON)")
    parser.add_argument("--header", action="append", default=[], help="'Name: value'")
    parser.add_argument("--expect", default="", help="text a good reply body contains")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive pool size")
    parser.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    args = parser.parse_args()
    if not (0 < args.rate <= 5000 and 0 < args.duration <= 120 and 0 <= args.warmup <= 30):
        parser.error("rate 0-5000 req/s, duration 0-120 s, warmup 0-30 s")
    print(json.dumps(run(args)))


if __name__ == "__main__":
    main()
