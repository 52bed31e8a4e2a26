"""RequestSupervisor: the short-lived actor that runs one request's plan.

Takes: ``Reply`` (from backend actors), ``DeadlineExpired`` (from its own timer).
Sends: ``Call`` to backend actors, found through a ``BackendDirectory``.
Owns: one ``PlanRun``. Dispatches every step the moment its inputs exist, applies
fallbacks, and hands the ``RunResult`` to ``on_done`` exactly once: when the plan finishes
or when the deadline passes, whichever is first. Then it stops itself.
Never does: wait on anything. Late replies after it stopped are dropped by pykka.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Protocol

import gevent
import gevent.event
import pykka

from actors.messages import Call, DeadlineExpired, Reply
from actors.plan import FallbackKind, Plan, PlanRun, RunResult, RunStatus
from actors.runtime import GreenletActor

log = logging.getLogger(__name__)

#: Extra wait, past the deadline, for a supervisor's answer before the caller gives up.
#: The supervisor answers at its deadline by itself; this only covers a crashed one.
ANSWER_GRACE_S = 0.25


class BackendDirectory(Protocol):
    """Admits calls to the live actors of backends: the actor system, or a scope's
    ``SharedCalls`` in front of it. The one ``submit`` contract: the app's backends and
    ``SharedCalls`` take their directory as this."""

    def submit(self, call: Call) -> Reply | None:
        """Tell ``call`` to its backend's actor (``None``: a reply will come), or return
        the rejection to use at once; never queues a call it rejects."""
        ...


class RequestSupervisor(GreenletActor):
    """One per request; see the module docstring for its contract."""

    def __init__(
        self,
        run: PlanRun,
        directory: BackendDirectory,
        request_id: str,
        on_done: Callable[[RunResult], None],
        clock: Callable[[], float],
    ) -> None:
        super().__init__()
        self._run = run
        self._directory = directory
        self._request_id = request_id
        self._on_done: Callable[[RunResult], None] | None = on_done
        self._clock = clock
        self._timer: Any = None

    def on_start(self) -> None:
        """Arm the deadline timer and dispatch the steps that need nothing."""
        delay = max(0.0, self._run.deadline - self._clock())
        # A raw loop timer, not a greenlet: its callback only tells (never blocks), so it
        # may run in the hub, and a request saves a greenlet's start and switch.
        self._timer = gevent.get_hub().loop.timer(delay)
        self._timer.start(self._tell_expired)
        self._advance()

    def on_receive(self, message: Any) -> None:
        """Replies advance the plan; the deadline ends it."""
        if self._on_done is None:
            return  # already answered; late messages are expected and harmless
        if isinstance(message, Reply):
            self._run.resolve(message.call_id, message)
            self._advance()
        elif isinstance(message, DeadlineExpired):
            self._run.expire(self._clock())
            self._finish()

    def on_stop(self) -> None:
        """Never leave the timer behind, whatever stopped us."""
        if self._timer is not None:
            self._timer.close()

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """A bug in this request's handling: answer now with a failure, not at the deadline."""
        del exception_type, exception_value, traceback
        self.on_stop()
        on_done, self._on_done = self._on_done, None
        if on_done is not None:
            on_done(RunResult(RunStatus.FAILED, failed_step="supervisor"))

    def _advance(self) -> None:
        while True:
            ready = self._run.take_ready(self._clock())
            if not ready:
                break
            for index, record, request in ready:
                step = record.step
                call = Call(
                    call_id=index,
                    backend=step.backend,
                    request=request,
                    deadline=self._run.deadline,
                    request_id=self._request_id,
                    reply_to=self.actor_ref,
                    sent_at=record.sent_at,
                    keep_last_good=step.fallback is not None
                    and step.fallback.kind is FallbackKind.LAST_GOOD,
                )
                # Full, between restarts, or not configured: fail fast into the fallback.
                rejection = self._directory.submit(call)
                if rejection is not None:
                    self._run.resolve(index, rejection)
        if self._run.finished:
            self._finish()

    def _finish(self) -> None:
        on_done, self._on_done = self._on_done, None
        if on_done is None:
            return
        result = self._run.result(compose_error=self._log_compose_error)
        on_done(result)
        self.stop()

    def _log_compose_error(self, exc: Exception) -> None:
        log.error("request %s: compose failed", self._request_id, exc_info=exc)

    def _tell_expired(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(DeadlineExpired())


def execute_plan(
    plan: Plan,
    *,
    directory: BackendDirectory,
    params: dict[str, Any],
    member_id: str | None,
    deadline: float,
    request_id: str,
    clock: Callable[[], float],
    presets: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run ``plan`` in a new supervisor and wait (this greenlet only) for its result.

    ``presets``: results already known for some steps (``PlanRun``)."""
    answer: gevent.event.AsyncResult = gevent.event.AsyncResult()
    run = PlanRun(plan, params, member_id, deadline, presets)
    ref = RequestSupervisor.start(run, directory, request_id, answer.set, clock)
    wait_s = max(0.0, deadline - clock()) + ANSWER_GRACE_S
    try:
        result: RunResult = answer.get(timeout=wait_s)
    except gevent.Timeout:
        # Only a supervisor that died without answering gets here; don't leave it running.
        log.error("request %s: supervisor gave no answer", request_id)  # noqa: TRY400 - the Timeout has no useful traceback
        ref.stop(block=False)
        return RunResult(RunStatus.TIMED_OUT, failed_step="supervisor")
    return result
