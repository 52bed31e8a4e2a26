"""Operations: metrics, logs, the admin views and the garbage collector's tuning.

Public: ``__all__`` (``gc_tuning`` is used as a module: ``gc_tuning.tune(...)``). A new metric
is named in ``metrics.MetricNames`` and listed in docs/alerts.md; a new operational log line is
an ``access_log.EventLog`` method; a new admin route goes in ``admin.AdminHandler``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from orchestrator.ops import gc_tuning
    from orchestrator.ops.access_log import (
        FIELDS_ATTR,
        AccessLog,
        EventLog,
        JsonFormatter,
        SheddingMonitor,
        access_entry,
        backend_calls,
        install_json_logging,
        log_greenlet_errors,
    )
    from orchestrator.ops.admin import AdminHandler, AdminRequest
    from orchestrator.ops.instance import Instance, LocalWorker
    from orchestrator.ops.metrics import (
        GaugeReporter,
        GaugeSnapshot,
        MetricNames,
        Metrics,
        NullSink,
        RequestMetrics,
        StatsdSink,
    )
    from orchestrator.ops.peers import PeerChannel, WorkerDirectory
    from orchestrator.ops.views import EndpointWindows, gauge_snapshot

__all__ = [
    "FIELDS_ATTR",
    "AccessLog",
    "AdminHandler",
    "AdminRequest",
    "EndpointWindows",
    "EventLog",
    "GaugeReporter",
    "GaugeSnapshot",
    "Instance",
    "JsonFormatter",
    "LocalWorker",
    "MetricNames",
    "Metrics",
    "NullSink",
    "PeerChannel",
    "RequestMetrics",
    "SheddingMonitor",
    "StatsdSink",
    "WorkerDirectory",
    "access_entry",
    "backend_calls",
    "gauge_snapshot",
    "gc_tuning",
    "install_json_logging",
    "log_greenlet_errors",
]

# Lazy (PEP 562): the entry points import ``gc_tuning`` and the logging set-up before gevent
# patches; importing the package must not bring in statsd, gevent or pykka with them.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "access_log": (
                "FIELDS_ATTR",
                "AccessLog",
                "EventLog",
                "JsonFormatter",
                "SheddingMonitor",
                "access_entry",
                "backend_calls",
                "install_json_logging",
                "log_greenlet_errors",
            ),
            "admin": ("AdminHandler", "AdminRequest"),
            "instance": ("Instance", "LocalWorker"),
            "peers": ("PeerChannel", "WorkerDirectory"),
            "views": ("EndpointWindows", "gauge_snapshot"),
            "metrics": (
                "GaugeReporter",
                "GaugeSnapshot",
                "MetricNames",
                "Metrics",
                "NullSink",
                "RequestMetrics",
                "StatsdSink",
            ),
        },
        modules=("gc_tuning",),
    )
