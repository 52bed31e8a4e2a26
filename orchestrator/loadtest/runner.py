"""Drives one run: issues requests on the schedule, bounds what is in flight, records every
outcome, and stops by itself at the end of the schedule, at a request-count cap, or when
told to (Ctrl-C), always leaving a consistent partial result.

Journeys (``journey.py``): each open-loop arrival starts a device's trip instead of one
request; the trip's greenlet sends its steps in turn, each scheduled a think time after the
previous answer and timed from that scheduled moment, until the trip ends or the run does.

Open loop: a single scheduler greenlet sleeps until each request's scheduled offset and
spawns it; latency counts from the scheduled offset, so when the generator itself is late
that shows (as send lag, and in the latency) instead of being hidden. When ``max_inflight``
requests are already outstanding, the next one is recorded as *not sent* rather than queued
or silently skipped. Closed loop: ``concurrency`` greenlets each send, wait, repeat.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import gevent
import gevent.event
import gevent.pool

from orchestrator.loadtest.client import RequestError, Response
from orchestrator.loadtest.journey import Trip
from orchestrator.loadtest.mix import PlannedRequest
from orchestrator.loadtest.schedule import ClosedLoop, Load, OpenLoop
from orchestrator.loadtest.stats import Recorder

__all__ = ["Progress", "RunPlan", "Runner", "degraded_of", "retry_after_of"]

#: Sends one request; raises ``RequestError`` when no HTTP response came.
Send = Callable[[PlannedRequest], Response]
#: Hard cap on requests per run, whatever the schedule says.
MAX_REQUESTS = 5_000_000
CANCELLED = "cancelled"
GENERATOR_ERROR = "generator-error"


@dataclass(frozen=True, slots=True)
class RunPlan:
    """The shape and bounds of one run."""

    load: Load
    warmup_s: float
    duration_s: float
    max_inflight: int = 512
    max_requests: int = MAX_REQUESTS
    #: After the schedule ends, how long in-flight requests may still take before they are
    #: cancelled (and counted as failed).
    drain_s: float = 11.0

    @property
    def end_s(self) -> float:
        """The last scheduled offset (exclusive): warmup plus measured duration."""
        return self.warmup_s + self.duration_s


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for the live progress line."""

    elapsed_s: float
    rate: float
    completed: int
    errors: int
    not_sent: int
    inflight: int
    #: The p99 of the requests recorded since the last snapshot; None when there were none.
    p99_ms: float | None
    warming_up: bool


def degraded_of(response: Response) -> tuple[str, ...]:
    """The dependencies a successful JSON response says it did without (``meta.degraded``)."""
    if not 200 <= response.status < 300 or "json" not in response.content_type:  # noqa: PLR2004 - 2xx
        return ()
    try:
        body = json.loads(response.body)
    except ValueError:
        return ("<invalid JSON>",)
    meta = body.get("meta") if isinstance(body, dict) else None
    degraded = meta.get("degraded") if isinstance(meta, dict) else None
    if not isinstance(degraded, list):
        return ()
    return tuple(str(item) for item in degraded)


def retry_after_of(response: Response) -> str | None:
    """``"<status> <code>"`` for a response with ``Retry-After`` (``code``: its problem+json
    ``code``, empty if it has none), else ``None``. Only counted, never obeyed."""
    if response.retry_after_s is None:
        return None
    code = ""
    if "json" in response.content_type:
        try:
            body = json.loads(response.body)
        except ValueError:
            body = None
        if isinstance(body, dict) and isinstance(body.get("code"), str):
            code = body["code"]
    return f"{response.status} {code}".rstrip()


class Runner:
    """One run of a plan; ``run()`` blocks until it is over and returns its end offset."""

    def __init__(
        self,
        plan: RunPlan,
        next_request: Callable[[], PlannedRequest],
        send: Send,
        recorder: Recorder,
        *,
        clock: Callable[[], float] = time.perf_counter,
        wait: Callable[[float], bool] | None = None,
        journeys: Callable[[], Trip] | None = None,
    ) -> None:
        """``journeys``: each open-loop arrival starts the trip it returns (then
        ``next_request`` is not used)."""
        self.plan = plan
        self._journeys = journeys
        self.recorder = recorder
        self.inflight = 0
        self.completed = 0
        self.errors = 0
        self.issued = 0
        self.start = 0.0
        self.stopped_early = False
        self._next_request = next_request
        self._send = send
        self._clock = clock
        self._stop = gevent.event.Event()
        # Waiting on the stop event, not sleeping, lets Ctrl-C end a long pause at once.
        self._wait = wait if wait is not None else self._wait_for_stop
        self._group = gevent.pool.Group()
        self._window = (0.0, 0)

    def _wait_for_stop(self, seconds: float) -> bool:
        return bool(self._stop.wait(seconds))

    def stop(self) -> None:
        """End the run early: schedule nothing more, let in-flight requests finish."""
        self.stopped_early = True
        self._stop.set()

    def abort(self) -> None:
        """Stop, and cancel the requests still in flight (they count as failed)."""
        self.stop()
        self._group.kill(block=False)

    @property
    def stopping(self) -> bool:
        """Whether ``stop`` was called."""
        return bool(self._stop.is_set())

    def run(self) -> float:
        """Run the plan; returns the offset (s) at which scheduling ended."""
        self.start = self._clock()
        self._window = (self.start, 0)
        if isinstance(self.plan.load, OpenLoop):
            self._open_loop(self.plan.load)
        else:
            self._closed_loop(self.plan.load)
        ended_s = min(self._clock() - self.start, self.plan.end_s)
        self._drain()
        return ended_s

    def progress(self) -> Progress:
        """Figures since the last call (rate) and so far (the rest)."""
        now = self._clock()
        since, completed_then = self._window
        elapsed = now - since
        rate = (self.completed - completed_then) / elapsed if elapsed > 0 else 0.0
        self._window = (now, self.completed)
        offset = now - self.start
        recent = self.recorder.take_recent()
        return Progress(
            elapsed_s=offset,
            rate=rate,
            completed=self.completed,
            errors=self.errors,
            not_sent=self.recorder.not_sent_total,
            inflight=self.inflight,
            p99_ms=recent.percentile_ms(99.0) if recent.count else None,
            warming_up=offset < self.plan.warmup_s,
        )

    # -- schedules ------------------------------------------------------------------------

    def _open_loop(self, load: OpenLoop) -> None:
        for offset in load.arrivals(self.plan.end_s):
            if self.stopping or self.issued >= self.plan.max_requests:
                return
            delay = self.start + offset - self._clock()
            if delay > 0:
                self._wait(delay)
                if self._stop.is_set():  # stopped while waiting
                    return
            if self._journeys is not None:
                self._group.spawn(self._trip, self._journeys(), offset)
                continue
            self.issued += 1
            request = self._next_request()
            if self.inflight >= self.plan.max_inflight:
                self.recorder.not_sent(request.endpoint, offset)
                continue
            self.inflight += 1
            self._group.spawn(self._one, request, offset, self.start + offset, open_loop=True)
        # A schedule may end early (a last step of rate 0): the run still lasts its duration.
        remaining = self.start + self.plan.end_s - self._clock()
        if remaining > 0 and not self.stopping:
            self._wait(remaining)

    def _closed_loop(self, load: ClosedLoop) -> None:
        end = self.start + self.plan.end_s

        def user() -> None:
            while not self.stopping and self.issued < self.plan.max_requests:
                now = self._clock()
                if now >= end:
                    return
                self.issued += 1
                self.inflight += 1
                self._one(self._next_request(), now - self.start, now, open_loop=False)

        users = [self._group.spawn(user) for _ in range(load.concurrency)]
        # Users end by themselves at the end, the request cap or stop(); abort() kills them.
        gevent.joinall(users)

    def _trip(self, trip: Trip, offset: float) -> None:
        """One device's trip: its steps in turn, each open loop from its scheduled time
        (a think time after the previous answer); it ends with the trip, the run's
        schedule, the request cap, ``stop`` or a full in-flight cap (the step not sent)."""
        scheduled = offset
        for step in trip.steps():
            if self.stopping or scheduled >= self.plan.end_s:
                return
            if self.issued >= self.plan.max_requests:
                return
            delay = self.start + scheduled - self._clock()
            if delay > 0 and self._wait(delay):
                return  # stopped while thinking
            request = trip.request(step)
            self.issued += 1
            if self.inflight >= self.plan.max_inflight:
                self.recorder.not_sent(request.endpoint, scheduled)
                return
            self.inflight += 1
            response = self._one(request, scheduled, self.start + scheduled, open_loop=True)
            if not trip.learn(step, response):
                return
            scheduled = self._clock() - self.start + trip.think_s(step)

    def _drain(self) -> None:
        if not self._group.join(timeout=self.plan.drain_s):
            self._group.kill(block=True, timeout=5)

    # -- one request ----------------------------------------------------------------------

    def _one(
        self, request: PlannedRequest, offset: float, origin: float, *, open_loop: bool
    ) -> Response | None:
        """Send one request and record it; ``origin`` is where its latency counts from.
        Returns its response (None when none came)."""
        try:
            if open_loop:
                self.recorder.sent_late(self._clock() - origin)
            try:
                response = self._send(request)
            except RequestError as exc:
                done = self._clock()
                self.errors += 1
                self._record(request, offset, origin, done, None, exc.kind.value, ())
                self.recorder.sample(request.endpoint, exc.kind.value, str(exc))
                return None
            else:
                done = self._clock()
                if response.status >= 500:  # noqa: PLR2004 - server errors
                    self.errors += 1
                if response.status >= 400:  # noqa: PLR2004 - client and server errors
                    body = response.body.decode("utf-8", "replace")
                    self.recorder.sample(request.endpoint, str(response.status), body)
                degraded = degraded_of(response)
                self._record(
                    request,
                    offset,
                    origin,
                    done,
                    response.status,
                    None,
                    degraded,
                    retry_after_of(response),
                )
                return response
        except BaseException as exc:
            # Killed at the end of the drain, or a bug: still counted, as a failure.
            self.errors += 1
            kind = CANCELLED if isinstance(exc, gevent.GreenletExit) else GENERATOR_ERROR
            self._record(request, offset, origin, self._clock(), None, kind, ())
            raise
        finally:
            self.inflight -= 1
            self.completed += 1

    def _record(
        self,
        request: PlannedRequest,
        offset: float,
        origin: float,
        done: float,
        status: int | None,
        failure: str | None,
        degraded: tuple[str, ...],
        retry_after: str | None = None,
    ) -> None:
        self.recorder.record(
            request.endpoint,
            offset,
            done - self.start,
            done - origin,
            status=status,
            failure=failure,
            degraded=degraded,
            retry_after=retry_after,
        )


def every_second(runner: Runner, report: Callable[[Progress], None]) -> gevent.Greenlet:
    """A greenlet that reports progress once a second until killed."""

    def loop() -> None:
        while True:
            gevent.sleep(1.0)
            report(runner.progress())

    return gevent.spawn(loop)
