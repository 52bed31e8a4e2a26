"""Client groups: a scenario with several clients, each its own member, source address and
rate, reported one row per client (the fairness scenario, finding 4)."""

from __future__ import annotations

import random
import socket
from collections import Counter
from pathlib import Path

import pytest
from gevent.server import StreamServer
from run_info import run_info

from orchestrator.loadtest.client import HttpClient
from orchestrator.loadtest.groups import ClientGroup, GroupMix, group_of, summarize
from orchestrator.loadtest.mix import Mix
from orchestrator.loadtest.phase import PhaseMap
from orchestrator.loadtest.report import build_report, render_tables
from orchestrator.loadtest.scenario import ScenarioError, load_scenario, parse_scenario
from orchestrator.loadtest.schedule import OpenLoop
from orchestrator.loadtest.stats import Recorder
from orchestrator.loadtest.target import Target

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
FLOODER = {"name": "flooder", "rate": 90, "member": "m1", "source": "127.0.0.2", "mix": {"home": 1}}
DEVICE = {"name": "device", "rate": 10, "member": "m2"}


def _parse(data):
    return parse_scenario(data, name="t", source="t.toml")


def test_clients_parse_and_make_the_load():
    scenario = _parse({"load": {"duration_s": 5}, "clients": [FLOODER, DEVICE]})
    assert scenario.load == OpenLoop.constant(100.0)
    assert scenario.clients == (
        ClientGroup("flooder", 90.0, "m1", "127.0.0.2", {"home": 1.0}),
        ClientGroup("device", 10.0, "m2", None, None),
    )


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"load": {"rate": 5, "duration_s": 5}, "clients": [DEVICE]}, "load"),
        ({"load": {"duration_s": 5}, "clients": [{**DEVICE, "source": "10.0.0.2"}]}, "source"),
        ({"load": {"duration_s": 5}, "clients": [DEVICE, DEVICE]}, "clients[1].name"),
        ({"load": {"duration_s": 5}, "clients": [{"name": "a"}]}, "clients[0].rate"),
        ({"load": {"duration_s": 5}, "clients": [{**DEVICE, "member": "m 1"}]}, "member"),
        ({"load": {"duration_s": 5}, "clients": [{**DEVICE, "port": 1}]}, "clients[0].port"),
    ],
)
def test_bad_clients_fail_naming_the_key(data, key):
    with pytest.raises(ScenarioError, match=key.replace("[", r"\[").replace("]", r"\]")):
        _parse(data)


def test_the_fairness_scenario_floods_at_ten_times_the_other_clients_rate():
    scenario = load_scenario(SCENARIOS / "fairness.toml")
    flooder, device = scenario.clients
    assert flooder.rate == 10 * device.rate
    assert flooder.member != device.member
    assert flooder.source == "127.0.0.2"


def test_each_group_gets_its_share_its_member_and_its_source():
    tokens = {"m1": "token-m1", "m2": "token-m2"}.__getitem__
    rng = random.Random(3)
    flooder = ClientGroup("flooder", 90.0, "m1", "127.0.0.2", {"home": 1.0})
    device = ClientGroup("device", 10.0, "m2")
    mix = GroupMix(
        [
            (flooder, Mix({"home": 1}, tokens, rng, "r", member="m1")),
            (device, Mix({"home": 1, "title": 1}, tokens, rng, "r", member="m2")),
        ],
        rng,
    )
    requests = [mix.next() for _ in range(2000)]
    groups = Counter(group_of(request.endpoint) for request in requests)
    assert 1700 < groups["flooder"] < 1900  # 90% of arrivals, give or take the draw
    for request in requests:
        if group_of(request.endpoint) == "flooder":
            assert request.endpoint == "flooder:home"
            assert request.source == "127.0.0.2"
            assert request.headers == (("Authorization", "Bearer token-m1"),)
        else:
            assert request.source == ""
            assert ("Authorization", "Bearer token-m2") in request.headers


def test_the_report_has_one_row_per_client_with_success_and_latency():
    recorder = Recorder(PhaseMap.from_timeline([], 0, 10), warmup_s=0)
    for _ in range(8):
        recorder.record("flooder:home", 1, 1.001, 0.001, status=429, retry_after="429 rate_limited")
    recorder.record("flooder:home", 1, 1.1, 0.1, status=503, retry_after="503 overloaded")
    recorder.record("flooder:home", 1, 1.1, 0.05, status=200)
    recorder.record("device:home", 1, 1.02, 0.02, status=200)
    recorder.record("device:title", 1, 1.04, 0.04, status=200)
    report = build_report(recorder, run_info())
    assert report["clients"]["flooder"] == {
        "count": 10,
        "ok": 1,
        "rate_limited": 8,
        "shed": 1,
        "other": 0,
        "success_percent": 10.0,
        "p50_ms": report["clients"]["flooder"]["p50_ms"],
        "p99_ms": report["clients"]["flooder"]["p99_ms"],
    }
    assert round(report["clients"]["flooder"]["p99_ms"]) == 100  # the 503's 0.1 s
    assert report["clients"]["device"]["success_percent"] == 100.0
    lines = render_tables(report).splitlines()
    (device_row,) = [line for line in lines if line.startswith("device ")]
    assert device_row.split() == ["device", "2", "2", "0", "0", "0", "100.00", "20.0", "40.0"]
    assert summarize({"home": report["endpoints"]}) == {}  # a run without groups: no rows


def test_a_client_sends_from_its_source_address():
    peers: list[str] = []

    def handle(sock: socket.socket, address: tuple[str, int]) -> None:
        peers.append(address[0])
        sock.recv(65_536)
        sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        sock.close()

    server = StreamServer(("127.0.0.1", 0), handle)
    server.start()
    try:
        client = HttpClient(Target("127.0.0.1", server.server_port), source="127.0.0.2")
        assert client.request("GET", "/").status == 200
        client.close()
    finally:
        server.stop()
    assert peers == ["127.0.0.2"]
