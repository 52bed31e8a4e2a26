"""The simulated services as a WSGI application answer what ``SimulatedApp.answer`` answers
the simulated server."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from backends.simulated import Fault, LatencyModel, SimulatedApp, World
from backends.simulated.handoff import Call
from backends.simulated.services import Services
from backends.simulated.store import Store
from backends.simulated.wsgi import RAW_PATH_KEY


@pytest.fixture(scope="module")
def world() -> World:
    return World(7)


def app(world: World) -> SimulatedApp:
    return SimulatedApp(Services(world, Store(7, clock=lambda: 1.0)), LatencyModel())


def wsgi(sim: SimulatedApp, method: str, path: str, query: str = "", body: bytes = b""):
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        started.update(status=status, headers=headers)

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_LENGTH": str(len(body)) if body else "",
        "wsgi.input": io.BytesIO(body),
    }
    chunks = list(sim(environ, start_response))
    return started["status"], started["headers"], b"".join(chunks), len(chunks)


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("GET", "/catalog/titles", "ids=t1,t2&fields=title", b""),
        ("GET", "/subscriber/members/m7", "", b""),
        ("PUT", "/bookmarks/m7/t9", "", b'{"position_s": 12}'),
        ("GET", "/nope", "", b""),
        ("GET", "/_health", "", b""),
        ("POST", "/catalog/titles", "ids=t1", b""),
    ],
)
def test_wsgi_answers_are_the_direct_answers(world, method, path, query, body):
    """Same status line, header fields and body either way."""
    status, headers, payload, _ = wsgi(app(world), method, path, query, body)
    reply = app(world).answer(Call(method, path, query, body))
    assert (status, headers, payload) == (reply.status_line, reply.fields(), reply.body)


def test_wsgi_reads_the_raw_path_when_the_server_gives_it(world):
    """An encoded "/" inside an id stays in its segment when the raw path is known."""
    sim = app(world)
    started: list[str] = []
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/catalog/titles/t1/../x",
        RAW_PATH_KEY: "/catalog/titles/t1%2F..%2Fx",
        "QUERY_STRING": "",
        "wsgi.input": io.BytesIO(b""),
    }
    body = b"".join(sim(environ, lambda status, _: started.append(status)))
    assert started == ["404 Not Found"]
    assert json.loads(body) == {"error": "unknown title"}


def test_a_drip_is_streamed_in_chunks_through_wsgi(world):
    """Under a drip fault the WSGI iterable yields the body in small chunks."""
    sim = app(world)
    sim.board.set("catalog", Fault(drip_ms=0.001))
    status, headers, payload, chunks = wsgi(sim, "GET", "/catalog/titles/t5")
    assert status == "200 OK"
    assert dict(headers)["Content-Length"] == str(len(payload))
    assert json.loads(payload)["id"] == "t5"
    assert chunks > 1
