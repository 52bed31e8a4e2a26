"""Server-Sent Events framing (the WHATWG HTML standard, "Server-sent events").

An event is ``field: value`` lines ended by a blank line; ``data`` is split into one
``data:`` line per line of the payload (the client joins them with newlines). ``event``
and ``id`` are single-line fields, so a line break in them is refused rather than allowed
to start a field of its own. A comment (a line starting with ``:``) keeps a quiet
connection alive and is ignored by clients.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["comment", "event"]

_LINE_BREAK: Final = re.compile(r"\r\n|\r|\n")


def event(
    data: str | bytes,
    *,
    name: str | None = None,
    event_id: str | None = None,
    retry_ms: int | None = None,
) -> bytes:
    """One event, UTF-8: ``retry``, ``event`` and ``id`` fields when given, then ``data``."""
    text = data.decode() if isinstance(data, bytes) else data
    lines: list[str] = []
    if retry_ms is not None:
        if retry_ms < 0:
            raise ValueError("retry_ms must be >= 0")
        lines.append(f"retry: {retry_ms}")
    if name is not None:
        lines.append(f"event: {_single_line('name', name)}")
    if event_id is not None:
        if "\0" in event_id:
            raise ValueError("event_id must not contain NUL")
        lines.append(f"id: {_single_line('event_id', event_id)}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(text))
    return ("\n".join(lines) + "\n\n").encode()


def comment(text: str = "") -> bytes:
    """A comment line (ignored by clients): ``: text``."""
    return f": {_single_line('text', text)}\n\n".encode()


def _single_line(field: str, value: str) -> str:
    if _LINE_BREAK.search(value):
        raise ValueError(f"{field} must be a single line")
    return value
