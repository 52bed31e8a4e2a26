"""The WSGI app: which WSGI callable serves admin routes, and an unexpected error logged
once, with its request id, and no credential."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from typing import Any

import pytest

from actors.messages import Call, Reply
from actors.plan import StepRecord
from orchestrator.frontend.app import AppOptions, FrontdoorApp
from orchestrator.frontend.auth import TokenSigner
from orchestrator.ops.access_log import FIELDS_ATTR, JsonFormatter
from orchestrator.ops.admin import AdminHandler, BackendView, EndpointWindows
from orchestrator.plans import EndpointRegistry

ADMIN_TOKEN = "admin-token-for-app-tests-0123"  # noqa: S105 - a test value, not a credential


class NoBackends:
    """The app's Backends with nothing behind them (no endpoint here calls one)."""

    running = True

    def submit(self, call: Call) -> Reply | None:
        """Never called: the registry is empty."""
        raise AssertionError(call)

    def record_fallbacks(self, records: Iterable[StepRecord]) -> None:
        """Nothing to count."""


class BrokenViews:
    """Backend views whose reading fails: a bug behind an admin route."""

    def backend_views(self) -> list[BackendView]:
        """Fail like a bug would."""
        raise RuntimeError("views are broken")


@pytest.fixture
def app() -> FrontdoorApp:
    """An app with no endpoints and an admin handler over broken views."""
    signer = TokenSigner(b"k" * 32, 3600)
    admin = AdminHandler(BrokenViews(), EndpointWindows(()), admin_token=ADMIN_TOKEN)
    return FrontdoorApp(
        EndpointRegistry(()),
        NoBackends(),
        signer,
        AppOptions(admin_token=ADMIN_TOKEN),
        admin=admin,
    )


def call(wsgi: Any, path: str, **headers: str) -> tuple[int, dict[str, Any]]:
    """Send one GET through a WSGI callable; its status and JSON body."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(),
        **{"HTTP_" + name.upper(): value for name, value in headers.items()},
    }
    statuses: list[str] = []
    body = b"".join(wsgi(environ, lambda status, _headers: statuses.append(status)))
    return int(statuses[0].split()[0]), json.loads(body)


def test_admin_paths_per_callable(app):
    """The app serves admin routes; device_only answers 404; admin_only serves nothing else."""
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    for served in (app, app.admin_only):
        status, body = call(served, "/_admin/endpoints", **auth)
        assert (status, body["endpoints"]) == (200, [])
    status, body = call(app.device_only, "/_admin/endpoints", **auth)
    assert (status, body["code"]) == (404, "not_found")
    assert call(app.device_only, "/healthz") == (200, {"status": "ok"})
    for path in ("/healthz", "/readyz", "/v1/catalog", "/"):
        status, body = call(app.admin_only, path, **auth)
        assert (status, body["code"]) == (404, "not_found"), path


def test_an_unexpected_error_is_logged_once_with_its_request_id(app, caplog):
    """500 for the client; one ERROR line with the traceback and request_id; no token."""
    caplog.set_level(logging.INFO)
    status, body = call(
        app, "/_admin/backends", authorization=f"Bearer {ADMIN_TOKEN}", x_request_id="boom-1"
    )
    assert (status, body["code"], body["request_id"]) == (500, "internal_error", "boom-1")
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert getattr(error, FIELDS_ATTR) == {"request_id": "boom-1"}
    line = json.loads(JsonFormatter(redact=[ADMIN_TOKEN]).format(error))
    assert (line["request_id"], line["exc_type"]) == ("boom-1", "RuntimeError")
    assert "views are broken" in line["exc"]
    lines = "\n".join(JsonFormatter().format(record) for record in caplog.records)
    assert ADMIN_TOKEN not in lines
    assert lines.count("Traceback") == 1


def test_while_shedding_only_the_apps_own_endpoints_are_answered(app):
    """Documents, health and admin routes come before admission; everything else sheds."""
    for _ in range(app.admission.max_inflight):
        assert app.admission.try_enter()
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    assert call(app, "/healthz")[0] == 200
    assert call(app, "/_admin/endpoints", **auth)[0] == 200
    assert call(app, "/v1/catalog")[0] == 200
    for path in ("/v1/anything", "/v1/batch"):
        status, body = call(app, path)
        assert (status, body["code"]) == (503, "overloaded"), path
    assert app.admission.shed == 2


def test_a_draining_app_is_not_ready(app):
    assert call(app, "/readyz") == (200, {"ready": True, "draining": False})
    app.draining = True
    assert call(app, "/readyz") == (503, {"ready": False, "draining": True})
    assert app.draining
