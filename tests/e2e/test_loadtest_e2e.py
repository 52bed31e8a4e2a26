"""bin/loadtest's main() against a real Frontdoor and simulated backends on 127.0.0.1."""

from __future__ import annotations

import io
import json
import socket
from collections.abc import Iterator

import pytest
from gevent.pywsgi import WSGIServer

from backends.simulated import SimulatedBackends
from orchestrator.config import load_settings
from orchestrator.frontend.server import HttpServer
from orchestrator.loadtest.cli import main
from orchestrator.runtime import Frontdoor, rebase_specs

pytestmark = pytest.mark.e2e

SCENARIO = """
description = "3 s: ratings fails half its calls from 1.5 s to 2.5 s"
[load]
rate = 40
duration_s = 2.5
warmup_s = 0.5
timeout_s = 5
[mix]
home = 6
search = 1
title = 1
play = 1
heartbeat = 1
[[faults]]
at_s = 1.5
service = "ratings"
error_rate = 0.5
[[faults]]
at_s = 2.5
service = "ratings"
heal = true
"""


@pytest.fixture(scope="module")
def urls() -> Iterator[tuple[str, str]]:
    """Simulated backends (no added latency) and Frontdoor on free loopback ports."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    settings = load_settings(environ={})
    specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
    server = HttpServer(Frontdoor.build(settings, specs), "127.0.0.1", 0, drain_s=5)
    server.start()
    try:
        yield server.url, backends.url
    finally:
        server.stop()
        backends.stop()


def test_a_three_second_scenario_reports_every_request_by_phase(urls, tmp_path):
    """120 scheduled requests, all answered, split into before / during / after the fault."""
    target, backends = urls
    scenario = tmp_path / "short.toml"
    scenario.write_text(SCENARIO)
    report_path, plot_path = tmp_path / "report.json", tmp_path / "report.png"
    out = io.StringIO()
    code = main(
        [
            "--scenario", str(scenario), "--target", target, "--backends", backends,
            "--json", str(report_path), "--plot", str(plot_path), "--no-progress",
        ],
        out=out,
    )  # fmt: skip
    assert code == 0, out.getvalue()
    report = json.loads(report_path.read_text())
    assert [p["name"] for p in report["phases"]] == [
        "before",
        "ratings 50% errors",
        "after ratings 50% errors",
    ]
    total = report["all"]["total"]
    assert report["generator"]["warmup_requests"] == 20
    assert total["count"] == 100
    assert total["responses"] + total["not_sent"] + sum(total["failures"].values()) == 100
    assert total["not_sent"] == 0
    assert sum(phase["count"] for phase in report["all"]["phases"].values()) == total["count"]
    assert set(report["endpoints"]) <= {"home", "search", "title", "play", "heartbeat"}
    assert "home" in report["endpoints"]
    assert total["status"].get("2xx", 0) >= 90
    assert [f["applied_s"] is not None for f in report["faults"]] == [True, True]
    assert len(report["series"]) >= 3
    assert plot_path.read_bytes().startswith(b"\x89PNG")
    printed = out.getvalue()
    assert "-- phases: home" in printed
    assert "ratings 50% errors [1.5-2.5 s)" in printed


def test_a_remote_target_is_refused_before_anything_is_sent(capsys):
    """Without --allow-remote a non-loopback target is a usage error (exit 2)."""
    assert main(["--target", "http://192.0.2.1:8080", "--duration", "1"]) == 2
    assert "allow-remote" in capsys.readouterr().err


@pytest.fixture(scope="module")
def two_apis() -> Iterator[tuple[str, str]]:
    """Two APIs on free loopback ports, one simulated backends: nonmember + discovery in one
    Frontdoor (topology ``discovery``), playback in another (topology ``playback``)."""
    backends = SimulatedBackends(latency_profile="none")
    backends.start(host="127.0.0.1", port=0)
    servers = []
    try:
        for topology in ("discovery", "playback"):
            settings = load_settings(environ={"FRONTDOOR_SERVER_TOPOLOGY": topology})
            specs = rebase_specs(settings.backend_specs(), settings.backends.base_url, backends.url)
            server = HttpServer(Frontdoor.build(settings, specs), "127.0.0.1", 0, drain_s=5)
            server.start()
            servers.append(server)
        yield servers[0].url, servers[1].url
    finally:
        for server in servers:
            server.stop()
        backends.stop()


def _run_json(argv: list[str], path) -> dict:
    out = io.StringIO()
    code = main([*argv, "--json", str(path), "--no-progress", "--timeout", "5"], out=out)
    assert code == 0, out.getvalue()
    report = json.loads(path.read_text())
    report["printed"] = out.getvalue()
    return report


def test_each_family_reaches_its_own_api_with_route(two_apis, tmp_path):
    """3 s of every family: discovery and nonmember to --target, playback to its --route;
    each server serves only its families, so a request sent to the wrong one would be 404."""
    discovery, playback = two_apis
    report = _run_json(
        [
            "--target", discovery, "--route", f"playback={playback}",
            "--rate", "40", "--duration", "2.5", "--warmup", "0.5",
            "--mix", "home=3,search=1,title=1,plans=1,play=2,heartbeat=1,history=1",
        ],
        tmp_path / "routed.json",
    )  # fmt: skip
    assert report["run"]["routes"] == {
        "nonmember": discovery,
        "discovery": discovery,
        "playback": playback,
    }
    assert (
        f"routes: nonmember, discovery -> {discovery}; playback -> {playback}"
        in (report["printed"])
    )
    endpoints = report["endpoints"]
    assert set(endpoints) == {"home", "search", "title", "plans", "play", "heartbeat", "history"}
    for name, data in endpoints.items():
        total = data["total"]
        assert total["status"].get("4xx", 0) == 0, (name, report["error_samples"])
        assert total["status"].get("2xx", 0) >= 0.9 * total["count"], (name, total)
    total = report["all"]["total"]
    assert total["count"] == 100
    assert total["not_sent"] == 0


def test_a_family_its_api_does_not_serve_is_a_404(two_apis, tmp_path):
    """Without the route, play goes to the discovery API, which answers it 404."""
    discovery, _ = two_apis
    report = _run_json(
        ["--target", discovery, "--rate", "20", "--duration", "1", "--warmup", "0",
         "--mix", "home=1,play=1"],
        tmp_path / "unrouted.json",
    )  # fmt: skip
    play, home = report["endpoints"]["play"]["total"], report["endpoints"]["home"]["total"]
    assert play["status"] == {"4xx": play["count"]}
    assert "play 404" in report["error_samples"]
    assert home["status"].get("4xx", 0) == 0
    assert report["run"]["routes"] == {}


def test_every_target_must_answer_before_the_run(two_apis, capsys):
    """A route to a port nothing listens on stops the run at once (exit 1), naming it."""
    discovery, _ = two_apis
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code = main(["--target", discovery, "--route", f"playback={closed}", "--duration", "1"])
    assert code == 1
    assert f"loadtest: {closed} (playback) does not answer" in capsys.readouterr().err


@pytest.fixture
def refusing_admin() -> Iterator[str]:
    """A fault API that lists faults and heals, but refuses to set any (HTTP 503)."""

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        status = "503 Service Unavailable" if method == "PUT" else "200 OK"
        start_response(status, [("Content-Type", "application/json")])
        return [b'{"error": "refused"}' if method == "PUT" else b'{"faults": {}}']

    server = WSGIServer(("127.0.0.1", 0), app, log=None, error_log=None)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["abort", "mark"])
def test_a_fault_that_is_not_applied_fails_the_run_as_a_tool_error(
    urls, refusing_admin, tmp_path, mode
):
    """abort: the run stops at the fault (1.5 s of 3) and says why; mark: it runs to the end
    with that phase INVALID. Either way exit 1, and no threshold can pass over that phase."""
    target, _ = urls
    scenario = tmp_path / "short.toml"
    scenario.write_text(SCENARIO + '[thresholds]\n"all@fault" = ["errors<100%"]\n')
    report_path = tmp_path / "report.json"
    out = io.StringIO()
    code = main(
        [
            "--scenario", str(scenario), "--target", target, "--backends", refusing_admin,
            "--invalid-phase", mode, "--json", str(report_path), "--no-progress",
        ],
        out=out,
    )  # fmt: skip
    assert code == 1, out.getvalue()
    report = json.loads(report_path.read_text())
    phases = {phase["name"]: phase["invalid"] for phase in report["phases"]}
    assert phases["ratings 50% errors"] == "the fault at 1.5 s was not applied"
    (threshold,) = report["thresholds"]
    assert not threshold["passed"]
    assert threshold["reason"].startswith("phase not valid: ratings 50% errors")
    printed = out.getvalue()
    assert "INVALID phase 'ratings 50% errors': the fault at 1.5 s was not applied" in printed
    assert "fault at 1.5 s: ratings 50% errors FAILED (PUT /_faults/ratings: HTTP 503" in printed
    if mode == "abort":
        assert report["run"]["aborted"] == "the fault at 1.5 s was not applied"
        assert report["run"]["ended_s"] < 2.0
        assert "ABORTED (the fault at 1.5 s was not applied)" in printed.splitlines()[0]
    else:
        assert report["run"]["aborted"] is None
        assert report["run"]["ended_s"] == 3.0
