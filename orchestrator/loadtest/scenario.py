"""Scenario files: the load, the endpoint mix and a fault timeline, in a small TOML file.

::

    description = "A playback dependency hangs mid-run."
    [load]
    rate = 150            # req/s; or steps = [{at_s = 0, rate = 50}, {at_s = 10, rate = 100}]
    duration_s = 30       # measured, after the warmup
    warmup_s = 5          # excluded from results
    [mix]
    home = 60
    play = 10
    [[faults]]
    at_s = 15             # seconds since the run started (warmup included)
    service = "licensing"
    hang = true
    [[faults]]
    at_s = 30
    service = "licensing"
    heal = true

Several clients in one run (``groups.py``): ``[[clients]]`` tables, each with its own
``rate``, and optionally a fixed ``member`` (its token on every member request), a
loopback ``source`` address to send from and a ``mix``; ``[load]`` then gives no rate (the
run's rate is the clients' sum)::

    [[clients]]
    name = "flooder"
    rate = 100
    member = "m1"
    source = "127.0.0.2"
    mix = { home = 1 }

Device journeys (``journey.py``): ``[[journeys]]`` tables, each a ``name``, the trips
started per second (``rate``), whether a trip starts signed in (``member``, default true)
and its ``steps`` in order; ``[load]`` then gives no rate (the run starts the journeys'
summed rate of trips a second), and each step is recorded as ``<journey>:<endpoint>``::

    [[journeys]]
    name = "watch"
    rate = 2
    steps = [
      { endpoint = "home", think_s = 4 },     # a title from the home page...
      { endpoint = "title", think_s = 6 },    # ... is opened, then played
      { endpoint = "play", think_s = 10 },
      { endpoint = "heartbeat", repeat = 3, think_s = 10 },
    ]

Pass/fail criteria (``threshold.py``): a ``[thresholds]`` table, selector to a list of
``METRIC OP VALUE`` strings; a phase is chosen with ``@`` in the (quoted) key::

    [thresholds]
    all = ["errors<1%"]
    "play@fault" = ["p99<1500ms"]

Every problem is a ``ScenarioError`` naming the file and the key, e.g.
``scenarios/x.toml: faults[1].error_rate: must be a number from 0 to 1``.
"""

from __future__ import annotations

import ipaddress
import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.simulated.faults import Fault, FaultError
from backends.simulated.reference import SERVICES
from orchestrator.loadtest.groups import SEPARATOR, ClientGroup
from orchestrator.loadtest.journey import STEP_ENDPOINTS, JourneySpec, Step
from orchestrator.loadtest.mix import DEFAULT_MIX, ENDPOINTS
from orchestrator.loadtest.phase import FaultEvent, PhaseMap
from orchestrator.loadtest.schedule import ClosedLoop, Load, OpenLoop, RateStep
from orchestrator.loadtest.threshold import Threshold, ThresholdError, parse_table

__all__ = ["MAX_DURATION_S", "MAX_WARMUP_S", "Scenario", "ScenarioError", "load_scenario"]

#: Upper bounds that keep every run finite and short enough to sit through.
MAX_DURATION_S = 3600.0
MAX_WARMUP_S = 600.0
_TOP_KEYS = frozenset({"description", "load", "mix", "faults", "clients", "journeys", "thresholds"})
_JOURNEY_KEYS = frozenset({"name", "rate", "member", "steps"})
_STEP_KEYS = frozenset({"endpoint", "think_s", "repeat"})
#: Bounds that keep a trip finite: steps, repeats and think times.
MAX_JOURNEY_STEPS = 50
MAX_REPEAT = 1000
MAX_THINK_S = 600.0
_CLIENT_KEYS = frozenset({"name", "rate", "member", "source", "mix"})
_CLIENT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_NAME_RULE = "must be a name of [a-z0-9_-], up to 32 characters"
_MEMBER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LOAD_KEYS = frozenset(
    {"rate", "steps", "concurrency", "duration_s", "warmup_s", "max_inflight", "timeout_s"}
)
_FAULT_KEYS = frozenset({"at_s", "service", "heal"})


class ScenarioError(ValueError):
    """A scenario file that cannot be run; ``key`` names the offending key."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")
        self.key = key


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario; every field has been validated."""

    name: str
    description: str
    load: Load
    duration_s: float
    warmup_s: float
    mix: Mapping[str, float]
    faults: tuple[FaultEvent, ...] = ()
    max_inflight: int | None = None
    timeout_s: float | None = None
    #: Client groups (``[[clients]]``); empty: one client, the whole load.
    clients: tuple[ClientGroup, ...] = ()
    #: What the run must show to pass (``[thresholds]``); checked after the run.
    thresholds: tuple[Threshold, ...] = ()
    #: Device journeys (``[[journeys]]``); empty: requests drawn from the mix.
    journeys: tuple[JourneySpec, ...] = ()

    @property
    def end_s(self) -> float:
        """When the run ends: warmup plus the measured duration."""
        return self.warmup_s + self.duration_s

    def phase_map(self) -> PhaseMap:
        """The run's phases: cut at each fault event; a rate ramp without faults gets one
        phase per step (how the service holds up at each offered load)."""
        load = self.load
        if not self.faults and isinstance(load, OpenLoop) and len(load.steps) > 1:
            steps = [(step.at_s, step.rate) for step in load.steps]
            return PhaseMap.from_steps(steps, self.warmup_s, self.end_s)
        return PhaseMap.from_timeline(self.faults, self.warmup_s, self.end_s)

    def endpoints(self) -> frozenset[str]:
        """Every endpoint name the run can record (``client:endpoint`` with client groups,
        ``journey:endpoint`` with journeys)."""
        if self.journeys:
            return frozenset().union(*(spec.labels() for spec in self.journeys))
        if not self.clients:
            return frozenset(name for name, weight in self.mix.items() if weight > 0)
        return frozenset(
            f"{group.name}{SEPARATOR}{name}"
            for group in self.clients
            for name, weight in (group.mix or self.mix).items()
            if weight > 0
        )


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, "", f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(source, "", f"not valid TOML: {exc}") from exc
    return parse_scenario(data, name=Path(path).stem, source=source)


class _Checker:
    """Typed reads from decoded TOML that fail with the key's full name."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, problem: str) -> ScenarioError:
        return ScenarioError(self.source, key, problem)

    def table(self, value: object, key: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(key, "must be a table")
        return value

    def known(self, table: Mapping[str, Any], allowed: frozenset[str], prefix: str) -> None:
        for name in table:
            if name not in allowed:
                raise self.fail(
                    f"{prefix}{name}", f"unknown key; expected one of {', '.join(sorted(allowed))}"
                )

    def named_tables(
        self, value: object, key: str, allowed: frozenset[str]
    ) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
        """Each table of the ``[[key]]`` array, its keys checked and its ``name`` a unique
        name of [a-z0-9_-]: (where it is, e.g. ``clients[1]``, its name, the table)."""
        if not isinstance(value, list):
            raise self.fail(key, f"must be an array of tables ([[{key}]])")
        seen: set[str] = set()
        for index, item in enumerate(value):
            where = f"{key}[{index}]"
            table = self.table(item, where)
            self.known(table, allowed, f"{where}.")
            name = table.get("name")
            if not isinstance(name, str) or not _CLIENT_NAME.fullmatch(name):
                raise self.fail(
                    f"{where}.name", "must be a name of [a-z0-9_-], up to 32 characters"
                )
            if name in seen:
                raise self.fail(f"{where}.name", f"{name!r} is used by another {key[:-1]}")
            seen.add(name)
            yield where, name, table

    def number(self, value: object, key: str, low: float, high: float) -> float:
        # bool is an int subclass, but `rate = true` is a mistake, not 1 req/s.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {type(value).__name__}")
        if not math.isfinite(value) or not low <= value <= high:
            raise self.fail(key, f"must be from {low:g} to {high:g}")
        return float(value)

    def integer(self, value: object, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be a whole number")
        if not low <= value <= high:
            raise self.fail(key, f"must be from {low} to {high}")
        return value


def parse_scenario(data: Mapping[str, Any], *, name: str, source: str) -> Scenario:
    """Validate decoded TOML into a ``Scenario``."""
    check = _Checker(source)
    check.known(data, _TOP_KEYS, "")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise check.fail("description", "must be a string")
    if "load" not in data:
        raise check.fail("load", "missing; a scenario needs a [load] table")
    load_table = check.table(data["load"], "load")
    check.known(load_table, _LOAD_KEYS, "load.")
    clients = _clients(check, data.get("clients", []))
    journeys = _journeys(check, data.get("journeys", []))
    if clients and journeys:
        raise check.fail("journeys", "give [[journeys]] or [[clients]], not both")
    if clients or journeys:
        if any(key in load_table for key in ("rate", "steps", "concurrency")):
            table = "[[clients]]" if clients else "[[journeys]]"
            raise check.fail("load", f"give no rate, steps or concurrency with {table}")
        rates = [client.rate for client in clients] or [spec.rate for spec in journeys]
        load: Load = OpenLoop.constant(sum(rates))
    else:
        load = _load(check, load_table)
    if "duration_s" not in load_table:
        raise check.fail("load.duration_s", "missing")
    duration_s = check.number(load_table["duration_s"], "load.duration_s", 0.1, MAX_DURATION_S)
    warmup_s = check.number(load_table.get("warmup_s", 0), "load.warmup_s", 0, MAX_WARMUP_S)
    max_inflight = (
        check.integer(load_table["max_inflight"], "load.max_inflight", 1, 10_000)
        if "max_inflight" in load_table
        else None
    )
    timeout_s = (
        check.number(load_table["timeout_s"], "load.timeout_s", 0.01, 300)
        if "timeout_s" in load_table
        else None
    )
    mix = _mix(check, data.get("mix"))
    faults = _faults(check, data.get("faults", []), warmup_s + duration_s)
    thresholds = _thresholds(check, data.get("thresholds", {}))
    return Scenario(
        name,
        description,
        load,
        duration_s,
        warmup_s,
        mix,
        faults,
        max_inflight,
        timeout_s,
        clients,
        thresholds,
        journeys,
    )


def _thresholds(check: _Checker, value: object) -> tuple[Threshold, ...]:
    table = check.table(value, "thresholds")
    try:
        return parse_table(table, source=check.source)
    except ThresholdError as exc:
        raise check.fail("", str(exc)) from exc


def _clients(check: _Checker, value: object) -> tuple[ClientGroup, ...]:
    groups: list[ClientGroup] = []
    for key, name, table in check.named_tables(value, "clients", _CLIENT_KEYS):
        if "rate" not in table:
            raise check.fail(f"{key}.rate", "missing")
        rate = check.number(table["rate"], f"{key}.rate", 0.001, 20_000)
        member = table.get("member")
        if member is not None and not (isinstance(member, str) and _MEMBER_ID.fullmatch(member)):
            raise check.fail(f"{key}.member", "must be a member id of [A-Za-z0-9_-]")
        source = table.get("source")
        if source is not None and not _is_loopback(source):
            raise check.fail(f"{key}.source", "must be a loopback IP address (127.0.0.0/8, ::1)")
        mix = _mix(check, table["mix"]) if "mix" in table else None
        groups.append(ClientGroup(name, rate, member, source, mix))
    return tuple(groups)


def _journeys(check: _Checker, value: object) -> tuple[JourneySpec, ...]:
    specs: list[JourneySpec] = []
    for key, name, table in check.named_tables(value, "journeys", _JOURNEY_KEYS):
        if "rate" not in table:
            raise check.fail(f"{key}.rate", "missing (trips started per second)")
        rate = check.number(table["rate"], f"{key}.rate", 0.001, 5_000)
        member = table.get("member", True)
        if not isinstance(member, bool):
            raise check.fail(f"{key}.member", "must be true or false")
        steps_value = table.get("steps")
        if not isinstance(steps_value, list) or not 1 <= len(steps_value) <= MAX_JOURNEY_STEPS:
            raise check.fail(
                f"{key}.steps", f"must be an array of 1 to {MAX_JOURNEY_STEPS} step tables"
            )
        steps = []
        for number, raw in enumerate(steps_value):
            where = f"{key}.steps[{number}]"
            step = check.table(raw, where)
            check.known(step, _STEP_KEYS, f"{where}.")
            endpoint = step.get("endpoint")
            if endpoint not in STEP_ENDPOINTS:
                raise check.fail(
                    f"{where}.endpoint", f"expected one of {', '.join(STEP_ENDPOINTS)}"
                )
            think_s = check.number(step.get("think_s", 0), f"{where}.think_s", 0, MAX_THINK_S)
            repeat = check.integer(step.get("repeat", 1), f"{where}.repeat", 1, MAX_REPEAT)
            steps.append(Step(endpoint, think_s, repeat))
        specs.append(JourneySpec(name, rate, tuple(steps), member))
    return tuple(specs)


def _is_loopback(value: object) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_address(value).is_loopback
    except ValueError:
        return False


def _load(check: _Checker, table: Mapping[str, Any]) -> Load:
    given = [key for key in ("rate", "steps", "concurrency") if key in table]
    if len(given) != 1:
        raise check.fail("load", "give exactly one of rate, steps or concurrency")
    if "concurrency" in table:
        return ClosedLoop(check.integer(table["concurrency"], "load.concurrency", 1, 10_000))
    if "rate" in table:
        return OpenLoop.constant(check.number(table["rate"], "load.rate", 0.001, 20_000))
    steps_value = table["steps"]
    if not isinstance(steps_value, list) or not steps_value:
        raise check.fail("load.steps", "must be a non-empty array of {at_s, rate} tables")
    steps: list[RateStep] = []
    for index, item in enumerate(steps_value):
        key = f"load.steps[{index}]"
        step = check.table(item, key)
        check.known(step, frozenset({"at_s", "rate"}), f"{key}.")
        for required in ("at_s", "rate"):
            if required not in step:
                raise check.fail(f"{key}.{required}", "missing")
        at_s = check.number(step["at_s"], f"{key}.at_s", 0, MAX_DURATION_S + MAX_WARMUP_S)
        rate = check.number(step["rate"], f"{key}.rate", 0, 20_000)
        if steps and at_s <= steps[-1].at_s:
            raise check.fail(f"{key}.at_s", "steps must be in increasing at_s order")
        steps.append(RateStep(at_s, rate))
    if steps[0].at_s != 0:
        raise check.fail("load.steps[0].at_s", "the first step must start at 0")
    return OpenLoop(tuple(steps))


def _mix(check: _Checker, value: object) -> Mapping[str, float]:
    if value is None:
        return dict(DEFAULT_MIX)
    table = check.table(value, "mix")
    check.known(table, frozenset(ENDPOINTS), "mix.")
    weights = {name: check.number(w, f"mix.{name}", 0, 1e6) for name, w in table.items()}
    if sum(weights.values()) <= 0:
        raise check.fail("mix", "weights must add up to more than 0")
    return weights


def _faults(check: _Checker, value: object, end_s: float) -> tuple[FaultEvent, ...]:
    if not isinstance(value, list):
        raise check.fail("faults", "must be an array of tables ([[faults]])")
    events = [
        _fault_event(check, f"faults[{index}]", check.table(item, f"faults[{index}]"), end_s)
        for index, item in enumerate(value)
    ]
    events.sort(key=lambda event: event.at_s)
    return tuple(events)


def _fault_event(check: _Checker, key: str, table: Mapping[str, Any], end_s: float) -> FaultEvent:
    fault_keys = frozenset(Fault.__dataclass_fields__)
    check.known(table, _FAULT_KEYS | fault_keys, f"{key}.")
    if "at_s" not in table:
        raise check.fail(f"{key}.at_s", "missing")
    at_s = check.number(table["at_s"], f"{key}.at_s", 0, end_s)
    service = table.get("service")
    if service is not None and service not in SERVICES:
        raise check.fail(
            f"{key}.service",
            f"unknown service {service!r}; expected one of {', '.join(SERVICES)}",
        )
    heal = table.get("heal", False)
    if not isinstance(heal, bool):
        raise check.fail(f"{key}.heal", "must be true or false")
    fields = {name: table[name] for name in fault_keys if name in table}
    if heal:
        if fields:
            raise check.fail(key, f"heal = true takes no fault settings ({', '.join(fields)})")
        return FaultEvent(at_s, service)
    if service is None:
        raise check.fail(f"{key}.service", "missing (only heal = true may omit it)")
    try:
        fault = Fault(**fields)
    except FaultError as exc:
        raise check.fail(f"{key}.{exc.key}", str(exc).split(": ", 1)[-1]) from exc
    if not fault.active:
        raise check.fail(key, "sets no fault; use heal = true to heal")
    return FaultEvent(at_s, service, fault.to_json())
