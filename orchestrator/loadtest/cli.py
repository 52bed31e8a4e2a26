"""``bin/loadtest``: drive a running Frontdoor with device-like load, optionally breaking the
simulated microservices on a timeline, and report latency per endpoint and per phase.

    bin/loadtest --scenario scenarios/licensing-hang.toml --plot out.png --json out.json
    bin/loadtest --rate 200 --duration 30 --warmup 5 --mix home=70,play=30
    bin/loadtest --concurrency 16 --duration 20        # closed loop
    bin/loadtest --target http://127.0.0.1:8081 --route playback=http://127.0.0.1:8082

    bin/loadtest --scenario scenarios/baseline.toml --threshold 'home.p99<250ms'
    bin/loadtest --scenario scenarios/licensing-hang.toml --json run.json --html run.html

Saved reports (nothing is sent; see bin/loadtest report --help, compare --help):
    bin/loadtest report run.json --html run.html      # HTML report of a saved --json
    bin/loadtest compare before.json after.json       # changes beyond noise; 99 if worse

Replay (docs/replay.md; see bin/loadtest replay --help):
    bin/loadtest replay record --listen 127.0.0.1:8090 --target URL --out rec.jsonl
    bin/loadtest replay run rec.jsonl --target A --target B   # 99 if responses differ

Only ever sends to --target, the --route URLs and --backends, which must be loopback
addresses unless --allow-remote is given. Every run is bounded (duration, request cap) and
stops by itself; Ctrl-C stops it early and still prints the (partial) report; a second
Ctrl-C also cancels the requests still in flight.

Before any load, every target must answer /healthz and, when the scenario has faults, the
fault API (--backends) must answer GET /_faults.

Thresholds (--threshold, and a scenario's [thresholds]): SELECTOR[@PHASE].METRIC OP VALUE
  SELECTOR  an endpoint (home), all, a client group, or client:endpoint
  PHASE     before | fault | after | a position from 1 | a quoted phase name
  METRIC    p50 p90 p99 p99.9 max mean (ms, s) - errors failed success degraded shed
            limited unsent (% or a 0-1 share of scheduled requests) - rps - count
  OP        < <= > >=
  e.g. 'home.p99<250ms'  'all.errors<1%'  'play@fault.p99<1500ms'  'all@3.shed>10%'
Without any threshold a run is judged by the default 'all.errors<1%'.

Exit codes:
  0    the run completed and every threshold passed
  1    tool error: a target or the fault API did not answer before the run, or a fault
       was not applied during it (the run is aborted, or with --invalid-phase=mark its
       phase is marked INVALID and the run fails)
  2    usage error: bad arguments, scenario file or threshold (nothing was sent)
  99   the run completed and at least one threshold failed (compare: a regression
       beyond noise was flagged)
  130  interrupted (Ctrl-C); the partial report is printed
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["EXIT_OK", "EXIT_REGRESSION", "EXIT_THRESHOLDS", "EXIT_TOOL", "EXIT_USAGE", "main"]

EXIT_OK = 0
#: A target or the fault API did not answer, or a fault was not applied.
EXIT_TOOL = 1
EXIT_USAGE = 2
#: The run completed and a threshold failed (k6 uses 99 for this too).
EXIT_THRESHOLDS = 99
#: ``compare`` flagged a regression beyond noise: the same code as a failed threshold.
EXIT_REGRESSION = EXIT_THRESHOLDS
EXIT_INTERRUPTED = 130
#: Judges a run that names no threshold: an ad-hoc run still fails on 5xx or no answers.
DEFAULT_THRESHOLD = "all.errors<1%"
#: Shown for a latency with no sample behind it (an en dash, not "0.0 ms").
NO_SAMPLES = "\u2013"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's layout and shows every option's default (unless it has
    none, or its help already says it)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if "default" in text or default in (None, False, [], argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def _patch() -> None:
    from gevent import monkey

    if not monkey.is_module_patched("socket"):
        monkey.patch_all()


def _parser() -> argparse.ArgumentParser:
    from orchestrator.config import ENV_PREFIX
    from orchestrator.loadtest.target import DEFAULT_BACKENDS_URL, DEFAULT_TARGET_URL

    parser = argparse.ArgumentParser(
        prog="loadtest", description=__doc__, formatter_class=_Formatter
    )
    parser.add_argument("--scenario", help="a scenario TOML file (see scenarios/)")
    parser.add_argument(
        "--target",
        default=DEFAULT_TARGET_URL,
        help="Frontdoor's base URL (every family not routed)",
    )
    parser.add_argument(
        "--route",
        action="append",
        default=[],
        metavar="FAMILY=URL",
        help="send one API family (nonmember, discovery, playback) to its own base URL, "
        "e.g. playback=http://127.0.0.1:8082 for two APIs; repeatable (default: none)",
    )
    parser.add_argument(
        "--backends",
        metavar="URL",
        help="the simulated microservices' base URL, whose fault API (/_faults) applies the "
        "scenario's faults (default: backends.base_url of --config, i.e. "
        f"${ENV_PREFIX}BACKENDS_BASE_URL, else {DEFAULT_BACKENDS_URL})",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow non-loopback --target/--route/--backends (default: loopback only)",
    )
    load = parser.add_mutually_exclusive_group()
    load.add_argument(
        "--rate", type=float, help="open loop: requests per second (default 100, or the scenario's)"
    )
    load.add_argument("--concurrency", type=int, help="closed loop: this many virtual users")
    parser.add_argument(
        "--duration", type=float, help="measured seconds (default 30, or the scenario's)"
    )
    parser.add_argument(
        "--warmup", type=float, help="seconds excluded from results (default 5, or the scenario's)"
    )
    parser.add_argument(
        "--mix",
        help="endpoint weights, e.g. home=60,search=15,play=10 (default: the scenario's, else "
        "home=60,search=15,title=10,play=10,heartbeat=4,signup=1)",
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        help="requests outstanding at once; beyond it a request counts as unsent (default 512)",
    )
    parser.add_argument(
        "--max-requests", type=int, help="stop after this many requests (default 5,000,000)"
    )
    parser.add_argument("--timeout", type=float, help="per-request timeout in s (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the request parameters")
    parser.add_argument(
        "--config",
        help="Frontdoor TOML configuration, for the token secret and backends.base_url "
        f"(default: ${ENV_PREFIX}CONFIG, else built-in defaults)",
    )
    parser.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="EXPR",
        help="a pass/fail criterion, e.g. 'home.p99<250ms' (see above); repeatable, added to "
        f"the scenario's (default: the scenario's, else {DEFAULT_THRESHOLD!r})".replace("%", "%%"),
    )
    parser.add_argument(
        "--invalid-phase",
        choices=("abort", "mark"),
        default="abort",
        help="when a fault is not applied: abort the run, or finish it with that phase marked "
        "INVALID; either way the exit code is 1",
    )
    parser.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="draw latency and throughput")
    parser.add_argument(
        "--html",
        metavar="FILE.html",
        help="write a self-contained HTML report (charts, thresholds, phase tables)",
    )
    parser.add_argument(
        "--no-progress", action="store_true", help="no live progress line (default on a TTY)"
    )
    return parser


class UsageError(Exception):
    """Arguments or files that make the run impossible (exit code 2)."""


def main(argv: list[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run a load test; returns the exit code: 0 passed, 1 tool error (unreachable, fault
    not applied), 2 usage, 99 a threshold failed, 130 interrupted. ``report`` and
    ``compare`` as the first argument read saved reports instead (``offline``); ``replay``
    records and replays traffic (``replay``)."""
    out = sys.stdout if out is None else out
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in {"report", "compare"}:
        from orchestrator.loadtest.offline import run_offline

        return run_offline(argv, out)
    _patch()
    if argv[:1] == ["replay"]:
        # Record device traffic, replay it against one or two targets, diff: docs/replay.md.
        from orchestrator.loadtest.replay import main as replay_main

        return replay_main(argv[1:], out=out)
    args = _parser().parse_args(argv)
    try:
        return _run(args, out)
    except UsageError as exc:
        print(f"loadtest: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's own error line
        return EXIT_USAGE


def _scenario(args: argparse.Namespace) -> Any:
    from orchestrator.loadtest.mix import DEFAULT_MIX
    from orchestrator.loadtest.scenario import (
        MAX_DURATION_S,
        MAX_WARMUP_S,
        Scenario,
        ScenarioError,
        load_scenario,
    )
    from orchestrator.loadtest.schedule import ClosedLoop, OpenLoop

    try:
        if args.scenario:
            scenario = load_scenario(args.scenario)
        else:
            scenario = Scenario("ad-hoc", "", OpenLoop.constant(100.0), 30.0, 5.0, DEFAULT_MIX)
        if args.rate is not None:
            scenario = replace(scenario, load=OpenLoop.constant(args.rate))
        if args.concurrency is not None:
            scenario = replace(scenario, load=ClosedLoop(args.concurrency))
    except (ScenarioError, ValueError) as exc:
        raise UsageError(str(exc)) from exc
    if args.duration is not None:
        if not 0 < args.duration <= MAX_DURATION_S:
            raise UsageError(f"--duration must be from 0 to {MAX_DURATION_S:g} s")
        scenario = replace(scenario, duration_s=args.duration)
    if args.warmup is not None:
        if not 0 <= args.warmup <= MAX_WARMUP_S:
            raise UsageError(f"--warmup must be from 0 to {MAX_WARMUP_S:g} s")
        scenario = replace(scenario, warmup_s=args.warmup)
    if args.mix:
        scenario = replace(scenario, mix=_parse_mix(args.mix))
    return scenario


def _parse_mix(text: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise UsageError(f"--mix: expected endpoint=weight, got {part!r}")
    return weights


def _settings(config: str | None) -> Any:
    from orchestrator.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise UsageError(f"configuration error: {exc}") from exc


def _tokens(settings: Any) -> Callable[[str], str]:
    from orchestrator.frontend.auth import TokenSigner

    signer = TokenSigner(settings.auth.token_secret.encode(), settings.auth.token_ttl_s)
    cache: dict[str, str] = {}

    def token(member: str) -> str:
        found = cache.get(member)
        if found is None:
            found = cache[member] = signer.issue(member)
        return found

    return token


@dataclass(frozen=True, slots=True)
class _Setup:
    """Everything a run needs, validated before anything is sent."""

    scenario: Any
    routes: Any
    backends: Any
    timeout_s: float
    max_inflight: int
    max_requests: int
    mix: Any
    seed: int
    thresholds: tuple[Any, ...]
    invalid_phase: str
    #: Starts device trips (``journey.Journeys.next``) when the scenario has journeys.
    journeys: Any = None


def _prepare(args: argparse.Namespace) -> _Setup:
    from orchestrator.loadtest.mix import Mix
    from orchestrator.loadtest.routes import parse_routes
    from orchestrator.loadtest.target import TargetError, parse_target

    scenario = _scenario(args)
    settings = _settings(args.config)
    try:
        target = parse_target(args.target, allow_remote=args.allow_remote)
    except TargetError as exc:
        raise UsageError(f"--target: {exc}") from exc
    try:
        routes = parse_routes(target, args.route, allow_remote=args.allow_remote)
    except TargetError as exc:
        raise UsageError(str(exc)) from exc
    try:
        backends = (
            parse_target(_backends_url(args, settings), allow_remote=args.allow_remote)
            if scenario.faults
            else None
        )
    except TargetError as exc:
        raise UsageError(f"--backends: {exc}") from exc
    timeout_s = _bounded(args.timeout, scenario.timeout_s, 10.0, "--timeout", 0.01, 300)
    max_inflight = _bounded(
        args.max_inflight, scenario.max_inflight, 512, "--max-inflight", 1, 10_000
    )
    max_requests = _bounded(args.max_requests, None, 5_000_000, "--max-requests", 1, 5_000_000)
    # Request parameters, not secrets: a seeded PRNG makes a run's traffic repeatable.
    rng = random.Random(args.seed)  # noqa: S311
    try:
        # The run id keeps sign-up e-mails unique across runs even with the same seed.
        tokens, run_id = _tokens(settings), os.urandom(4).hex()
        mix: Any = (
            _group_mix(scenario, tokens, rng, run_id)
            if scenario.clients
            else Mix(scenario.mix, tokens, rng, run_id)
        )
        journeys = _journeys(scenario, tokens, rng, run_id).next if scenario.journeys else None
    except ValueError as exc:
        raise UsageError(f"mix: {exc}") from exc
    return _Setup(
        scenario,
        routes,
        backends,
        timeout_s,
        int(max_inflight),
        int(max_requests),
        mix,
        args.seed,
        _thresholds(args, scenario),
        args.invalid_phase,
        journeys,
    )


def _backends_url(args: argparse.Namespace, settings: Any) -> str:
    """--backends, else Frontdoor's own backends.base_url (config file or
    FRONTDOOR_BACKENDS_BASE_URL), else the default of bin/serve."""
    from orchestrator.loadtest.target import DEFAULT_BACKENDS_URL

    if args.backends is not None:
        return str(args.backends)
    return str(settings.backends.base_url or DEFAULT_BACKENDS_URL)


def _thresholds(args: argparse.Namespace, scenario: Any) -> tuple[Any, ...]:
    """The scenario's thresholds and --threshold's, checked against what the run will
    record; the default one when neither gives any."""
    from orchestrator.loadtest.threshold import ThresholdError, check_applicable, parse_threshold

    try:
        given = tuple(parse_threshold(text) for text in args.threshold)
        thresholds = (*scenario.thresholds, *given) or (
            parse_threshold(DEFAULT_THRESHOLD, "default"),
        )
        phases = [{"name": p.name, "faults": p.faults} for p in scenario.phase_map()]
        check_applicable(thresholds, scenario.endpoints(), phases)
    except ThresholdError as exc:
        raise UsageError(f"threshold: {exc}") from exc
    return thresholds


def _group_mix(scenario: Any, tokens: Callable[[str], str], rng: random.Random, run_id: str) -> Any:
    """Each client group's own mix (its member, its weights), drawn by the groups' rates."""
    from orchestrator.loadtest.groups import GroupMix
    from orchestrator.loadtest.mix import Mix

    return GroupMix(
        [
            (group, Mix(group.mix or scenario.mix, tokens, rng, run_id, member=group.member))
            for group in scenario.clients
        ],
        rng,
    )


def _journeys(scenario: Any, tokens: Callable[[str], str], rng: random.Random, run_id: str) -> Any:
    """The scenario's journeys, each building its requests from the scenario's mix."""
    from orchestrator.loadtest.journey import Journeys
    from orchestrator.loadtest.mix import Mix

    return Journeys(
        [(spec, Mix(scenario.mix, tokens, rng, run_id)) for spec in scenario.journeys],
        rng,
        tokens,
    )


def _run(args: argparse.Namespace, out: TextIO) -> int:
    from orchestrator.loadtest.client import HttpClient

    setup = _prepare(args)
    sources = {""} | {group.source or "" for group in setup.scenario.clients}
    # One connection pool per distinct origin and source address, each bounded by the
    # in-flight cap.
    clients = {
        (target, source): HttpClient(
            target, timeout_s=setup.timeout_s, max_idle=setup.max_inflight, source=source
        )
        for target in setup.routes.targets()
        for source in sorted(sources)
    }
    try:
        problem = _preflight(setup, clients)
        if problem is not None:
            print(f"loadtest: {problem}; nothing was sent", file=sys.stderr)  # noqa: T201
            return EXIT_TOOL
        report, interrupted = _execute(setup, clients, show_progress=_wants_progress(args))
    finally:
        for client in clients.values():
            client.close()
    from orchestrator.loadtest.report import render_tables
    from orchestrator.loadtest.threshold import evaluate

    report["thresholds"] = evaluate(setup.thresholds, report)
    code = _exit_code(report, interrupted)
    failed = sum(not result["passed"] for result in report["thresholds"])
    report["verdict"] = {
        "exit_code": code,
        "passed": code == EXIT_OK,
        "thresholds_failed": failed,
        "invalid_phases": [p["name"] for p in report["phases"] if p["invalid"]],
        "aborted": report["run"]["aborted"],
    }
    out.write(render_tables(report) + "\n")
    out.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as file:  # noqa: PTH123 - plain file
            json.dump(report, file, indent=1)
    if args.plot:
        from orchestrator.loadtest.plot import plot_report

        plot_report(report, args.plot)
    if args.html:
        from orchestrator.loadtest.html_report import write_html

        write_html(report, args.html)
    if report["run"]["aborted"] or report["verdict"]["invalid_phases"]:
        faults = [f for f in report["faults"] if f["applied_s"] is None]
        for fault in faults:
            print(  # noqa: T201 - the CLI's own error line
                f"loadtest: the fault at {fault['at_s']:g} s was not applied: {fault['error']}",
                file=sys.stderr,
            )
    return code


def _preflight(setup: _Setup, clients: dict[Any, Any]) -> str | None:
    """Before any load: every target answers /healthz, and the fault API answers when the
    scenario has faults. The problem, or None."""
    from orchestrator.loadtest.client import HttpClient, RequestError
    from orchestrator.loadtest.faults import FaultApiError, check_fault_api

    for (target, _source), client in clients.items():
        try:
            client.request("GET", "/healthz")
        except RequestError as exc:
            families = ", ".join(setup.routes.families_of(target))
            return f"{target.url} ({families}) does not answer: {exc}"
    if setup.backends is not None:
        admin = HttpClient(setup.backends, timeout_s=5.0)
        try:
            check_fault_api(admin)
        except FaultApiError as exc:
            return (
                f"the fault API at {setup.backends.url} (--backends) does not work: {exc}; "
                "the scenario's faults could not be applied"
            )
        finally:
            admin.close()
    return None


def _exit_code(report: dict[str, Any], interrupted: bool) -> int:
    if interrupted:
        return EXIT_INTERRUPTED
    if report["run"]["aborted"] or any(p["invalid"] for p in report["phases"]):
        return EXIT_TOOL
    if any(not result["passed"] for result in report["thresholds"]):
        return EXIT_THRESHOLDS
    return EXIT_OK


def _wants_progress(args: argparse.Namespace) -> bool:
    return sys.stderr.isatty() and not args.no_progress


def _execute(
    setup: _Setup, clients: dict[Any, Any], *, show_progress: bool
) -> tuple[dict[str, Any], bool]:
    """Run the load and the fault timeline; heal the faults whatever happens. Returns the
    report and whether Ctrl-C interrupted the run."""
    import gevent

    from orchestrator.loadtest.client import HttpClient
    from orchestrator.loadtest.faults import FaultTimeline, FaultWatch
    from orchestrator.loadtest.report import RunInfo, build_report
    from orchestrator.loadtest.runner import Runner, RunPlan, every_second
    from orchestrator.loadtest.schedule import OpenLoop
    from orchestrator.loadtest.stats import Recorder

    scenario = setup.scenario
    recorder = Recorder(scenario.phase_map(), scenario.warmup_s)
    plan = RunPlan(
        scenario.load,
        scenario.warmup_s,
        scenario.duration_s,
        max_inflight=setup.max_inflight,
        max_requests=setup.max_requests,
        drain_s=setup.timeout_s + 1.0,
    )

    routes = setup.routes

    def send(request: Any) -> Any:
        client = clients[(routes.target_for(request.path), request.source)]
        return client.request(request.method, request.path, request.headers, request.body)

    runner = Runner(plan, setup.mix.next, send, recorder, journeys=setup.journeys)
    watch = FaultWatch(
        recorder.phases, scenario.warmup_s, runner.stop, abort=setup.invalid_phase == "abort"
    )
    timeline = None
    if setup.backends is not None:
        admin = HttpClient(setup.backends, timeout_s=5.0)
        timeline = FaultTimeline(
            admin, scenario.faults, time.perf_counter, gevent.sleep, on_error=watch.failed
        )
    presses = 0

    def interrupted() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            runner.stop()
        else:
            runner.abort()

    handler = gevent.signal_handler(signal.SIGINT, interrupted)
    ticker = every_second(runner, _progress_printer(sys.stderr)) if show_progress else None
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    cpu_before = time.process_time()
    background = gevent.spawn(timeline.run, time.perf_counter()) if timeline else None
    try:
        ended_s = runner.run()
    finally:
        handler.cancel()
        if ticker is not None:
            ticker.kill()
            sys.stderr.write("\n")
        if background is not None:
            background.kill()
        heal_error = None
        if timeline is not None:
            heal_error = timeline.heal_all()
            timeline.admin.close()
    if heal_error:
        print(f"loadtest: could not heal the faults: {heal_error}", file=sys.stderr)  # noqa: T201
    info = RunInfo(
        target=setup.routes.default.url,
        routes=setup.routes.by_family() if setup.routes.routed else {},
        mode="open" if isinstance(scenario.load, OpenLoop) else "closed",
        load=_describe_load(scenario.load, journeys=bool(scenario.journeys)),
        warmup_s=scenario.warmup_s,
        duration_s=scenario.duration_s,
        ended_s=round(ended_s, 3),
        partial=runner.stopped_early,
        aborted=watch.aborted,
        invalid_phases=watch.invalid,
        scenario=scenario.name,
        mix=dict(scenario.mix),
        seed=setup.seed,
        started_at=started_at,
        cpu_s=round(time.process_time() - cpu_before, 3),
        max_inflight=setup.max_inflight,
        faults=tuple(timeline.applied) if timeline is not None else (),
    )
    return build_report(recorder, info), runner.stopped_early and watch.aborted is None


def _bounded(
    given: float | None, scenario: float | None, default: float, flag: str, low: float, high: float
) -> float:
    value = given if given is not None else scenario if scenario is not None else default
    if not low <= value <= high:
        raise UsageError(f"{flag} must be from {low:g} to {high:g}")
    return value


def _describe_load(load: Any, *, journeys: bool = False) -> str:
    from orchestrator.loadtest.schedule import OpenLoop

    if not isinstance(load, OpenLoop):
        return f"closed loop, {load.concurrency} users"
    if journeys:
        return f"open loop {load.steps[0].rate:g} trips/s (device journeys)"
    if len(load.steps) == 1:
        return f"open loop {load.steps[0].rate:g} req/s"
    steps = ", ".join(f"{step.rate:g}@{step.at_s:g}s" for step in load.steps)
    return f"open loop steps {steps} req/s"


def _progress_printer(stream: TextIO) -> Callable[[Any], None]:
    def show(progress: Any) -> None:
        if progress.warming_up:
            label = "warmup"
        elif progress.p99_ms is None:
            label = f"p99 {NO_SAMPLES}"  # nothing completed in this second: no latency
        else:
            label = f"p99 {progress.p99_ms:.1f} ms"
        stream.write(
            f"\r{progress.elapsed_s:6.1f} s  {progress.rate:7.1f} req/s  "
            f"errors {progress.errors}  unsent {progress.not_sent}  "
            f"in flight {progress.inflight}  {label}   "
        )
        stream.flush()

    return show
