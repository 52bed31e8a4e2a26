"""CPU per backend call, per transport: ``requests`` against geventhttpclient's C parser.

A keep-alive JSON server runs in a child process pinned to core 1 (gevent's WSGI server
with TCP_NODELAY, a fixed reply of ``--body-bytes``); this process, gevent-patched like
every serving process, is pinned to core 0 and makes sequential GETs. Each row is the
client's own CPU time (``time.process_time``: user + system, so the syscalls count) per
call, the median of ``--runs`` runs of ``--calls`` calls with the rows interleaved, after a
warmup. The server's CPU is not counted.

Rows: ``BackendClient.call`` (what one backend call costs Frontdoor: budget, headers,
gevent.Timeout, transport, strict JSON decoding) over each transport; each transport's
``send`` alone; and, for reference, geventhttpclient's own ``HTTPClient`` (request + read,
no cap, no error translation), which ``backends/gevent_transport.py`` does not use. The
last column counts the connections the server saw per row: 1 means keep-alive held.

    .venv/bin/python benchmarks/transport_cost.py [--calls 5000] [--runs 5] [--body-bytes 600]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from _processes import PYTHON, free_port, spawn, stop, wait_listening  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402

from backends.client import BackendClient  # noqa: E402
from backends.gevent_transport import GeventTransport  # noqa: E402
from backends.requests_transport import RequestsTransport  # noqa: E402
from backends.specs import BackendSpec  # noqa: E402
from backends.transport import Transport, get  # noqa: E402

#: The keep-alive server: a fixed JSON reply on every path but /_connections, which
#: answers how many connections it has accepted so far (distinct client ports).
SERVER_MAIN = """
import json, sys
from gevent import monkey; monkey.patch_all()
from orchestrator.frontend.httpserver import NoDelayWSGIServer
size = int(sys.argv[2])
items, body = [], b"{}"
while len(body) < size:
    items.append({"id": f"t{len(items)}", "title": "The Broken Tiger", "year": 2001})
    body = json.dumps({"items": items}, separators=(",", ":")).encode()
peers = set()
def app(environ, start_response):
    peers.add(environ["REMOTE_PORT"])
    out = str(len(peers)).encode() if environ["PATH_INFO"] == "/_connections" else body
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]
NoDelayWSGIServer(("127.0.0.1", int(sys.argv[1])), app, log=None).serve_forever()
"""
CLIENT_CORE = 0
SERVER_CORE = 1
TIMEOUT_S = 2.0


@dataclass(slots=True)
class Row:
    """One way of making the call, and what each run measured."""

    label: str
    call: Callable[[], object]
    close: Callable[[], None]
    cpu_us: list[float] = field(default_factory=list)
    wall_us: list[float] = field(default_factory=list)
    connections: int = 0


def _connections(base: str) -> int:
    with urllib.request.urlopen(f"{base}/_connections", timeout=TIMEOUT_S) as reply:  # noqa: S310
        return int(reply.read())


def _client_row(label: str, spec: BackendSpec, transport: Transport) -> Row:
    client = BackendClient(spec, transport)
    request = get("titles", "t42", lang="en")

    def call() -> object:
        return client.call(request, deadline=time.monotonic() + TIMEOUT_S, request_id="bench")

    return Row(label, call, client.close)


def _send_row(label: str, spec: BackendSpec, transport: Transport) -> Row:
    url = f"{spec.base_url}/titles/t42?lang=en"
    headers = {"Accept": "application/json", "X-Request-Id": "bench"}

    def call() -> object:
        return transport.send(
            "GET",
            url,
            headers=headers,
            body=None,
            timeout_s=TIMEOUT_S,
            max_body_bytes=spec.max_body_bytes,
        )

    return Row(label, call, transport.close)


def _httpclient_row(base: str) -> Row:
    client = HTTPClient.from_url(base, concurrency=1, connection_timeout=2, network_timeout=2)
    headers = {"Accept": "application/json", "X-Request-Id": "bench"}

    def call() -> object:
        response = client.get("/titles/t42?lang=en", headers=headers)
        try:
            return response.read()
        finally:
            response.release()

    return Row("geventhttpclient.HTTPClient get + read (reference)", call, client.close)


def _rows(base: str) -> list[Row]:
    spec = BackendSpec("bench", base, timeout_ms=int(TIMEOUT_S * 1000), max_concurrent=1)
    return [
        _client_row("BackendClient.call, requests", spec, RequestsTransport(spec)),
        _client_row("BackendClient.call, gevent", spec, GeventTransport(spec)),
        _send_row("RequestsTransport.send", spec, RequestsTransport(spec)),
        _send_row("GeventTransport.send", spec, GeventTransport(spec)),
        _httpclient_row(base),
    ]


def _measure(row: Row, calls: int) -> None:
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        row.call()
    row.cpu_us.append((time.process_time() - cpu) / calls * 1e6)
    row.wall_us.append((time.perf_counter() - wall) / calls * 1e6)


def main() -> None:
    """Start the server, measure every row and print the table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--body-bytes", type=int, default=600)
    args = parser.parse_args()

    os.sched_setaffinity(0, {CLIENT_CORE % (os.cpu_count() or 1)})
    port = free_port()
    server = spawn([PYTHON, "-c", SERVER_MAIN, str(port), str(args.body_bytes)], core=SERVER_CORE)
    try:
        wait_listening(port)
        base = f"http://127.0.0.1:{port}"
        rows = _rows(base)
        for row in rows:
            before = _connections(base)
            for _ in range(args.warmup):
                row.call()
            row.connections = _connections(base) - before - 1  # the query is a connection too
        body_bytes = len(json.dumps(rows[0].call(), separators=(",", ":")))
        for _ in range(args.runs):
            for row in rows:
                _measure(row, args.calls)
        for row in rows:
            row.close()
    finally:
        stop([server])

    print(
        f"transport cost: {args.calls} sequential GETs x {args.runs} runs, a {body_bytes}-byte "
        f"JSON reply, keep-alive; client on core {CLIENT_CORE}, server on core {SERVER_CORE}"
    )
    header = f"{'path':<52}{'CPU us/call':>12}{'min':>8}{'max':>8}{'wall us':>9}{'conns':>7}"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.label:<52}{statistics.median(row.cpu_us):>12.0f}{min(row.cpu_us):>8.0f}"
            f"{max(row.cpu_us):>8.0f}{statistics.median(row.wall_us):>9.0f}{row.connections:>7}"
        )
    requests_us = statistics.median(rows[0].cpu_us)
    gevent_us = statistics.median(rows[1].cpu_us)
    print(f"BackendClient.call: requests / gevent = {requests_us / gevent_us:.1f}x CPU per call")


if __name__ == "__main__":
    main()
