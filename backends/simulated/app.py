"""The WSGI application of the simulated services: route to the admin API or a service, and
apply the service's fault and latency on the way (refuse, hang, delay, error, malformed, drip).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, unquote

import gevent

from backends.simulated.admin import ADMIN_PREFIXES, AdminApi
from backends.simulated.connection import (
    RAW_PATH_KEY,
    SOCKET_KEY,
    ConnectionDropError,
    InFlight,
    peer_gone,
)
from backends.simulated.control import CallCounter, FaultBoard, FaultSlot
from backends.simulated.exchange import MAX_BODY_BYTES, Request, Response, error
from backends.simulated.faults import LatencyModel
from backends.simulated.reference import DEFAULT_SEED
from backends.simulated.services import Services

_log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]

#: Longest a ``hang`` holds a request before dropping the connection.
DEFAULT_HANG_CAP_S = 300.0
#: Bytes per write when dripping a body.
DRIP_CHUNK_BYTES = 64
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class SimulatedApp:
    """The WSGI application: admin API, per-service faults and latency, then the service."""

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
        segments = _segments(environ)
        head = segments[0] if segments else ""
        if head in ADMIN_PREFIXES:
            response = self._admin.handle(_request(environ, segments))
            return _send(start_response, response, "admin")
        if head not in self.board:
            return _send(start_response, error(404, "unknown service"), "none")
        self.counter.add(head)
        slot = self.board.slot(head)
        fault = slot.fault
        if fault.refuse:
            raise ConnectionDropError(head)
        if fault.hang and not self._hang(slot, environ):
            raise ConnectionDropError(head)
        self._delay(head, slot)
        if fault.error_rate and self._rng.random() < fault.error_rate:
            return _send(start_response, error(503, "injected"), head)
        response = self._serve(head, environ, segments[1:])
        body = response.body
        if fault.malformed:
            # A strict prefix of a JSON object is never valid JSON.
            response, body = Response(200, body, response.headers), body[: max(1, len(body) // 2)]
        if fault.drip_ms:
            chunks = _drip(body, fault.drip_ms, slot)
            return _send(start_response, response, head, body, chunks)
        return _send(start_response, response, head, body)

    def _serve(self, service: str, environ: dict[str, Any], segments: tuple[str, ...]) -> Response:
        try:
            return self._services.handle(service, _request(environ, segments))
        # A bug in a handler must still answer like a service (JSON, X-Service), not kill the
        # connection with pywsgi's bare 500.
        except Exception:  # noqa: BLE001 - see above; logged with its traceback
            _log.exception("simulated %s failed", service)
            return error(500, "internal")

    def _hang(self, slot: FaultSlot, environ: dict[str, Any]) -> bool:
        """Hold the request until released (True) or the client leaves or the cap passes."""
        sock = environ.get(SOCKET_KEY)
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
        delay_ms = self._latency.sample_ms(service, self._rng) + slot.fault.latency_ms
        if delay_ms <= 0:
            return
        if slot.fault.latency_ms:
            # Injected delays can be long: healing the fault ends them.
            slot.holding.set()
            slot.released.wait(delay_ms / 1000)
        else:
            gevent.sleep(delay_ms / 1000)


def _segments(environ: dict[str, Any]) -> tuple[str, ...]:
    raw = environ.get(RAW_PATH_KEY)
    if raw is None:  # another server: PATH_INFO is all there is
        path: str = environ.get("PATH_INFO", "")
        raw = path.encode("latin-1").decode("utf-8", "replace")
    return tuple(unquote(part) for part in raw.split("/") if part)


def _request(environ: dict[str, Any], segments: tuple[str, ...]) -> Request:
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    return Request(environ["REQUEST_METHOD"], segments, query, _body(environ))


def _body(environ: dict[str, Any]) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    if length > 0:
        return bytes(stream.read(min(length, MAX_BODY_BYTES + 1)))
    if environ.get("wsgi.input_terminated"):  # chunked: read up to one byte past the cap
        return bytes(stream.read(MAX_BODY_BYTES + 1))
    return b""


def _send(
    start_response: StartResponse,
    response: Response,
    service: str,
    body: bytes | None = None,
    chunks: Iterator[bytes] | None = None,
) -> Iterable[bytes]:
    """Start the response; ``body`` overrides the response's, ``chunks`` streams it."""
    payload = response.body if body is None else body
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        ("X-Service", service),
        *response.headers,
    ]
    start_response(_STATUS_LINES.get(response.status, f"{response.status} Unknown"), headers)
    return [payload] if chunks is None else chunks


def _drip(body: bytes, interval_ms: float, slot: FaultSlot) -> Iterator[bytes]:
    """The body in small chunks, one per interval; the rest at once when the fault ends."""
    for start in range(0, len(body), DRIP_CHUNK_BYTES):
        if start:
            slot.holding.set()
            if slot.released.wait(interval_ms / 1000):
                yield body[start:]
                return
        yield body[start : start + DRIP_CHUNK_BYTES]
