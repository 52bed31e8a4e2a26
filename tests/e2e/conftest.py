"""The whole stack over real sockets on 127.0.0.1: simulated microservices + Frontdoor."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from backends.simulated import SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.runtime import Frontdoor, rebase_specs


@dataclass
class Stack:
    """A running Frontdoor and its simulated backends, with a member token and a session."""

    url: str
    backends: SimulatedBackends
    token: str
    frontdoor: Frontdoor
    http: requests.Session

    def get(self, path: str, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """GET a Frontdoor path (with the member token unless ``auth=False``)."""
        return self.http.get(self.url + path, headers=self._headers(auth, kwargs), **kwargs)

    def post(self, path: str, body: Any, *, auth: bool = True, **kwargs: Any) -> requests.Response:
        """POST JSON to a Frontdoor path."""
        headers = self._headers(auth, kwargs)
        return self.http.post(self.url + path, json=body, headers=headers, **kwargs)

    def fault(self, service: str, **fault: Any) -> None:
        """Inject a fault through the simulated services' admin API."""
        reply = self.http.put(f"{self.backends.url}/_faults/{service}", json=fault, timeout=5)
        reply.raise_for_status()

    def heal(self) -> None:
        """Remove every fault."""
        self.http.delete(f"{self.backends.url}/_faults", timeout=5).raise_for_status()

    def _headers(self, auth: bool, kwargs: dict[str, Any]) -> dict[str, str]:
        headers = dict(kwargs.pop("headers", {}))
        kwargs.setdefault("timeout", 10)
        if auth:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return headers


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """Start simulated backends (no added latency) and Frontdoor on free loopback ports."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(environ={})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    frontdoor = Frontdoor.build(settings, specs)
    server = HttpServer(frontdoor, "127.0.0.1", 0, drain_s=5)
    server.start()
    http = requests.Session()
    http.trust_env = False
    try:
        yield Stack(server.url, backends, frontdoor.signer.issue("m1"), frontdoor, http)
    finally:
        http.close()
        server.stop()
        backends.stop()


@pytest.fixture(autouse=True)
def _healed(stack: Stack) -> Iterator[None]:
    """Every test starts and ends with healthy backends."""
    stack.heal()
    yield
    stack.heal()
