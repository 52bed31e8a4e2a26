"""The gunicorn target: ``gunicorn -k gevent orchestrator.wsgi:application``.

gunicorn's gevent worker patches the process before importing this module. This is the
only module-level app: settings come from ``FRONTDOOR_*`` variables (and
``FRONTDOOR_CONFIG``, a TOML path); backends must run elsewhere (``bin/fake-backends``).
gunicorn gives one listener: with ``server.admin_port`` set, admin routes are not served
(``Frontdoor.single_listener_app``).
"""

from __future__ import annotations

import os

from orchestrator.config import load_settings
from orchestrator.runtime import Frontdoor

_frontdoor = Frontdoor.build(load_settings(os.environ.get("FRONTDOOR_CONFIG")))
_frontdoor.start()
application = _frontdoor.single_listener_app()
