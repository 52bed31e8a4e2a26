"""The device-facing side: the WSGI pipeline (``FrontdoorApp``), its HTTP servers and the
request protocol (``frontend.protocol``).

Public: ``__all__`` (and ``problems``, used as a module: ``problems.bad_request(...)``);
``gunicorn_worker`` is named by dotted path on gunicorn's command line; the other modules are
the pipeline's parts. New request handling is a stage: a module here with its own tests,
placed in the order ``app.py`` lists; a new error devices may see is a code in
``problems.CODES``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from orchestrator.frontend import problems
    from orchestrator.frontend.app import AppOptions, FrontdoorApp
    from orchestrator.frontend.auth import (
        Claims,
        InvalidTokenError,
        TokenSigner,
        bearer_token,
        secret_equals,
    )
    from orchestrator.frontend.enrichment import Enricher, EnrichmentError
    from orchestrator.frontend.httpserver import NoDelayWSGIServer
    from orchestrator.frontend.problems import Problem
    from orchestrator.frontend.server import AdminBindError, HttpServer

__all__ = [
    "AdminBindError",
    "AppOptions",
    "Claims",
    "Enricher",
    "EnrichmentError",
    "FrontdoorApp",
    "HttpServer",
    "InvalidTokenError",
    "NoDelayWSGIServer",
    "Problem",
    "TokenSigner",
    "bearer_token",
    "problems",
    "secret_equals",
]

# Lazy (PEP 562): importing the package imports no submodule, so not gevent's server or pykka
# before the process is patched.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "app": ("AppOptions", "FrontdoorApp"),
            "auth": ("Claims", "InvalidTokenError", "TokenSigner", "bearer_token", "secret_equals"),
            "enrichment": ("Enricher", "EnrichmentError"),
            "httpserver": ("NoDelayWSGIServer",),
            "problems": ("Problem",),
            "server": ("AdminBindError", "HttpServer"),
        },
        modules=("problems",),
    )
