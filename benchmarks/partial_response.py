"""Partial responses: backend calls, bytes and latency of home with all fields versus a
selection, against the simulated services with realistic latency, over real HTTP.

Frontdoor and the simulated services run in this process on loopback. Requests run one at
a time, so each latency is one request's own; the services' "realistic" latency profile
makes the ratings call (pruned by the selection) cost what it would in production.

    .venv/bin/python benchmarks/partial_response.py [--requests 200] [--rows 10 --per-row 20]
        [--profile realistic|fast|none]
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402 - after patching, by design
import statistics  # noqa: E402
import time  # noqa: E402

import requests  # noqa: E402

from backends.simulated import SimulatedBackends  # noqa: E402
from orchestrator.config import load_settings  # noqa: E402
from orchestrator.frontend.server import HttpServer  # noqa: E402
from orchestrator.runtime import Frontdoor, rebase_specs  # noqa: E402

SERVICES = ("subscriber", "recommendations", "catalog", "ratings")
VARIANTS = {
    "all fields": None,
    "rows(videos(id,title))": "rows(videos(id,title))",
    # For scale: a selection that prunes the critical path, not only a parallel branch.
    "member": "member",
}


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    """Run each variant ``--requests`` times (after a warm-up) and print one table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--per-row", type=int, default=20)
    parser.add_argument("--profile", default="realistic", help="the services' latency profile")
    args = parser.parse_args()
    backends = SimulatedBackends(latency_profile=args.profile).start()
    settings = load_settings(environ={})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=1)
    server.start()
    http = requests.Session()
    http.trust_env = False
    headers = {"Authorization": f"Bearer {frontdoor.signer.issue('m1')}"}
    try:
        print(
            f"home?rows={args.rows}&per_row={args.per_row}, {args.requests} requests each, "
            f"{args.profile} service latency"
        )
        print(f"{'variant':<24} {'calls/req':>10} {'bytes':>8} {'p50 ms':>8} {'p90 ms':>8}")
        for name, fields in VARIANTS.items():
            params: dict[str, str | int] = {"rows": args.rows, "per_row": args.per_row}
            if fields is not None:
                params["fields"] = fields
            url = f"{server.url}/v1/discovery/home"
            for _ in range(20):  # warm-up: connections, caches
                http.get(url, params=params, headers=headers, timeout=5).raise_for_status()
            backends.reset_calls()
            latencies: list[float] = []
            size = 0
            for _ in range(args.requests):
                started = time.perf_counter()
                reply = http.get(url, params=params, headers=headers, timeout=5)
                latencies.append((time.perf_counter() - started) * 1000)
                reply.raise_for_status()
                size = len(reply.content)
            made = sum(backends.calls(service) for service in SERVICES) / args.requests
            print(
                f"{name:<24} {made:>10.2f} {size:>8} "
                f"{statistics.median(latencies):>8.1f} {_percentile(latencies, 0.9):>8.1f}"
            )
    finally:
        http.close()
        server.stop()
        frontdoor.stop()
        backends.stop()


if __name__ == "__main__":
    main()
