"""Frontdoor's gunicorn worker class:
``gunicorn -k orchestrator.frontend.gunicorn_worker.FrontdoorWorker orchestrator.wsgi:application``.

gunicorn's ``gevent_pywsgi`` worker (gevent's pywsgi server, the one ``frontdoor serve``
runs) with the request handler of ``frontdoor serve``
(``orchestrator/frontend/httpserver.py``: the strict,
bounded header parser and a ``Date`` made once a second) and ``TCP_NODELAY`` on every
accepted connection. Measured with ``benchmarks/scaling.py``: about 7% less CPU per request
than ``-k gevent``, whose HTTP parser is gunicorn's own, in pure Python. gunicorn's access
log still works when configured (``--access-logfile``); when it is off, as by default, no
record is built for it (Frontdoor writes its own access line).

Draining. gunicorn's own gevent worker, on SIGTERM, stops accepting and waits until every
connection is gone, so one idle keep-alive connection holds it until gunicorn's graceful
timeout (30 s), and Frontdoor never learns it is stopping. This worker drains the
``DrainableApp`` the gunicorn target serves (``orchestrator/wsgi.py``) as ``frontdoor
serve`` does: ``/readyz`` turns 503 and its listener closes at once; responses say
``Connection: close``; with ``server.drain_grace_s`` the worker keeps accepting (and
answering, ``/readyz`` already 503) that long first, so that a load balancer's checks take
the instance out before connections are refused; requests in flight get up to
``server.drain_s`` to finish;
connections that stay idle for ``IDLE_LINGER_S`` are closed (a kept-alive client that sends
meanwhile is served, with ``Connection: close``); then the actors stop and the worker
exits. ``max_requests`` restarts (counted here: gunicorn counts them only for its own
parser) drain the same way, leaving readiness alone.

One instance, one view. Each worker joins the instance's worker directory
(``orchestrator/ops/peers.py``, keyed by the master's pid) when it loads the app, so
``/_admin/*`` and the live dashboard answer for every worker, whichever worker gets the
request, and a breaker force reaches every worker, including those started later.

Import it only under gunicorn (the ``gunicorn`` extra): it imports gunicorn.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Final

import gevent
import gevent.event
from gevent.pool import Pool
from gunicorn.http.wsgi import base_environ
from gunicorn.sock import ssl_context
from gunicorn.workers.ggevent import VERSION, GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer

from orchestrator.frontend.connections import installed
from orchestrator.frontend.draining import DrainableApp
from orchestrator.frontend.httpserver import LeanWSGIHandler, NoDelayWSGIServer
from orchestrator.ops.peers import WorkerDirectory

__all__ = ["IDLE_LINGER_S", "FrontdoorHandler", "FrontdoorServer", "FrontdoorWorker"]

log = logging.getLogger("frontdoor.gunicorn")

#: How long a drain leaves connections that were idle when it began: a keep-alive client
#: that sends on one meanwhile is answered (``Connection: close``); one still idle after it
#: has been quiet long enough not to be racing the close.
IDLE_LINGER_S: Final = 0.5


class FrontdoorHandler(PyWSGIHandler, LeanWSGIHandler):  # type: ignore[misc] # untyped bases
    """gunicorn's environ additions (``gunicorn.sock``, ``RAW_URI``), Frontdoor's parser,
    framing, timeouts and refusals (``frontend/httpserver.py``), with the limits of the
    loaded app (``NoDelayWSGIServer`` reads its ``protocol_limits``)."""

    def log_request(self) -> None:
        """gunicorn's access record, built only when its access log is on."""
        if getattr(self.server.log, "access_log_enabled", True):
            super().log_request()


class FrontdoorServer(PyWSGIServer, NoDelayWSGIServer):  # type: ignore[misc] # untyped bases
    """pywsgi under gunicorn as ``frontdoor serve`` runs it (``frontend/httpserver.py``):
    Nagle's algorithm off, and the caps on open connections the gunicorn target installed
    (``frontend/connections.py``), shared by the worker's listeners.

    The caps stay below the worker's pool (``--worker-connections``): a full pool stops the
    accept loop, leaving new clients in the backlog, where a cap refuses them at once.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("connections", installed())
        super().__init__(*args, **kwargs)
        limits, size = self.connections, getattr(self.pool, "size", None)
        if limits is not None and size is not None and limits.max_total >= size:
            limits.max_total = max(1, size - 1)


class FrontdoorWorker(GeventPyWSGIWorker):  # type: ignore[misc] # gunicorn ships no type hints
    """``-k orchestrator.frontend.gunicorn_worker.FrontdoorWorker``: one per core."""

    server_class = FrontdoorServer
    wsgi_handler = FrontdoorHandler
    # gunicorn's Worker sets these; declared for the type checker.
    alive: bool
    nr: int
    max_requests: int
    ppid: int

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drainable: DrainableApp | None = None
        self._stopping: gevent.event.Event | None = None

    def load_wsgi(self) -> None:
        """Load the app; a ``DrainableApp`` is drained on SIGTERM and after ``max_requests``."""
        super().load_wsgi()
        if not isinstance(self.wsgi, DrainableApp):
            return
        self._drainable = self.wsgi
        self._stopping = gevent.event.Event()
        directory = WorkerDirectory.for_master(self.ppid)
        try:
            self._drainable.join_workers(directory)
        except OSError as exc:
            log.error(  # noqa: TRY400 - one line: the cause is in it
                "admin routes speak for this worker only: cannot share %s: %s", directory.path, exc
            )
        restart = ""
        if self.max_requests < sys.maxsize:
            self._drainable.at_request(self.max_requests, self._restart)
            restart = f"; restarts after {self.max_requests} requests"
        log.info(
            "worker serving: drains in up to %.1f s on SIGTERM%s", self._drainable.drain_s, restart
        )
        needed = self._drainable.drain_grace_s + self._drainable.drain_s + 1
        if needed > self.cfg.graceful_timeout:
            log.warning(
                "server.drain_grace_s + server.drain_s + 1 s (%.1f s) exceeds gunicorn's "
                "--graceful-timeout (%s s): requests still running then are killed",
                needed,
                self.cfg.graceful_timeout,
            )

    def handle_exit(self, sig: int, frame: Any) -> None:
        """SIGTERM: stop being alive, and wake the run loop (from a greenlet, not the
        signal handler)."""
        super().handle_exit(sig, frame)
        if self._stopping is not None:
            gevent.spawn(self._stopping.set)

    def run(self) -> None:
        """Serve until told to stop, then drain (gunicorn's own loop for any other app)."""
        drainable, stopping = self._drainable, self._stopping
        if drainable is None or stopping is None:
            super().run()
            return
        servers = [self._server(sock) for sock in self.sockets]
        for server in servers:
            server.start()
        while self.alive:
            self.notify()
            stopping.wait(1.0)
        self._drain(drainable, servers, restarting=self.nr >= self.max_requests)

    def _server(self, sock: Any) -> Any:
        """A pywsgi server on one of gunicorn's listeners, as gunicorn's worker makes it."""
        sock.setblocking(1)
        environ = base_environ(self.cfg)
        environ.update({"wsgi.multithread": True, "SERVER_SOFTWARE": VERSION})
        ssl_args = {"ssl_context": ssl_context(self.cfg)} if self.cfg.is_ssl else {}
        return self.server_class(
            sock,
            application=self.wsgi,
            spawn=Pool(self.worker_connections),
            log=self.log,
            handler_class=self.wsgi_handler,
            environ=environ,
            **ssl_args,
        )

    def _restart(self) -> None:
        """The ``max_requests``-th request arrived: drain and exit; the master replaces us."""
        self.nr = self.max_requests
        if self.alive:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            if self._stopping is not None:
                self._stopping.set()

    def _drain(self, app: DrainableApp, servers: list[Any], *, restarting: bool) -> None:
        app.begin_drain(not_ready=not restarting)
        if app.drain_grace_s and not restarting:
            # Not ready, still accepting: the balancer's checks see the 503 meanwhile. (A
            # max_requests restart leaves readiness alone: the other workers serve.)
            log.info("draining: /readyz is 503, accepting for %.1f s more", app.drain_grace_s)
            self.notify()
            gevent.sleep(app.drain_grace_s)
        started = time.monotonic()
        deadline = started + app.drain_s
        for server in servers:
            server.close()  # stop accepting: new connections go to the other workers
        log.info(
            "draining: waiting up to %.1f s for %d requests in flight%s",
            app.drain_s,
            app.running,
            " (max_requests restart)" if restarting else "",
        )
        self.notify()
        # Requests in flight finish; keep-alive clients then close (Connection: close).
        app.wait_idle(deadline - time.monotonic())
        linger_end = min(started + IDLE_LINGER_S, deadline)
        for server in servers:
            server.pool.join(timeout=max(0.0, linger_end - time.monotonic()))
        self.notify()
        # A request that arrived on a kept-alive connection while lingering is answered.
        if not app.wait_idle(deadline - time.monotonic()):
            log.warning(
                "drain: %d requests still running after %.1f s; cutting them off",
                app.running,
                app.drain_s,
            )
        open_connections = sum(server.pool.size - server.pool.free_count() for server in servers)
        for server in servers:
            server.stop(timeout=0)  # what is left is idle: close it now
        app.stop()
        log.info(
            "drained in %.2f s (%d idle connections closed)",
            time.monotonic() - started,
            open_connections,
        )
