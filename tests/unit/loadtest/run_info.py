"""A ``RunInfo`` for report tests: a short open-loop run, with what a test cares about given."""

from __future__ import annotations

from typing import Any

from orchestrator.loadtest.report import RunInfo


def run_info(**given: Any) -> RunInfo:
    """A 10 req/s open-loop run against 127.0.0.1:8080 unless ``given`` says otherwise."""
    fields: dict[str, Any] = {
        "target": "http://127.0.0.1:8080",
        "mode": "open",
        "load": "10 req/s",
        "warmup_s": 0,
        "duration_s": 10,
        "ended_s": 10,
        "partial": False,
        "scenario": None,
        "mix": {"home": 1, "play": 1},
        "seed": 1,
        "started_at": "2025-01-01T00:00:00Z",
        "cpu_s": 0.1,
        "max_inflight": 512,
    }
    fields.update(given)
    return RunInfo(**fields)
