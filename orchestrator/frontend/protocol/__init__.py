"""The device request protocol: query and path parameters, strict JSON bodies, ``fields``
selections and batches.

Pure code: it parses and validates, raising ``orchestrator.frontend.problems.Problem`` with a
stable code that names what was wrong. No I/O. Public: ``__all__``, what the WSGI pipeline
calls. A new part of the protocol is a new pure module here, called from
``orchestrator/frontend/app.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from backends._lazy import lazy_exports

if TYPE_CHECKING:
    from orchestrator.frontend.protocol.batch import (
        BATCH_PATH,
        MAX_CALLS,
        BatchCall,
        answer,
        envelope,
        failure,
        parse_batch,
    )
    from orchestrator.frontend.protocol.fields import Selection, parse_fields, project
    from orchestrator.frontend.protocol.json_body import parse_object
    from orchestrator.frontend.protocol.params import parse_params, selection

__all__ = [
    "BATCH_PATH",
    "MAX_CALLS",
    "BatchCall",
    "Selection",
    "answer",
    "envelope",
    "failure",
    "parse_batch",
    "parse_fields",
    "parse_object",
    "parse_params",
    "project",
    "selection",
]

# Lazy (PEP 562), like every package of the project: importing it imports no submodule.
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(
        __name__,
        {
            "batch": (
                "BATCH_PATH",
                "MAX_CALLS",
                "BatchCall",
                "answer",
                "envelope",
                "failure",
                "parse_batch",
            ),
            "fields": ("Selection", "parse_fields", "project"),
            "json_body": ("parse_object",),
            "params": ("parse_params", "selection"),
        },
    )
