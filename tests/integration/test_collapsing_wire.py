"""Request collapsing over real sockets: Frontdoor configured from the environment, the
simulated catalog counting its calls, device responses unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gevent
import pytest
import requests

from backends.simulated import SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.integration

MEMBERS = ("m1", "m2", "m3", "m4")
HOME = "/v2/discovery/home?rows=2&per_row=3"


@pytest.fixture
def stack() -> Iterator[tuple[str, SimulatedBackends, Frontdoor]]:
    """Frontdoor with the catalog's by-ids reads collapsed over 200 ms windows."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(environ={"FRONTDOOR_BACKENDS_CATALOG_COLLAPSE_WINDOW_MS": "200"})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    assert {spec.name: spec.collapse.window_ms for spec in specs}["catalog"] == 200.0
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=5)
    server.start()
    try:
        yield server.url, backends, frontdoor
    finally:
        server.stop()
        backends.stop()


def _home(url: str, token: str) -> Any:
    with requests.Session() as http:
        http.trust_env = False
        reply = http.get(url + HOME, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _catalog_calls(backends: SimulatedBackends) -> int:
    reply = requests.get(f"{backends.url}/_stats", timeout=5)
    return int(reply.json()["requests"]["catalog"])


def test_concurrent_home_pages_share_one_catalog_call_and_keep_their_bodies(stack):
    """Four members' home pages alone, then at once: the same four bodies, not degraded;
    alone four catalog calls, at once one."""
    url, backends, frontdoor = stack
    tokens = [frontdoor.signer.issue(member) for member in MEMBERS]
    alone = [_home(url, token) for token in tokens]
    assert _catalog_calls(backends) == len(MEMBERS)
    together = [job.get(timeout=10) for job in [gevent.spawn(_home, url, t) for t in tokens]]
    assert _catalog_calls(backends) == len(MEMBERS) + 1
    assert together == alone
    assert all(body["meta"]["degraded"] == [] for body in together)
    assert all(row["videos"] for body in together for row in body["rows"])
