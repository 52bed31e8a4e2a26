"""Frontdoor, the device-facing API: its configuration, one assembled process, and the
endpoint declarations teams write.

Public: ``__all__``: ``load_settings`` (-> ``Settings``, or a ``ConfigError``), ``Frontdoor``
(one process built from settings) and ``plans``, the one module team code imports. The
subpackages have their own surfaces: ``frontend`` (WSGI pipeline, servers, request protocol),
``ops`` (metrics, logs, admin) and ``loadtest``. A team's endpoints are declared with ``plans``
in an API package (the built-in ones are under ``apis/``); a new setting goes in ``config.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from orchestrator import plans
    from orchestrator.config import ConfigError, Settings, load_settings
    from orchestrator.runtime import Frontdoor

__all__ = ["ConfigError", "Frontdoor", "Settings", "load_settings", "plans"]

# Lazy (PEP 562): the CLI and the gunicorn target import ``orchestrator`` before gevent patches
# the process, so importing the package must import no submodule (and so not ssl or pykka).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "config": ("ConfigError", "Settings", "load_settings"),
            "runtime": ("Frontdoor",),
        },
        modules=("plans",),
    )
