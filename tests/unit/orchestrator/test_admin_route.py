"""The admin routes' bridge: which requests reach the admin handler, and what it is given."""

from __future__ import annotations

import io
import json
import logging

from stage_kit import Clock, Started, answer, observed, request

from orchestrator.frontend import problems
from orchestrator.frontend.admin_route import AdminRoute
from orchestrator.frontend.body import BodyReader
from orchestrator.ops.admin import AdminRequest, AdminResponse


class Handler:
    """An admin handler that keeps what it was asked, and answers with ``outcome``."""

    def __init__(self, outcome: object = None) -> None:
        self.outcome = outcome
        self.asked: list[AdminRequest] = []

    def handle(self, admin_request: AdminRequest) -> AdminResponse:
        self.asked.append(admin_request)
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return AdminResponse(200, {"body": admin_request.read_body()})


def _route(handler: Handler | None) -> AdminRoute:
    respond, _ = observed()
    clock = Clock()
    return AdminRoute(handler, BodyReader(1024, clock), respond, clock, body_timeout_s=5.0)


def _admin_request(**environ: object):
    posted = request(method="POST", path="/_admin/breakers/x")
    payload = json.dumps({"force": "open"}).encode()
    posted.environ = {
        **posted.environ,
        "HTTP_AUTHORIZATION": "Bearer t",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
        **environ,
    }
    return posted


def test_only_admin_paths_are_admin_routes():
    assert _route(Handler()).serve(Started(), request(path="/_adminx")) is None


def test_the_handler_gets_the_request_and_reads_the_body_only_when_it_asks():
    handler = Handler()
    started = Started()
    body = answer(_route(handler).serve(started, _admin_request()))
    assert (started.code, body) == (200, {"body": {"force": "open"}})
    (asked,) = handler.asked
    assert (asked.method, asked.path, asked.authorization, asked.request_id, asked.client) == (
        "POST",
        "/_admin/breakers/x",
        "Bearer t",
        "rid-1",
        "127.0.0.1",
    )


def test_not_served_here_or_without_a_handler_is_404_whatever_the_credentials():
    for route, served in ((_route(Handler()), False), (_route(None), True)):
        started = Started()
        body = answer(route.serve(started, _admin_request(), served=served))
        assert (started.code, body["code"]) == (404, "not_found")


def test_the_handlers_problem_is_answered_and_its_bug_is_a_logged_500(caplog):
    caplog.set_level(logging.INFO)
    started = Started()
    answer(_route(Handler(problems.forbidden())).serve(started, _admin_request()))
    assert started.code == 403
    broken = Started()
    body = answer(_route(Handler(RuntimeError("bug"))).serve(broken, _admin_request()))
    assert (broken.code, body["code"]) == (500, "internal_error")
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.getMessage() == "request rid-1: unhandled error"
