"""orchestrator.frontend.dashboard_route through a real app: the stream's lifetime, its
end on a drain (``frontdoor serve``'s and gunicorn's), and the methods it allows."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from orchestrator.config import DEMO_ADMIN_TOKEN, load_settings
from orchestrator.frontend.app import AppOptions, FrontdoorApp
from orchestrator.frontend.draining import DrainableApp
from orchestrator.ops.admin import AdminHandler, EndpointWindows
from orchestrator.ops.instance import Instance, LocalWorker
from orchestrator.runtime import Frontdoor


class Started:
    """A ``start_response`` that keeps what it was given."""

    status = ""
    headers: dict[str, str]

    def __call__(self, status: str, headers: list[tuple[str, str]], *_exc: Any) -> None:
        self.status = status
        self.headers = dict(headers)


def _environ(path: str = "/_admin/stream", method: str = "GET", token: str | None = None):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(b""),
    }
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return environ


def _events(body: Iterable[bytes]) -> Iterator[tuple[str, Any]]:
    for chunk in body:
        fields = dict(line.split(": ", 1) for line in chunk.decode().strip().split("\n"))
        yield fields.get("event", "message"), json.loads(fields["data"])


@pytest.fixture
def frontdoor() -> Iterator[Frontdoor]:
    """A Frontdoor built (not started): the app and its admin views."""
    built = Frontdoor.build(load_settings(environ={}))
    yield built
    built.metrics.close()


def test_a_stream_ends_after_its_lifetime(frontdoor):
    windows = EndpointWindows(frontdoor.app.registry.endpoints)
    admin = AdminHandler(
        Instance(LocalWorker(frontdoor.system, windows)), admin_token=DEMO_ADMIN_TOKEN
    )
    app = FrontdoorApp(
        frontdoor.app.registry,
        frontdoor.system,
        frontdoor.signer,
        AppOptions(dashboard_stream_s=0.0),
        windows=windows,
        admin=admin,
    )
    started = Started()
    body = app(_environ(token=DEMO_ADMIN_TOKEN), started)
    assert started.status == "200 OK"
    assert started.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    events = list(_events(body))
    assert [name for name, _ in events] == ["snapshot", "end"]
    assert events[1][1] == {"reason": "lifetime"}


def test_a_worker_restart_ends_the_stream_without_touching_readiness(frontdoor):
    drainable = DrainableApp(frontdoor, frontdoor.app)
    events = _events(drainable(_environ(token=DEMO_ADMIN_TOKEN), Started()))
    name, doc = next(events)
    assert name == "snapshot"
    assert {"backends", "endpoints", "frontend", "generated_at"} <= set(doc)
    drainable.begin_drain(not_ready=False)  # gunicorn's --max-requests restart
    assert next(events) == ("end", {"reason": "draining"})
    assert next(events, None) is None
    assert not frontdoor.app.draining


def test_a_server_drain_ends_the_stream(frontdoor):
    events = _events(frontdoor.app(_environ(token=DEMO_ADMIN_TOKEN), Started()))
    assert next(events)[0] == "snapshot"
    frontdoor.app.draining = True
    assert next(events) == ("end", {"reason": "draining"})


def test_the_stream_is_get_only_and_asks_for_credentials_first(frontdoor):
    started = Started()
    frontdoor.app(_environ(method="POST"), started)
    assert started.status.startswith("401")
    frontdoor.app(_environ(method="POST", token=DEMO_ADMIN_TOKEN), started)
    assert started.status.startswith("405")
    frontdoor.app(_environ(path="/_admin/dashboard", method="POST"), started)
    assert started.status.startswith("405")
