"""The live dashboard (``/_admin/dashboard``): what it shows and how it is streamed.

``snapshot.DashboardSnapshot`` makes the one JSON document the page draws (backends
worst-first, endpoints, the frontend's gauges, a server timestamp); ``sse`` frames it as a
Server-Sent Event; ``assets`` holds the page, its script and its style, static files that
ship with the package (no build step, nothing fetched from elsewhere). The WSGI side, the
stream's lifetime and its authentication are ``orchestrator/frontend/dashboard_route.py``.
"""

from __future__ import annotations

from orchestrator.ops.dashboard.assets import ASSETS, CONTENT_SECURITY_POLICY, Asset
from orchestrator.ops.dashboard.snapshot import DashboardSnapshot, FrontendGauges
from orchestrator.ops.dashboard.sse import comment, event

__all__ = [
    "ASSETS",
    "CONTENT_SECURITY_POLICY",
    "Asset",
    "DashboardSnapshot",
    "FrontendGauges",
    "comment",
    "event",
]
