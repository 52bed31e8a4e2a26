"""Messages between request supervisors and backend actors.

Every message is a small frozen dataclass. Context variables do not cross a pykka
mailbox, so the request id and the absolute deadline travel inside each message.
Times are ``time.monotonic()`` seconds. A reply's ``Outcome`` (``actors.outcomes``) is
exported here too, beside the messages that carry it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from actors.outcomes import Outcome
from backends.transport import BackendRequest

__all__ = ["Call", "DeadlineExpired", "Outcome", "Reply", "ReplyTarget", "Stop"]


class ReplyTarget(Protocol):
    """Anything a reply can be told to: a pykka ``ActorRef`` or a test's inbox."""

    def tell(self, message: Any) -> None:
        """Deliver ``message`` without waiting."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """Ask a backend actor to make one call and tell the ``Reply`` to ``reply_to``."""

    call_id: int
    backend: str
    request: BackendRequest
    deadline: float
    request_id: str
    reply_to: ReplyTarget
    sent_at: float
    #: Remember a success under the request's key, and attach it to a failed reply.
    keep_last_good: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    """The single answer to a ``Call``. ``error`` is a short reason, never a backend body."""

    call_id: int
    backend: str
    #: One of ``actors.outcomes.CALLS``.
    outcome: Outcome
    value: Any = None
    error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    attempts: int = 0
    #: On failure of a ``keep_last_good`` call: the last good value for the same key, if fresh.
    last_good: Any = None
    has_last_good: bool = False
    #: The backend's HTTP status when it answered with a non-2xx status, else 0.
    status: int = 0


@dataclass(frozen=True, slots=True)
class Stop:
    """Ask an actor to finish its work and stop."""

    reason: str = "shutdown"


@dataclass(frozen=True, slots=True)
class DeadlineExpired:
    """Told to a request supervisor by its own timer when the request's deadline passes."""
