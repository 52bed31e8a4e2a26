"""Replay as a release gate across topologies: real ``frontdoor serve`` processes on
127.0.0.1, one recording replayed against two of them at once.

- ``one``: one API with its embedded simulated microservices.
- ``edge``: the edge topology, an edge in front of a playback layer, both over a separate
  ``fake-backends`` process (the same seeded data).
- ``next``: one API whose discovery package is ``examples/next_discovery``, a release
  with one planted change (the title page's ``duration_s`` in minutes).

All share one token secret; the replay signs its own member tokens with it. ``one`` vs
``edge`` must show no difference, ``one`` vs ``next`` exactly the planted field on exactly
the title requests that show it. A recording made by the capture proxy in front of ``one``
(fed by ``bin/loadtest``) replays without a difference too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import gevent
import gevent.event
import pytest
from loadtest_run import FRONTDOOR, LOADTEST, ROOT, RUN_TIMEOUT_S, Child

from orchestrator.loadtest.recording import RecordedRequest, write_recording

pytestmark = pytest.mark.e2e

FAKE_BACKENDS = (
    "from gevent import monkey; monkey.patch_all(); "
    "from backends.simulated.cli import main; raise SystemExit(main())"
)
#: What ``bin/loadtest`` execs; ``replay`` is its subcommand module's own main.
REPLAY = (
    "from gevent import monkey; monkey.patch_all(); "
    "from orchestrator.loadtest.replay import main; raise SystemExit(main())"
)
SECRET = "replay-e2e-token-secret-0123456789abcdef"  # noqa: S105 - a test's own secret
ADMIN_TOKEN = "replay-e2e-admin-token-0123456789"  # noqa: S105 - a test's own secret
#: A generated id (a counter in the licensing service): it differs between processes that
#: served different numbers of plays before.
LICENCE_ID = "$.license.id"
JSON_TYPE = (("Content-Type", "application/json"),)


def _environ(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FRONTDOOR_")}
    environ.update(
        FRONTDOOR_STATSD_ENABLED="false",
        FRONTDOOR_AUTH_TOKEN_SECRET=SECRET,
        FRONTDOOR_AUTH_ADMIN_TOKEN=ADMIN_TOKEN,
        **extra,
    )
    return environ


class Children:
    """The children a fixture starts; all terminated at the end."""

    def __init__(self) -> None:
        self.started: list[tuple[Child, gevent.Greenlet]] = []

    def start(self, code: str, *argv: str, **environ: str) -> Child:
        """Run ``python -c code argv`` from the repository root."""
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            [sys.executable, "-c", code, *argv], cwd=ROOT, env=_environ(**environ),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        child = Child(process)
        self.started.append((child, gevent.spawn(child.read)))
        return child

    def stop(self) -> None:
        """Terminate every child (the last started first) and wait for each."""
        for child, reader in reversed(self.started):
            if child.process.poll() is None:
                child.process.terminate()
            child.process.wait(timeout=30)
            reader.join(timeout=5)


SERVE = ("serve", "--port", "0", "--latency-profile", "none")
LISTENING = "Frontdoor is listening on"


@pytest.fixture(scope="module")
def topologies() -> Iterator[dict[str, str]]:
    """The three targets' URLs by name."""
    children = Children()
    try:
        one = children.start(FRONTDOOR, *SERVE, "--backends-port", "0")
        apis = "orchestrator.apis.nonmember,next_discovery,orchestrator.apis.playback"
        changed = children.start(
            FRONTDOOR, *SERVE, "--backends-port", "0",
            PYTHONPATH=str(ROOT / "examples" / "next_discovery"), FRONTDOOR_SERVER_APIS=apis,
        )  # fmt: skip
        fake = children.start(FAKE_BACKENDS, "serve", "--port", "0", "--latency-profile", "none")
        backends = fake.url_after("fake backends listening on")
        layer = children.start(
            FRONTDOOR, *SERVE, "--no-embedded",
            FRONTDOOR_BACKENDS_BASE_URL=backends, FRONTDOOR_SERVER_TOPOLOGY="playback",
        )  # fmt: skip
        edge = children.start(
            FRONTDOOR, *SERVE, "--no-embedded",
            FRONTDOOR_BACKENDS_BASE_URL=backends, FRONTDOOR_SERVER_TOPOLOGY="edge",
            FRONTDOOR_SERVER_PLAYBACK_UPSTREAM=layer.url_after(LISTENING),
        )  # fmt: skip
        yield {
            "one": one.url_after(LISTENING),
            "edge": edge.url_after(LISTENING),
            "next": changed.url_after(LISTENING),
        }
    finally:
        children.stop()


def _get(path: str, member: str | None = "m1") -> RecordedRequest:
    return RecordedRequest(0.0, "GET", path, auth=member is not None, member=member)


def _post(path: str, body: object, member: str = "m1") -> RecordedRequest:
    return RecordedRequest(
        0.0, "POST", path, JSON_TYPE, auth=True, member=member, body=json.dumps(body)
    )


#: Device traffic over every family. The writes (bookmarks) come first and set fixed
#: values, so that every target reads the same state after them, however many replays it
#: served before.
WRITES = (
    _post("/v1/playback/heartbeat", {"title_id": "t42", "position_s": 600}),
    _post("/v1/playback/heartbeat", {"title_id": "t7", "position_s": 120}, "m2"),
)
READS = (
    _get("/v1/nonmember/plans?country=US", None),
    _get("/v1/discovery/home?rows=2&per_row=3"),
    _get("/v2/discovery/home?rows=2&per_row=3", "m2"),
    _get("/v1/discovery/search?q=tiger&limit=3"),
    _get("/v1/discovery/titles/t42"),
    _get("/v1/discovery/titles/t7", "m2"),
    _get("/v1/discovery/titles/t42?fields=title,match"),
    _get("/v1/discovery/titles/t9999999"),
    _get("/v1/discovery/titles/nope"),
    _post("/v1/playback/play", {"title_id": "t42", "device_type": "tv-samsung-2024"}),
    _post("/v1/playback/play", {"title_id": "t7", "device_type": "android-phone"}, "m2"),
    _get("/v1/playback/history?limit=2"),
)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RecordedRequest]]:
    """The writes, then the reads twice, 40 ms apart (the reads from 0.5 s on)."""
    requests = [
        RecordedRequest(at_s, r.method, r.path, r.headers, r.auth, r.member, r.body)
        for at_s, r in [
            *((0.04 * i, r) for i, r in enumerate(WRITES)),
            *((0.5 + 0.04 * i, r) for i, r in enumerate(READS * 2)),
        ]
    ]
    path = tmp_path_factory.mktemp("replay") / "devices.jsonl"
    with path.open("w") as file:
        write_recording(file, "tests/e2e/test_replay_topologies.py", requests)
    return path, requests


def _run(code: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own interpreter and fixed arguments
        [sys.executable, "-c", code, *argv], cwd=ROOT, env=_environ(),
        capture_output=True, text=True, check=False, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip


def _replay(recording: Path, a: str, b: str, report: Path) -> subprocess.CompletedProcess[str]:
    return _run(REPLAY, "run", str(recording), "--target", a, "--target", b,
                "--ignore", LICENCE_ID, "--json", str(report))  # fmt: skip


def test_one_api_and_the_edge_topology_answer_every_request_alike(topologies, recording, tmp_path):
    """Exit 0: the same status and normalised body for every request, over all families."""
    path, requests = recording
    report_path = tmp_path / "same.json"
    done = _replay(path, topologies["one"], topologies["edge"], report_path)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    assert report["totals"]["same"] == len(requests)
    assert report["differences"] == []
    assert (
        done.stdout.splitlines()[-1]
        == f"replay: no differences in {len(requests)} compared requests"
    )


def test_the_planted_change_is_found_on_exactly_the_requests_that_show_it(
    topologies, recording, tmp_path
):
    """Exit 99; the only differences are $.duration_s on the title pages that carry it
    (not the one whose fields leave it out, nor the refused ones), with the old and new
    values in the diff."""
    path, requests = recording
    report_path = tmp_path / "planted.json"
    done = _replay(path, topologies["one"], topologies["next"], report_path)
    assert done.returncode == 99, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    expected = [
        i for i, r in enumerate(requests) if r.path in {"/v1/discovery/titles/t42",
                                                         "/v1/discovery/titles/t7"}
    ]  # fmt: skip
    assert len(expected) == 4
    assert [d["index"] for d in report["differences"]] == expected
    assert {(d["kind"], tuple(d["paths"])) for d in report["differences"]} == {
        ("body", ("$.duration_s",))
    }
    assert report["totals"] == {
        "count": len(requests), "same": len(requests) - 4, "differ": 4,
        "by_kind": {"body": 4}, "unsent": 0, "unchecked": 0,
    }  # fmt: skip
    assert report["routes"]["GET /v1/discovery/titles/{id}"]["differ"] == 4
    assert '-  "duration_s": 8340,' in done.stdout
    assert '+  "duration_s": 139,' in done.stdout


def test_a_capture_proxy_recording_replays_against_its_target_and_another_topology(
    topologies, tmp_path
):
    """bin/loadtest's read traffic through ``replay record`` (it stops by itself after 30
    requests); replayed against ``one`` alone it matches the recorded responses, and
    against ``one`` and ``edge`` the two agree."""
    rec = tmp_path / "captured.jsonl"
    children = Children()
    try:
        proxy = children.start(
            REPLAY, "record", "--listen", "127.0.0.1:0", "--target", topologies["one"],
            "--out", str(rec), "--keep-responses", "--max-requests", "30", "--duration", "60",
        )  # fmt: skip
        url = proxy.url_after("recording proxy on")
        load = _run(LOADTEST, "--target", url, "--rate", "20", "--duration", "1.5", "--warmup",
                    "0", "--mix", "home=6,search=2,title=2", "--no-progress")  # fmt: skip
        assert load.returncode == 0, load.stdout + load.stderr
        assert proxy.process.wait(timeout=RUN_TIMEOUT_S) == 0
    finally:
        children.stop()
    assert "replay: 30 of 31 requests recorded" in "".join(proxy.lines)  # 1: the /healthz
    alone = _run(REPLAY, "run", str(rec), "--target", topologies["one"], "--rate-scale", "2")
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert alone.stdout.splitlines()[-1] == "replay: no differences in 30 compared requests"
    both = _run(REPLAY, "run", str(rec), "--target", topologies["one"],
                "--target", topologies["edge"], "--rate-scale", "2")  # fmt: skip
    assert both.returncode == 0, both.stdout + both.stderr
