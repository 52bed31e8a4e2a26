"""BackendActor: the long-lived actor that bulkheads one microservice.

Takes: ``Call`` (from request supervisors), ``_Done`` (from its own call greenlets).
Sends: exactly one ``Reply`` per ``Call`` to ``Call.reply_to``.
Owns: the bulkhead (running / waiting calls) and the in-flight table. The breaker,
last-good cache and counters live in ``BackendState``, which outlives a restart.
Never does: I/O in its mailbox loop. Each admitted call runs in its own greenlet, so a
hanging call never delays the next message; an actor handler does O(1) work.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import gevent
import gevent.pool
import pykka

from actors.bulkhead import Admission, Bulkhead
from actors.last_good import LastGoodCache
from actors.messages import Call, Outcome, Reply
from backends.errors import BackendError, BackendTimeoutError
from backends.specs import BackendSpec
from backends.transport import BackendRequest

log = logging.getLogger(__name__)


class UnknownMessageError(TypeError):
    """An actor got a message it has no handler for: a programming error, so it crashes."""


class BackendCaller(Protocol):
    """What a backend actor needs from the client layer (``backends.client.BackendClient``)."""

    def call(self, request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        """Make one call bounded by ``deadline``; raise ``BackendError`` on failure."""
        ...


@dataclass(slots=True)
class BackendState:
    """What survives a restart of the backend's actor: a fact about the backend, not the actor."""

    spec: BackendSpec
    client: BackendCaller
    last_good: LastGoodCache
    counts: dict[str, int] = field(default_factory=dict)
    #: Gauges published by the live actor after every change (read by the system).
    inflight: int = 0
    queued: int = 0

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter (outcomes, ``expired``, ``restarts``)."""
        self.counts[name] = self.counts.get(name, 0) + amount


@dataclass(frozen=True, slots=True)
class _Done:
    """A call greenlet finished; bookkeeping and the reply happen in the actor."""

    seq: int
    reply: Reply


@dataclass(slots=True)
class _InFlight:
    call: Call
    greenlet: gevent.Greenlet | None = None


class BackendActor(pykka.ThreadingActor):
    """One per configured backend; see the module docstring for its contract."""

    def __init__(
        self,
        state: BackendState,
        clock: Callable[[], float],
        on_crash: Callable[[str, pykka.ActorRef[Any]], None],
    ) -> None:
        super().__init__()
        self.state = state
        self.name = state.spec.name
        self._clock = clock
        self._on_crash = on_crash
        self._bulkhead: Bulkhead[Call] = Bulkhead(state.spec.max_concurrent, state.spec.max_queue)
        self._inflight: dict[int, _InFlight] = {}
        self._seq = itertools.count()
        self._greenlets = gevent.pool.Group()

    # -- pykka hooks ----------------------------------------------------------------------

    def on_receive(self, message: Any) -> None:
        """Dispatch by message type; an unknown message is a bug and crashes the actor."""
        if isinstance(message, Call):
            self._handle_call(message)
        elif isinstance(message, _Done):
            self._handle_done(message)
        else:
            raise UnknownMessageError(f"{self.name}: no handler for {type(message).__name__}")
        self.state.inflight = len(self._inflight)
        self.state.queued = self._bulkhead.queued

    def on_stop(self) -> None:
        """Shutting down: every call still held gets a rejection now, not at its deadline."""
        self._fail_everything(Outcome.REJECTED, "backend stopping")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Crashed: fail held calls fast (also those still in the mailbox), then ask for a
        replacement. pykka has already marked this actor dead, so no new call can arrive."""
        del exception_type, exception_value, traceback
        self.state.count("crashes")
        self._fail_everything(Outcome.FAILURE, "backend actor restarted")
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()  # cannot block: not empty, we are its only reader
            if isinstance(envelope.message, Call):
                self._reply_now(envelope.message, Outcome.FAILURE, "backend actor restarted")
        self._on_crash(self.name, self.actor_ref)

    # -- handlers -------------------------------------------------------------------------

    def _handle_call(self, call: Call) -> None:
        if self._clock() >= call.deadline:
            # Its request has given up: executing it would be wasted work on a backend.
            self.state.count("expired")
            self._reply_now(call, Outcome.TIMEOUT, "deadline passed before start")
            return
        admission = self._bulkhead.admit(call)
        if admission is Admission.RUN:
            self._start(call)
        elif admission is Admission.REJECT:
            self._reply_now(call, Outcome.REJECTED, "bulkhead full")

    def _handle_done(self, done: _Done) -> None:
        held = self._inflight.pop(done.seq, None)
        if held is None:  # already failed by a stop; nothing more to say
            return
        reply = done.reply
        call = held.call
        self.state.count(reply.outcome.value)
        if call.keep_last_good:
            if reply.outcome.ok:
                self.state.last_good.put(call.request.key(), reply.value)
            else:
                found, value = self.state.last_good.get(call.request.key())
                if found:
                    reply = _with_last_good(reply, value)
        _tell(call.reply_to, reply)
        self._start_next_waiting()

    # -- internals ------------------------------------------------------------------------

    def _start(self, call: Call) -> None:
        seq = next(self._seq)
        held = _InFlight(call)
        self._inflight[seq] = held
        held.greenlet = self._greenlets.spawn(self._execute, seq, call)

    def _start_next_waiting(self) -> None:
        while (call := self._bulkhead.release()) is not None:
            if self._clock() < call.deadline:
                self._start(call)
                return
            # It waited past its deadline: reject it; the loop passes its slot on.
            self._reply_now(call, Outcome.REJECTED, "deadline passed while queued")

    def _execute(self, seq: int, call: Call) -> None:
        """Runs in a pool greenlet, never in the actor: the only place that waits on I/O."""
        started = self._clock()
        outcome, value, error = Outcome.SUCCESS, None, ""
        try:
            value = self.state.client.call(
                call.request, deadline=call.deadline, request_id=call.request_id
            )
        except (BackendTimeoutError, gevent.Timeout):
            # gevent.Timeout is a BaseException: one escaping here would end this greenlet
            # without a reply; caught, it is just a timeout (defence in depth).
            outcome, error = Outcome.TIMEOUT, "timeout"
        except BackendError as exc:
            outcome, error = Outcome.FAILURE, type(exc).__name__
        except Exception:  # a client bug must still produce a reply, and not kill anything
            log.exception("backend %s: unexpected client error", self.name)
            outcome, error = Outcome.FAILURE, "internal"
        reply = Reply(
            call.call_id,
            self.name,
            outcome,
            value,
            error,
            started_at=started,
            finished_at=self._clock(),
            attempts=1,
        )
        # If the actor stopped or crashed, it has already answered this call.
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_Done(seq, reply))

    def _reply_now(self, call: Call, outcome: Outcome, error: str) -> None:
        self.state.count(outcome.value)
        now = self._clock()
        _tell(call.reply_to, Reply(call.call_id, self.name, outcome, None, error, now, now, 0))

    def _fail_everything(self, outcome: Outcome, error: str) -> None:
        held = list(self._inflight.values())
        self._inflight.clear()
        for item in held:
            self._reply_now(item.call, outcome, error)
        for call in self._bulkhead.drain():
            self._reply_now(call, outcome, error)
        self._greenlets.kill(block=False)
        self.state.inflight = self.state.queued = 0


def _with_last_good(reply: Reply, value: Any) -> Reply:
    return Reply(
        reply.call_id,
        reply.backend,
        reply.outcome,
        None,
        reply.error,
        reply.started_at,
        reply.finished_at,
        reply.attempts,
        last_good=value,
        has_last_good=True,
    )


def _tell(target: Any, message: Any) -> None:
    """Tell without caring whether the receiver is still there (a finished request)."""
    with contextlib.suppress(pykka.ActorDeadError):
        target.tell(message)
