"""Frontdoor's metrics reach Graphite's storage: a real ``frontdoor serve`` (embedded
simulated backends) sends to the reference statsd daemon, whose graphite backend writes to
a real carbon-cache; the whisper files then hold an endpoint counter, a backend timer and
gauges under the paths docs/grafana/frontdoor.json queries (statsd's legacy namespace).

Needs node/npm (``bin/_statsd``) and pip (``bin/_graphite``): without them the test skips
on a developer's machine and fails in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import fnmatch
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import gevent
import pytest
import requests
from carbon_daemon import CarbonCache, CarbonUnavailableError, Series
from statsd_daemon import DaemonUnavailableError, GraphiteBackend, StatsdDaemon

from orchestrator.config import load_settings
from orchestrator.frontend.auth import TokenSigner
from orchestrator.ops.metrics import MetricNames
from orchestrator.runtime import endpoints_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs" / "grafana" / "frontdoor.json"
TIMEOUT_S = 30
# cli.main patches gevent itself, before anything else is imported.
SHIM = "from orchestrator.cli import main; raise SystemExit(main())"
ADMIN_TOKEN = "operators-admin-token-for-graphite-tests"  # noqa: S105 - a test value
TOKEN_SECRET = "token-secret-for-graphite-tests-0123456789"  # noqa: S105 - a test value
HOMES = 5
#: Sent, and seen in whisper, before the other homes: the series then spans flushes.
FIRST_HOMES = 2
PLAYS = 4
# Not called by home or play: forcing its breaker open changes no request's outcome.
FORCED_OPEN = "search"


def _unavailable(what: str, exc: Exception) -> NoReturn:
    """Skip on a developer's machine, FAIL in CI: a metrics test that silently skipped
    would prove nothing."""
    if os.environ.get("CI", "").lower() in {"true", "1"}:
        pytest.fail(f"{what} unavailable in CI: {exc}", pytrace=False)
    pytest.skip(f"{what} unavailable ({exc}); run bin/_statsd and bin/_graphite")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _banner_value(process: subprocess.Popen[str], prefix: str) -> str:
    """Read stdout up to the banner line starting with ``prefix``; the rest of that line."""
    assert process.stdout is not None
    with gevent.Timeout(TIMEOUT_S, AssertionError(f"no {prefix!r} line")):
        while True:
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"stdout ended before {prefix!r}")
            if line.startswith(prefix):
                return line.removeprefix(prefix).strip()


@dataclass(frozen=True)
class Pipeline:
    """carbon <- statsd (graphite backend) <- ``frontdoor serve``, all on 127.0.0.1."""

    carbon: CarbonCache
    statsd: StatsdDaemon
    url: str
    admin_url: str
    names: MetricNames


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    """The three processes, after ``_send_requests``; stopped at teardown, and their logs
    printed (pytest shows them when a test failed)."""
    workdir = tmp_path_factory.mktemp("graphite")
    with contextlib.ExitStack() as cleanup:
        try:
            carbon = CarbonCache.launch(workdir)
        except CarbonUnavailableError as exc:
            _unavailable("carbon", exc)
        cleanup.callback(_show_log, "carbon", carbon.log)
        cleanup.callback(carbon.stop)
        try:
            statsd = StatsdDaemon.launch(
                workdir, graphite=GraphiteBackend(carbon.host, carbon.port)
            )
        except DaemonUnavailableError as exc:
            _unavailable("statsd daemon", exc)
        cleanup.callback(_show_log, "statsd", statsd.log)
        cleanup.callback(statsd.stop)
        frontdoor_env = {
            "FRONTDOOR_AUTH_ADMIN_TOKEN": ADMIN_TOKEN,
            "FRONTDOOR_AUTH_TOKEN_SECRET": TOKEN_SECRET,
            "FRONTDOOR_SERVER_ADMIN_PORT": str(_free_port()),
            "FRONTDOOR_STATSD_HOST": statsd.host,
            "FRONTDOOR_STATSD_PORT": str(statsd.port),
            # Several gauge reports per 1 s flush: with deleteGauges, none is missed.
            "FRONTDOOR_STATSD_GAUGE_INTERVAL_S": "0.25",
        }
        settings = load_settings(environ=frontdoor_env)
        names = MetricNames(
            settings.statsd.prefix,
            endpoints_for(settings.server),
            [spec.name for spec in settings.backend_specs()],
        )
        process, stderr_log = _serve(workdir, frontdoor_env)
        cleanup.callback(_show_log, "frontdoor serve (stderr)", stderr_log)
        cleanup.callback(_kill, process)
        url = _banner_value(process, "Frontdoor is listening on ")
        admin_url = _banner_value(process, "Admin routes (/_admin/*) on ")
        running = Pipeline(carbon, statsd, url, admin_url, names)
        _send_requests(running)
        yield running
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=TIMEOUT_S)
        assert process.returncode == 0


def _serve(workdir: Path, frontdoor_env: Mapping[str, str]) -> tuple[subprocess.Popen[str], Path]:
    """``frontdoor serve`` with its embedded simulated backends; stderr (JSON logs) to a file."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("FRONTDOOR_")}
    environ.update(frontdoor_env)
    stderr_log = workdir / "frontdoor.stderr"
    argv = ["serve", "--port", "0", "--backends-port", "0", "--latency-profile", "none"]
    with stderr_log.open("w") as stderr:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-c", SHIM, *argv],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    return process, stderr_log


def _show_log(what: str, log: Path) -> None:
    """Print the end of a process's log: pytest shows it with a failed test's output."""
    text = log.read_text(errors="replace") if log.exists() else "(no log)"
    print(f"--- {what}: {log}\n{text[-3000:]}")  # noqa: T201 - captured, shown on failure


def _kill(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` if it still runs (a test that failed before SIGTERM)."""
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=TIMEOUT_S)


def _send_requests(pipeline: Pipeline) -> None:
    """``HOMES`` homes in two rounds (the second once the first is in whisper, so in a
    later flush) and ``PLAYS`` plays, each a 200; then force ``FORCED_OPEN`` open."""
    member = {"Authorization": f"Bearer {TokenSigner(TOKEN_SECRET.encode(), 3600).issue('m1')}"}
    home_2xx = "stats_counts." + pipeline.names.endpoints["discovery.home_v2"].status["2xx"]
    with requests.Session() as http:
        http.trust_env = False

        def homes(count: int) -> None:
            for _ in range(count):
                home = http.get(
                    f"{pipeline.url}/v2/discovery/home?rows=1&per_row=1",
                    headers=member,
                    timeout=TIMEOUT_S,
                )
                assert home.status_code == 200, home.text

        homes(FIRST_HOMES)
        pipeline.carbon.wait_for(
            (home_2xx,),
            lambda series: home_2xx in series and series[home_2xx].total >= FIRST_HOMES,
            TIMEOUT_S,
            "first round of homes",
        )
        homes(HOMES - FIRST_HOMES)
        for _ in range(PLAYS):
            play = http.post(
                f"{pipeline.url}/v1/playback/play",
                json={"title_id": "t42", "device_type": "tv-samsung-2024"},
                headers=member,
                timeout=TIMEOUT_S,
            )
            assert play.status_code == 200, play.text
        forced = http.post(
            f"{pipeline.admin_url}/_admin/backends/{FORCED_OPEN}/breaker",
            json={"force": "open", "reason": "graphite test"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=TIMEOUT_S,
        )
        assert forced.status_code == 200, forced.text


def test_counters_timers_and_gauges_land_in_whisper(pipeline: Pipeline) -> None:
    """The endpoint counters' whisper series sum to the requests sent, a point per flush
    that counted some; the licensing timer's counts sum to the plays, its mean within
    play's 1.5 s deadline and under its p99; the forced-open breaker gauge reads 1, a
    closed one 0, and in-flight stays within 0..1."""
    names = pipeline.names
    home_2xx = "stats_counts." + names.endpoints["discovery.home_v2"].status["2xx"]
    play_2xx = "stats_counts." + names.endpoints["playback.play"].status["2xx"]
    play_5xx = "stats_counts." + names.endpoints["playback.play"].status["5xx"]
    licensing = "stats.timers." + names.backends["licensing"].latency
    forced_open = "stats.gauges." + names.backends[FORCED_OPEN].breaker_open
    closed = "stats.gauges." + names.backends["licensing"].breaker_open
    inflight = "stats.gauges." + names.frontend_inflight
    wanted = (
        home_2xx,
        play_2xx,
        play_5xx,
        f"{licensing}.count",
        f"{licensing}.mean",
        f"{licensing}.upper_99",
        forced_open,
        closed,
        inflight,
    )

    def arrived(series: Mapping[str, Series]) -> bool:
        def total(name: str) -> float:
            return series[name].total if name in series else 0

        def sampled(stat: str) -> set[int]:
            """When the licensing timer's ``stat`` was written (flushes with samples)."""
            points = series.get(f"{licensing}.{stat}", Series(())).points
            return {at for at, value in points if stat != "count" or value > 0}

        return (
            total(home_2xx) >= HOMES
            and total(play_2xx) >= PLAYS
            and total(f"{licensing}.count") >= PLAYS
            # Carbon writes series one by one: wait until each flush's stats are all in.
            and sampled("count") == sampled("mean") == sampled("upper_99")
            and forced_open in series
            and series[forced_open].last == 1
            and closed in series
            and inflight in series
        )

    series = pipeline.carbon.wait_for(wanted, arrived, TIMEOUT_S, "Frontdoor's metrics")
    assert series[home_2xx].total == HOMES
    assert series[play_2xx].total == PLAYS
    assert series.get(play_5xx, Series(())).total == 0
    # Counted per flush and reset after it: the second round came after the flush that
    # held the first, so the points up to that flush add up to the first round exactly.
    counted = [value for value in series[home_2xx].values if value]
    assert len(counted) >= 2
    assert FIRST_HOMES in itertools.accumulate(counted)
    assert series[f"{licensing}.count"].total == PLAYS
    means = series[f"{licensing}.mean"].values
    assert means
    assert all(0 < mean < 1500 for mean in means)
    uppers = dict(series[f"{licensing}.upper_99"].points)
    assert all(mean <= uppers[at] for at, mean in series[f"{licensing}.mean"].points)
    assert set(series[forced_open].values) <= {0, 1}
    assert set(series[closed].values) == {0}
    assert series[inflight].values
    assert all(0 <= value <= 1 for value in series[inflight].values)  # one client, in turn


def test_the_dashboard_template_variables_find_the_stored_series(pipeline: Pipeline) -> None:
    """Each query variable of docs/grafana/frontdoor.json (``$prefix`` at its default)
    matches stored nodes: the dashboard's pickers are not empty against this storage."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = dashboard["templating"]["list"]
    prefix = next(v["query"] for v in variables if v["name"] == "prefix")
    assert prefix == pipeline.names.prefix
    queries = [v["query"] for v in variables if v["type"] == "query"]
    assert queries
    home_2xx = "stats_counts." + pipeline.names.endpoints["discovery.home_v2"].status["2xx"]
    backend_gauge = "stats.gauges." + pipeline.names.backends[FORCED_OPEN].breaker_open
    pipeline.carbon.wait_for(
        (home_2xx, backend_gauge), lambda series: len(series) == 2, TIMEOUT_S, "series"
    )
    stored = pipeline.carbon.stored()
    for query in queries:
        pattern = query.replace("$prefix", prefix).replace("$api", "*").replace("$backend", "*")
        # Graphite's * stays within a node: compare with stored names cut to the same depth.
        depth = pattern.count(".") + 1
        nodes = {".".join(name.split(".")[:depth]) for name in stored}
        assert fnmatch.filter(nodes, pattern), f"{query}: no stored node matches {pattern}"
