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

Import it only under gunicorn (the ``gunicorn`` extra): it imports gunicorn.
"""

from __future__ import annotations

import socket
from typing import Any

from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler, PyWSGIServer

from orchestrator.frontend.httpserver import LeanWSGIHandler

__all__ = ["FrontdoorHandler", "FrontdoorServer", "FrontdoorWorker"]


class FrontdoorHandler(PyWSGIHandler, LeanWSGIHandler):  # type: ignore[misc] # untyped bases
    """gunicorn's environ additions (``gunicorn.sock``, ``RAW_URI``), Frontdoor's parser."""

    def log_request(self) -> None:
        """gunicorn's access record, built only when its access log is on."""
        if getattr(self.server.log, "access_log_enabled", True):
            super().log_request()


class FrontdoorServer(PyWSGIServer):  # type: ignore[misc] # gunicorn ships no type hints
    """pywsgi under gunicorn, with Nagle's algorithm off (``frontend/httpserver.py``)."""

    def handle(self, sock: socket.socket, address: Any) -> None:
        """Set TCP_NODELAY, then serve the connection."""
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().handle(sock, address)


class FrontdoorWorker(GeventPyWSGIWorker):  # type: ignore[misc] # gunicorn ships no type hints
    """``-k orchestrator.frontend.gunicorn_worker.FrontdoorWorker``: one per core."""

    server_class = FrontdoorServer
    wsgi_handler = FrontdoorHandler
