"""BackendActor: the long-lived actor that guards one microservice.

Takes: ``Call`` (from request supervisors, through ``submit``), ``_Done`` (from its own
attempt greenlets).
Sends: exactly one ``Reply`` per ``Call`` to ``Call.reply_to``.
Owns: the bulkhead (running / waiting calls) and the in-flight table. The breaker, retry
budget, adaptive concurrency limit (when the backend opts in), last-good cache, reservation
count and counters live in ``BackendState``, which outlives a restart.
Never does: I/O or waiting in its mailbox loop. Each attempt runs in its own greenlet (a
retry's backoff too), so a hanging call never delays the next message; every handler does
O(1) work. The order for a call is: deadline, breaker (open: short-circuit), bulkhead,
adaptive limit (full: rejected, like a full bulkhead), attempt; after each attempt: record
it in the breaker and end its limit token, then retry (through the limit again) or reply.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

import gevent
import pykka

from actors.breaker import CLOSED, CircuitBreaker, StateListener, Verdict
from actors.bulkhead import Admission, Bulkhead
from actors.last_good import LastGoodCache
from actors.limiter import Limiter, LimiterSettings, Token
from actors.messages import Call, Reply
from actors.outcomes import OWN_TIMEOUT, Outcome
from actors.retry import Retrier, RetryBudget, RetryPolicy
from actors.runtime import GreenletActor
from actors.stats import WindowStats
from backends.errors import (
    BackendConnectionError,
    BackendDeadlineError,
    BackendError,
    BackendStatusError,
    BackendTimeoutError,
)
from backends.specs import BackendSpec, LimitSettings
from backends.transport import BackendRequest

log = logging.getLogger("frontdoor.actors.backend")

#: A probe's lease outlasts its one attempt (bounded by the backend timeout) by this much,
#: so only a probe whose result is really lost (not merely late in the mailbox) expires.
PROBE_LEASE_GRACE_S = 1.0
_MS_PER_S = 1000.0
#: Statuses by which a backend says it is overloaded: a drop for the adaptive limit.
_OVERLOAD_STATUSES = frozenset({429, 503})


class UnknownMessageError(TypeError):
    """An actor got a message it has no handler for: a programming error, so it crashes."""


class BackendCaller(Protocol):
    """What a backend actor needs from the client layer (``backends.client.BackendClient``)."""

    def call(self, request: BackendRequest, *, deadline: float, request_id: str) -> Any:
        """Make one call bounded by ``deadline``; raise ``BackendError`` on failure."""
        ...


@dataclass(slots=True)
class BackendState:
    """What survives a restart of the backend's actor: facts about the backend, not the actor.

    ``outstanding`` counts calls reserved by ``submit`` and not yet answered (in the
    mailbox, waiting or running): at most ``capacity``, so the unbounded pykka inbox never
    holds more than that many calls for this backend.
    """

    spec: BackendSpec
    client: BackendCaller
    last_good: LastGoodCache
    breaker: CircuitBreaker
    retrier: Retrier
    #: The last 10 s of outcomes and latencies, for operators (``/_admin/backends``).
    stats: WindowStats
    counts: dict[str, int] = field(default_factory=dict)
    outstanding: int = 0
    #: Gauges published by the live actor after every change (read by the system).
    inflight: int = 0
    queued: int = 0
    #: The adaptive concurrency limit, when ``spec.limit.adaptive``; else ``None`` (free).
    limiter: Limiter | None = None

    @classmethod
    def create(
        cls,
        spec: BackendSpec,
        client: BackendCaller,
        *,
        last_good: LastGoodCache,
        clock: Callable[[], float],
        rng: random.Random,
        on_breaker_change: StateListener | None = None,
    ) -> BackendState:
        """The state of a backend that has not been called yet (breaker closed)."""
        breaker = CircuitBreaker(
            spec.breaker,
            # A probe is never retried, so one attempt bounds it.
            probe_lease_s=spec.timeout_ms / _MS_PER_S + PROBE_LEASE_GRACE_S,
            clock=clock,
            on_change=on_breaker_change,
        )
        retrier = Retrier(
            RetryPolicy.from_settings(spec.retry), RetryBudget(spec.retry, clock), rng
        )
        state = cls(spec, client, last_good, breaker, retrier, WindowStats(clock=clock))
        if spec.limit.adaptive:
            state.limiter = Limiter(limiter_settings(spec.limit, spec.max_concurrent))
        return state

    @property
    def capacity(self) -> int:
        """Most calls outstanding at once: the bulkhead's running plus waiting places."""
        return self.spec.max_concurrent + self.spec.max_queue

    def count(self, name: str, amount: int = 1) -> None:
        """Add to a named counter (outcomes, ``expired``, ``retries``, ``restarts``...)."""
        self.counts[name] = self.counts.get(name, 0) + amount

    def record(self, outcome: Outcome, latency_ms: float | None = None) -> None:
        """Count one answered call's outcome, in the counters and the rolling window."""
        self.count(outcome)
        self.stats.record(outcome, latency_ms)

    def reserve(self) -> bool:
        """Take a place for one more call, if any is left (no yield: check and take are one)."""
        if self.outstanding >= self.capacity:
            return False
        self.outstanding += 1
        return True

    def release(self) -> None:
        """Give back the place of a call that has been answered."""
        self.outstanding -= 1

    def failed_reply(self, call: Call, outcome: Outcome, error: str, at: float) -> Reply:
        """A reply that made no attempt, with the call's last good value when it keeps one."""
        return _with_last_good(
            self, call, Reply(call.call_id, self.spec.name, outcome, None, error, at, at, 0)
        )


def limiter_settings(limit: LimitSettings, max_concurrent: int) -> LimiterSettings:
    """The limiter's settings for a backend: its bounds capped by the bulkhead's size."""
    max_limit = min(limit.max_limit, max_concurrent)
    return LimiterSettings(
        initial_limit=min(limit.initial_limit, max_limit),
        min_limit=min(limit.min_limit, max_limit),
        max_limit=max_limit,
        smoothing=limit.smoothing,
        rtt_tolerance=limit.rtt_tolerance,
        queue_size=limit.queue_size,
        noload_window_s=limit.noload_window_ms / _MS_PER_S,
        drop_threshold=limit.drop_threshold,
    )


def submit(state: BackendState, ref: pykka.ActorRef[Any], call: Call, now: float) -> Reply | None:
    """Admit ``call`` and tell it to the backend's actor, or reject it at once.

    Returns ``None`` when the call was told (its reply will come as a message), else the
    ``REJECTED`` reply to use now: the backend has ``capacity`` calls outstanding, or its
    actor is dead (between a crash and its replacement). Nothing is queued for a rejected
    call, which is what keeps the actor's mailbox bounded.
    """
    if not state.reserve():
        state.record(Outcome.REJECTED)
        return state.failed_reply(call, Outcome.REJECTED, "bulkhead full", now)
    try:
        ref.tell(call)
    except pykka.ActorDeadError:
        state.release()
        state.record(Outcome.REJECTED)
        return state.failed_reply(call, Outcome.REJECTED, "unavailable", now)
    return None


@dataclass(frozen=True, slots=True)
class _Done:
    """An attempt greenlet finished; the breaker, retries and the reply happen in the actor."""

    seq: int
    outcome: Outcome
    value: Any
    error: str
    verdict: Verdict
    #: Whether the failure is transient (another attempt may succeed).
    retryable: bool
    started_at: float
    finished_at: float
    #: The backend's non-2xx HTTP status, else 0.
    status: int = 0
    #: Timed out, unreachable, or answered 503 / 429: a drop for the adaptive limit.
    dropped: bool = False


@dataclass(slots=True)
class _Held:
    """A call this actor has admitted: waiting for a slot, or running (perhaps retrying)."""

    call: Call
    #: The breaker ticket of the current attempt.
    ticket: int
    attempts: int = 0
    started_at: float = 0.0
    #: The adaptive limit's token of the current attempt (None: no limit, or none held).
    token: Token | None = None


class BackendActor(GreenletActor):
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
        self._breaker = state.breaker
        self._limiter = state.limiter
        self._bulkhead: Bulkhead[_Held] = Bulkhead(state.spec.max_concurrent, state.spec.max_queue)
        self._inflight: dict[int, _Held] = {}
        self._seq = itertools.count()
        #: The greenlet running each held call's current attempt (by seq). Raw greenlets:
        #: a gevent.pool.Group's Greenlet with its links costs ~3x as much to start, and
        #: an attempt reports through the mailbox, never through a link or a result.
        self._attempts: dict[int, Any] = {}

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
        """Shutting down: every call held or still in the mailbox is rejected now.

        pykka drops the tells left in a stopped actor's inbox without a word, which would
        leave their requests waiting for their deadline and their places reserved.
        """
        self._fail_everything(Outcome.REJECTED, "backend stopping")

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Crashed: fail held calls fast (also those still in the mailbox), then ask for a
        replacement. pykka has already marked this actor dead, so no new call can arrive.

        The breaker is not told about calls failed here: they say nothing about the
        backend. A probe among them is abandoned, and its lease reopens the breaker.
        """
        del exception_type, exception_value, traceback
        self.state.count("crashes")
        self._fail_everything(Outcome.FAILURE, "backend actor restarted")
        self._on_crash(self.name, self.actor_ref)

    # -- handlers -------------------------------------------------------------------------

    def _handle_call(self, call: Call) -> None:
        if self._clock() >= call.deadline:
            # Its request has given up: executing it would be wasted work on a backend.
            self.state.count("expired")
            self._reply_now(call, Outcome.TIMEOUT, "deadline passed before start")
            return
        ticket = self._breaker.acquire()
        if ticket is None:
            self._reply_now(call, Outcome.SHORT_CIRCUITED, "circuit open")
            return
        held = _Held(call, ticket)
        admission = self._bulkhead.admit(held)
        if admission is Admission.RUN:
            if not self._start(held):
                self._start_next_waiting()  # the limit refused it: give its slot back
        elif admission is Admission.REJECT:
            # Unreachable through submit (it reserves no more than the bulkhead holds);
            # kept so that a call told directly still cannot queue without bound.
            self._breaker.release(ticket)
            self._reply_now(call, Outcome.REJECTED, "bulkhead full")

    def _handle_done(self, done: _Done) -> None:
        self._attempts.pop(done.seq, None)
        held = self._inflight.get(done.seq)
        if held is None:  # already failed by a stop; nothing more to say
            return
        self._breaker.record(held.ticket, done.verdict)
        if held.token is not None:
            _end_token(held.token, done)
            held.token = None
        if not done.outcome.ok and self._retry(done.seq, held, done):
            return
        del self._inflight[done.seq]
        call = held.call
        counted = done.outcome
        if done.verdict is Verdict.NEUTRAL:
            if counted is Outcome.FAILURE:
                # A bad request is the caller's failure, not the backend's: operators see it
                # apart (the reply still says FAILURE).
                counted = Outcome.CLIENT_ERROR
            else:
                self.state.count("expired")  # a timeout never sent: as if it expired unstarted
        self.state.record(counted, (done.finished_at - held.started_at) * _MS_PER_S)
        reply = Reply(
            call.call_id,
            self.name,
            done.outcome,
            done.value,
            done.error,
            started_at=held.started_at,
            finished_at=done.finished_at,
            attempts=held.attempts,
            status=done.status,
        )
        if call.keep_last_good:
            if done.outcome.ok:
                self.state.last_good.put(call.request.key(), done.value)
            else:
                reply = _with_last_good(self.state, call, reply)
        self._answer(call, reply)
        self._start_next_waiting()

    # -- internals ------------------------------------------------------------------------

    def _start(self, held: _Held) -> bool:
        """Start ``held``'s first attempt in the bulkhead slot it holds; False when the
        adaptive limit refused it (answered ``REJECTED``; the caller passes its slot on)."""
        if self._limiter is not None:
            held.token = self._limiter.try_acquire(self._clock())
            if held.token is None:
                self._breaker.release(held.ticket)
                self._reply_now(held.call, Outcome.REJECTED, "concurrency limit")
                return False
        seq = next(self._seq)
        self._inflight[seq] = held
        held.started_at = self._clock()
        self.state.retrier.budget.record_call()
        self._attempt(seq, held, 0.0)
        return True

    def _attempt(self, seq: int, held: _Held, delay_s: float) -> None:
        held.attempts += 1
        self._attempts[seq] = gevent.spawn_raw(self._execute, seq, held.call, delay_s)

    def _retry(self, seq: int, held: _Held, done: _Done) -> bool:
        """Start another attempt of a failed call if the retry rules allow; True if started."""
        delay_s = self.state.retrier.delay_before_retry(
            retryable=done.retryable and held.call.request.idempotent,
            breaker_closed=self._breaker.state is CLOSED,
            attempts=held.attempts,
            now=self._clock(),
            deadline=held.call.deadline,
            last_attempt_s=done.finished_at - done.started_at,
        )
        if delay_s is None:
            return False
        ticket = self._breaker.acquire()
        if ticket is None:  # pragma: no cover - closed a moment ago, nothing can open it
            return False
        if self._limiter is not None:
            # Dated when the attempt will be sent, so its latency sample leaves out the backoff.
            held.token = self._limiter.try_acquire(self._clock() + delay_s)
            if held.token is None:  # no room for another attempt: the call fails as it is
                self._breaker.release(ticket)
                return False
        held.ticket = ticket
        self.state.count("retries")
        self._attempt(seq, held, delay_s)
        return True

    def _start_next_waiting(self) -> None:
        while (held := self._bulkhead.release()) is not None:
            if self._clock() >= held.call.deadline:
                # It waited past its deadline: reject it; the loop passes its slot on.
                self._breaker.release(held.ticket)
                self._reply_now(held.call, Outcome.REJECTED, "deadline passed while queued")
                continue
            if not self._breaker.valid(held.ticket):
                # The breaker changed state while the call waited: ask again.
                ticket = self._breaker.acquire()
                if ticket is None:
                    self._reply_now(held.call, Outcome.SHORT_CIRCUITED, "circuit open")
                    continue
                held.ticket = ticket
            if self._start(held):
                return

    def _execute(self, seq: int, call: Call, delay_s: float) -> None:
        """Runs in a pool greenlet, never in the actor: the only place that waits."""
        if delay_s > 0:
            gevent.sleep(delay_s)  # a retry's backoff: the call keeps its bulkhead slot
        started = self._clock()
        outcome, value, error, status = Outcome.SUCCESS, None, "", 0
        verdict, retryable, dropped = Verdict.SUCCESS, False, False
        try:
            value = self.state.client.call(
                call.request, deadline=call.deadline, request_id=call.request_id
            )
        except BackendDeadlineError:
            # Under a millisecond was left, so nothing was sent: the request's deadline, not
            # the backend's health; kept out of the breaker like a call expired unstarted.
            outcome, error, verdict = Outcome.TIMEOUT, "deadline passed", Verdict.NEUTRAL
        except (BackendTimeoutError, gevent.Timeout):
            # The client's total bound fired: counted in the breaker now (the greenlet
            # ends here and tells the actor at once), as Hystrix counts a timeout when it
            # fires, whether or not the request is still waiting for the reply.
            # gevent.Timeout is a BaseException: one escaping here would end this greenlet
            # without a reply; caught, it is just a timeout (defence in depth).
            outcome, error, verdict, retryable = Outcome.TIMEOUT, OWN_TIMEOUT, Verdict.TIMEOUT, True
            dropped = True
        except BackendError as exc:
            outcome, error, retryable = Outcome.FAILURE, type(exc).__name__, exc.retryable
            verdict = Verdict.FAILURE if exc.counts_as_failure else Verdict.NEUTRAL
            status = exc.status if isinstance(exc, BackendStatusError) else 0
            dropped = status in _OVERLOAD_STATUSES or isinstance(exc, BackendConnectionError)
        except Exception:  # a client bug must still produce a reply, and not kill anything
            log.exception("backend %s: unexpected client error", self.name)
            outcome, error, verdict = Outcome.FAILURE, "internal", Verdict.FAILURE
        finished = self._clock()
        done = _Done(
            seq, outcome, value, error, verdict, retryable, started, finished, status, dropped
        )
        # suppress() would cost a context manager per call; the actor stopped or crashed
        # if this raises, and has then already answered the call.
        try:  # noqa: SIM105
            self.actor_ref.tell(done)
        except pykka.ActorDeadError:
            pass

    def _answer(self, call: Call, reply: Reply) -> None:
        """The one reply to ``call``: its place is given back as it goes."""
        self.state.release()
        _tell(call.reply_to, reply)

    def _reply_now(self, call: Call, outcome: Outcome, error: str) -> None:
        self.state.record(outcome)
        self._answer(call, self.state.failed_reply(call, outcome, error, self._clock()))

    def _fail_everything(self, outcome: Outcome, error: str) -> None:
        held = list(self._inflight.values())
        self._inflight.clear()
        for item in held:
            if item.token is not None:  # says nothing about the backend's load
                item.token.ignore()
                item.token = None
            self._reply_now(item.call, outcome, error)
        for item in self._bulkhead.drain():
            self._breaker.release(item.ticket)
            self._reply_now(item.call, outcome, error)
        attempts = list(self._attempts.values())
        self._attempts.clear()
        for attempt in attempts:
            gevent.kill(attempt)
        # The actor is already marked dead, so the mailbox can only shrink: this ends.
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()  # cannot block: not empty, we are its only reader
            if isinstance(envelope.message, Call):
                self._reply_now(envelope.message, outcome, error)
        self.state.inflight = self.state.queued = 0


def _end_token(token: Token, done: _Done) -> None:
    """Feed one finished attempt to the adaptive limit: a latency sample, a drop, or none."""
    if done.outcome.ok:
        token.success(done.finished_at)
    elif done.dropped:
        token.dropped(done.finished_at)
    else:  # a bad request, a deadline before sending, a malformed reply: not about load
        token.ignore()


def _with_last_good(state: BackendState, call: Call, reply: Reply) -> Reply:
    """``reply`` (a failure) with the last good value of the same call, if it keeps one."""
    if not call.keep_last_good:
        return reply
    found, value = state.last_good.get(call.request.key())
    if not found:
        return reply
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
        status=reply.status,
    )


def _tell(target: Any, message: Any) -> None:
    """Tell without caring whether the receiver is still there (a finished request)."""
    with contextlib.suppress(pykka.ActorDeadError):
        target.tell(message)
