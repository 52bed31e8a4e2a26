"""--route: each API family's requests go to its own base URL, the rest to --target."""

from __future__ import annotations

import random

import pytest
from run_info import run_info

from orchestrator.apis import FAMILIES as API_FAMILIES
from orchestrator.loadtest.cli import main
from orchestrator.loadtest.mix import ENDPOINTS, Mix
from orchestrator.loadtest.phase import PhaseMap
from orchestrator.loadtest.report import build_report, render_tables
from orchestrator.loadtest.routes import FAMILIES, family_of, parse_routes
from orchestrator.loadtest.stats import Recorder
from orchestrator.loadtest.target import TargetError, parse_target

TARGET = parse_target("http://127.0.0.1:8081")
PLAYBACK = "http://127.0.0.1:8082"

#: The family every endpoint of the mix belongs to (docs/topologies.md).
EXPECTED = {
    "home": "discovery",
    "search": "discovery",
    "title": "discovery",
    "play": "playback",
    "heartbeat": "playback",
    "history": "playback",
    "plans": "nonmember",
    "signup": "nonmember",
}


def _request(endpoint):
    mix = Mix({endpoint: 1}, lambda member: f"token-{member}", random.Random(3), "run")
    return mix.next()


def test_the_families_are_the_apis_families():
    """A route names exactly the families Frontdoor declares."""
    assert set(FAMILIES) == set(API_FAMILIES)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_every_mix_endpoint_belongs_to_its_family(endpoint):
    """The family is read off the request path."""
    assert family_of(_request(endpoint).path) == EXPECTED[endpoint]


@pytest.mark.parametrize("path", ["/healthz", "/v1/batch", "/v1/unknown/x", "/"])
def test_paths_outside_a_family_have_none(path):
    """Health, batch and unknown paths belong to no family (they go to --target)."""
    assert family_of(path) is None


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_two_apis_playback_goes_to_its_route_the_rest_to_the_target(endpoint):
    """--target discovery --route playback=...: play, heartbeat, history to playback."""
    routes = parse_routes(TARGET, [f"playback={PLAYBACK}"])
    expected = PLAYBACK if EXPECTED[endpoint] == "playback" else TARGET.url
    assert routes.target_for(_request(endpoint).path).url == expected


def test_without_routes_everything_goes_to_the_target():
    """No --route: one API, one client."""
    routes = parse_routes(TARGET, [])
    assert routes.targets() == (TARGET,)
    assert all(routes.target_for(_request(e).path) == TARGET for e in ENDPOINTS)
    assert routes.target_for("/healthz") == TARGET


def test_one_client_per_distinct_origin_and_where_each_family_went():
    """Two families routed to the same origin share it; an unused --target is no target."""
    routes = parse_routes(
        TARGET,
        [
            "nonmember=http://127.0.0.1:9001",
            "discovery=http://127.0.0.1:9001/",
            f"playback={PLAYBACK}",
        ],
    )
    assert [t.url for t in routes.targets()] == ["http://127.0.0.1:9001", PLAYBACK]
    assert routes.by_family() == {
        "nonmember": "http://127.0.0.1:9001",
        "discovery": "http://127.0.0.1:9001",
        "playback": PLAYBACK,
    }
    assert routes.families_of(parse_target(PLAYBACK)) == ("playback",)
    assert routes.target_for("/healthz") == TARGET


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("playback", "expected family=URL"),
        ("=http://127.0.0.1:1", "expected family=URL"),
        ("playback=", "expected family=URL"),
        ("edge=http://127.0.0.1:1", "unknown family 'edge'"),
        ("playback=http://10.0.0.1:8082", "allow-remote"),
        ("playback=https://127.0.0.1:8082", "only http://"),
        ("playback=http://127.0.0.1:8082/v1", "origin only"),
    ],
)
def test_bad_routes_are_refused_naming_the_flag(value, message):
    """Each refusal names --route and says what is wrong."""
    with pytest.raises(TargetError, match=message) as refused:
        parse_routes(TARGET, [value])
    assert str(refused.value).startswith("--route")


def test_a_family_routed_twice_is_refused():
    """Two routes for one family are a mistake, not a choice."""
    with pytest.raises(TargetError, match="--route: playback is routed twice"):
        parse_routes(TARGET, [f"playback={PLAYBACK}", "playback=http://127.0.0.1:8083"])


def test_allow_remote_lifts_the_loopback_rule_for_routes():
    """Same policy as --target."""
    routes = parse_routes(TARGET, ["playback=http://10.0.0.1:8082"], allow_remote=True)
    assert routes.routed["playback"].host == "10.0.0.1"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--route", "playback"], "loadtest: --route: expected family=URL, got 'playback'"),
        (["--route", "search=http://127.0.0.1:1"], "unknown family 'search'"),
        (["--route", "playback=http://192.0.2.1:8082"], "--route playback=http://192.0.2.1"),
        (["--target", "http://192.0.2.1:8080"], "loadtest: --target: "),
    ],
)
def test_the_cli_reports_bad_routes_as_usage_errors(argv, message, capsys):
    """Exit code 2 before anything is sent, with the flag in the error line."""
    assert main([*argv, "--duration", "1", "--no-progress"]) == 2
    assert message in capsys.readouterr().err


def _info(routes):
    return run_info(
        target="http://127.0.0.1:8081",
        load="open loop 10 req/s",
        duration_s=1,
        ended_s=1,
        routes=routes,
    )


def test_the_report_says_where_each_family_went():
    """The header counts the targets and one line lists the families of each."""
    recorder = Recorder(PhaseMap.from_timeline([], 0, 1), warmup_s=0)
    recorder.record("home", 0.5, 0.51, 0.01, status=200)
    routes = parse_routes(TARGET, [f"playback={PLAYBACK}"]).by_family()
    report = build_report(recorder, _info(routes))
    assert report["run"]["routes"] == routes
    lines = render_tables(report).splitlines()
    assert lines[0].startswith("== ad-hoc run: open loop 10 req/s against 2 targets, ")
    assert lines[1] == (
        "routes: nonmember, discovery -> http://127.0.0.1:8081; playback -> http://127.0.0.1:8082"
    )


def test_an_unrouted_report_keeps_its_one_line_header():
    """Without --route the header names the target, as before."""
    recorder = Recorder(PhaseMap.from_timeline([], 0, 1), warmup_s=0)
    recorder.record("home", 0.5, 0.51, 0.01, status=200)
    report = build_report(recorder, _info({}))
    assert report["run"]["routes"] == {}
    lines = render_tables(report).splitlines()
    assert " against http://127.0.0.1:8081, " in lines[0]
    assert not lines[1].startswith("routes:")
