"""Request ids: a device's own when well formed, else 128 random bits in hex.

One generator per process, used by the pipeline (``request.py``) and by the HTTP server's
refusals (``httpserver.py``) alike; this module imports nothing of either, so the server
stays light. Ids need to be unique, not secret: a generator seeded from the OS once per
process costs ~0.3 µs an id, where ``os.urandom`` is a system call each (~5 µs).
"""

from __future__ import annotations

import os
import random
import re
from typing import Final

__all__ = ["new_id", "request_id"]

_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_IDS = random.Random(os.urandom(32))  # noqa: S311 - correlation ids, not secrets
# A forked worker (gunicorn --preload) must not repeat its parent's, or a sibling's, ids.
os.register_at_fork(after_in_child=lambda: _IDS.seed(os.urandom(32)))


def request_id(header: str | None) -> str:
    """Accept a well-formed device request id; otherwise make one (128 random bits)."""
    if header and _REQUEST_ID.fullmatch(header):
        return header
    return new_id()


def new_id() -> str:
    """A fresh request id."""
    return f"{_IDS.getrandbits(128):032x}"
