"""The live dashboard's routes on the admin listener: the page, its script and style, and
its stream of snapshots (``/_admin/stream``, Server-Sent Events).

The page, script and style are static files with no secret in them: served to anyone who
reaches the admin listener (loopback only when it has a port of its own), GET only, under
a strict Content-Security-Policy. The stream needs the admin credential, sent as
``Authorization: Bearer``: the page reads the stream with ``fetch()`` rather than
``EventSource`` precisely so that the token never goes in a URL (browser history, proxies'
and servers' logs).

The stream is a WSGI response that yields one ``snapshot`` event at once and then one a
second (``interval_s``), sleeping on a gevent event between them, for at most
``lifetime_s`` (the page reconnects). It ends early when the server starts draining
(``close``), and when the client goes away (pywsgi's write fails and closes the
generator). Like every admin route it is answered before admission: it holds no admission
slot and, having no endpoint, counts in no endpoint's metrics or window. Its access line is
written when the stream starts, its latency the time to its headers (a 10-minute "latency"
would read as a slow request).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final

import gevent.event

from orchestrator.frontend import problems
from orchestrator.frontend.observe import Observer
from orchestrator.frontend.request import Request, StartResponse
from orchestrator.frontend.respond import STATUS_LINES, Document, Responder, encode_json
from orchestrator.ops.admin import ADMIN_PREFIX, AdminHandler, AdminRequest
from orchestrator.ops.dashboard import assets, sse
from orchestrator.ops.dashboard.snapshot import DashboardSnapshot

__all__ = ["STREAM_PATH", "DashboardRoute"]

STREAM_PATH: Final = f"{ADMIN_PREFIX}/stream"
_STATIC_HEADERS: Final = (
    ("Content-Security-Policy", assets.CONTENT_SECURITY_POLICY),
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
#: How long the browser waits before reconnecting after the stream broke.
_RETRY_MS: Final = 2000


class DashboardRoute:
    """Serves the dashboard's files and its stream; ``close`` ends every stream."""

    __slots__ = (
        "_clock",
        "_closing",
        "_documents",
        "_handler",
        "_idle",
        "_interval_s",
        "_lifetime_s",
        "_observer",
        "_respond",
        "_snapshot",
        "streams",
    )

    def __init__(
        self,
        handler: AdminHandler,
        snapshot: DashboardSnapshot,
        respond: Responder,
        observer: Observer,
        clock: Callable[[], float],
        *,
        interval_s: float = 1.0,
        lifetime_s: float = 600.0,
        files: Callable[[assets.Asset], bytes] = assets.load,
    ) -> None:
        self._handler = handler
        self._snapshot = snapshot
        self._respond = respond
        self._observer = observer
        self._clock = clock
        self._interval_s = interval_s
        self._lifetime_s = lifetime_s
        self._closing = gevent.event.Event()
        #: Streams open now; ``_idle`` is set while there are none.
        self.streams = 0
        self._idle = gevent.event.Event()
        self._idle.set()
        self._documents: Mapping[str, Document] = {
            asset.path: Document(asset.content_type, files(asset), _STATIC_HEADERS)
            for asset in assets.ASSETS
        }

    def close(self) -> None:
        """End every stream at its next wake-up (the server drains); new ones end at once."""
        self._closing.set()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no stream is open; False if ``timeout_s`` passed first."""
        return bool(self._idle.wait(max(0.0, timeout_s)))

    def serve(
        self, start_response: StartResponse, request: Request
    ) -> Iterator[bytes] | list[bytes] | None:
        """The response for a dashboard path; None for any other path."""
        document = self._documents.get(request.path)
        if document is not None:
            return self._respond.document(start_response, request, document)
        if request.path != STREAM_PATH:
            return None
        environ = request.environ
        try:
            self._handler.authenticate(
                AdminRequest(
                    method=request.method,
                    path=request.path,
                    authorization=environ.get("HTTP_AUTHORIZATION"),
                    request_id=request.request_id,
                    client=environ.get("REMOTE_ADDR"),
                    read_body=dict,
                )
            )
            if request.method != "GET":
                raise problems.method_not_allowed(("GET",))
        except problems.Problem as problem:
            return self._respond.problem(start_response, request, problem)
        start_response(
            STATUS_LINES[200],
            [
                ("Content-Type", "text/event-stream; charset=utf-8"),
                ("Cache-Control", "no-store"),
                ("X-Accel-Buffering", "no"),
                ("X-Request-Id", request.request_id),
            ],
        )
        self._observer.finished(request, 200)
        return self._events()

    def _events(self) -> Iterator[bytes]:
        """The stream's body. A client gone makes pywsgi's write fail and close this
        generator (``GeneratorExit`` at its ``yield``): the ``finally`` counts it closed."""
        ends = self._clock() + self._lifetime_s
        self.streams += 1
        self._idle.clear()
        try:
            first = True
            while not self._closing.is_set():
                payload = encode_json(self._snapshot.snapshot())
                yield sse.event(payload, name="snapshot", retry_ms=_RETRY_MS if first else None)
                first = False
                left = ends - self._clock()
                if left <= 0 or self._closing.wait(min(self._interval_s, left)):
                    break
            reason = "draining" if self._closing.is_set() else "lifetime"
            yield sse.event(encode_json({"reason": reason}), name="end")
        finally:
            self.streams -= 1
            if not self.streams:
                self._idle.set()
