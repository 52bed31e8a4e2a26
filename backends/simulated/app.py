"""The simulated services' application: route to the admin API or a service, and apply the
service's fault and latency on the way (refuse, capacity, hang, delay, error, malformed,
drip).

Under a ``capacity`` fault a request takes a place in the service's gate before anything
else (queueing in arrival order while the places are taken, or answered 503 "overloaded"
when the queue is full), and keeps it through the hang, the latency and the handler: a
service of capacity C and latency L serves about C / L requests a second, and the rest wait,
as behind a fixed pool of workers. The fault in force is read again once the request has its
place, since it may have changed while it waited.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import parse_qsl, unquote

import gevent

from backends.simulated.admin import ADMIN_PREFIXES, AdminApi
from backends.simulated.connection import ConnectionDropError, InFlight, peer_gone
from backends.simulated.control import CallCounter, FaultBoard, FaultSlot
from backends.simulated.exchange import Request, Response, encode, error
from backends.simulated.faults import LatencyModel
from backends.simulated.handoff import Call, Reply
from backends.simulated.reference import DEFAULT_SEED
from backends.simulated.services import Services
from backends.simulated.wsgi import StartResponse, respond

_log = logging.getLogger("frontdoor.simulated.app")

#: Longest a ``hang`` holds a request before dropping the connection.
DEFAULT_HANG_CAP_S = 300.0
#: Bytes per write when dripping a body.
DRIP_CHUNK_BYTES = 64
#: The answer when a capacity's queue is full: "overloaded", so a client does not retry.
OVERLOADED = Response(503, encode({"error": "overloaded"}), (("Retry-After", "1"),))


class SimulatedApp:
    """Admin API, per-service faults and latency, then the service: ``answer`` for the
    simulated server, and a WSGI application for any other."""

    def __init__(
        self,
        services: Services,
        latency: LatencyModel,
        *,
        seed: int = DEFAULT_SEED,
        hang_cap_s: float = DEFAULT_HANG_CAP_S,
    ) -> None:
        self.board = FaultBoard()
        self.counter = CallCounter()
        self.inflight = InFlight()
        self._services = services
        self._admin = AdminApi(self.board, self.counter)
        self._latency = latency
        self._hang_cap_s = hang_cap_s
        self._rng = random.Random(f"latency:{seed}")  # noqa: S311 - simulated latency, not security
        self._closing = False

    def open(self) -> None:
        """Serve normally (again): the state after construction."""
        self._closing = False

    def close(self) -> None:
        """Release every held request; from now on hangs drop their connection at once."""
        self._closing = True
        self.board.heal()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The same answers as a WSGI application, for any WSGI server."""
        return respond(self.answer, environ, start_response)

    def answer(self, call: Call) -> Reply:
        """Answer one request; ``ConnectionDropError`` means: drop the connection unanswered."""
        segments = _segments(call.path)
        head = segments[0] if segments else ""
        if head in ADMIN_PREFIXES:
            return _reply(self._admin.handle(_request(call, segments)), "admin")
        if head not in self.board:
            return _reply(error(404, "unknown service"), "none")
        self.counter.add(head)
        if self.board.slot(head).fault.refuse:
            raise ConnectionDropError(head)
        gate = self.board.gate(head)
        if not gate.enter():
            return _reply(OVERLOADED, head)
        try:
            return self._answer_service(head, call, segments)
        finally:
            gate.leave()

    def _answer_service(self, head: str, call: Call, segments: tuple[str, ...]) -> Reply:
        """The rest of ``answer``, holding a place of the service's capacity."""
        slot = self.board.slot(head)
        fault = slot.fault
        if fault.hang and not self._hang(slot, call):
            raise ConnectionDropError(head)
        self._delay(head, slot)
        if fault.error_rate and self._rng.random() < fault.error_rate:
            return _reply(error(503, "injected"), head)
        response = self._serve(head, _request(call, segments[1:]))
        if fault.malformed:
            # A strict prefix of a JSON object is never valid JSON.
            body = response.body
            response = Response(200, body[: max(1, len(body) // 2)], response.headers)
        if fault.drip_ms:
            chunks = _drip(response.body, fault.drip_ms, slot)
            return _reply(response, head, chunks)
        return _reply(response, head)

    def _serve(self, service: str, request: Request) -> Response:
        try:
            return self._services.handle(service, request)
        # A bug in a handler must still answer like a service (JSON, X-Service), not kill the
        # connection with the server's bare 500.
        except Exception:  # noqa: BLE001 - see above; logged with its traceback
            _log.exception("simulated %s failed", service)
            return error(500, "internal")

    def _hang(self, slot: FaultSlot, call: Call) -> bool:
        """Hold the request until released (True) or the client leaves or the cap passes."""
        sock = call.sock
        watcher = gevent.spawn(peer_gone, sock) if sock is not None else None
        slot.holding.set()
        try:
            waitables: list[Any] = [slot.released] if watcher is None else [slot.released, watcher]
            gevent.wait(waitables, timeout=self._hang_cap_s, count=1)
        finally:
            if watcher is not None:
                watcher.kill()
        return slot.released.is_set() and not self._closing

    def _delay(self, service: str, slot: FaultSlot) -> None:
        fault = slot.fault
        injected_ms = fault.latency_ms
        if fault.tail_percent and self._rng.random() * 100.0 < fault.tail_percent:
            injected_ms += fault.tail_ms
        delay_ms = self._latency.sample_ms(service, self._rng) + injected_ms
        if delay_ms <= 0:
            return
        if injected_ms:
            # Injected delays can be long: healing the fault ends them.
            slot.holding.set()
            slot.released.wait(delay_ms / 1000)
        else:
            gevent.sleep(delay_ms / 1000)


def _segments(path: str) -> tuple[str, ...]:
    if "%" not in path:  # nothing to unquote: what every client of the services sends
        return tuple(filter(None, path.split("/")))
    # Unquoted one segment at a time, so that an encoded "/" inside an id stays inside it.
    return tuple(unquote(part) for part in path.split("/") if part)


def _request(call: Call, segments: tuple[str, ...]) -> Request:
    query = dict(parse_qsl(call.query, keep_blank_values=True)) if call.query else {}
    return Request(call.method, segments, query, call.body)


def _reply(response: Response, service: str, chunks: Iterator[bytes] | None = None) -> Reply:
    return Reply(response.status, service, response.body, response.headers, chunks)


def _drip(body: bytes, interval_ms: float, slot: FaultSlot) -> Iterator[bytes]:
    """The body in small chunks, one per interval; the rest at once when the fault ends."""
    for start in range(0, len(body), DRIP_CHUNK_BYTES):
        if start:
            slot.holding.set()
            if slot.released.wait(interval_ms / 1000):
                yield body[start:]
                return
        yield body[start : start + DRIP_CHUNK_BYTES]
