"""The gevent WSGI server's lifecycle: listen, serve, and drain on SIGTERM/SIGINT.

Draining turns ``/readyz`` to 503 first, stops accepting, lets in-flight requests finish
(up to ``drain_s``), then stops the actors, so a rolling restart loses nothing.
"""

from __future__ import annotations

import logging
import signal

import gevent
import gevent.event

from backends.httpserver import NoDelayWSGIServer
from orchestrator.runtime import Frontdoor

log = logging.getLogger(__name__)


class HttpServer:
    """Serves one ``Frontdoor`` on host:port until told to stop."""

    def __init__(self, frontdoor: Frontdoor, host: str, port: int, drain_s: float) -> None:
        self.frontdoor = frontdoor
        self.drain_s = drain_s
        self._stopped = gevent.event.Event()
        self._wsgi = NoDelayWSGIServer((host, port), frontdoor.app, log=None, error_log=log)

    @property
    def url(self) -> str:
        """The base URL it listens on (real port, even when asked for port 0)."""
        host, port = self._wsgi.address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        """Start the actors and begin accepting connections."""
        self.frontdoor.start()
        self._wsgi.start()

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain and stop the server."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, lambda: gevent.spawn(self.stop))

    def wait(self) -> None:
        """Block this greenlet until the server has stopped."""
        self._stopped.wait()

    def stop(self) -> None:
        """Drain: not ready, stop accepting, finish in-flight requests, stop actors."""
        if self._stopped.is_set() or self.frontdoor.app.draining:
            return
        self.frontdoor.app.draining = True
        log.info("draining: waiting up to %.1f s for in-flight requests", self.drain_s)
        self._wsgi.stop(timeout=self.drain_s)
        self.frontdoor.stop()
        self._stopped.set()
