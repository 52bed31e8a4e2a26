"""The gunicorn target:
``gunicorn -k orchestrator.frontend.gunicorn_worker.FrontdoorWorker orchestrator.wsgi:application``
(``-k gevent`` works too, at ~7% more CPU per request, but does not drain).

gunicorn's gevent worker patches the process before importing this module. This is the
only module-level app: settings come from ``FRONTDOOR_*`` variables (and
``FRONTDOOR_CONFIG``, a TOML path); backends must run elsewhere (``bin/fake-backends``), so
this is never the embedded demo: without configured secrets (or ``auth.demo`` opting in)
it refuses to start, with one error line and gunicorn's "App failed to load" exit status.
Configuration warnings are logged as under ``frontdoor serve``. gunicorn gives one
listener: with ``server.admin_port`` set, admin routes are not served
(``Frontdoor.single_listener_app``). Frontdoor's own logs are JSON lines on stderr, as under
``frontdoor serve`` (gunicorn configures only its own loggers). ``application`` is a
``DrainableApp``: Frontdoor's worker class drains it on SIGTERM and on ``max_requests``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Final

from orchestrator.config import ConfigError, load_settings, require_secrets
from orchestrator.frontend.connections import budgeted, install
from orchestrator.frontend.draining import DrainableApp
from orchestrator.ops import gc_tuning
from orchestrator.ops.access_log import install_json_logging, log_greenlet_errors
from orchestrator.runtime import Frontdoor

__all__ = ["APP_LOAD_ERROR", "application"]

#: gunicorn's exit status for an application that cannot load: the master stops instead of
#: booting workers that would fail the same way, over and over.
APP_LOAD_ERROR: Final = 4


def _application() -> DrainableApp:
    try:
        settings = load_settings(os.environ.get("FRONTDOOR_CONFIG"))
        require_secrets(settings, embedded_demo=False)
    except ConfigError as exc:
        print(f"frontdoor: configuration error: {exc}", file=sys.stderr, flush=True)  # noqa: T201
        raise SystemExit(APP_LOAD_ERROR) from None
    install_json_logging(
        settings.logging.level, redact=(settings.auth.admin_token, settings.auth.token_secret)
    )
    logging.captureWarnings(capture=True)
    log_greenlet_errors()
    log = logging.getLogger("frontdoor")
    for warning in settings.warnings:
        log.warning("%s", warning)
    try:
        frontdoor = Frontdoor.build(settings)
        # Device connections get the descriptors backend calls leave (or DescriptorBudgetError);
        # Frontdoor's worker class (gunicorn_worker.FrontdoorServer) caps them.
        slots = [view.max_concurrent for view in frontdoor.system.backend_views()]
        install(budgeted(settings.server, slots, embedded=False))
    except ConfigError as exc:
        log.error("configuration error: %s", exc)  # noqa: TRY400 - one line, no traceback
        raise SystemExit(APP_LOAD_ERROR) from None
    gc_tuning.tune(settings.server.gc_young_threshold)
    frontdoor.start()
    return DrainableApp(frontdoor, frontdoor.single_listener_app())


application = _application()
