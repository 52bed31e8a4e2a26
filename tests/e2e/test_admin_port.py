"""Admin routes on a loopback-only listener of their own (``server.admin_port``), over real
sockets: served there alone, 404 on the device port, and refused on any other address."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import requests

from backends.simulated import SimulatedBackends
from orchestrator.config import DEMO_ADMIN_TOKEN, load_settings
from orchestrator.frontend.server import AdminBindError, HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

TIMEOUT_S = 10
ADMIN = {"Authorization": f"Bearer {DEMO_ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def backends() -> Iterator[SimulatedBackends]:
    """The simulated microservices, no added latency."""
    sim = SimulatedBackends(latency_profile="none").start(host="127.0.0.1", port=0)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def server(backends: SimulatedBackends) -> Iterator[HttpServer]:
    """Frontdoor with its admin listener on a free loopback port."""
    settings = load_settings(environ={})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    server = HttpServer(
        Frontdoor.build(settings, specs),
        "127.0.0.1",
        0,
        drain_s=TIMEOUT_S,
        admin_address=("127.0.0.1", 0),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """A session that ignores proxy settings."""
    session = requests.Session()
    session.trust_env = False
    yield session
    session.close()


def test_admin_routes_answer_on_the_admin_port(server, http):
    """The admin views and actions work on the admin listener, with the admin token."""
    assert server.admin_url is not None
    assert server.admin_url != server.url
    assert server.admin_url.startswith("http://127.0.0.1:")
    reply = http.get(server.admin_url + "/_admin/backends", headers=ADMIN, timeout=TIMEOUT_S)
    assert reply.status_code == 200
    assert {b["name"] for b in reply.json()["backends"]} >= {"ratings", "catalog"}
    endpoints = http.get(server.admin_url + "/_admin/endpoints", headers=ADMIN, timeout=TIMEOUT_S)
    assert endpoints.status_code == 200
    action = http.post(
        server.admin_url + "/_admin/backends/ratings/breaker",
        json={"force": "clear"},
        headers=ADMIN,
        timeout=TIMEOUT_S,
    )
    assert action.status_code == 200
    assert http.get(server.admin_url + "/_admin/backends", timeout=TIMEOUT_S).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_admin/backends"),
        ("GET", "/_admin/endpoints"),
        ("GET", "/_admin"),
        ("POST", "/_admin/backends/ratings/breaker"),
    ],
)
def test_device_port_answers_admin_paths_404(server, http, method, path):
    """On the device port admin paths do not exist, whatever the credentials."""
    reply = http.request(
        method, server.url + path, headers=ADMIN, json={"force": "open"}, timeout=TIMEOUT_S
    )
    assert reply.status_code == 404
    assert reply.headers["Content-Type"] == "application/problem+json"
    assert reply.json()["code"] == "not_found"
    assert server.frontdoor.system.breaker_state("ratings") == "closed"


def test_health_and_devices_stay_on_the_device_port(server, http):
    """Probes and device requests are served on the device port; the admin port has none."""
    assert http.get(server.url + "/healthz", timeout=TIMEOUT_S).json() == {"status": "ok"}
    ready = http.get(server.url + "/readyz", timeout=TIMEOUT_S)
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "draining": False})
    plans = http.get(server.url + "/v1/nonmember/plans?country=US", timeout=TIMEOUT_S)
    assert plans.status_code == 200
    for path in ("/healthz", "/readyz", "/v1/nonmember/plans?country=US", "/v1/catalog"):
        reply = http.get(server.admin_url + path, headers=ADMIN, timeout=TIMEOUT_S)
        assert (reply.status_code, reply.json()["code"]) == (404, "not_found"), path


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "localhost", "::"])
def test_admin_listener_refuses_non_loopback_addresses(host):
    """Only a loopback IP literal may carry the admin listener; nothing is bound otherwise."""
    settings = load_settings(environ={})
    frontdoor = Frontdoor.build(settings)
    try:
        with pytest.raises(AdminBindError, match="loopback"):
            HttpServer(frontdoor, "127.0.0.1", 0, drain_s=1, admin_address=(host, 0))
    finally:
        frontdoor.stop()


def test_single_listener_app_drops_admin_routes_when_admin_port_is_set(caplog):
    """Under gunicorn (one listener) a set admin_port means no admin routes, with a warning."""
    shared = Frontdoor.build(load_settings(environ={}))
    split = Frontdoor.build(load_settings(environ={"FRONTDOOR_SERVER_ADMIN_PORT": "9181"}))
    caplog.set_level(logging.WARNING, logger="frontdoor.runtime")
    try:
        assert shared.single_listener_app() is shared.app
        assert not caplog.records
        assert split.single_listener_app() == split.app.device_only
        assert "admin routes are not served" in caplog.records[0].getMessage()
    finally:
        shared.stop()
        split.stop()
