"""The gevent WSGI server's lifecycle: listen, serve, and drain on SIGTERM/SIGINT.

Draining (``stop``): ``/readyz`` turns 503 and the device listener stops accepting
(``begin_drain``); responses from then on carry ``Connection: close``; requests in flight
get up to ``drain_s`` to finish; then idle keep-alive connections are closed, the admin
listener stops and the actors stop, so a rolling restart loses nothing. With
``drain_grace_s`` the listener keeps accepting (and serving, with ``Connection: close``) that
long after ``/readyz`` turned 503, so that a load balancer's health check takes the
instance out before any connection is refused or closed (docs/load-balancer.md).

With ``admin_address`` the admin routes get a listener of their own, which must be on a
loopback address; the device port then answers ``/_admin/*`` with 404.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
from collections.abc import Callable, Iterable
from typing import Any

import gevent
import gevent.event
import gevent.pool

from orchestrator.frontend.connections import ConnectionLimits
from orchestrator.frontend.draining import InFlight
from orchestrator.frontend.httpserver import NoDelayWSGIServer
from orchestrator.runtime import Frontdoor

log = logging.getLogger("frontdoor.server")

_WsgiApp = Callable[[Any, Any], Iterable[bytes]]


class AdminBindError(ValueError):
    """The admin listener was asked to bind a non-loopback address, or the device port."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback IP literal (names are refused: they resolve anywhere)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HttpServer:
    """Serves one ``Frontdoor`` on host:port until told to stop.

    ``admin_address``: a loopback (host, port) on which ``/_admin/*`` is served alone; None
    serves admin routes on the device port. ``AdminBindError`` for any other address.
    ``connections``: the caps on open device connections (``frontend/connections.py``).
    """

    def __init__(
        self,
        frontdoor: Frontdoor,
        host: str,
        port: int,
        drain_s: float,
        *,
        admin_address: tuple[str, int] | None = None,
        connections: ConnectionLimits | None = None,
        drain_grace_s: float = 0.0,
    ) -> None:
        self.frontdoor = frontdoor
        #: Seconds the listener stays open once draining (``/readyz`` already 503).
        self.drain_grace_s = drain_grace_s
        #: Caps on open device connections (the admin listener has none); None: uncapped.
        self.connections = connections
        self.drain_s = drain_s
        self._stopped = gevent.event.Event()
        self._grace_over = gevent.event.Event()
        self._stopping = False
        self._requests = InFlight()
        app = frontdoor.app
        self._admin: NoDelayWSGIServer | None = None
        if admin_address is not None:
            admin_host, admin_port = admin_address
            if not is_loopback(admin_host):
                raise AdminBindError(
                    f"the admin listener binds loopback addresses only, not {admin_host!r}"
                )
            if admin_port and admin_port == port:
                raise AdminBindError(f"the admin listener needs a port other than {port}")
            self._admin = self._listener(admin_address, app.admin_only)
            device: _WsgiApp = app.device_only
        else:
            device = app
        self._wsgi = self._listener((host, port), device, connections)

    def _listener(
        self,
        address: tuple[str, int],
        app: _WsgiApp,
        connections: ConnectionLimits | None = None,
    ) -> NoDelayWSGIServer:
        # A pool (unbounded: ``connections`` caps the device listener, refusing at once
        # rather than leaving clients in the backlog) so that stopping can close the
        # connections left open.
        return NoDelayWSGIServer(
            address,
            self._requests.wrap(app),
            spawn=gevent.pool.Pool(),
            log=None,
            error_log=log,
            connections=connections,
            protocol_limits=self.frontdoor.app.protocol_limits,
        )

    @property
    def url(self) -> str:
        """The device-facing base URL (real port, even when asked for port 0)."""
        return _url(self._wsgi)

    @property
    def admin_url(self) -> str | None:
        """The admin listener's base URL; None when admin routes are on the device port."""
        return None if self._admin is None else _url(self._admin)

    def start(self) -> None:
        """Start the actors and begin accepting connections (admin listener first)."""
        self.frontdoor.start()
        if self._admin is not None:
            self._admin.start()
        try:
            self._wsgi.start()
        except BaseException:
            if self._admin is not None:  # no admin port left open for a server that failed
                self._admin.stop(timeout=0)
            raise

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT drain and stop the server."""
        for signum in (signal.SIGTERM, signal.SIGINT):
            gevent.signal_handler(signum, lambda: gevent.spawn(self.stop))

    def wait(self) -> None:
        """Block this greenlet until the server has stopped."""
        self._stopped.wait()

    def begin_drain(self) -> None:
        """Turn ``/readyz`` to 503 and stop accepting device connections; returns at once.

        Requests in flight, and new ones on connections already open, are still served
        (with ``Connection: close``). The admin listener keeps serving until ``stop`` ends.
        With ``drain_grace_s`` the listener stays open (new connections served the same
        way) until ``stop`` has waited that long.
        """
        if self.frontdoor.app.draining:
            return
        self.frontdoor.app.draining = True
        self._requests.closing = True
        if not self.drain_grace_s:
            self._wsgi.close()

    def stop(self) -> None:
        """Drain: not ready, stop accepting, finish in-flight requests (up to ``drain_s``),
        close what is left, stop actors. A second call returns at once, ending the grace
        (``drain_grace_s``) if it is still running: a second SIGTERM or Ctrl-C means now."""
        if self._stopping:
            self._grace_over.set()
            return
        self._stopping = True
        self.begin_drain()
        if self.drain_grace_s:
            log.info("draining: /readyz is 503, accepting for %.1f s more", self.drain_grace_s)
            self._grace_over.wait(self.drain_grace_s)  # balancers' checks see the 503 meanwhile
            self._wsgi.close()
        log.info("draining: waiting up to %.1f s for in-flight requests", self.drain_s)
        if not self._requests.wait_idle(self.drain_s):
            log.warning(
                "drain: %d requests still running after %.1f s; cutting them off",
                self._requests.running,
                self.drain_s,
            )
        # Every request has answered (or ran out of time): what is left is idle keep-alive
        # connections, closed now rather than after a client's idea of a timeout.
        self._wsgi.stop(timeout=0)
        if self._admin is not None:
            self._admin.stop(timeout=0)
        self.frontdoor.stop()
        self._stopped.set()


def _url(server: NoDelayWSGIServer) -> str:
    host, port = server.address[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
