"""A served app that can drain, for servers other than ``frontdoor serve`` (gunicorn's worker).

``DrainableApp`` wraps one ``Frontdoor``'s WSGI callable: it counts the requests in flight
(until their response is written), answers ``Connection: close`` once draining so that a
keep-alive client finishes its request and reconnects elsewhere, turns ``/readyz`` to 503,
and stops the Frontdoor's actors when its server is done. It also counts the requests
served, for a server that restarts after a number of them (gunicorn's ``max_requests``).
The server decides when: ``orchestrator/frontend/gunicorn_worker.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import gevent.event

from orchestrator.frontend.httpserver import ProtocolLimits
from orchestrator.ops.peers import WorkerDirectory
from orchestrator.runtime import Frontdoor

__all__ = ["DrainableApp", "InFlight"]

_WsgiApp = Callable[[Any, Any], Iterable[bytes]]


class InFlight:
    """WSGI middleware counting the requests in flight, until their response is written.

    While ``closing``, every response carries ``Connection: close``: a keep-alive client
    finishes its current request and reconnects elsewhere. Both servers drain with it:
    ``HttpServer`` (``frontdoor serve``) and ``DrainableApp`` (gunicorn).
    """

    __slots__ = ("_idle", "closing", "running")

    def __init__(self) -> None:
        self.running = 0
        self.closing = False
        self._idle = gevent.event.Event()
        self._idle.set()

    def wrap(self, app: _WsgiApp) -> _WsgiApp:
        """``app``, counted."""

        def counted(environ: Any, start_response: Any) -> Iterable[bytes]:
            if self.closing:
                start_response = _closing(start_response)
            self.running += 1
            self._idle.clear()
            try:
                result = app(environ, start_response)
            except BaseException:
                self._leave()
                raise
            return _Counted(result, self._leave)

        return counted

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False if ``timeout_s`` passed first."""
        return bool(self._idle.wait(max(0.0, timeout_s)))

    def _leave(self) -> None:
        self.running -= 1
        if self.running == 0:
            self._idle.set()


class DrainableApp:
    """``app`` (one of ``frontdoor``'s WSGI callables), counted and drainable."""

    __slots__ = ("_at_limit", "_counted", "_frontdoor", "_inflight", "_limit", "served")

    def __init__(self, frontdoor: Frontdoor, app: _WsgiApp) -> None:
        self._frontdoor = frontdoor
        self._inflight = InFlight()
        self._counted = self._inflight.wrap(app)
        self.served = 0
        self._limit = 0
        self._at_limit: Callable[[], None] | None = None

    @property
    def running(self) -> int:
        """Requests in flight."""
        return self._inflight.running

    @property
    def closing(self) -> bool:
        """Whether responses say ``Connection: close`` (draining)."""
        return self._inflight.closing

    @property
    def drain_s(self) -> float:
        """Seconds in-flight requests get to finish (``server.drain_s``)."""
        return self._frontdoor.settings.server.drain_s

    @property
    def drain_grace_s(self) -> float:
        """Seconds the listener keeps accepting after SIGTERM, ``/readyz`` already 503
        (``server.drain_grace_s``)."""
        return self._frontdoor.settings.server.drain_grace_s

    @property
    def protocol_limits(self) -> ProtocolLimits:
        """What the server enforces on request heads, and its refusal hook
        (``FrontdoorApp.protocol_limits``): read by the gunicorn worker's handler."""
        return self._frontdoor.app.protocol_limits

    def join_workers(self, directory: WorkerDirectory) -> None:
        """Speak for every worker of the instance on the admin routes
        (``Frontdoor.join_workers``)."""
        self._frontdoor.join_workers(directory)

    def at_request(self, count: int, then: Callable[[], None]) -> None:
        """Call ``then`` (once) when the ``count``-th request arrives."""
        self._limit = count
        self._at_limit = then

    def __call__(self, environ: Any, start_response: Any) -> Iterable[bytes]:
        """Serve one request, counted until its response is written."""
        self.served += 1
        if self.served == self._limit and self._at_limit is not None:
            self._at_limit()
        return self._counted(environ, start_response)

    def begin_drain(self, *, not_ready: bool = True) -> None:
        """From now on every response says ``Connection: close``; with ``not_ready``,
        ``/readyz`` answers 503 (a worker that restarts alone leaves readiness alone).
        Either way the live dashboard's streams end now rather than hold the drain."""
        self._inflight.closing = True
        if not_ready:
            self._frontdoor.app.draining = True
        dashboard = self._frontdoor.app.dashboard
        if dashboard is not None:
            dashboard.close()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is in flight; False if ``timeout_s`` passed first."""
        return self._inflight.wait_idle(timeout_s)

    def stop(self) -> None:
        """Stop the Frontdoor (reporting, actors, metrics), once its server has drained."""
        self._frontdoor.stop()


def _closing(start_response: Any) -> Any:
    def start(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
        return start_response(status, [*headers, ("Connection", "close")], *exc_info)

    return start


class _Counted:
    """A WSGI result whose ``close`` (called once it is written) counts it done, once."""

    __slots__ = ("_done", "_result")

    def __init__(self, result: Iterable[bytes], done: Callable[[], None]) -> None:
        self._result = result
        self._done: Callable[[], None] | None = done

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._result)

    def close(self) -> None:
        """Close the wrapped result, then count the request done (once)."""
        done, self._done = self._done, None
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            if done is not None:
                done()
