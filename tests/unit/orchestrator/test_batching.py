"""The batch endpoint: each call down the common stages, sharing its batch's scope; a call's
failure is its own reply."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from stage_kit import endpoint, observed

from actors.system import ActorSystem
from actors.testing import system_over
from backends.testing import FakeBackend
from orchestrator.frontend.admission import Admission
from orchestrator.frontend.auth import TokenSigner
from orchestrator.frontend.authentication import Authenticator
from orchestrator.frontend.batching import BatchEndpoint
from orchestrator.frontend.body import BodyReader
from orchestrator.frontend.deprecation import Deprecations
from orchestrator.frontend.plan_stage import PlanStage
from orchestrator.frontend.problems import Problem
from orchestrator.frontend.request import Request
from orchestrator.frontend.results import Results
from orchestrator.frontend.routing import Router
from orchestrator.frontend.scope import Scopes
from orchestrator.ops.access_log import FIELDS_ATTR
from orchestrator.plans import Auth, EndpointRegistry

SIGNER = TokenSigner(b"k" * 32, 3600)


class CountingSigner:
    """The real signer, counting verifications."""

    def __init__(self) -> None:
        self.verified = 0

    def verify(self, token: str) -> object:
        self.verified += 1
        return SIGNER.verify(token)


class BrokenSigner:
    """A signer with a bug: verifying raises what no stage expects."""

    verified = 0

    def verify(self, token: str) -> object:
        del token
        raise RuntimeError("signer bug")


ENDPOINTS = (
    endpoint(auth=Auth.MEMBER),
    endpoint(name="make", method="POST", path="/v1/things/make"),
    endpoint(name="open", path="/v1/things/open"),
)


class Parts:
    """A batch endpoint over one fake backend, and what a test looks at."""

    def __init__(self, system: ActorSystem, max_inflight: int = 8, signer: Any = None) -> None:
        self.admission = Admission(max_inflight)
        self.signer = CountingSigner() if signer is None else signer
        respond, observer = observed(*ENDPOINTS)
        del respond
        results = Results(SIGNER, Deprecations(ENDPOINTS))
        self.batch = BatchEndpoint(
            admission=self.admission,
            router=Router(EndpointRegistry(ENDPOINTS)),
            scopes=Scopes(system, ""),
            authenticator=Authenticator(self.signer),
            body=BodyReader(65_536, time.monotonic),
            plans=PlanStage(system, observer.windows, results, time.monotonic),
            observer=observer,
            clock=time.monotonic,
            max_calls=4,
            concurrency=2,
            deadline_ms=2000,
        )

    def post(self, *calls: dict[str, Any], method: str = "POST") -> tuple[int, Any]:
        raw = json.dumps({"requests": list(calls)}).encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": "/v1/batch",
            "HTTP_AUTHORIZATION": f"Bearer {SIGNER.issue('m1')}",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(raw)),
            "wsgi.input": io.BytesIO(raw),
        }
        batch = Request("b-1", method, "/v1/batch", time.monotonic(), environ=environ)
        return self.batch.serve(environ, batch)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend("things", lambda _request: {"name": "x"})


@pytest.fixture
def system(backend: FakeBackend) -> Iterator[ActorSystem]:
    started = system_over([backend], clock=time.monotonic)
    started.start()
    yield started
    started.stop()


def test_calls_are_answered_in_order_each_failure_in_its_place(system):
    status, body = Parts(system).post(
        {"id": "a", "path": "/v1/things/thing"},
        {"id": "b", "path": "/v1/nothing"},
        {"id": "c", "path": "/v1/things/thing", "body": {"x": 1}},
        {"id": "d", "method": "POST", "path": "/v1/things/make"},
    )
    assert status == 200
    a, b, c, d = body["responses"]
    assert a == {"id": "a", "status": 200, "body": {"name": "x", "meta": {"degraded": []}}}
    assert (b["status"], b["problem"]["code"], b["problem"]["request_id"]) == (
        404,
        "not_found",
        "b-1.1",
    )
    assert (c["status"], c["problem"]["code"]) == (400, "invalid_batch")
    assert d["status"] == 200  # an endpoint that takes a body gets {} when none is given
    assert body["meta"] == {"calls": 4, "failed": 2}


def test_calls_share_one_verification_and_identical_reads(system, backend):
    parts = Parts(system)
    _, body = parts.post(*({"id": f"c{i}", "path": "/v1/things/thing"} for i in range(3)))
    assert [reply["status"] for reply in body["responses"]] == [200, 200, 200]
    assert parts.signer.verified == 1
    assert backend.calls == 1


def test_each_call_is_admitted_like_a_request(system):
    parts = Parts(system, max_inflight=1)
    parts.admission.try_enter()  # the batch's own request holds the only place
    _, body = parts.post({"id": "a", "path": "/v1/things/thing"})
    (reply,) = body["responses"]
    assert (reply["status"], reply["problem"]["code"]) == (503, "overloaded")
    parts.admission.leave()
    assert parts.admission.inflight == 0


def test_a_bug_in_one_call_is_its_500_logged_with_its_id(system, caplog):
    caplog.set_level(logging.INFO)
    _, body = Parts(system, signer=BrokenSigner()).post(
        {"id": "a", "path": "/v1/things/thing"}, {"id": "b", "path": "/v1/things/open"}
    )
    broken, fine = body["responses"]
    assert (broken["status"], broken["problem"]["code"], fine["status"]) == (
        500,
        "internal_error",
        200,
    )
    (error,) = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert error.getMessage() == "request b-1.0: unhandled error"
    assert getattr(error, FIELDS_ATTR) == {"request_id": "b-1.0"}


def test_a_batch_is_posted(system):
    with pytest.raises(Problem) as caught:
        Parts(system).post({"id": "a", "path": "/v1/things/thing"}, method="GET")
    assert caught.value.headers["Allow"] == "POST"
