"""Device journeys: the load of people, not of a fixed endpoint mix.

A journey is a device's trip through the API: open the home page, open a title seen there,
play it, send a heartbeat every so often, stop; or look at the plans, sign up with one of
them and, with the token the sign-up returned, start watching. Each step waits for the
previous answer and a think time, and carries what it learnt forward: the token from
sign-up, a title id from the home page or a search, the plan from the plans page, the
resume position from the play decision. So the mix of a journey shapes the load on every
backend the way devices do (a play follows a title page; heartbeats follow plays).

``JourneySpec`` is a scenario's ``[[journeys]]`` table (``scenario.py``); ``Journeys``
starts them open loop (each arrival of the run's schedule, at the journeys' summed
``rate`` per second, is given to a journey with probability rate / total); ``Trip`` is one
device's trip: it builds each step's request by taking a realistic one from the endpoint
mix (``mix.Mix``) and putting in what the trip carries, and learns from each answer. The
runner (``runner.Runner``) sends the steps, each open loop from its own scheduled time, and
records each under ``<journey>:<endpoint>``, so every report, threshold and comparison
breaks results down per step as it does per client group (``groups.py``).

A step that gets no answer, or an error (4xx, 5xx), ends its trip: the person gives up, and
the steps not taken show as fewer requests further down the journey. A degraded 2xx goes
on, as a device does. Think times are jittered (x0.5 to x1.5) so that trips started
together drift apart.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import json
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from backends.simulated.reference import GENERATED_MEMBERS
from orchestrator.loadtest.client import Response
from orchestrator.loadtest.groups import SEPARATOR
from orchestrator.loadtest.mix import ENDPOINTS, Mix, PlannedRequest, TokenSource

__all__ = ["STEP_ENDPOINTS", "JourneySpec", "Journeys", "Step", "Trip"]

#: The endpoints a step may take (those the mix can build).
STEP_ENDPOINTS: Final = tuple(ENDPOINTS)
#: Endpoints that take a member's token: a trip that has none yet (before its sign-up)
#: sends them without one, and is refused.
_MEMBER_ENDPOINTS: Final = frozenset({"home", "search", "title", "play", "heartbeat", "history"})
_JITTER: Final = (0.5, 1.5)
_OK: Final = range(200, 300)


@dataclass(frozen=True, slots=True)
class Step:
    """One step: an endpoint, how often in a row, and the pause after each answer."""

    endpoint: str
    think_s: float = 0.0
    repeat: int = 1


@dataclass(frozen=True, slots=True)
class JourneySpec:
    """A scenario's ``[[journeys]]`` table."""

    name: str
    #: Trips started per second (open loop).
    rate: float
    steps: tuple[Step, ...]
    #: Whether a trip starts signed in (a random member's token); else it has no token
    #: until a ``signup`` step gives it one.
    member: bool = True

    def labels(self) -> frozenset[str]:
        """The endpoint names its steps are recorded under."""
        return frozenset(f"{self.name}{SEPARATOR}{step.endpoint}" for step in self.steps)


class Trip:
    """One device's trip through ``spec``: the requests of its steps, built from what its
    earlier answers taught it."""

    def __init__(
        self, spec: JourneySpec, mix: Mix, rng: random.Random, tokens: TokenSource
    ) -> None:
        self.spec = spec
        self._mix = mix
        self._rng = rng
        #: The trip's bearer token: one member's for the whole trip, or none until sign-up.
        self.token: str | None = (
            tokens(f"m{rng.randint(1, GENERATED_MEMBERS)}") if spec.member else None
        )
        self.title_id: str | None = None
        self.plan_id: str | None = None
        self.position_s = 0
        self.duration_s: int | None = None

    def steps(self) -> Iterator[Step]:
        """Every step in order, repeats included."""
        for step in self.spec.steps:
            for _ in range(step.repeat):
                yield step

    def think_s(self, step: Step) -> float:
        """The pause after ``step``'s answer: its think time, jittered."""
        return step.think_s * self._rng.uniform(*_JITTER)

    def request(self, step: Step) -> PlannedRequest:
        """``step``'s request: a realistic one from the mix, with what the trip carries."""
        request = ENDPOINTS[step.endpoint](self._mix)
        headers = tuple(h for h in request.headers if h[0] != "Authorization")
        if self.token is not None and step.endpoint in _MEMBER_ENDPOINTS:
            headers = (*headers, ("Authorization", f"Bearer {self.token}"))
        path, body = request.path, request.body
        if step.endpoint == "title" and self.title_id is not None:
            path = f"/v1/discovery/titles/{self.title_id}"
        elif step.endpoint in {"play", "heartbeat"} and body is not None:
            body = self._carried_body(step.endpoint, body)
        elif step.endpoint == "signup" and body is not None and self.plan_id is not None:
            body = _with(body, plan_id=self.plan_id)
        return dataclasses.replace(
            request,
            endpoint=f"{self.spec.name}{SEPARATOR}{step.endpoint}",
            path=path,
            headers=headers,
            body=body,
        )

    def learn(self, step: Step, response: Response | None) -> bool:
        """Take what ``step``'s answer says; False when the trip ends here (no answer, or
        an error)."""
        if response is None or response.status not in _OK:
            return False
        data = _json(response)
        if step.endpoint == "home":
            self.title_id = self._pick(
                video.get("id") for row in _items(data, "rows") for video in _items(row, "videos")
            )
        elif step.endpoint == "search":
            self.title_id = self._pick(item.get("id") for item in _items(data, "results"))
        elif step.endpoint == "plans":
            self.plan_id = self._pick(plan.get("id") for plan in _items(data, "plans"))
        elif step.endpoint == "signup" and isinstance(data.get("token"), str):
            self.token = data["token"]
        elif step.endpoint == "title" and isinstance(data.get("duration_s"), int):
            self.duration_s = data["duration_s"]
        elif step.endpoint == "play":
            if data.get("allowed") is False:
                return False
            resume = data.get("resume_position_s")
            self.position_s = resume if isinstance(resume, int) and resume >= 0 else 0
        elif step.endpoint == "heartbeat":
            self.position_s += max(1, round(step.think_s))
        return True

    def _carried_body(self, endpoint: str, body: bytes) -> bytes:
        changes: dict[str, Any] = {}
        if self.title_id is not None:
            changes["title_id"] = self.title_id
        if endpoint == "heartbeat":
            position = self.position_s
            if self.duration_s is not None:
                position = min(position, max(0, self.duration_s - 1))
            changes["position_s"] = position
        return _with(body, **changes)

    def _pick(self, candidates: Iterator[object]) -> str | None:
        ids = [c for c in candidates if isinstance(c, str)]
        return self._rng.choice(ids) if ids else None


class Journeys:
    """Starts trips: each arrival goes to a journey with probability rate / total."""

    def __init__(
        self,
        specs: Sequence[tuple[JourneySpec, Mix]],
        rng: random.Random,
        tokens: TokenSource,
    ) -> None:
        if not specs:
            raise ValueError("no journeys")
        self._specs = [spec for spec, _ in specs]
        self._mixes = [mix for _, mix in specs]
        self._cumulative = list(itertools.accumulate(spec.rate for spec in self._specs))
        self._rng = rng
        self._tokens = tokens

    @property
    def rate(self) -> float:
        """Trips started per second, every journey together."""
        return self._cumulative[-1]

    def next(self) -> Trip:
        """A new trip, its journey drawn by rate."""
        index = bisect.bisect_right(self._cumulative, self._rng.random() * self.rate)
        index = min(index, len(self._specs) - 1)
        return Trip(self._specs[index], self._mixes[index], self._rng, self._tokens)


def _json(response: Response) -> Mapping[str, Any]:
    try:
        data = json.loads(response.body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _items(data: object, key: str) -> list[Mapping[str, Any]]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _with(body: bytes, **changes: Any) -> bytes:
    data = json.loads(body)
    data.update(changes)
    return json.dumps(data).encode()
