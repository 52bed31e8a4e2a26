"""The error tree of the backend side. Third-party errors are translated into it once,
at the transport boundary (``raise BackendXError(...) from exc``)."""

from __future__ import annotations

_TOO_MANY_REQUESTS = 429
_UNAVAILABLE = 503
#: Statuses another attempt may not see: timeouts and the transient 5xx.
_TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})


class BackendError(Exception):
    """A call to a backend did not produce a usable reply."""

    #: Whether this failure says something about the backend's health (feeds its breaker).
    counts_as_failure: bool = True
    #: Stable short name used as the outcome in metrics and traces.
    kind: str = "failure"
    #: Whether another attempt of an idempotent call may succeed (transient failures).
    retryable: bool = True


class BackendTimeoutError(BackendError):
    """The call did not finish within its total time budget (connect, send, body, decode)."""

    kind = "timeout"


class BackendDeadlineError(BackendTimeoutError):
    """No time was left to send the call (under a millisecond): it never reached the backend.

    A consequence of the request's deadline, not of the backend's health, so it does not
    feed the breaker; another attempt would have even less time.
    """

    counts_as_failure = False
    retryable = False


class BackendConnectionError(BackendError):
    """The backend could not be reached (refused, reset, DNS)."""


class BackendStatusError(BackendError):
    """The backend answered with a non-2xx status.

    ``retry_after_s`` is the reply's ``Retry-After`` in seconds, when it sent one.
    """

    def __init__(
        self, status: int, message: str = "", *, retry_after_s: float | None = None
    ) -> None:
        super().__init__(message or f"backend answered HTTP {status}")
        self.status = status
        self.retry_after_s = retry_after_s
        # 4xx other than 408/429 is the caller's fault, not the backend's health.
        self.counts_as_failure = status >= 500 or status in (408, 429)  # noqa: PLR2004
        # Retrying into "overloaded" adds load where it hurts most; other 4xx fail the same
        # way every time, and so does 501.
        self.retryable = status in _TRANSIENT_STATUSES and not self.overloaded

    @property
    def overloaded(self) -> bool:
        """The backend said it is overloaded: 429, or 503 with ``Retry-After``."""
        return self.status == _TOO_MANY_REQUESTS or (
            self.status == _UNAVAILABLE and self.retry_after_s is not None
        )


class BackendProtocolError(BackendError):
    """The reply was malformed: bad JSON, wrong content, truncated, redirect."""

    # A malformed reply is most often the same on every attempt, and reading another
    # (possibly capped-size) body costs the backend and us again.
    retryable = False


class BackendBodyTooLargeError(BackendProtocolError):
    """The reply body exceeded the backend's byte cap while streaming."""
