"""One instance's workers as operators see them: this process's report, and every worker's
added up.

An instance is one ``frontdoor serve`` process, or one gunicorn master and its N worker
processes. Each worker has its own backend actors, breakers, windows and admission; an
operator asks about the instance. ``LocalWorker`` reports this process as plain data
(``WorkerReport``, JSON both ways) and applies a breaker force here. ``Instance`` answers
for all workers: with no ``Peers`` (one process) its report is this worker's; with a
channel to the other workers (``orchestrator/ops/peers.py``, under gunicorn) it gathers
every live worker's report and merges them (``InstanceReport``): calls, in-flight,
bulkhead capacity, adaptive limits and the hedging and collapsing counts add up; windows
add their histograms (``actors.stats.WindowTotals``), so the instance's p99 is read from
every call, not averaged; a breaker is as bad as its worst worker's (open, then half-open,
then closed), each worker's state shown beside it.

A force goes to every worker and is remembered (``Peers.remember``) for workers started
later, so a worker that gunicorn restarts comes up forced like the others. The result says
which workers applied it and which did not answer.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from actors.outcomes import BreakerForce, BreakerState
from actors.stats import WindowTotals
from actors.system import AdaptiveTotals
from orchestrator.ops.metrics import BackendGauges, GaugeSnapshot
from orchestrator.ops.views import BackendView, BackendViews, EndpointWindows

__all__ = [
    "BackendPart",
    "BreakerPart",
    "EndpointPart",
    "ForceResult",
    "FrontendGauges",
    "Instance",
    "InstanceReport",
    "LocalWorker",
    "MergedBackend",
    "MergedEndpoint",
    "Peers",
    "WorkerReport",
    "adaptive_from_json",
    "adaptive_json",
    "breaker_from_json",
    "breaker_json",
]

#: The fields of an ``adaptive`` block, in the order the JSON shows them.
_ADAPTIVE_FIELDS: Final = tuple(field.name for field in dataclasses.fields(AdaptiveTotals))

#: Worst first: how a breaker of the instance reads when its workers disagree.
_STATE_RANK: Final = {BreakerState.OPEN: 0, BreakerState.HALF_OPEN: 1, BreakerState.CLOSED: 2}


@dataclass(frozen=True, slots=True)
class FrontendGauges:
    """The frontend's own numbers: device requests admitted now, and shed since start."""

    inflight: int
    shed_total: int


@dataclass(frozen=True, slots=True)
class BreakerPart:
    """One worker's breaker: state, operator override, when it last changed (epoch s)."""

    state: str
    override: str | None
    changed_at: float | None


@dataclass(frozen=True, slots=True)
class BackendPart:
    """One worker's view of one backend."""

    name: str
    breaker: BreakerPart
    inflight: int
    queued: int
    max_concurrent: int
    max_queue: int
    window: WindowTotals
    #: The adaptive concurrency limit; None without ``limit.adaptive``.
    limit: int | None = None
    #: Hedging and collapsing counts since the worker started; None with neither on.
    adaptive: AdaptiveTotals | None = None


@dataclass(frozen=True, slots=True)
class EndpointPart:
    """One worker's view of one endpoint (``name`` is ``"{api}.{endpoint}"``)."""

    name: str
    api: str
    endpoint: str
    team: str
    method: str
    path: str
    inflight: int
    window: WindowTotals


@dataclass(frozen=True, slots=True)
class WorkerReport:
    """Everything one worker process tells about itself."""

    pid: int
    #: When the worker started (epoch s): a restarted worker is a new pid and a new start.
    started_at: float
    backends: tuple[BackendPart, ...]
    endpoints: tuple[EndpointPart, ...]
    frontend: FrontendGauges

    def to_json(self) -> dict[str, Any]:
        """Plain JSON (what a worker sends another)."""
        return {
            "pid": self.pid,
            "started_at": self.started_at,
            "frontend": {
                "inflight": self.frontend.inflight,
                "shed_total": self.frontend.shed_total,
            },
            "backends": [
                {
                    "name": b.name,
                    "breaker": breaker_json(b.breaker),
                    "inflight": b.inflight,
                    "queued": b.queued,
                    "max_concurrent": b.max_concurrent,
                    "max_queue": b.max_queue,
                    "limit": b.limit,
                    "adaptive": adaptive_json(b.adaptive),
                    "window": b.window.to_json(),
                }
                for b in self.backends
            ],
            "endpoints": [
                {
                    "name": e.name,
                    "api": e.api,
                    "endpoint": e.endpoint,
                    "team": e.team,
                    "method": e.method,
                    "path": e.path,
                    "inflight": e.inflight,
                    "window": e.window.to_json(),
                }
                for e in self.endpoints
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> WorkerReport:
        """Read ``to_json``'s output; ``ValueError`` for anything else."""
        try:
            frontend = data["frontend"]
            return cls(
                pid=int(data["pid"]),
                started_at=float(data["started_at"]),
                frontend=FrontendGauges(int(frontend["inflight"]), int(frontend["shed_total"])),
                backends=tuple(
                    BackendPart(
                        name=str(b["name"]),
                        breaker=breaker_from_json(b["breaker"]),
                        inflight=int(b["inflight"]),
                        queued=int(b["queued"]),
                        max_concurrent=int(b["max_concurrent"]),
                        max_queue=int(b["max_queue"]),
                        window=WindowTotals.from_json(b["window"]),
                        limit=None if b["limit"] is None else int(b["limit"]),
                        adaptive=adaptive_from_json(b.get("adaptive")),
                    )
                    for b in data["backends"]
                ),
                endpoints=tuple(
                    EndpointPart(
                        name=str(e["name"]),
                        api=str(e["api"]),
                        endpoint=str(e["endpoint"]),
                        team=str(e["team"]),
                        method=str(e["method"]),
                        path=str(e["path"]),
                        inflight=int(e["inflight"]),
                        window=WindowTotals.from_json(e["window"]),
                    )
                    for e in data["endpoints"]
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a worker report: {exc!r}") from None


def breaker_json(part: BreakerPart) -> dict[str, Any]:
    """A breaker part as JSON: ``state``, ``override``, ``changed_at`` (epoch s or null)."""
    return {"state": part.state, "override": part.override, "changed_at": part.changed_at}


def breaker_from_json(data: Mapping[str, Any]) -> BreakerPart:
    """Read ``breaker_json``'s output; ``ValueError`` (or ``KeyError``) for anything else."""
    state = str(data["state"])
    if state not in _STATE_RANK:
        raise ValueError(f"unknown breaker state {state[:20]!r}")
    override = data.get("override")
    changed = data.get("changed_at")
    return BreakerPart(
        state,
        None if override is None else str(override),
        None if changed is None else float(changed),
    )


def adaptive_json(totals: AdaptiveTotals | None) -> dict[str, int | None] | None:
    """An ``adaptive`` block as JSON: every ``AdaptiveTotals`` field, or null."""
    if totals is None:
        return None
    return {name: getattr(totals, name) for name in _ADAPTIVE_FIELDS}


def adaptive_from_json(data: object) -> AdaptiveTotals | None:
    """Read ``adaptive_json``'s output (null or absent: None); ``ValueError`` (or
    ``TypeError``) for anything else."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"adaptive is a {type(data).__name__}, not an object")
    values = {name: data.get(name) for name in _ADAPTIVE_FIELDS}
    return AdaptiveTotals(
        **{name: None if value is None else int(value) for name, value in values.items()}
    )


# ---------------------------------------------------------------------------------------
# This process.


class LocalWorker:
    """This process: its report, and a breaker force applied here."""

    def __init__(
        self,
        backends: BackendViews,
        endpoints: EndpointWindows,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        pid: Callable[[], int] = os.getpid,
    ) -> None:
        self._backends = backends
        self._endpoints = endpoints
        self._clock = clock
        self._wall_clock = wall_clock
        self._pid = pid
        self._frontend: Callable[[], FrontendGauges] = lambda: FrontendGauges(0, 0)
        self.started_at = wall_clock()

    @property
    def pid(self) -> int:
        """This process's id (read each time: a worker forked after building keeps none of
        its parent's)."""
        return self._pid()

    def bind_frontend(self, gauges: Callable[[], FrontendGauges]) -> None:
        """Where the frontend's gauges come from (the app, built after this)."""
        self._frontend = gauges

    def backend_names(self) -> list[str]:
        """Every backend this worker calls."""
        return [view.name for view in self._backends.backend_views()]

    def report(self) -> WorkerReport:
        """This worker now."""
        return WorkerReport(
            pid=self.pid,
            started_at=self.started_at,
            backends=tuple(
                self._backend_part(view)
                for view in sorted(self._backends.backend_views(), key=lambda v: v.name)
            ),
            endpoints=tuple(
                EndpointPart(
                    name=f"{info.api}.{info.name}",
                    api=info.api,
                    endpoint=info.name,
                    team=info.team,
                    method=info.method,
                    path=info.path,
                    inflight=inflight,
                    window=totals,
                )
                for info, inflight, totals in self._endpoints.totals()
            ),
            frontend=self._frontend(),
        )

    def force(self, backend: str, force: str) -> BreakerPart | None:
        """Apply ``force`` (``open``, ``closed``, ``clear``) to ``backend`` here; its breaker
        after, or None when this worker has no such backend."""
        BreakerForce(force)  # ValueError for anything else
        for view in self._backends.backend_views():
            if view.name == backend:
                view.force_breaker(force)
                return self._breaker(view)
        return None

    def _breaker(self, view: BackendView) -> BreakerPart:
        changed = view.breaker_changed_at
        at = None if changed is None else self._wall_clock() - max(0.0, self._clock() - changed)
        return BreakerPart(str(view.breaker_state), view.breaker_override, at)

    def _backend_part(self, view: BackendView) -> BackendPart:
        return BackendPart(
            name=view.name,
            breaker=self._breaker(view),
            inflight=view.inflight,
            queued=view.queued,
            max_concurrent=view.max_concurrent,
            max_queue=view.max_queue,
            window=view.window_totals(),
            limit=view.limit,
            adaptive=view.adaptive,
        )


# ---------------------------------------------------------------------------------------
# Every worker.


class Peers(Protocol):
    """The other workers of the instance (``orchestrator/ops/peers.py``)."""

    def reports(self) -> list[tuple[int, WorkerReport | None]]:
        """Every other live worker's report; None for one that did not answer in time."""
        ...

    def force(self, backend: str, force: str) -> list[tuple[int, BreakerPart | None]]:
        """Apply a force in every other live worker; None for one that did not answer."""
        ...

    def remember(self, backend: str, force: str) -> None:
        """Keep the force for workers started later (``clear`` forgets it)."""
        ...

    def pids(self) -> list[int]:
        """Every worker that has joined and not been found gone (this one included)."""
        ...


@dataclass(frozen=True, slots=True)
class MergedBackend:
    """One backend over every worker: sums, the merged window, the worst breaker."""

    name: str
    breaker: BreakerPart
    #: How many workers' breakers are in each state.
    states: Mapping[str, int]
    inflight: int
    queued: int
    max_concurrent: int
    max_queue: int
    window: WindowTotals
    #: Each worker's own part, by pid.
    workers: tuple[tuple[int, BackendPart], ...]
    #: The adaptive limits of the workers that have one, added up; None if none has.
    limit: int | None = None
    #: Every worker's hedging and collapsing counts, added up; None if no worker has any.
    adaptive: AdaptiveTotals | None = None


@dataclass(frozen=True, slots=True)
class MergedEndpoint:
    """One endpoint over every worker."""

    name: str
    api: str
    endpoint: str
    team: str
    method: str
    path: str
    inflight: int
    window: WindowTotals
    workers: tuple[tuple[int, EndpointPart], ...]


@dataclass(frozen=True, slots=True)
class InstanceReport:
    """Every worker that answered (by pid), those that did not, and who answers."""

    workers: tuple[WorkerReport, ...]
    missing: tuple[int, ...]
    served_by: int

    @property
    def pids(self) -> list[int]:
        """The workers this report covers."""
        return [worker.pid for worker in self.workers]

    def workers_json(self) -> dict[str, Any]:
        """What every admin answer says of the workers it covers."""
        return {
            "served_by": self.served_by,
            "workers": [
                {"pid": worker.pid, "started_at": worker.started_at} for worker in self.workers
            ],
            "missing": list(self.missing),
        }

    def frontend(self) -> FrontendGauges:
        """The instance's frontend gauges: every worker's added up."""
        return FrontendGauges(
            sum(w.frontend.inflight for w in self.workers),
            sum(w.frontend.shed_total for w in self.workers),
        )

    def backends(self) -> list[MergedBackend]:
        """Every backend of any worker, by name."""
        by_name: dict[str, list[tuple[int, BackendPart]]] = {}
        for worker in self.workers:
            for part in worker.backends:
                by_name.setdefault(part.name, []).append((worker.pid, part))
        return [_merge_backend(name, parts) for name, parts in sorted(by_name.items())]

    def endpoints(self) -> list[MergedEndpoint]:
        """Every endpoint of any worker, by name."""
        by_name: dict[str, list[tuple[int, EndpointPart]]] = {}
        for worker in self.workers:
            for part in worker.endpoints:
                by_name.setdefault(part.name, []).append((worker.pid, part))
        return [_merge_endpoint(parts) for _, parts in sorted(by_name.items())]


def _merge_backend(name: str, parts: Sequence[tuple[int, BackendPart]]) -> MergedBackend:
    breakers = [part.breaker for _, part in parts]
    worst = min(breakers, key=lambda b: _STATE_RANK.get(BreakerState(b.state), 2)).state
    overrides = {b.override for b in breakers}
    changes = [b.changed_at for b in breakers if b.changed_at is not None]
    states: dict[str, int] = {}
    for breaker in breakers:
        states[breaker.state] = states.get(breaker.state, 0) + 1
    return MergedBackend(
        name=name,
        breaker=BreakerPart(
            worst,
            overrides.pop() if len(overrides) == 1 else None,
            max(changes) if changes else None,
        ),
        states=states,
        inflight=sum(part.inflight for _, part in parts),
        queued=sum(part.queued for _, part in parts),
        max_concurrent=sum(part.max_concurrent for _, part in parts),
        max_queue=sum(part.max_queue for _, part in parts),
        window=WindowTotals.merge(part.window for _, part in parts),
        workers=tuple(parts),
        limit=_sum_known(part.limit for _, part in parts),
        adaptive=_sum_adaptive([part.adaptive for _, part in parts]),
    )


def _sum_known(values: Iterable[int | None]) -> int | None:
    """Limits add up like bulkhead sizes, counts like calls; None when no worker has one."""
    known = [value for value in values if value is not None]
    return sum(known) if known else None


def _sum_adaptive(blocks: Sequence[AdaptiveTotals | None]) -> AdaptiveTotals | None:
    """Each count added up over the workers that have it (None where none has); None when
    no worker hedges or collapses."""
    known = [block for block in blocks if block is not None]
    if not known:
        return None
    return AdaptiveTotals(
        **{name: _sum_known(getattr(block, name) for block in known) for name in _ADAPTIVE_FIELDS}
    )


def _merge_endpoint(parts: Sequence[tuple[int, EndpointPart]]) -> MergedEndpoint:
    first = parts[0][1]
    return MergedEndpoint(
        name=first.name,
        api=first.api,
        endpoint=first.endpoint,
        team=first.team,
        method=first.method,
        path=first.path,
        inflight=sum(part.inflight for _, part in parts),
        window=WindowTotals.merge(part.window for _, part in parts),
        workers=tuple(parts),
    )


@dataclass(frozen=True, slots=True)
class ForceResult:
    """A force over the instance: the breaker before and after (merged), and per worker the
    breaker after it applied the force, or None for a worker that did not answer."""

    before: MergedBackend
    after: MergedBackend
    applied: tuple[tuple[int, BreakerPart | None], ...]

    @property
    def missing(self) -> list[int]:
        """Workers that did not confirm."""
        return [pid for pid, part in self.applied if part is None]


class Instance:
    """The instance's workers: this one, and its ``Peers`` once attached."""

    def __init__(self, local: LocalWorker, peers: Peers | None = None) -> None:
        self.local = local
        self._peers = peers

    @property
    def shared(self) -> bool:
        """Whether other workers are reached (a pre-fork server)."""
        return self._peers is not None

    def attach(self, peers: Peers) -> None:
        """Reach the other workers through ``peers`` from now on."""
        self._peers = peers

    def report(self) -> InstanceReport:
        """Every worker now (this one first to be asked, then the others concurrently)."""
        local = self.local.report()
        workers = [local]
        missing: list[int] = []
        if self._peers is not None:
            for pid, report in self._peers.reports():
                if report is None:
                    missing.append(pid)
                else:
                    workers.append(report)
        workers.sort(key=lambda w: w.pid)
        return InstanceReport(tuple(workers), tuple(sorted(missing)), local.pid)

    def force(self, backend: str, force: str) -> ForceResult | None:
        """Apply ``force`` on every worker (remembered for workers started later); None
        when this worker has no such backend."""
        if backend not in self.local.backend_names():
            return None
        before = self._merged(backend)
        if self._peers is not None:
            self._peers.remember(backend, force)  # before the fan-out: see peers.py
        mine = self.local.force(backend, force)
        applied: list[tuple[int, BreakerPart | None]] = [(self.local.pid, mine)]
        if self._peers is not None:
            applied.extend(self._peers.force(backend, force))
        after = self._merged(backend)
        return ForceResult(before, after, tuple(sorted(applied, key=lambda item: item[0])))

    def gauges(self, local: GaugeSnapshot) -> GaugeSnapshot:
        """What this worker sends to statsd each interval, given its own ``local`` gauges.

        Gauges do not add up in statsd: the last process to send one wins. So under a
        pre-fork server one worker, the lowest pid, sends the instance's (in-flight and
        queued summed, a breaker open if any worker's is not closed), and the others send
        none. Shed counts are counters, which do add up: every worker sends its own.
        """
        if self._peers is None:
            return local
        if self.local.pid != min(self._peers.pids(), default=self.local.pid):
            return dataclasses.replace(local, send_gauges=False)
        report = self.report()
        return GaugeSnapshot(
            backends={
                merged.name: BackendGauges(
                    inflight=merged.inflight,
                    queued=merged.queued,
                    breaker_open=merged.breaker.state != BreakerState.CLOSED,
                    limit=merged.limit,
                )
                for merged in report.backends()
            },
            frontend_inflight=report.frontend().inflight,
            shed_total=local.shed_total,
        )

    def _merged(self, backend: str) -> MergedBackend:
        for merged in self.report().backends():
            if merged.name == backend:
                return merged
        raise KeyError(backend)  # pragma: no cover - checked against local names first
