"""RequestSupervisor: the short-lived actor that runs one request's plan.

Takes: ``Reply`` (from backend actors), ``DeadlineExpired`` (from its own timer).
Sends: ``Call`` to backend actors, found through a ``BackendDirectory``.
Owns: one ``PlanRun``. Dispatches every step the moment its inputs exist, applies
fallbacks, and hands the ``RunResult`` to ``on_done`` exactly once: when the plan finishes
or when the deadline passes, whichever is first. Then it stops itself.
Never does: wait on anything. Late replies after it stopped are dropped by pykka.

Adaptive resilience (``Adaptations``, only for the backends that turn it on): an idempotent
call to a hedged backend gets a twin after the backend's p95 (``actors/hedging.py``), sent
past the scope's shared calls, and the first successful reply wins; the loser is not
cancelled (the backend actor cannot cancel an attempt) but its reply is ignored, and its
latency still feeds the p95. By-ids reads of a collapsing backend go to its process-wide
``Collapser`` (``actors/collapser.py``) instead of the directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import gevent
import gevent.event
import pykka

from actors.collapser import Collapser
from actors.hedging import Hedger
from actors.messages import Call, DeadlineExpired, Reply
from actors.plan import FallbackKind, Plan, PlanRun, RunResult, RunStatus, StepState
from actors.runtime import GreenletActor

log = logging.getLogger("frontdoor.actors.supervisor")

#: Extra wait, past the deadline, for a supervisor's answer before the caller answers 504
#: itself. The supervisor answers at its deadline by itself; it is later only when the
#: process is saturated (its greenlet waits behind others) or when it died.
ANSWER_GRACE_S = 0.1


class LateAnswers:
    """Supervisors that had not answered by their deadline plus ``ANSWER_GRACE_S``.

    A live one is late: the process is saturated, which is overload, not a bug; it is
    counted (``late``) and logged as a warning at most once per ``interval_s``, with the
    count. A dead one died without answering, a bug: counted (``dead``) and logged as an
    error each time.
    """

    __slots__ = ("_clock", "_interval_s", "_logged_at", "_unlogged", "dead", "late")

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, interval_s: float = 10.0
    ) -> None:
        self._clock = clock
        self._interval_s = interval_s
        self._logged_at: float | None = None
        self._unlogged = 0
        self.late = 0
        self.dead = 0

    def record(self, request_id: str, *, alive: bool) -> None:
        """One supervisor gave no answer in time; ``alive``: it is still running (late)."""
        if not alive:
            self.dead += 1
            log.error("request %s: its supervisor died without answering", request_id)
            return
        self.late += 1
        self._unlogged += 1
        now = self._clock()
        if self._logged_at is not None and now - self._logged_at < self._interval_s:
            return
        log.warning(
            "request %s: answered 504 at its deadline + %.0f ms, its supervisor not having "
            "answered (process saturated); %d such late answers since the last warning, "
            "%d since start",
            request_id,
            ANSWER_GRACE_S * 1000,
            self._unlogged,
            self.late,
        )
        self._logged_at = now
        self._unlogged = 0


#: This process's late and dead supervisors (``execute_plan``'s default).
LATE_ANSWERS = LateAnswers()


class BackendDirectory(Protocol):
    """Admits calls to the live actors of backends: the actor system, or a scope's
    ``SharedCalls`` in front of it. The one ``submit`` contract: the app's backends and
    ``SharedCalls`` take their directory as this."""

    def submit(self, call: Call) -> Reply | None:
        """Tell ``call`` to its backend's actor (``None``: a reply will come), or return
        the rejection to use at once; never queues a call it rejects."""
        ...


@dataclass(frozen=True, slots=True)
class Adaptations:
    """The hedgers and collapsers of one actor system's backends (those that turn them on),
    and the system itself, where hedges and merged calls go (past a scope's shared calls,
    which would answer a twin with its original's reply)."""

    root: BackendDirectory
    hedgers: Mapping[str, Hedger]
    collapsers: Mapping[str, Collapser]


def build_adaptations(
    states: Mapping[str, Any], root: BackendDirectory, clock: Callable[[], float]
) -> Adaptations | None:
    """The hedgers and collapsers of the backends in ``states`` (an actor system's
    ``BackendState`` by name) that turn them on, calling through ``root``; None when none
    does. Built once by the actor system."""
    hedgers: dict[str, Hedger] = {}
    collapsers: dict[str, Collapser] = {}
    for name, state in states.items():
        spec = state.spec
        if spec.hedge.enabled:
            hedgers[name] = Hedger(
                spec.hedge, breaker=state.breaker, budget=state.retrier.budget, clock=clock
            )
        if spec.collapse.window_ms > 0:
            collapsers[name] = Collapser(spec.collapse, root, clock)
    if not (hedgers or collapsers):
        return None
    return Adaptations(root, hedgers, collapsers)


def adaptations(directory: BackendDirectory) -> Adaptations | None:
    """What ``directory`` offers of hedging and collapsing: ``ActorSystem.adaptations``, or
    the same passed on by a scope's ``SharedCalls``; None for a directory with neither (a
    test's fake). One attribute read per request."""
    found: Adaptations | None = getattr(directory, "adaptations", None)
    return found


@dataclass(frozen=True, slots=True)
class HedgeDue:
    """Told to a supervisor by a step's hedge timer: its call is slower than its p95."""

    index: int


class _Observed:
    """The ``reply_to`` of a hedged backend's calls: feeds every reply's latency to the
    hedger (a loser's too, after its request finished: the p95 must see the slow calls it
    hedged), then passes it on."""

    __slots__ = ("_hedger", "_target")

    def __init__(self, hedger: Hedger, target: Any) -> None:
        self._hedger = hedger
        self._target = target

    def tell(self, message: Any) -> None:
        """Record the call's latency, then deliver its reply (nowhere if the request ended)."""
        if message.attempts:  # an attempt was made: its time says something of the backend
            self._hedger.observe(message.finished_at - message.started_at)
        with contextlib.suppress(pykka.ActorDeadError):
            self._target.tell(message)


class _Hedge:
    """One hedged step's state: its timer, and what its calls have answered."""

    __slots__ = ("call", "hedger", "outstanding", "sent", "timer")

    def __init__(self, call: Call, hedger: Hedger, timer: Any) -> None:
        self.call = call
        self.hedger = hedger
        self.timer = timer
        #: Calls of the step not answered yet (the original, and the twin once sent).
        self.outstanding = 1
        self.sent = False


class RequestSupervisor(GreenletActor):
    """One per request; see the module docstring for its contract."""

    def __init__(
        self,
        run: PlanRun,
        directory: BackendDirectory,
        request_id: str,
        on_done: Callable[[RunResult], None],
        clock: Callable[[], float],
        adapted: Adaptations | None = None,
    ) -> None:
        super().__init__()
        self._run = run
        self._directory = directory
        self._request_id = request_id
        self._on_done: Callable[[RunResult], None] | None = on_done
        self._clock = clock
        self._timer: Any = None
        self._adapted = adapted
        self._hedges: dict[int, _Hedge] = {}

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
            if self._hedges and self._hedged_reply(message):
                return
            self._run.resolve(message.call_id, message)
            self._advance()
        elif isinstance(message, HedgeDue):
            self._send_hedge(message.index)
        elif isinstance(message, DeadlineExpired):
            self._run.expire(self._clock())
            self._finish()

    def on_stop(self) -> None:
        """Never leave the timer behind, whatever stopped us."""
        if self._timer is not None:
            self._timer.close()
        for hedge in self._hedges.values():
            hedge.timer.close()

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
                if self._adapted is not None and self._adapt(self._adapted, index, call):
                    continue
                # Full, between restarts, or not configured: fail fast into the fallback.
                rejection = self._directory.submit(call)
                if rejection is not None:
                    self._run.resolve(index, rejection)
        if self._run.finished:
            self._finish()

    def _adapt(self, adapted: Adaptations, index: int, call: Call) -> bool:
        """Send ``call`` hedged or collapsed if its backend says so; ``True`` if handled."""
        collapser = adapted.collapsers.get(call.backend)
        if collapser is not None:
            found = collapser.collapsible(call)
            if found is not None:
                collapser.submit(call, found)
                return True
        hedger = adapted.hedgers.get(call.backend)
        if hedger is None or not call.request.idempotent:
            return False
        call = dataclasses.replace(call, reply_to=_Observed(hedger, self.actor_ref))
        rejection = self._directory.submit(call)
        if rejection is not None:
            self._run.resolve(index, rejection)
            return True
        timer = gevent.get_hub().loop.timer(hedger.delay_s())
        timer.start(self._tell_hedge_due, index)
        self._hedges[index] = _Hedge(call, hedger, timer)
        return True

    def _send_hedge(self, index: int) -> None:
        """The step's call is slower than its p95: send its twin, if the rules allow."""
        hedge = self._hedges.get(index)
        record = self._run.records[index]
        adapted = self._adapted
        if hedge is None or hedge.sent or record.state is not StepState.RUNNING or not adapted:
            return
        hedge.timer.close()
        if not hedge.hedger.may_hedge(self._clock(), self._run.deadline):
            return
        # Same request, deadline and reply target; its own call id and send time.
        twin = dataclasses.replace(hedge.call, call_id=_twin_id(index), sent_at=self._clock())
        # Past the scope's shared calls, which would attach the twin to its original.
        if adapted.root.submit(twin) is None:
            hedge.hedger.hedged()
            hedge.sent = True
            hedge.outstanding += 1

    def _hedged_reply(self, reply: Reply) -> bool:
        """A reply to a hedged step: the first success wins; a failure waits for the other
        call while one is out. ``True`` if handled here (the plan advanced or nothing to do)."""
        twin = reply.call_id < 0
        index = _twin_id(reply.call_id) if twin else reply.call_id
        hedge = self._hedges.get(index)
        if hedge is None:
            return False
        hedge.outstanding -= 1
        if self._run.records[index].state is not StepState.RUNNING:
            return True  # the loser
        if not reply.outcome.ok and hedge.outstanding > 0:
            return True  # the other call may still succeed
        hedge.timer.close()
        if twin:
            reply = dataclasses.replace(reply, call_id=index)
        self._run.resolve(index, reply)
        record = self._run.records[index]
        if hedge.sent:
            record.hedged = True
            record.attempts += 1  # the other call went to the backend too
            if twin and reply.outcome.ok:
                hedge.hedger.won += 1
        self._advance()
        return True

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

    def _tell_hedge_due(self, index: int) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(HedgeDue(index))


def _twin_id(call_id: int) -> int:
    """A hedge's call id from its step's index, and back: negative, never a step's."""
    return -call_id - 1


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
    late_answers: LateAnswers = LATE_ANSWERS,
) -> RunResult:
    """Run ``plan`` in a new supervisor and wait (this greenlet only) for its result, at
    most until ``deadline`` + ``ANSWER_GRACE_S``: then the run has timed out (a 504), and
    ``late_answers`` tells a late supervisor (overload) from a dead one (a bug).

    ``presets``: results already known for some steps (``PlanRun``)."""
    answer: gevent.event.AsyncResult = gevent.event.AsyncResult()
    run = PlanRun(plan, params, member_id, deadline, presets)
    ref = RequestSupervisor.start(
        run, directory, request_id, answer.set, clock, adaptations(directory)
    )
    wait_s = max(0.0, deadline - clock()) + ANSWER_GRACE_S
    try:
        result: RunResult = answer.get(timeout=wait_s)
    except gevent.Timeout:
        if answer.ready():  # it answered while this greenlet waited to run
            answered: RunResult = answer.get()
            return answered
        alive = ref.is_alive()
        late_answers.record(request_id, alive=alive)
        if alive:
            ref.stop(block=False)  # its answer, when it comes, goes nowhere
        return RunResult(RunStatus.TIMED_OUT, failed_step="supervisor")
    return result
