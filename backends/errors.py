"""The error tree of the backend side. Third-party errors are translated into it once,
at the transport boundary (``raise BackendXError(...) from exc``)."""

from __future__ import annotations


class BackendError(Exception):
    """A call to a backend did not produce a usable reply."""

    #: Whether this failure says something about the backend's health (feeds its breaker).
    counts_as_failure: bool = True
    #: Stable short name used as the outcome in metrics and traces.
    kind: str = "failure"


class BackendTimeoutError(BackendError):
    """The call did not finish within its total time budget (connect, send, body, decode)."""

    kind = "timeout"


class BackendConnectionError(BackendError):
    """The backend could not be reached (refused, reset, DNS)."""


class BackendStatusError(BackendError):
    """The backend answered with a non-2xx status."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message or f"backend answered HTTP {status}")
        self.status = status
        # 4xx other than 408/429 is the caller's fault, not the backend's health.
        self.counts_as_failure = status >= 500 or status in (408, 429)  # noqa: PLR2004


class BackendProtocolError(BackendError):
    """The reply was malformed: bad JSON, wrong content, truncated, redirect."""


class BackendBodyTooLargeError(BackendProtocolError):
    """The reply body exceeded the backend's byte cap while streaming."""
