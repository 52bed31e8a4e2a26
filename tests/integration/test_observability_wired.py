"""Wired Frontdoor against the real statsd daemon: a scripted fault seen in metrics, the
admin view, the admin actions and the access log."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator

import pytest
import requests
from statsd_daemon import StatsdDaemon

from backends.simulated import SimulatedBackends
from orchestrator.config import DEMO_ADMIN_TOKEN, load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.integration
_runs = itertools.count()


@pytest.fixture
def wired(statsd_daemon: StatsdDaemon) -> Iterator[tuple[str, Frontdoor, SimulatedBackends, str]]:
    """Frontdoor + simulated backends, metrics to the daemon under a fresh prefix."""
    prefix = f"wired{next(_runs)}.frontdoor"
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(
        environ={
            "FRONTDOOR_STATSD_HOST": "127.0.0.1",
            "FRONTDOOR_STATSD_PORT": str(statsd_daemon.port),
            "FRONTDOOR_STATSD_PREFIX": prefix,
            "FRONTDOOR_STATSD_GAUGE_INTERVAL_S": "3600",  # the test reports by hand
            "FRONTDOOR_BACKENDS_RATINGS_BREAKER_REQUEST_VOLUME": "10",
            "FRONTDOOR_BACKENDS_RATINGS_RETRY_MAX_ATTEMPTS": "1",
        }
    )
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=5)
    server.start()
    try:
        yield server.url, frontdoor, backends, prefix
    finally:
        server.stop()
        backends.stop()


def test_ten_failures_open_the_breaker_in_metrics_admin_and_logs(wired, statsd_daemon, caplog):
    """Ratings failing: 10 degraded homes, 10 failures, breaker open; then short-circuits."""
    url, frontdoor, backends, prefix = wired
    http = requests.Session()
    http.trust_env = False
    http.put(f"{backends.url}/_faults/ratings", json={"error_rate": 1.0}, timeout=5)
    member = {"Authorization": f"Bearer {frontdoor.signer.issue('m1')}"}
    admin = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}
    caplog.set_level(logging.INFO, logger="frontdoor")
    for _ in range(10):
        reply = http.get(f"{url}/v1/discovery/home?rows=1&per_row=2", headers=member, timeout=5)
        assert reply.status_code == 200
        assert "ratings" in reply.json()["meta"]["degraded"]

    view = http.get(f"{url}/_admin/backends", headers=admin, timeout=5).json()
    ratings = next(b for b in view["backends"] if b["name"] == "ratings")
    assert ratings["breaker"]["state"] == "open"
    assert (ratings["window"]["calls"], ratings["window"]["failures"]) == (10, 10)
    assert ratings["window"]["fallbacks"] == 10

    reply = http.get(f"{url}/v1/discovery/home?rows=1&per_row=2", headers=member, timeout=5)
    assert reply.status_code == 200
    frontdoor.reporter.report_once()
    frontdoor.metrics.sink.flush()
    statsd_daemon.sync()
    counters = statsd_daemon.counters()
    assert counters[f"{prefix}.backend.ratings.failure"] == 10
    assert counters[f"{prefix}.backend.ratings.short_circuited"] == 1
    assert counters[f"{prefix}.backend.ratings.fallback"] == 11
    assert counters[f"{prefix}.endpoint.discovery.home.status.2xx"] == 11
    assert counters[f"{prefix}.endpoint.discovery.home.degraded"] == 11
    assert statsd_daemon.gauges()[f"{prefix}.backend.ratings.breaker_open"] == 1
    endpoints = http.get(f"{url}/_admin/endpoints", headers=admin, timeout=5).json()
    home = next(e for e in endpoints["endpoints"] if e["name"] == "discovery.home")
    assert (home["team"], home["window"]["successes"], home["window"]["fallbacks"]) == (
        "discovery",
        11,
        11,
    )

    # Admin auth, and clearing the breaker.
    assert http.get(f"{url}/_admin/backends", timeout=5).status_code == 401
    assert http.get(f"{url}/_admin/backends", headers=member, timeout=5).status_code == 403
    reply = http.post(
        f"{url}/_admin/backends/ratings/breaker", json={"force": "clear"}, headers=admin, timeout=5
    )
    assert reply.status_code == 200
    assert reply.json()["breaker"]["state"] == "closed"

    access = [r.fields for r in caplog.records if getattr(r, "fields", {}).get("event") == "access"]
    home_lines = [a for a in access if a["endpoint"] == "discovery.home"]
    assert len(home_lines) == 11
    assert home_lines[0]["team"] == "discovery"
    assert home_lines[0]["degraded"] == ["ratings"]
    assert home_lines[0]["backend_calls"] >= 1
    events = [r.fields["event"] for r in caplog.records if hasattr(r, "fields")]
    assert "breaker_state" in events
    assert "admin_action" in events
    http.close()
