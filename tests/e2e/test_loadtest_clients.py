"""bin/loadtest with several clients against a real Frontdoor: each client's requests come
from its own source address and member, and the report has one row per client (the
two-client fairness scenario's machinery, finding 4)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from backends.simulated import SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.loadtest.cli import main
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

#: A flooder on public plans from 127.0.0.2; a neighbour on the same endpoint from
#: 127.0.0.3; a member browsing from the default address. Per-address buckets of 5.
SCENARIO = """
description = "1 s, three clients"
[load]
duration_s = 1
warmup_s = 0
timeout_s = 5
[[clients]]
name = "flooder"
rate = 40
source = "127.0.0.2"
mix = { plans = 1 }
[[clients]]
name = "neighbour"
rate = 2
source = "127.0.0.3"
mix = { plans = 1 }
[[clients]]
name = "device"
rate = 4
member = "m2"
mix = { title = 1 }
"""


@pytest.fixture(scope="module")
def target() -> Iterator[str]:
    """Frontdoor (address buckets of 5, refilled once in 1000 s) on simulated backends."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(
        environ={"FRONTDOOR_LIMITS_ADDRESS_BURST": "5", "FRONTDOOR_LIMITS_ADDRESS_RATE": "0.001"}
    )
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    server = HttpServer(Frontdoor.build(settings, specs), "127.0.0.1", 0, drain_s=5)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
        backends.stop()


def test_each_client_sends_from_its_own_address_and_gets_its_own_row(target, tmp_path):
    scenario = tmp_path / "clients.toml"
    scenario.write_text(SCENARIO)
    report_path = tmp_path / "report.json"
    out = io.StringIO()
    code = main(
        ["--scenario", str(scenario), "--target", target, "--json", str(report_path),
         "--no-progress", "--seed", "5"],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    clients = json.loads(report_path.read_text())["clients"]
    assert set(clients) == {"flooder", "neighbour", "device"}
    flooder, neighbour, device = clients["flooder"], clients["neighbour"], clients["device"]
    # The flooder's address bucket ran dry; the neighbour's, another address, did not.
    assert flooder["ok"] == 5
    assert flooder["rate_limited"] == flooder["count"] - 5 > 0
    assert neighbour["count"] > 0
    assert neighbour["success_percent"] == device["success_percent"] == 100.0
    assert "flooder" in out.getvalue()
