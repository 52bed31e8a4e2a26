"""Plans: an endpoint's backend calls as steps with dependencies, and the pure state
machine that runs one.

A ``Step`` names a backend, the steps it needs (``after``), a function that builds its
request from the device parameters and earlier results, and an optional ``Fallback``.
``PlanRun`` holds one request's progress: which steps are ready, what each resolved to,
what is degraded. It does no I/O and knows no actors; ``RequestSupervisor`` drives it.

Selections drive the plan: a step declares the response fields it ``feeds``, and
``Plan.pruned(selection)`` keeps only the steps some selected field needs (plus what they
depend on), before any supervisor starts. A pruned-away step is not run and not degraded.
"""

from __future__ import annotations

import enum
import heapq
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar, cast

from actors.messages import Reply
from actors.outcomes import OWN_TIMEOUT, Outcome
from backends.transport import BackendRequest

T = TypeVar("T")


class PlanError(ValueError):
    """A plan declaration is inconsistent (unknown dependency, cycle, duplicate name)."""


class FallbackKind(enum.Enum):
    """What a step resolves to when its call fails."""

    STATIC = "static"
    LAST_GOOD = "last_good"
    OMIT = "omit"


@dataclass(frozen=True, slots=True)
class Fallback:
    """A step's answer when its backend call fails. Every fallback marks the response degraded."""

    kind: FallbackKind
    value: Any = None

    @classmethod
    def static(cls, value: Any) -> Fallback:
        """Use ``value`` instead (e.g. an empty list of ratings)."""
        return cls(FallbackKind.STATIC, value)

    @classmethod
    def last_good(cls, default: Any = None) -> Fallback:
        """Use the last successful value for the same call, else ``default`` (omitted if None)."""
        return cls(FallbackKind.LAST_GOOD, default)

    @classmethod
    def omit(cls) -> Fallback:
        """Leave the part out; compose sees no result for the step."""
        return cls(FallbackKind.OMIT)


@dataclass(frozen=True, slots=True)
class DeviceError:
    """What a backend's refusal means for the device: a problem code and a detail.

    A step maps the backend statuses that say *the device's request* was wrong (a 409 for
    an e-mail already signed up, a 404 for an unknown title) to one of these, so the
    device gets a precise 4xx instead of a 503. The detail is written for devices.
    """

    code: str
    detail: str
    #: The device parameter at fault, when there is one.
    parameter: str = ""


class Refused(Exception):  # noqa: N818 - a verdict, raised by request builders
    """Raised by a request builder that finds, from earlier results, that the device asked
    for something wrong (a plan the country does not sell): the request is refused."""

    def __init__(self, error: DeviceError) -> None:
        super().__init__(error.detail)
        self.error = error


#: Distinct selections whose pruned plan each plan keeps (least recently used goes first).
PRUNED_CACHE_SIZE = 128


class FieldSelection(Hashable, Protocol):
    """The response fields a device asked for (``orchestrator.frontend.protocol.fields``)."""

    def wants(self, path: tuple[str, ...]) -> bool:
        """Whether any part of the field at ``path`` (names from the body's root) is asked for."""
        ...


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step's request builder and a plan's compose function can see."""

    params: Mapping[str, Any]
    member_id: str | None
    results: Mapping[str, Any]
    degraded: tuple[str, ...] = ()
    #: The device's selection; None means the whole response.
    selection: FieldSelection | None = None
    #: Values derived once per request (``memo``); shared by every context of one run.
    memos: dict[Callable[[StepContext], Any], Any] = field(
        default_factory=dict, compare=False, repr=False
    )

    def memo(self, derive: Callable[[StepContext], T]) -> T:
        """``derive(self)``, computed once per request and reused by every later builder
        and by compose (e.g. one backend reply parsed and validated once, not per use).

        ``derive`` must read only the parameters and results of steps that have already
        resolved wherever it is called: a result never changes once it is recorded. A
        ``derive`` that raises is not remembered.
        """
        try:
            return cast("T", self.memos[derive])
        except KeyError:
            value = derive(self)
            self.memos[derive] = value
            return value

    def has(self, step: str) -> bool:
        """Whether ``step`` produced a value (its own or a fallback's)."""
        return step in self.results

    def wants(self, path: str) -> bool:
        """Whether the response field at dotted ``path`` is asked for (so worth fetching)."""
        return self.selection is None or self.selection.wants(tuple(path.split(".")))


#: Builds a step's backend request; ``None`` means "nothing to ask" (the step is skipped).
RequestBuilder = Callable[[StepContext], BackendRequest | None]


@dataclass(frozen=True, slots=True)
class Step:
    """One backend call in a plan."""

    name: str
    backend: str
    request: RequestBuilder
    after: tuple[str, ...] = ()
    fallback: Fallback | None = None
    #: Dotted response fields (``rows.videos.match``) whose value needs this step's output.
    #: A step that feeds none of the selected fields is pruned; an empty set means the step
    #: always runs (writes, whose effect is the point, and steps not yet declared).
    feeds: frozenset[str] = frozenset()
    #: Backend statuses that mean the device asked for something wrong, and what to answer.
    #: Such a refusal fails the request even when the step has a fallback.
    device_errors: Mapping[int, DeviceError] = field(default_factory=dict, compare=False)

    @property
    def required(self) -> bool:
        """A required step that fails fails the whole request."""
        return self.fallback is None


@dataclass(frozen=True, slots=True)
class Plan:
    """Steps plus the function that composes their results into a response body."""

    steps: tuple[Step, ...]
    compose: Callable[[StepContext], Any]
    #: The selection this plan was pruned for; request builders see it to push it down.
    selection: FieldSelection | None = None
    _order: Mapping[str, int] = field(init=False, repr=False, compare=False)
    #: Per step (by index): how many steps it waits for, and the indexes waiting for it.
    _dep_counts: tuple[int, ...] = field(init=False, repr=False, compare=False)
    _dependents: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _pruned: OrderedDict[FieldSelection, Plan] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        order: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.name in order:
                raise PlanError(f"duplicate step name {step.name!r}")
            for dependency in step.after:
                if dependency not in order:
                    # Requiring dependencies to be declared first makes cycles impossible.
                    raise PlanError(
                        f"step {step.name!r} depends on {dependency!r}, "
                        "which is not declared before it"
                    )
            order[step.name] = index
        object.__setattr__(self, "_order", order)
        dependents: list[list[int]] = [[] for _ in self.steps]
        for index, step in enumerate(self.steps):
            for dependency in dict.fromkeys(step.after):
                dependents[order[dependency]].append(index)
        object.__setattr__(
            self, "_dep_counts", tuple(len(dict.fromkeys(step.after)) for step in self.steps)
        )
        object.__setattr__(self, "_dependents", tuple(tuple(d) for d in dependents))
        object.__setattr__(self, "_pruned", OrderedDict())

    @property
    def backends(self) -> frozenset[str]:
        """Every backend this plan may call."""
        return frozenset(step.backend for step in self.steps)

    def pruned(self, selection: FieldSelection | None) -> Plan:
        """This plan for a device that asked only for ``selection`` (None: everything).

        Keeps each step that feeds a selected field or always runs, and every step those
        depend on. Cached per distinct selection (bounded), so a request pays a dict look-up.
        """
        if selection is None:
            return self
        cache = self._pruned
        found = cache.get(selection)
        if found is not None:
            cache.move_to_end(selection)
            return found
        plan = Plan(self._needed(selection), self.compose, selection)
        cache[selection] = plan
        if len(cache) > PRUNED_CACHE_SIZE:
            cache.popitem(last=False)
        return plan

    def _needed(self, selection: FieldSelection) -> tuple[Step, ...]:
        needed: set[str] = set()
        # Dependencies are declared before their users, so one pass from the end sees every
        # user of a step before the step itself: the transitive closure in O(steps).
        for step in reversed(self.steps):
            if (
                step.name in needed
                or not step.feeds
                or any(selection.wants(tuple(path.split("."))) for path in step.feeds)
            ):
                needed.add(step.name)
                needed.update(step.after)
        return tuple(step for step in self.steps if step.name in needed)


# Looked up once, for steps resolved without a call: on Python 3.11 naming an enum member
# (``Outcome.SKIPPED``) costs a class look-up of ~70 ns.
_PRESET: Final = Outcome.PRESET
_SKIPPED: Final = Outcome.SKIPPED


class StepState(enum.Enum):
    """Where a step is in one run."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


@dataclass(slots=True)
class StepRecord:
    """One step's history in one run; the raw material of traces and metrics."""

    step: Step
    state: StepState = StepState.PENDING
    #: How the step ended: a call's outcome (``actors.outcomes.CALLS``), or ``SKIPPED``,
    #: ``PRESET``, ``REFUSED``; ``UNFINISHED`` until it ends.
    outcome: Outcome = Outcome.UNFINISHED
    error: str = ""
    sent_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    attempts: int = 0
    budget_left_ms: float = 0.0
    degraded: bool = False
    #: A hedge (a second call, ``actors/hedging.py``) went out; ``attempts`` counts it.
    hedged: bool = False


class RunStatus(enum.Enum):
    """How a finished run ended."""

    OK = "ok"
    FAILED = "failed"  # a required step failed
    TIMED_OUT = "timed_out"  # a required step was unfinished at the deadline
    #: A required step's backend did not answer within its own timeout (``timeout_ms``),
    #: before the request's deadline: the backend's bound, not the request's.
    BACKEND_TIMED_OUT = "backend_timed_out"
    REJECTED = "rejected"  # a backend refused the device's request (``RunResult.rejection``)


@dataclass(frozen=True, slots=True)
class RunResult:
    """The end of one run: the composed body, or why there is none."""

    status: RunStatus
    body: Any = None
    degraded: tuple[str, ...] = ()
    failed_step: str = ""
    records: tuple[StepRecord, ...] = ()
    #: Why the device's request was refused, when ``status`` is ``REJECTED``.
    rejection: DeviceError | None = None


class PlanRun:
    """The progress of one plan for one request. Pure: no clocks, no I/O; times are passed in."""

    def __init__(
        self,
        plan: Plan,
        params: Mapping[str, Any],
        member_id: str | None,
        deadline: float,
        presets: Mapping[str, Any] | None = None,
    ) -> None:
        """``presets``: results already known for some steps (a caller that made those calls
        itself passed them on); such a step is resolved at once, without a call, and traced
        as ``preset``."""
        self.plan = plan
        self.params = params
        self.member_id = member_id
        self.deadline = deadline
        self.records: list[StepRecord] = [StepRecord(step) for step in plan.steps]
        self.results: dict[str, Any] = {}
        self._unresolved = len(self.records)
        self._failure: tuple[RunStatus, str] | None = None
        self._rejection: DeviceError | None = None
        self._memos: dict[Callable[[StepContext], Any], Any] = {}
        # Scheduling in O(steps + dependencies) per run: each step counts the dependencies
        # it still waits for, and a step whose count reaches 0 joins the ready heap
        # (smallest index first: declaration order wherever dependencies allow).
        self._waiting = list(plan._dep_counts)  # noqa: SLF001 - same module
        self._ready = [index for index, count in enumerate(self._waiting) if count == 0]
        self._degraded: tuple[str, ...] | None = ()
        self._context: StepContext | None = None
        if presets:
            for record in self.records:
                if record.step.name in presets:
                    self.results[record.step.name] = presets[record.step.name]
                    self._close(record, _PRESET)

    @property
    def finished(self) -> bool:
        """Every step resolved, or a required one failed."""
        return self._failure is not None or self._unresolved == 0

    def context(self) -> StepContext:
        """A read-only view for request builders and compose.

        One view serves every builder until a step falls back (its ``results`` is the
        run's own dict, which only grows; ``degraded`` is the one field that changes)."""
        degraded = self.degraded()
        context = self._context
        if context is None or context.degraded is not degraded:
            context = StepContext(
                self.params,
                self.member_id,
                self.results,
                degraded,
                self.plan.selection,
                self._memos,
            )
            self._context = context
        return context

    def degraded(self) -> tuple[str, ...]:
        """Names of the steps that fell back, in declaration order."""
        if self._degraded is None:  # a step fell back since the last call
            self._degraded = tuple(record.step.name for record in self.records if record.degraded)
        return self._degraded

    def take_ready(self, now: float) -> list[tuple[int, StepRecord, BackendRequest]]:
        """Start every pending step whose dependencies are resolved; return those to dispatch.

        Steps whose builder asks for nothing, or whose dependency left no result, resolve
        on the spot (skipped, or to their fallback), which may make further steps ready.
        """
        dispatch: list[tuple[int, StepRecord, BackendRequest]] = []
        ready = self._ready
        results = self.results
        while ready and self._failure is None:
            index = heapq.heappop(ready)
            record = self.records[index]
            if record.state is not StepState.PENDING:
                continue
            if any(dep not in results for dep in record.step.after):
                self._resolve_failed(record, _SKIPPED, "a dependency has no result", None)
                continue
            try:
                request = record.step.request(self.context())
            except Refused as refused:
                self._refuse(record, Outcome.REFUSED, refused.error)
                break
            except Exception as exc:  # noqa: BLE001 - a builder bug degrades only its step
                self._resolve_failed(record, Outcome.FAILURE, f"request builder: {exc!r}", None)
                continue
            if request is None:
                self._close(record, _SKIPPED)
                continue
            record.state = StepState.RUNNING
            record.sent_at = now
            record.budget_left_ms = max(0.0, (self.deadline - now) * 1000.0)
            dispatch.append((index, record, request))
        return dispatch

    def resolve(self, index: int, reply: Reply) -> None:
        """Record the reply for step ``index``; a late or duplicate reply is ignored."""
        if not 0 <= index < len(self.records):
            return
        record = self.records[index]
        if record.state is not StepState.RUNNING:
            return
        record.started_at = reply.started_at
        record.finished_at = reply.finished_at
        record.attempts = reply.attempts
        outcome = reply.outcome
        if outcome.ok:
            self.results[record.step.name] = reply.value
            self._close(record, outcome)
            return
        rejection = record.step.device_errors.get(reply.status) if reply.status else None
        if rejection is not None:
            self._refuse(record, outcome, rejection, reply.error)
            return
        last_good = (reply.last_good,) if reply.has_last_good else None
        # The call's bound is the smaller of the backend's timeout and the time left: one
        # that fired before the deadline was the backend's own.
        own = (
            outcome is Outcome.TIMEOUT
            and reply.error == OWN_TIMEOUT
            and reply.finished_at < self.deadline
        )
        self._resolve_failed(record, outcome, reply.error, last_good, own_timeout=own)

    def expire(self, now: float) -> None:
        """The deadline passed: every unfinished step times out into its fallback."""
        for record in self.records:
            if record.state is not StepState.DONE and self._failure is None:
                record.finished_at = now
                self._resolve_failed(record, Outcome.TIMEOUT, "deadline exceeded", None)
        if self._unresolved and self._failure is None:  # pragma: no cover - defensive
            self._failure = (RunStatus.TIMED_OUT, "")

    def result(self, compose_error: Callable[[Exception], None] | None = None) -> RunResult:
        """Compose the response, or say why the run failed."""
        records = tuple(self.records)
        if self._failure is not None:
            status, step = self._failure
            return RunResult(status, failed_step=step, records=records, rejection=self._rejection)
        degraded = self.degraded()
        try:
            body = self.plan.compose(self.context())
        except Exception as exc:
            if compose_error is None:
                raise
            compose_error(exc)
            return RunResult(RunStatus.FAILED, failed_step="compose", records=records)
        return RunResult(RunStatus.OK, body, degraded, records=records)

    def _refuse(
        self, record: StepRecord, outcome: Outcome, rejection: DeviceError, error: str = ""
    ) -> None:
        """The device's request is refused: the run ends, fallbacks do not apply."""
        self._close(record, outcome, error or rejection.code)
        self._rejection = rejection
        self._failure = (RunStatus.REJECTED, record.step.name)

    def _close(self, record: StepRecord, outcome: Outcome, error: str = "") -> None:
        """``record`` is resolved: what it ended as, one step fewer to wait for, and its
        dependents one dependency nearer to ready."""
        record.state = StepState.DONE
        record.outcome = outcome
        record.error = error
        self._unresolved -= 1
        waiting = self._waiting
        for dependent in self.plan._dependents[self.plan._order[record.step.name]]:  # noqa: SLF001
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                heapq.heappush(self._ready, dependent)

    def _resolve_failed(
        self,
        record: StepRecord,
        outcome: Outcome,
        error: str,
        last_good: tuple[Any] | None,
        *,
        own_timeout: bool = False,
    ) -> None:
        self._close(record, outcome, error)
        fallback = record.step.fallback
        if fallback is None:
            if own_timeout:
                status = RunStatus.BACKEND_TIMED_OUT
            elif outcome is Outcome.TIMEOUT:
                status = RunStatus.TIMED_OUT
            else:
                status = RunStatus.FAILED
            self._failure = (status, record.step.name)
            return
        record.degraded = True
        self._degraded = None
        if fallback.kind is FallbackKind.STATIC:
            self.results[record.step.name] = fallback.value
        elif fallback.kind is FallbackKind.LAST_GOOD:
            if last_good is not None:
                self.results[record.step.name] = last_good[0]
            elif fallback.value is not None:
                self.results[record.step.name] = fallback.value
