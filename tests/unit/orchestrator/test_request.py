"""The request every stage shares: how one arrives, and request ids."""

from __future__ import annotations

import os

from stage_kit import metrics

from orchestrator.frontend.request import arrive, request_id


def test_a_request_arrives_with_its_method_path_and_the_devices_id():
    """Method and path from the environ (GET and / when missing or empty); a well-formed
    X-Request-Id is kept, anything else replaced."""
    pipeline = metrics().request()
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/x", "HTTP_X_REQUEST_ID": "dev-1"}
    request = arrive(environ, 5.0, pipeline)
    assert (request.request_id, request.method, request.path, request.started) == (
        "dev-1",
        "POST",
        "/v1/x",
        5.0,
    )
    assert request.environ is environ
    assert request.metrics is pipeline
    bare = arrive({"PATH_INFO": "", "HTTP_X_REQUEST_ID": "no spaces allowed"}, 0.0, pipeline)
    assert (bare.method, bare.path) == ("GET", "/")
    assert len(bare.request_id) == 32
    assert (bare.endpoint, bare.member_id, bare.extra_headers, bare.backend_calls) == (
        None,
        None,
        [],
        0,
    )


def test_generated_request_ids_are_unique_and_differ_in_a_forked_child():
    """Made ids are 32 hex digits, never repeat, and a forked worker does not replay its
    parent's sequence (gunicorn --preload forks after the app is built)."""
    made = {request_id(None) for _ in range(10_000)}
    assert len(made) == 10_000
    assert all(len(rid) == 32 and int(rid, 16) >= 0 for rid in made)
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through the pipe and exits
        os.write(writer, request_id(None).encode())
        os._exit(0)
    os.close(writer)
    parent_next = request_id(None)
    child_id = os.read(reader, 64).decode()
    os.close(reader)
    os.waitpid(child, 0)
    assert len(child_id) == 32
    assert child_id != parent_next


def test_a_devices_request_id_is_not_its_backend_calls_unless_trusted():
    """Finding 8: the device's X-Request-Id is the request's id (echoed, logged), but its
    backend calls carry a fresh one, unless server.trust_request_id; an id Frontdoor made
    is used for both."""
    pipeline = metrics().request()
    device = arrive({"HTTP_X_REQUEST_ID": "dev-1"}, 0.0, pipeline)
    assert device.request_id == "dev-1"
    assert device.backend_request_id != "dev-1"
    assert len(device.backend_request_id) == 32
    trusted = arrive({"HTTP_X_REQUEST_ID": "dev-1"}, 0.0, pipeline, trust_request_id=True)
    assert trusted.backend_request_id == "dev-1"
    made = arrive({}, 0.0, pipeline)
    assert made.backend_request_id == made.request_id
