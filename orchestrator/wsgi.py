"""The gunicorn target:
``gunicorn -k orchestrator.frontend.gunicorn_worker.FrontdoorWorker orchestrator.wsgi:application``
(``-k gevent`` works too, at ~7% more CPU per request).

gunicorn's gevent worker patches the process before importing this module. This is the
only module-level app: settings come from ``FRONTDOOR_*`` variables (and
``FRONTDOOR_CONFIG``, a TOML path); backends must run elsewhere (``bin/fake-backends``).
gunicorn gives one listener: with ``server.admin_port`` set, admin routes are not served
(``Frontdoor.single_listener_app``). Frontdoor's own logs are JSON lines on stderr, as under
``frontdoor serve`` (gunicorn configures only its own loggers).
"""

from __future__ import annotations

import os

from orchestrator.config import load_settings
from orchestrator.ops import gc_tuning
from orchestrator.ops.access_log import install_json_logging, log_greenlet_errors
from orchestrator.runtime import Frontdoor

_settings = load_settings(os.environ.get("FRONTDOOR_CONFIG"))
install_json_logging(
    _settings.logging.level, redact=(_settings.auth.admin_token, _settings.auth.token_secret)
)
log_greenlet_errors()
_frontdoor = Frontdoor.build(_settings)
gc_tuning.tune(_settings.server.gc_young_threshold)
_frontdoor.start()
application = _frontdoor.single_listener_app()
